"""The model's view of a run, rebuilt from its events (live, and the same way on resume).

A `Condensation` event shortens the view: the events it forgets are left out and its
summary (if any) stands in their place. The latest condensation defines the view.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from controller.agent.instructions import instructions_text, recalled_text
from state_store.events import (
    Condensation,
    Event,
    InstructionsLoaded,
    KnowledgeRecalled,
    ModelResponse,
    Observation,
    UserMessage,
)

Message = dict[str, Any]  # the chat-completions wire format litellm takes

SUMMARY_INTRO = "Summary of the earlier steps of this task (older history was condensed):\n\n"


def to_message(event: Event) -> Message | None:
    """The chat message an event contributes, or None for bookkeeping events."""
    if isinstance(event, UserMessage):
        return {"role": "user", "content": event.content}
    if isinstance(event, InstructionsLoaded | KnowledgeRecalled):  # OpenHands' recall
        text = (
            instructions_text(event)
            if isinstance(event, InstructionsLoaded)
            else recalled_text(event)
        )
        return None if text is None else {"role": "user", "content": text}
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
            "content": event.content,
        }
    return None


def summary_message(summary: str) -> Message:
    return {"role": "user", "content": SUMMARY_INTRO + summary}


def build_messages(system_prompt: str, events: Sequence[Event]) -> list[Message]:
    messages: list[Message] = [{"role": "system", "content": system_prompt}]
    condensation = latest_condensation(events)
    summary_due = condensation is not None and condensation.summary is not None
    for event in events:
        if condensation is not None and event.seq > condensation.kept_until:
            if event.seq <= condensation.forgotten_until:
                continue  # forgotten: the summary stands in its place
            if summary_due:
                summary_due = False
                messages.append(summary_message(condensation.summary or ""))
        message = to_message(event)
        if message is not None:
            messages.append(message)
    return messages


def latest_condensation(events: Sequence[Event]) -> Condensation | None:
    for event in reversed(events):
        if isinstance(event, Condensation):
            return event
    return None
