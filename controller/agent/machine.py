"""The agent's finite-state machine: the loop that drives a run through the transition
table of `controller/agent/lifecycle.py` (the README's diagram).

Each state's work lives in `states/<state>.py`; a handler returns the trigger to fire and
why. Every transition is saved as an event with that reason, then the snapshot is replaced.
"""

from __future__ import annotations

import traceback
from collections.abc import Callable

from transitions import Machine, MachineError

from controller.agent.context import Next, RunContext
from controller.agent.lifecycle import STATES_ORDER, TERMINAL, TRANSITIONS, State, Trigger
from controller.agent.outcome import EndReason
from state_store.events import Transition
from state_store.store import StoreWriteError
from states import acting, init, observing, planning

HANDLERS: dict[State, Callable[[RunContext], Next]] = {
    State.INIT: init.run,
    State.PLANNING: planning.run,
    State.ACTING: acting.run,
    State.OBSERVING: observing.run,
}


class AgentMachine:
    """The `transitions` model: holds the state; `drive` runs handlers until a final state."""

    state: str

    def __init__(self, ctx: RunContext) -> None:
        self.ctx = ctx
        Machine(
            model=self,
            states=[str(s) for s in STATES_ORDER],
            transitions=[
                {"trigger": str(t), "source": [str(s) for s in sources], "dest": str(d)}
                for t, sources, d in TRANSITIONS
            ],
            initial=ctx.snapshot.state,
            auto_transitions=False,  # no to_<state>(): the table is the whole truth
        )

    def drive(self) -> None:
        """Run until finished or errored. KeyboardInterrupt and a failed store write
        propagate, with everything saved so far intact."""
        while self.state not in TERMINAL:
            if self.ctx.stop is not None and self.ctx.stop.is_set():
                raise KeyboardInterrupt  # a batch stopping: the same end as Ctrl-C
            handler = HANDLERS[State(self.state)]
            try:
                decision = handler(self.ctx)
            except (KeyboardInterrupt, StoreWriteError):
                raise
            except Exception as e:  # a bug in a handler: end the run, keep the evidence
                detail = traceback.format_exception_only(e)[-1].strip()
                decision = Next(
                    Trigger.FAIL, f"internal error in {self.state}: {detail}", EndReason.INTERNAL
                )
            self.fire(decision)

    def fire(self, decision: Next) -> None:
        source = self.state
        try:
            self.trigger(str(decision.trigger))
        except (MachineError, AttributeError):
            # An illegal move is a bug: end in errored and say so, never jump silently.
            decision = Next(
                Trigger.FAIL,
                f"illegal transition {decision.trigger!r} from {source} "
                f"(wanted because: {decision.reason})",
                EndReason.INTERNAL,
            )
            self.trigger(Trigger.FAIL)
        self.ctx.record(
            Transition,
            source=source,
            dest=self.state,
            trigger=str(decision.trigger),
            reason=decision.reason,
            end=(decision.end or EndReason.INTERNAL) if self.state in TERMINAL else "",
            runtime_s=self.ctx.runtime(),
        )
        # The snapshot is replaced and everything fsynced once per step, when it is complete
        # (and at the end): the log is the truth, written event by event, so a killed process
        # loses nothing and a machine crash at most the step in progress.
        if self.state == State.PLANNING or self.state in TERMINAL:
            self.ctx.save_snapshot()
