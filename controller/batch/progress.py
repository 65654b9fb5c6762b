"""What a batch shows while it runs: on a terminal, a live display (rich) of the counts,
tokens, cost, rate and ETA and of the runs in progress with their step; without one, a line
per task ending; with `--json`, one JSON object per task start and end on stdout. Told of
events from every run's thread, so every method takes the lock."""

from __future__ import annotations

import sys
import threading
import time
from typing import Any, TextIO

import msgspec
from rich.console import Console, Group
from rich.live import Live
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn
from rich.table import Table

from controller.agent.tools import first_line
from controller.batch.results import BatchSummary, TaskResult
from sandbox.output import for_terminal
from state_store.events import Event, ModelResponse, Transition

_SHOWN_RUNNING = 12  # runs listed in the live display; the others are counted


class _Running(msgspec.Struct):
    started: float
    step: int = 0
    tokens: int = 0
    cost: float = 0.0
    state: str = "init"


class BatchProgress:
    def __init__(
        self,
        total: int,
        already: int,
        *,
        json_lines: bool = False,
        live: bool | None = None,
        out: TextIO | None = None,
        err: TextIO | None = None,
    ) -> None:
        self.total = total
        self.done = already
        self.failed = 0
        self.tokens = 0
        self.cost = 0.0
        self.json_lines = json_lines
        self._out = out or sys.stdout
        self._err = err or sys.stderr
        self._lock = threading.Lock()
        self._running: dict[str, _Running] = {}
        self._started = time.monotonic()
        self._ended_here = 0
        self._console = Console(file=self._err, stderr=True)
        live = self._err.isatty() if live is None else live
        self._bar: Progress | None = None
        self._live: Live | None = None
        if live:
            self._bar = Progress(
                TextColumn("batch"),
                BarColumn(),
                MofNCompleteColumn(),
                TextColumn("{task.fields[counts]}"),
                TimeRemainingColumn(),
                console=self._console,
            )
            self._bar_task = self._bar.add_task("batch", total=total, completed=already, counts="")
            self._live = Live(self, console=self._console, refresh_per_second=4, transient=True)
            self._live.start()

    # ---- told by the driver and the runs ---------------------------------------------------

    def started(self, task_id: str) -> None:
        with self._lock:
            self._running[task_id] = _Running(started=time.monotonic())
        self._emit({"event": "task_started", "id": task_id})

    def event(self, task_id: str, event: Event) -> None:
        with self._lock:
            running = self._running.get(task_id)
            if running is None:
                return
            if isinstance(event, ModelResponse):
                running.tokens += event.prompt_tokens + event.completion_tokens
                running.cost += event.cost
                running.step = max(running.step, event.step)
            elif isinstance(event, Transition):
                running.state = event.dest

    def ended(self, result: TaskResult) -> None:
        with self._lock:
            self._running.pop(result.id, None)
            self.done += 1
            self._ended_here += 1
            self.failed += result.failed
            self.tokens += result.tokens
            self.cost += result.cost
            line = f"[{self.done}/{self.total}] {_describe(result)}"
        self._emit({"event": "task_ended", **msgspec.to_builtins(result)})
        if self._live is None:
            print(for_terminal(line), file=self._err, flush=True)

    def stopped(self, task_id: str) -> None:
        """The batch stopped under the task: it is saved, resumable, not ended."""
        with self._lock:
            was_running = self._running.pop(task_id, None) is not None
        if was_running:
            self._emit({"event": "task_stopped", "id": task_id})

    def close(self, summary: BatchSummary | None = None) -> None:
        if self._live is not None:
            self._live.stop()
        if summary is not None:
            self._emit({"event": "batch_ended", **msgspec.to_builtins(summary)})
            self._console.print(summary_table(summary))

    # ---- the live display ------------------------------------------------------------------

    def __rich__(self) -> Group:
        with self._lock:
            assert self._bar is not None
            self._bar.update(self._bar_task, completed=self.done, counts=self._counts())
            running = sorted(self._running.items(), key=lambda kv: kv[1].started)
        table = Table(box=None, show_header=True, header_style="bold", pad_edge=False)
        for column in ("running", "state", "step", "tokens", "cost", "time"):
            table.add_column(column, justify="left" if column in ("running", "state") else "right")
        now = time.monotonic()
        for task_id, run in running[:_SHOWN_RUNNING]:
            table.add_row(
                for_terminal(task_id),
                run.state,
                str(run.step),
                f"{run.tokens:,}",
                f"${run.cost:.4f}",
                f"{now - run.started:.0f}s",
            )
        if len(running) > _SHOWN_RUNNING:
            table.add_row(f"... and {len(running) - _SHOWN_RUNNING} more", "", "", "", "", "")
        return Group(self._bar, table)

    def _counts(self) -> str:
        elapsed = max(time.monotonic() - self._started, 1e-9)
        rate = self._ended_here / elapsed * 60
        return (
            f"done {self.done} · running {len(self._running)} · failed {self.failed} · "
            f"{self.tokens:,} tokens · ${self.cost:.4f} · {rate:.1f}/min"
        )

    def _emit(self, record: dict[str, Any]) -> None:
        if not self.json_lines:
            return
        with self._lock:
            self._out.write(msgspec.json.encode(record).decode() + "\n")
            self._out.flush()


def _describe(result: TaskResult) -> str:
    score = ""
    if result.eval is not None:
        score = f", eval {'passed' if result.eval.exit_code == 0 else 'failed'}"
    why = f": {first_line(result.message)}" if result.failed and result.message else ""
    return (
        f"{result.id}: {result.reason} ({result.steps} steps, {result.tokens:,} tokens, "
        f"${result.cost:.4f}, {result.duration_s:.1f}s{score}){why}"
    )


def summary_table(summary: BatchSummary) -> Table:
    table = Table(title=f"batch: {summary.ended} of {summary.tasks} tasks ended")
    table.add_column("end")
    for column in ("tasks", "cost", "mean steps"):
        table.add_column(column, justify="right")
    for reason, entry in summary.by_reason.items():
        table.add_row(reason, str(entry.tasks), f"${entry.cost:.4f}", f"{entry.mean_steps:g}")
    table.add_section()
    table.add_row("all", str(summary.ended), f"${summary.cost:.4f}", f"{summary.mean_steps:g}")
    if summary.not_run:
        table.add_row("not ended", str(summary.not_run), "", "")
    if summary.eval_passed is not None:
        table.caption = f"eval passed: {summary.eval_passed}"
    return table
