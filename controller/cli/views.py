"""`runhands list` and `runhands inspect`: read saved runs, never change them.

Only the store's files are read (no litellm, no sandbox), so both commands start fast and
work while a run is going on. Counters come from the snapshot; a run killed before its
first snapshot is summarized from its events instead.
"""

from __future__ import annotations

import os
import sys
import time
from pathlib import Path

import msgspec

from controller.agent.reporting import describe, describe_changes
from controller.agent.run_state import derive
from sandbox.output import for_terminal, json_for_terminal
from state_store.events import (
    AnyEvent,
    ChangeSummary,
    Checkpoint,
    Rewound,
    RunEnded,
    RunForked,
    RunResumed,
    RunStarted,
    SandboxStarted,
    Snapshot,
    Transition,
    UserMessage,
)
from state_store.store import (
    EVENTS_FILE,
    SNAPSHOT_FILE,
    EventLog,
    StoreError,
    check_not_cut,
    check_private,
    find_run,
    is_active,
    load_log,
    read_snapshot,
)

_TASK_WIDTH = 50
_REASON_WIDTH = 24
_TASK_LINES = 10  # of a long task shown by `inspect`


class RunSummary(msgspec.Struct, kw_only=True):
    """One run as `list` shows it; times are seconds since the epoch."""

    run_id: str
    task: str
    state: str
    reason: str
    steps: int
    prompt_tokens: int
    completion_tokens: int
    cost: float
    created_at: float
    updated_at: float
    # A fork: the run it was forked from, and at which step.
    parent: str = ""
    forked_at: int | None = None


class RunReport(msgspec.Struct, kw_only=True):
    """Everything `inspect --json` prints: the summary, then the store's own events."""

    summary: RunSummary
    model: str
    workdir: str
    # The agent's final message, or in words why the run stopped.
    message: str
    duration_s: float
    # Size of an incomplete last line of the log (the writer died mid-write), ignored.
    torn_bytes: int
    transitions: list[Transition]
    events: list[AnyEvent]
    # What the run changed in its workspace, as of its last end (None: unknown).
    changes: ChangeSummary | None = None
    # The isolation and network of its last sandbox ("" before one started, or older logs).
    isolation: str = ""
    network: str = ""


# -- reading -------------------------------------------------------------------------------


def summarize(run_dir: Path) -> RunSummary:
    """From the snapshot (a cache, quick to read); from the log when it is missing or
    damaged, or the run is being driven right now (the snapshot lags by a step)."""
    snapshot = _snapshot_or_none(run_dir)
    if snapshot is None or is_active(run_dir):
        snapshot = derive(run_dir.name, _log_of(run_dir).events)
    return _summary(snapshot)


def _summary(snapshot: Snapshot) -> RunSummary:
    c = snapshot.counters
    return RunSummary(
        run_id=snapshot.run_id,
        task=snapshot.task,
        state=snapshot.state,
        reason=snapshot.reason,
        steps=c.steps,
        prompt_tokens=c.prompt_tokens,
        completion_tokens=c.completion_tokens,
        cost=c.cost,
        created_at=snapshot.created_at,
        updated_at=snapshot.updated_at,
        parent=snapshot.parent,
        forked_at=snapshot.forked_at if snapshot.parent else None,
    )


def _snapshot_or_none(run_dir: Path) -> Snapshot | None:
    """The cached snapshot, or None when it is missing or damaged (the log decides)."""
    try:
        return read_snapshot(run_dir)
    except (OSError, StoreError):
        return None


def _log_of(run_dir: Path) -> EventLog:
    path = run_dir / EVENTS_FILE
    if not path.exists():
        return EventLog(events=[])
    try:
        return load_log(path)
    except OSError as e:
        raise StoreError(f"cannot read {path}: {e.strerror}") from None


def _is_run(path: Path) -> bool:
    """A run exists once its log does (it is created whole, with the task)."""
    return (path / EVENTS_FILE).is_file()


# -- list ----------------------------------------------------------------------------------


def show_list(root: Path, *, as_json: bool) -> int:
    runs = list_runs(root)
    if not runs:
        # Keep stdout parseable (empty) in JSON mode.
        print(f"no runs in {root}", file=sys.stderr if as_json else sys.stdout)
        return 0
    if as_json:
        encoder = msgspec.json.Encoder()
        write_out(json_for_terminal("".join(encoder.encode(run).decode() + "\n" for run in runs)))
        return 0
    write_out(for_terminal(_table(runs)))  # tasks and reasons may hold escape sequences
    for run in runs:
        if run.state == "damaged":
            print(f"runhands: warning: run {run.run_id!r}: {run.reason}", file=sys.stderr)
    return 0


