"""The Ray backend of `runhands batch` (`--ray auto|ADDRESS`): each task is one Ray task on
a worker of the cluster, which calls the same `run_task` as the local thread pool; this
process submits at most `-w` of them at a time and hands each end to the driver.

Why Ray tasks and not a pool of actors: Ray keeps a job's worker processes and reuses them
for its next tasks (litellm is imported once per worker process, not once per run), a task
whose worker dies is retried by Ray itself (`max_retries`), and `ray.cancel` interrupts a
running task; an actor would need its own restarts and its own retries.

Where the runs are written (the driver's `-o OUT`, by the same absolute path everywhere, so
a run's saved paths hold on every machine):
- OUT on storage every node shares: the driver writes a token file in OUT and each run's
  worker checks it reads the same; it then writes the run under OUT directly. A worker
  killed mid-run: Ray retries the task, `run_task` resumes the run from its saved store.
- OUT not shared (a worker does not see the token): from then on each task travels with
  its directories (runs/<id>, workspaces/<id>, patches/<id>.patch, logs/<id>.log, a tar;
  empty for a new task). The worker makes OUT's path on its node, unpacks them, runs the
  task, and sends them back with the result; the driver puts them in place. A run whose
  worker dies starts again from what the driver has. `RUNHANDS_RAY_STORAGE=copy` asks for
  this even where OUT is shared.

The workers get the driver's settings: the variables runhands and litellm read (and the
names in `RUNHANDS_RAY_ENV`), and the driver's `./config.toml` (or `--config-file`) and
`./.env`, as an argument of each Ray task (never in a runtime_env, which Ray shows).

Ctrl-C: each running task is cancelled (`ray.cancel`, not forced): Ray raises
KeyboardInterrupt in the worker's main thread, which sets the run's stop event; the run is
saved interrupted and the task reported as stopped.
"""

from __future__ import annotations

import hashlib
import io
import logging
import os
import secrets
import shutil
import socket
import sys
import tarfile
import tempfile
import threading
from collections import deque
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from controller.agent.outcome import EndReason, ExitCode
from controller.batch.archives import extract
from controller.batch.progress import BatchProgress
from controller.batch.results import TaskResult
from controller.batch.runner import LOGS_DIR, PATCHES_DIR, RUNS_DIR, BatchSettings, run_task
from controller.batch.tasks import BatchTask
from controller.batch.workspaces import WORKSPACES_DIR
from controller.config import ENV_NAMES, is_secret_name
from controller.config.files import config_files
from controller.errors import UserError
from controller.run.controls import RunControls

if TYPE_CHECKING:
    from types import ModuleType

    from ray import ObjectRef
    from ray.remote_function import RemoteFunction

    from controller.batch.driver import Ended

# A task whose worker process dies (killed, out of memory) is run again this many times.
MAX_RETRIES = 3
# The driver writes a random token here; a worker reading the same at the same path shares
# the driver's storage.
TOKEN_FILE = ".ray-token"
STORAGE_VARIABLE = "RUNHANDS_RAY_STORAGE"  # auto (default) | copy
EXTRA_ENV_VARIABLE = "RUNHANDS_RAY_ENV"  # more variable names the workers need, comma-separated
POLL_S = 0.5
CONNECT_TIMEOUT_S = 10.0
CONFIG_NAME = "config.toml"
DOTENV_NAME = ".env"

# runhands' own settings: the workers take them from the driver only.
_OWN_PREFIXES = ("LLM_", "AGENT_", "SANDBOX_", "CONDENSER_", "RUNHANDS_")
# Settings of the model providers litellm reads (it has no list of them); their keys are
# caught by is_secret_name (*_API_KEY, *_TOKEN, *_SECRET_ACCESS_KEY...).
_PROVIDER_PREFIXES = (
    "LITELLM_",
    "OPENAI_",
    "ANTHROPIC_",
    "AZURE_",
    "AWS_",
    "BEDROCK_",
    "GEMINI_",
    "GOOGLE_",
    "VERTEX",
    "MISTRAL_",
    "GROQ_",
    "DEEPSEEK_",
    "OPENROUTER_",
    "TOGETHER",
    "FIREWORKS",
    "COHERE_",
    "HUGGINGFACE_",
    "HF_",
    "OLLAMA_",
    "XAI_",
    "CEREBRAS_",
    "DATABRICKS_",
    "WATSONX_",
    "NVIDIA_",
)


