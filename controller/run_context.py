"""Everything the state handlers share during one run, and what a handler returns."""

from __future__ import annotations

import time
from concurrent.futures import Future
from dataclasses import dataclass, field
from typing import Any

import msgspec

from controller.config import AppConfig
from controller.history import Message, to_message
from controller.model_client import ModelClient
from controller.reporting import Reporter
from controller.trajectory import RecordedStep
from sandbox import Sandbox
from sandbox.editor import Editor
from state_store.events import Event, Snapshot, ToolArgs, ToolCall
from state_store.store import RunStore


class Next(msgspec.Struct, frozen=True):
    """A state handler's decision: the trigger to fire and why (saved with the transition)."""

    trigger: str
    reason: str
    # For `finish` and `fail`: the EndReason that decides the exit code.
    end: str = ""


class PendingCall(msgspec.Struct, frozen=True):
    """A tool call from the last model answer: valid arguments, or the error to report."""

    call: ToolCall
    args: ToolArgs | None = None
    error: str = ""


@dataclass
class RunContext:
    config: AppConfig
    store: RunStore
    sandbox: Sandbox
    reporter: Reporter
    snapshot: Snapshot
    workdir: str
    client_future: Future[ModelClient]
    editor: Editor
    messages: list[Message] = field(default_factory=list)
    pending: list[PendingCall] = field(default_factory=list)
    finish_message: str | None = None
    # Set by planning when the model answered with text only: observing replies "continue".
    answered_without_action: bool = False
    # Every event of the run so far (the log's content): condensation plans from it.
    events: list[Event] = field(default_factory=list)
    # The model's input window in tokens, once known (0: unknown).
    window: int | None = None
    # Recorded actions init carries out before the model takes over (already relocated).
    replay_steps: list[RecordedStep] = field(default_factory=list)
    tools: list[dict[str, Any]] = field(default_factory=list)
    # Monotonic time up to which this process's active time is in counters.runtime_s.
    clock: float = field(default_factory=time.monotonic)

    @property
    def allowed_tools(self) -> set[str]:
        return {spec["function"]["name"] for spec in self.tools}

    @property
    def client(self) -> ModelClient:
        # Created in the background during init: litellm's import overlaps sandbox start-up.
        return self.client_future.result()

    def record(self, event_type: type[Event], **fields: Any) -> Event:
        """Save an event, add it to the model's view, and report it."""
        event = self.store.append(event_type, **fields)
        self.events.append(event)
        message = to_message(event)
        if message is not None:
            self.messages.append(message)
        self.reporter.event(event)
        return event

    def save_snapshot(self) -> None:
        self.snapshot.last_seq = self.store.last_seq
        self.snapshot.updated_at = time.time()
        self.store.save_snapshot(self.snapshot)
