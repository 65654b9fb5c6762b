"""A run's directory: `events.jsonl` (append-only), `snapshot.json` (atomic), `config.json`.

Every event is written to the OS as it happens (a killed process loses nothing) and the log
and snapshot are fsynced once per step (`sync`), so even a machine crash loses at most the
step in progress: at most one torn final line in the log, and a snapshot that is either
the old or the new one. A write that fails (no space left) is undone: the log is cut back
to its last complete line, the old snapshot kept, and `StoreWriteError` raised. A run
exists once its `events.jsonl` does, and that file is created whole (header, start, task),
so a crash while a run starts leaves no half run. Files are 0600, directories 0700. Known
secret values are redacted from every byte written.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import re
import secrets as pysecrets
import signal
import stat
import time
from collections.abc import Iterable
from pathlib import Path
from typing import Any, TypeVar

import msgspec

from state_store.events import SCHEMA_VERSION, AnyEvent, Event, LogHeader, Snapshot
from state_store.faults import FaultPoint, no_space
from state_store.files import Redactor, sync_directory, write_all, write_atomic

EVENTS_FILE = "events.jsonl"
SNAPSHOT_FILE = "snapshot.json"
CONFIG_FILE = "config.json"
LOCK_FILE = "lock"

_RUN_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,99}")
_STOP_SIGNALS = {signal.SIGINT, signal.SIGTERM}

S = TypeVar("S", bound=msgspec.Struct)


class StoreError(Exception):
    """The store cannot be used: bad run id, unwritable directory, damaged file, busy run."""


class StoreWriteError(Exception):
    """A write to the run's files failed (e.g. no space left); nothing saved was lost."""


def validate_run_id(run_id: str) -> str:
    if not _RUN_ID.fullmatch(run_id) or ".." in run_id:
        raise StoreError(
            f"invalid run name {run_id!r}: use letters, digits, '.', '_' or '-' "
            "(no '/', no '..', at most 100 characters)"
        )
    return run_id


def new_run_id() -> str:
    return time.strftime("%Y%m%d-%H%M%S") + "-" + pysecrets.token_hex(3)


def _write_error(path: Path, error: OSError) -> StoreWriteError:
    return StoreWriteError(f"cannot write {path}: {error.strerror or error}")


Opening = list[tuple[type[Event], dict[str, Any]]]


