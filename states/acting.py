"""acting: carry out each tool call of the last model answer in the sandbox."""

from __future__ import annotations

import msgspec

from controller.outcome import EndReason
from controller.run_context import Next, PendingCall, RunContext
from sandbox import CommandResult, Sandbox, SandboxError
from sandbox.editor import Editor
from state_store.events import (
    Action,
    ExecuteBash,
    Finish,
    Observation,
    StrReplaceEditor,
    Think,
    ToolArgs,
)


class Outcome(msgspec.Struct, frozen=True):
    """What one tool call produced, before it is recorded."""

    content: str
    error: bool = False
    exit_code: int | None = None


def run(ctx: RunContext) -> Next:
    pending, ctx.pending = ctx.pending, []
    step = ctx.snapshot.counters.steps
    malformed = 0
    for p in pending:
        if p.error or p.args is None:
            malformed += 1
            _observe(ctx, step, p, Outcome(p.error, error=True))
            continue
        if ctx.finish_message is not None:
            _observe(ctx, step, p, Outcome("Not run: the task was already finished.", True))
            continue
        ctx.record(Action, step=step, tool_call_id=p.call.id, args=p.args)
        try:
            outcome = execute(ctx, p.args)
        except SandboxError as e:
            return Next("fail", f"the sandbox failed: {e}", EndReason.SANDBOX)
        _observe(ctx, step, p, outcome)
    counters = ctx.snapshot.counters
    # Only answers where nothing was usable count towards the malformed-call cap.
    all_malformed = bool(pending) and malformed == len(pending)
    counters.malformed_in_a_row = counters.malformed_in_a_row + 1 if all_malformed else 0
    return Next("observe", f"{len(pending)} tool call(s) done, {malformed} malformed")


def _observe(ctx: RunContext, step: int, p: PendingCall, outcome: Outcome) -> None:
    ctx.record(
        Observation,
        step=step,
        tool_call_id=p.call.id,
        tool=p.call.name,
        content=clip_observation(outcome.content, ctx.config.llm.max_message_chars),
        error=outcome.error,
        exit_code=outcome.exit_code,
    )


def clip_observation(content: str, limit: int) -> str:
    """An observation cut in the middle to `limit` characters, as the model sees it."""
    if len(content) <= limit:
        return content
    half = limit // 2
    cut = len(content) - 2 * half
    return f"{content[:half]}\n[... {cut:,} characters cut ...]\n{content[-half:]}"


def execute(ctx: RunContext, args: ToolArgs) -> Outcome:
    """Carry out one validated tool call; SandboxError means the sandbox itself broke."""
    if isinstance(args, Finish):
        ctx.finish_message = args.message
    return run_tool(ctx.sandbox, ctx.editor, args)


def run_tool(sandbox: Sandbox, editor: Editor, args: ToolArgs) -> Outcome:
    """One tool call without a run around it (live runs and `runhands replay` share it)."""
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
