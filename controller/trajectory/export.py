"""A run's events as OpenHands trajectory events: the task first as a user `message` action,
then agent actions (`run`, `edit`, `read`, `think`, `finish`, `message`) each followed by
its observation (`cause` = the action's `id`)."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime

import msgspec

from controller.trajectory.command_text import split_command_text
from controller.trajectory.shapes import (
    ActionArgs,
    ActionEvent,
    ChatChoice,
    ChatCompletion,
    ChatFunction,
    ChatMessage,
    ChatToolCall,
    ChatUsage,
    CmdOutputExtras,
    CmdRunArgs,
    ErrorExtras,
    FileEditArgs,
    FileEditExtras,
    FileReadArgs,
    FileReadExtras,
    FinishArgs,
    McpArgs,
    McpExtras,
    MessageArgs,
    NoExtras,
    ObservationEvent,
    ObservationExtras,
    RunhandsInfo,
    ThinkArgs,
    ToolCallMetadata,
    TrajectoryEvent,
)
from state_store.events import (
    Action,
    AnyEvent,
    Event,
    ExecuteBash,
    Finish,
    LogHeader,
    McpCall,
    ModelResponse,
    Observation,
    RunStarted,
    StrReplaceEditor,
    Think,
    ToolArgs,
    UserMessage,
)


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
        message = _message(event, "user", event.content)
        message.runhands = self.info if first else None  # ours, on the task only
        self.out.append(message)

    def _model_response(self, event: ModelResponse) -> None:
        for call in event.tool_calls:
            self.responses[call.id] = event
        if not event.tool_calls and event.content:
            # A text answer: OpenHands' agent message, waiting for the user's reply.
            self.out.append(_message(event, "agent", event.content, wait_for_response=True))

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


def _message(
    event: Event, source: str, content: str, *, wait_for_response: bool = False
) -> ActionEvent:
    return ActionEvent(
        id=event.seq,
        timestamp=_timestamp(event.ts),
        source=source,
        message=content,
        action="message",
        args=MessageArgs(content=content, wait_for_response=wait_for_response),
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
    if isinstance(args, McpCall):
        mcp = McpArgs(name=args.name, arguments=args.arguments, thought=thought)
        return "call_tool_mcp", f"**MCPAction**\nNAME: {args.name}", mcp
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
    if isinstance(args, McpCall):
        extras = McpExtras(name=args.name, arguments=args.arguments)
        return "mcp", event.content, event.content, extras
    return "think", event.content, event.content, NoExtras()