class _Environment:
    """Variables for the workers. Provider keys among them: never shown, never logged."""

    def __init__(self, values: dict[str, str]) -> None:
        self.values = values

    def __repr__(self) -> str:
        return f"<{len(self.values)} variables>"


@dataclass(frozen=True)
class _Batch:
    """What every Ray task of the batch gets besides its task."""

    settings: BatchSettings
    env: _Environment = field(repr=False)
    # The driver's config.toml and .env (secrets, too), by CONFIG_NAME and DOTENV_NAME.
    files: dict[str, bytes] = field(repr=False)
    token: str


@dataclass(frozen=True)
class _Outcome:
    """What a Ray task sends back."""

    result: TaskResult | None = None
    state: bytes | None = None  # copy mode: the task's directories, a tar
    unshared: str = ""  # the node that does not see OUT (nothing was run)


# ---- the driver ------------------------------------------------------------------------------


class RayBackend:
    """Runs the batch's tasks on a Ray cluster, at most `workers` at a time."""

    def __init__(
        self,
        ray: ModuleType,
        remote: RemoteFunction,
        workers: int,
        env: _Environment,
        files: dict[str, bytes],
        copy: bool,
    ) -> None:
        self.ray = ray
        self.remote = remote
        self.workers = workers
        self.env = env
        self.files = files
        self.copy = copy

    @classmethod
    def connect(
        cls, address: str, *, workers: int, num_cpus: float, settings: BatchSettings
    ) -> RayBackend:
        """Join the cluster; UserError (one line) when it cannot be, before any task runs."""
        if num_cpus < 0:
            raise UserError("--ray-num-cpus must be 0 or more")
        copy = _copy_asked()
        ray = _import_ray()
        _check_reachable(address)
        try:
            ray.init(address=address, logging_level=logging.ERROR, log_to_driver=False)
        except Exception as e:  # Ray raises ConnectionError, RuntimeError, ValueError...
            raise UserError(f"--ray {address}: cannot join the Ray cluster: {_line(e)}") from None
        remote = ray.remote(num_cpus=num_cpus, max_retries=MAX_RETRIES)(_run_remote)
        return cls(ray, remote, workers, _environment(), _config_files(settings), copy)

    def run(
        self,
        tasks: list[BatchTask],
        settings: BatchSettings,
        progress: BatchProgress,
        stop: threading.Event,
        ended: Ended,
    ) -> None:
        out = Path(settings.out)
        token = secrets.token_hex(16)
        (out / TOKEN_FILE).write_text(token)
        batch = _Batch(settings=settings, env=self.env, files=self.files, token=token)
        try:
            _Dispatch(self, batch, progress, stop, ended).run(tasks)
        finally:
            (out / TOKEN_FILE).unlink(missing_ok=True)


