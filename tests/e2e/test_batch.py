"""`runhands batch` on this machine (threads of one process): twenty scripted tasks with
every outcome, side by side; killed with SIGKILL and run again; Ctrl-C; bad input."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest

from state_store.events import RunEnded, RunResumed, UserMessage
from state_store.store import read_events
from tests.batch_tasks import OUTCOMES, BatchModel, task_line, twenty_tasks, write_tasks
from tests.conftest import Cli
from tests.scripted_model import ScriptedModel

pytestmark = pytest.mark.e2e

FAST = ("--retry-wait", "0", "--isolation", "none")


def results(out: Path) -> list[dict[str, Any]]:
    path = out / "results.jsonl"
    if not path.exists():
        return []
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


def kinds(tasks: list[dict[str, Any]]) -> dict[str, str]:
    return {t["id"]: t["task"].split()[-1] for t in tasks}


def check_outcomes(out: Path, tasks: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    """Every task ended exactly once, as its kind says, in its own workspace only."""
    lines = results(out)
    ids = [r["id"] for r in lines]
    assert sorted(ids) == sorted(t["id"] for t in tasks), "each task ends exactly once"
    by_id = {r["id"]: r for r in lines}
    for task_id, kind in kinds(tasks).items():
        result = by_id[task_id]
        reason, code, steps = OUTCOMES[kind]
        assert (result["reason"], result["exit_code"]) == (reason, code), result
        assert result["steps"] == steps, result
        assert result["attempt"] == {"flaky": 2, "nosandbox": 3}.get(kind, 1), result
        if kind in ("steps", "flaky", "limit"):
            check_own_workspace(out, task_id, steps if kind != "limit" else 2, kind)
    return by_id


def check_own_workspace(out: Path, task_id: str, steps: int, kind: str) -> None:
    """steps.txt holds one line per bash step of this task, none lost, repeated or foreign;
    the shell saw this task's own variable and directory."""
    workspace = out / "workspaces" / task_id
    bash_steps = steps - 1 if kind != "limit" else steps
    expected = [f"{task_id}-{n}" for n in range(bash_steps)]
    assert (workspace / "steps.txt").read_text().split() == expected
    assert (workspace / "tag.txt").read_text().strip() == task_id


def check_own_log(out: Path, task_id: str, all_ids: list[str]) -> None:
    """The run's log holds its own task and commands, nobody else's."""
    events = read_events(out / "runs" / task_id / "events.jsonl")
    text = (out / "runs" / task_id / "events.jsonl").read_text()
    task = next(e for e in events if isinstance(e, UserMessage))
    assert task.content.startswith(f"task {task_id} kind")
    for other in all_ids:
        if other != task_id:
            assert f"task {other} " not in text and f"{other}-0" not in text


