"""OpenHands trajectories: a run exported as OpenHands' trajectory JSON, and read back.

The format is what OpenHands writes to `save_trajectory_path` and reads from
`replay_trajectory_path`: a JSON list of event dicts (`event_to_trajectory`), the task first
as a user `message` action, then agent actions (`run`, `edit`, `read`, `think`, `finish`,
`message`) each followed by its observation (`cause` = the action's `id`). Action `args`
carry exactly the fields of OpenHands' action classes, since OpenHands rejects unknown ones.

Reading turns a trajectory, ours or OpenHands', into `RecordedStep`s: our typed tool
arguments plus the observation text as runhands' model would have seen it.
"""

from __future__ import annotations

import os
import re
import sys
import tempfile
from collections import Counter
from collections.abc import Iterable, Sequence
from datetime import datetime
from pathlib import Path
from typing import Any

import msgspec

from state_store.events import (
    Action,
    AnyEvent,
    ExecuteBash,
    Finish,
    LogHeader,
    ModelResponse,
    Observation,
    RunStarted,
    StrReplaceEditor,
    Think,
    ToolArgs,
    UserMessage,
)
from state_store.store import EVENTS_FILE, StoreError, read_events, validate_run_id

# ---- the recording runhands replays -------------------------------------------------------


class RecordedStep(msgspec.Struct, frozen=True, kw_only=True):
    """One recorded tool call and what it showed the model (None: nothing was recorded)."""

    args: ToolArgs
    observation: str | None
    tool_call_id: str = ""


class Recording(msgspec.Struct, kw_only=True):
    task: str
    # The recording's working directory; None when the file does not say (OpenHands').
    workdir: str | None
    steps: list[RecordedStep]
    # Events that cannot be replayed, summarised for the user.
    notes: list[str] = []


# ---- OpenHands' shapes --------------------------------------------------------------------


class ChatFunction(msgspec.Struct):
    name: str = ""
    arguments: str = ""


class ChatToolCall(msgspec.Struct):
    id: str = ""
    type: str = "function"
    function: ChatFunction = msgspec.field(default_factory=ChatFunction)


class ChatMessage(msgspec.Struct):
    content: str | None = None
    role: str = "assistant"
    tool_calls: list[ChatToolCall] | None = None


class ChatChoice(msgspec.Struct):
    finish_reason: str = "tool_calls"
    index: int = 0
    message: ChatMessage = msgspec.field(default_factory=ChatMessage)


class ChatUsage(msgspec.Struct):
    prompt_tokens: int = 0
    completion_tokens: int = 0
    total_tokens: int = 0


class ChatCompletion(msgspec.Struct):
    """The model answer OpenHands keeps in `tool_call_metadata.model_response`."""

    id: str = ""
    created: int = 0
    model: str = ""
    object: str = "chat.completion"
    choices: list[ChatChoice] = []
    usage: ChatUsage = msgspec.field(default_factory=ChatUsage)


class ToolCallMetadata(msgspec.Struct):
    function_name: str
    tool_call_id: str
    model_response: ChatCompletion
    total_calls_in_response: int = 1


class RunhandsInfo(msgspec.Struct, omit_defaults=True):
    """Ours, on the task event (OpenHands ignores unknown top-level keys)."""

    run_id: str = ""
    workdir: str = ""


class MessageArgs(msgspec.Struct):
    content: str = ""
    image_urls: list[str] | None = None
    wait_for_response: bool = False


class CmdRunArgs(msgspec.Struct):
    command: str = ""
    is_input: bool = False
    thought: str = ""
    # True when the action has a hard timeout (OpenHands' top-level `timeout`).
    blocking: bool = False
    hidden: bool = False
    confirmation_state: str = "confirmed"


class FileEditArgs(msgspec.Struct):
    path: str = ""
    command: str = ""
    file_text: str | None = None
    old_str: str | None = None
    new_str: str | None = None
    insert_line: int | None = None
    content: str = ""
    start: int = 1
    end: int = -1
    thought: str = ""
    impl_source: str = "oh_aci"


class FileReadArgs(msgspec.Struct):
    path: str = ""
    start: int = 0
    end: int = -1
    thought: str = ""
    impl_source: str = "oh_aci"
    view_range: list[int] | None = None


class ThinkArgs(msgspec.Struct):
    thought: str = ""


class FinishArgs(msgspec.Struct):
    final_thought: str = ""
    outputs: dict[str, str] = {}
    thought: str = ""


ActionArgs = MessageArgs | CmdRunArgs | FileEditArgs | FileReadArgs | ThinkArgs | FinishArgs


class CmdMetadata(msgspec.Struct):
    exit_code: int = -1
    pid: int = -1
    username: str | None = None
    hostname: str | None = None
    working_dir: str | None = None
    py_interpreter_path: str | None = None
    prefix: str = ""
    suffix: str = ""


