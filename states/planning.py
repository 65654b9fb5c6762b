"""planning: ask the model for the next action and validate the tool calls it makes."""

from __future__ import annotations

from controller.condenser import condense, input_window, why_condense
from controller.model_client import Completion, ProviderError
from controller.outcome import EndReason
from controller.run_context import Next, PendingCall, RunContext
from controller.tools import MalformedToolCall, parse_tool_call
from state_store.events import ModelResponse, ModelRetry, ToolCall


def run(ctx: RunContext) -> Next:
    counters = ctx.snapshot.counters
    step = counters.steps + 1

    def on_retry(attempt: int, error: str, wait_s: float) -> None:
        ctx.record(ModelRetry, step=step, attempt=attempt, error=error, wait_s=wait_s)

    try:
        _condense_if_needed(ctx)
        completion = ctx.client.complete(ctx.messages, ctx.tools, on_retry)
    except ProviderError as e:
        return Next("fail", f"model provider error: {e}", EndReason.PROVIDER)
    _count(ctx, step, completion)
    ctx.record(
        ModelResponse,
        step=step,
        model=completion.model,
        content=completion.content,
        tool_calls=completion.tool_calls,
        prompt_tokens=completion.prompt_tokens,
        completion_tokens=completion.completion_tokens,
        cost=completion.cost,
        latency_s=round(completion.latency_s, 4),
    )
    if not completion.tool_calls:
        counters.no_action_in_a_row += 1
        ctx.answered_without_action = True
        return Next("reflect", "the model answered without calling a tool")
    counters.no_action_in_a_row = 0
    ctx.pending = [_validate(call, ctx.allowed_tools) for call in completion.tool_calls]
    names = ", ".join(p.call.name or "?" for p in ctx.pending)
    return Next("act", f"the model called {names}")


def _condense_if_needed(ctx: RunContext) -> None:
    if ctx.window is None:
        ctx.window = input_window(ctx.config) or 0
    reason = why_condense(ctx.config, ctx.messages, ctx.window)
    if reason:
        condense(ctx, reason, ctx.window)


def _count(ctx: RunContext, step: int, completion: Completion) -> None:
    counters = ctx.snapshot.counters
    counters.steps = step
    counters.prompt_tokens += completion.prompt_tokens
    counters.completion_tokens += completion.completion_tokens
    counters.cost += completion.cost


def _validate(call: ToolCall, allowed: set[str]) -> PendingCall:
    try:
        return PendingCall(call, parse_tool_call(call, allowed))
    except MalformedToolCall as e:
        return PendingCall(call, error=str(e))
