"""A batch of scripted tasks with every kind of outcome, for the batch tests (local threads
and Ray) and the batch benchmark.

The model answers by the task's text ("task ID kind KIND") and by the answers the request
already shows (`[s=N]`), never by the workspace: a lost, repeated or extra step shows. It
counts the requests per task, so a test can tell a finished task was not run again.
"""

from __future__ import annotations

import json
import re
import threading
from collections import Counter
from pathlib import Path
from typing import Any

from tests.fixed_script import answers_shown
from tests.scripted_model import Turn

_TASK = re.compile(r"task (\S+) kind (\S+)")

# An image on a registry nobody listens on: pulling it fails at once (loopback only).
UNPULLABLE_IMAGE = "127.0.0.1:9/runhands-test/missing:never"

# kind -> (reason, exit code, steps) a run of it ends with.
OUTCOMES = {
    "steps": ("finished", 0, 3),
    "limit": ("limit", 3, 2),
    "agent": ("agent", 1, 3),
    "flaky": ("finished", 0, 3),
    "nosandbox": ("sandbox", 4, 0),
}


def task_line(task_id: str, kind: str, **extra: Any) -> dict[str, Any]:
    # Each run's shell gets its own TASK_TAG: a run seeing another's shows in tag.txt.
    config: dict[str, Any] = {"sandbox": {"runtime_startup_env_vars": {"TASK_TAG": task_id}}}
    line: dict[str, Any] = {"id": task_id, "task": f"task {task_id} kind {kind}", "config": config}
    if kind == "limit":
        config["core"] = {"max_iterations": 2}
    elif kind == "flaky":
        # No retry inside the run: the 500 ends it (provider); the batch's retry resumes it.
        config["llm"] = {"num_retries": 0}
    elif kind == "nosandbox":
        line["image"] = UNPULLABLE_IMAGE
    line.update(extra)
    return line


def twenty_tasks() -> list[dict[str, Any]]:
    """14 that finish in 3 steps, 2 at their step limit, 2 agent failures, one whose
    provider fails once, one whose sandbox never starts."""
    kinds = ["steps"] * 14 + ["limit"] * 2 + ["agent"] * 2 + ["flaky", "nosandbox"]
    return [task_line(f"t{n:02d}", kind) for n, kind in enumerate(kinds)]


def write_tasks(path: Path, tasks: list[dict[str, Any]]) -> Path:
    path.write_text("".join(json.dumps(t) + "\n" for t in tasks))
    return path


class BatchModel:
    """The policy for a ScriptedModel; `delay` seconds per answer (a model's latency)."""

    def __init__(self, delay: float = 0.0) -> None:
        self.delay = delay
        self.requests: Counter[str] = Counter()
        self._failed_once: set[str] = set()
        self._lock = threading.Lock()

    def __call__(self, body: dict[str, Any]) -> Turn:
        task_id, kind = _task_of(body["messages"])
        with self._lock:
            self.requests[task_id] += 1
            if kind == "flaky" and task_id not in self._failed_once:
                self._failed_once.add(task_id)
                return Turn(status=500)
        done = answers_shown(body["messages"])
        return self._turn(task_id, kind, done)

    def _turn(self, task_id: str, kind: str, done: int) -> Turn:
        mark = f"[s={done}]"
        if kind == "agent":
            return Turn(content=f"{mark} I would rather talk than act.", delay=self.delay)
        if kind in ("steps", "flaky") and done >= 2:
            return Turn(
                tool_calls=[("finish", {"message": f"{task_id} done"})],
                content=mark,
                delay=self.delay,
            )
        # Each step appends one line: a repeated or lost step shows in steps.txt.
        command = f"echo {task_id}-{done} >> steps.txt && echo $TASK_TAG > tag.txt && pwd"
        return Turn(
            tool_calls=[("execute_bash", {"command": command})], content=mark, delay=self.delay
        )


def _task_of(messages: list[dict[str, Any]]) -> tuple[str, str]:
    for message in messages:
        if message["role"] == "user":
            content = message["content"]
            text = content if isinstance(content, str) else json.dumps(content)
            found = _TASK.search(text)
            if found:
                return found.group(1), found.group(2)
    raise AssertionError("no task in the request")