class CmdOutputExtras(msgspec.Struct):
    command: str = ""
    metadata: CmdMetadata | None = None
    hidden: bool = False
    # OpenHands' older field, still accepted by its reader.
    exit_code: int | None = None


class FileEditExtras(msgspec.Struct):
    path: str
    prev_exist: bool
    old_content: str | None = None
    new_content: str | None = None
    impl_source: str = "oh_aci"


class FileReadExtras(msgspec.Struct):
    path: str
    impl_source: str = "oh_aci"


class ErrorExtras(msgspec.Struct):
    error_id: str = ""


class NoExtras(msgspec.Struct):
    pass


ObservationExtras = CmdOutputExtras | FileEditExtras | FileReadExtras | ErrorExtras | NoExtras


class ActionEvent(msgspec.Struct, kw_only=True, omit_defaults=True):
    id: int
    timestamp: str
    source: str
    message: str
    action: str
    tool_call_metadata: ToolCallMetadata | None = None
    args: ActionArgs
    # A hard timeout in seconds (OpenHands also sets `args.blocking`).
    timeout: float | None = None
    runhands: RunhandsInfo | None = None


class ObservationEvent(msgspec.Struct, kw_only=True, omit_defaults=True):
    id: int
    timestamp: str
    source: str
    message: str
    cause: int | None = None
    observation: str
    tool_call_metadata: ToolCallMetadata | None = None
    content: str
    extras: ObservationExtras
    success: bool | None = None


TrajectoryEvent = ActionEvent | ObservationEvent


# ---- export -------------------------------------------------------------------------------

_EXIT_LINE = re.compile(r"(?:^|\n)(\[The command completed with exit code (-?\d+)\.\])\Z")
_CWD_LINE = re.compile(r"(?:^|\n)\[Current working directory: ([^\n]*)\]\Z")


def to_trajectory(events: Iterable[AnyEvent]) -> list[TrajectoryEvent]:
    """A run's events as OpenHands trajectory events (bookkeeping events are left out)."""
    exporter = _Exporter()
    for event in events:
        exporter.add(event)
    return exporter.out


def encode_trajectory(events: Iterable[AnyEvent]) -> bytes:
    return msgspec.json.format(msgspec.json.encode(to_trajectory(events)), indent=2) + b"\n"


class _Exporter:
    """Turns events into trajectory events, remembering what later events refer to."""

    def __init__(self) -> None:
        self.out: list[TrajectoryEvent] = []
        self.info = RunhandsInfo()
        self.task_seen = False
        self.responses: dict[str, ModelResponse] = {}  # by tool call id
        self.actions: dict[str, Action] = {}  # by tool call id

    def add(self, event: AnyEvent) -> None:
        if isinstance(event, LogHeader):
            self.info.run_id = event.run_id
        elif isinstance(event, RunStarted):
            self.info = RunhandsInfo(run_id=event.run_id, workdir=event.workdir)
        elif isinstance(event, UserMessage):
            self._user_message(event)
        elif isinstance(event, ModelResponse):
            self._model_response(event)
        elif isinstance(event, Action):
            self._action(event)
        elif isinstance(event, Observation):
            self._observation(event)

    def _user_message(self, event: UserMessage) -> None:
        first = not self.task_seen
        self.task_seen = True
        self.out.append(
            ActionEvent(
                id=event.seq,
                timestamp=_timestamp(event.ts),
                source="user",
                message=event.content,
                action="message",
                args=MessageArgs(content=event.content),
                runhands=self.info if first else None,
            )
        )

    def _model_response(self, event: ModelResponse) -> None:
        for call in event.tool_calls:
            self.responses[call.id] = event
        if not event.tool_calls and event.content:
            self.out.append(
                ActionEvent(
                    id=event.seq,
                    timestamp=_timestamp(event.ts),
                    source="agent",
                    message=event.content,
                    action="message",
                    args=MessageArgs(content=event.content, wait_for_response=True),
                )
            )

    def _action(self, event: Action) -> None:
        self.actions[event.tool_call_id] = event
        response = self.responses.get(event.tool_call_id)
        # OpenHands keeps the text sent with tool calls as the first action's thought.
        first = response is not None and response.tool_calls[0].id == event.tool_call_id
        thought = (response.content or "") if first and response else ""
        name, message, args = _action_body(event.args, thought)
        timeout = event.args.timeout if isinstance(event.args, ExecuteBash) else None
        self.out.append(
            ActionEvent(
                id=event.seq,
                timestamp=_timestamp(event.ts),
                source="agent",
                message=message,
                action=name,
                tool_call_metadata=self._metadata(event.tool_call_id, _tool_name(event.args)),
                args=args,
                timeout=timeout,
            )
        )

    def _observation(self, event: Observation) -> None:
        action = self.actions.get(event.tool_call_id)
        if action is not None and isinstance(action.args, Finish):
            return  # OpenHands records no observation for finish
        name, message, content, extras = _observation_body(event, action)
        self.out.append(
            ObservationEvent(
                id=event.seq,
                timestamp=_timestamp(event.ts),
                source="agent",
                message=message,
                cause=action.seq if action else None,
                observation=name,
                tool_call_metadata=self._metadata(event.tool_call_id, event.tool),
                content=content,
                extras=extras,
                success=(event.exit_code == 0) if name == "run" else None,
            )
        )

    def _metadata(self, call_id: str, function_name: str) -> ToolCallMetadata | None:
        response = self.responses.get(call_id)
        if response is None:
            return None
        return ToolCallMetadata(
            function_name=function_name,
            tool_call_id=call_id,
            model_response=_completion(response, self.info.run_id),
            total_calls_in_response=len(response.tool_calls),
        )


