"""The agent's states, triggers and transition table: the only moves the machine can make.

    init ──start──▶ planning ──act──▶ acting ──observe──▶ observing ──finish──▶ finished
                       ▲   └────────reflect─────────────────▲  │
                       └──────────────────plan─────────────────┘
    init ──act──▶ acting, init ──observe──▶ observing      (resume re-enters where it was)
    init | planning | acting | observing ──fail──▶ errored
    any state ──resume──▶ init                              (runhands resume)

Pure data, so the machine, the event-log fold and the README check share one table.
"""

from __future__ import annotations

from enum import StrEnum


class State(StrEnum):
    INIT = "init"
    PLANNING = "planning"
    ACTING = "acting"
    OBSERVING = "observing"
    FINISHED = "finished"
    ERRORED = "errored"


class Trigger(StrEnum):
    START = "start"
    ACT = "act"
    REFLECT = "reflect"
    OBSERVE = "observe"
    PLAN = "plan"
    FINISH = "finish"
    FAIL = "fail"
    RESUME = "resume"


STATES_ORDER = tuple(State)
RUNNING = (State.INIT, State.PLANNING, State.ACTING, State.OBSERVING)
TERMINAL = frozenset({State.FINISHED, State.ERRORED})

# trigger, sources, destination (the README's diagram; tests/controller/test_machine.py
# checks the two agree).
TRANSITIONS: list[tuple[Trigger, tuple[State, ...], State]] = [
    (Trigger.START, (State.INIT,), State.PLANNING),  # sandbox ready: ask the model
    (Trigger.ACT, (State.PLANNING, State.INIT), State.ACTING),  # tool calls to carry out
    (Trigger.REFLECT, (State.PLANNING,), State.OBSERVING),  # an answer without a tool call
    (Trigger.OBSERVE, (State.ACTING, State.INIT), State.OBSERVING),  # the step to decide on
    (Trigger.PLAN, (State.OBSERVING,), State.PLANNING),  # within limits: next step
    (Trigger.FINISH, (State.OBSERVING,), State.FINISHED),  # the agent called `finish`
    (Trigger.FAIL, RUNNING, State.ERRORED),  # limit, provider, sandbox, agent or a bug
    (Trigger.RESUME, tuple(State), State.INIT),  # `runhands resume`: a new process
]
