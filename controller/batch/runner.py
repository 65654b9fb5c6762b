"""One task of a batch, from whatever it left last time to its end: the one run function the
local thread pool and Ray's workers both call.

What to do is decided from the task's run log under `<out>/runs/<id>` (the truth), never
from a counter of our own: no run yet, make the workspace, run the setup, start the run; a
run that was cut (the batch was killed) or stopped (Ctrl-C), resume it; one that ended on an
infrastructure failure, resume it while attempts are left (the attempts are its
infrastructure ends, counted in its log); any other end is the task's result.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any, TextIO

import msgspec

from controller.agent.outcome import EndReason, ExitCode
from controller.agent.reporting import Reporter
from controller.agent.run_state import derive
from controller.batch.results import (
    INFRASTRUCTURE,
    SETUP_FAILED,
    WORKSPACE_FAILED,
    EvalResult,
    TaskResult,
)
from controller.batch.task_commands import run_commands
from controller.batch.tasks import BatchTask
from controller.batch.workspaces import WorkspaceError, prepare_workspace, workspace_path
from controller.config import ConfigError, LoadedConfig, load_config, secrets_of
from controller.errors import UserError
from controller.run.controls import UNCONTROLLED, RunControls
from controller.run.resume import resume_run
from controller.run.start import start_run
from state_store.events import Event, RunEnded, Snapshot
from state_store.store import EVENTS_FILE, StoreError, load_log

RUNS_DIR = "runs"
PATCHES_DIR = "patches"
LOGS_DIR = "logs"

EventListener = Callable[[str, Event], None]


class BatchSettings(msgspec.Struct, frozen=True, kw_only=True):
    """What every task of a batch shares (sent to Ray's workers as is)."""

    out: str  # the batch's output directory, absolute
    cwd: str  # where the batch was started: config.toml and .env are looked up there
    config_file: str | None = None
    llm_config: str | None = None
    flags: dict[str, Any] = {}  # the batch's command-line settings, dotted
    retries: int = 2
    retry_wait: float = 10.0
    eval_timeout: float = 1800.0

    @property
    def runs(self) -> Path:
        return Path(self.out) / RUNS_DIR


def run_task(
    task: BatchTask,
    settings: BatchSettings,
    controls: RunControls = UNCONTROLLED,
    listener: EventListener | None = None,
) -> TaskResult | None:
    """Drive the task to its end; its result (None: stopped before its run started). A
    result whose reason is `interrupted` means the batch was stopped under it."""
    stop = controls.stop
    workspace_failures = 0
    while True:
        if stop is not None and stop.is_set():
            return _stopped(task, settings)
        events = _run_log(settings.runs, task.id)
        if events is None:
            failed = _start(task, settings, controls, listener)
            if failed is None:
                continue
            if failed.reason != WORKSPACE_FAILED:
                return failed
            workspace_failures += 1
            if workspace_failures > settings.retries:
                return msgspec.structs.replace(failed, attempt=workspace_failures)
            _pause(stop, settings.retry_wait)
            continue
        snapshot = derive(task.id, events)
        if not _goes_on(snapshot, _infrastructure_ends(events), settings.retries):
            return _final(task, settings, events, snapshot, stop)
        if snapshot.ended and snapshot.reason in INFRASTRUCTURE:
            _pause(stop, settings.retry_wait)
            if stop is not None and stop.is_set():
                continue
        if not _resume(task, settings, controls, listener):
            return _final(task, settings, events, snapshot, stop)


def _final(
    task: BatchTask,
    settings: BatchSettings,
    events: list[Any],
    snapshot: Snapshot,
    stop: threading.Event | None,
) -> TaskResult | None:
    """The end that stands, with its eval; where the task stands if the batch is stopped
    during the eval (the eval runs again next time)."""
    try:
        return _result(task, settings, events, snapshot, stop=stop)
    except KeyboardInterrupt:
        return _stopped(task, settings)


def _pause(stop: threading.Event | None, seconds: float) -> None:
    if stop is not None:
        stop.wait(seconds)
    elif seconds:
        time.sleep(seconds)


def _stopped(task: BatchTask, settings: BatchSettings) -> TaskResult | None:
    """The batch is stopping: where the task stands (None if its run never started)."""
    events = _run_log(settings.runs, task.id)
    if events is None:
        return None
    return _result(task, settings, events, derive(task.id, events), final=False)


def task_config(task: BatchTask, settings: BatchSettings, workspace: Path) -> LoadedConfig:
    """The batch's settings, under the task's own, with the task's workspace and image and
    the batch's state, patch and log directories."""
    out = Path(settings.out)
    flags: dict[str, Any] = {
        **settings.flags,
        # Each task has its own workspace: a SANDBOX_VOLUMES of the environment must not
        # mount one directory into every run.
        "sandbox.volumes": "",
        **task.settings(),
        "core.workspace_base": str(workspace),
        "core.file_store_path": str(settings.runs),
        "core.save_patch_path": str(out / PATCHES_DIR),
    }
    if task.image:
        flags |= {"core.runtime": "docker", "sandbox.runtime_container_image": task.image}
    if task.image_workdir:
        flags["core.workspace_mount_path_in_sandbox"] = task.image_workdir
    return load_config(
        config_file=settings.config_file,
        llm_config_name=settings.llm_config,
        flags=flags,
        cwd=settings.cwd,
    )


def _run_log(runs: Path, run_id: str) -> list[Any] | None:
    path = runs / run_id / EVENTS_FILE
    if not path.exists():
        return None
    return load_log(path).events


def _infrastructure_ends(events: list[Any]) -> int:
    return sum(isinstance(e, RunEnded) and e.reason in INFRASTRUCTURE for e in events)


def _goes_on(snapshot: Snapshot, attempts: int, retries: int) -> bool:
    if not snapshot.ended:
        return True  # cut by a crash, in any state (a decided end is saved by resume)
    if snapshot.reason == EndReason.INTERRUPTED:
        return True
    return snapshot.reason in INFRASTRUCTURE and attempts <= retries


def _start(
    task: BatchTask,
    settings: BatchSettings,
    controls: RunControls,
    listener: EventListener | None,
) -> TaskResult | None:
    """Make the workspace, run the setup, create and drive the run; a result only when the
    task ended before its run could exist."""
    out = Path(settings.out)
    try:
        workspace = prepare_workspace(out, task)
        loaded = task_config(task, settings, workspace)
    except WorkspaceError as e:
        return _not_run(task, str(e), WORKSPACE_FAILED)
    except ConfigError as e:
        return _not_run(task, str(e))
    if task.setup:
        try:
            setup = run_commands(
                loaded.config,
                task.id,
                workspace,
                settings.runs,
                task.setup,
                settings.eval_timeout,
                controls.stop,
            )
        except KeyboardInterrupt:
            return None  # the batch is stopping: the next one makes the workspace again
        if setup.exit_code != 0:
            return _not_run(task, f"setup failed (exit {setup.exit_code}): {setup.output_tail}")
    try:
        with _RunLog(out, task, loaded, listener) as reporter:
            start_run(
                loaded,
                task.task,
                run_id=task.id,
                json_lines=False,
                reporter=reporter,
                controls=controls,
            )
    except UserError as e:  # e.g. the task's docker settings are wrong: nothing ran
        return _not_run(task, str(e))
    return None


def _resume(
    task: BatchTask,
    settings: BatchSettings,
    controls: RunControls,
    listener: EventListener | None,
) -> bool:
    """Drive the saved run on; False when it cannot be (its result stands as it is)."""
    out = Path(settings.out)
    try:
        loaded = task_config(task, settings, workspace_path(out, task.id))
        with _RunLog(out, task, loaded, listener) as reporter:
            resume_run(
                loaded, task.id, None, json_lines=False, reporter=reporter, controls=controls
            )
    except (UserError, ConfigError, StoreError) as e:
        with open(Path(out, LOGS_DIR, f"{task.id}.log"), "a") as log:
            print(f"runhands: the run cannot go on: {e}", file=log)
        return False
    return True


class _RunLog:
    """The run's progress into `<out>/logs/<id>.log` (appended across attempts), each
    event also handed to the batch's listener."""

    def __init__(
        self, out: Path, task: BatchTask, loaded: LoadedConfig, listener: EventListener | None
    ) -> None:
        path = out / LOGS_DIR / f"{task.id}.log"
        path.parent.mkdir(parents=True, exist_ok=True)
        self._file: TextIO = open(path, "a", encoding="utf-8")  # noqa: SIM115
        tell = (lambda event: listener(task.id, event)) if listener else None
        self.reporter = Reporter(
            log_all_events=loaded.config.core.log_all_events,
            secrets=secrets_of(loaded.config),
            out=self._file,
            err=self._file,
            listener=tell,
        )

    def __enter__(self) -> Reporter:
        return self.reporter

    def __exit__(self, *exc: object) -> None:
        self._file.close()


def _result(
    task: BatchTask,
    settings: BatchSettings,
    events: list[Any],
    snapshot: Snapshot,
    *,
    final: bool = True,
    stop: threading.Event | None = None,
) -> TaskResult:
    """The task's result as its log tells it; `final`: the end that stands (then the eval
    runs), else where the task stood when the batch stopped (not a line of results)."""
    out = Path(settings.out)
    attempts = _infrastructure_ends(events)
    ended = next((e for e in reversed(events) if isinstance(e, RunEnded)), None)
    reason = snapshot.reason if snapshot.ended else EndReason.INTERRUPTED
    if not final or ended is None:
        reason = EndReason.INTERRUPTED
    patch = Path(out, PATCHES_DIR, f"{task.id}.patch")
    counters = snapshot.counters
    score = _eval(task, settings, stop) if final and task.eval else None
    return TaskResult(
        id=task.id,
        run_id=task.id,
        state=snapshot.state,
        reason=str(reason),
        exit_code=ended.exit_code if ended and final else int(ExitCode.INTERRUPTED),
        steps=counters.steps,
        tokens=counters.prompt_tokens + counters.completion_tokens,
        cost=round(counters.cost, 6),
        duration_s=round(counters.runtime_s, 3),
        changes=ended.changes if ended else None,
        patch=str(patch.relative_to(out)) if patch.exists() else None,
        eval=score,
        # Each infrastructure end was an attempt; so is the end that stands, unless it is one.
        attempt=attempts + (reason not in INFRASTRUCTURE),
        message=(ended.message if ended else "")[:500],
    )


def _eval(
    task: BatchTask, settings: BatchSettings, stop: threading.Event | None
) -> EvalResult | None:
    out = Path(settings.out)
    try:
        loaded = task_config(task, settings, workspace_path(out, task.id))
    except ConfigError as e:
        return EvalResult(command=task.eval or "", exit_code=-1, output_tail=str(e), duration_s=0)
    return run_commands(
        loaded.config,
        task.id,
        workspace_path(out, task.id),
        settings.runs,
        [task.eval or ""],
        settings.eval_timeout,
        stop,
    )


def _not_run(task: BatchTask, message: str, reason: str = SETUP_FAILED) -> TaskResult:
    """The workspace or the setup failed: the agent never ran."""
    return TaskResult(
        id=task.id,
        run_id="",
        state="errored",
        reason=reason,
        exit_code=int(ExitCode.SANDBOX),
        message=message[-500:],
    )
