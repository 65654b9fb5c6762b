"""A run's directory: `events.jsonl` (append-only), `snapshot.json` (atomic), `config.json`.

Every event is written to the OS as it happens (a killed process loses nothing) and the log
and snapshot are fsynced once per step (`sync`), so even a machine crash loses at most the
step in progress: at most one torn final line in the log, and a snapshot that is either
the old or the new one. Files are 0600,
directories 0700. Known secret values are redacted from every byte written.
"""

from __future__ import annotations

import fcntl
import os
import re
import secrets as pysecrets
import time
from collections.abc import Iterable
from pathlib import Path
from typing import Any, TypeVar

import msgspec

from state_store.events import SCHEMA_VERSION, AnyEvent, Event, LogHeader, Snapshot

EVENTS_FILE = "events.jsonl"
SNAPSHOT_FILE = "snapshot.json"
CONFIG_FILE = "config.json"
LOCK_FILE = "lock"

_RUN_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,99}")
_REDACTED = b"****"

S = TypeVar("S", bound=msgspec.Struct)


class StoreError(Exception):
    """The store cannot be used: bad run id, unwritable directory, damaged file, busy run."""


def validate_run_id(run_id: str) -> str:
    if not _RUN_ID.fullmatch(run_id) or ".." in run_id:
        raise StoreError(
            f"invalid run name {run_id!r}: use letters, digits, '.', '_' or '-' "
            "(no '/', no '..', at most 100 characters)"
        )
    return run_id


def new_run_id() -> str:
    return time.strftime("%Y%m%d-%H%M%S") + "-" + pysecrets.token_hex(3)


def _write_atomic(path: Path, data: bytes) -> None:
    tmp = path.with_name(path.name + ".tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    try:
        os.write(fd, data)
        os.fsync(fd)
    finally:
        os.close(fd)
    os.replace(tmp, path)


class RunStore:
    """The files of one run. Create with `RunStore.create`, reopen with `RunStore.open`."""

    def __init__(self, run_dir: Path, secrets: Iterable[str] = ()) -> None:
        self.run_dir = run_dir
        self.run_id = run_dir.name
        self._secrets = [s.encode() for s in secrets if s and len(s) >= 4]
        self._log_fd: int | None = None
        self._lock_fd: int | None = None
        self._seq = 0
        self._encoder = msgspec.json.Encoder()

    # -- opening ---------------------------------------------------------------------------
    @classmethod
    def create(cls, root: Path, run_id: str, secrets: Iterable[str] = ()) -> RunStore:
        """Make a new run directory; refuses to touch an existing run."""
        validate_run_id(run_id)
        try:
            root.mkdir(parents=True, exist_ok=True, mode=0o700)
            (root / run_id).mkdir(mode=0o700)
        except FileExistsError:
            raise StoreError(
                f"run {run_id!r} already exists in {root}; continue it with "
                f"`runhands resume {run_id}` or pick another name"
            ) from None
        except OSError as e:
            raise StoreError(f"cannot create the state directory {root}: {e.strerror}") from None
        store = cls(root / run_id, secrets)
        store._lock()
        store._log_fd = os.open(
            store.run_dir / EVENTS_FILE, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600
        )
        store.append(LogHeader, schema=SCHEMA_VERSION, run_id=run_id, writer="runhands")
        return store

    def _lock(self) -> None:
        # flock dies with the process, so a crashed run never leaves its lock held.
        fd = os.open(self.run_dir / LOCK_FILE, os.O_RDWR | os.O_CREAT, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(fd)
            raise StoreError(f"run {self.run_id!r} is in use by another runhands process") from None
        self._lock_fd = fd

    # -- writing ---------------------------------------------------------------------------
    @property
    def last_seq(self) -> int:
        return self._seq

    def append(self, event_type: type[Event], **fields: Any) -> Event:
        """Build the next event (sequence number and time filled in) and write it."""
        self._seq += 1
        event = event_type(seq=self._seq, ts=time.time(), **fields)
        self._write_line(self._redact(self._encoder.encode(event)))
        return event

    def _write_line(self, data: bytes) -> None:
        assert self._log_fd is not None, "store is closed"
        os.write(self._log_fd, data + b"\n")

    def sync(self) -> None:
        """Make everything written so far survive a machine crash (once per step)."""
        assert self._log_fd is not None, "store is closed"
        os.fsync(self._log_fd)

    def save_snapshot(self, snapshot: Snapshot) -> None:
        """Sync the log, then replace the snapshot atomically (once per step)."""
        self.sync()
        data = self._redact(msgspec.json.encode(snapshot))
        _write_atomic(self.run_dir / SNAPSHOT_FILE, data)

    def save_config(self, config: msgspec.Struct) -> None:
        """The run's effective configuration, secrets already removed by the caller."""
        data = msgspec.json.encode({"schema": SCHEMA_VERSION, "config": config})
        _write_atomic(self.run_dir / CONFIG_FILE, self._redact(data))

    def _redact(self, data: bytes) -> bytes:
        for secret in self._secrets:
            data = data.replace(secret, _REDACTED)
        return data

    def close(self) -> None:
        for fd in (self._log_fd, self._lock_fd):
            if fd is not None:
                os.close(fd)
        self._log_fd = self._lock_fd = None

    # -- reading ---------------------------------------------------------------------------
    def read_events(self) -> list[AnyEvent]:
        return read_events(self.run_dir / EVENTS_FILE)


_event_decoder = msgspec.json.Decoder(AnyEvent)


def read_events(path: Path) -> list[AnyEvent]:
    """Decode an event log; a damaged or too-new line is an error naming file and line."""
    events: list[AnyEvent] = []
    with open(path, "rb") as f:
        for number, line in enumerate(f, start=1):
            try:
                events.append(_event_decoder.decode(line))
            except msgspec.DecodeError as e:
                raise StoreError(f"{path}:{number}: damaged event ({e})") from None
    if events and isinstance(events[0], LogHeader) and events[0].schema > SCHEMA_VERSION:
        raise StoreError(f"{path}: written by a newer runhands (schema {events[0].schema})")
    return events


def load_config(run_dir: Path, config_type: type[S]) -> S:
    data = (run_dir / CONFIG_FILE).read_bytes()
    return msgspec.json.decode(data, type=_config_file(config_type)).config


def _config_file(config_type: type[S]) -> type:
    return msgspec.defstruct("ConfigFile", [("schema", int), ("config", config_type)])


def read_snapshot(run_dir: Path) -> Snapshot:
    path = run_dir / SNAPSHOT_FILE
    try:
        return msgspec.json.decode(path.read_bytes(), type=Snapshot)
    except msgspec.DecodeError as e:
        raise StoreError(f"{path}: damaged snapshot ({e})") from None
