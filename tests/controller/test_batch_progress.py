"""The batch's progress: the live display's content, the lines without a terminal, the
JSON events."""

from __future__ import annotations

import io
import json

from rich.console import Console

from controller.batch.progress import BatchProgress
from controller.batch.results import TaskResult, summarize
from state_store.events import ModelResponse, Transition


def model_response(step: int) -> ModelResponse:
    return ModelResponse(
        seq=1,
        ts=0.0,
        step=step,
        model="m",
        content=None,
        prompt_tokens=100,
        completion_tokens=20,
        cost=0.01,
    )


def result(task_id: str, reason: str = "finished") -> TaskResult:
    return TaskResult(
        id=task_id,
        run_id=task_id,
        state="finished",
        reason=reason,
        exit_code=0,
        steps=3,
        tokens=360,
        cost=0.03,
    )


def test_live_display_shows_counts_and_the_runs_in_progress() -> None:
    progress = BatchProgress(5, 1, live=True, err=io.StringIO())
    try:
        for task_id in ("a", "b"):
            progress.started(task_id)
        progress.event("a", model_response(2))
        progress.event(
            "a",
            Transition(seq=2, ts=0.0, source="planning", dest="acting", trigger="act", reason="r"),
        )
        progress.ended(result("b", "sandbox"))
        screen = io.StringIO()
        Console(file=screen, force_terminal=True, width=140).print(progress)
    finally:
        progress.close()
    text = screen.getvalue()
    assert "2/5" in text  # one ended before, one now
    assert "running 1" in text and "failed 1" in text and "$0.0300" in text
    row = next(line for line in text.splitlines() if line.lstrip().startswith("a "))
    assert "acting" in row and " 2 " in row and "120" in row


def test_without_a_terminal_a_line_per_end_and_json_events() -> None:
    out, err = io.StringIO(), io.StringIO()
    progress = BatchProgress(2, 0, json_lines=True, live=False, out=out, err=err)
    progress.started("a")
    progress.started("b")
    progress.ended(result("a"))
    progress.stopped("b")
    progress.stopped("never-started")
    progress.close(summarize(2, [result("a")]))
    events = [json.loads(line) for line in out.getvalue().splitlines()]
    assert [e["event"] for e in events] == [
        "task_started",
        "task_started",
        "task_ended",
        "task_stopped",
        "batch_ended",
    ]
    assert events[2]["reason"] == "finished" and events[-1]["not_run"] == 1
    assert "[1/2] a: finished (3 steps, 360 tokens" in err.getvalue()
    assert "1 of 2 tasks ended" in err.getvalue()
