"""init: (re)start the sandbox, settle what a crash left in flight, then enter the machine
where the log says the run is.

A new run comes here first; `runhands resume` brings every run back here (the `resume`
transition), so restarting after a crash is one path: stop what the dead process left
running, start a sandbox, answer the tool calls that may have run (their result was never
saved) as interrupted, and re-enter planning, acting or observing. A recorded run's actions
are carried out first when asked (`replay --continue`, `replay_trajectory_path`).
"""

from __future__ import annotations

import msgspec

from controller.agent.checkpoints import changes_files, save_checkpoint, settle_checkpoints
from controller.agent.context import Next, RunContext
from controller.agent.leftovers import stop_leftovers
from controller.agent.lifecycle import State, Trigger
from controller.agent.mcp_tools import McpStartError
from controller.agent.mcp_tools import start_for_run as start_mcp_servers
from controller.agent.outcome import EndReason
from controller.agent.timeline import own_events
from controller.agent.tools import (
    INTERRUPTED_ACTION,
    PURE_TOOLS,
    Outcome,
    describe_action,
    run_tool,
)
from controller.trajectory import RecordedStep
from sandbox import SandboxError
from state_store.events import (
    Action,
    Finish,
    ModelResponse,
    SandboxStarted,
    ToolCall,
    UserMessage,
)
from state_store.files import holds_redaction

NOT_RUN_NEW_INSTRUCTION = "Not run: the run was resumed with a new instruction (below)."


def run(ctx: RunContext) -> Next:
    try:
        _start_sandbox(ctx)
        start_mcp_servers(ctx)
        _answer_interrupted(ctx)
        settle_checkpoints(ctx)
        _give_instruction(ctx)
        replayed = _replay(ctx)
    except SandboxError as e:
        return Next(Trigger.FAIL, f"the sandbox failed: {e}", EndReason.SANDBOX)
    except McpStartError as e:
        return Next(Trigger.FAIL, str(e), EndReason.SANDBOX)
    return _reenter(ctx, replayed)


def _start_sandbox(ctx: RunContext) -> None:
    stopped = stop_leftovers(
        own_events(ctx.store.events), ctx.config, ctx.store.run_dir.parent, ctx.store.run_id
    )
    ctx.sandbox.start()
    ctx.record(
        SandboxStarted,
        runtime=ctx.config.core.runtime,
        identity=ctx.sandbox.identity,
        stopped_leftovers=stopped,
        isolation=ctx.sandbox.isolation,
        network=ctx.config.sandbox.network,
    )


def _answer_interrupted(ctx: RunContext) -> None:
    """A call whose action was saved but not its result may have run: say so, never run it
    again silently. (Calls never started are acting's: they are simply run.)"""
    snapshot = ctx.snapshot
    for call in list(snapshot.open_calls):
        if call.id in snapshot.started_calls and call.name not in PURE_TOOLS:
            ctx.observe(call, Outcome(INTERRUPTED_ACTION, error=True))


def _give_instruction(ctx: RunContext) -> None:
    """`resume -t`: the model gets the new instruction; calls of its last answer not yet
    carried out are left, since the instruction may change the plan."""
    if not ctx.instruction:
        return
    for call in list(ctx.snapshot.open_calls):
        ctx.observe(call, Outcome(NOT_RUN_NEW_INSTRUCTION, error=True))
    ctx.record(UserMessage, content=ctx.instruction, origin="instruction")
    ctx.instruction = None


def _reenter(ctx: RunContext, replayed: int) -> Next:
    """Where the run goes on: a saved answer is used, never asked for again; a call never
    started is carried out; a step whose results are all saved is decided on; otherwise the
    model is asked."""
    snapshot, ready = ctx.snapshot, f"sandbox ready in {ctx.workdir}"
    came_from = snapshot.resumed_from
    if snapshot.open_calls:
        return Next(Trigger.ACT, f"{ready}; resumed: tool calls to carry out")
    if came_from in (State.ACTING, State.OBSERVING) or (
        came_from == State.PLANNING and snapshot.answered
    ):
        return Next(Trigger.OBSERVE, f"{ready}; resumed: the step to decide on")
    if replayed:
        return Next(Trigger.START, f"{ready}; replayed {replayed} actions")
    return Next(Trigger.START, ready)


def _replay(ctx: RunContext) -> int:
    """Carry out the recorded actions as if the model had asked for them, so the model takes
    over with their real observations in its context. A recorded `finish` is skipped."""
    steps = [s for s in ctx.replay_steps if not isinstance(s.args, Finish) and _replayable(ctx, s)]
    for step in steps:
        number = ctx.snapshot.counters.steps + 1
        call = ToolCall(
            id=f"replay_{number}",
            name=step.args.__struct_config__.tag,
            arguments=_arguments(step.args),
        )
        ctx.record(ModelResponse, step=number, model="replay", content=None, tool_calls=[call])
        ctx.record(Action, step=number, tool_call_id=call.id, args=step.args)
        ctx.observe(call, run_tool(ctx.sandbox, ctx.editor, step.args))
        if changes_files(step.args):
            save_checkpoint(ctx)
    ctx.replay_steps = []
    return len(steps)


def _replayable(ctx: RunContext, step: RecordedStep) -> bool:
    """A recorded action that held a secret was saved with `****`, which would run as a
    shell glob: it is left out, and said so."""
    if not holds_redaction(_arguments(step.args)):
        return True
    described = describe_action(step.args)
    ctx.reporter.info(f"runhands: not replayed (it held a secret, saved as ****): {described}")
    return False


def _arguments(args: msgspec.Struct) -> str:
    """The JSON a model would have sent: the tool's fields, without our tag."""
    fields = msgspec.to_builtins(args)
    fields.pop("tool", None)
    return msgspec.json.encode(fields).decode()
