"""What the model is sent: the recorded history, leaner where the model loses nothing.

Every request re-sends the whole history, so its size is the user's bill. The events keep
OpenHands' full observation text (trajectories, replay, `inspect`); the view sent leaves out:

- metadata lines a command result repeats: the working directory and the python interpreter
  while unchanged since the last result that showed them, and `[Command finished with exit
  code N]` after `[The command completed with exit code N.]` (the same fact twice);
- the output of old tool results: past the `keep_outputs` most recent, a result longer than
  its stand-in becomes one line saying how many lines were left out and, for a command,
  its exit code (SWE-agent's default `last_n_observations`, OpenHands'
  `observation_masking`). Only the result that leaves the window changes from one request
  to the next, and it is recent: a provider's prompt cache still holds everything before it.

The view is a function of the messages alone: resume and replay send the same bytes.
"""

from __future__ import annotations

from collections.abc import Sequence

from controller.agent.history import Message
from controller.trajectory.command_text import completed_line, join_command_text, metadata_tail

# The system prompt says what to do about them (controller/agent/prompts.py).
OMITTED = "[Old output omitted ({lines} lines)]"
OMITTED_COMMAND = "[Old output omitted ({lines} lines); exit code {code}]"
_MIN_MASKED_CHARS = 80  # shorter results cost about what their stand-in would


def model_view(messages: Sequence[Message], keep_outputs: int) -> list[Message]:
    """The messages as sent to the model (see the module's docstring); 0 keeps all outputs."""
    results = [i for i, m in enumerate(messages) if m.get("role") == "tool"]
    masked = set(results[:-keep_outputs] if keep_outputs > 0 else ())
    view: list[Message] = []
    shown = ("", "")  # the working directory and interpreter the model last saw
    for i, message in enumerate(messages):
        content = message.get("content")
        if message.get("role") != "tool" or not isinstance(content, str):
            view.append(message)
            continue
        body, cwd, python, finished = metadata_tail(content)
        changed = (cwd, python) != shown and bool(cwd or python)
        shown = (cwd, python) if finished is not None and changed else shown
        repeated = completed_line(body) is not None  # what `[Command finished ...]` says
        if i in masked and len(body) > _MIN_MASKED_CHARS:
            body = _stand_in(body)
        if finished is not None:
            body = join_command_text(
                body,
                "",
                cwd=cwd if changed else "",
                python=python if changed else "",
                exit_code=-1 if repeated else finished,
            )
        view.append({**message, "content": body})
    return view


def _stand_in(body: str) -> str:
    done = completed_line(body)
    lines = body.count("\n") + 1 - (1 if done else 0)
    if done is None:
        return OMITTED.format(lines=lines)
    return OMITTED_COMMAND.format(lines=lines, code=done[1])
