"""Driving a run: its context, the machine to a final state, and the saved end (`run_ended`,
the snapshot, the trajectory), whatever stopped it."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor

from controller.agent.checkpoints import open_checkpoints, run_changes, run_patch, write_patch
from controller.agent.context import Recorder, RunContext
from controller.agent.history import build_messages
from controller.agent.machine import AgentMachine
from controller.agent.outcome import EXIT_CODES, EndReason, ExitCode
from controller.agent.prompts import system_prompt
from controller.agent.reporting import Reporter
from controller.agent.timeline import effective_events
from controller.agent.tools import tool_specs
from controller.config import AppConfig, secrets_of
from controller.model_client import LiteLLMClient, ModelClient
from controller.run import interrupts
from controller.run.controls import UNCONTROLLED, RunControls
from controller.run.sandbox_for_config import (
    agent_workdir,
    make_sandbox,
)
from controller.run.setup import sandbox_environment
from sandbox.editor import Editor
from sandbox.gated import GatedStart
from state_store.checkpoints import CheckpointError, CheckpointStore
from state_store.events import ChangeSummary, ModelResponse, RunEnded, Snapshot
from state_store.store import RunStore, StoreWriteError

# Ends after which `runhands resume` makes sense without a new instruction.
_RESUMABLE = {
    EndReason.LIMIT,
    EndReason.PROVIDER,
    EndReason.SANDBOX,
    EndReason.INTERRUPTED,
    EndReason.STORAGE,
}


def drive(
    config: AppConfig,
    store: RunStore,
    reporter: Reporter,
    snapshot: Snapshot,
    host_workdir: str,
    prepare: Callable[[RunContext, AgentMachine], None],
    controls: RunControls = UNCONTROLLED,
) -> int:
    """Build the run's context, let `prepare` record how it (re)starts, run the machine to
    its end, and record that end. Returns the exit code."""
    started = time.monotonic()
    env = sandbox_environment(config)
    scope = str(store.run_dir.parent.resolve())
    sandbox = make_sandbox(config, store.run_id, host_workdir, env, scope, controls.stop)
    if controls.start_gate is not None:
        sandbox = GatedStart(sandbox, controls.start_gate)
    workdir = agent_workdir(config, host_workdir)
    pool = ThreadPoolExecutor(max_workers=1)
    history = effective_events(store.events)
    ctx = RunContext(
        config=config,
        store=store,
        sandbox=sandbox,
        reporter=reporter,
        snapshot=snapshot,
        workdir=workdir,
        client_future=pool.submit(_make_client, config, controls.stop),
        editor=Editor(sandbox),
        tools=tool_specs(_enabled_tools(config)),
        messages=build_messages(
            system_prompt(workdir, outputs_masked=config.condenser.outputs_kept() > 0), history
        ),
        events=history,
        runtime_before=snapshot.counters.runtime_s,
        checkpoints=open_checkpoints(config, store.run_dir, host_workdir, reporter),
        stop=controls.stop,
        host_workdir=host_workdir,
    )
    stopped: EndReason | None = None
    try:
        machine = AgentMachine(ctx)
        prepare(ctx, machine)
        machine.drive()
    except KeyboardInterrupt:
        stopped = EndReason.INTERRUPTED
    except StoreWriteError as e:
        reporter.info(f"runhands: error: {e}")
        stopped = EndReason.STORAGE
    with interrupts.closing():
        if ctx.mcp is not None:  # stdio servers are our children: none outlives the run
            ctx.mcp.close()
        sandbox.close()
        code = end_run(
            ctx.record,
            ctx.snapshot,
            store,
            config,
            reporter,
            stopped,
            time.monotonic() - started,
            checkpoints=ctx.checkpoints,
        )
        pool.shutdown(wait=True, cancel_futures=True)
    return code


def _last_answer(store: RunStore) -> str:
    """The model's last answer: what a run that ended on a text answer prints."""
    for event in reversed(store.read_events()):
        if isinstance(event, ModelResponse):
            return event.content or ""
    return ""


