"""Recorded runs to replay: a saved run or an OpenHands trajectory file, and its actions
moved from the recorded working directory to this one."""

from __future__ import annotations

import re
from pathlib import Path

import msgspec

from controller.agent.timeline import effective_events
from controller.errors import UserError
from controller.trajectory import (
    Recording,
    from_trajectory,
    recording_from_events,
)
from state_store.events import ToolArgs
from state_store.store import EVENTS_FILE, StoreError, read_events, validate_run_id

PATH_END = r"(?![\w.-])"  # so /work does not match inside /workspace


def load_recording(source: str, root: Path) -> Recording:
    """A run id (under root), a run directory, or a trajectory file."""
    run_dir = _run_dir(source, root)
    if run_dir is not None:
        # A rewound run replays the history it goes on from.
        events = effective_events(read_events(run_dir / EVENTS_FILE))
        recording = recording_from_events(events)
        return msgspec.structs.replace(recording, run_dir=str(run_dir))
    path = Path(source).expanduser()
    if path.is_dir():
        raise UserError(f"{source} is a directory without {EVENTS_FILE}: not a saved run")
    if path.is_file():
        return from_trajectory(path)
    raise UserError(f"no run named {source!r} in {root}, and no file {source}")


def _run_dir(source: str, root: Path) -> Path | None:
    candidates = [Path(source).expanduser()]
    try:
        validate_run_id(source)
        candidates.insert(0, root / source)  # a run id wins over a same-named local file
    except StoreError:
        pass
    return next((c for c in candidates if (c / EVENTS_FILE).is_file()), None)


def relocate(args: ToolArgs, old: str | None, new: str) -> ToolArgs:
    """args with the recording's working directory replaced by the replay's, in commands,
    paths and file texts alike, so the replay works on its own directory."""
    old = (old or "").rstrip("/")
    if not old or old == new.rstrip("/"):
        return args
    pattern = re.compile(re.escape(old) + PATH_END)
    changes = {
        name: pattern.sub(lambda _: new, value)
        for name in args.__struct_fields__
        if isinstance(value := getattr(args, name), str)
    }
    return msgspec.structs.replace(args, **changes)
