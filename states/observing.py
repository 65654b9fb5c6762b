"""observing: the step is recorded; apply the limits and decide what comes next."""

from __future__ import annotations

from controller.outcome import EndReason
from controller.prompts import CONTINUE_MESSAGE
from controller.run_context import Next, RunContext
from state_store.events import UserMessage

# Answers in a row the run tolerates before it ends as the agent's failure.
MAX_NO_ACTION = 3
MAX_MALFORMED = 3


def run(ctx: RunContext) -> Next:
    if ctx.finish_message is not None:
        return Next("finish", "the agent called finish", EndReason.FINISHED)
    failure = _agent_failure(ctx) or _limit_reached(ctx)
    if failure is not None:
        return failure
    if ctx.answered_without_action:
        ctx.answered_without_action = False
        ctx.record(UserMessage, content=CONTINUE_MESSAGE, origin="auto_continue")
    return Next("plan", f"step {ctx.snapshot.counters.steps} done")


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


def _limit_reached(ctx: RunContext) -> Next | None:
    counters = ctx.snapshot.counters
    core = ctx.config.core
    if counters.steps >= core.max_iterations:
        return Next(
            "fail", f"iteration limit reached ({core.max_iterations} steps)", EndReason.LIMIT
        )
    budget = core.max_budget_per_task
    if budget is not None and budget > 0 and counters.cost >= budget:
        return Next(
            "fail",
            f"budget limit reached (${counters.cost:.4f} spent of ${budget:.2f})",
            EndReason.LIMIT,
        )
    return None
