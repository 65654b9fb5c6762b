"""`runhands run` end to end: the real CLI in a subprocess, a scripted model on loopback."""

from __future__ import annotations

import json
import stat
import subprocess

import msgspec
import pytest

from state_store.events import AnyEvent, ModelResponse, Observation, RunEnded, Transition
from state_store.store import read_events, read_snapshot
from tests.conftest import TEST_API_KEY, Cli
from tests.scripted_model import bash, edit, error, finish, raw_call, text

pytestmark = pytest.mark.e2e

HI_SCRIPT = "cat > hi.sh <<'EOF'\n#!/usr/bin/env bash\necho hi\nEOF\nchmod +x hi.sh"


def events_of(cli: Cli) -> list[AnyEvent]:
    (run_dir,) = cli.run_dirs()
    return read_events(run_dir / "events.jsonl")


def test_seed_task_writes_a_script_that_prints_hi(cli: Cli, scripted) -> None:
    model = scripted([bash(HI_SCRIPT), bash("./hi.sh"), finish("hi.sh prints hi")])
    result = cli.run("run", "-t", "write a bash script that prints hi", model=model)

    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "hi.sh prints hi"
    script = cli.workspace / "hi.sh"
    assert subprocess.run([str(script)], capture_output=True, text=True).stdout == "hi\n"
    # The model saw the script's output and the exit code of each command.
    last_tool_message = model.requests[2]["messages"][-1]
    assert last_tool_message["role"] == "tool"
    assert last_tool_message["content"].startswith("hi\n")
    assert "[The command completed with exit code 0.]" in last_tool_message["content"]
    assert "$ ./hi.sh" in result.stderr  # progress on stderr


def test_the_run_is_saved_step_by_step_with_its_transitions(cli: Cli, scripted) -> None:
    model = scripted([bash("echo one"), finish()])
    result = cli.run("run", "-n", "saved", "-t", "say one", model=model)
    assert result.returncode == 0, result.stderr

    run_dir = cli.state_dir / "saved"
    events = read_events(run_dir / "events.jsonl")
    assert [e.seq for e in events] == list(range(1, len(events) + 1))
    moves = [(e.source, e.dest) for e in events if isinstance(e, Transition)]
    assert moves == [
        ("init", "planning"),
        ("planning", "acting"),
        ("acting", "observing"),
        ("observing", "planning"),
        ("planning", "acting"),
        ("acting", "observing"),
        ("observing", "finished"),
    ]
    assert all(e.reason for e in events if isinstance(e, Transition))
    snapshot = read_snapshot(run_dir)
    assert (snapshot.state, snapshot.reason, snapshot.counters.steps) == ("finished", "finished", 2)
    assert snapshot.last_seq == events[-1].seq
    assert stat.S_IMODE(run_dir.stat().st_mode) == 0o700
    for path in run_dir.iterdir():  # (checkpoints/ is a directory: nobody else enters it)
        assert stat.S_IMODE(path.stat().st_mode) == (0o700 if path.is_dir() else 0o600), path


def test_multi_step_edit_task(cli: Cli, scripted) -> None:
    path = str(cli.workspace / "calc.py")
    model = scripted(
        [
            edit("create", path, file_text="def add(a, b):\n    return a - b\n"),
            bash("python3 -c 'import calc; print(calc.add(2, 3))'"),
            edit("str_replace", path, old_str="return a - b", new_str="return b + a  # fixed"),
            edit("view", path),
            bash("python3 -c 'import calc; print(calc.add(2, 3))'"),
            finish("fixed add"),
        ]
    )
    result = cli.run("run", "-t", "create calc.py with add() and check it", model=model)
    assert result.returncode == 0, result.stderr
    assert (cli.workspace / "calc.py").read_text() == "def add(a, b):\n    return b + a  # fixed\n"
    observations = [e for e in events_of(cli) if isinstance(e, Observation)]
    assert observations[1].content.startswith("-1\n")
    assert "return b + a  # fixed" in observations[3].content
    assert observations[4].content.startswith("5\n")


