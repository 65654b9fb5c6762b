"""What the model receives from execute_bash, through the real CLI: OpenHands' words.

Ports the sequence of OpenHands tests/runtime/test_bash.py::test_bash_server and
test_stress_long_output_with_soft_and_hard_timeout (a hard timeout leaves the command
running, a new command is refused, C-c stops it) and test_empty_command_errors.
"""

from __future__ import annotations

import pytest

from tests.conftest import Cli
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
    assert seen[2].startswith(
        f"[The command completed with exit code 130. CTRL+C was sent.]\n{workdir}\n"
    )
    assert seen[2].endswith("\n[Command finished with exit code 130]")
    assert seen[3] == "ERROR: No previous running command to retrieve logs from."
    lines = seen[4].split("\n")
    assert lines[:3] == ["done", "[The command completed with exit code 0.]", workdir]
    assert lines[-1] == "[Command finished with exit code 0]"
