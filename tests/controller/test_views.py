"""`list` and `inspect` on hand-built run directories."""

from __future__ import annotations

import os
from pathlib import Path

import msgspec
import pytest

from controller.cli.views import RunReport, RunSummary, show_inspect, show_list, summarize
from state_store.events import (
    Action,
    Counters,
    ExecuteBash,
    Finish,
    ModelResponse,
    ModelRetry,
    Observation,
    RunEnded,
    RunResumed,
    RunStarted,
    Snapshot,
    Transition,
    UserMessage,
)
from state_store.store import RunStore, StoreError


def make_run(
    root: Path, run_id: str, *, updated_at: float = 1_000.0, snapshot: bool = True
) -> Path:
    """A two-step finished run, as the controller writes it."""
    store = RunStore.create(root, run_id)
    task = f"task of {run_id}\nsecond line"
    store.append(RunStarted, run_id=run_id, task=task, workdir="/w", runtime="local", model="m/x")
    store.append(UserMessage, content=task)
    store.append(Transition, source="init", dest="planning", trigger="start", reason="ready")
    for step, args in ((1, ExecuteBash(command="echo one")), (2, Finish(message="all done"))):
        if step == 1:
            store.append(ModelRetry, step=1, attempt=1, error="503 busy", wait_s=0.5)
        store.append(
            ModelResponse,
            step=step,
            model="x",
            content=None,
            prompt_tokens=100,
            completion_tokens=20,
            cost=0.25,
        )
        store.append(Transition, source="planning", dest="acting", trigger="act", reason="call")
        store.append(Action, step=step, tool_call_id=f"c{step}", args=args)
        store.append(
            Observation,
            step=step,
            tool_call_id=f"c{step}",
            tool=args.__struct_config__.tag,
            content="one\n[exit code 0]",
        )
        store.append(Transition, source="acting", dest="observing", trigger="observe", reason="ok")
    store.append(Transition, source="observing", dest="finished", trigger="finish", reason="fin")
    store.append(
        RunEnded,
        run_id=run_id,
        state="finished",
        reason="finished",
        message="all done",
        steps=2,
        prompt_tokens=200,
        completion_tokens=40,
        cost=0.5,
        exit_code=0,
        duration_s=2.0,
    )
    if snapshot:
        counters = Counters(steps=2, prompt_tokens=200, completion_tokens=40, cost=0.5)
        store.save_snapshot(
            Snapshot(
                run_id=run_id,
                task=task,
                state="finished",
                reason="finished",
                last_seq=store.last_seq,
                created_at=updated_at - 2,
                updated_at=updated_at,
                counters=counters,
            )
        )
    store.close()
    return root / run_id


def test_list_shows_runs_newest_first_and_skips_other_dirs(tmp_path: Path, capsys) -> None:
    make_run(tmp_path, "old", updated_at=1_000.0)
    make_run(tmp_path, "new", updated_at=3_000.0)
    make_run(tmp_path, "mid", updated_at=2_000.0)
    (tmp_path / "not-a-run").mkdir()
    (tmp_path / "stray.txt").write_text("x")

    assert show_list(tmp_path, as_json=False) == 0
    header, *rows = capsys.readouterr().out.splitlines()
    assert header.split() == ["RUN", "STATE", "REASON", "STEPS", "COST", "UPDATED", "FROM", "TASK"]
    assert [row.split()[0] for row in rows] == ["new", "mid", "old"]
    assert "task of new second line" in rows[0]  # the task on one line
    assert "$0.5000" in rows[0]


def test_list_json_decodes_into_run_summaries(tmp_path: Path, capsys) -> None:
    make_run(tmp_path, "a", updated_at=1_000.0)
    make_run(tmp_path, "b", updated_at=2_000.0)
    show_list(tmp_path, as_json=True)
    lines = capsys.readouterr().out.splitlines()
    runs = [msgspec.json.decode(line, type=RunSummary) for line in lines]
    assert [r.run_id for r in runs] == ["b", "a"]
    assert (runs[0].state, runs[0].steps, runs[0].cost) == ("finished", 2, 0.5)
    assert runs[0].prompt_tokens == 200 and runs[0].updated_at == 2_000.0


def test_an_empty_or_missing_state_dir_is_not_an_error(tmp_path: Path, capsys) -> None:
    assert show_list(tmp_path / "missing", as_json=False) == 0
    assert capsys.readouterr().out == f"no runs in {tmp_path / 'missing'}\n"
    assert show_list(tmp_path, as_json=True) == 0
    assert capsys.readouterr().out == ""  # JSON stdout stays parseable


def test_a_run_without_snapshot_is_summarized_from_its_events(tmp_path: Path) -> None:
    run_dir = make_run(tmp_path, "killed", snapshot=False)
    summary = summarize(run_dir)
    assert (summary.state, summary.reason, summary.steps) == ("finished", "finished", 2)
    assert (summary.prompt_tokens, summary.completion_tokens, summary.cost) == (200, 40, 0.5)
    assert summary.task.startswith("task of killed")
    assert 0 < summary.created_at <= summary.updated_at