def test_json_output_is_one_event_per_line_ending_with_the_result(cli: Cli, scripted) -> None:
    model = scripted([bash("echo hi"), finish("ok")])
    result = cli.run("run", "--json", "-t", "say hi", model=model)
    assert result.returncode == 0, result.stderr
    decoder = msgspec.json.Decoder(AnyEvent)
    events = [decoder.decode(line) for line in result.stdout.splitlines()]
    final = events[-1]
    assert isinstance(final, RunEnded)
    assert (final.state, final.reason, final.steps, final.exit_code) == (
        "finished",
        "finished",
        2,
        0,
    )
    assert final.prompt_tokens == 200 and final.completion_tokens == 40
    assert json.loads(result.stdout.splitlines()[-1])["run_id"] == final.run_id


def test_task_from_file_and_from_stdin(cli: Cli, scripted) -> None:
    (cli.workspace / "task.md").write_text("make a file named from-file\n")
    model = scripted([bash("touch from-file"), finish()])
    assert cli.run("run", "-f", "task.md", "-t", "ignored", model=model).returncode == 0
    assert model.requests[0]["messages"][1]["content"] == "make a file named from-file"

    model = scripted([bash("touch from-stdin"), finish()])
    assert cli.run("run", model=model, stdin="make a file from stdin").returncode == 0
    assert (cli.workspace / "from-stdin").exists()


def test_openhands_style_command_line_without_subcommand(cli: Cli, scripted) -> None:
    model = scripted([bash("touch made"), finish()])
    result = cli.run("-t", "make a file", "-d", str(cli.workspace), model=model)
    assert result.returncode == 0, result.stderr
    assert (cli.workspace / "made").exists()


def test_iteration_limit_ends_with_exit_code_3(cli: Cli, scripted) -> None:
    model = scripted([bash("echo 1"), bash("echo 2"), bash("echo 3")])
    result = cli.run("run", "-i", "2", "-t", "loop", model=model)
    assert result.returncode == 3, result.stderr
    assert "iteration limit" in result.stderr
    assert len(model.requests) == 2
    assert read_snapshot(cli.run_dirs()[0]).reason == "limit"


def test_budget_limit_ends_with_exit_code_3(cli: Cli, scripted) -> None:
    model = scripted([bash("echo 1"), bash("echo 2"), bash("echo 3")])
    # 100 prompt tokens at $0.001 = $0.10 per step.
    env = {"LLM_INPUT_COST_PER_TOKEN": "0.001", "LLM_OUTPUT_COST_PER_TOKEN": "0"}
    result = cli.run("run", "-b", "0.15", "-t", "loop", model=model, env=env)
    assert result.returncode == 3, result.stderr
    assert "budget" in result.stderr
    assert len(model.requests) == 2


def test_text_answers_get_a_continue_reply_then_the_run_ends(cli: Cli, scripted) -> None:
    model = scripted([text("I will do it."), text("Should I?"), text("Done?")])
    result = cli.run("run", "-t", "task", model=model)
    assert result.returncode == 1, result.stderr
    assert "without calling a tool" in result.stderr
    second = model.requests[1]["messages"]
    assert second[-1]["role"] == "user" and "never ask for human" in second[-1]["content"]


def test_a_text_answer_then_a_tool_call_recovers(cli: Cli, scripted) -> None:
    model = scripted([text("Let me think."), bash("echo ok"), finish()])
    assert cli.run("run", "-t", "task", model=model).returncode == 0


def test_malformed_tool_calls_are_reported_to_the_model(cli: Cli, scripted) -> None:
    model = scripted(
        [
            raw_call("execute_bash", "{not json"),
            raw_call("run_shell", '{"command": "ls"}'),
            raw_call("str_replace_editor", '{"path": "/x"}'),
            bash("echo recovered"),
            finish(),
        ]
    )
    result = cli.run("run", "-t", "task", model=model)
    assert result.returncode == 1, result.stderr  # three malformed answers in a row
    assert "malformed" in result.stderr
    errors = [m["content"] for m in model.requests[2]["messages"] if m["role"] == "tool"]
    assert errors[0] == (
        "Failed to parse tool call arguments: {not json\n[Error occurred in processing last action]"
    )
    assert errors[1].startswith("Tool run_shell is not registered.")


