"""The run store: append-only fsynced log, atomic snapshot, permissions, redaction, lock."""

from __future__ import annotations

import stat
from pathlib import Path

import pytest

from state_store.events import (
    SCHEMA_VERSION,
    Action,
    ExecuteBash,
    LogHeader,
    Observation,
    Snapshot,
    UserMessage,
)
from state_store.store import RunStore, StoreError, new_run_id, read_events, read_snapshot


def test_events_round_trip_with_sequence_numbers(tmp_path: Path) -> None:
    store = RunStore.create(tmp_path, "r1")
    store.append(UserMessage, content="task")
    store.append(Action, step=1, tool_call_id="c1", args=ExecuteBash(command="ls"))
    store.append(Observation, step=1, tool_call_id="c1", tool="execute_bash", content="x")
    store.close()
    events = read_events(tmp_path / "r1" / "events.jsonl")
    assert [type(e) for e in events] == [LogHeader, UserMessage, Action, Observation]
    assert [e.seq for e in events] == [1, 2, 3, 4]
    assert events[0].schema == SCHEMA_VERSION
    assert events[2].args == ExecuteBash(command="ls")


def test_files_are_private(tmp_path: Path) -> None:
    store = RunStore.create(tmp_path / "state", "r1")
    store.save_snapshot(
        Snapshot(run_id="r1", task="t", state="init", last_seq=1, created_at=0, updated_at=0)
    )
    store.close()
    run_dir = tmp_path / "state" / "r1"
    assert stat.S_IMODE((tmp_path / "state").stat().st_mode) == 0o700
    assert stat.S_IMODE(run_dir.stat().st_mode) == 0o700
    for path in run_dir.iterdir():
        assert stat.S_IMODE(path.stat().st_mode) == 0o600


def test_snapshot_is_replaced_atomically(tmp_path: Path) -> None:
    store = RunStore.create(tmp_path, "r1")
    for state in ("init", "planning", "acting"):
        store.save_snapshot(
            Snapshot(run_id="r1", task="t", state=state, last_seq=1, created_at=0, updated_at=0)
        )
    assert read_snapshot(tmp_path / "r1").state == "acting"
    assert not list((tmp_path / "r1").glob("*.tmp"))


def test_secrets_are_redacted_from_every_file(tmp_path: Path) -> None:
    secret = "test-key-never-on-disk-123"
    store = RunStore.create(tmp_path, "r1", secrets=[secret])
    store.append(UserMessage, content=f"the key is {secret}")
    store.save_snapshot(
        Snapshot(run_id="r1", task=secret, state="init", last_seq=1, created_at=0, updated_at=0)
    )
    store.close()
    for path in (tmp_path / "r1").iterdir():
        assert secret.encode() not in path.read_bytes()
    assert "the key is ****" in read_events(tmp_path / "r1" / "events.jsonl")[1].content


def test_an_existing_run_is_refused(tmp_path: Path) -> None:
    RunStore.create(tmp_path, "r1").close()
    with pytest.raises(StoreError, match=r"already exists.*runhands resume r1"):
        RunStore.create(tmp_path, "r1")


@pytest.mark.parametrize("bad", ["../x", "a/b", "..", "", ".hidden", "x" * 101])
def test_bad_run_ids_are_refused(tmp_path: Path, bad: str) -> None:
    with pytest.raises(StoreError, match="invalid run name"):
        RunStore.create(tmp_path, bad)
    assert list(tmp_path.iterdir()) == []


def test_generated_run_ids_are_valid_and_distinct(tmp_path: Path) -> None:
    ids = {new_run_id() for _ in range(50)}
    assert len(ids) == 50
    for run_id in list(ids)[:3]:
        RunStore.create(tmp_path, run_id).close()


def test_damaged_line_is_reported_with_file_and_line(tmp_path: Path) -> None:
    store = RunStore.create(tmp_path, "r1")
    store.append(UserMessage, content="task")
    store.close()
    log = tmp_path / "r1" / "events.jsonl"
    log.write_bytes(log.read_bytes().replace(b'"user_message"', b'"user_mess'))
    with pytest.raises(StoreError, match=r"events.jsonl:2: damaged event"):
        read_events(log)
