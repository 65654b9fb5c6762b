"""A damaged or missing cache never blocks the truth; damage to the truth is found, named,
and nothing is written: junk snapshot or config, a log cut, duplicated or renumbered, a
symlinked log, a run directory others can write."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.crash_harness import KILLED, RUN, Workplace

pytestmark = pytest.mark.e2e

USAGE = 2


@pytest.fixture
def crashed(tmp_path: Path) -> Iterator[Workplace]:
    """A run killed half-way (before its 40th write), with a snapshot saved; its model
    keeps serving during the test."""
    place = Workplace(tmp_path)
    with place.model:
        assert place.run(fault="kill@40").code == KILLED
        yield place


def _refused(place: Workplace, *words: str) -> str:
    """resume and inspect both refuse with a one-line error; nothing is written."""
    before = {p: p.read_bytes() for p in (place.state / RUN).iterdir() if p.is_file()}
    for args in (("resume", RUN), ("inspect", RUN)):
        result = place.cli(*args)
        assert result.code == USAGE, result.stderr
        assert "Traceback" not in result.stderr
        assert len(result.stderr.strip().splitlines()) == 1, result.stderr
        for word in words:
            assert word in result.stderr
    after = {p: p.read_bytes() for p in (place.state / RUN).iterdir() if p.is_file()}
    assert after == before
    return result.stderr


def _log_lines(place: Workplace) -> list[bytes]:
    return place.log_path.read_bytes().splitlines(keepends=True)


def test_junk_config_names_the_file(crashed: Workplace) -> None:
    (crashed.state / RUN / "config.json").write_text("{not json")
    result = crashed.resume()
    assert result.code == USAGE
    assert "config.json" in result.stderr and "damaged" in result.stderr


def test_missing_config_names_the_file(crashed: Workplace) -> None:
    (crashed.state / RUN / "config.json").unlink()
    result = crashed.resume()
    assert result.code == USAGE and "config.json is missing" in result.stderr


def test_a_log_cut_at_a_line_boundary_is_detected(crashed: Workplace) -> None:
    lines = _log_lines(crashed)
    crashed.log_path.write_bytes(b"".join(lines[:-6]))  # the snapshot has seen more
    _refused(crashed, "events were cut")


def test_a_duplicated_line_is_detected(crashed: Workplace) -> None:
    lines = _log_lines(crashed)
    crashed.log_path.write_bytes(b"".join([*lines[:10], lines[9], *lines[10:]]))
    _refused(crashed, "events.jsonl:11", "numbered 10")


def test_renumbered_events_are_detected(crashed: Workplace) -> None:
    lines = _log_lines(crashed)
    lines[12] = lines[12].replace(b'"seq":13,', b'"seq":14,')
    crashed.log_path.write_bytes(b"".join(lines))
    _refused(crashed, "events.jsonl:13")


def test_a_symlinked_log_is_refused(crashed: Workplace, tmp_path: Path) -> None:
    elsewhere = tmp_path / "elsewhere.jsonl"
    crashed.log_path.rename(elsewhere)
    crashed.log_path.symlink_to(elsewhere)
    _refused(crashed, "symlink")


def test_a_run_directory_others_can_write_is_refused(crashed: Workplace) -> None:
    os.chmod(crashed.state / RUN, 0o777)
    _refused(crashed, "writable by others")


def test_a_half_created_run_is_no_run_and_its_name_is_free(tmp_path: Path) -> None:
    place = Workplace(tmp_path)
    with place.model:
        assert place.run(fault="kill@2").code == KILLED  # config saved, log not created
        assert (place.state / RUN).is_dir()
        result = place.resume()
        assert result.code == USAGE and "no run named" in result.stderr
        listed = place.cli("list")
        assert RUN not in listed.stdout
        assert place.run().code == 0


def test_a_huge_task_lives_in_the_log_once(tmp_path: Path) -> None:
    place = Workplace(tmp_path)
    marker = "TASK-LINE-1234567890 "  # the task is stripped: count without the space
    task_file = tmp_path / "task.md"
    task_file.write_text("do the steps\n" + marker * 45_000)  # ~0.95 MB: under the 1 MB limit
    with place.model:
        args = ("run", "-n", RUN, "-i", "12", "-f", str(task_file))
        assert place.cli(*args).code == 0
    snapshot = (place.state / RUN / "snapshot.json").read_bytes()
    assert len(snapshot) < 20_000
    assert place.log_bytes().count(marker.strip().encode()) == 45_000
