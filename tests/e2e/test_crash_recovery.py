"""Exactly-once resume: a run crashed before *each* of its durable writes (every event, the
snapshot, the config, the new log), resumed, ends exactly as the run that never crashed.

The model follows a fixed script by position (tests/fixed_script.py): it never looks at the
workspace, so a lost step, a repeated one or an extra one shows in the outcome. The crash is
injected deterministically through the store's test-only fault point (SIGKILL of the
process just before its N-th write), in a real process (tests/forked_cli.py).
"""

from __future__ import annotations

import itertools
import json
from pathlib import Path

import pytest

from tests.crash_harness import (
    KILLED,
    RUN,
    Outcome,
    Workplace,
    check_same_outcome,
    crash_then_resume,
    reference_run,
)

pytestmark = pytest.mark.e2e


@pytest.fixture(scope="module")
def reference(tmp_path_factory: pytest.TempPathFactory) -> Outcome:
    return reference_run(tmp_path_factory.mktemp("reference"))


CHUNKS = 5  # the crash points are shared out among this many tests (parallel workers)


@pytest.mark.parametrize("chunk", range(CHUNKS))
def test_a_crash_before_any_write_resumes_to_the_same_outcome(
    tmp_path: Path, reference: Outcome, chunk: int
) -> None:
    """Every write of the run, until a fault point lies past its last one."""
    for point in itertools.count(1 + chunk, CHUNKS):
        crash = crash_then_resume(tmp_path / f"p{point}", f"kill@{point}")
        check_same_outcome(crash.place, crash.code, reference, crash.crashed)
        if not crash.killed:
            break
    assert point > 60  # the whole run was covered, not a prefix of it


@pytest.mark.parametrize("first", [7, 19, 33, 48, 66, 80])
def test_a_second_crash_during_resume_still_ends_the_same(
    tmp_path: Path, reference: Outcome, first: int
) -> None:
    for second in (1, 2, 4, 9):
        root = tmp_path / f"s{second}"
        crash = crash_then_resume(root, f"kill@{first}", f"kill@{second}")
        assert crash.killed
        check_same_outcome(crash.place, crash.code, reference, crash.crashed)


def test_deleting_the_snapshot_changes_nothing(tmp_path: Path, reference: Outcome) -> None:
    for point in (20, 45, 70):
        place = Workplace(tmp_path / f"d{point}")
        with place.model:
            assert place.run(fault=f"kill@{point}").code == KILLED
            crashed = place.log_bytes()
            (place.state / RUN / "snapshot.json").unlink(missing_ok=True)
            result = place.resume()
            place.resume_stderr = result.stderr
            check_same_outcome(place, result.code, reference, crashed)


def test_a_junk_snapshot_is_rebuilt_from_the_log(tmp_path: Path, reference: Outcome) -> None:
    place = Workplace(tmp_path)
    with place.model:
        assert place.run(fault="kill@40").code == KILLED
        crashed = place.log_bytes()
        (place.state / RUN / "snapshot.json").write_text('{"junk": tru')
        inspected = place.cli("inspect", RUN, "--json")
        assert inspected.code == 0, inspected.stderr
        assert json.loads(inspected.stdout)["summary"]["state"] != ""
        result = place.resume()
        place.resume_stderr = result.stderr
        check_same_outcome(place, result.code, reference, crashed)
