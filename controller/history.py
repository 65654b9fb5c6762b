"""The model's view of a run, rebuilt from its events (live, and the same way on resume)."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from state_store.events import Event, ModelResponse, Observation, UserMessage

Message = dict[str, Any]  # the chat-completions wire format litellm takes


def to_message(event: Event) -> Message | None:
    """The chat message an event contributes, or None for bookkeeping events."""
    if isinstance(event, UserMessage):
        return {"role": "user", "content": event.content}
    if isinstance(event, ModelResponse):
        message: Message = {"role": "assistant", "content": event.content or ""}
        if event.tool_calls:
            message["tool_calls"] = [
                {
                    "id": call.id,
                    "type": "function",
                    "function": {"name": call.name, "arguments": call.arguments},
                }
                for call in event.tool_calls
            ]
        return message
    if isinstance(event, Observation):
        return {
            "role": "tool",
            "tool_call_id": event.tool_call_id,
            "name": event.tool,
            "content": event.content,
        }
    return None


def build_messages(system_prompt: str, events: Iterable[Event]) -> list[Message]:
    messages: list[Message] = [{"role": "system", "content": system_prompt}]
    for event in events:
        message = to_message(event)
        if message is not None:
            messages.append(message)
    return messages
