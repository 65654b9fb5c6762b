"""planning: ask the model for the next action and validate the tool calls it makes."""

from __future__ import annotations

from collections.abc import Sequence

import msgspec

from controller.agent.condenser import (
    condense,
    estimate_tokens,
    input_window,
    tools_tokens,
    why_condense,
)
from controller.agent.context import Next, RunContext
from controller.agent.history import Message
from controller.agent.lean_view import model_view
from controller.agent.lifecycle import Trigger
from controller.agent.outcome import EndReason
from controller.model_client import (
    Completion,
    ContextWindowExceeded,
    ProviderError,
    RetryHook,
    SwitchHook,
)
from state_store.events import (
    Event,
    ModelResponse,
    ModelRetry,
    ModelSwitched,
    ToolCall,
    UserMessage,
)


def run(ctx: RunContext) -> Next:
    step = ctx.snapshot.counters.steps + 1

    def on_retry(attempt: int, error: str, wait_s: float) -> None:
        ctx.record(ModelRetry, step=step, attempt=attempt, error=error, wait_s=wait_s)

    def on_switch(from_model: str, to_model: str, reason: str) -> None:
        ctx.record(
            ModelSwitched, step=step, from_model=from_model, to_model=to_model, reason=reason
        )

    if _user_said_exit(ctx.events):
        # OpenHands' CodeActAgent.step: the user's `/exit` is answered with a finish, no
        # model call. Recorded as the answer it stands for, so the log says what happened.
        call = ToolCall(id=f"exit_{step}", name="finish", arguments='{"message": ""}')
        ctx.record(ModelResponse, step=step, model=EXIT_MODEL, content=None, tool_calls=[call])
        return Next(Trigger.ACT, "the user said /exit")
    try:
        completion = _complete(ctx, on_retry, on_switch)
    except ProviderError as e:
        return Next(Trigger.FAIL, f"model provider error: {e}", EndReason.PROVIDER)
    for warning in completion.warnings:  # e.g. absurd token counts, counted as 0
        ctx.reporter.info(f"runhands: warning: the provider's answer: {warning}")
    ctx.record(
        ModelResponse,
        step=step,
        model=completion.model,
        content=completion.content,
        tool_calls=completion.tool_calls,
        latency_s=round(completion.latency_s, 4),
        **msgspec.structs.asdict(completion.usage),
    )
    if not completion.tool_calls:
        return Next(Trigger.REFLECT, "the model answered without calling a tool")
    names = ", ".join(call.name or "?" for call in completion.tool_calls)
    return Next(Trigger.ACT, f"the model called {names}")


_CONTEXT_RETRIES = 2
EXIT_MODEL = "/exit"  # the `model` of the finish a user's `/exit` stands for


def _user_said_exit(events: Sequence[Event]) -> bool:
    """The latest user message is `/exit` and nothing has answered it yet."""
    for event in reversed(events):
        if isinstance(event, ModelResponse):
            return False
        if isinstance(event, UserMessage):
            return event.content.strip() == "/exit"
    return False


def _condensed_view(ctx: RunContext) -> list[Message]:
    """The view to send, the history condensed first when it nears the input window."""
    if ctx.window is None:
        ctx.window = input_window(ctx.config) or 0
    reserve = tools_tokens(ctx.tools)
    view = _view(ctx)
    reason = why_condense(ctx.config, view, ctx.window, reserve)
    if reason and condense(ctx, reason, ctx.window, reserve) is not None:
        view = _view(ctx)
    return view


def _view(ctx: RunContext) -> list[Message]:
    """The history as the model is sent it (controller/agent/lean_view.py)."""
    return model_view(ctx.messages, ctx.config.condenser.outputs_kept())


def _complete(ctx: RunContext, on_retry: RetryHook, on_switch: SwitchHook) -> Completion:
    """Ask the model, condensing the view first when it nears the input window, and again
    (at most twice) when the provider still says the context is too long."""
    view = _condensed_view(ctx)
    for attempt in range(_CONTEXT_RETRIES + 1):
        try:
            return ctx.client.complete(view, ctx.tools, on_retry, on_switch=on_switch)
        except ContextWindowExceeded as e:
            sent = estimate_tokens(view)
            # The window is smaller than we thought: aim at what was just refused.
            ctx.window = int(min(ctx.window or sent, sent) * 0.7)
            if (
                attempt == _CONTEXT_RETRIES
                or condense(ctx, f"the provider said: {e}", ctx.window) is None
            ):
                raise
            view = _view(ctx)
    raise AssertionError("unreachable")
