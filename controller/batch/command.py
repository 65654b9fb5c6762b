"""`runhands batch`, from parsed flags to the exit code: everything is checked (the tasks
file, the configuration, the model, Ray) before any task runs; a problem is one line, exit 2.
What is process-wide (the `.env` variables for litellm, litellm's import, the signal
handlers) is done here once, never by a run."""

from __future__ import annotations

import argparse
import os
from pathlib import Path
from typing import Any

from controller.batch.driver import Backend, ThreadBackend, run_batch
from controller.batch.runner import BatchSettings
from controller.batch.tasks import DEFAULT_SWE_BENCH_IMAGE, read_tasks
from controller.config import LoadedConfig, dotenv_environment
from controller.errors import UserError
from controller.run.setup import check_model

# Settings a batch decides per task: never taken from the command line.
_PER_TASK = {"core.workspace_base": "-d/--directory", "core.file_store_path": "--state-dir"}


def batch_command(args: argparse.Namespace, loaded: LoadedConfig, flags: dict[str, Any]) -> int:
    for key, flag in _PER_TASK.items():
        if key in flags:
            raise UserError(f"{flag} is not used by batch: each task has its own, under -o")
    _check_counts(args)
    tasks = read_tasks(
        args.tasks, args.format, image_pattern=args.image_pattern or DEFAULT_SWE_BENCH_IMAGE
    )
    os.environ.update(dotenv_environment(os.getcwd()))  # provider keys in .env, for litellm
    check_model(loaded.config, dict(os.environ))
    settings = BatchSettings(
        out=str(Path(args.output).expanduser().absolute()),
        cwd=os.getcwd(),
        config_file=args.config_file,
        llm_config=args.llm_config,
        flags=flags,
        retries=args.retries,
        retry_wait=args.retry_wait,
        eval_timeout=args.eval_timeout,
    )
    backend = _backend(args, settings)
    preds_model = loaded.config.llm.model if args.format == "swe-bench" else None
    return run_batch(tasks, settings, backend, json_lines=args.json, preds_model=preds_model)


def _check_counts(args: argparse.Namespace) -> None:
    for name, value in (("-w/--workers", args.workers), ("--max-starting", args.max_starting)):
        if value < 1:
            raise UserError(f"{name} must be at least 1")
    if args.retries < 0:
        raise UserError("--retries must be 0 or more")
    if args.retry_wait < 0 or args.eval_timeout <= 0:
        raise UserError("--retry-wait must be 0 or more and --eval-timeout more than 0")


def _backend(args: argparse.Namespace, settings: BatchSettings) -> Backend:
    if not args.ray:
        return ThreadBackend(args.workers, args.max_starting)
    from controller.batch.ray_backend import RayBackend

    return RayBackend.connect(
        args.ray, workers=args.workers, num_cpus=args.ray_num_cpus, settings=settings
    )
