"""Workspace checkpoints during a run: which tool calls are followed by one, the first one
(with the commit of the workspace's repository), settling after a crash, and what the run
changed (the `run_ended` summary, the patch).

A checkpoint is saved, then recorded: a crash between the two leaves no event, and the next
process saves again (the tree is content-addressed, so nothing is stored twice). A
checkpoint that fails (git missing, an unreadable store) is a warning, never the run's end.
"""

from __future__ import annotations

from pathlib import Path

from controller.agent.context import RunContext
from controller.agent.reporting import Reporter
from controller.config import AppConfig, secrets_of
from state_store.checkpoints import CheckpointError, CheckpointStore, git_available
from state_store.events import (
    ChangeSummary,
    Checkpoint,
    ExecuteBash,
    McpCall,
    Snapshot,
    StrReplaceEditor,
    ToolArgs,
)
from state_store.files import write_atomic

CHECKPOINTS_DIR = "checkpoints"  # under the run's directory
_MB = 2**20


def open_checkpoints(
    config: AppConfig, run_dir: Path, host_workdir: str, reporter: Reporter | None = None
) -> CheckpointStore | None:
    """The run's checkpoint store over its workspace (the host side of a container's mount);
    None, with a warning, when git is missing."""
    if not git_available():
        if reporter is not None:
            reporter.info(
                "runhands: warning: git is not installed: the workspace is not checkpointed "
                "(diff, patch, fork and rewind need checkpoints)"
            )
        return None
    return checkpoint_store(config, run_dir, Path(host_workdir))


def checkpoint_store(config: AppConfig, run_dir: Path, workspace: Path) -> CheckpointStore:
    """The store of `run_dir` over `workspace`; the state directory is never saved, even
    when it lies inside the workspace."""
    core = config.core
    return CheckpointStore(
        run_dir / CHECKPOINTS_DIR,
        workspace,
        ignore=core.checkpoint_ignore,
        max_file_bytes=int(core.checkpoint_max_file_mb * _MB),
        exclude=[Path(core.file_store_path).expanduser().resolve()],
        secrets=secrets_of(config),
    )


def changes_files(args: ToolArgs) -> bool:
    """Tool calls that may change the workspace (a shell command may change anything; so
    may an MCP server: a filesystem server writes files, and it runs in the workspace)."""
    if isinstance(args, StrReplaceEditor):
        return args.command != "view"
    return isinstance(args, ExecuteBash | McpCall)


def save_checkpoint(ctx: RunContext, *, base_commit: str = "", first: bool = False) -> None:
    """Save the workspace and record it, attributed to the current step, unless nothing
    changed since the checkpoint in force (the first one is always recorded)."""
    store, snapshot = ctx.checkpoints, ctx.snapshot
    if store is None:
        return
    step = snapshot.counters.steps
    try:
        saved = store.save()
    except CheckpointError as e:
        ctx.reporter.info(f"runhands: warning: workspace not checkpointed at step {step}: {e}")
        return
    skipped = [f.path for f in saved.skipped]
    if not first and saved.tree == snapshot.tree and skipped == snapshot.skipped:
        return
    for file in saved.skipped:
        if file.path not in snapshot.skipped:
            ctx.reporter.info(f"runhands: checkpoint skips {file.path}: {file.reason}")
    ctx.record(
        Checkpoint, step=step, tree=saved.tree, skipped=saved.skipped, base_commit=base_commit
    )


def settle_checkpoints(ctx: RunContext) -> None:
    """At every (re)start: a new run's first checkpoint (seeded from the commit of the
    workspace's repository), or a checkpoint of what changed since the last one recorded (a
    call whose checkpoint a crash lost, or files changed while the run was stopped)."""
    store = ctx.checkpoints
    if store is None:
        return
    if ctx.snapshot.tree:
        save_checkpoint(ctx)
        return
    base = ""
    if ctx.snapshot.counters.steps == 0:  # a new run (not an older one without checkpoints)
        try:
            base = store.seed_from_repository() or ""
        except CheckpointError as e:
            ctx.reporter.info(f"runhands: warning: the workspace's git commit is unknown: {e}")
    save_checkpoint(ctx, base_commit=base, first=True)


# -- what the run changed ----------------------------------------------------------------


def run_changes(store: CheckpointStore | None, snapshot: Snapshot) -> ChangeSummary | None:
    """From the run's first checkpoint to the one in force; None without checkpoints."""
    if store is None or not snapshot.first_tree or not snapshot.tree:
        return None
    return store.summary(snapshot.first_tree, snapshot.tree)


def run_patch(store: CheckpointStore, snapshot: Snapshot) -> bytes:
    """The run's change as a `git apply`-able patch: relative to the commit the workspace's
    repository was at when the run started (so it applies to a clean checkout of it), or
    else to the run's first checkpoint."""
    base = store.tree_of(snapshot.base_commit) if snapshot.base_commit else snapshot.first_tree
    # git's exact bytes (a file in another encoding than UTF-8 included)
    return store.diff(base, snapshot.tree, binary=True).encode(errors="surrogateescape")


def write_patch(path: str, run_id: str, patch: bytes) -> Path:
    """`save_patch_path`: a file, or a directory that gets `<run id>.patch`; written
    atomically, private."""
    target = Path(path).expanduser()
    if target.is_dir():
        target = target / f"{run_id}.patch"
    target.parent.mkdir(parents=True, exist_ok=True)
    write_atomic(target, patch)
    return target
