"""Keeping the model's view within its input window: condensation.

When the prompt would come near the model's input window (`[llm] max_input_tokens`, else
litellm's model info), or holds more than `[condenser] max_size` messages, the middle of the
history is forgotten: the system prompt, the first `keep_first` messages (the task) and the
most recent steps stay, an action is never separated from its observation, and the middle
is replaced by a summary from the model (`type = "llm"`) or dropped (`"window"`). The full
history stays in the log; the condensation is an event, so resume rebuilds the same view.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

import msgspec

from controller.agent.context import RunContext
from controller.agent.history import Message, build_messages, latest_condensation, to_message
from controller.config import CONDENSER_TYPES, AppConfig
from state_store.events import (
    Condensation,
    Event,
    InstructionsLoaded,
    ModelResponse,
    Usage,
    UserMessage,
)

# Tokens are estimated from characters: cheap, and close enough with a safety margin.
CHARS_PER_TOKEN = 4
TRIGGER_SHARE = 0.8  # condense past 80% of the window: room for the answer and the estimate
KEEP_SHARE = 0.5  # after condensing, the recent steps take at most half of the window
SUMMARY_INPUT_CHARS = 60_000  # what the summariser is shown of the forgotten steps

SUMMARIZER_PROMPT = """\
You maintain the working memory of an autonomous coding agent whose history is too long. \
Summarise the steps below (and the previous summary, if any) so the agent can go on \
without them: the task's state, what was done, files created or changed, commands and their \
important results, errors met and how they were handled, and what remains to do. \
Be factual and concise; keep exact paths, names and values."""


class Cut(msgspec.Struct, frozen=True):
    kept_until: int
    forgotten_until: int


def tools_tokens(tools: Sequence[dict[str, Any]]) -> int:
    return len(json.dumps(tools)) // CHARS_PER_TOKEN


def estimate_tokens(messages: Sequence[Message]) -> int:
    """Tokens of messages as sent (JSON, so structure and escaping count too)."""
    return len(json.dumps(messages)) // CHARS_PER_TOKEN


def input_window(config: AppConfig) -> int | None:
    """The model's input window in tokens: configured, or from litellm's model info."""
    if config.llm.max_input_tokens:
        return config.llm.max_input_tokens
    try:
        from controller.model_client import import_litellm

        info = import_litellm().get_model_info(config.llm.model)
        return int(info.get("max_input_tokens") or 0) or None
    except Exception:  # a model litellm does not know: only the provider can tell
        return None


def why_condense(
    config: AppConfig, messages: Sequence[Message], window: int | None, reserve: int = 0
) -> str:
    """Why the view must be condensed now, or "" when it fits. `reserve`: tokens the request
    spends besides the messages (the tools' definitions)."""
    size = config.condenser.max_size
    if CONDENSER_TYPES[config.condenser.type] == "noop" or not (window or size):
        return ""  # nothing to measure against: skip encoding the whole view every step
    tokens = estimate_tokens(messages) + reserve
    if window and tokens > TRIGGER_SHARE * window:
        return f"the prompt (~{tokens} tokens) nears the model's input window ({window})"
    if size and len(messages) > size:
        return f"the prompt holds {len(messages)} messages (max_size {size})"
    return ""


def plan_cut(events: Sequence[Event], keep_first: int, budget: int) -> Cut | None:
    """Which events to forget: after the first `keep_first` messages, up to where the most
    recent steps that fit in `budget` tokens begin (always at a model answer or a user
    message, so tool results stay with their call). None when nothing new can go."""
    bearing = [(e, to_message(e)) for e in events]
    bearing = [(e, m) for e, m in bearing if m is not None]
    # The repository's instructions (AGENTS.md...) stay with the task: they hold for the
    # whole run.
    loaded = [i for i, (e, _) in enumerate(bearing) if isinstance(e, InstructionsLoaded)]
    keep_first = max(keep_first, loaded[0] + 1 if loaded else 0)
    if len(bearing) <= keep_first + 1:
        return None
    kept_until = bearing[keep_first - 1][0].seq
    start = _recent_start(bearing[keep_first:], budget)
    if start is None:
        return None
    forgotten_until = start.seq - 1
    previous = latest_condensation(events)
    if forgotten_until <= max(kept_until, previous.forgotten_until if previous else 0):
        return None
    return Cut(kept_until=kept_until, forgotten_until=forgotten_until)


def _recent_start(bearing: list[tuple[Event, Message]], budget: int) -> Event | None:
    """The earliest step boundary whose suffix fits the budget; at least the last step."""
    used = 0
    start: Event | None = None
    for event, message in reversed(bearing):
        used += estimate_tokens([message])
        if isinstance(event, ModelResponse | UserMessage):
            if used > budget and start is not None:
                break
            start = event
    if start is bearing[0][0]:
        return None  # everything already fits: nothing to forget
    return start


def condense(
    ctx: RunContext, reason: str, window: int | None, reserve: int = 0
) -> Condensation | None:
    """Record a condensation (summarising if configured) and rebuild the model's view."""
    config: AppConfig = ctx.config
    if window:
        budget = max(1, int(KEEP_SHARE * window) - reserve)
    else:
        budget = _budget_from_size(ctx.messages, config)
    cut = plan_cut(ctx.events, config.condenser.keep_first, budget)
    if cut is None:
        return None
    summary, usage = None, Usage()
    if CONDENSER_TYPES[config.condenser.type] == "llm":
        summary, usage = _summarise(ctx, cut)
    event = ctx.record(
        Condensation,
        kept_until=cut.kept_until,
        forgotten_until=cut.forgotten_until,
        summary=summary,
        reason=reason,
        prompt_tokens=usage.prompt_tokens,
        completion_tokens=usage.completion_tokens,
        cost=usage.cost,
    )
    ctx.messages = build_messages(ctx.messages[0]["content"], ctx.events)
    return event


def _budget_from_size(messages: Sequence[Message], config: AppConfig) -> int:
    """Without a known window, max_size decides: keep about half of the messages."""
    size = config.condenser.max_size or len(messages)
    average = estimate_tokens(messages) // max(1, len(messages))
    return max(1, size // 2) * max(1, average)


def _summarise(ctx: RunContext, cut: Cut) -> tuple[str, Usage]:
    previous = latest_condensation(ctx.events)
    forgotten = [e for e in ctx.events if cut.kept_until < e.seq <= cut.forgotten_until]
    parts = []
    if previous is not None and previous.summary:
        parts.append(f"Previous summary:\n{previous.summary}")
    parts.append("Steps to summarise:\n" + _render(forgotten))
    messages = [
        {"role": "system", "content": SUMMARIZER_PROMPT},
        {"role": "user", "content": "\n\n".join(parts)[-SUMMARY_INPUT_CHARS:]},
    ]
    completion = ctx.client.complete(messages, [], lambda *_: None)
    return (completion.content or "(no summary)").strip(), completion.usage


def _render(events: Sequence[Event]) -> str:
    lines = []
    for event in events:
        message = to_message(event)
        if message is None:
            continue
        text = (message.get("content") or "")[:2000]
        calls = [
            f"{c['function']['name']}({c['function']['arguments'][:500]})"
            for c in message.get("tool_calls", ())
        ]
        lines.append(f"[{message['role']}] {text} {json.dumps(calls) if calls else ''}".strip())
    return "\n".join(lines)
