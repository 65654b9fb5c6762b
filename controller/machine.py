"""The agent's finite-state machine: the transition table and the loop that drives it.

    init ──start──▶ planning ──act──▶ acting ──observe──▶ observing ──finish──▶ finished
                       ▲   └────────reflect─────────────────▲  │
                       └──────────────────plan─────────────────┘
    init | planning | acting | observing ──fail──▶ errored
    finished | errored ──resume──▶ planning          (runhands resume: new limits or task)

Each state's work lives in `states/<state>.py`; a handler returns the trigger to fire and
why. Every transition is saved as an event with that reason, then the snapshot is replaced.
"""

from __future__ import annotations

import traceback
from collections.abc import Callable

from transitions import Machine, MachineError

from controller.outcome import EndReason
from controller.run_context import Next, RunContext
from state_store.events import Transition
from states import acting, init, observing, planning

STATES = ["init", "planning", "acting", "observing", "finished", "errored"]
RUNNING = ["init", "planning", "acting", "observing"]
TERMINAL = frozenset({"finished", "errored"})

# trigger, source, destination: the only moves the machine can make.
TRANSITIONS: list[tuple[str, str | list[str], str]] = [
    ("start", "init", "planning"),  # sandbox ready
    ("act", "planning", "acting"),  # the model called tools
    ("reflect", "planning", "observing"),  # the model answered without a tool call
    ("observe", "acting", "observing"),  # every tool call has its observation
    ("plan", "observing", "planning"),  # within limits: next step
    ("finish", "observing", "finished"),  # the agent called `finish`
    ("fail", RUNNING, "errored"),  # limit, provider, sandbox, agent or internal failure
    ("resume", ["finished", "errored"], "planning"),  # `runhands resume`: new limits or task
]

HANDLERS: dict[str, Callable[[RunContext], Next]] = {
    "init": init.run,
    "planning": planning.run,
    "acting": acting.run,
    "observing": observing.run,
}


class AgentMachine:
    """The `transitions` model: holds the state; `drive` runs handlers until a final state."""

    state: str

    def __init__(self, ctx: RunContext) -> None:
        self.ctx = ctx
        Machine(
            model=self,
            states=STATES,
            transitions=[{"trigger": t, "source": s, "dest": d} for t, s, d in TRANSITIONS],
            initial=ctx.snapshot.state,
            auto_transitions=False,  # no to_<state>(): the table above is the whole truth
        )

    def drive(self) -> None:
        """Run until finished or errored; KeyboardInterrupt propagates with state saved."""
        while self.state not in TERMINAL:
            handler = HANDLERS[self.state]
            try:
                decision = handler(self.ctx)
            except KeyboardInterrupt:
                raise
            except Exception as e:  # a bug in a handler: end the run, keep the evidence
                detail = traceback.format_exception_only(e)[-1].strip()
                decision = Next("fail", f"internal error in {self.state}: {detail}", "internal")
            self.fire(decision)

    def fire(self, decision: Next) -> None:
        source = self.state
        try:
            self.trigger(decision.trigger)
        except (MachineError, AttributeError):
            # An illegal move is a bug: end in errored and say so, never jump silently.
            decision = Next(
                "fail",
                f"illegal transition {decision.trigger!r} from {source} "
                f"(wanted because: {decision.reason})",
                EndReason.INTERNAL,
            )
            self.trigger("fail")
        self.ctx.record(
            Transition,
            source=source,
            dest=self.state,
            trigger=decision.trigger,
            reason=decision.reason,
        )
        snapshot = self.ctx.snapshot
        snapshot.state = self.state
        if self.state in TERMINAL:
            snapshot.reason = decision.end or EndReason.INTERNAL
            snapshot.message = decision.reason
        # The snapshot is replaced and everything fsynced once per step, when it is complete
        # (and at the end): the log is the truth, written event by event, so a killed process
        # loses nothing and a machine crash at most the step in progress.
        if self.state == "planning" or self.state in TERMINAL:
            self.ctx.save_snapshot()