def test_twenty_tasks_eight_at_a_time(cli: Cli, tmp_path: Path) -> None:
    tasks = twenty_tasks()
    tasks_file = write_tasks(tmp_path / "tasks.jsonl", tasks)
    out = tmp_path / "out"
    model = BatchModel()
    with ScriptedModel(model) as server:
        result = cli.run("batch", str(tasks_file), "-o", str(out), "-w", "8", *FAST, model=server)
    # The task whose sandbox never starts is an infrastructure failure after its retries.
    assert result.returncode == 8, result.stderr
    check_outcomes(out, tasks)
    ids = [t["id"] for t in tasks]
    for task_id in ids:
        check_own_log(out, task_id, ids)
    # The flaky task was resumed, not started again: one run, two ends, a resume between.
    flaky = read_events(out / "runs" / "t18" / "events.jsonl")
    assert [e.reason for e in flaky if isinstance(e, RunEnded)] == ["provider", "finished"]
    assert any(isinstance(e, RunResumed) for e in flaky)
    summary = json.loads((out / "summary.json").read_text())
    assert summary["tasks"] == summary["ended"] == 20
    assert summary["by_reason"]["finished"]["tasks"] == 15
    assert summary["failed"] == 1 and summary["exit_code"] == 8
    assert "finished" in result.stderr and "20 of 20" in result.stderr
    # The runs are ordinary runs: the other commands work on them.
    listing = cli.run("list", "--json", "--state-dir", str(out / "runs"))
    assert len(listing.stdout.splitlines()) == 20
    shown = cli.run("diff", "t00", "--state-dir", str(out / "runs"))
    assert shown.returncode == 0 and "t00-1" in shown.stdout
    patch = cli.run("patch", "t00", "--state-dir", str(out / "runs"))
    assert (out / "patches" / "t00.patch").read_text() == patch.stdout

    # Again: nothing left to do, no model request, the same results.
    before = sum(model.requests.values())
    with ScriptedModel(model) as server:
        again = cli.run("batch", str(tasks_file), "-o", str(out), "-w", "8", *FAST, model=server)
    assert again.returncode == 8
    assert sum(model.requests.values()) == before
    assert len(results(out)) == 20

    # With more retries allowed, the infrastructure failure is tried again (resumed), and
    # its new ending is a later line; nothing else runs.
    with ScriptedModel(model) as server:
        more = cli.run(
            "batch", str(tasks_file), "-o", str(out), "--retries", "3", *FAST, model=server
        )
    assert more.returncode == 8
    assert sum(model.requests.values()) == before
    lines = results(out)
    assert len(lines) == 21 and lines[-1]["id"] == "t19" and lines[-1]["attempt"] == 4
    ends = [
        e for e in read_events(out / "runs" / "t19" / "events.jsonl") if isinstance(e, RunEnded)
    ]
    assert len(ends) == 4