def list_runs(root: Path) -> list[RunSummary]:
    """Every run under root, newest first; a damaged one is listed as `damaged`."""
    try:
        dirs = [d for d in root.iterdir() if d.is_dir() and _is_run(d)]
    except FileNotFoundError:
        return []
    except OSError as e:
        raise StoreError(f"cannot read the state directory {root}: {e.strerror}") from None
    runs = [_list_entry(d) for d in dirs]
    runs.sort(key=lambda run: run.updated_at, reverse=True)
    return runs


def _list_entry(run_dir: Path) -> RunSummary:
    try:
        summary = summarize(run_dir)
    except StoreError as e:
        summary = _damaged(run_dir.name, str(e))
    if not summary.updated_at:  # nothing dated it (damaged or empty): the files' time
        summary.updated_at = _mtime(run_dir)
        summary.created_at = summary.created_at or summary.updated_at
    return summary


def _damaged(run_id: str, error: str) -> RunSummary:
    return RunSummary(
        run_id=run_id,
        task="",
        state="damaged",
        reason=error,
        steps=0,
        prompt_tokens=0,
        completion_tokens=0,
        cost=0.0,
        created_at=0.0,
        updated_at=0.0,
    )


def _mtime(run_dir: Path) -> float:
    paths = (run_dir, run_dir / EVENTS_FILE, run_dir / SNAPSHOT_FILE)
    return max(path.stat().st_mtime for path in paths if path.exists())


def _table(runs: list[RunSummary]) -> str:
    rows = [("RUN", "STATE", "REASON", "STEPS", "COST", "UPDATED", "FROM", "TASK")]
    rows += [
        (
            run.run_id,
            run.state,
            _one_line(run.reason, _REASON_WIDTH),
            str(run.steps),
            f"${run.cost:.4f}",
            _local_time(run.updated_at, "%Y-%m-%d %H:%M"),
            f"{run.parent}@{run.forked_at}" if run.parent else "-",
            _one_line(run.task, _TASK_WIDTH),
        )
        for run in runs
    ]
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]) - 1)]
    numeric = {3, 4}  # right-aligned columns
    lines = []
    for row in rows:
        cells = [
            cell.rjust(width) if i in numeric else cell.ljust(width)
            for i, (cell, width) in enumerate(zip(row, widths, strict=False))
        ]
        lines.append("  ".join([*cells, row[-1]]).rstrip())
    return "\n".join(lines) + "\n"


# -- inspect -------------------------------------------------------------------------------


def show_inspect(root: Path, run_id: str, *, as_json: bool) -> int:
    report = inspect_run(find_run(root, run_id))
    if as_json:
        write_out(json_for_terminal(msgspec.json.encode(report).decode() + "\n"))
    else:
        write_out(for_terminal(_render(report)))  # model text must not drive the terminal
    return 0


def inspect_run(run_dir: Path) -> RunReport:
    """Read a run for `inspect`, from its log (the truth); a damaged log is a StoreError
    naming file and line."""
    check_private(run_dir)
    log = _log_of(run_dir)
    check_not_cut(run_dir, log)
    snapshot = derive(run_dir.name, log.events)
    summary = _summary(snapshot)
    started = next((e for e in log.events if isinstance(e, RunStarted)), None)
    sandbox = next((e for e in reversed(log.events) if isinstance(e, SandboxStarted)), None)
    return RunReport(
        summary=summary,
        model=started.model if started else "",
        workdir=started.workdir if started else "",
        message=_final_message(log.events) or snapshot.message,
        duration_s=max(0.0, summary.updated_at - summary.created_at),
        torn_bytes=log.torn_bytes,
        transitions=[e for e in log.events if isinstance(e, Transition)],
        events=log.events,
        changes=next((e.changes for e in reversed(log.events) if isinstance(e, RunEnded)), None),
        isolation=sandbox.isolation if sandbox else "",
        network=sandbox.network if sandbox else "",
    )


def _final_message(events: list[AnyEvent]) -> str:
    """The last session's end message; a resume after it makes it stale."""
    message = ""
    for event in events:
        if isinstance(event, RunEnded):
            message = event.message
        elif isinstance(event, RunResumed):
            message = ""
    return message


