"""What the model receives from execute_bash, through the real CLI: OpenHands' words.

Ports the sequence of OpenHands tests/runtime/test_bash.py::test_bash_server and
test_stress_long_output_with_soft_and_hard_timeout (a hard timeout leaves the command
running, a new command is refused, C-c stops it) and test_empty_command_errors.
"""

from __future__ import annotations

import json
from typing import Any

import pytest

from state_store.events import Observation
from tests.conftest import Cli
from tests.e2e.test_run import events_of
from tests.scripted_model import bash, finish

pytestmark = pytest.mark.e2e

# openhands/runtime/utils/bash_constants.py TIMEOUT_MESSAGE_TEMPLATE
TEMPLATE = (
    "You may wait longer to see additional output by sending empty command '', send other "
    'commands to interact with the current process, send keys ("C-c", "C-z", "C-d") to '
    "interrupt/kill the previous command before sending your new command, or use the "
    "timeout parameter in execute_bash for future commands."
)


def test_the_model_gets_openhands_command_observations(cli: Cli, scripted) -> None:
    model = scripted(
        [
            bash("echo start; sleep 60", timeout=1),
            bash("ls"),
            bash("C-c", is_input="true"),
            bash(""),
            bash("echo done"),
            finish(),
        ]
    )
    result = cli.run("run", "-t", "task", model=model)
    assert result.returncode == 0, result.stderr
    seen = [request["messages"][-1]["content"] for request in model.requests[1:]]
    assert seen[0] == f"start\n[The command timed out after 1.0 seconds. {TEMPLATE}]"
    assert seen[1] == (
        "[Below is the output of the previous command.]\n\n"
        '[Your command "ls" is NOT executed. The previous command is still running - You '
        "CANNOT send new commands until the previous command is completed. By setting "
        f"`is_input` to `true`, you can interact with the current process: {TEMPLATE}]"
    )
    workdir = f"[Current working directory: {cli.workspace.resolve()}]"
    # The model is sent the metadata lines once, and again only when they change; not
    # `[Command finished with exit code N]`, which repeats the line before it
    # (controller/agent/lean_view.py).
    lines = seen[2].split("\n")
    assert lines[:2] == ["[The command completed with exit code 130. CTRL+C was sent.]", workdir]
    # (the interpreter line only where the sandbox has a `python`)
    assert all(line.startswith("[Python interpreter: ") for line in lines[2:])
    assert len(lines) <= 3
    assert seen[3] == "ERROR: No previous running command to retrieve logs from."
    assert seen[4] == "done\n[The command completed with exit code 0.]"
    # The run's log keeps OpenHands' whole text (trajectories, replay).
    saved = [e.content for e in events_of(cli) if isinstance(e, Observation)]
    assert saved[2].startswith(seen[2] + "\n") and saved[2].endswith(
        "\n[Command finished with exit code 130]"
    )
    assert saved[4].split("\n")[:3] == [
        "done",
        "[The command completed with exit code 0.]",
        workdir,
    ]
    assert saved[4].endswith("\n[Command finished with exit code 0]")


def _run_pair(
    ident: int, command: str, content: str, metadata: dict[str, Any], **args: Any
) -> list[dict[str, Any]]:
    action = {
        "id": ident,
        "source": "agent",
        "action": "run",
        "args": {"command": command, "is_input": False, "blocking": False, **args},
        "tool_call_metadata": {"function_name": "execute_bash", "tool_call_id": f"t{ident}"},
    }
    observation = {
        "id": ident + 1,
        "source": "agent",
        "cause": ident,
        "observation": "run",
        "content": content,
        "extras": {"command": command, "metadata": {"pid": 1, **metadata}, "hidden": False},
    }
    return [action, observation]


def test_an_openhands_trajectory_replays_without_divergence_on_wording(cli: Cli) -> None:
    """Observations as OpenHands records them (tests/runtime/trajs/basic_gui_mode.json: its
    older timeout template, its interpreter path) replay against ours without divergence."""
    older_template = (
        "You may wait longer to see additional output by sending empty command '', send "
        "other commands to interact with the current process, or send keys to "
        "interrupt/kill the command."
    )
    done = {"working_dir": "/workspace", "py_interpreter_path": "/openhands/poetry/bin/python"}
    events = [
        {"id": 0, "source": "user", "action": "message", "args": {"content": "t"}},
        *_run_pair(
            1,
            "echo hi",
            "hi",
            {**done, "exit_code": 0, "suffix": "\n[The command completed with exit code 0.]"},
        ),
        *_run_pair(
            3,
            "read x",
            "",
            {
                "exit_code": -1,
                "suffix": f"\n[The command has no new output after 30 seconds. {older_template}]",
            },
        ),
        *_run_pair(
            5,
            "C-c",
            "",
            {
                **done,
                "exit_code": 130,
                "suffix": "\n[The command completed with exit code 130. CTRL+C was sent.]",
            },
            is_input=True,
        ),
        {"id": 7, "source": "agent", "action": "finish", "args": {"outputs": {}}},
    ]
    path = cli.workspace / "openhands.json"
    path.write_text(json.dumps(events))
    replay_dir = cli.workspace.parent / "fresh"
    replay_dir.mkdir()
    env = {"SANDBOX_SOFT_TIMEOUT": "1"}
    result = cli.run("replay", str(path), "-d", str(replay_dir), env=env)
    assert result.returncode == 0, result.stderr
    assert "replay matched: 4/4" in result.stderr
