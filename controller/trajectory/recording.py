"""The recording runhands replays: each tool call and what it showed the model, from one
of our own runs' event log (`reading` builds the same from a trajectory file)."""

from __future__ import annotations

from collections.abc import Sequence

import msgspec

from state_store.events import (
    Action,
    AnyEvent,
    Checkpoint,
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


class Recording(msgspec.Struct, kw_only=True):
    task: str
    # The recording's working directory; None when the file does not say (OpenHands').
    workdir: str | None
    steps: list[RecordedStep]
    # Events that cannot be replayed, summarised for the user.
    notes: list[str] = []
    # Our own runs: the workspace's first checkpoint, and the run's directory (its store).
    start_tree: str = ""
    run_dir: str = ""


def recording_from_events(events: Sequence[AnyEvent]) -> Recording:
    """The steps of one of our own runs, straight from its event log."""
    steps: list[RecordedStep] = []
    waiting: dict[str, int] = {}  # tool call id -> index of its step, until observed
    for event in events:
        if isinstance(event, Action):
            waiting[event.tool_call_id] = len(steps)
            steps.append(
                RecordedStep(args=event.args, observation=None, tool_call_id=event.tool_call_id)
            )
        elif isinstance(event, Observation) and event.tool_call_id in waiting:
            index = waiting.pop(event.tool_call_id)
            steps[index] = msgspec.structs.replace(steps[index], observation=event.content)
        elif isinstance(event, Checkpoint) and steps:
            steps[-1] = msgspec.structs.replace(steps[-1], tree=event.tree)
    task = next((e.content for e in events if isinstance(e, UserMessage)), "")
    workdir = next((e.workdir for e in events if isinstance(e, RunStarted)), None)
    start = next((e.tree for e in events if isinstance(e, Checkpoint)), "")
    return Recording(task=task, workdir=workdir, steps=steps, start_tree=start)
