"""A run's budgets (steps, dollars, seconds of activity): how much of each is used, when
the model is warned (80%), and the reason the run stops at a limit."""

from __future__ import annotations

from typing import NamedTuple

from controller.agent.context import RunContext

BUDGET_WARNING_SHARE = 0.8


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
