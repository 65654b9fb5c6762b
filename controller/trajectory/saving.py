"""Trajectory files: written at a run's end (`save_trajectory_path`) or by `runhands
trajectory RUN`, atomically, private, known secrets replaced."""

from __future__ import annotations

import sys
from collections.abc import Iterable, Sequence
from pathlib import Path

from controller.trajectory.export import encode_trajectory
from controller.trajectory.shapes import TrajectoryError
from state_store.events import AnyEvent, LogHeader, RunStarted
from state_store.files import Redactor, write_atomic
from state_store.store import EVENTS_FILE, StoreError, read_events, validate_run_id


def save_trajectory(path: str, events: Sequence[AnyEvent], *, secrets: Iterable[str] = ()) -> Path:
    """Write a run's trajectory for `[core] save_trajectory_path` / SAVE_TRAJECTORY_PATH.

    Like OpenHands, a directory gets `<run id>.json` inside it. The file is written
    atomically with mode 0600; known secret values are replaced by `****`. Returns the file.
    """
    target = Path(path).expanduser()
    if target.is_dir():
        target = target / f"{_run_id(events)}.json"
    _write_private(target, Redactor(secrets).bytes(encode_trajectory(events)))
    return target


def export_trajectory(root: Path, run_id: str, output: Path | None) -> int:
    """`runhands trajectory RUN [-o FILE]`: the run's trajectory on stdout or in a file."""
    events = read_run(root, run_id)
    if output is None:
        sys.stdout.write(encode_trajectory(events).decode())
        sys.stdout.flush()
        return 0
    written = save_trajectory(str(output), events)
    print(f"runhands: wrote the trajectory of run {run_id} to {written}", file=sys.stderr)
    return 0


def read_run(root: Path, run_id: str) -> list[AnyEvent]:
    validate_run_id(run_id)
    path = root / run_id / EVENTS_FILE
    if not path.is_file():
        raise StoreError(f"no run named {run_id!r} in {root} (`runhands list` shows them)")
    return read_events(path)


def _run_id(events: Sequence[AnyEvent]) -> str:
    for event in events:
        if isinstance(event, LogHeader | RunStarted):
            return event.run_id
    return "trajectory"


def _write_private(path: Path, data: bytes) -> None:
    """Replace path atomically, 0600; an OSError becomes a one-line TrajectoryError."""
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        write_atomic(path, data)
    except OSError as e:
        raise TrajectoryError(f"cannot write {path}: {e.strerror or e}") from None