class _Dispatch:
    """One batch on the cluster: the tasks in flight, each end handed to `ended` here."""

    def __init__(
        self,
        backend: RayBackend,
        batch: _Batch,
        progress: BatchProgress,
        stop: threading.Event,
        ended: Ended,
    ) -> None:
        self.backend = backend
        self.ray = backend.ray
        self.batch = batch
        self.out = Path(batch.settings.out)
        self.progress = progress
        self.stop = stop
        self.ended = ended
        self.flying: dict[ObjectRef[_Outcome], BatchTask] = {}
        self.cancelled = False

    def run(self, tasks: list[BatchTask]) -> None:
        queue = deque(tasks)
        while queue or self.flying:
            while queue and len(self.flying) < self.backend.workers and not self.stop.is_set():
                task = queue.popleft()
                self.progress.started(task.id)
                self._submit(task)
            if self.stop.is_set():
                self._cancel()
                while queue:  # never started: nothing to save
                    self.ended(queue.popleft(), None)
            if self.flying:
                ready, _ = self.ray.wait(list(self.flying), num_returns=1, timeout=POLL_S)
                for ref in ready:
                    self._land(ref, self.flying.pop(ref))

    def _submit(self, task: BatchTask) -> None:
        state = _pack(self.out, task.id) if self.backend.copy else None
        self.flying[self.backend.remote.remote(self.batch, task, state)] = task

    def _cancel(self) -> None:
        """Once: every task in flight is told to stop (a run is saved interrupted)."""
        if self.cancelled:
            return
        self.cancelled = True
        for ref in self.flying:
            self.ray.cancel(ref, force=False)

    def _land(self, ref: ObjectRef[_Outcome], task: BatchTask) -> None:
        from ray.exceptions import RayError, TaskCancelledError

        try:
            outcome: _Outcome = self.ray.get(ref)
        except TaskCancelledError:
            self.ended(task, None)
            return
        except RayError as e:  # its worker died MAX_RETRIES + 1 times, its node was lost...
            self.ended(task, None if self.stop.is_set() else _internal(task, _line(e)))
            return
        if outcome.unshared:
            self._copy_from_now_on(task, outcome.unshared)
            return
        if outcome.state is not None:
            _unpack_here(self.out, task.id, outcome.state)
        self.ended(task, outcome.result)

    def _copy_from_now_on(self, task: BatchTask, node: str) -> None:
        """A node does not see OUT: every task travels with its directories, this one again."""
        if not self.backend.copy:
            self.backend.copy = True
            print(
                f"runhands: {self.out} is not shared with the Ray node {node}: each run's "
                "directories are copied to its worker and back",
                file=sys.stderr,
            )
        if self.stop.is_set():
            self.ended(task, None)
        else:
            self._submit(task)


def _copy_asked() -> bool:
    storage = os.environ.get(STORAGE_VARIABLE, "auto")
    if storage not in ("auto", "copy"):
        raise UserError(f"{STORAGE_VARIABLE}={storage}: auto or copy")
    return storage == "copy"


def _import_ray() -> ModuleType:
    try:
        import ray
    except ImportError:
        raise UserError("--ray needs Ray: pip install 'runhands[ray]'") from None
    return ray


def _check_reachable(address: str) -> None:
    """A quick connection to the head first: Ray itself retries an address where nothing
    answers for minutes, printing warnings."""
    target = _bootstrap_address(address)
    if target is None:
        return
    host, _, port = target.rpartition(":")
    try:
        with socket.create_connection((host.strip("[]"), int(port)), CONNECT_TIMEOUT_S):
            pass
    except (OSError, ValueError) as e:
        reason = e.strerror if isinstance(e, OSError) and e.strerror else str(e) or "no answer"
        raise UserError(f"--ray {address}: no Ray cluster answers at {target}: {reason}") from None


def _bootstrap_address(address: str) -> str | None:
    """HOST:PORT of the cluster's head; None when only Ray can tell."""
    if address.startswith("ray://"):
        return address.removeprefix("ray://").split("/", 1)[0]
    try:
        from ray._private.services import canonicalize_bootstrap_address_or_die
    except ImportError:  # moved in a later Ray: Ray's own errors then
        return None
    try:
        return canonicalize_bootstrap_address_or_die(address)
    except ConnectionError as e:  # auto: no cluster on this machine, or several
        found = str(e).split(". ", 1)[0].rstrip(".")
        raise UserError(
            f"--ray {address}: {found} (ray start --head; or give its address)"
        ) from None
    except ValueError as e:  # not an address
        raise UserError(f"--ray {address}: {e}") from None