def test_one_malformed_call_is_corrected_by_the_model(cli: Cli, scripted) -> None:
    model = scripted([raw_call("execute_bash", "{oops"), bash("echo fixed"), finish()])
    assert cli.run("run", "-t", "task", model=model).returncode == 0


def test_provider_errors_are_retried_then_succeed(cli: Cli, scripted) -> None:
    model = scripted([error(429), error(503), bash("echo ok"), finish()])
    result = cli.run("run", "-t", "task", model=model)
    assert result.returncode == 0, result.stderr
    assert result.stderr.count("retry") >= 2


def test_refused_connection_retries_then_errors_with_exit_code_5(cli: Cli) -> None:
    env = {"LLM_BASE_URL": "http://127.0.0.1:9/v1"}  # discard port: nothing listens
    result = cli.run("run", "-t", "task", env=env)
    assert result.returncode == 5, result.stderr
    assert "model provider error" in result.stderr
    assert result.stderr.count("retry") == 2


def test_authentication_error_is_not_retried(cli: Cli, scripted) -> None:
    model = scripted([error(401), finish()])
    result = cli.run("run", "-t", "task", model=model)
    assert result.returncode == 5, result.stderr
    assert len(model.requests) == 1


def test_the_api_key_never_reaches_disk_output_or_the_sandbox(cli: Cli, scripted) -> None:
    model = scripted([bash("env; echo key=$LLM_API_KEY"), finish()])
    result = cli.run("run", "--json", "-t", "print the environment", model=model)
    assert result.returncode == 0, result.stderr
    assert TEST_API_KEY not in result.stdout + result.stderr
    assert TEST_API_KEY.encode() not in cli.saved_bytes()
    assert "key=\n" in model.requests[1]["messages"][-1]["content"]


def test_workspace_mount_in_sandbox_volumes_is_the_working_directory(cli: Cli, scripted) -> None:
    project = cli.workspace.parent / "project"
    project.mkdir()
    model = scripted([bash("pwd > where.txt"), finish()])
    env = {"SANDBOX_VOLUMES": f"{project}:/workspace:rw,{cli.home}:/data:ro"}
    result = cli.run("run", "-t", "note where you are", model=model, env=env)
    assert result.returncode == 0, result.stderr
    assert (project / "where.txt").read_text().strip() == str(project)
    assert str(project) in model.requests[0]["messages"][0]["content"]  # the system prompt


def test_a_user_exit_finishes_the_run_without_a_model_call(cli: Cli, scripted) -> None:
    """OpenHands' CodeActAgent.step answers a latest user message `/exit` with a finish and
    no LLM call (how `main.py` ends a run waiting for input); a task or `resume -t`."""
    model = scripted([bash("echo one"), bash("echo two"), finish("unused")])
    stopped = cli.run("run", "-n", "x", "-i", "1", "-t", "work", model=model)
    assert stopped.returncode == 3, stopped.stderr  # the step limit
    asked = len(model.requests)
    result = cli.run("resume", "x", "-i", "10", "-t", "/exit", model=model)
    assert result.returncode == 0, result.stderr
    assert len(model.requests) == asked  # no model call
    events = read_events(cli.state_dir / "x" / "events.jsonl")
    answer = [e for e in events if isinstance(e, ModelResponse)][-1]
    assert answer.model == "/exit" and [c.name for c in answer.tool_calls] == ["finish"]
    assert isinstance(events[-1], RunEnded) and events[-1].reason == "finished"

    direct = cli.run("run", "-n", "y", "-t", " /exit ", model=scripted([]))
    assert direct.returncode == 0, direct.stderr
