"""The tools offered to the model (OpenHands' names and arguments) and tool-call parsing."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import msgspec

from controller.trajectory.command_text import exit_line, join_command_text
from sandbox import CommandResult, Sandbox
from sandbox.editor import COMMANDS, ERROR_PREFIX, Editor, unrecognized_command
from sandbox.output import truncate_middle
from state_store.events import (
    TOOL_ARG_TYPES,
    ExecuteBash,
    Finish,
    McpCall,
    StrReplaceEditor,
    Think,
    ToolArgs,
    ToolCall,
)

if TYPE_CHECKING:
    from controller.agent.mcp_tools import McpServers

# Tools that change nothing: one left without its result by a crash is simply run again.
PURE_TOOLS = frozenset({"think", "finish"})

INTERRUPTED_ACTION = (
    "This action was interrupted: runhands stopped (crash or signal) before its result was "
    "saved, so it may have run partly or fully. Check the current state before running it "
    "again if it is still needed."
)
ALREADY_FINISHED = "Not run: the task was already finished."

# OpenHands' parameter (required there since 0.54, so OpenHands-tuned models send it);
# optional here and its value ignored. OpenHands' description points to a section of its
# system prompt that ours does not have, so only the enum is declared (the token bill).
SECURITY_RISK = {"type": "string", "enum": ["LOW", "MEDIUM", "HIGH"]}

# Descriptions are kept short: every request re-sends them (bench/bench_token_bill.py).
_BASH = {
    "name": "execute_bash",
    "description": (
        "Run a bash command in a persistent shell (cwd and environment persist).\n"
        "* One command at a time; chain with && or ;. Several lines run as one command.\n"
        "* Run long-lived commands in the background: `cmd > log 2>&1 &`.\n"
        "* A command silent for a while, or past its `timeout`, keeps running: you get its "
        "output so far and exit code -1; send '' for more, input with is_input=true, or C-c "
        "(is_input=true) to interrupt it.\n"
        "* Output over 30,000 characters is cut in the middle."
    ),
    "parameters": {
        "type": "object",
        "properties": {
            "command": {
                "type": "string",
                "description": (
                    "With is_input=true: input for the running process, C-c/C-d/C-z, or '' "
                    "for more output."
                ),
            },
            # OpenHands' declaration (a string enum); true/false as JSON booleans are taken too.
            "is_input": {"type": "string", "enum": ["true", "false"]},
            "timeout": {
                "type": "number",
                "description": "Hard timeout in seconds; the command is left running.",
            },
            "security_risk": SECURITY_RISK,
        },
        "required": ["command"],
    },
}

_EDITOR = {
    "name": "str_replace_editor",
    "description": (
        "View, create and edit files.\n"
        "* `view`: a file with line numbers (`cat -n`), or a directory 2 levels deep.\n"
        "* `create`: a new file (fails if it exists).\n"
        "* `str_replace`: `old_str` must match EXACTLY ONE place (whitespace included).\n"
        "* `insert`: `new_str` after line `insert_line` (0 = at the top).\n"
        "* `undo_edit`: revert the file's last edit."
    ),
    "parameters": {
        "type": "object",
        "properties": {
            "command": {
                "type": "string",
                "enum": ["view", "create", "str_replace", "insert", "undo_edit"],
            },
            "path": {"type": "string", "description": "Absolute path."},
            "file_text": {"type": "string"},
            "old_str": {"type": "string"},
            "new_str": {"type": "string"},
            "insert_line": {"type": "integer"},
            "view_range": {
                "type": "array",
                "items": {"type": "integer"},
                "description": "[start, end], 1-based; end -1 = to the end.",
            },
            "security_risk": SECURITY_RISK,
        },
        "required": ["command", "path"],
    },
}

_THINK = {
    "name": "think",
    "description": "Log a thought (plan, debug); it changes nothing.",
    "parameters": {
        "type": "object",
        "properties": {"thought": {"type": "string"}},
        "required": ["thought"],
    },
}

_FINISH = {
    "name": "finish",
    "description": "End the task, once it is done and verified.",
    "parameters": {
        "type": "object",
        "properties": {"message": {"type": "string", "description": "Summary of the work."}},
        "required": ["message"],
    },
}

_BY_FLAG = {
    "enable_cmd": _BASH,
    "enable_editor": _EDITOR,
    "enable_think": _THINK,
    "enable_finish": _FINISH,
}


def tool_specs(enabled: dict[str, bool]) -> list[dict[str, Any]]:
    """OpenAI-style function specs for the tools enabled in `[agent]`."""
    return [
        {"type": "function", "function": spec}
        for flag, spec in _BY_FLAG.items()
        if enabled.get(flag, True)
    ]


# OpenHands appends this to every error observation (conversation_memory.py). OpenHands also
# drops the whole assistant turn of a malformed call and sends the error as a user message; we
# keep that turn and answer each bad call with its own tool message (valid sibling calls still
# run, and the model sees its own mistake next to the error), with OpenHands' words and this
# suffix so the model recovers the same way. The text is saved in the call's Observation, so
# resume and replay show exactly what the live run showed.
ERROR_SUFFIX = "\n[Error occurred in processing last action]"


class MalformedToolCall(Exception):
    """A tool call the controller cannot carry out; its message is what the model is shown
    (OpenHands' wording and ERROR_SUFFIX)."""

    def __init__(self, message: str) -> None:
        super().__init__(message + ERROR_SUFFIX)


def parse_tool_call(call: ToolCall, allowed: set[str]) -> ToolArgs:
    """Validate a tool call with OpenHands' checks, words and order (OpenHands 0.62.0
    `codeact_agent/function_calling.py`): JSON, the tool's required arguments, unexpected
    editor arguments, and an unknown tool last."""
    try:  # "" (some providers' way of sending no arguments) is taken as {}
        raw = msgspec.json.decode(call.arguments or "{}")
    except msgspec.DecodeError:
        raise MalformedToolCall(f"Failed to parse tool call arguments: {call.arguments}") from None
    if not isinstance(raw, dict):  # OpenHands would crash; same words, and what is expected
        raise MalformedToolCall(
            f"Failed to parse tool call arguments: {call.arguments} (a JSON object is expected)"
        )
    arg_type = TOOL_ARG_TYPES.get(call.name)
    if call.name in allowed and arg_type is None:  # offered and not ours: an MCP tool
        return McpCall(name=call.name, arguments=raw)
    if call.name not in allowed or arg_type is None:
        raise MalformedToolCall(
            f"Tool {call.name} is not registered. (arguments: {raw!r}). Please check the tool "
            "name and retry with an existing tool."
        )
    _check_arguments(call.name, arg_type, raw)
    try:
        return msgspec.convert(raw, arg_type, strict=False)
    except msgspec.ValidationError as e:
        raise MalformedToolCall(f"Invalid arguments for {call.name}: {e}.") from None


def _check_arguments(name: str, arg_type: type[ToolArgs], raw: dict[str, Any]) -> None:
    """OpenHands' messages for a missing required argument and for an editor argument the
    spec does not have; the editor's own errors for a bad `command` or `insert_line`."""
    for field in msgspec.structs.fields(arg_type):
        if field.required and field.encode_name not in raw:
            raise MalformedToolCall(
                f'Missing required argument "{field.encode_name}" in tool call {name}'
            )
    if name != "str_replace_editor":
        return
    command = raw["command"]
    if command not in COMMANDS:  # openhands-aci's editor answers this, after the runtime's ERROR:
        raise MalformedToolCall(ERROR_PREFIX + unrecognized_command(str(command)))
    if command != "view":  # OpenHands drops view_range and refuses unknown keys, except for view
        allowed = _EDITOR["parameters"]["properties"]
        for key in raw:
            if key not in allowed and key != "view_range":
                names = ", ".join(repr(k) for k in allowed)  # a set's repr, in a stable order
                raise MalformedToolCall(
                    f"Unexpected argument {key} in tool call {name}. Allowed arguments are: "
                    f"{{{names}}}"
                )
    insert_line = raw.get("insert_line")
    if isinstance(insert_line, str) and not insert_line.strip().lstrip("-").isdigit():
        # OpenHands' runtime converts "185" to 185 and refuses the rest with these words.
        raise MalformedToolCall(
            f"{ERROR_PREFIX}Invalid insert_line value: {insert_line!r}. Expected an integer."
        )


class Outcome(msgspec.Struct, frozen=True):
    """What one tool call produced, before it is recorded."""

    content: str
    error: bool = False
    exit_code: int | None = None


def run_tool(
    sandbox: Sandbox, editor: Editor, args: ToolArgs, mcp: McpServers | None = None
) -> Outcome:
    """Carry out one validated tool call (live runs, init's replay and `runhands replay`
    share it); SandboxError means the sandbox itself broke."""
    if isinstance(args, McpCall):
        if mcp is None:
            return Outcome(f"MCP tool {args.name} is not available{ERROR_SUFFIX}", error=True)
        result = mcp.call(args.name, args.arguments)
        return Outcome(result.content, error=result.error)
    if isinstance(args, ExecuteBash):
        result = sandbox.run(args.command, is_input=args.is_input, timeout=args.timeout)
        return Outcome(format_command_result(result), exit_code=result.exit_code)
    if isinstance(args, StrReplaceEditor):
        edit = editor.execute(
            args.command,
            args.path,
            file_text=args.file_text,
            old_str=args.old_str,
            new_str=args.new_str,
            insert_line=args.insert_line,
            view_range=args.view_range,
        )
        return Outcome(edit.output, error=edit.error)
    if isinstance(args, Think):
        return Outcome("Your thought has been logged.")
    if isinstance(args, Finish):
        return Outcome("The task is marked as finished.")
    raise TypeError(f"no executor for {type(args).__name__}")


def clip_observation(content: str, limit: int) -> str:
    """An observation cut in the middle to `limit` characters, as the model sees it."""
    return truncate_middle(content, limit)


def format_command_result(result: CommandResult) -> str:
    """The observation text for a command, as OpenHands composes it: prefix, output (right
    stripped), notes, the exit-code line, then the metadata lines of a completed command."""
    completed = not result.still_running and result.exit_code != -1
    suffix = [result.note, exit_line(result.exit_code, result.key) if completed else ""]
    return join_command_text(
        result.prefix + result.output.rstrip(),
        "\n".join(line for line in suffix if line),
        cwd=result.cwd if completed else "",
        python=result.python if completed else "",
        exit_code=result.exit_code if completed else -1,
    )


def describe_action(args: ToolArgs | None, width: int = 120) -> str:
    """An action in one short line, for progress, replay and the model's warnings:
    `$ ls -la`, `input y`, `edit create /w/f.py`, `think: ...`, `finish`."""
    if isinstance(args, ExecuteBash):
        return f"{'input' if args.is_input else '$'} {first_line(args.command, width)}"
    if isinstance(args, StrReplaceEditor):
        return f"edit {args.command} {args.path}"
    if isinstance(args, Think):
        return f"think: {first_line(args.thought, width)}"
    if isinstance(args, Finish):
        return "finish"
    if isinstance(args, McpCall):
        shown = msgspec.json.encode(args.arguments).decode()
        return f"mcp {args.name} {first_line(shown, max(width - len(args.name) - 5, 20))}"
    return "?"


def first_line(text: str, width: int = 120) -> str:
    """The first line of a text, clipped to `width`, with " ..." if more lines follow."""
    lines = text.strip().splitlines() or [""]
    first = lines[0] if len(lines[0]) <= width else lines[0][: width - 3] + "..."
    return first + (" ..." if len(lines) > 1 else "")
