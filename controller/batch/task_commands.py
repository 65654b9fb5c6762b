"""A task's `setup` and `eval` commands: run in a sandbox of the run's own configuration
(same runtime, image, isolation, environment) on its workspace, outside the agent's run, so
they are neither steps nor in the model's view. Setup runs before the run is created (its
effect on the workspace is what persists); eval after the run ended, every time the task's
result is written (it only reads the workspace, so running it again is harmless)."""

from __future__ import annotations

import threading
import time
from pathlib import Path

from controller.agent.leftovers import remove_run_containers
from controller.batch.results import EvalResult
from controller.config import AppConfig, secrets_of
from controller.run.sandbox_for_config import make_sandbox
from controller.run.setup import sandbox_environment
from sandbox import SandboxError
from state_store.files import Redactor

# What a result keeps of a command's output: its end, where test runners print the verdict.
OUTPUT_TAIL_CHARS = 2_000


def run_commands(
    config: AppConfig,
    run_id: str,
    workspace: Path,
    root: Path,
    commands: list[str],
    timeout: float,
    stop: threading.Event | None = None,
) -> EvalResult:
    """Run `commands` one after the other in a fresh sandbox, stopping at the first that
    fails; the last one's exit code (-1: cut by the timeout, or the sandbox failed). When
    `stop` is set meanwhile: KeyboardInterrupt, the sandbox closed."""
    started = time.monotonic()
    redactor = Redactor(secrets_of(config))
    env = sandbox_environment(config)
    sandbox = make_sandbox(config, run_id, str(workspace), env, str(root), stop)
    outputs: list[str] = []
    exit_code = 0
    try:
        sandbox.start()
        for command in commands:
            left = max(1.0, timeout - (time.monotonic() - started))
            result = sandbox.run(command, timeout=left)
            outputs.append(result.output)
            exit_code = -1 if result.timed_out or result.still_running else result.exit_code
            if exit_code != 0:
                break
    except SandboxError as e:
        outputs.append(f"[the sandbox failed: {e}]")
        exit_code = -1
    finally:
        sandbox.close()
        if config.core.runtime == "docker":
            remove_run_containers(root, run_id)
    tail = "\n".join(outputs)[-OUTPUT_TAIL_CHARS:]
    return EvalResult(
        command=" && ".join(commands),
        exit_code=exit_code,
        output_tail=redactor.text(tail),
        duration_s=round(time.monotonic() - started, 3),
    )
