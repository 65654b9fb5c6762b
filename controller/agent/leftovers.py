"""What earlier processes of a run left running (a crash cannot clean up): found from the
run's `sandbox_started` events and stopped. Nothing runhands did not start is touched."""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path
from typing import Any

from controller.config import AppConfig
from state_store.events import Event, SandboxStarted


def stop_leftovers(events: Iterable[Event], config: AppConfig, root: Path, run_id: str) -> bool:
    """Stop what earlier processes of this run started and left behind: their local shells
    (found by the tag in their environment), and their containers unless the run keeps its
    container alive (then it is reattached). True when something was stopped."""
    from sandbox.process_cleanup import stop_leftovers as stop_local

    started = [e for e in events if isinstance(e, SandboxStarted)]
    stopped = False
    for event in started:
        if event.runtime == "local":
            stopped = stop_local(event.identity) or stopped
    if any(e.runtime == "docker" for e in started) and not config.sandbox.keep_runtime_alive:
        stopped = bool(remove_run_containers(root, run_id)) or stopped
    return stopped


def docker_client() -> Any:  # the docker SDK is only imported when containers are involved
    import docker

    return docker.from_env()


def remove_run_containers(root: Path, run_id: str) -> list[str]:
    """Remove one run's containers; [] when there are none or no engine answers."""
    from sandbox.docker_engine import remove_leftovers

    try:
        return remove_leftovers(docker_client(), run_id, scope=str(root.resolve()))
    except Exception:  # no engine: nothing of ours can be running there either
        return []
