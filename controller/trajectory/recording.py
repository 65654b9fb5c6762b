"""The recording runhands replays: each tool call and what it showed the model, from one
of our own runs' event log (`reading` builds the same from a trajectory file)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Literal

import msgspec

from state_store.events import (
    Action,
    AnyEvent,
    Checkpoint,
    ModelResponse,
    Observation,
    RunStarted,
    ToolArgs,
    UserMessage,
)


class RecordedStep(msgspec.Struct, frozen=True, kw_only=True):
    """One recorded tool call and what it showed the model (None: nothing was recorded)."""

    args: ToolArgs
    observation: str | None
    tool_call_id: str = ""
    # The workspace checkpoint the run saved after this call ("": none).
    tree: str = ""


class RecordedMessage(msgspec.Struct, frozen=True, kw_only=True):
    """A message of the conversation after the task: the user's (OpenHands' later user
    messages, our runs' instructions) or the agent's text answer without a tool call."""

    source: Literal["user", "agent"]
    content: str


ReplayTurn = RecordedStep | RecordedMessage


class Recording(msgspec.Struct, kw_only=True):
    task: str
    # The recording's working directory; None when the file does not say (OpenHands').
    workdir: str | None
    # The tool calls, compared by `runhands replay`.
    steps: list[RecordedStep]
    # The whole conversation after the task, in order: the tool calls and the messages
    # between them (`replay --continue` and `replay_trajectory_path` carry out all of it).
    turns: list[ReplayTurn] = []
    # Events that cannot be replayed, summarised for the user.
    notes: list[str] = []
    # Our own runs: the workspace's first checkpoint, and the run's directory (its store).
    start_tree: str = ""
    run_dir: str = ""


def recording_from_events(events: Sequence[AnyEvent]) -> Recording:
    """The steps of one of our own runs, straight from its event log."""
    turns: list[ReplayTurn] = []
    waiting: dict[str, int] = {}  # tool call id -> index of its turn, until observed
    last_step = -1
    task_seen = False
    for event in events:
        if isinstance(event, Action):
            waiting[event.tool_call_id] = last_step = len(turns)
            turns.append(
                RecordedStep(args=event.args, observation=None, tool_call_id=event.tool_call_id)
            )
        elif isinstance(event, Observation) and event.tool_call_id in waiting:
            index = waiting.pop(event.tool_call_id)
            turns[index] = msgspec.structs.replace(turns[index], observation=event.content)
        elif isinstance(event, Checkpoint) and last_step >= 0:
            turns[last_step] = msgspec.structs.replace(turns[last_step], tree=event.tree)
        elif isinstance(event, ModelResponse) and not event.tool_calls and event.content:
            turns.append(RecordedMessage(source="agent", content=event.content))
        elif isinstance(event, UserMessage):
            if task_seen and event.origin == "instruction":  # a message of the user's
                turns.append(RecordedMessage(source="user", content=event.content))
            task_seen = True
    steps = [t for t in turns if isinstance(t, RecordedStep)]
    task = next((e.content for e in events if isinstance(e, UserMessage)), "")
    workdir = next((e.workdir for e in events if isinstance(e, RunStarted)), None)
    start = next((e.tree for e in events if isinstance(e, Checkpoint)), "")
    return Recording(task=task, workdir=workdir, steps=steps, turns=turns, start_tree=start)
