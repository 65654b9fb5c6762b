"""Everything the state handlers share during one run, and what a handler returns."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from concurrent.futures import Future
from dataclasses import dataclass, field
from typing import Any

import msgspec

from controller.agent.history import Message, to_message
from controller.agent.mcp_tools import McpServers
from controller.agent.reporting import Reporter
from controller.agent.run_state import apply
from controller.agent.tools import Outcome, clip_observation
from controller.config import AppConfig
from controller.model_client import ModelClient
from sandbox import Sandbox
from sandbox.editor import Editor
from state_store.checkpoints import CheckpointStore
from state_store.events import Event, Observation, Snapshot, ToolCall
from state_store.store import RunStore

Recorder = Callable[..., Event]


def save_event(
    store: RunStore, snapshot: Snapshot, reporter: Reporter, event_type: type[Event], **fields: Any
) -> Event:
    """Write an event, fold it into the snapshot (which so stays the log's), report it."""
    event = store.append(event_type, **fields)
    apply(snapshot, event)
    reporter.event(event)
    return event


class Next(msgspec.Struct, frozen=True):
    """A state handler's decision: the trigger to fire and why (saved with the transition)."""

    trigger: str
    reason: str
    # For `finish` and `fail`: the EndReason that decides the exit code.
    end: str = ""


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
    # The run's history so far: the log's events, less the stretches a rewind left out (the
    # truth handlers decide from, with `snapshot`, which is derived from the log).
    events: list[Event] = field(default_factory=list)
    # The workspace's checkpoints (None: git is missing).
    checkpoints: CheckpointStore | None = None
    # The model's input window in tokens, once known (0: unknown).
    window: int | None = None
    tools: list[dict[str, Any]] = field(default_factory=list)
    # `runhands resume -t`: the new instruction init gives the model.
    instruction: str | None = None
    # This process's start (monotonic) and the run's active seconds before it.
    clock: float = field(default_factory=time.monotonic)
    runtime_before: float = 0.0
    # Set by a batch to stop the run (see controller/run/controls.py).
    stop: threading.Event | None = None
    # The workspace on this machine (the directory behind `workdir` in a container).
    host_workdir: str = ""
    # The run's MCP servers, started by init when `[mcp]` names some (closed by drive).
    mcp: McpServers | None = None

    @property
    def allowed_tools(self) -> set[str]:
        return {spec["function"]["name"] for spec in self.tools}

    @property
    def client(self) -> ModelClient:
        # Created in the background during init: litellm's import overlaps sandbox start-up.
        return self.client_future.result()

    def runtime(self) -> float:
        """Seconds the run has been active, over all its processes, as of now."""
        return round(self.runtime_before + time.monotonic() - self.clock, 3)

    def record(self, event_type: type[Event], **fields: Any) -> Event:
        """Save an event, fold it into the snapshot, report it, add it to the model's view."""
        event = save_event(self.store, self.snapshot, self.reporter, event_type, **fields)
        self.events.append(event)
        message = to_message(event)
        if message is not None:
            self.messages.append(message)
        return event

    def observe(self, call: ToolCall, outcome: Outcome, *, malformed: bool = False) -> None:
        """Record a tool call's observation, cut to the size the model is shown."""
        self.record(
            Observation,
            step=self.snapshot.counters.steps,
            tool_call_id=call.id,
            tool=call.name,
            content=clip_observation(outcome.content, self.config.llm.max_message_chars),
            error=outcome.error,
            exit_code=outcome.exit_code,
            malformed=malformed,
        )

    def save_snapshot(self) -> None:
        self.store.save_snapshot(self.snapshot)