def _environment() -> _Environment:
    extra = {n.strip() for n in os.environ.get(EXTRA_ENV_VARIABLE, "").split(",") if n.strip()}
    return _Environment({k: v for k, v in os.environ.items() if _passed(k) or k in extra})


def _own(name: str) -> bool:
    return name in ENV_NAMES or name.startswith(_OWN_PREFIXES)


def _passed(name: str) -> bool:
    if name.startswith("RAY_"):  # the cluster's own: each node has its settings
        return False
    return _own(name) or is_secret_name(name) or name.startswith(_PROVIDER_PREFIXES)


def _config_files(settings: BatchSettings) -> dict[str, bytes]:
    """The driver's config.toml (or --config-file) and .env: a worker reads these, not the
    ones its node may have."""
    project = config_files(settings.config_file, settings.cwd, None)[-1][0]
    found = {CONFIG_NAME: Path(project), DOTENV_NAME: Path(settings.cwd, DOTENV_NAME)}
    return {name: path.read_bytes() for name, path in found.items() if path.is_file()}


def _internal(task: BatchTask, message: str) -> TaskResult:
    return TaskResult(
        id=task.id,
        run_id=task.id,
        state="errored",
        reason=EndReason.INTERNAL.value,
        exit_code=int(ExitCode.INTERNAL),
        message=message[:500],
    )


def _line(error: BaseException) -> str:
    """An error in one line: Ray's carry a traceback, whose last line names the cause."""
    cause = getattr(error, "cause", None)
    if isinstance(cause, BaseException):
        error = cause
    lines = [line.strip() for line in str(error).splitlines() if line.strip()]
    text = lines[-1] if lines else ""
    return f"{type(error).__name__}: {text}" if text else type(error).__name__


# ---- a task's directories, as a tar ------------------------------------------------------------


def _task_paths(task_id: str) -> list[str]:
    """Everything a task has under OUT, relative to it."""
    return [
        f"{RUNS_DIR}/{task_id}",
        f"{WORKSPACES_DIR}/{task_id}",
        f"{PATCHES_DIR}/{task_id}.patch",
        f"{LOGS_DIR}/{task_id}.log",
    ]


def _pack(out: Path, task_id: str) -> bytes:
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w") as archive:
        for name in _task_paths(task_id):
            if (out / name).exists() or (out / name).is_symlink():
                archive.add(out / name, arcname=name)
    return buffer.getvalue()


def _remove(path: Path) -> None:
    if path.is_dir() and not path.is_symlink():
        shutil.rmtree(path)
    else:
        path.unlink(missing_ok=True)


def _unpack_here(out: Path, task_id: str, state: bytes) -> None:
    """The task's directories from its worker, each put in place by a rename: a driver
    killed meanwhile leaves the old one or the new one (its result is not written yet)."""
    incoming = Path(tempfile.mkdtemp(prefix=f".ray-{task_id}-", dir=out))
    try:
        with tarfile.open(fileobj=io.BytesIO(state)) as archive:
            extract(archive, incoming / "new")
        for name in _task_paths(task_id):
            target, new = out / name, incoming / "new" / name
            if target.exists() or target.is_symlink():
                target.rename(incoming / "old")
                _remove(incoming / "old")
            if new.exists() or new.is_symlink():
                target.parent.mkdir(parents=True, exist_ok=True)
                new.rename(target)
    finally:
        shutil.rmtree(incoming, ignore_errors=True)


# ---- on a worker ------------------------------------------------------------------------------