def _timestamp(ts: float) -> str:
    return datetime.fromtimestamp(ts).isoformat()  # local and naive, as OpenHands writes it


def _tool_name(args: ToolArgs) -> str:
    return args.__struct_config__.tag  # type: ignore[return-value]


def _completion(response: ModelResponse, run_id: str) -> ChatCompletion:
    calls = [
        ChatToolCall(id=c.id, function=ChatFunction(name=c.name, arguments=c.arguments))
        for c in response.tool_calls
    ]
    usage = ChatUsage(
        prompt_tokens=response.prompt_tokens,
        completion_tokens=response.completion_tokens,
        total_tokens=response.prompt_tokens + response.completion_tokens,
    )
    return ChatCompletion(
        id=f"{run_id}-step-{response.step}",
        created=int(response.ts),
        model=response.model,
        choices=[ChatChoice(message=ChatMessage(content=response.content, tool_calls=calls))],
        usage=usage,
    )


def _action_body(args: ToolArgs, thought: str) -> tuple[str, str, ActionArgs]:
    """OpenHands' action name, message and args for one of our tool calls."""
    if isinstance(args, ExecuteBash):
        run = CmdRunArgs(
            command=args.command,
            is_input=args.is_input,
            thought=thought,
            blocking=args.timeout is not None,
        )
        return "run", f"Running command: {args.command}", run
    if isinstance(args, StrReplaceEditor):
        if args.command == "view":
            read = FileReadArgs(path=args.path, thought=thought, view_range=args.view_range)
            return "read", f"Reading file: {args.path}", read
        edit = FileEditArgs(
            path=args.path,
            command=args.command,
            file_text=args.file_text,
            old_str=args.old_str,
            new_str=args.new_str,
            insert_line=args.insert_line,
            thought=thought,
        )
        return "edit", f"Running {args.command} on {args.path}", edit
    if isinstance(args, Think):
        return "think", f"I am thinking...: {args.thought}", ThinkArgs(thought=args.thought)
    finish = FinishArgs(final_thought=args.message, thought=thought)
    return "finish", args.message or "All done!", finish


def _observation_body(
    event: Observation, action: Action | None
) -> tuple[str, str, str, ObservationExtras]:
    """OpenHands' observation name, message, content and extras for one of ours."""
    args = action.args if action else None
    if event.error or args is None:
        return "error", event.content, event.content, ErrorExtras()
    if isinstance(args, ExecuteBash):
        content, metadata = split_command_text(event.content, event.exit_code)
        extras = CmdOutputExtras(command=args.command, metadata=metadata, exit_code=event.exit_code)
        message = f"Command `{args.command}` executed with exit code {metadata.exit_code}."
        return "run", message, content, extras
    if isinstance(args, StrReplaceEditor) and args.command == "view":
        read = FileReadExtras(path=args.path)
        return "read", f"I read the file {args.path}.", event.content, read
    if isinstance(args, StrReplaceEditor):
        edit = FileEditExtras(path=args.path, prev_exist=args.command != "create")
        return "edit", f"I edited the file {args.path}.", event.content, edit
    return "think", event.content, event.content, NoExtras()


def split_command_text(text: str, exit_code: int | None) -> tuple[str, CmdMetadata]:
    """Our command observation split the OpenHands way: output, plus the exit-code line as
    `suffix` and the working directory in `metadata` (`command_text` joins them back)."""
    metadata = CmdMetadata(exit_code=-1 if exit_code is None else exit_code)
    cwd = _CWD_LINE.search(text)
    if cwd:
        metadata.working_dir = cwd.group(1)
        text = text[: cwd.start()]
    done = _EXIT_LINE.search(text)
    if done:
        metadata.suffix = "\n" + done.group(1)
        metadata.exit_code = int(done.group(2))
        text = text[: done.start()]
    return text, metadata


