"""A run's steps as its log tells them: where a step ends, the workspace checkpoint in force
at any event, and the history a rewind leaves. Pure functions over events, no I/O.

Step numbers are unique in a log (a rewind does not reuse them), so "step N" always names
one stretch of events, even one a later rewind left out of the model's view.
"""

from __future__ import annotations

from collections.abc import Sequence

from state_store.events import (
    Checkpoint,
    Condensation,
    Event,
    ModelResponse,
    ModelRetry,
    ModelSwitched,
    Rewound,
    RunForked,
    UserMessage,
)


class NoSuchStep(ValueError):
    """The step is not in the run's log."""


def effective_events(events: Sequence[Event]) -> list[Event]:
    """The history the run goes on from: the log, where each rewind replaces what came
    before it by the history as it was at the event it went back to (recursively, so a
    rewind to before an earlier rewind undoes that one)."""
    if not any(isinstance(e, Rewound) for e in events):
        return list(events)
    result: list[Event] = []
    for index, event in enumerate(events):
        if isinstance(event, Rewound):
            result = effective_events(events[: min(event.to_seq, index)])
        else:
            result.append(event)
    return result


def last_step(events: Sequence[Event]) -> int:
    return max((e.step for e in events if isinstance(e, ModelResponse)), default=0)


def step_end(events: Sequence[Event], step: int) -> int:
    """The seq of the last event of step `step` (0: the start, before the first answer).

    A step's stretch opens at its model answer (or a rewind back to it) and runs up to the
    next step's model activity, a condensation, a new instruction, a rewind or a fork,
    whichever comes first: the step's decision, its warnings and its end, if the run
    stopped there, belong to it. After a rewind a step has more than one stretch; the last
    one counts (so rewinding to the step a rewind left undoes that rewind)."""
    last = last_step(events)
    if step < 0 or step > last:
        raise NoSuchStep(f"step {step} does not exist (the run has steps 0 to {last})")
    end, current = 0, 0
    for event in events:
        if _opens(event, step):
            current, end = step, event.seq
        elif current == step and not _closes(event, step):
            end = event.seq
        elif _closes(event, step):
            current = -1
    return end


def _opens(event: Event, step: int) -> bool:
    if isinstance(event, Rewound):
        return event.to_step == step
    if isinstance(event, ModelResponse):
        return event.step == step
    return step == 0 and event.seq == 1


def _closes(event: Event, step: int) -> bool:
    if isinstance(event, ModelResponse | ModelRetry | ModelSwitched):
        return event.step > step
    if isinstance(event, UserMessage):
        return event.origin == "instruction"
    return isinstance(event, Condensation | Rewound | RunForked)


def tree_at(events: Sequence[Event], seq: int) -> str | None:
    """The workspace's checkpoint in force at event `seq`: the last one saved or restored."""
    tree = None
    for event in events:
        if event.seq > seq:
            break
        if isinstance(event, Checkpoint | Rewound | RunForked):
            tree = event.tree
    return tree


def tree_before_step(events: Sequence[Event], step: int) -> str | None:
    """The checkpoint in force when step `step`'s answer arrived."""
    if step == 0:
        return None
    step_end(events, step)  # raises for a step that does not exist
    answer = next(e for e in events if isinstance(e, ModelResponse) and e.step == step)
    return tree_at(events, answer.seq - 1)


def own_events(events: Sequence[Event]) -> Sequence[Event]:
    """The events this run's own processes wrote: a fork's log starts with its parent's
    history (whose sandboxes are the parent's business, never the fork's)."""
    for index in range(len(events) - 1, -1, -1):
        if isinstance(events[index], RunForked):
            return events[index:]
    return events
