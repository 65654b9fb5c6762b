"""What a user sees while a run goes on: progress on stderr, or JSON events on stdout."""

from __future__ import annotations

import sys
from collections.abc import Callable, Iterable
from typing import TextIO

import msgspec

from controller.agent.tools import describe_action, first_line
from sandbox.output import for_terminal, json_for_terminal
from state_store.events import (
    Action,
    ChangeSummary,
    Condensation,
    Event,
    InstructionsLoaded,
    KnowledgeRecalled,
    McpToolsListed,
    ModelResponse,
    ModelRetry,
    ModelSwitched,
    Observation,
    RunEnded,
    RunStarted,
    SetupScriptRan,
    Transition,
    UserMessage,
)
from state_store.files import Redactor

_PREVIEW_LINES = 4
_PREVIEW_WIDTH = 160


class Reporter:
    """Prints each event as it is saved. Secrets are redacted from everything printed, and
    what the model or a command wrote cannot drive the terminal (see `for_terminal`)."""

    def __init__(
        self,
        *,
        json_lines: bool = False,
        log_all_events: bool = False,
        secrets: Iterable[str] = (),
        out: TextIO | None = None,
        err: TextIO | None = None,
        listener: Callable[[Event], None] | None = None,
    ) -> None:
        self.json_lines = json_lines
        self.log_all_events = log_all_events
        self._redactor = Redactor(secrets)
        self._out = out or sys.stdout
        self._err = err or sys.stderr
        # Told of every event too (a batch's progress display).
        self._listener = listener

    def _redact(self, text: str) -> str:
        return self._redactor.text(text)

    def info(self, text: str) -> None:
        """A line for the human reader (stderr), whatever the mode."""
        print(for_terminal(self._redact(text)), file=self._err, flush=True)

    def event(self, event: Event) -> None:
        if self._listener is not None:
            self._listener(event)
        if self.json_lines:
            line = msgspec.json.encode(event).decode()
            print(json_for_terminal(self._redact(line)), file=self._out, flush=True)
        if self.log_all_events:
            self.info(f"[event] {msgspec.json.encode(event).decode()}")
        elif not self.json_lines or isinstance(event, RunEnded):
            text = describe(event)
            if text:
                self.info(text)
        if isinstance(event, RunEnded) and not self.json_lines and event.message:
            print(for_terminal(self._redact(event.message)), file=self._out, flush=True)


def describe(event: Event) -> str | None:
    """A short human line for the events worth showing; None for the others."""
    if isinstance(event, RunStarted):
        return f"run {event.run_id}: {event.model} in {event.workdir} ({event.runtime} sandbox)"
    if isinstance(event, Action):
        return f"[step {event.step}] {describe_action(event.args, _PREVIEW_WIDTH)}"
    if isinstance(event, Observation):
        return _preview(event.content, prefix="  ! " if event.error else "  | ")
    if isinstance(event, ModelResponse) and not event.tool_calls and event.content:
        return f"[step {event.step}] model said: {first_line(event.content, _PREVIEW_WIDTH)}"
    if isinstance(event, ModelRetry):
        return f"  model call failed ({event.error}); retry {event.attempt} in {event.wait_s:.1f}s"
    if isinstance(event, UserMessage) and event.origin == "warning":
        return f"  told the model: {first_line(event.content, _PREVIEW_WIDTH)}"
    if isinstance(event, ModelSwitched):
        return f"  switching model: {event.from_model} -> {event.to_model} ({event.reason})"
    if isinstance(event, Condensation):
        kind = "summarised" if event.summary is not None else "dropped"
        return f"  history condensed ({kind} events up to #{event.forgotten_until}): {event.reason}"
    if isinstance(event, McpToolsListed):
        return f"  MCP tools: {', '.join(t.name for t in event.tools) or '(none)'}"
    if isinstance(event, InstructionsLoaded) and event.files:
        return "  instructions loaded: " + ", ".join(f.path for f in event.files)
    if isinstance(event, InstructionsLoaded | KnowledgeRecalled) and event.recalled:
        names = ", ".join(f"{r.name} ({r.trigger!r})" for r in event.recalled)
        return f"  microagents triggered: {names}"
    if isinstance(event, SetupScriptRan):
        return f"  {event.command}: exit code {event.exit_code}\n" + _preview(event.output, "  | ")
    if isinstance(event, Transition) and event.dest in ("finished", "errored"):
        return f"{event.source} -> {event.dest}: {event.reason}"
    if isinstance(event, RunEnded):
        return (
            f"run {event.run_id} {event.state} ({event.reason}) after {event.steps} steps, "
            f"{event.prompt_tokens + event.completion_tokens} tokens, ${event.cost:.4f}, "
            f"{event.duration_s:.1f}s{describe_changes(event.changes, ', ')}; "
            f"exit code {event.exit_code}"
        )
    return None


def describe_changes(changes: ChangeSummary | None, prefix: str = "") -> str:
    """E.g. "3 files changed (+12 -4)"; "" when unknown."""
    if changes is None:
        return ""
    return f"{prefix}{changes.files} files changed (+{changes.added} -{changes.removed})"


def _preview(text: str, prefix: str) -> str:
    lines = text.rstrip().splitlines()
    shown = [prefix + line[:_PREVIEW_WIDTH] for line in lines[:_PREVIEW_LINES]]
    if len(lines) > _PREVIEW_LINES:
        shown.append(f"{prefix}... ({len(lines) - _PREVIEW_LINES} more lines)")
    return "\n".join(shown) if shown else prefix + "(no output)"
