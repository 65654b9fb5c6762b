"""OpenHands' trajectory JSON, typed: the event dicts `event_to_trajectory` writes. Action
`args` carry exactly the fields of OpenHands' action classes, since OpenHands rejects unknown
ones."""

from __future__ import annotations

import msgspec

from controller.errors import UserError


class TrajectoryError(UserError):
    """A trajectory file that cannot be read, is not OpenHands', or cannot be written."""


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


class McpArgs(msgspec.Struct):
    """OpenHands' MCPAction (`call_tool_mcp`)."""

    name: str = ""
    arguments: dict[str, object] = {}
    thought: str = ""


ActionArgs = (
    MessageArgs | CmdRunArgs | FileEditArgs | FileReadArgs | ThinkArgs | FinishArgs | McpArgs
)


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


class McpExtras(msgspec.Struct):
    """OpenHands' MCPObservation (`mcp`)."""

    name: str = ""
    arguments: dict[str, object] = {}


ObservationExtras = (
    CmdOutputExtras | FileEditExtras | FileReadExtras | ErrorExtras | NoExtras | McpExtras
)


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
