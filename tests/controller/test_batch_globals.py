"""A batch's runs share one process: none may touch what is process-wide (the working
directory, the environment, signal handlers, the umask, litellm's global callbacks), and
none may leave a thread behind. Checked in this process, around a real batch of threads."""

from __future__ import annotations

import os
import signal
import threading
from pathlib import Path
from typing import Any

import pytest

from controller.batch.driver import ThreadBackend, run_batch
from controller.batch.runner import BatchSettings
from controller.batch.tasks import read_tasks
from controller.model_client import import_litellm
from tests.batch_tasks import BatchModel, task_line, write_tasks
from tests.conftest import TEST_API_KEY
from tests.scripted_model import ScriptedModel

_SIGNALS = (signal.SIGINT, signal.SIGTERM, signal.SIGCHLD, signal.SIGPIPE, signal.SIGHUP)
_CALLBACKS = (
    "callbacks",
    "success_callback",
    "failure_callback",
    "input_callback",
    "service_callback",
    "_async_success_callback",
    "_async_failure_callback",
)


def process_state() -> dict[str, Any]:
    litellm = import_litellm()
    umask = os.umask(0o022)
    os.umask(umask)
    return {
        "cwd": os.getcwd(),
        "environ": dict(os.environ),
        "signals": {s: signal.getsignal(s) for s in _SIGNALS},
        "umask": umask,
        "litellm": {name: list(getattr(litellm, name, [])) for name in _CALLBACKS},
        "threads": {t.name for t in threading.enumerate() if not t.daemon},
    }


def test_runs_side_by_side_touch_nothing_process_wide(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "home" / ".config"))
    monkeypatch.setenv("LLM_MODEL", "openai/scripted-model")
    monkeypatch.setenv("LLM_API_KEY", TEST_API_KEY)
    monkeypatch.chdir(tmp_path)
    tasks = [task_line(f"g{n}", "steps") for n in range(6)]
    tasks_file = write_tasks(tmp_path / "tasks.jsonl", tasks)
    with ScriptedModel(BatchModel()) as server:
        monkeypatch.setenv("LLM_BASE_URL", server.base_url)
        before = process_state()
        settings = BatchSettings(
            out=str(tmp_path / "out"),
            cwd=str(tmp_path),
            flags={"sandbox.isolation": "none"},
            retry_wait=0,
        )
        code = run_batch(read_tasks(str(tasks_file)), settings, ThreadBackend(6, 4))
        after = process_state()
    assert code == 0
    assert after == before
    for task in tasks:
        steps = (tmp_path / "out" / "workspaces" / task["id"] / "steps.txt").read_text()
        assert steps.split() == [f"{task['id']}-0", f"{task['id']}-1"]
