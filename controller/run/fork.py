"""`runhands fork`: a new run whose history is another run's up to the end of step N and
whose workspace is that step's checkpoint, materialised in a new directory; then the model
takes over (optionally with a new instruction, another model, other limits).

The parent is only read. The fork's store holds its own copy of the checkpoint objects
(hard links), so deleting the parent later costs the fork nothing. Its log is the parent's
events up to the cut (times kept, the working directory moved to the fork's), then a
`run_forked` event; the directory is prepared before the log is created, so a fork exists
whole or not at all.
"""

from __future__ import annotations

import os
import re
import shutil
import sys
from pathlib import Path

import msgspec

from controller.agent.checkpoints import CHECKPOINTS_DIR, checkpoint_store
from controller.agent.outcome import ExitCode
from controller.agent.run_state import derive
from controller.agent.timeline import NoSuchStep, step_end, tree_at
from controller.config import AppConfig, LoadedConfig, overlay_config, public_config, secrets_of
from controller.config.volumes import VolumeError, parse_volumes
from controller.run.recordings import PATH_END
from controller.run.resume import check_resumable, continue_run, run_started
from controller.run.setup import UserError, check_model, make_reporter
from state_store.checkpoints import CheckpointError, CheckpointStore
from state_store.events import AnyEvent, Event, RunForked, RunStarted
from state_store.store import (
    EVENTS_FILE,
    RunStore,
    StoreError,
    StoreWriteError,
    find_run,
    load_config,
    load_log,
    new_run_id,
    validate_run_id,
)

_event_decoder = msgspec.json.Decoder(AnyEvent)


class ForkPlan(msgspec.Struct, kw_only=True):
    parent: str
    at_step: int
    cut: int  # the parent's last event in the fork's history
    tree: str
    history: list[Event]  # the parent's events 2..cut, moved to the fork's directory


def fork_run(
    loaded: LoadedConfig,
    parent_id: str,
    at_step: int,
    *,
    name: str | None,
    directory: str | None,
    instruction: str | None,
    json_lines: bool,
) -> int:
    root = Path(loaded.config.core.file_store_path).expanduser()
    try:
        parent_dir = find_run(root, parent_id)
        events = load_log(parent_dir / EVENTS_FILE).events
        fork_id = validate_run_id(name or new_run_id())
        started = run_started(events)
        old_workspace = started.host_workdir or started.workdir
        target = _target_dir(directory, old_workspace, fork_id)
        config = _fork_config(overlay_config(load_config(parent_dir, AppConfig), loaded), target)
        check_model(config, dict(os.environ))
        plan = _plan(parent_id, events, at_step)
        parent_checkpoints = checkpoint_store(config, parent_dir, Path(old_workspace))
        parent_checkpoints.verify(plan.tree)
        check_resumable(derive(fork_id, events[: plan.cut]), config, instruction)
    except (StoreError, CheckpointError, NoSuchStep) as e:
        raise UserError(str(e)) from None
    _check_empty(target)
    moved = _moved(plan.history, fork_id, old_workspace, str(target), started.workdir, config)
    try:
        store = _create(root, fork_id, config, moved, plan, parent_checkpoints, target)
    except StoreWriteError as e:  # e.g. no space left: the name stays free
        print(f"runhands: error: the fork could not be created: {e}", file=sys.stderr)
        return int(ExitCode.STORAGE)
    reporter = make_reporter(loaded, json_lines)
    reporter.info(
        f"runhands: run {fork_id} forked from {parent_id} at step {at_step} "
        f"(workspace {target}, state in {store.run_dir})"
    )
    snapshot = derive(fork_id, store.events)
    why = f"forked from {parent_id} at step {at_step}"
    return continue_run(store, config, snapshot, reporter, instruction, forked=why)


def _plan(parent_id: str, events: list[AnyEvent], at_step: int) -> ForkPlan:
    if not derive(parent_id, events).first_tree:
        raise UserError(no_checkpoints(parent_id))
    cut = step_end(events, at_step)
    tree = tree_at(events, cut)
    if tree is None:
        raise UserError(f"run {parent_id} has no checkpoint at step {at_step}")
    return ForkPlan(
        parent=parent_id, at_step=at_step, cut=cut, tree=tree, history=list(events[1:cut])
    )