def test_a_resume_makes_the_previous_end_stale(tmp_path: Path, capsys) -> None:
    make_run(tmp_path, "r", snapshot=False)
    store = RunStore.open(tmp_path, "r")
    store.append(RunResumed, state="finished", reason="a new instruction")
    store.append(Transition, source="finished", dest="planning", trigger="plan", reason="go")
    store.close()
    show_inspect(tmp_path, "r", as_json=True)
    report = msgspec.json.decode(capsys.readouterr().out, type=RunReport)
    assert (report.summary.state, report.summary.reason, report.message) == ("planning", "", "")
    show_inspect(tmp_path, "r", as_json=False)
    assert "resumed in state finished: a new instruction" in capsys.readouterr().out


def test_a_damaged_run_is_listed_as_damaged_among_the_others(tmp_path: Path, capsys) -> None:
    make_run(tmp_path, "good")
    bad = make_run(tmp_path, "bad", snapshot=False)
    lines = (bad / "events.jsonl").read_bytes().splitlines(keepends=True)
    lines[3] = b"{not json\n"
    (bad / "events.jsonl").write_bytes(b"".join(lines))

    assert show_list(tmp_path, as_json=True) == 0
    captured = capsys.readouterr()
    decoded = (msgspec.json.decode(line, type=RunSummary) for line in captured.out.splitlines())
    runs = {run.run_id: run for run in decoded}
    assert runs["good"].state == "finished"
    assert runs["bad"].state == "damaged"
    assert "events.jsonl:4" in runs["bad"].reason
    assert runs["bad"].updated_at > 0  # dated by the files' mtime

    show_list(tmp_path, as_json=False)
    captured = capsys.readouterr()
    assert "damaged" in captured.out
    assert "events.jsonl:4" in captured.err


def test_mtime_orders_runs_that_carry_no_date(tmp_path: Path, capsys) -> None:
    for name, mtime in (("x", 5_000), ("y", 9_000)):
        run_dir = make_run(tmp_path, name, snapshot=False)
        (run_dir / "events.jsonl").write_text("{broken\n")
        os.utime(run_dir / "events.jsonl", (mtime, mtime))
        os.utime(run_dir, (mtime, mtime))
    show_list(tmp_path, as_json=True)
    runs = [msgspec.json.decode(x, type=RunSummary) for x in capsys.readouterr().out.splitlines()]
    assert [(r.run_id, r.state, r.updated_at) for r in runs] == [
        ("y", "damaged", 9_000),
        ("x", "damaged", 5_000),
    ]


def test_inspect_shows_summary_transitions_steps_and_retries(tmp_path: Path, capsys) -> None:
    make_run(tmp_path, "a")
    assert show_inspect(tmp_path, "a", as_json=False) == 0
    out = capsys.readouterr().out
    for expected in (
        "run       a",
        "model     m/x",
        "workdir   /w",
        "state     finished",
        "message   all done",
        "steps     2",
        "tokens    240 (200 prompt, 40 completion)",
        "cost      $0.5000",
        "duration  0.0s",  # from the log's first and last event
        "init -> planning: ready",
        "[step 1] $ echo one",
        "| one",
        "model call failed (503 busy); retry 1 in 0.5s",
        "[step 2] finish",
        "observing -> finished: fin",
    ):
        assert expected in out, expected
    assert "incomplete" not in out


def test_inspect_json_decodes_into_the_report_with_typed_events(tmp_path: Path, capsys) -> None:
    make_run(tmp_path, "a")
    show_inspect(tmp_path, "a", as_json=True)
    report = msgspec.json.decode(capsys.readouterr().out, type=RunReport)
    assert report.summary.run_id == "a" and report.summary.steps == 2
    assert (report.model, report.workdir, report.message) == ("m/x", "/w", "all done")
    assert [(t.source, t.dest) for t in report.transitions] == [
        ("init", "planning"),
        *[("planning", "acting"), ("acting", "observing")] * 2,
        ("observing", "finished"),
    ]
    assert isinstance(report.events[-1], RunEnded)
    assert report.torn_bytes == 0


def test_inspect_reports_an_ignored_torn_last_line(tmp_path: Path, capsys) -> None:
    run_dir = make_run(tmp_path, "torn")
    with open(run_dir / "events.jsonl", "ab") as f:
        f.write(b'{"kind":"observation","st')
    show_inspect(tmp_path, "torn", as_json=False)
    assert "incomplete (25 bytes" in capsys.readouterr().out
    show_inspect(tmp_path, "torn", as_json=True)
    assert msgspec.json.decode(capsys.readouterr().out, type=RunReport).torn_bytes == 25


def test_inspect_of_a_damaged_log_names_file_and_line(tmp_path: Path) -> None:
    run_dir = make_run(tmp_path, "bad")
    lines = (run_dir / "events.jsonl").read_bytes().splitlines(keepends=True)
    lines[2] = b'{"kind":"nonsense"}\n'
    (run_dir / "events.jsonl").write_bytes(b"".join(lines))
    with pytest.raises(StoreError, match=r"events\.jsonl:3: damaged event"):
        show_inspect(tmp_path, "bad", as_json=False)


def test_unknown_or_invalid_run_id_is_a_store_error(tmp_path: Path) -> None:
    make_run(tmp_path, "a")
    (tmp_path / "empty-dir").mkdir()
    for run_id in ("nope", "empty-dir"):
        with pytest.raises(StoreError) as info:
            show_inspect(tmp_path, run_id, as_json=False)
        assert str(info.value) == (
            f"no run named {run_id!r} in {tmp_path} (runhands list shows them)"
        )
    with pytest.raises(StoreError, match="invalid run name"):
        show_inspect(tmp_path, "../a", as_json=False)
