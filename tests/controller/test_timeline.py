"""Steps, checkpoints and rewinds read from a log (controller/agent/timeline.py) and the
state a rewind leaves (the fold in controller/agent/run_state.py)."""

from __future__ import annotations

from typing import Any

import pytest

from controller.agent.run_state import derive
from controller.agent.timeline import (
    NoSuchStep,
    effective_events,
    step_end,
    tree_at,
    tree_before_step,
)
from state_store.events import Action as ActionEvent
from state_store.events import (
    Checkpoint,
    Condensation,
    Event,
    Finish,
    LogHeader,
    ModelResponse,
    Rewound,
    RunEnded,
    ToolCall,
    Transition,
    UserMessage,
)


class Log:
    """Builds a log event by event, numbering them as the store does."""

    def __init__(self) -> None:
        self.events: list[Event] = [LogHeader(seq=1, ts=0, schema=1, run_id="r", writer="t")]

    def add(self, kind: type[Event], **fields: Any) -> Event:
        event = kind(seq=len(self.events) + 1, ts=0, **fields)
        self.events.append(event)
        return event

    def step(self, n: int, tree: str | None = None) -> None:
        call = ToolCall(id=f"c{n}", name="execute_bash", arguments="{}")
        self.add(ModelResponse, step=n, model="m", content=f"step {n}", tool_calls=[call])
        if tree:
            self.add(Checkpoint, step=n, tree=tree)
        self.add(Transition, source="observing", dest="planning", trigger="plan", reason="")

    def rewind(self, to_step: int, tree: str, from_step: int) -> None:
        cut = step_end(self.events, to_step)
        self.add(
            Rewound, to_step=to_step, to_seq=cut, tree=tree, saved_tree="s", from_step=from_step
        )


def answers(events: list[Event]) -> list[int]:
    return [e.step for e in effective_events(events) if isinstance(e, ModelResponse)]


def test_a_step_ends_before_the_next_steps_model_activity() -> None:
    log = Log()
    log.add(Checkpoint, step=0, tree="t0")
    log.step(1, "t1")
    warned = log.add(UserMessage, content="you loop", origin="warning", key="stuck:x")
    condensed = log.add(Condensation, kept_until=2, forgotten_until=3)
    log.step(2, "t2")
    assert step_end(log.events, 0) == 2  # the header and the first checkpoint
    assert step_end(log.events, 1) == warned.seq  # its warning belongs to it
    assert step_end(log.events, 1) == condensed.seq - 1
    assert step_end(log.events, 2) == log.events[-1].seq
    assert tree_at(log.events, step_end(log.events, 1)) == "t1"
    assert tree_before_step(log.events, 2) == "t1"
    with pytest.raises(NoSuchStep, match="step 3 does not exist"):
        step_end(log.events, 3)


def test_a_rewind_cuts_the_history_and_rewinding_forward_undoes_it() -> None:
    log = Log()
    log.add(Checkpoint, step=0, tree="t0")
    for n in (1, 2, 3):
        log.step(n, f"t{n}")
    log.rewind(1, "t1", from_step=3)
    assert answers(log.events) == [1]
    assert tree_at(log.events, log.events[-1].seq) == "t1"
    log.rewind(3, "t3", from_step=3)  # undo: the last stretch of step 3 is before the rewind
    assert answers(log.events) == [1, 2, 3]
    log.rewind(1, "t1", from_step=3)
    log.step(4, "t4")  # the run goes on after step 1: step numbers are never reused
    assert answers(log.events) == [1, 4]
    log.rewind(3, "t3", from_step=4)  # back to the abandoned branch
    assert answers(log.events) == [1, 2, 3]


def test_after_a_rewind_the_state_is_that_of_the_step_and_spending_stays_counted() -> None:
    log = Log()
    log.add(Checkpoint, step=0, tree="t0")
    log.step(1, "t1")
    call = ToolCall(id="f", name="finish", arguments="{}")
    log.add(ModelResponse, step=2, model="m", content="", tool_calls=[call], cost=1.5)
    log.add(ActionEvent, step=2, tool_call_id="f", args=Finish(message="done"))
    log.add(
        Transition, source="observing", dest="finished", trigger="finish", reason="", end="finished"
    )
    log.add(
        RunEnded,
        run_id="r",
        state="finished",
        reason="finished",
        message="done",
        steps=2,
        prompt_tokens=0,
        completion_tokens=0,
        cost=1.5,
        exit_code=0,
        duration_s=0,
    )
    finished = derive("r", log.events)
    assert (finished.state, finished.finish_message) == ("finished", "done")
    log.rewind(1, "t1", from_step=2)
    rewound = derive("r", log.events)
    assert (rewound.state, rewound.finish_message, rewound.reason) == ("planning", None, "rewound")
    assert rewound.ended and rewound.tree == "t1"
    assert (rewound.counters.steps, rewound.counters.cost) == (2, 1.5)