def no_checkpoints(run_id: str) -> str:
    return (
        f"run {run_id} has no workspace checkpoints (it was made by an older runhands, or "
        "git was missing)"
    )


def _target_dir(directory: str | None, old_workspace: str, fork_id: str) -> Path:
    """-d DIR, or a new directory beside the parent's workspace named after the fork."""
    if directory:
        return Path(directory).expanduser().absolute()
    old = Path(old_workspace)
    return old.parent / f"{old.name}-{fork_id}"


def _check_empty(target: Path) -> None:
    if target.is_symlink() or (target.exists() and not target.is_dir()):
        raise UserError(f"{target} is not a directory")
    if target.is_dir() and any(target.iterdir()):
        raise UserError(f"{target} is not empty: fork into a new or empty directory (-d DIR)")


def _fork_config(config: AppConfig, target: Path) -> AppConfig:
    """The parent's settings under today's flags, with the fork's directory as the
    workspace (also as the host side of a container's workspace mount)."""
    mount = config.core.workspace_mount_path_in_sandbox.rstrip("/")
    try:
        volumes = parse_volumes(config.sandbox.volumes or "")
    except VolumeError as e:
        raise UserError(str(e)) from None
    entries = [
        f"{target if v.container.rstrip('/') == mount else v.host}:{v.container}:{v.mode}"
        for v in volumes
    ]
    core = msgspec.structs.replace(config.core, workspace_base=str(target))
    sandbox = msgspec.structs.replace(config.sandbox, volumes=",".join(entries) or None)
    return msgspec.structs.replace(config, core=core, sandbox=sandbox)


def _moved(
    history: list[Event],
    fork_id: str,
    old_workspace: str,
    new_workspace: str,
    agent_workdir: str,
    config: AppConfig,
) -> list[tuple[type[Event], dict]]:
    """The history as the fork's opening events: the parent's working directory replaced
    by the fork's wherever the model saw it (a local run works on host paths), times kept."""
    local = config.core.runtime == "local"
    pattern = re.compile(re.escape(old_workspace.rstrip("/")) + PATH_END)
    encoder = msgspec.json.Encoder()
    opening = []
    for event in history:
        line = encoder.encode(event).decode()
        if local and old_workspace.rstrip("/") != new_workspace:
            line = pattern.sub(lambda _: new_workspace, line)
        moved = _event_decoder.decode(line)
        fields = {f: getattr(moved, f) for f in moved.__struct_fields__ if f != "seq"}
        if isinstance(moved, RunStarted):
            workdir = new_workspace if local else agent_workdir
            fields.update(run_id=fork_id, workdir=workdir, host_workdir=new_workspace)
        opening.append((type(moved), fields))
    return opening


def _create(
    root: Path,
    fork_id: str,
    config: AppConfig,
    opening: list[tuple[type[Event], dict]],
    plan: ForkPlan,
    parent_checkpoints: CheckpointStore,
    target: Path,
) -> RunStore:
    """The fork's checkpoints and workspace first, then its log, created whole."""
    run_dir = root / fork_id
    if (run_dir / EVENTS_FILE).exists():
        raise UserError(f"run {fork_id!r} already exists in {root}; pick another name (-n)")
    try:
        run_dir.mkdir(mode=0o700, parents=True, exist_ok=True)
        shutil.rmtree(run_dir / CHECKPOINTS_DIR, ignore_errors=True)  # a crashed attempt's
        target.mkdir(parents=True, exist_ok=True)
        parent_checkpoints.copy_to(run_dir / CHECKPOINTS_DIR)
        checkpoint_store(config, run_dir, target).checkout(plan.tree)
    except (OSError, CheckpointError) as e:
        raise UserError(f"cannot prepare the fork's workspace {target}: {e}") from None
    forked = {"parent": plan.parent, "at_step": plan.at_step, "parent_seq": plan.cut}
    try:
        return RunStore.create(
            root,
            fork_id,
            secrets_of(config),
            config=public_config(config),
            opening=[*opening, (RunForked, {**forked, "tree": plan.tree})],
        )
    except StoreError as e:
        raise UserError(str(e)) from None