def end_run(
    record: Recorder,
    snapshot: Snapshot,
    store: RunStore,
    config: AppConfig,
    reporter: Reporter,
    stopped: EndReason | None,
    duration: float,
    *,
    checkpoints: CheckpointStore | None = None,
    close: bool = True,
) -> int:
    """Record how the run ended (`run_ended`, with what it changed), write its trajectory
    and patch, close the store; returns the exit code. `stopped`: interrupted, or the store
    failed, in any state."""
    if stopped is not None:
        message = f"{stopped.value} in state {snapshot.state}"
        reason = stopped
    else:
        reason = EndReason(snapshot.reason or EndReason.INTERNAL)
        message = snapshot.message
    if reason is EndReason.FINISHED:
        message = snapshot.finish_message
        if message is None:  # --no-auto-continue: the text answer ended the run
            message = _last_answer(store)
    exit_code = int(EXIT_CODES[reason])
    counters = snapshot.counters
    changes = _changes(checkpoints, snapshot, reporter)
    try:
        record(
            RunEnded,
            run_id=snapshot.run_id,
            state=snapshot.state,
            reason=reason.value,
            message=message,
            steps=counters.steps,
            prompt_tokens=counters.prompt_tokens,
            completion_tokens=counters.completion_tokens,
            cost=round(counters.cost, 6),
            exit_code=exit_code,
            duration_s=round(duration, 3),
            changes=changes,
        )
        store.save_snapshot(snapshot)
        _save_trajectory(config, store, reporter)
        _save_patch(config, checkpoints, snapshot, reporter)
    except StoreWriteError as e:
        if reason is not EndReason.STORAGE:
            reporter.info(f"runhands: error: {e}")
        reason, exit_code = EndReason.STORAGE, int(ExitCode.STORAGE)
    finally:
        if close:
            store.close()
    if close and reason in _RESUMABLE:
        reporter.info(f"runhands: continue with: runhands resume {snapshot.run_id}")
    return exit_code


def _save_trajectory(config: AppConfig, store: RunStore, reporter: Reporter) -> None:
    """[core] save_trajectory_path: the run in OpenHands' trajectory shape, at every end."""
    path = config.core.save_trajectory_path
    if not path:
        return
    from controller.trajectory import TrajectoryError, save_trajectory

    try:
        written = save_trajectory(path, store.read_events(), secrets=secrets_of(config))
    except TrajectoryError as e:
        reporter.info(f"runhands: warning: trajectory not saved: {e}")
        return
    reporter.info(f"runhands: trajectory saved to {written}")


def _changes(
    checkpoints: CheckpointStore | None, snapshot: Snapshot, reporter: Reporter
) -> ChangeSummary | None:
    try:
        return run_changes(checkpoints, snapshot)
    except CheckpointError as e:
        reporter.info(f"runhands: warning: the run's changes are unknown: {e}")
        return None


def _save_patch(
    config: AppConfig, checkpoints: CheckpointStore | None, snapshot: Snapshot, reporter: Reporter
) -> None:
    """[core] save_patch_path: the run's patch at every end, finished or not (evaluation
    harnesses want the patch of a failed run too)."""
    path = config.core.save_patch_path
    if not path:
        return
    if checkpoints is None or not snapshot.tree:
        reporter.info("runhands: warning: patch not saved: the run has no checkpoints")
        return
    try:
        written = write_patch(path, snapshot.run_id, run_patch(checkpoints, snapshot))
    except (CheckpointError, OSError) as e:
        reporter.info(f"runhands: warning: patch not saved: {e}")
        return
    reporter.info(f"runhands: patch saved to {written}")


def _make_client(config: AppConfig, stop: threading.Event | None) -> ModelClient:
    return LiteLLMClient(config.llm, llm_configs=config.llm_configs, stop=stop)


def _enabled_tools(config: AppConfig) -> dict[str, bool]:
    agent = config.agent
    return {
        "enable_cmd": agent.enable_cmd,
        "enable_editor": agent.enable_editor,
        "enable_think": agent.enable_think,
        "enable_finish": agent.enable_finish,
    }
