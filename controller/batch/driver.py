"""`runhands batch`: the tasks not yet in `results.jsonl`, run N at a time by a backend
(threads of this process, or Ray), each ending appended to `results.jsonl` (and
`preds.jsonl` for SWE-bench) by this thread alone; the summary at the end.

Ctrl-C or SIGTERM: the runs are told to stop (each is saved in its state, resumable), the
summary is printed, exit 130; a second signal exits at once (every saved line is whole)."""

from __future__ import annotations

import os
import signal
import threading
from collections.abc import Callable, Iterator
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from contextlib import contextmanager
from pathlib import Path
from typing import Protocol

from controller.agent.outcome import ExitCode
from controller.batch.progress import BatchProgress
from controller.batch.results import (
    PredsFile,
    ResultsFile,
    TaskResult,
    summarize,
    write_summary,
)
from controller.batch.runner import PATCHES_DIR, BatchSettings, run_task
from controller.batch.tasks import BatchTask
from controller.run.controls import RunControls

# The batch's exit codes besides 0 (every task ended, none on an infrastructure failure),
# 2 (bad input: nothing ran) and 130 (interrupted). Documented in the README.
SOME_FAILED = 8

Started = Callable[[str], None]
Ended = Callable[[BatchTask, TaskResult | None], None]


class Backend(Protocol):
    """Runs tasks with `run_task`; reports each start and each result, from this thread."""

    def run(
        self,
        tasks: list[BatchTask],
        settings: BatchSettings,
        progress: BatchProgress,
        stop: threading.Event,
        ended: Ended,
    ) -> None: ...


class ThreadBackend:
    """`-w N` runs at a time, each in a thread of this process: one interpreter, one
    litellm import; each run has its own sandbox, store and lock, and at most
    `max_starting` sandboxes start at once."""

    def __init__(self, workers: int, max_starting: int) -> None:
        self.workers = workers
        self.gate = threading.BoundedSemaphore(max_starting)

    def run(
        self,
        tasks: list[BatchTask],
        settings: BatchSettings,
        progress: BatchProgress,
        stop: threading.Event,
        ended: Ended,
    ) -> None:
        controls = RunControls(stop=stop, start_gate=self.gate)
        if tasks:
            from controller.model_client import import_litellm

            import_litellm()  # once, here: it sets litellm's globals and an environment default

        def one(task: BatchTask) -> TaskResult | None:
            if stop.is_set():
                return None
            progress.started(task.id)
            return run_task(task, settings, controls, progress.event)

        with ThreadPoolExecutor(self.workers, thread_name_prefix="runhands-task") as pool:
            futures: dict[Future[TaskResult | None], BatchTask] = {
                pool.submit(one, task): task for task in tasks
            }
            pending = set(futures)
            while pending:
                done, pending = wait(pending, timeout=0.5, return_when=FIRST_COMPLETED)
                for future in done:
                    ended(futures[future], _outcome(future, futures[future]))
                if stop.is_set():
                    for future in pending:
                        future.cancel()


def _outcome(future: Future[TaskResult | None], task: BatchTask) -> TaskResult | None:
    if future.cancelled():
        return None
    error = future.exception()
    if error is None:
        return future.result()
    # A bug in runhands while driving the task: its result, not the batch's end.
    return TaskResult(
        id=task.id,
        run_id=task.id,
        state="errored",
        reason="internal",
        exit_code=int(ExitCode.INTERNAL),
        message=f"{type(error).__name__}: {error}"[:500],
    )


def run_batch(
    tasks: list[BatchTask],
    settings: BatchSettings,
    backend: Backend,
    *,
    json_lines: bool = False,
    preds_model: str | None = None,
) -> int:
    """Run what is left of the batch; the exit code."""
    out = Path(settings.out)
    for sub in (out, out / PATCHES_DIR, settings.runs):
        sub.mkdir(parents=True, exist_ok=True)
    results = ResultsFile(out)
    preds = PredsFile(out, preds_model) if preds_model is not None else None
    if preds is not None:
        preds.rewrite(results.results)
    known = results.results
    left = [t for t in tasks if t.id not in known or known[t.id].retryable(settings.retries)]
    progress = BatchProgress(len(tasks), len(tasks) - len(left), json_lines=json_lines)
    stop = threading.Event()

    def ended(task: BatchTask, result: TaskResult | None) -> None:
        if result is None or not result.ended:
            progress.stopped(task.id)
            return
        if results.add(result, settings.retries):
            if preds is not None:
                preds.add(result, results.results)
            progress.ended(result)

    try:
        with _stop_on_signals(stop):
            backend.run(left, settings, progress, stop, ended)
    finally:
        results.close()
        ours = {task.id for task in tasks}
        summary = summarize(len(tasks), [r for r in results.results.values() if r.id in ours])
        summary.exit_code = _exit_code(stop.is_set(), summary.failed, summary.not_run)
        write_summary(out, summary)
        progress.close(summary)
    return summary.exit_code


def _exit_code(stopped: bool, failed: int, not_run: int) -> int:
    if stopped:
        return int(ExitCode.INTERRUPTED)
    if failed or not_run:
        return SOME_FAILED
    return 0


@contextmanager
def _stop_on_signals(stop: threading.Event) -> Iterator[None]:
    """The first SIGINT/SIGTERM sets `stop`; a second exits at once."""

    def handler(signum: int, frame: object) -> None:
        if stop.is_set():
            os._exit(ExitCode.INTERRUPTED)
        stop.set()

    previous = {s: signal.signal(s, handler) for s in (signal.SIGINT, signal.SIGTERM)}
    try:
        yield
    finally:
        for s, h in previous.items():
            signal.signal(s, h)
