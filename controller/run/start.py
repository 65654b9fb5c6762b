"""`runhands run`: create a run (atomically: it exists whole, or not at all) and drive it."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import msgspec

from controller.agent.context import RunContext
from controller.agent.machine import AgentMachine
from controller.agent.outcome import ExitCode
from controller.agent.reporting import Reporter
from controller.agent.run_state import derive
from controller.config import LoadedConfig, public_config, secrets_of
from controller.run.controls import UNCONTROLLED, RunControls
from controller.run.drive import drive
from controller.run.sandbox_for_config import (
    SandboxConfigError,
    agent_workdir,
    check_docker_settings,
)
from controller.run.setup import UserError, check_model, make_reporter, resolve_workdir
from controller.trajectory import RecordedStep, ReplayTurn
from state_store.events import PlannedTurn, ReplayPlanned, RunStarted, UserMessage
from state_store.store import RunStore, StoreError, StoreWriteError, new_run_id


def start_run(
    loaded: LoadedConfig,
    task: str | None,
    *,
    run_id: str | None,
    json_lines: bool,
    replay_source: str | None = None,
    reporter: Reporter | None = None,
    controls: RunControls = UNCONTROLLED,
) -> int:
    """Run a new task to its end; returns the process exit code. With `replay_source` (a
    run or trajectory), its recorded actions are carried out first, then the model takes
    over; the task defaults to the recorded one. A batch passes its own `reporter` and
    `controls`."""
    config = loaded.config
    check_model(config, dict(os.environ))
    host_workdir = resolve_workdir(config)
    try:
        check_docker_settings(config)
    except SandboxConfigError as e:
        raise UserError(str(e)) from None
    workdir = agent_workdir(config, host_workdir)
    steps: list[ReplayTurn] = []
    if replay_source:
        task, steps = _recorded(loaded, replay_source, task, workdir)
    if not task:
        raise UserError("no task: give -t TEXT, -f FILE, or pipe the task on stdin")
    root = Path(config.core.file_store_path).expanduser()
    run_id = new_run_id() if run_id is None else run_id
    started = {
        "run_id": run_id,
        "task": "",  # the task lives in the log once: in the user message that follows
        "workdir": workdir,
        "host_workdir": host_workdir,
        "runtime": config.core.runtime,
        "model": config.llm.model,
    }
    opening = [(RunStarted, started), (UserMessage, {"content": task, "origin": "task"})]
    if replay_source:  # saved first: init replays what the log does not hold yet
        opening.append((ReplayPlanned, {"source": replay_source, "turns": _planned(steps)}))
    try:
        store = RunStore.create(
            root, run_id, secrets_of(config), config=public_config(config), opening=opening
        )
    except StoreError as e:
        raise UserError(str(e)) from None
    except StoreWriteError as e:  # e.g. no space left: the name stays free
        print(f"runhands: error: the run could not be created: {e}", file=sys.stderr)
        return int(ExitCode.STORAGE)
    reporter = reporter or make_reporter(loaded, json_lines)
    snapshot = derive(store.run_id, store.events)

    def begin(ctx: RunContext, machine: AgentMachine) -> None:
        reporter.info(f"runhands: run {store.run_id} (state in {store.run_dir})")
        for event in store.events[1:]:
            reporter.event(event)
        ctx.save_snapshot()

    return drive(config, store, reporter, snapshot, host_workdir, begin, controls)


def _recorded(
    loaded: LoadedConfig, source: str, task: str | None, workdir: str
) -> tuple[str, list[ReplayTurn]]:
    """The task and the turns to replay (tool calls and the messages between them), the
    calls moved to this run's working directory."""
    from controller.run.recordings import load_recording, relocate

    root = Path(loaded.config.core.file_store_path).expanduser()
    try:
        recording = load_recording(source, root)
    except StoreError as e:
        raise UserError(str(e)) from None
    recorded_dir = recording.workdir or loaded.config.core.workspace_mount_path_in_sandbox
    turns: list[ReplayTurn] = [
        msgspec.structs.replace(turn, args=relocate(turn.args, recorded_dir, workdir))
        if isinstance(turn, RecordedStep)
        else turn
        for turn in recording.turns or recording.steps
    ]
    return task or recording.task, turns


def _planned(turns: list[ReplayTurn]) -> list[PlannedTurn]:
    return [
        PlannedTurn(args=turn.args)
        if isinstance(turn, RecordedStep)
        else PlannedTurn(source=turn.source, content=turn.content)
        for turn in turns
    ]
