"""`runhands diff` and `runhands patch`: what a run changed in its workspace, read from its
checkpoints (never from the workspace itself, which may be gone or changed since)."""

from __future__ import annotations

import sys
from pathlib import Path

from controller.agent.checkpoints import CHECKPOINTS_DIR, checkpoint_store, run_patch, write_patch
from controller.agent.run_state import derive
from controller.agent.timeline import step_end, tree_at, tree_before_step
from controller.cli.views import write_out
from controller.config import AppConfig
from controller.errors import UserError
from controller.run.fork import no_checkpoints
from controller.run.resume import run_started
from state_store.checkpoints import CheckpointError, CheckpointStore
from state_store.events import AnyEvent, Snapshot
from state_store.store import EVENTS_FILE, find_run, load_config, load_log


class Steps:
    """Which stretch of a run to compare: the whole run, one step, or from one step's end
    to another's."""

    def __init__(self, step: int | None, start: int | None, end: int | None) -> None:
        if step is not None and (start is not None or end is not None):
            raise UserError("give --step N, or --from A [--to B], not both")
        self.step, self.start, self.end = step, start, end

    def trees(self, events: list[AnyEvent], snapshot: Snapshot) -> tuple[str | None, str]:
        if self.step is not None:
            old = tree_before_step(events, self.step)
            new = tree_at(events, step_end(events, self.step))
            return (old if self.step else new), _present(new, self.step)
        old = snapshot.first_tree
        if self.start is not None:
            old = _present(tree_at(events, step_end(events, self.start)), self.start)
        new = snapshot.tree
        if self.end is not None:
            new = _present(tree_at(events, step_end(events, self.end)), self.end)
        return old, new


def _present(tree: str | None, step: int) -> str:
    if tree is None:
        raise UserError(f"there is no checkpoint at step {step}")
    return tree


def show_diff(root: Path, run_id: str, steps: Steps, *, stat: bool) -> int:
    store, events, snapshot = _open(root, run_id)
    old, new = steps.trees(events, snapshot)
    for tree in {old, new} - {None}:
        store.verify(str(tree))
    write_out(store.diff(old, new, stat=stat))
    return 0


def show_patch(root: Path, run_id: str, output: str | None) -> int:
    """The run's change, `git apply`-able (see `run_patch` for its base)."""
    store, _, snapshot = _open(root, run_id)
    store.verify(snapshot.tree)
    patch = run_patch(store, snapshot)
    if output is None:
        write_out(patch)
        return 0
    written = write_patch(output, run_id, patch)
    print(f"runhands: wrote the patch of run {run_id} to {written}", file=sys.stderr)
    return 0


def _open(root: Path, run_id: str) -> tuple[CheckpointStore, list[AnyEvent], Snapshot]:
    run_dir = find_run(root, run_id)
    events = load_log(run_dir / EVENTS_FILE).events
    snapshot = derive(run_id, events)
    if not snapshot.first_tree:
        raise UserError(no_checkpoints(run_id))
    if not (run_dir / CHECKPOINTS_DIR).is_dir():
        raise CheckpointError(f"the checkpoints of run {run_id} were deleted ({run_dir})")
    started = run_started(events)
    config = load_config(run_dir, AppConfig)
    workspace = Path(started.host_workdir or started.workdir)
    return checkpoint_store(config, run_dir, workspace), events, snapshot
