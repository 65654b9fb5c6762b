"""Resume: leftovers of a killed run, SIGINT, limits, a finished run; one writer; damage.
(A crash at every write: test_crash_recovery.py.)"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

import pytest

from state_store.events import (
    ModelResponse,
    Observation,
    SandboxStarted,
    Transition,
    UserMessage,
)
from state_store.store import read_events, read_snapshot
from tests.conftest import Cli
from tests.scripted_model import Turn, bash, finish

pytestmark = pytest.mark.e2e

FILES = ("f1", "f2", "f3", "f4")


def files_policy(workspace: Path):
    """A model that creates f1..f4 one command at a time, then finishes: it looks at the
    workspace, so it carries on correctly wherever the previous process died."""

    def policy(body: dict) -> Turn:
        for name in FILES:
            if not (workspace / name).exists():
                turn = bash(f"sleep 0.15; echo {name} > {name}.tmp && mv {name}.tmp {name}")
                turn.delay = 0.1  # time for a kill to land during the model call
                return turn
        return finish("all files made")

    return policy


def start(cli: Cli, model, *args: str, env: dict | None = None) -> subprocess.Popen:
    full_env = {**cli.env, "LLM_BASE_URL": model.base_url, **(env or {})}
    return subprocess.Popen(
        [sys.executable, "-m", "controller", *args],
        cwd=cli.workspace,
        env=full_env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def kill_once_saved(proc: subprocess.Popen, log: Path, text: bytes) -> None:
    """SIGKILL the run once its log holds `text` (e.g. the action it is in the middle of)."""
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline and text not in (log.read_bytes() if log.exists() else b""):
        time.sleep(0.02)
    proc.kill()
    proc.wait()


def wait_for_lines(log: Path, count: int, proc: subprocess.Popen, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and proc.poll() is None:
        if log.exists() and log.read_bytes().count(b"\n") >= count:
            return
        time.sleep(0.005)


def assert_log_is_whole(run_dir: Path) -> list:
    events = read_events(run_dir / "events.jsonl")
    assert [e.seq for e in events] == list(range(1, len(events) + 1))  # no gap, no duplicate
    calls = [c.id for e in events if isinstance(e, ModelResponse) for c in e.tool_calls]
    observed = Counter(e.tool_call_id for e in events if isinstance(e, Observation))
    assert len(calls) == len(set(calls))
    assert all(observed[c] == 1 for c in calls), observed  # every call answered exactly once
    assert sum(observed.values()) == len(calls)
    return events


def running(pid: int) -> bool:
    """Alive, not a zombie: a killed orphan stays a zombie until pid 1 gets round to it."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()[0] not in ("Z", "X")
    except FileNotFoundError:
        return False


def test_leftover_processes_of_a_killed_run_are_stopped_on_resume(cli: Cli, scripted) -> None:
    # Unisolated: in bubblewrap the shell's pids are not the host's, and whatever it started
    # dies with the killed runhands anyway (tests/e2e/test_hostile_agent.py).
    cli.env["SANDBOX_ISOLATION"] = "none"
    turns = [bash("nohup sleep 1000 > /dev/null 2>&1 & echo $! > bg.pid"), bash("sleep 60")]
    model = scripted([*turns, finish()])
    proc = start(cli, model, "run", "-n", "bg", "-t", "x", env={"SANDBOX_SOFT_TIMEOUT": "120"})
    log = cli.state_dir / "bg" / "events.jsonl"
    kill_once_saved(proc, log, b'"sleep 60"')
    pid = int((cli.workspace / "bg.pid").read_text())
    os.kill(pid, 0)  # still running: the killed runhands could not clean up

    result = cli.run("resume", "bg", model=model)
    assert result.returncode == 0, result.stderr
    assert not running(pid), "the leftover was stopped"
    started = [e for e in read_events(log) if isinstance(e, SandboxStarted)]
    assert [e.stopped_leftovers for e in started] == [False, True]
    # The interrupted `sleep 60` is reported to the model, not silently re-run.
    last_request = model.requests[-1]["messages"]
    assert any("was interrupted" in m.get("content", "") for m in last_request)


def test_sigint_then_resume(cli: Cli, scripted) -> None:
    model = scripted(files_policy(cli.workspace))
    proc = start(cli, model, "run", "-n", "int", "-t", "make f1..f4")
    wait_for_lines(cli.state_dir / "int" / "events.jsonl", 12, proc)
    proc.send_signal(signal.SIGINT)
    _, stderr = proc.communicate(timeout=30)
    assert proc.returncode == 130, stderr
    assert "runhands resume int" in stderr
    assert read_snapshot(cli.state_dir / "int").reason == "interrupted"

    result = cli.run("resume", "int", model=model)
    assert result.returncode == 0, result.stderr
    assert_log_is_whole(cli.state_dir / "int")
    assert all((cli.workspace / name).exists() for name in FILES)


