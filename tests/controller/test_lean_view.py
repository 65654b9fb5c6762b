"""The history as the model is sent it: repeated metadata lines and old outputs left out."""

from __future__ import annotations

import copy

from controller.agent.lean_view import model_view
from controller.config import CondenserConfig
from controller.trajectory.command_text import exit_line, join_command_text

CWD = "[Current working directory: /w]"
PY = "[Python interpreter: /usr/bin/python]"


def command(output: str, code: int = 0, cwd: str = "/w") -> str:
    """A completed command's text as the log holds it (OpenHands' whole form)."""
    return join_command_text(
        output, exit_line(code), cwd=cwd, python="/usr/bin/python", exit_code=code
    )


def history(*results: str) -> list[dict]:
    messages: list[dict] = [{"role": "system", "content": "sys"}, {"role": "user", "content": "t"}]
    for n, content in enumerate(results):
        call = {"id": f"c{n}", "type": "function", "function": {"name": "x", "arguments": "{}"}}
        messages.append({"role": "assistant", "content": "", "tool_calls": [call]})
        messages.append({"role": "tool", "tool_call_id": f"c{n}", "content": content})
    return messages


def sent(messages: list[dict], keep: int = 0) -> list[str]:
    return [m["content"] for m in model_view(messages, keep) if m["role"] == "tool"]


def test_metadata_lines_are_sent_once_and_again_when_they_change() -> None:
    messages = history(command("a"), command("b", 1), command("c", cwd="/w/sub"), command("d"))
    assert sent(messages) == [
        f"a\n[The command completed with exit code 0.]\n{CWD}\n{PY}",
        "b\n[The command completed with exit code 1.]",
        "c\n[The command completed with exit code 0.]\n[Current working directory: /w/sub]\n" + PY,
        f"d\n[The command completed with exit code 0.]\n{CWD}\n{PY}",
    ]


def test_results_that_are_not_completed_commands_are_sent_as_recorded() -> None:
    running = "start\n[The command timed out after 1.0 seconds. You may wait longer.]"
    editor = "ERROR:\nInvalid `path` parameter: a.txt."
    older = "out\n[Command finished with exit code 2]"  # a trajectory without the exit line
    assert sent(history(running, editor, older)) == [running, editor, older]


def test_old_outputs_become_stand_ins_keeping_the_exit_code() -> None:
    long_output = "\n".join(f"line {n} of a long listing" for n in range(12))
    view = "Here's the result of running `cat -n` on /w/a.py:\n" + "\n".join(
        f"{n:6}\tx = {n}" for n in range(1, 20)
    )
    messages = history(command(long_output, 3), view, command("ok"), command(long_output))
    assert sent(messages, keep=2) == [
        f"[Old output omitted (12 lines); exit code 3]\n{CWD}\n{PY}",
        "[Old output omitted (20 lines)]",
        "ok\n[The command completed with exit code 0.]",  # short: costs what a stand-in would
        long_output + "\n[The command completed with exit code 0.]",
    ]
    assert sent(messages, keep=0)[0].startswith(long_output)


def test_the_view_changes_only_where_an_output_leaves_the_window() -> None:
    """A provider's prompt cache holds what is byte-identical from the start: from one
    request to the next only the result leaving the window changes, then new messages."""
    outputs = [command("\n".join(f"{k}:{n}" * 30 for n in range(5))) for k in range(8)]
    before = model_view(history(*outputs[:7]), 3)
    after = model_view(history(*outputs), 3)
    changed = [i for i, (a, b) in enumerate(zip(before, after, strict=False)) if a != b]
    assert changed == [len(before) - 2 * 3 + 1]  # the oldest of the 3 `before` kept whole
    assert after[: changed[0]] == before[: changed[0]]


def test_the_recorded_messages_are_left_untouched() -> None:
    messages = history(command("x" * 500), command("y" * 500))
    kept = copy.deepcopy(messages)
    model_view(messages, 1)
    assert messages == kept


def test_how_many_outputs_are_kept_follows_the_condenser_config() -> None:
    assert CondenserConfig().outputs_kept() == 5
    assert CondenserConfig(keep_outputs=0).outputs_kept() == 0
    assert CondenserConfig(type="noop", keep_outputs=3).outputs_kept() == 0
    # OpenHands' observation_masking counts events: an action and its result each.
    masking = CondenserConfig(type="observation_masking", attention_window=20)
    assert masking.outputs_kept() == 10
