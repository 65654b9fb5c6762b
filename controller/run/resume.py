"""`runhands resume`: continue a saved run exactly where its log stops.

The event log is the truth: the snapshot handlers decide from is derived from it, and the
run goes back through `init` (the `resume` transition), which restarts the sandbox, settles
the tool calls left in flight and re-enters the machine where the log says. A run that
crashed while ending (its end decided, `run_ended` not written) has its ending completed.
"""

from __future__ import annotations

import math
import os
from functools import partial
from pathlib import Path

from controller.agent.checkpoints import open_checkpoints
from controller.agent.context import Next, RunContext, save_event
from controller.agent.lifecycle import TERMINAL, Trigger
from controller.agent.machine import AgentMachine
from controller.agent.reporting import Reporter
from controller.agent.run_state import derive
from controller.config import AppConfig, LoadedConfig, overlay_config, secrets_of
from controller.run.controls import UNCONTROLLED, RunControls
from controller.run.drive import drive, end_run
from controller.run.setup import UserError, check_model, make_reporter
from state_store.events import AnyEvent, RunResumed, RunStarted, Snapshot
from state_store.store import RunStore, StoreError, load_config


def resume_run(
    loaded: LoadedConfig,
    run_id: str,
    instruction: str | None,
    *,
    json_lines: bool,
    reporter: Reporter | None = None,
    controls: RunControls = UNCONTROLLED,
) -> int:
    root = Path(loaded.config.core.file_store_path).expanduser()
    try:
        store = RunStore.open(root, run_id, secrets_of(loaded.config))
    except (StoreError, OSError) as e:
        raise UserError(str(e)) from None
    try:
        config = overlay_config(load_config(store.run_dir, AppConfig), loaded)
        check_model(config, dict(os.environ))
        started = run_started(store.events)
        snapshot = derive(store.run_id, store.events)
        if not _ending_unsaved(snapshot) or instruction:
            check_resumable(snapshot, config, instruction)
    except (UserError, StoreError) as e:
        store.close()
        raise UserError(str(e)) from None
    reporter = reporter or make_reporter(loaded, json_lines)
    if _ending_unsaved(snapshot) and not instruction:
        reporter.info(f"runhands: run {run_id} was {snapshot.state}; saving its end")
        return end_run(
            partial(save_event, store, snapshot, reporter),
            snapshot,
            store,
            config,
            reporter,
            None,
            0.0,
            checkpoints=open_checkpoints(
                config, store.run_dir, started.host_workdir or started.workdir
            ),
        )
    reporter.info(f"runhands: resuming run {run_id} from {snapshot.state}")
    return continue_run(store, config, snapshot, reporter, instruction, controls=controls)


def continue_run(
    store: RunStore,
    config: AppConfig,
    snapshot: Snapshot,
    reporter: Reporter,
    instruction: str | None,
    *,
    forked: str = "",
    controls: RunControls = UNCONTROLLED,
) -> int:
    """Drive a saved run on from where its log stops: a resumed one, or a fork (`forked`
    says from where; its log already records it)."""
    torn = store.torn_bytes
    started = run_started(store.events)

    def prepare(ctx: RunContext, machine: AgentMachine) -> None:
        if torn:
            reporter.info(f"runhands: warning: ignored a torn last line ({torn} bytes)")
        if _ending_unsaved(snapshot):
            end_run(
                ctx.record,
                snapshot,
                store,
                config,
                reporter,
                None,
                0.0,
                checkpoints=ctx.checkpoints,
                close=False,
            )
        if not forked:
            reason = snapshot.reason or "crashed"
            ctx.record(RunResumed, state=snapshot.state, reason=reason, torn_bytes=torn)
        ctx.instruction = instruction
        why = "new instruction" if instruction else f"after {snapshot.reason or 'a crash'}"
        machine.fire(Next(Trigger.RESUME, forked or f"resumed: {why}"))

    return drive(
        config,
        store,
        reporter,
        snapshot,
        started.host_workdir or started.workdir,
        prepare,
        controls,
    )


def _ending_unsaved(snapshot: Snapshot) -> bool:
    """The run's end was decided (a final transition) but `run_ended` never written."""
    return snapshot.state in TERMINAL and not snapshot.ended


def run_started(events: list[AnyEvent]) -> RunStarted:
    for event in events:
        if isinstance(event, RunStarted):
            return event
    raise UserError("the run's log has no start event: it cannot be resumed")


def check_resumable(snapshot: Snapshot, config: AppConfig, instruction: str | None) -> None:
    run_id, counters, core = snapshot.run_id, snapshot.counters, config.core
    if snapshot.state == "finished" and not instruction:
        raise UserError(
            f"run {run_id} is finished; give a new instruction to continue it: "
            f'runhands resume {run_id} -t "..."'
        )
    if counters.steps >= core.max_iterations:
        raise UserError(
            f"run {run_id} has used {counters.steps} of its {core.max_iterations} steps; "
            f"raise the limit, e.g. runhands resume {run_id} -i {counters.steps + 50}"
        )
    budget = core.max_budget_per_task
    if budget and counters.cost >= budget:
        raise UserError(
            f"run {run_id} has spent ${counters.cost:.4f} of its ${budget:.2f} budget; "
            f"raise it, e.g. runhands resume {run_id} -b {budget * 2:g}"
        )
    runtime = core.max_runtime_seconds
    if runtime and counters.runtime_s >= runtime:
        raise UserError(
            f"run {run_id} has run for {counters.runtime_s:.0f} of its {runtime:g} seconds; "
            f"raise the limit, e.g. runhands resume {run_id} --max-runtime "
            f"{math.ceil(max(2 * runtime, counters.runtime_s + 60))}"
        )
