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
import signal
import time
from collections.abc import Iterable
from pathlib import Path
from typing import Any, TypeVar

import msgspec

from state_store.events import (
    SCHEMA_VERSION,
    AnyEvent,
    Condensation,
    Event,
    LogHeader,
    ModelResponse,
    RunEnded,
    RunResumed,
    RunStarted,
    Snapshot,
    Transition,
)

EVENTS_FILE = "events.jsonl"
SNAPSHOT_FILE = "snapshot.json"
CONFIG_FILE = "config.json"
LOCK_FILE = "lock"

_RUN_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,99}")
_REDACTED = b"****"
_STOP_SIGNALS = {signal.SIGINT, signal.SIGTERM}

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
        # Filled by `open`: the events already saved, and the bytes of a torn line cut off.
        self.events: list[AnyEvent] = []
        self.torn_bytes = 0

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

    @classmethod
    def open(cls, root: Path, run_id: str, secrets: Iterable[str] = ()) -> RunStore:
        """Reopen a run to continue it. A torn final line (a crash mid-write) is cut off
        and reported in `torn_bytes`; any other damage is a StoreError, file untouched."""
        validate_run_id(run_id)
        run_dir = root / run_id
        if not (run_dir / EVENTS_FILE).is_file():
            raise StoreError(f"no run named {run_id!r} in {root} (`runhands list` shows them)")
        store = cls(run_dir, secrets)
        store._lock()
        log = load_log(run_dir / EVENTS_FILE)
        store.events = log.events
        store.torn_bytes = log.torn_bytes
        fd = os.open(run_dir / EVENTS_FILE, os.O_WRONLY | os.O_APPEND)
        if log.torn_bytes:
            os.ftruncate(fd, os.fstat(fd).st_size - log.torn_bytes)
        store._log_fd = fd
        store._seq = log.events[-1].seq if log.events else 0
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
        event = event_type(seq=self._seq + 1, ts=time.time(), **fields)
        line = self._redact(self._encoder.encode(event))
        # A signal between the write and the count would leave a gap or a duplicate
        # sequence number: hold SIGINT/SIGTERM for these two steps.
        blocked = signal.pthread_sigmask(signal.SIG_BLOCK, _STOP_SIGNALS)
        try:
            self._write_line(line)
            self._seq += 1
        finally:
            signal.pthread_sigmask(signal.SIG_SETMASK, blocked)
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


class EventLog(msgspec.Struct):
    events: list[AnyEvent]
    # Size of an incomplete final line (no newline: the writer died mid-write), ignored.
    torn_bytes: int = 0


def load_log(path: Path) -> EventLog:
    """Decode an event log. A torn final line is ignored and reported; a damaged line
    elsewhere, or a log from a newer schema, is an error naming the file and line."""
    data = path.read_bytes()
    torn = 0
    if data and not data.endswith(b"\n"):
        torn = len(data) - (data.rfind(b"\n") + 1)
        data = data[: len(data) - torn]
    events: list[AnyEvent] = []
    for number, line in enumerate(data.splitlines(), start=1):
        if number == 1:
            _check_schema(path, line)
        try:
            events.append(_event_decoder.decode(line))
        except msgspec.DecodeError as e:
            raise StoreError(f"{path}:{number}: damaged event ({e})") from None
    return EventLog(events=events, torn_bytes=torn)


def _check_schema(path: Path, first_line: bytes) -> None:
    try:
        schema = msgspec.json.decode(first_line, type=_SchemaOnly).schema
    except msgspec.DecodeError:
        return  # not a header: decoding the line reports the damage
    if schema > SCHEMA_VERSION:
        raise StoreError(
            f"{path}: written by a newer runhands (schema {schema}, this one reads "
            f"{SCHEMA_VERSION}); upgrade runhands to read it"
        )


class _SchemaOnly(msgspec.Struct):
    schema: int = 0


def read_events(path: Path) -> list[AnyEvent]:
    return load_log(path).events


def is_active(run_dir: Path) -> bool:
    """True while some process holds the run's lock (is driving it)."""
    try:
        fd = os.open(run_dir / LOCK_FILE, os.O_RDWR)
    except OSError:
        return False
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        return True
    finally:
        os.close(fd)  # closing releases the lock if we took it
    return False


def load_config(run_dir: Path, config_type: type[S]) -> S:
    data = (run_dir / CONFIG_FILE).read_bytes()
    return msgspec.json.decode(data, type=_config_file(config_type)).config


def _config_file(config_type: type[S]) -> type:
    return msgspec.defstruct("ConfigFile", [("schema", int), ("config", config_type)])


def read_snapshot(run_dir: Path) -> Snapshot:
    path = run_dir / SNAPSHOT_FILE
    data = path.read_bytes()
    _check_schema(path, data)
    try:
        return msgspec.json.decode(data, type=Snapshot)
    except msgspec.DecodeError as e:
        raise StoreError(f"{path}: damaged snapshot ({e})") from None


def snapshot_from_events(run_id: str, events: list[AnyEvent]) -> Snapshot:
    """What the snapshot says according to the log, which is the truth: the saved snapshot
    may lag it by the step in progress, or be missing after an early crash."""
    first, last = (events[0].ts, events[-1].ts) if events else (0.0, 0.0)
    snapshot = Snapshot(
        run_id=run_id, task="", state="init", last_seq=0, created_at=first, updated_at=last
    )
    counters = snapshot.counters
    for event in events:
        snapshot.last_seq = event.seq
        if isinstance(event, RunStarted):
            snapshot.task, snapshot.created_at = event.task, event.ts
        elif isinstance(event, Transition):
            snapshot.state = event.dest
            snapshot.message = event.reason
        elif isinstance(event, ModelResponse):
            counters.steps += 1
            counters.prompt_tokens += event.prompt_tokens
            counters.completion_tokens += event.completion_tokens
            counters.cost += event.cost
        elif isinstance(event, Condensation):  # a summary costs tokens too
            counters.prompt_tokens += event.prompt_tokens
            counters.completion_tokens += event.completion_tokens
            counters.cost += event.cost
        elif isinstance(event, RunEnded):
            snapshot.reason, snapshot.message = event.reason, event.message
        elif isinstance(event, RunResumed):
            snapshot.reason = snapshot.message = ""  # running again: the old end is over
    return snapshot
