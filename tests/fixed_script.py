"""A model that follows a fixed script by position, for crash tests.

Each answer carries its step number (`[s=N]`); a request gets the turn after the last
answer it shows, so a request repeated after a crash gets the same answer, and the model
never looks at the workspace: a lost, repeated or extra step shows in the outcome.
Requests without tools (condensation summaries) get a summary.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

from tests.scripted_model import Turn

Call = tuple[str, dict[str, Any]]
# A step: tool calls, or a text-only answer. "{workspace}" in a path is filled in.
Step = list[Call] | str

_MARK = re.compile(r"\[s=(\d+)\]")


def bash(command: str) -> Call:
    return ("execute_bash", {"command": command})


def edit(**args: Any) -> Call:
    return ("str_replace_editor", args)


def fixed_script(steps: list[Step], workspace: Path) -> Callable[[dict[str, Any]], Turn]:
    def policy(body: dict[str, Any]) -> Turn:
        if not body.get("tools"):
            return Turn(content="Summary: the earlier steps were carried out.")
        done = answers_shown(body["messages"])
        step = steps[done]
        if isinstance(step, str):
            return Turn(content=f"[s={done}] {step}")
        calls = [(name, _placed(args, str(workspace))) for name, args in step]
        return Turn(tool_calls=calls, content=f"[s={done}]")

    return policy


def answers_shown(messages: list[dict[str, Any]]) -> int:
    done = 0
    for message in messages:
        if message["role"] == "assistant":
            found = _MARK.search(message.get("content") or "")
            done = int(found.group(1)) + 1 if found else done
    return done


def _placed(args: dict[str, Any], workspace: str) -> dict[str, Any]:
    return {k: v.format(workspace=workspace) if k == "path" else v for k, v in args.items()}