def _render(report: RunReport) -> str:
    lines = _render_summary(report)
    if report.torn_bytes:
        lines.append(
            f"note      the last line of {EVENTS_FILE} is incomplete ({report.torn_bytes} "
            "bytes: the writer stopped mid-write) and was ignored"
        )
    lines += ["", "timeline (seconds since the first event)"]
    start = report.events[0].ts if report.events else 0.0
    for event in report.events:
        text = _timeline_line(event)
        if text:
            first, *rest = text.splitlines() or [""]
            lines.append(f"{event.ts - start:9.2f}  {first}")
            lines.extend(" " * 11 + line for line in rest)
    return "\n".join(lines) + "\n"


def _render_summary(report: RunReport) -> list[str]:
    s = report.summary
    state = f"{s.state} ({s.reason})" if s.reason and s.reason != s.state else s.state
    tokens = s.prompt_tokens + s.completion_tokens
    task_lines = s.task.splitlines() or [""]
    if len(task_lines) > _TASK_LINES:
        more = len(task_lines) - _TASK_LINES
        task_lines = [*task_lines[:_TASK_LINES], f"... ({more} more lines)"]
    fields = [
        ("run", s.run_id),
        ("task", "\n          ".join(task_lines)),
        ("model", report.model),
        ("workdir", report.workdir),
        ("state", state),
        ("message", report.message),
        ("steps", str(s.steps)),
        ("tokens", f"{tokens} ({s.prompt_tokens} prompt, {s.completion_tokens} completion)"),
        ("cost", f"${s.cost:.4f}"),
        ("changes", describe_changes(report.changes)),
        ("sandbox", _sandbox_line(report)),
        ("duration", f"{report.duration_s:.1f}s"),
        ("created", _local_time(s.created_at, "%Y-%m-%d %H:%M:%S")),
        ("updated", _local_time(s.updated_at, "%Y-%m-%d %H:%M:%S")),
    ]
    return [f"{name:<9} {value}" for name, value in fields if value] + _lineage(report.events)


def _sandbox_line(report: RunReport) -> str:
    """E.g. "isolation workspace-write, network off" (of the last sandbox started)."""
    parts = [f"isolation {report.isolation}" if report.isolation else ""]
    parts.append(f"network {report.network}" if report.network else "")
    return ", ".join(p for p in parts if p)


def _lineage(events: list[AnyEvent]) -> list[str]:
    """A fork's ancestry, nearest first (a fork's log holds its parents' fork events too)."""
    forks = [e for e in reversed(events) if isinstance(e, RunForked)]
    lines = [f"from {f.parent} at step {f.at_step}" for f in forks]
    return [f"{'forked' if i == 0 else '':<9} {line}" for i, line in enumerate(lines)]


def _timeline_line(event: AnyEvent) -> str | None:
    """Every transition and resume, then what `run` prints while it goes on."""
    if isinstance(event, Checkpoint):
        skipped = f", {len(event.skipped)} file(s) skipped" if event.skipped else ""
        base = f", repository at {event.base_commit[:12]}" if event.base_commit else ""
        return f"checkpoint {event.tree[:12]} (step {event.step}{skipped}{base})"
    if isinstance(event, RunForked):
        return f"forked from {event.parent} at step {event.at_step} (checkpoint {event.tree[:12]})"
    if isinstance(event, Rewound):
        return (
            f"rewound from step {event.from_step} to the end of step {event.to_step} "
            f"(workspace {event.saved_tree[:12]} -> {event.tree[:12]})"
        )
    if isinstance(event, Transition):
        return f"{event.source} -> {event.dest}: {event.reason}"
    if isinstance(event, RunResumed):
        return f"resumed in state {event.state}: {event.reason}"
    if isinstance(event, UserMessage) and event.origin != "task":
        return f"user ({event.origin}): {_one_line(event.content, 100)}"
    return describe(event)


# -- helpers -------------------------------------------------------------------------------


def _one_line(text: str, width: int) -> str:
    flat = " ".join(text.split())
    return flat if len(flat) <= width else flat[: width - 3] + "..."


def _local_time(ts: float, fmt: str) -> str:
    return time.strftime(fmt, time.localtime(ts)) if ts else "-"


def write_out(text: str | bytes) -> None:
    """stdout, text or exact bytes (a patch)."""
    try:
        if isinstance(text, bytes):
            sys.stdout.flush()
            sys.stdout.buffer.write(text)
            sys.stdout.buffer.flush()
        else:
            sys.stdout.write(text)
            sys.stdout.flush()
    except BrokenPipeError:
        # `runhands inspect X | head`: the reader left; stop quietly, not with a traceback.
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
