"""What the model receives for a malformed tool call and for an editor error, end to end
through the real CLI: OpenHands' words (docs/parity/tool-contract.md §2, §6), taken from the
saved events so a resumed or replayed run shows the same text."""

from __future__ import annotations

import pytest

from state_store.events import Observation
from state_store.store import read_events
from tests.conftest import Cli
from tests.scripted_model import Turn, bash, edit, finish

pytestmark = pytest.mark.e2e

SUFFIX = "\n[Error occurred in processing last action]"


METADATA = ("[Current working directory: ", "[Python interpreter: ", "[Command finished with")


def _tool_replies(request: dict) -> dict[str, str]:
    return {m["tool_call_id"]: m["content"] for m in request["messages"] if m["role"] == "tool"}


def test_the_model_gets_openhands_words_for_bad_calls_and_editor_errors(cli: Cli, scripted) -> None:
    path = cli.workspace / "a.txt"
    path.write_text("Line 1\nLine 2\nLine 3")
    malformed = Turn(
        tool_calls=[
            ("execute_bash", "invalid json"),
            ("execute_bash", {"is_input": "false"}),
            ("browser", {"code": "goto('http://x')"}),
            (
                "str_replace_editor",
                {
                    "command": "str_replace",
                    "path": str(path),
                    "old_str": "a",
                    "old_str_prefix": "b",
                },
            ),
            ("execute_bash", {"command": "echo fine", "security_risk": "LOW"}),
        ]
    )
    model = scripted(
        [
            malformed,
            edit("str_replace", str(path), old_str="", new_str="x", security_risk="LOW"),
            edit("view", "a.txt"),
            bash("echo done", is_input="false"),
            finish(),
        ]
    )
    result = cli.run("run", "-t", "task", model=model)
    assert result.returncode == 0, result.stderr

    first = list(_tool_replies(model.requests[1]).values())
    assert first[:4] == [
        "Failed to parse tool call arguments: invalid json" + SUFFIX,
        'Missing required argument "command" in tool call execute_bash' + SUFFIX,
        "Tool browser is not registered. (arguments: {'code': \"goto('http://x')\"}). Please "
        "check the tool name and retry with an existing tool." + SUFFIX,
        "Unexpected argument old_str_prefix in tool call str_replace_editor. Allowed arguments "
        "are: {'command', 'path', 'file_text', 'old_str', 'new_str', 'insert_line', "
        "'view_range', 'security_risk'}" + SUFFIX,
    ]
    assert first[4].startswith("fine\n")
    # The valid sibling call ran; the assistant turn with all five calls is kept.
    assistant = [m for m in model.requests[1]["messages"] if m["role"] == "assistant"]
    assert len(assistant[-1]["tool_calls"]) == 5

    # Each result as the model first saw it (older ones are later sent as stand-ins).
    fresh: dict[str, str] = {}
    for request in model.requests:
        fresh = _tool_replies(request) | fresh
    replies = list(fresh.values())
    # An editor error is an ordinary result (OpenHands' FileEditObservation): no suffix.
    assert replies[5] == (
        "ERROR:\nNo replacement was performed. Multiple occurrences of old_str `` in lines "
        "[1, 2, 3]. Please ensure it is unique."
    )
    assert replies[6] == (
        "ERROR:\nInvalid `path` parameter: a.txt. The path should be an absolute path, starting "
        f"with `/`. Maybe you meant {path}?"
    )
    assert path.read_text() == "Line 1\nLine 2\nLine 3"

    # What the model was shown is what the log holds (resume and replay rebuild it from
    # there), less the metadata lines a command result repeats (controller/agent/lean_view.py).
    (run_dir,) = cli.run_dirs()
    saved = [e.content for e in read_events(run_dir / "events.jsonl") if isinstance(e, Observation)]
    assert len(saved) >= len(replies)
    for kept, shown in zip(saved, replies, strict=False):
        left_out = kept.removeprefix(shown).split("\n")
        assert kept.startswith(shown) and left_out[0] == ""
        assert all(line.startswith(METADATA) for line in left_out[1:]), left_out
