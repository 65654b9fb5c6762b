"""observing: the step is recorded; apply the limits and decide what comes next.

Budgets (steps, dollars, seconds of activity) end the run at their limit, and the model is
told once per budget when 80% of it is used. A loop (controller/stuck.py) gets one warning;
if the loop goes on at the next step, the run ends as the agent's failure.
"""

from __future__ import annotations

import time
from typing import NamedTuple

from controller.outcome import EndReason
from controller.prompts import CONTINUE_MESSAGE
from controller.run_context import Next, RunContext
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
    key: str  # remembered in counters.budget_warnings once warned about
    name: str
    used: float
    limit: float
    amount: str  # "4 of 5 steps"
    reached: str  # the reason when the run stops at this limit


def run(ctx: RunContext) -> Next:
    _count_runtime(ctx)
    if ctx.finish_message is not None:
        return Next("finish", "the agent called finish", EndReason.FINISHED)
    verdict = _stuck(ctx)
    if verdict is not None and ctx.snapshot.counters.stuck_warning:
        # Still looping after the warning (possibly now matching another pattern, e.g. a
        # 4th identical error): the same loop.
        return Next("fail", f"stuck: {verdict.reason}", EndReason.AGENT)
    # A first loop is warned about rather than failed for answering without a tool call
    # (three identical text answers are both).
    failure = (None if verdict else _agent_failure(ctx)) or _limit_reached(ctx)
    if failure is not None:
        return failure
    warned = _warn_if_stuck(ctx, verdict)
    _warn_about_budgets(ctx)
    if ctx.answered_without_action:
        ctx.answered_without_action = False
        if not warned:  # the warning already asks for a tool call
            ctx.record(UserMessage, content=CONTINUE_MESSAGE, origin="auto_continue")
    return Next("plan", f"step {ctx.snapshot.counters.steps} done")


def _count_runtime(ctx: RunContext) -> None:
    """Add this process's active time since the last count (resume goes on from the sum)."""
    now = time.monotonic()
    ctx.snapshot.counters.runtime_s += now - ctx.clock
    ctx.clock = now


def _stuck(ctx: RunContext) -> StuckVerdict | None:
    if not ctx.config.agent.enable_stuck_detection:
        return None
    return detect_stuck(ctx.events)


def _warn_if_stuck(ctx: RunContext, verdict: StuckVerdict | None) -> bool:
    """Warn about a new loop; forget the warning once the loop is broken, so a later
    loop gets its own. True when a warning was given."""
    counters = ctx.snapshot.counters
    if verdict is None:
        counters.stuck_warning = ""
        return False
    counters.stuck_warning = verdict.pattern
    ctx.record(UserMessage, content=STUCK_WARNING.format(reason=verdict.reason), origin="warning")
    return True


def _agent_failure(ctx: RunContext) -> Next | None:
    counters = ctx.snapshot.counters
    if counters.no_action_in_a_row >= MAX_NO_ACTION:
        return Next(
            "fail",
            f"the model answered {counters.no_action_in_a_row} times in a row without "
            "calling a tool",
            EndReason.AGENT,
        )
    if counters.malformed_in_a_row >= MAX_MALFORMED:
        return Next(
            "fail",
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
            return Next("fail", budget.reached, EndReason.LIMIT)
    return None


def _warn_about_budgets(ctx: RunContext) -> None:
    """Once per budget (and limit: a resume with a larger one warns again at its 80%)."""
    warned = ctx.snapshot.counters.budget_warnings
    for budget in budgets(ctx):
        if budget.key in warned or budget.used < BUDGET_WARNING_SHARE * budget.limit:
            continue
        warned.append(budget.key)
        percent = int(100 * budget.used / budget.limit)
        message = BUDGET_WARNING.format(percent=percent, name=budget.name, amount=budget.amount)
        ctx.record(UserMessage, content=message, origin="warning")