class RunStore:
    """The files of one run. Create with `RunStore.create`, reopen with `RunStore.open`."""

    def __init__(self, run_dir: Path, secrets: Iterable[str] = ()) -> None:
        self.run_dir = run_dir
        self.run_id = run_dir.name
        self.redactor = Redactor(secrets)
        self._log_fd: int | None = None
        self._lock_fd: int | None = None
        self._seq = 0
        self._size = 0  # bytes of complete lines in the log: where a failed write is cut
        self._encoder = msgspec.json.Encoder()
        self._faults = FaultPoint()
        # The events saved so far (read by `open`, written by `create`), and the bytes of a
        # torn last line `open` cut off.
        self.events: list[AnyEvent] = []
        self.torn_bytes = 0

    # -- opening ---------------------------------------------------------------------------
    @classmethod
    def create(
        cls,
        root: Path,
        run_id: str,
        secrets: Iterable[str] = (),
        *,
        config: msgspec.Struct | None = None,
        opening: Opening = (),
    ) -> RunStore:
        """Make a new run: its config, then its log holding the header and `opening` events,
        created whole. Refuses an existing run; reclaims a directory a crash left before
        the log existed (that run never started)."""
        validate_run_id(run_id)
        run_dir = root / run_id
        _claim(root, run_dir)
        store = cls(run_dir, secrets)
        store._lock()
        try:
            for leftover in (CONFIG_FILE, SNAPSHOT_FILE, EVENTS_FILE + ".tmp"):
                (run_dir / leftover).unlink(missing_ok=True)
            if config is not None:  # (tests and benchmarks build bare logs)
                store.save_config(config)
            store._create_log(
                [
                    (LogHeader, {"schema": SCHEMA_VERSION, "run_id": run_id, "writer": "runhands"}),
                    *opening,
                ]
            )
        except BaseException:
            store.close()
            raise
        return store

    def _create_log(self, opening: Opening) -> None:
        lines = []
        for seq, (event_type, fields) in enumerate(opening, start=1):
            # (a fork's copied history keeps its times)
            event, line = self._redacted(event_type(seq=seq, **{"ts": time.time(), **fields}))
            self.events.append(event)
            lines.append(line)
        path, data = self.run_dir / EVENTS_FILE, b"".join(lines)
        self._faults_before_write(path, len(data))
        try:
            write_atomic(path, data)
        except OSError as e:
            raise _write_error(path, e) from None
        self._seq, self._size = len(lines), sum(map(len, lines))
        self._log_fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_NOFOLLOW)

    @classmethod
    def open(cls, root: Path, run_id: str, secrets: Iterable[str] = ()) -> RunStore:
        """Reopen a run to continue it. A torn final line (a crash mid-write) is cut off
        and reported in `torn_bytes`; any other damage is a StoreError, file untouched."""
        validate_run_id(run_id)
        run_dir = root / run_id
        if not _is_file(run_dir / EVENTS_FILE):
            raise StoreError(f"no run named {run_id!r} in {root} (`runhands list` shows them)")
        check_private(run_dir)
        store = cls(run_dir, secrets)
        store._lock()
        try:
            log = load_log(run_dir / EVENTS_FILE)
            check_not_cut(run_dir, log)
            fd = os.open(run_dir / EVENTS_FILE, os.O_WRONLY | os.O_APPEND | os.O_NOFOLLOW)
        except BaseException:
            store.close()
            raise
        store.events, store.torn_bytes = log.events, log.torn_bytes
        size = os.fstat(fd).st_size - log.torn_bytes
        if log.torn_bytes:
            os.ftruncate(fd, size)
        store._log_fd, store._size = fd, size
        store._seq = log.events[-1].seq if log.events else 0
        return store

    def _lock(self) -> None:
        # flock dies with the process, so a crashed run never leaves its lock held.
        fd = os.open(self.run_dir / LOCK_FILE, os.O_RDWR | os.O_CREAT | os.O_NOFOLLOW, 0o600)
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
        event, line = self._redacted(event_type(seq=self._seq + 1, ts=time.time(), **fields))
        # A signal between the write and the count would leave a gap or a duplicate
        # sequence number: hold SIGINT/SIGTERM for these two steps.
        blocked = signal.pthread_sigmask(signal.SIG_BLOCK, _STOP_SIGNALS)
        try:
            self._write_line(line)
            self._seq += 1
        finally:
            signal.pthread_sigmask(signal.SIG_SETMASK, blocked)
        return event

    def _redacted(self, event: Event) -> tuple[Event, bytes]:
        """The event as the log holds it (known secrets replaced) and its line: the model,
        the fold and the reporter then see exactly what a resumed run will see."""
        raw = self._encoder.encode(event)
        line = self.redactor.bytes(raw)
        if line != raw:
            event = _event_decoder.decode(line)
        return event, line + b"\n"

    def _write_line(self, line: bytes) -> None:
        assert self._log_fd is not None, "store is closed"
        path = self.run_dir / EVENTS_FILE
        try:
            allowed = self._faults.before_write(len(line))
            write_all(self._log_fd, line[:allowed])
            if allowed < len(line):
                raise no_space()
        except OSError as e:
            # Undo whatever part of the line was written: the log stays whole lines.
            with contextlib.suppress(OSError):
                os.ftruncate(self._log_fd, self._size)
            raise _write_error(path, e) from None
        self._size += len(line)

    def _faults_before_write(self, path: Path, size: int) -> None:
        try:
            if self._faults.before_write(size) < size:
                raise no_space()
        except OSError as e:
            raise _write_error(path, e) from None

    def sync(self) -> None:
        """Make everything written so far survive a machine crash (once per step)."""
        assert self._log_fd is not None, "store is closed"
        try:
            os.fsync(self._log_fd)
        except OSError as e:
            raise _write_error(self.run_dir / EVENTS_FILE, e) from None

    def save_snapshot(self, snapshot: Snapshot) -> None:
        """Sync the log, then replace the snapshot atomically (once per step); on failure
        the previous snapshot stays."""
        self.sync()
        self._save(SNAPSHOT_FILE, msgspec.json.encode(snapshot))

    def save_config(self, config: msgspec.Struct) -> None:
        """The run's effective configuration, secrets already removed by the caller."""
        self._save(CONFIG_FILE, msgspec.json.encode({"schema": SCHEMA_VERSION, "config": config}))

    def _save(self, name: str, data: bytes) -> None:
        path, data = self.run_dir / name, self.redactor.bytes(data)
        self._faults_before_write(path, len(data))
        try:
            write_atomic(path, data)
        except OSError as e:
            raise _write_error(path, e) from None

    def close(self) -> None:
        for fd in (self._log_fd, self._lock_fd):
            if fd is not None:
                os.close(fd)
        self._log_fd = self._lock_fd = None

    # -- reading ---------------------------------------------------------------------------
    def read_events(self) -> list[AnyEvent]:
        return read_events(self.run_dir / EVENTS_FILE)


