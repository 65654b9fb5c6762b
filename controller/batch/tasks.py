"""A batch's tasks file: JSON lines, one task each, read and checked whole before anything
runs (a bad line is an error naming it). Two formats: runhands' own (`BatchTask`), and
SWE-bench instance lines turned into tasks (`--format swe-bench`)."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Literal

import msgspec

from controller.config import ConfigError, load_config
from controller.errors import UserError
from state_store.store import StoreError, validate_run_id

Format = Literal["runhands", "swe-bench"]
FORMATS: tuple[Format, ...] = ("runhands", "swe-bench")

# SWE-bench's published evaluation images, e.g. swebench/sweb.eval.x86_64.django_1776_django-11099
DEFAULT_SWE_BENCH_IMAGE = "swebench/sweb.eval.x86_64.{docker_id}:latest"
# Where a SWE-bench image holds the repository (the images' working directory).
SWE_BENCH_WORKDIR = "/testbed"


class BatchTask(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """One line of a tasks file."""

    id: str
    task: str
    # A directory copied fresh for the run; or a local git repository checked out fresh at
    # `commit`. Neither: the run gets an empty directory of its own.
    workspace: str | None = None
    repo: str | None = None
    commit: str | None = None
    # A container image: the run uses the docker runtime.
    image: str | None = None
    # The image's directory that holds the repository (SWE-bench): copied out of the image
    # as the workspace, and mounted back at the same place.
    image_workdir: str | None = None
    # Commands run in the sandbox, on the workspace, before the agent starts.
    setup: list[str] = []
    # A command run after the agent ends; its exit code and output tail are the score.
    eval: str | None = None
    # Per-task settings, as config.toml sections: {"core": {"max_iterations": 5}, ...}.
    config: dict[str, dict[str, Any]] = {}

    def settings(self) -> dict[str, Any]:
        """`config` as dotted keys ("core.max_iterations"), for load_config's flag layer."""
        return {
            f"{section}.{key}": value
            for section, values in self.config.items()
            for key, value in values.items()
        }


class _SweBenchInstance(msgspec.Struct, frozen=True, kw_only=True):
    """The fields of a SWE-bench instance line runhands reads (the others are ignored)."""

    instance_id: str
    problem_statement: str
    base_commit: str = ""
    repo: str = ""


def read_tasks(
    path: str,
    fmt: Format = "runhands",
    *,
    image_pattern: str = DEFAULT_SWE_BENCH_IMAGE,
) -> list[BatchTask]:
    """Every task of the file, checked: UserError naming the line of the first bad one."""
    try:
        data = Path(path).read_bytes()
    except OSError as e:
        raise UserError(f"cannot read tasks file {path}: {e.strerror or e}") from None
    tasks: list[BatchTask] = []
    seen: dict[str, int] = {}
    for number, line in enumerate(data.splitlines(), start=1):
        if not line.strip():
            continue
        where = f"{path}:{number}"
        task = _check(_decode(line, fmt, image_pattern, where), where, Path(path).parent)
        if task.id in seen:
            raise UserError(f"{where}: duplicate id {task.id!r} (first on line {seen[task.id]})")
        seen[task.id] = number
        tasks.append(task)
    if not tasks:
        raise UserError(f"{path}: no tasks")
    return tasks


def _decode(line: bytes, fmt: Format, image_pattern: str, where: str) -> BatchTask:
    try:
        if fmt == "swe-bench":
            return swe_bench_task(msgspec.json.decode(line, type=_SweBenchInstance), image_pattern)
        return msgspec.json.decode(line, type=BatchTask)
    except msgspec.ValidationError as e:
        raise UserError(f"{where}: {e}") from None
    except msgspec.DecodeError as e:
        raise UserError(f"{where}: not a JSON object ({e})") from None


def swe_bench_task(instance: _SweBenchInstance, image_pattern: str) -> BatchTask:
    """A SWE-bench instance as a task: its image, the repository at the image's working
    directory (at `base_commit` already), the problem statement as the instruction."""
    docker_id = instance.instance_id.replace("__", "_1776_").lower()
    try:
        image = image_pattern.format(instance_id=instance.instance_id, docker_id=docker_id)
    except (KeyError, IndexError, ValueError) as e:
        raise UserError(
            f"--image-pattern {image_pattern!r}: {type(e).__name__}: {e} "
            "(the fields are {instance_id} and {docker_id})"
        ) from None
    return BatchTask(
        id=instance.instance_id,
        task=instance.problem_statement,
        image=image,
        image_workdir=SWE_BENCH_WORKDIR,
    )


def _check(task: BatchTask, where: str, base: Path) -> BatchTask:
    """The task, checked, its directories made absolute (relative to the tasks file)."""
    try:
        validate_run_id(task.id)
    except StoreError:
        raise UserError(
            f"{where}: bad id {task.id!r}: letters, digits, '.', '_' and '-', at most 100, "
            "starting with a letter or digit"
        ) from None
    if not task.task.strip():
        raise UserError(f"{where}: the task is empty")
    if task.workspace and task.repo:
        raise UserError(f"{where}: give workspace or repo, not both")
    if bool(task.repo) != bool(task.commit):
        raise UserError(f"{where}: repo and commit go together")
    found = {}
    for name, value in (("workspace", task.workspace), ("repo", task.repo)):
        if not value:
            continue
        directory = (base / Path(value).expanduser()).resolve()
        if not directory.is_dir():
            raise UserError(f"{where}: {name} {value} does not exist or is not a directory")
        found[name] = str(directory)
    if task.repo and not Path(found["repo"], ".git").exists():
        raise UserError(f"{where}: repo {task.repo} is not a git repository")
    try:
        load_config(flags=task.settings())
    except ConfigError as e:
        raise UserError(f"{where}: config: {e}") from None
    return msgspec.structs.replace(task, **found)
