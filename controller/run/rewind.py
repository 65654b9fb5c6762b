"""`runhands rewind RUN --to N`: the run goes back to the end of step N, in place.

The workspace is checkpointed first (rewinding to the step the run was at undoes the
rewind), then its files are restored and a `rewound` event cuts the model's view back to
step N. Nothing is deleted from the log. A workspace that changed since the run's last
checkpoint (changes the run did not make) is refused unless `--force`: those changes are
then saved in the checkpoint taken first. The run is left stopped; `runhands resume` goes
on from step N.
"""

from __future__ import annotations

import sys
from pathlib import Path

from controller.agent.checkpoints import checkpoint_store
from controller.agent.run_state import derive
from controller.agent.timeline import NoSuchStep, step_end, tree_at
from controller.config import AppConfig, LoadedConfig, overlay_config, secrets_of
from controller.run.fork import no_checkpoints
from controller.run.resume import run_started
from controller.run.setup import UserError
from state_store.checkpoints import CheckpointError, CheckpointStore
from state_store.events import Checkpoint, Rewound, Snapshot
from state_store.store import RunStore, StoreError, load_config

_LISTED = 5  # changed files named in the refusal


def rewind_run(loaded: LoadedConfig, run_id: str, to_step: int, *, force: bool) -> int:
    root = Path(loaded.config.core.file_store_path).expanduser()
    try:
        store = RunStore.open(root, run_id, secrets_of(loaded.config))
    except (StoreError, OSError) as e:
        raise UserError(str(e)) from None
    try:
        return _rewind(store, loaded, to_step, force)
    except (StoreError, CheckpointError, NoSuchStep) as e:
        raise UserError(str(e)) from None
    finally:
        store.close()


def _rewind(store: RunStore, loaded: LoadedConfig, to_step: int, force: bool) -> int:
    events, run_id = store.events, store.run_id
    snapshot = derive(run_id, events)
    if not snapshot.tree:
        raise UserError(no_checkpoints(run_id))
    cut = step_end(events, to_step)
    tree = tree_at(events, cut)
    if tree is None:
        raise UserError(f"run {run_id} has no checkpoint at step {to_step}")
    started = run_started(events)
    workspace = Path(started.host_workdir or started.workdir)
    if not workspace.is_dir():
        raise UserError(f"the run's workspace {workspace} is gone: nothing to rewind")
    config = overlay_config(load_config(store.run_dir, AppConfig), loaded)
    checkpoints = checkpoint_store(config, store.run_dir, workspace)
    checkpoints.verify(tree)
    saved = checkpoints.save()
    if saved.tree != snapshot.tree:
        if not force:
            raise UserError(_outside_changes(checkpoints, snapshot, saved.tree, run_id))
        steps = snapshot.counters.steps
        store.append(Checkpoint, step=steps, tree=saved.tree, skipped=saved.skipped)
    checkpoints.checkout(tree)
    store.append(
        Rewound,
        to_step=to_step,
        to_seq=cut,
        tree=tree,
        saved_tree=saved.tree,
        from_step=snapshot.counters.steps,
    )
    store.save_snapshot(derive(run_id, store.read_events()))
    print(
        f"runhands: run {run_id} rewound to the end of step {to_step} (workspace {workspace}); "
        f"undo with: runhands rewind {run_id} --to {snapshot.counters.steps}; "
        f"continue with: runhands resume {run_id}",
        file=sys.stderr,
    )
    return 0


def _outside_changes(
    checkpoints: CheckpointStore, snapshot: Snapshot, now: str, run_id: str
) -> str:
    changed = [c.path for c in checkpoints.changes(snapshot.tree, now)]
    named = ", ".join(changed[:_LISTED]) + (" ..." if len(changed) > _LISTED else "")
    return (
        f"the workspace has changes run {run_id} did not make since its last checkpoint "
        f"({named}); rewind --force saves them in a checkpoint first, so they can be restored"
    )
