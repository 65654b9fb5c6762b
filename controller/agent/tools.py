"""The tools offered to the model (OpenHands' names and arguments) and tool-call parsing."""

from __future__ import annotations

from typing import Any

import msgspec

from sandbox import CommandResult, Sandbox
from sandbox.editor import Editor
from sandbox.output import truncate_middle
from state_store.events import (
    TOOL_ARG_TYPES,
    ExecuteBash,
    Finish,
    StrReplaceEditor,
    Think,
    ToolArgs,
    ToolCall,
)

# Tools that change nothing: one left without its result by a crash is simply run again.
PURE_TOOLS = frozenset({"think", "finish"})

INTERRUPTED_ACTION = (
    "This action was interrupted: runhands stopped (crash or signal) before its result was "
    "saved, so it may have run partly or fully. Check the current state before running it "
    "again if it is still needed."
)
ALREADY_FINISHED = "Not run: the task was already finished."

_BASH = {
    "name": "execute_bash",
    "description": (
        "Execute a bash command in a persistent shell session (cwd and environment persist).\n"
        "* Long-running commands: run them in the background with output redirected, e.g. "
        "`python3 app.py > server.log 2>&1 &`.\n"
        "* If a command prints nothing new for a while it returns the partial output with "
        "exit code -1: send an empty command with is_input=true to wait for more, send "
        "input with is_input=true, or send C-c to interrupt it.\n"
        "* One command at a time; chain several with && or ;.\n"
        "* Output longer than 30,000 characters is cut in the middle."
    ),
    "parameters": {
        "type": "object",
        "properties": {
            "command": {
                "type": "string",
                "description": (
                    "The bash command to run. With is_input=true: text sent to the running "
                    "process, or C-c, C-d, C-z as control keys, or empty to fetch more output."
                ),
            },
            "is_input": {
                "type": "boolean",
                "description": "True to send `command` to the running process as input.",
            },
            "timeout": {
                "type": "number",
                "description": (
                    "Optional hard timeout in seconds; the command is interrupted when it "
                    "expires. Use it for commands that may run long."
                ),
            },
        },
        "required": ["command"],
    },
}

_EDITOR = {
    "name": "str_replace_editor",
    "description": (
        "View, create and edit files.\n"
        "* `view` on a file shows it with line numbers (like `cat -n`); on a directory, lists "
        "files up to 2 levels deep.\n"
        "* `create` writes a new file; it fails if the path exists.\n"
        "* `str_replace` replaces `old_str`, which must match EXACTLY ONE place in the file "
        "(whitespace included), with `new_str`; include enough context to be unique.\n"
        "* `insert` inserts `new_str` after line `insert_line` (0 = at the top).\n"
        "* `undo_edit` reverts the last edit of the file."
    ),
    "parameters": {
        "type": "object",
        "properties": {
            "command": {
                "type": "string",
                "enum": ["view", "create", "str_replace", "insert", "undo_edit"],
                "description": "The command to run.",
            },
            "path": {"type": "string", "description": "Absolute path of a file or directory."},
            "file_text": {"type": "string", "description": "`create`: the file's content."},
            "old_str": {"type": "string", "description": "`str_replace`: the text to replace."},
            "new_str": {
                "type": "string",
                "description": "`str_replace`: the replacement; `insert`: the text to insert.",
            },
            "insert_line": {
                "type": "integer",
                "description": "`insert`: the line after which `new_str` goes.",
            },
            "view_range": {
                "type": "array",
                "items": {"type": "integer"},
                "description": "`view`: [start, end] lines, 1-based; end -1 means to the end.",
            },
        },
        "required": ["command", "path"],
    },
}

_THINK = {
    "name": "think",
    "description": (
        "Think about something: plan, brainstorm fixes, reason about test results. "
        "It changes nothing and fetches nothing; the thought is only logged."
    ),
    "parameters": {
        "type": "object",
        "properties": {"thought": {"type": "string", "description": "The thought."}},
        "required": ["thought"],
    },
}

_FINISH = {
    "name": "finish",
    "description": (
        "Signal that the task is complete. Call it only when the task is done and verified, "
        "with a short summary of what was done."
    ),
    "parameters": {
        "type": "object",
        "properties": {"message": {"type": "string", "description": "Summary of the work done."}},
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


class MalformedToolCall(Exception):
    """A tool call the controller cannot carry out; its message is shown to the model."""


def parse_tool_call(call: ToolCall, allowed: set[str]) -> ToolArgs:
    """Validate a tool call; MalformedToolCall explains to the model what to fix."""
    if call.name not in allowed or call.name not in TOOL_ARG_TYPES:
        names = ", ".join(sorted(allowed))
        raise MalformedToolCall(f"Unknown tool {call.name!r}. Available tools: {names}.")
    try:
        raw = msgspec.json.decode(call.arguments or "{}")
    except msgspec.DecodeError as e:
        raise MalformedToolCall(
            f"The arguments of {call.name} are not valid JSON ({e}). "
            "Send a JSON object with the tool's parameters."
        ) from None
    if not isinstance(raw, dict):
        raise MalformedToolCall(f"The arguments of {call.name} must be a JSON object.")
    try:
        return msgspec.convert(raw, TOOL_ARG_TYPES[call.name], strict=False)
    except msgspec.ValidationError as e:
        raise MalformedToolCall(f"Invalid arguments for {call.name}: {e}.") from None


class Outcome(msgspec.Struct, frozen=True):
    """What one tool call produced, before it is recorded."""

    content: str
    error: bool = False
    exit_code: int | None = None


def run_tool(sandbox: Sandbox, editor: Editor, args: ToolArgs) -> Outcome:
    """Carry out one validated tool call (live runs, init's replay and `runhands replay`
    share it); SandboxError means the sandbox itself broke."""
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
    """The observation text for a command, with OpenHands' trailing metadata lines."""
    parts = [result.output.rstrip("\n")]
    if result.note:
        parts.append(result.note)
    if not result.still_running and not result.timed_out and result.exit_code != -1:
        parts.append(f"[The command completed with exit code {result.exit_code}.]")
    if result.cwd:
        parts.append(f"[Current working directory: {result.cwd}]")
    return "\n".join(part for part in parts if part)


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
    return "?"


def first_line(text: str, width: int = 120) -> str:
    """The first line of a text, clipped to `width`, with " ..." if more lines follow."""
    lines = text.strip().splitlines() or [""]
    first = lines[0] if len(lines[0]) <= width else lines[0][: width - 3] + "..."
    return first + (" ..." if len(lines) > 1 else "")
