"""`runhands gc`: remove the containers runhands left behind (crashes, kills).

Only containers labelled by runhands are considered, and only those whose run is not being
driven right now (its lock is free) and does not keep its container on purpose.
"""

from __future__ import annotations

from pathlib import Path

from controller.agent.leftovers import docker_client
from controller.config import AppConfig
from state_store.store import StoreError, is_active, load_config, validate_run_id


def collect_garbage(root: Path) -> list[str]:
    """Remove the leftover containers of every run that is not active; their names."""
    from sandbox.docker_engine import managed_run_ids, remove_leftovers

    client = docker_client()
    scope = str(root.resolve())  # only this state directory's runs: never another user's
    removed: list[str] = []
    for run_id in managed_run_ids(client, scope):
        if _in_use(root, run_id):
            continue
        removed += remove_leftovers(client, run_id, scope)
    return removed


def _in_use(root: Path, run_id: str) -> bool:
    """Driven right now, or kept alive on purpose for a later resume."""
    try:
        run_dir = root / validate_run_id(run_id)
    except StoreError:
        return False
    if is_active(run_dir):
        return True
    try:
        return load_config(run_dir, AppConfig).sandbox.keep_runtime_alive
    except (OSError, ValueError):
        return False
