"""observing: the step is recorded; apply the limits and decide what comes next.

Budgets (steps, dollars, seconds of activity) end the run at their limit, and the model is
told once per budget when 80% of it is used. A loop (controller/agent/stuck.py) gets one warning;
if the loop goes on at the next step, the run ends as the agent's failure.
"""

from __future__ import annotations

from controller.agent.budgets import BUDGET_WARNING, BUDGET_WARNING_SHARE, budgets
from controller.agent.context import Next, RunContext
from controller.agent.lifecycle import Trigger
from controller.agent.outcome import EndReason
from controller.agent.prompts import CONTINUE_MESSAGE
from controller.agent.run_state import STUCK_KEY
from controller.agent.stuck import StuckVerdict, detect_stuck
from state_store.events import UserMessage

# Answers in a row the run tolerates before it ends as the agent's failure.
MAX_NO_ACTION = 3


MAX_MALFORMED = 3


STUCK_WARNING = (
    "You are repeating yourself: {reason}. Doing the same thing again will not give a "
    "different result. Change your approach: read the last output carefully, try a "
    "different command or tool, or re-plan from what you know so far. Every reply must call "
    "a tool; if the task is done, call `finish`. If this loop goes on, the run will be "
    "stopped."
)


def run(ctx: RunContext) -> Next:
    """Everything here is decided from the log, and each message it adds is recorded once
    (a re-entry after a crash sees it in the snapshot), so deciding again is safe."""
    snapshot = ctx.snapshot
    if snapshot.finish_message is not None:
        return Next(Trigger.FINISH, "the agent called finish", EndReason.FINISHED)
    verdict = _stuck(ctx)
    step = snapshot.counters.steps
    if verdict is not None and 0 < snapshot.stuck_warned_step == step - 1:
        # Still looping at the step after the warning (possibly now matching another
        # pattern, e.g. a 4th identical error): the same loop.
        return Next(Trigger.FAIL, f"stuck: {verdict.reason}", EndReason.AGENT)
    # A first loop is warned about rather than failed for answering without a tool call
    # (three identical text answers are both).
    failure = (None if verdict else _agent_failure(ctx)) or _limit_reached(ctx)
    if failure is not None:
        return failure
    if verdict is not None and snapshot.stuck_warned_step != step:
        message = STUCK_WARNING.format(reason=verdict.reason)
        ctx.record(UserMessage, content=message, origin="warning", key=STUCK_KEY + verdict.pattern)
    _warn_about_budgets(ctx)
    if snapshot.awaiting_continue and not ctx.config.core.auto_continue:
        # --no-auto-continue: OpenHands would wait for the user; headless, the answer ends it.
        return Next(Trigger.FINISH, "the agent answered without a tool call", EndReason.FINISHED)
    if snapshot.awaiting_continue:  # a stuck warning already asked for a tool call
        ctx.record(UserMessage, content=CONTINUE_MESSAGE, origin="auto_continue")
    return Next(Trigger.PLAN, f"step {step} done")


def _stuck(ctx: RunContext) -> StuckVerdict | None:
    if not ctx.config.agent.enable_stuck_detection:
        return None
    return detect_stuck(ctx.events)


def _agent_failure(ctx: RunContext) -> Next | None:
    counters = ctx.snapshot.counters
    if counters.no_action_in_a_row >= MAX_NO_ACTION:
        return Next(
            Trigger.FAIL,
            f"the model answered {counters.no_action_in_a_row} times in a row without "
            "calling a tool",
            EndReason.AGENT,
        )
    if counters.malformed_in_a_row >= MAX_MALFORMED:
        return Next(
            Trigger.FAIL,
            f"the model sent malformed tool calls {counters.malformed_in_a_row} times in a row",
            EndReason.AGENT,
        )
    return None


def _limit_reached(ctx: RunContext) -> Next | None:
    for budget in budgets(ctx):
        if budget.used >= budget.limit:
            return Next(Trigger.FAIL, budget.reached, EndReason.LIMIT)
    return None


def _warn_about_budgets(ctx: RunContext) -> None:
    """Once per budget (and limit: a resume with a larger one warns again at its 80%)."""
    warned = ctx.snapshot.budget_warnings
    for budget in budgets(ctx):
        if budget.key in warned or budget.used < BUDGET_WARNING_SHARE * budget.limit:
            continue
        percent = int(100 * budget.used / budget.limit)
        message = BUDGET_WARNING.format(percent=percent, name=budget.name, amount=budget.amount)
        ctx.record(UserMessage, content=message, origin="warning", key=budget.key)