def command_text(content: str, extras: CmdOutputExtras) -> str:
    """A `run` observation as runhands shows it to the model (see `format_command_result`)."""
    metadata = extras.metadata or CmdMetadata()
    suffix = metadata.suffix.removeprefix("\n")
    if extras.metadata is None and extras.exit_code not in (None, -1):
        suffix = f"[The command completed with exit code {extras.exit_code}.]"  # older files
    cwd = metadata.working_dir
    parts = [
        metadata.prefix + content,
        suffix,
        f"[Current working directory: {cwd}]" if cwd else "",
    ]
    return "\n".join(part for part in parts if part)


# ---- writing ------------------------------------------------------------------------------


def save_trajectory(path: str, events: Sequence[AnyEvent], *, secrets: Iterable[str] = ()) -> Path:
    """Write a run's trajectory for `[core] save_trajectory_path` / SAVE_TRAJECTORY_PATH.

    Like OpenHands, a directory gets `<run id>.json` inside it. The file is written
    atomically with mode 0600; known secret values are replaced by `****`. Returns the file.
    """
    target = Path(path).expanduser()
    if target.is_dir():
        target = target / f"{_run_id(events)}.json"
    _write_private(target, _redact(encode_trajectory(events), secrets))
    return target


def export_trajectory(root: Path, run_id: str, output: Path | None) -> int:
    """`runhands trajectory RUN [-o FILE]`: the run's trajectory on stdout or in a file."""
    events = read_run(root, run_id)
    if output is None:
        sys.stdout.write(encode_trajectory(events).decode())
        sys.stdout.flush()
        return 0
    written = save_trajectory(str(output), events)
    print(f"runhands: wrote the trajectory of run {run_id} to {written}", file=sys.stderr)
    return 0


def read_run(root: Path, run_id: str) -> list[AnyEvent]:
    validate_run_id(run_id)
    path = root / run_id / EVENTS_FILE
    if not path.is_file():
        raise StoreError(f"no run named {run_id!r} in {root} (`runhands list` shows them)")
    return read_events(path)


def _run_id(events: Sequence[AnyEvent]) -> str:
    for event in events:
        if isinstance(event, LogHeader | RunStarted):
            return event.run_id
    return "trajectory"


def _redact(data: bytes, secrets: Iterable[str]) -> bytes:
    for secret in secrets:
        if secret and len(secret) >= 4:
            data = data.replace(secret.encode(), b"****")
    return data


def _write_private(path: Path, data: bytes) -> None:
    """Replace path atomically (mkstemp creates the temporary file 0600); an OSError
    becomes a one-line ValueError."""
    tmp: str | None = None
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except OSError as e:
        raise ValueError(f"cannot write {path}: {e.strerror or e}") from None
    finally:
        if tmp is not None:
            Path(tmp).unlink(missing_ok=True)  # left only when something failed


# ---- reading ------------------------------------------------------------------------------


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
        raise ValueError(f"cannot read {path}: {e.strerror}") from None
    try:
        decoded = _raw_decoder.decode(data)
    except msgspec.DecodeError as e:
        raise ValueError(f"{path}: not an OpenHands trajectory ({e})") from None
    raw = decoded.trajectory if isinstance(decoded, _Wrapped) else decoded
    return _recording(raw)


def _recording(raw: list[_RawEvent]) -> Recording:
    observations = [e for e in raw if e.observation is not None]
    by_cause = {e.cause: e for e in observations if e.cause is not None}
    by_call = {e.call_id: e for e in observations if e.call_id}
    task, workdir = _task(raw)
    steps: list[RecordedStep] = []
    skipped: Counter[str] = Counter()
    for event in raw:
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
        steps.append(RecordedStep(args=args, observation=text, tool_call_id=event.call_id))
    notes = [
        f"skipped {count} `{name}` action(s): runhands cannot replay them"
        for name, count in skipped.items()
    ]
    return Recording(task=task, workdir=workdir, steps=steps, notes=notes)


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


def recording_from_events(events: Sequence[AnyEvent]) -> Recording:
    """The steps of one of our own runs, straight from its event log."""
    steps: list[RecordedStep] = []
    waiting: dict[str, int] = {}  # tool call id -> index of its step, until observed
    for event in events:
        if isinstance(event, Action):
            waiting[event.tool_call_id] = len(steps)
            steps.append(
                RecordedStep(args=event.args, observation=None, tool_call_id=event.tool_call_id)
            )
        elif isinstance(event, Observation) and event.tool_call_id in waiting:
            index = waiting.pop(event.tool_call_id)
            steps[index] = msgspec.structs.replace(steps[index], observation=event.content)
    task = next((e.content for e in events if isinstance(e, UserMessage)), "")
    workdir = next((e.workdir for e in events if isinstance(e, RunStarted)), None)
    return Recording(task=task, workdir=workdir, steps=steps)
