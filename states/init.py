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
from controller.agent.instruction_steps import (
    load_instructions,
    recall_knowledge,
    recall_missed,
    run_setup_script,
)
from controller.agent.leftovers import stop_leftovers
from controller.agent.lifecycle import State, Trigger
from controller.agent.mcp_tools import McpServers, McpStartError, label, tool_specs
from controller.agent.outcome import EndReason
from controller.agent.timeline import own_events
from controller.agent.tools import (
    INTERRUPTED_ACTION,
    PURE_TOOLS,
    Outcome,
    describe_action,
    run_tool,
)
from sandbox import SandboxError
from state_store.events import (
    Action,
    Event,
    McpCall,
    McpToolsListed,
    ModelResponse,
    PlannedTurn,
    ReplayPlanned,
    SandboxStarted,
    ToolArgs,
    ToolCall,
    UserMessage,
)
from state_store.files import holds_redaction

# The model name on the answers a replay stands in for.
REPLAY_MODEL = "replay"

NOT_RUN_NEW_INSTRUCTION = "Not run: the run was resumed with a new instruction (below)."


def run(ctx: RunContext) -> Next:
    try:
        _start_sandbox(ctx)
        _start_mcp_servers(ctx)
        _answer_interrupted(ctx)
        run_setup_script(ctx)
        settle_checkpoints(ctx)
        load_instructions(ctx)
        recall_missed(ctx)
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
    message = ctx.record(UserMessage, content=ctx.instruction, origin="instruction")
    recall_knowledge(ctx, message)
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
    if replayed and (snapshot.finish_message is not None or snapshot.awaiting_continue):
        # The recording ended with `finish`, or with a text answer: decided on as if the
        # model had given it (a finish ends the run without a model call).
        return Next(Trigger.OBSERVE, f"{ready}; replayed {replayed} turns")
    if replayed:
        return Next(Trigger.START, f"{ready}; replayed {replayed} turns")
    return Next(Trigger.START, ready)


def _replay(ctx: RunContext) -> int:
    """Carry out the recorded turns (the run's `replay_planned` event) the log does not hold
    yet, as if the model had taken them, so the model takes over with their real
    observations in its context: each tool call (a recorded `finish` too, which ends the run
    with no model call), each text answer of the agent's and each later user message, in
    order (OpenHands' replay keeps them all in the history). A resume goes on with the rest."""
    plan = next((e for e in reversed(ctx.events) if isinstance(e, ReplayPlanned)), None)
    if plan is None:
        return 0
    turns = [t for t in plan.turns if t.args is None or _replayable(ctx, t.args)]
    done = _replayed(ctx, plan, turns)
    if done is None:
        return 0
    for turn in turns[done:]:
        number = ctx.snapshot.counters.steps + 1
        if turn.args is None:
            if turn.source == "user":
                message = ctx.record(UserMessage, content=turn.content, origin="instruction")
                recall_knowledge(ctx, message)  # as OpenHands recalls for each user message
            else:
                ctx.record(ModelResponse, step=number, model=REPLAY_MODEL, content=turn.content)
            continue
        call = ToolCall(
            id=f"replay_{number}", name=_name(turn.args), arguments=_arguments(turn.args)
        )
        ctx.record(ModelResponse, step=number, model=REPLAY_MODEL, content=None, tool_calls=[call])
        _carry_out(ctx, call, turn.args)
    return len(turns)


def _replayed(ctx: RunContext, plan: ReplayPlanned, turns: list[PlannedTurn]) -> int | None:
    """How many of the turns the log already holds (a resume after a crash mid-replay), or
    None once the model has taken over; a replayed call whose result was not saved is
    finished first, as acting would."""
    done = 0
    for event in ctx.events:
        if isinstance(event, ModelResponse) and event.model != REPLAY_MODEL:
            return None
        if event.seq <= plan.seq or done == len(turns):
            continue
        if _is_turn(event, turns[done]):
            done += 1
    last = turns[done - 1].args if done else None
    if last is not None:
        for call in list(ctx.snapshot.open_calls):
            _carry_out(ctx, call, last)
    return done


def _is_turn(event: Event, turn: PlannedTurn) -> bool:
    """Whether the event is the replay of the turn: its answer, or its user message."""
    if isinstance(event, ModelResponse):
        return turn.source != "user"
    if isinstance(event, UserMessage) and event.origin == "instruction":
        return turn.source == "user" and event.content == turn.content
    return False


def _carry_out(ctx: RunContext, call: ToolCall, args: ToolArgs) -> None:
    if call.id not in ctx.snapshot.started_calls:
        ctx.record(Action, step=ctx.snapshot.counters.steps, tool_call_id=call.id, args=args)
    ctx.observe(call, run_tool(ctx.sandbox, ctx.editor, args, ctx.mcp))
    if changes_files(args):
        save_checkpoint(ctx)


def _name(args: ToolArgs) -> str:
    """The tool's name as the model called it (an MCP tool's own name)."""
    return args.name if isinstance(args, McpCall) else args.__struct_config__.tag


def _replayable(ctx: RunContext, args: ToolArgs) -> bool:
    """A recorded action that held a secret was saved with `****`, which would run as a
    shell glob: it is left out, and said so."""
    if not holds_redaction(_arguments(args)):
        return True
    described = describe_action(args)
    ctx.reporter.info(f"runhands: not replayed (it held a secret, saved as ****): {described}")
    return False


def _arguments(args: msgspec.Struct) -> str:
    """The JSON a model would have sent: the tool's fields, without our tag (an MCP
    call's arguments as sent)."""
    if isinstance(args, McpCall):
        return msgspec.json.encode(args.arguments).decode()
    fields = msgspec.to_builtins(args)
    fields.pop("tool", None)
    return msgspec.json.encode(fields).decode()


def _start_mcp_servers(ctx: RunContext) -> None:
    """init: start the run's configured servers, offer their tools beside ours, and record
    what was offered (McpToolsListed). Raises McpStartError; nothing to do without `[mcp]`."""
    config = ctx.config.mcp
    if not config.any():
        return
    if ctx.mcp is not None:  # a second init in one process: start afresh
        listed = {t.name for t in ctx.mcp.tools}
        ctx.tools = [t for t in ctx.tools if t["function"]["name"] not in listed]
        ctx.mcp.close()
    # stdio servers run on the host, in runhands' directory (OpenHands' CLI runtime does
    # the same; its docker runtime runs them in the sandbox); their stderr goes to mcp.log.
    ctx.mcp = McpServers(config, log_path=str(ctx.store.run_dir / "mcp.log"))
    tools = ctx.mcp.start({spec["function"]["name"] for spec in ctx.tools})
    ctx.tools = ctx.tools + tool_specs(tools)
    ctx.record(
        McpToolsListed,
        servers=[label(s) for s in ctx.mcp.servers],
        tools=tools,
        skipped=ctx.mcp.skipped,
    )
    for name in ctx.mcp.skipped:
        ctx.reporter.info(f"runhands: warning: MCP tool {name} skipped: the name is taken")
