"""A batch's results: `results.jsonl`, one line per task ending, is the batch's truth: a task
with a line is done and never run again, unless that line is an infrastructure failure with
attempts left under a raised `--retries` (then its later ending is a later line, and the
last line of a task is its result). `summary.json` and `preds.jsonl` are derived."""

from __future__ import annotations

import os
import threading
from pathlib import Path
from typing import IO

import msgspec

from controller.agent.outcome import EndReason
from controller.errors import UserError
from state_store.events import ChangeSummary
from state_store.files import write_atomic

RESULTS_FILE = "results.jsonl"
SUMMARY_FILE = "summary.json"
PREDS_FILE = "preds.jsonl"

# Ends that say nothing about the task: the infrastructure failed. Retried (by resuming the
# run) up to --retries times; the others are results.
INFRASTRUCTURE = frozenset({EndReason.SANDBOX, EndReason.PROVIDER, EndReason.STORAGE})
# The task's workspace could not be made (an image that cannot be pulled or read...):
# retried like an infrastructure failure. Its setup command failed: a result.
WORKSPACE_FAILED = "workspace"
SETUP_FAILED = "setup"
RETRIED = INFRASTRUCTURE | {WORKSPACE_FAILED}
# Ends counted as the batch's failures (exit code SOME_FAILED): infrastructure failures
# left after the retries, runhands' own errors, and tasks whose agent never ran.
FAILURES = RETRIED | {EndReason.INTERNAL, SETUP_FAILED}
# Not an end of the task's: the batch stopped (Ctrl-C). The run is resumed next time.
NOT_ENDED = frozenset({EndReason.INTERRUPTED})


class EvalResult(msgspec.Struct, frozen=True, kw_only=True):
    command: str
    exit_code: int  # -1: cut by its timeout, or the sandbox failed
    output_tail: str
    duration_s: float


class TaskResult(msgspec.Struct, frozen=True, kw_only=True):
    """One task's end, as `results.jsonl` holds it."""

    id: str
    run_id: str
    state: str
    reason: str
    exit_code: int
    steps: int = 0
    tokens: int = 0
    cost: float = 0.0
    duration_s: float = 0.0
    changes: ChangeSummary | None = None
    patch: str | None = None  # the patch file, relative to the batch's output directory
    eval: EvalResult | None = None
    attempt: int = 1
    message: str = ""

    @property
    def failed(self) -> bool:
        return self.reason in FAILURES

    def retryable(self, retries: int) -> bool:
        """An infrastructure failure with attempts left (after `--retries` was raised)."""
        return self.reason in RETRIED and self.attempt <= retries

    @property
    def ended(self) -> bool:
        """False when the batch was stopped under it: not a line of results.jsonl."""
        return self.reason not in NOT_ENDED


_decoder = msgspec.json.Decoder(TaskResult)


class ResultsFile:
    """`results.jsonl`, appended to by one writer; a torn last line (the batch was killed
    while writing it) is dropped, as that task never ended as far as the file knows."""

    def __init__(self, out: Path) -> None:
        self.path = out / RESULTS_FILE
        self._lock = threading.Lock()
        self.results: dict[str, TaskResult] = self._read()
        self._file: IO[bytes] = open(self.path, "ab")  # noqa: SIM115 (closed by close())

    def _read(self) -> dict[str, TaskResult]:
        try:
            data = self.path.read_bytes()
        except FileNotFoundError:
            return {}
        whole = data[: data.rfind(b"\n") + 1]
        if len(whole) < len(data):
            os.truncate(self.path, len(whole))
        results: dict[str, TaskResult] = {}
        for number, line in enumerate(whole.splitlines(), start=1):
            try:
                result = _decoder.decode(line)
            except msgspec.DecodeError as e:
                raise UserError(f"{self.path}:{number}: damaged result ({e})") from None
            results[result.id] = result  # the last line of a task is its result
        return results

    def add(self, result: TaskResult, retries: int) -> bool:
        """Append the task's end unless it has one that stands; synced before it counts."""
        with self._lock:
            known = self.results.get(result.id)
            if known is not None and not known.retryable(retries):
                return False
            self._file.write(msgspec.json.encode(result) + b"\n")
            self._file.flush()
            os.fsync(self._file.fileno())
            self.results[result.id] = result
            return True

    def close(self) -> None:
        self._file.close()


class PredsFile:
    """SWE-bench's `preds.jsonl`: a line per finished task, as the harness reads it, written
    as each task ends; rewritten whole from results.jsonl at the start so it never holds a
    torn or doubled line."""

    def __init__(self, out: Path, model: str) -> None:
        self.out = out
        self.path = out / PREDS_FILE
        self.model = model
        self._lock = threading.Lock()
        self._written: set[str] = set()

    def rewrite(self, results: dict[str, TaskResult]) -> None:
        lines = b"".join(self._line(r) for r in results.values())
        write_atomic(self.path, lines)
        self._written = set(results)

    def add(self, result: TaskResult, results: dict[str, TaskResult]) -> None:
        """The task's line, appended; the file rewritten when the task had one (a retry)."""
        with self._lock:
            if result.id in self._written:
                self.rewrite(results)
                return
            with open(self.path, "ab") as f:
                f.write(self._line(result))
            self._written.add(result.id)

    def _line(self, result: TaskResult) -> bytes:
        patch = ""
        if result.patch:
            try:
                # JSON holds text: bytes that are not UTF-8 (a file in another encoding)
                # cannot be carried, and a lone surrogate would make the line unwritable.
                patch = (self.out / result.patch).read_text(errors="replace")
            except OSError:
                patch = ""
        line = {
            "instance_id": result.id,
            "model_patch": patch,
            "model_name_or_path": self.model,
        }
        return msgspec.json.encode(line) + b"\n"


class ReasonSummary(msgspec.Struct, kw_only=True):
    tasks: int = 0
    cost: float = 0.0
    mean_steps: float = 0.0


class BatchSummary(msgspec.Struct, kw_only=True):
    """`summary.json`: the whole batch, by end reason."""

    tasks: int
    ended: int
    failed: int
    not_run: int
    cost: float
    tokens: int
    mean_steps: float
    by_reason: dict[str, ReasonSummary]
    eval_passed: int | None = None
    exit_code: int = 0


def summarize(total: int, results: list[TaskResult]) -> BatchSummary:
    by_reason: dict[str, ReasonSummary] = {}
    for r in results:
        entry = by_reason.setdefault(r.reason, ReasonSummary())
        entry.tasks += 1
        entry.cost += r.cost
        entry.mean_steps += r.steps
    for entry in by_reason.values():
        entry.mean_steps = round(entry.mean_steps / entry.tasks, 2)
        entry.cost = round(entry.cost, 6)
    evals = [r.eval for r in results if r.eval is not None]
    return BatchSummary(
        tasks=total,
        ended=len(results),
        failed=sum(r.failed for r in results),
        not_run=total - len(results),
        cost=round(sum(r.cost for r in results), 6),
        tokens=sum(r.tokens for r in results),
        mean_steps=round(sum(r.steps for r in results) / len(results), 2) if results else 0.0,
        by_reason=dict(sorted(by_reason.items())),
        eval_passed=sum(e.exit_code == 0 for e in evals) if evals else None,
    )


def write_summary(out: Path, summary: BatchSummary) -> None:
    write_atomic(out / SUMMARY_FILE, msgspec.json.format(msgspec.json.encode(summary)) + b"\n")
