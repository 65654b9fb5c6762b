"""acting: carry out each tool call of the last model answer that has no observation yet.

The calls come from the log (the snapshot's open calls), so re-entering after a crash goes
on exactly where the last process stopped: a call whose `action` was saved may have run and
is reported interrupted; one that was never started is run now.
"""

from __future__ import annotations

from controller.agent.checkpoints import changes_files, save_checkpoint
from controller.agent.context import Next, RunContext
from controller.agent.lifecycle import Trigger
from controller.agent.outcome import EndReason
from controller.agent.tools import (
    ALREADY_FINISHED,
    INTERRUPTED_ACTION,
    PURE_TOOLS,
    MalformedToolCall,
    Outcome,
    parse_tool_call,
    run_tool,
)
from sandbox import SandboxError
from state_store.events import Action


def run(ctx: RunContext) -> Next:
    snapshot = ctx.snapshot
    calls = list(snapshot.open_calls)
    for call in calls:
        if call.id in snapshot.started_calls and call.name not in PURE_TOOLS:
            ctx.observe(call, Outcome(INTERRUPTED_ACTION, error=True))
            continue
        try:
            args = parse_tool_call(call, ctx.allowed_tools)
        except MalformedToolCall as e:
            # A tool message per bad call, in OpenHands' words (see tools.ERROR_SUFFIX for why
            # not OpenHands' user message): saved, so resume and replay show the same text.
            ctx.observe(call, Outcome(str(e), error=True), malformed=True)
            continue
        if snapshot.finish_message is not None:
            ctx.observe(call, Outcome(ALREADY_FINISHED, error=True))
            continue
        if call.id not in snapshot.started_calls:
            ctx.record(Action, step=snapshot.counters.steps, tool_call_id=call.id, args=args)
        try:
            outcome = run_tool(ctx.sandbox, ctx.editor, args, ctx.mcp)
        except SandboxError as e:
            return Next(Trigger.FAIL, f"the sandbox failed: {e}", EndReason.SANDBOX)
        ctx.observe(call, outcome)
        if changes_files(args):
            save_checkpoint(ctx)
    return Next(Trigger.OBSERVE, f"{len(calls)} tool call(s) done")