def _run_remote(batch: _Batch, task: BatchTask, state: bytes | None) -> _Outcome:
    """One task on a Ray worker: in OUT itself when this node shares it, else (`state`
    given) in the same path on this node, the task's directories unpacked there first and
    sent back after."""
    _adopt(batch.env)
    settings = _local_settings(batch)
    out = Path(settings.out)
    if state is None and not _sees(out, batch.token):
        return _Outcome(unshared=socket.gethostname())
    if state is not None:
        try:
            _unpack_there(out, task.id, state)
        except OSError as e:
            where = f"{out} on {socket.gethostname()}"
            why = f"cannot use {where}: {e} (OUT must be shared, or creatable at the same path)"
            return _Outcome(result=_internal(task, why))
    result = _run_stoppable(task, settings)
    if state is None:
        return _Outcome(result=result)
    return _Outcome(result=result, state=_pack_and_remove(out, task.id))


def _adopt(env: _Environment) -> None:
    """The driver's variables; runhands' own settings from the driver alone."""
    for name in [n for n in os.environ if _own(n) and n not in env.values]:
        del os.environ[name]
    os.environ.update(env.values)
    from controller.model_client import import_litellm

    import_litellm()  # once per worker process, after the variables (it reads some)


def _local_settings(batch: _Batch) -> BatchSettings:
    """The batch's settings, with the driver's config files in a directory of this node
    (named by their content) as the working directory."""
    import msgspec

    here = _config_dir(batch.files)
    os.chdir(here)  # where runhands looks for .env (redaction), as the driver does
    config_file = str(here / CONFIG_NAME) if batch.settings.config_file else None
    return msgspec.structs.replace(batch.settings, cwd=str(here), config_file=config_file)


def _config_dir(files: dict[str, bytes]) -> Path:
    digest = hashlib.sha256()
    for name, data in sorted(files.items()):
        digest.update(f"{name}\0{len(data)}\0".encode() + data)
    here = Path(tempfile.gettempdir(), f"runhands-ray-{os.getuid()}-{digest.hexdigest()[:16]}")
    if not here.is_dir():
        scratch = Path(tempfile.mkdtemp(prefix=".runhands-ray-"))  # mode 0700: .env is secret
        for name, data in files.items():
            (scratch / name).write_bytes(data)
        try:
            scratch.rename(here)
        except OSError:  # another worker made it meanwhile: the same content
            shutil.rmtree(scratch, ignore_errors=True)
    return here


def _sees(out: Path, token: str) -> bool:
    try:
        return (out / TOKEN_FILE).read_text() == token
    except OSError:
        return False


def _unpack_there(out: Path, task_id: str, state: bytes) -> None:
    """Whatever this node has of the task is replaced by the driver's."""
    for sub in (RUNS_DIR, PATCHES_DIR, LOGS_DIR, WORKSPACES_DIR):
        (out / sub).mkdir(parents=True, exist_ok=True)
    for name in _task_paths(task_id):
        _remove(out / name)
    with tarfile.open(fileobj=io.BytesIO(state)) as archive:
        extract(archive, out)


def _pack_and_remove(out: Path, task_id: str) -> bytes:
    state = _pack(out, task_id)
    for name in _task_paths(task_id):
        _remove(out / name)
    return state


def _run_stoppable(task: BatchTask, settings: BatchSettings) -> TaskResult | None:
    """`run_task` in a thread, with a stop event: ray.cancel raises KeyboardInterrupt in
    this (the main) thread, which sets it; the run then ends interrupted, saved."""
    stop, done = threading.Event(), threading.Event()
    box: list[Any] = []

    def body() -> None:
        try:
            box.append(run_task(task, settings, RunControls(stop=stop)))
        except BaseException as e:  # a bug in runhands: the task's result, not the worker's end
            box.append(e)
        finally:
            done.set()

    threading.Thread(target=body, name=f"runhands-{task.id}", daemon=True).start()
    _wait(done, stop)
    if isinstance(box[0], BaseException):
        return _internal(task, f"{type(box[0]).__name__}: {box[0]}")
    return box[0]


def _wait(done: threading.Event, stop: threading.Event) -> None:
    # Short waits: the interrupt is only seen between them (it is no real signal).
    while True:
        try:
            while not done.wait(0.2):
                pass
            return
        except KeyboardInterrupt:
            stop.set()
