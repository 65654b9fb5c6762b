"""`runhands list` and `runhands inspect` through the real CLI, after real runs."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import msgspec
import pytest

from controller.cli.views import RunReport, RunSummary
from state_store.events import Observation, RunEnded
from tests.conftest import TEST_API_KEY, Cli, CliResult
from tests.scripted_model import ScriptedModel, bash, error, finish

pytestmark = pytest.mark.e2e


@pytest.fixture(scope="module")
def runs(tmp_path_factory: pytest.TempPathFactory) -> Cli:
    """Two saved runs: `a` finished after a retried model error, `b` hit the step limit."""
    cli = Cli(tmp_path_factory.mktemp("runs"))
    with ScriptedModel([error(503), bash("echo one"), finish("all done")]) as model:
        result = cli.run("run", "-n", "a", "-t", "say one\nthen stop", model=model)
        assert result.returncode == 0, result.stderr
    with ScriptedModel([bash("echo 1"), bash("echo 2")]) as model:
        result = cli.run("run", "-n", "b", "-i", "1", "-t", "loop", model=model)
        assert result.returncode == 3, result.stderr
    return cli


def copy_of_run(runs: Cli, tmp_path: Path, name: str = "a") -> tuple[Cli, Path]:
    """A fresh state dir holding a copy of a saved run, free to be damaged."""
    cli = Cli(tmp_path)
    shutil.copytree(runs.state_dir, cli.state_dir)
    return cli, cli.state_dir / name


def assert_no_key(*results: CliResult) -> None:
    for result in results:
        assert TEST_API_KEY not in result.stdout + result.stderr


def test_list_shows_both_runs_newest_first(runs: Cli) -> None:
    result = runs.run("list")
    assert result.returncode == 0, result.stderr
    header, *rows = result.stdout.splitlines()
    assert header.split() == ["RUN", "STATE", "REASON", "STEPS", "COST", "UPDATED", "FROM", "TASK"]
    assert [row.split()[:4] for row in rows] == [
        ["b", "errored", "limit", "1"],
        ["a", "finished", "finished", "2"],
    ]
    assert rows[1].endswith("say one then stop")

    as_json = runs.run("list", "--json")
    assert as_json.returncode == 0, as_json.stderr
    summaries = [msgspec.json.decode(x, type=RunSummary) for x in as_json.stdout.splitlines()]
    assert [(s.run_id, s.state, s.steps) for s in summaries] == [
        ("b", "errored", 1),
        ("a", "finished", 2),
    ]
    assert summaries[1].prompt_tokens == 200 and summaries[1].completion_tokens == 40
    assert_no_key(result, as_json)


def test_inspect_shows_the_run_step_by_step(runs: Cli) -> None:
    result = runs.run("inspect", "a")
    assert result.returncode == 0, result.stderr
    for expected in (
        "run       a",
        "model     openai/scripted-model",
        f"workdir   {runs.workspace}",
        "state     finished",
        "message   all done",
        "steps     2",
        "tokens    240 (200 prompt, 40 completion)",
        "init -> planning: sandbox ready in",
        "model call failed (",
        "[step 1] $ echo one",
        "| one",
        "[step 2] finish",
        "observing -> finished: the agent called finish",
    ):
        assert expected in result.stdout, expected
    assert_no_key(result)


def test_inspect_json_is_one_typed_document(runs: Cli) -> None:
    result = runs.run("inspect", "a", "--json")
    assert result.returncode == 0, result.stderr
    report = msgspec.json.decode(result.stdout, type=RunReport)
    assert (report.summary.state, report.summary.steps, report.message) == (
        "finished",
        2,
        "all done",
    )
    assert report.transitions[0].reason.startswith("sandbox ready in")
    assert report.transitions[-1].dest == "finished"
    observations = [e for e in report.events if isinstance(e, Observation)]
    assert observations[0].content.startswith("one\n")
    assert isinstance(report.events[-1], RunEnded)
    assert json.loads(result.stdout)["summary"]["run_id"] == "a"  # plain JSON too
    assert_no_key(result)


def test_reading_a_run_never_imports_litellm(runs: Cli) -> None:
    result = runs.run("inspect", "b", env={"PYTHONPROFILEIMPORTTIME": "1"}, fresh=True)
    assert result.returncode == 0
    assert "controller.cli.views" in result.stderr  # the import profile was printed
    assert "litellm" not in result.stderr


def test_unknown_run_is_one_line_and_exit_code_2(runs: Cli) -> None:
    result = runs.run("inspect", "nope")
    assert result.returncode == 2
    assert result.stdout == ""
    assert result.stderr.splitlines() == [
        f"runhands: error: no run named 'nope' in {runs.state_dir} (runhands list shows them)"
    ]


def test_a_corrupted_middle_line_names_file_and_line(runs: Cli, tmp_path: Path) -> None:
    cli, run_dir = copy_of_run(runs, tmp_path)
    log = run_dir / "events.jsonl"
    lines = log.read_bytes().splitlines(keepends=True)
    lines[4] = lines[4][:20] + b"\x00garbage\n"
    log.write_bytes(b"".join(lines))

    result = cli.run("inspect", "a")
    assert result.returncode == 2
    (line,) = result.stderr.splitlines()
    assert f"{log}:5: damaged event" in line
    # `list` reads only the (intact) snapshot: it still shows the run.
    listed = cli.run("list")
    assert listed.returncode == 0, listed.stderr
    assert "finished" in listed.stdout


def test_a_newer_schema_is_refused_with_a_clear_message(runs: Cli, tmp_path: Path) -> None:
    cli, run_dir = copy_of_run(runs, tmp_path)
    log = run_dir / "events.jsonl"
    header, rest = log.read_bytes().split(b"\n", 1)
    log.write_bytes(header.replace(b'"schema":1', b'"schema":99') + b"\n" + rest)

    result = cli.run("inspect", "a", "--json")
    assert result.returncode == 2
    assert result.stdout == ""
    assert result.stderr.splitlines() == [
        f"runhands: error: {log}: written by a newer runhands (schema 99, this one reads 1); "
        "upgrade runhands to read it"
    ]


def test_a_run_killed_before_its_snapshot_is_listed_from_its_events(
    runs: Cli, tmp_path: Path
) -> None:
    cli, run_dir = copy_of_run(runs, tmp_path)
    (run_dir / "snapshot.json").unlink()
    with open(run_dir / "events.jsonl", "ab") as f:
        f.write(b'{"kind":"transition","sou')  # torn by the kill

    listed = cli.run("list", "--json")
    decoded = (msgspec.json.decode(x, type=RunSummary) for x in listed.stdout.splitlines())
    by_id = {s.run_id: s for s in decoded}
    assert (by_id["a"].state, by_id["a"].reason, by_id["a"].steps) == ("finished", "finished", 2)
    result = cli.run("inspect", "a")
    assert result.returncode == 0, result.stderr
    assert "incomplete (25 bytes" in result.stdout


def test_an_empty_state_dir_lists_no_runs(tmp_path: Path) -> None:
    cli = Cli(tmp_path)
    result = cli.run("list")
    assert (result.returncode, result.stdout) == (0, f"no runs in {cli.state_dir}\n")