def start_batch(cli: Cli, server: ScriptedModel, args: list[str]) -> subprocess.Popen[str]:
    env = {**cli.env, "LLM_BASE_URL": server.base_url}
    return subprocess.Popen(
        [sys.executable, "-m", "controller", "batch", *args],
        cwd=cli.workspace,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def wait_until(condition: Any, proc: subprocess.Popen[str], what: str) -> None:
    deadline = time.monotonic() + 120
    while not condition():
        assert proc.poll() is None, f"the batch ended before {what}: {proc.communicate()}"
        assert time.monotonic() < deadline, f"never saw {what}"
        time.sleep(0.05)


def test_killed_batch_goes_on_where_it_stopped(cli: Cli, tmp_path: Path) -> None:
    """SIGKILL with tasks ended, running and not started; the same command again: every
    task ends exactly once, the ended ones are not run again (their model requests do not
    grow), the cut ones resume (no step lost or repeated)."""
    tasks = [task_line(f"k{n:02d}", "steps") for n in range(12)]
    tasks_file = write_tasks(tmp_path / "tasks.jsonl", tasks)
    out = tmp_path / "out"
    model = BatchModel(delay=0.3)
    args = [str(tasks_file), "-o", str(out), "-w", "4", *FAST]
    with ScriptedModel(model) as server:
        proc = start_batch(cli, server, args)
        wait_until(lambda: len(results(out)) >= 3 and _running(out) >= 2, proc, "runs going")
        proc.kill()
        proc.communicate()
        ended_first = {r["id"] for r in results(out)}
        requests_then = dict(model.requests)
        cut = {t["id"] for t in tasks if (out / "runs" / t["id"]).exists()} - ended_first
        assert cut, "some runs were in progress when the batch was killed"
        model.delay = 0.0
        again = cli.run(*["batch", *args], model=server)
    assert again.returncode == 0, again.stderr
    by_id = check_outcomes(out, tasks)
    for task_id in ended_first:
        assert model.requests[task_id] == requests_then[task_id], "an ended task ran again"
    for task_id in cut:
        events = read_events(out / "runs" / task_id / "events.jsonl")
        assert any(isinstance(e, RunResumed) for e in events), f"{task_id} was not resumed"
        assert by_id[task_id]["attempt"] == 1  # a killed batch is not the task's failure


def _running(out: Path) -> int:
    """Runs whose log has a model answer but no end yet."""
    count = 0
    for log in (out / "runs").glob("*/events.jsonl"):
        text = log.read_text()
        if '"model_response"' in text and '"run_ended"' not in text:
            count += 1
    return count


def test_ctrl_c_saves_every_run_and_the_same_command_finishes(cli: Cli, tmp_path: Path) -> None:
    tasks = [task_line(f"c{n}", "steps") for n in range(6)]
    tasks_file = write_tasks(tmp_path / "tasks.jsonl", tasks)
    out = tmp_path / "out"
    model = BatchModel(delay=0.5)
    args = [str(tasks_file), "-o", str(out), "-w", "3", "--json", *FAST]
    with ScriptedModel(model) as server:
        proc = start_batch(cli, server, args)
        wait_until(lambda: _running(out) >= 2, proc, "two runs going")
        proc.send_signal(signal.SIGINT)
        stdout, stderr = proc.communicate(timeout=120)
        assert proc.returncode == 130, stderr
        stopped = {json.loads(line)["id"] for line in stdout.splitlines() if "task_stopped" in line}
        assert stopped, stdout
        for task_id in stopped:
            events = read_events(out / "runs" / task_id / "events.jsonl")
            assert isinstance(events[-1], RunEnded) and events[-1].reason == "interrupted"
        assert not stopped & {r["id"] for r in results(out)}
        summary = json.loads((out / "summary.json").read_text())
        assert summary["exit_code"] == 130 and summary["not_run"] == 6 - len(results(out))
        model.delay = 0.0
        again = cli.run("batch", *args, model=server)
    assert again.returncode == 0, again.stderr
    check_outcomes(out, tasks)


def test_workspace_repo_setup_and_eval(cli: Cli, tmp_path: Path) -> None:
    """A copied directory (the original untouched), a repository at a commit, an empty
    directory; setup runs before the agent, eval after, its verdict in the result."""
    source = tmp_path / "source"
    source.mkdir()
    (source / "seed.txt").write_text("seed\n")
    repo = tmp_path / "repo"
    repo.mkdir()
    git = ["git", "-C", str(repo), "-c", "user.name=t", "-c", "user.email=t@t"]
    subprocess.run(["git", "init", "-q", str(repo)], check=True)
    (repo / "v.txt").write_text("one\n")
    subprocess.run([*git, "add", "."], check=True)
    subprocess.run([*git, "commit", "-qm", "one"], check=True)
    first = subprocess.run([*git, "rev-parse", "HEAD"], capture_output=True, text=True).stdout
    (repo / "v.txt").write_text("two\n")
    subprocess.run([*git, "commit", "-qam", "two"], check=True)
    tasks = [
        task_line("copy", "steps", workspace="source", eval="test -f steps.txt && cat seed.txt"),
        task_line("repo", "steps", repo="repo", commit=first.strip(), eval="grep -q two v.txt"),
        task_line("empty", "steps", setup=["echo made-by-setup > setup.txt"]),
    ]
    tasks_file = write_tasks(tmp_path / "tasks.jsonl", tasks)
    out = tmp_path / "out"
    with ScriptedModel(BatchModel()) as server:
        result = cli.run("batch", str(tasks_file), "-o", str(out), *FAST, model=server)
    assert result.returncode == 0, result.stderr
    by_id = {r["id"]: r for r in results(out)}
    assert by_id["copy"]["eval"]["exit_code"] == 0
    assert "seed" in by_id["copy"]["eval"]["output_tail"]
    assert not (source / "steps.txt").exists()
    assert (out / "workspaces" / "repo" / "v.txt").read_text() == "one\n"
    assert by_id["repo"]["eval"]["exit_code"] == 1  # checked out at the first commit
    assert (out / "workspaces" / "empty" / "setup.txt").read_text() == "made-by-setup\n"
    assert by_id["empty"]["eval"] is None
    assert "eval passed: 1" in result.stderr


def test_a_workspace_that_cannot_be_made_is_retried_then_a_result(cli: Cli, tmp_path: Path) -> None:
    repo = tmp_path / "repo"
    subprocess.run(["git", "init", "-q", str(repo)], check=True)
    tasks = [task_line("w", "steps", repo="repo", commit="0" * 40), task_line("ok", "steps")]
    tasks_file = write_tasks(tmp_path / "tasks.jsonl", tasks)
    out = tmp_path / "out"
    model = BatchModel()
    with ScriptedModel(model) as server:
        result = cli.run("batch", str(tasks_file), "-o", str(out), *FAST, model=server)
    assert result.returncode == 8
    by_id = {r["id"]: r for r in results(out)}
    assert by_id["w"]["reason"] == "workspace" and by_id["w"]["attempt"] == 3
    assert "the workspace could not be made" in by_id["w"]["message"]
    assert by_id["ok"]["reason"] == "finished"
    assert "w" not in model.requests and not (out / "runs" / "w").exists()


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ('{"id": "a", "task": "x"}\n{"id": "a", "task": "y"}\n', "tasks.jsonl:2: duplicate id"),
        ('{"id": "a", "task": "x", "colour": "red"}\n', "tasks.jsonl:1: Object contains unknown"),
        ('{"id": "a b", "task": "x"}\n', "tasks.jsonl:1: bad id"),
        ('{"id": "a", "task": "x"}\nnot json\n', "tasks.jsonl:2: not a JSON object"),
        ('{"id": "a", "task": "x", "workspace": "nowhere"}\n', "workspace nowhere does not"),
        ('{"id": "a", "task": "x", "config": {"core": {"max_iterations": "x"}}}\n', "config:"),
        ("\n\n", "no tasks"),
    ],
)
def test_bad_tasks_file_is_one_line_and_exit_2(
    cli: Cli, tmp_path: Path, content: str, message: str
) -> None:
    tasks_file = tmp_path / "tasks.jsonl"
    tasks_file.write_text(content)
    out = tmp_path / "out"
    result = cli.run("batch", str(tasks_file), "-o", str(out))
    assert result.returncode == 2
    assert message in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1, result.stderr
    assert not out.exists(), "nothing may run"


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--format", "csv"], "invalid choice: 'csv'"),
        (["-w", "0"], "-w/--workers must be at least 1"),
        (["-d", "somewhere"], "-d/--directory is not used by batch"),
        (["missing.jsonl"], "cannot read tasks file missing.jsonl"),
    ],
)
def test_bad_flags_exit_2(cli: Cli, tmp_path: Path, args: list[str], message: str) -> None:
    tasks_file = write_tasks(tmp_path / "tasks.jsonl", [task_line("a", "steps")])
    positional = [] if args[0].endswith(".jsonl") else [str(tasks_file)]
    result = cli.run("batch", *positional, *args, "-o", str(tmp_path / "out"))
    assert result.returncode == 2
    assert message in result.stderr
    assert not (tmp_path / "out").exists()


def test_results_file_torn_line_is_dropped(cli: Cli, tmp_path: Path) -> None:
    """A batch killed while writing a result: the torn line is not a result, the task runs."""
    tasks = [task_line("a", "steps"), task_line("b", "steps")]
    tasks_file = write_tasks(tmp_path / "tasks.jsonl", tasks)
    out = tmp_path / "out"
    out.mkdir()
    (out / "results.jsonl").write_text('{"id": "b", "run_id": "b", "sta')
    with ScriptedModel(BatchModel()) as server:
        result = cli.run("batch", str(tasks_file), "-o", str(out), *FAST, model=server)
    assert result.returncode == 0, result.stderr
    check_outcomes(out, tasks)
    assert os.path.getsize(out / "results.jsonl") > 0