def _claim(root: Path, run_dir: Path) -> None:
    """Take the run's directory: new, or left by a crash before its log was created."""
    try:
        root.mkdir(parents=True, exist_ok=True, mode=0o700)
        run_dir.mkdir(mode=0o700)
        sync_directory(root)
    except FileExistsError:
        if run_dir.is_symlink() or not run_dir.is_dir() or _is_file(run_dir / EVENTS_FILE):
            raise StoreError(
                f"run {run_dir.name!r} already exists in {root}; continue it with "
                f"`runhands resume {run_dir.name}` or pick another name"
            ) from None
    except OSError as e:
        raise StoreError(f"cannot create the state directory {root}: {e.strerror}") from None


def find_run(root: Path, run_id: str) -> Path:
    """The directory of a saved run (to read it; `RunStore.open` to continue it)."""
    validate_run_id(run_id)
    run_dir = root / run_id
    if not (run_dir / EVENTS_FILE).is_file():
        raise StoreError(f"no run named {run_id!r} in {root} (runhands list shows them)")
    check_private(run_dir)
    return run_dir


def _is_file(path: Path) -> bool:
    return path.is_file() or path.is_symlink()


def check_private(run_dir: Path) -> None:
    """Refuse a run whose files others could have changed: a symlinked log (it would be
    read and written wherever it points) or a directory others can write."""
    info = os.lstat(run_dir)
    if stat.S_ISLNK(info.st_mode) or info.st_mode & (stat.S_IWGRP | stat.S_IWOTH):
        raise StoreError(
            f"{run_dir}: refusing a run directory that is a symlink or writable by others "
            "(runhands makes them 0700)"
        )
    if (run_dir / EVENTS_FILE).is_symlink():
        raise StoreError(f"{run_dir / EVENTS_FILE}: refusing a symlinked event log")


_event_decoder = msgspec.json.Decoder(AnyEvent)


class EventLog(msgspec.Struct):
    events: list[AnyEvent]
    # Size of an incomplete final line (no newline: the writer died mid-write), ignored.
    torn_bytes: int = 0


def load_log(path: Path) -> EventLog:
    """Decode an event log. A torn final line is ignored and reported; a damaged line
    elsewhere, a sequence number out of place (lines lost, duplicated, renumbered), or a
    log from a newer schema is an error naming the file and line."""
    if path.is_symlink():
        raise StoreError(f"{path}: refusing a symlinked event log")
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
            event = _event_decoder.decode(line)
        except msgspec.DecodeError as e:
            raise StoreError(f"{path}:{number}: damaged event ({e})") from None
        if event.seq != number:
            raise StoreError(
                f"{path}:{number}: event numbered {event.seq} where {number} belongs "
                "(lines lost, duplicated or reordered): the log is damaged"
            )
        events.append(event)
    return EventLog(events=events, torn_bytes=torn)


def check_not_cut(run_dir: Path, log: EventLog) -> None:
    """The snapshot is written after the events it counts were synced: a log that ends
    before it lost events at its end."""
    try:
        saved = read_snapshot(run_dir).last_seq
    except (OSError, StoreError):
        return  # no usable snapshot: nothing to compare with (it is only a cache)
    last = log.events[-1].seq if log.events else 0
    if saved > last:
        raise StoreError(
            f"{run_dir / EVENTS_FILE}: the log ends at event {last} but {saved} were saved: "
            "events were cut from its end"
        )


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
    path = run_dir / CONFIG_FILE
    try:
        data = path.read_bytes()
        return msgspec.json.decode(data, type=_config_file(config_type)).config
    except FileNotFoundError:
        raise StoreError(f"{path} is missing: the run's configuration was not saved") from None
    except (OSError, msgspec.DecodeError) as e:
        raise StoreError(f"{path}: damaged configuration ({e})") from None


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
