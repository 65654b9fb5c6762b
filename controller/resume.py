"""`runhands resume`: continue a saved run from its last completed step.

The event log is the truth: the model's context, the counters and the machine state are
rebuilt from it. Tool calls left without an observation by a crash are answered as
interrupted (never silently re-run); what the dead process left running is stopped.
"""

from __future__ import annotations

import math
import os
from pathlib import Path

from controller.cleanup import remove_run_containers
from controller.config import AppConfig, LoadedConfig, overlay_config
from controller.machine import TERMINAL, AgentMachine
from controller.outcome import EndReason
from controller.run_context import Next, RunContext
from controller.runner import (
    UsageError,
    check_model,
    drive,
    make_reporter,
    secrets_of,
)
from sandbox import SandboxError
from sandbox.bash_session import stop_leftovers
from state_store.events import (
    Action,
    AnyEvent,
    ModelResponse,
    Observation,
    RunResumed,
    RunStarted,
    SandboxStarted,
    Snapshot,
    UserMessage,
)
from state_store.store import (
    RunStore,
    StoreError,
    load_config,
    read_snapshot,
    snapshot_from_events,
)

INTERRUPTED_ACTION = (
    "This action was interrupted: runhands stopped (crash or signal) before its result was "
    "saved, so it may have run partly or fully. Check the current state before running it "
    "again if it is still needed."
)
NOT_RUN_CALL = (
    "This tool call was not run: runhands stopped before carrying it out. Call it again if "
    "it is still needed."
)


def resume_run(
    loaded: LoadedConfig, run_id: str, instruction: str | None, *, json_lines: bool
) -> int:
    root = Path(loaded.config.core.file_store_path).expanduser()
    try:
        store = RunStore.open(root, run_id, secrets_of(loaded.config))
        saved = load_config(store.run_dir, AppConfig)
    except (StoreError, OSError) as e:
        raise UsageError(str(e)) from None
    try:
        config = overlay_config(saved, loaded)
        check_model(config, dict(os.environ))
        snapshot = rebuild_snapshot(store)
        _check_resumable(snapshot, config, instruction)
    except UsageError:
        store.close()
        raise
    started = _run_started(store.events)
    reporter = make_reporter(loaded, json_lines)
    torn = store.torn_bytes

    def prepare(ctx: RunContext, machine: AgentMachine) -> None:
        reporter.info(f"runhands: resuming run {run_id} from {snapshot.state}")
        leftovers = _stop_leftovers(store, config)
        ctx.record(
            RunResumed,
            state=snapshot.state,
            reason=snapshot.reason or "crashed",
            torn_bytes=torn,
            stopped_leftovers=leftovers,
        )
        if torn:
            reporter.info(f"runhands: warning: ignored a torn last line ({torn} bytes)")
        _answer_dangling_calls(ctx, store.events)
        if instruction:
            ctx.record(UserMessage, content=instruction, origin="instruction")
        if machine.state in TERMINAL:
            why = "new instruction" if instruction else f"after {snapshot.reason}"
            snapshot.counters.malformed_in_a_row = snapshot.counters.no_action_in_a_row = 0
            snapshot.counters.stuck_warning = ""  # a loop that ended the run gets a new warning
            machine.fire(Next("resume", f"resumed: {why}"))
        if machine.state != "init" and not _restart_sandbox(ctx, machine):
            return
        ctx.save_snapshot()

    return drive(
        config, store, reporter, snapshot, started.host_workdir or started.workdir, prepare
    )


def rebuild_snapshot(store: RunStore) -> Snapshot:
    """The snapshot as the log says it should be, with the streak counters (not in the log)
    from the saved snapshot: a lagging one is close enough for them."""
    snapshot = snapshot_from_events(store.run_id, store.events)
    try:
        saved = read_snapshot(store.run_dir)
    except FileNotFoundError:
        return snapshot
    counters, kept = snapshot.counters, saved.counters
    counters.malformed_in_a_row = kept.malformed_in_a_row
    counters.no_action_in_a_row = kept.no_action_in_a_row
    # Not in the log either: the active time so far and the warnings already given.
    counters.runtime_s = kept.runtime_s
    counters.stuck_warning = kept.stuck_warning
    counters.budget_warnings = list(kept.budget_warnings)
    return snapshot


def _run_started(events: list[AnyEvent]) -> RunStarted:
    for event in events:
        if isinstance(event, RunStarted):
            return event
    raise UsageError("the run's log has no start event: it cannot be resumed")


def _check_resumable(snapshot: Snapshot, config: AppConfig, instruction: str | None) -> None:
    run_id, counters, core = snapshot.run_id, snapshot.counters, config.core
    if snapshot.state == "finished" and not instruction:
        raise UsageError(
            f"run {run_id} is finished; give a new instruction to continue it: "
            f'runhands resume {run_id} -t "..."'
        )
    if counters.steps >= core.max_iterations:
        raise UsageError(
            f"run {run_id} has used {counters.steps} of its {core.max_iterations} steps; "
            f"raise the limit, e.g. runhands resume {run_id} -i {counters.steps + 50}"
        )
    budget = core.max_budget_per_task
    if budget and counters.cost >= budget:
        raise UsageError(
            f"run {run_id} has spent ${counters.cost:.4f} of its ${budget:.2f} budget; "
            f"raise it, e.g. runhands resume {run_id} -b {budget * 2:g}"
        )
    runtime = core.max_runtime_seconds
    if runtime and counters.runtime_s >= runtime:
        raise UsageError(
            f"run {run_id} has run for {counters.runtime_s:.0f} of its {runtime:g} seconds; "
            f"raise the limit, e.g. runhands resume {run_id} --max-runtime "
            f"{math.ceil(max(2 * runtime, counters.runtime_s + 60))}"
        )


def _stop_leftovers(store: RunStore, config: AppConfig) -> bool:
    """Stop what earlier processes of this run started and left behind: their local shells,
    and their containers unless the run keeps its container alive (then it is reattached)."""
    started = [e for e in store.events if isinstance(e, SandboxStarted)]
    stopped = False
    for event in started:
        if event.runtime == "local":
            stopped = stop_leftovers(event.identity) or stopped
    if any(e.runtime == "docker" for e in started) and not config.sandbox.keep_runtime_alive:
        stopped = bool(remove_run_containers(store.run_dir.parent, store.run_id)) or stopped
    return stopped


def _answer_dangling_calls(ctx: RunContext, events: list[AnyEvent]) -> None:
    """Give every tool call of the last answer an observation, as the API requires."""
    responses = [e for e in events if isinstance(e, ModelResponse)]
    if not responses:
        return
    last = responses[-1]
    later = [e for e in events if e.seq > last.seq]
    observed = {e.tool_call_id for e in later if isinstance(e, Observation)}
    started = {e.tool_call_id for e in later if isinstance(e, Action)}
    for call in last.tool_calls:
        if call.id in observed:
            continue
        content = INTERRUPTED_ACTION if call.id in started else NOT_RUN_CALL
        ctx.record(
            Observation,
            step=last.step,
            tool_call_id=call.id,
            tool=call.name,
            content=content,
            error=True,
        )


def _restart_sandbox(ctx: RunContext, machine: AgentMachine) -> bool:
    try:
        ctx.sandbox.start()
    except SandboxError as e:
        machine.fire(Next("fail", f"the sandbox could not start: {e}", EndReason.SANDBOX))
        return False
    ctx.record(SandboxStarted, runtime=ctx.config.core.runtime, identity=ctx.sandbox.identity)
    return True
