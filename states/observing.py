"""observing: the step is recorded; apply the limits and decide what comes next.

Budgets (steps, dollars, seconds of activity) end the run at their limit, and the model is
told once per budget when 80% of it is used. A loop (controller/stuck.py) gets one warning;
if the loop goes on at the next step, the run ends as the agent's failure.
"""

from __future__ import annotations

from typing import NamedTuple

from controller.lifecycle import Trigger
from controller.outcome import EndReason
from controller.prompts import CONTINUE_MESSAGE
from controller.run_context import Next, RunContext
from controller.run_state import STUCK_KEY
from controller.stuck import StuckVerdict, detect_stuck
from state_store.events import UserMessage

# Answers in a row the run tolerates before it ends as the agent's failure.
MAX_NO_ACTION = 3
MAX_MALFORMED = 3
BUDGET_WARNING_SHARE = 0.8

STUCK_WARNING = (
    "You are repeating yourself: {reason}. Doing the same thing again will not give a "
    "different result. Change your approach: read the last output carefully, try a "
    "different command or tool, or re-plan from what you know so far. Every reply must call "
    "a tool; if the task is done, call `finish`. If this loop goes on, the run will be "
    "stopped."
)
BUDGET_WARNING = (
    "You have used {percent}% of your {name} ({amount}). Prioritise: complete and verify "
    "the most important remaining work, then call `finish` with a summary before the "
    "budget runs out."
)


class Budget(NamedTuple):
    key: str  # the warning's key: in snapshot.budget_warnings once warned about
    name: str
    used: float
    limit: float
    amount: str  # "4 of 5 steps"
    reached: str  # the reason when the run stops at this limit


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


def budgets(ctx: RunContext) -> list[Budget]:
    """The budgets set for this run: steps always, dollars and seconds when configured."""
    counters, core = ctx.snapshot.counters, ctx.config.core
    steps, limit = counters.steps, core.max_iterations
    found = [
        Budget(
            f"steps:{limit}",
            "step budget",
            steps,
            limit,
            f"{steps} of {limit} steps",
            f"iteration limit reached ({limit} steps)",
        )
    ]
    if dollars := core.max_budget_per_task:
        cost = counters.cost
        found.append(
            Budget(
                f"cost:{dollars:g}",
                "cost budget",
                cost,
                dollars,
                f"${cost:.2f} of ${dollars:.2f}",
                f"budget limit reached (${cost:.4f} spent of ${dollars:.2f})",
            )
        )
    if seconds := core.max_runtime_seconds:
        runtime = counters.runtime_s
        found.append(
            Budget(
                f"runtime:{seconds:g}",
                "time budget",
                runtime,
                seconds,
                f"{runtime:.0f} of {seconds:g} seconds",
                f"runtime limit reached ({runtime:.1f} s of {seconds:g} s)",
            )
        )
    return found


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
