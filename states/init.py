"""init: start the sandbox (the store is already open and the config validated), and replay a
recorded run's actions first when asked (`replay --continue`, `replay_trajectory_path`)."""

from __future__ import annotations

import msgspec

from controller.outcome import EndReason
from controller.run_context import Next, RunContext
from sandbox import SandboxError
from state_store.events import (
    Action,
    Finish,
    ModelResponse,
    Observation,
    SandboxStarted,
    ToolCall,
)
from states.acting import clip_observation, run_tool


def run(ctx: RunContext) -> Next:
    try:
        ctx.sandbox.start()
        ctx.record(SandboxStarted, runtime=ctx.config.core.runtime, identity=ctx.sandbox.identity)
        replayed = _replay(ctx)
    except SandboxError as e:
        return Next("fail", f"the sandbox failed: {e}", EndReason.SANDBOX)
    if replayed:
        return Next("start", f"sandbox ready in {ctx.workdir}; replayed {replayed} actions")
    return Next("start", f"sandbox ready in {ctx.workdir}")


def _replay(ctx: RunContext) -> int:
    """Carry out the recorded actions as if the model had asked for them, so the model takes
    over with their real observations in its context. A recorded `finish` is skipped."""
    steps = [s for s in ctx.replay_steps if not isinstance(s.args, Finish)]
    for step in steps:
        ctx.snapshot.counters.steps += 1
        number = ctx.snapshot.counters.steps
        call = ToolCall(
            id=f"replay_{number}",
            name=step.args.__struct_config__.tag,
            arguments=_arguments(step.args),
        )
        ctx.record(ModelResponse, step=number, model="replay", content=None, tool_calls=[call])
        ctx.record(Action, step=number, tool_call_id=call.id, args=step.args)
        outcome = run_tool(ctx.sandbox, ctx.editor, step.args)
        ctx.record(
            Observation,
            step=number,
            tool_call_id=call.id,
            tool=call.name,
            content=clip_observation(outcome.content, ctx.config.llm.max_message_chars),
            error=outcome.error,
            exit_code=outcome.exit_code,
        )
    ctx.replay_steps = []
    return len(steps)


def _arguments(args: msgspec.Struct) -> str:
    """The JSON a model would have sent: the tool's fields, without our tag."""
    fields = msgspec.to_builtins(args)
    fields.pop("tool", None)
    return msgspec.json.encode(fields).decode()
