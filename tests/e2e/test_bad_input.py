"""Bad input: one clear line on stderr, exit code 2, nothing saved or overwritten."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time

import pytest

from state_store.events import UserMessage
from state_store.store import read_events, read_snapshot
from tests.conftest import Cli
from tests.scripted_model import bash, finish

pytestmark = pytest.mark.e2e


def assert_usage_error(result, *fragments: str) -> None:
    assert result.returncode == 2, (result.returncode, result.stderr)
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("runhands: error: ")
    for fragment in fragments:
        assert fragment in lines[0], lines[0]


def test_missing_model(cli: Cli) -> None:
    result = cli.run("run", "-t", "x", env={"LLM_MODEL": ""})
    assert_usage_error(result, "LLM_MODEL")
    assert cli.run_dirs() == []


def test_missing_key(cli: Cli) -> None:
    result = cli.run("run", "-t", "x", env={"LLM_API_KEY": "", "LLM_MODEL": "anthropic/claude"})
    assert_usage_error(result, "LLM_API_KEY")


def test_unknown_config_key_suggests_the_right_one(cli: Cli) -> None:
    (cli.workspace / "config.toml").write_text("[core]\nmax_iteration = 3\n")
    assert_usage_error(cli.run("run", "-t", "x"), "max_iteration", "max_iterations")


def test_bad_value_type_names_the_variable(cli: Cli) -> None:
    result = cli.run("run", "-t", "x", env={"MAX_ITERATIONS": "ten"})
    assert_usage_error(result, "MAX_ITERATIONS", "ten")


def test_malformed_config_file(cli: Cli) -> None:
    (cli.workspace / "config.toml").write_text("[llm\nmodel = 1\n")
    assert_usage_error(cli.run("run", "-t", "x"), "config.toml")


def test_unreadable_task_file(cli: Cli) -> None:
    assert_usage_error(cli.run("run", "-f", "missing.md"), "missing.md")


@pytest.mark.parametrize(
    ("name", "reason"),
    [
        ("/dev/zero", "not a regular file: a character device"),
        ("pipe", "not a regular file: a FIFO"),  # nobody writes to it: opening would block
        ("folder", "Is a directory"),
        ("huge.md", "larger than 1 MB"),
    ],
)
def test_a_task_file_that_never_ends_is_refused_at_once(cli: Cli, name: str, reason: str) -> None:
    os.mkfifo(cli.workspace / "pipe")
    (cli.workspace / "folder").mkdir()
    with open(cli.workspace / "huge.md", "wb") as f:
        f.truncate(1_000_001)  # sparse: one byte over the limit
    result = cli.run("run", "-f", name, timeout=60)
    assert_usage_error(result, f"cannot read task file {name}", reason)
    assert cli.run_dirs() == []


def test_a_task_on_stdin_is_bounded_too(cli: Cli) -> None:
    result = cli.run("run", stdin="x" * 1_000_001, timeout=60)
    assert_usage_error(result, "the task on stdin is larger than 1 MB")
    with open("/dev/zero", "rb") as zeros:
        proc = subprocess.run(
            [sys.executable, "-m", "controller", "run"],
            cwd=cli.workspace,
            env=cli.env,
            stdin=zeros,
            capture_output=True,
            text=True,
            timeout=60,
        )
    assert_usage_error(proc, "the task on stdin is larger than 1 MB")


def test_empty_task(cli: Cli) -> None:
    assert_usage_error(cli.run("run", "-t", "   "), "empty")


@pytest.mark.parametrize("name", ["../evil", "a/b", "..", ""])
def test_bad_run_name(cli: Cli, name: str) -> None:
    assert_usage_error(cli.run("run", "-n", name, "-t", "x"), "invalid run name")


def test_bad_sandbox_volumes(cli: Cli) -> None:
    result = cli.run("run", "-t", "x", env={"SANDBOX_VOLUMES": "relative/dir:/workspace:rw"})
    assert_usage_error(result, "relative/dir")


def test_an_existing_name_continues_that_run_never_overwrites_it(cli: Cli, scripted) -> None:
    """OpenHands restores a session given its name again (`-n`, State.restore_from_session)
    and goes on with the new task: so does runhands, as `resume NAME -t TASK` would."""
    model = scripted([bash("echo first"), finish("first"), finish("second")])
    assert cli.run("run", "-n", "mine", "-t", "first", model=model).returncode == 0
    before = read_events(cli.state_dir / "mine" / "events.jsonl")
    result = cli.run("run", "-n", "mine", "-t", "second", model=model)
    assert result.returncode == 0, result.stderr
    assert "run 'mine' exists: continuing it with this task" in result.stderr
    assert result.stdout.strip() == "second"
    after = read_events(cli.state_dir / "mine" / "events.jsonl")
    assert after[: len(before)] == before  # nothing saved was lost or rewritten
    said = [e.content for e in after if isinstance(e, UserMessage)]
    assert said == ["first", "second"]
    contents = [m.get("content") for m in model.requests[-1]["messages"]]
    assert "first" in contents and contents[-1] == "second"


def test_state_directory_not_writable(cli: Cli, tmp_path) -> None:
    if os.geteuid() == 0:
        # root writes anywhere: use a path under a regular file instead.
        blocked = tmp_path / "file"
        blocked.write_text("")
        state = blocked / "state"
    else:
        blocked = tmp_path / "ro"
        blocked.mkdir(mode=0o500)
        state = blocked / "state"
    result = cli.run("run", "--state-dir", str(state), "-t", "x")
    assert_usage_error(result, "state directory")


def test_sigint_stops_the_run_saved_with_exit_code_130(cli: Cli, scripted, tmp_path) -> None:
    model = scripted([bash("sleep 30"), finish()])
    env = {**os.environ, **cli.env, "LLM_BASE_URL": model.base_url, "SANDBOX_SOFT_TIMEOUT": "60"}
    proc = subprocess.Popen(
        [sys.executable, "-m", "controller", "run", "-n", "stopme", "-t", "sleep"],
        cwd=cli.workspace,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline and '"command":"sleep 30"' not in _peek(cli):
        time.sleep(0.1)
    proc.send_signal(signal.SIGINT)
    _, stderr = proc.communicate(timeout=30)
    assert proc.returncode == 130, stderr
    snapshot = read_snapshot(cli.state_dir / "stopme")
    assert snapshot.reason == "interrupted"
    assert snapshot.state == "acting"


def _peek(cli: Cli) -> str:
    log = cli.state_dir / "stopme" / "events.jsonl"
    return log.read_text() if log.exists() else ""


def test_a_symlink_loop_as_the_working_directory(cli: Cli, tmp_path) -> None:
    (tmp_path / "a").symlink_to(tmp_path / "b")
    (tmp_path / "b").symlink_to(tmp_path / "a")
    result = cli.run("run", "-d", str(tmp_path / "a"), "-t", "x")
    assert result.returncode == 2
    assert "symlink loop" in result.stderr and "Traceback" not in result.stderr
