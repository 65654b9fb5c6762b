"""Reading a trajectory file, ours or OpenHands', into the steps runhands can replay: our
typed tool arguments plus the observation text as runhands' model would have seen it."""

from __future__ import annotations

from collections import Counter
from pathlib import Path
from typing import Any

import msgspec

from controller.trajectory.command_text import command_text
from controller.trajectory.recording import (
    RecordedMessage,
    RecordedStep,
    Recording,
    ReplayTurn,
)
from controller.trajectory.shapes import (
    ChatCompletion,
    CmdOutputExtras,
    CmdRunArgs,
    FileEditArgs,
    FileReadArgs,
    FinishArgs,
    RunhandsInfo,
    TrajectoryError,
)
from state_store.events import ExecuteBash, Finish, StrReplaceEditor, Think, ToolArgs


class _RawEvent(msgspec.Struct):
    """Any trajectory event, OpenHands' or ours: only what replay needs, loosely typed."""

    id: int | None = None
    source: str = ""
    message: str = ""
    action: str | None = None
    observation: str | None = None
    cause: int | None = None
    args: dict[str, Any] = {}
    content: str | None = None
    extras: dict[str, Any] | None = None
    timeout: float | None = None
    tool_call_metadata: dict[str, Any] | None = None
    runhands: RunhandsInfo | None = None

    @property
    def call_id(self) -> str:
        return str((self.tool_call_metadata or {}).get("tool_call_id") or "")


class _Wrapped(msgspec.Struct):
    """The download format of OpenHands' web app: {"trajectory": [...]}."""

    trajectory: list[_RawEvent]


_raw_decoder = msgspec.json.Decoder(list[_RawEvent] | _Wrapped)

# Bookkeeping events: nothing to execute, nothing worth a note.
_SILENT = {"message", "system", "recall", "change_agent_state", "condensation", "null"}


def from_trajectory(path: Path | str) -> Recording:
    """Read a trajectory file (ours or OpenHands') into the steps runhands can replay."""
    try:
        data = Path(path).read_bytes()
    except OSError as e:
        raise TrajectoryError(f"cannot read {path}: {e.strerror}") from None
    try:
        decoded = _raw_decoder.decode(data)
    except msgspec.DecodeError as e:
        raise TrajectoryError(f"{path}: not an OpenHands trajectory ({e})") from None
    raw = decoded.trajectory if isinstance(decoded, _Wrapped) else decoded
    return _recording(raw)


def _recording(raw: list[_RawEvent]) -> Recording:
    observations = [e for e in raw if e.observation is not None]
    by_cause = {e.cause: e for e in observations if e.cause is not None}
    by_call = {e.call_id: e for e in observations if e.call_id}
    task, workdir = _task(raw)
    turns: list[ReplayTurn] = []
    skipped: Counter[str] = Counter()
    task_seen = False
    for event in raw:
        if event.action == "message" and event.source in ("user", "agent"):
            # The first user message is the task; the others, and the agent's text answers,
            # are replayed in place (OpenHands keeps them in the history too).
            if task_seen or event.source == "agent":
                content = str(event.args.get("content") or event.message)
                if content:
                    source = "user" if event.source == "user" else "agent"
                    turns.append(RecordedMessage(source=source, content=content))
            task_seen = task_seen or event.source == "user"
            continue
        if event.action is None or event.source != "agent" or event.action in _SILENT:
            continue
        try:
            args = _tool_args(event)
        except (msgspec.DecodeError, ValueError):
            args = None
        if args is None:
            skipped[event.action] += 1
            continue
        observed = by_cause.get(event.id) or (by_call.get(event.call_id) if event.call_id else None)
        text = _observation_text(observed) if observed else None
        turns.append(RecordedStep(args=args, observation=text, tool_call_id=event.call_id))
    notes = [
        f"skipped {count} `{name}` action(s): runhands cannot replay them"
        for name, count in skipped.items()
    ]
    steps = [t for t in turns if isinstance(t, RecordedStep)]
    return Recording(task=task, workdir=workdir, steps=steps, turns=turns, notes=notes)


def _task(raw: list[_RawEvent]) -> tuple[str, str | None]:
    for event in raw:
        if event.action == "message" and event.source == "user":
            content = str(event.args.get("content") or event.message)
            info = event.runhands
            return content, (info.workdir or None) if info else None
    return "", None


def _tool_args(event: _RawEvent) -> ToolArgs | None:
    """Our typed arguments for an OpenHands action, or None when it is not replayable."""
    if event.action == "run":
        run = msgspec.convert(event.args, CmdRunArgs, strict=False)
        timeout = event.timeout if run.blocking else None  # OpenHands' default is not a limit
        return ExecuteBash(command=run.command, is_input=run.is_input, timeout=timeout)
    if event.action == "edit":
        return _edit_args(event)
    if event.action == "read":
        read = msgspec.convert(event.args, FileReadArgs, strict=False)
        return StrReplaceEditor(command="view", path=read.path, view_range=read.view_range)
    if event.action == "think":
        return Think(thought=str(event.args.get("thought") or ""))
    if event.action == "finish":
        finish = msgspec.convert(event.args, FinishArgs, strict=False)
        return Finish(message=finish.final_thought or finish.thought or event.message)
    return None


def _edit_args(event: _RawEvent) -> StrReplaceEditor | None:
    edit = msgspec.convert(event.args, FileEditArgs, strict=False)
    if edit.command:
        fields = {
            "command": edit.command,
            "path": edit.path,
            "file_text": edit.file_text,
            "old_str": edit.old_str,
            "new_str": edit.new_str,
            "insert_line": edit.insert_line,
        }
        return msgspec.convert(fields, StrReplaceEditor)
    # Older OpenHands files keep the editor call only in the model's tool call.
    arguments = _call_arguments(event)
    if arguments is None:
        return None  # e.g. OpenHands' LLM-based edit: nothing we can run
    return msgspec.json.decode(arguments, type=StrReplaceEditor)


def _call_arguments(event: _RawEvent) -> str | None:
    response = (event.tool_call_metadata or {}).get("model_response")
    if not isinstance(response, dict):
        return None
    completion = msgspec.convert(response, ChatCompletion, strict=False)
    for choice in completion.choices:
        for call in choice.message.tool_calls or []:
            if call.id == event.call_id and call.function.name == "str_replace_editor":
                return call.function.arguments
    return None


def _observation_text(event: _RawEvent) -> str:
    content = event.content or ""
    extras = event.extras or {}
    if event.observation == "run":
        return command_text(content, msgspec.convert(extras, CmdOutputExtras, strict=False))
    # Older OpenHands edit observations hold a diff; the model saw this instead.
    shown = extras.get("formatted_output_and_error")
    return shown if isinstance(shown, str) and shown else content