def test_limit_then_resume_with_a_higher_limit(cli: Cli, scripted) -> None:
    model = scripted(files_policy(cli.workspace))
    assert cli.run("run", "-n", "lim", "-i", "2", "-t", "make files", model=model).returncode == 3

    again = cli.run("resume", "lim", model=model)  # the saved limit still applies
    assert again.returncode == 2
    assert "runhands resume lim -i" in again.stderr

    result = cli.run("resume", "lim", "-i", "10", model=model)
    assert result.returncode == 0, result.stderr
    events = assert_log_is_whole(cli.state_dir / "lim")
    resumes = [e for e in events if isinstance(e, Transition) and e.trigger == "resume"]
    assert [(e.source, e.dest) for e in resumes] == [("errored", "init")]


def test_finished_run_continues_only_with_a_new_instruction(cli: Cli, scripted) -> None:
    model = scripted(
        [bash("echo one > one"), finish("one done"), bash("echo two > two"), finish("two done")]
    )
    assert cli.run("run", "-n", "fin", "-t", "make one", model=model).returncode == 0
    refused = cli.run("resume", "fin", model=model)
    assert refused.returncode == 2 and "new instruction" in refused.stderr

    result = cli.run("resume", "fin", "-t", "now also make two", model=model)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "two done"
    # Same conversation: the model sees the first task and its answer before the new one.
    contents = [m.get("content") for m in model.requests[-2]["messages"]]
    assert "make one" in contents and contents[-1] == "now also make two"
    events = assert_log_is_whole(cli.state_dir / "fin")
    assert [e.origin for e in events if isinstance(e, UserMessage)] == ["task", "instruction"]


def test_a_run_in_use_cannot_be_resumed(cli: Cli, scripted) -> None:
    model = scripted([bash("sleep 30"), finish()])
    proc = start(cli, model, "run", "-n", "busy", "-t", "x", env={"SANDBOX_SOFT_TIMEOUT": "60"})
    try:
        wait_for_lines(cli.state_dir / "busy" / "events.jsonl", 8, proc)
        result = cli.run("resume", "busy", model=model)
        assert result.returncode == 2
        assert "in use by another runhands process" in result.stderr
    finally:
        proc.kill()
        proc.wait()


def test_unknown_run(cli: Cli) -> None:
    result = cli.run("resume", "nope")
    assert result.returncode == 2 and "no run named 'nope'" in result.stderr


def test_torn_last_line_is_ignored_and_reported(cli: Cli, scripted) -> None:
    model = scripted(files_policy(cli.workspace))
    assert cli.run("run", "-n", "torn", "-i", "2", "-t", "x", model=model).returncode == 3
    log = cli.state_dir / "torn" / "events.jsonl"
    with open(log, "ab") as f:
        f.write(b'{"kind":"observation","step":3,"tool_ca')  # a crash mid-write
    result = cli.run("resume", "torn", "-i", "20", model=model)
    assert result.returncode == 0, result.stderr
    assert "torn last line" in result.stderr
    assert_log_is_whole(cli.state_dir / "torn")


def test_damaged_middle_line_is_an_error_and_the_file_is_untouched(cli: Cli, scripted) -> None:
    model = scripted(files_policy(cli.workspace))
    assert cli.run("run", "-n", "bad", "-i", "2", "-t", "x", model=model).returncode == 3
    log = cli.state_dir / "bad" / "events.jsonl"
    lines = log.read_bytes().splitlines(keepends=True)
    lines[4] = b'{"kind":"transition","seq":\n'
    log.write_bytes(b"".join(lines))
    before = log.read_bytes()
    result = cli.run("resume", "bad", "-i", "20", model=model)
    assert result.returncode == 2
    assert "events.jsonl:5" in result.stderr
    assert log.read_bytes() == before


def test_future_schema_is_refused(cli: Cli, scripted) -> None:
    model = scripted(files_policy(cli.workspace))
    assert cli.run("run", "-n", "new", "-i", "2", "-t", "x", model=model).returncode == 3
    log = cli.state_dir / "new" / "events.jsonl"
    log.write_bytes(log.read_bytes().replace(b'"schema":1', b'"schema":99', 1))
    result = cli.run("resume", "new", "-i", "20", model=model)
    assert result.returncode == 2 and "newer runhands" in result.stderr


def test_a_second_signal_stops_at_once_and_the_store_still_loads(cli: Cli, scripted) -> None:
    model = scripted(files_policy(cli.workspace))
    proc = start(cli, model, "run", "-n", "twice", "-t", "make f1..f4")
    wait_for_lines(cli.state_dir / "twice" / "events.jsonl", 10, proc)
    proc.send_signal(signal.SIGINT)
    proc.send_signal(signal.SIGINT)
    proc.communicate(timeout=30)
    assert proc.returncode == 130
    result = cli.run("resume", "twice", model=model)
    assert result.returncode == 0, result.stderr
    assert_log_is_whole(cli.state_dir / "twice")
