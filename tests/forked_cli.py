"""The real CLI in a forked child of the test process: the same code path as
`python -m controller ...` (a new process, its own signals, SIGKILL kills it for real), but
litellm is imported once, before forking, instead of ~3.5 s per process. The crash tests run
hundreds of processes this way.
"""

from __future__ import annotations

import os
import signal
import sys
import time
import traceback
from dataclasses import dataclass
from pathlib import Path

os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")
import litellm  # noqa: F401  (imported here once, shared by every fork)

from controller.cli import main

KILLED = -signal.SIGKILL


@dataclass
class Exit:
    code: int  # the exit code, or KILLED
    stdout: str
    stderr: str


def run_forked(
    args: list[str],
    *,
    env: dict[str, str],
    cwd: Path,
    timeout: float = 120,
    stdin: str | None = None,
) -> Exit:
    """Run `runhands ARGS` in a child process with exactly `env` as its environment, and
    `stdin` (text) as its standard input (else /dev/null)."""
    out_path = cwd.parent / f".out-{os.getpid()}-{time.monotonic_ns()}"
    err_path = out_path.with_suffix(".err")
    in_path = out_path.with_suffix(".in")
    if stdin is not None:
        in_path.write_text(stdin)
    pid = os.fork()
    if pid == 0:  # the child: never returns into pytest
        _child(args, env, cwd, out_path, err_path, in_path if stdin is not None else None)
    try:
        code = _wait(pid, timeout)
        out, err = out_path.read_text(errors="replace"), err_path.read_text(errors="replace")
    finally:
        for path in (out_path, err_path, in_path):
            path.unlink(missing_ok=True)
    return Exit(code, out, err)


def _child(
    args: list[str], env: dict[str, str], cwd: Path, out: Path, err: Path, given: Path | None
) -> None:
    code = 99
    try:
        os.setpgid(0, 0)  # its own group: a timeout kills it and its shells
        os.chdir(cwd)
        os.environ.clear()
        os.environ.update(env)
        source = os.open(given or os.devnull, os.O_RDONLY)
        os.dup2(source, 0)
        for fd, path in ((1, out), (2, err)):
            target = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
            os.dup2(target, fd)
        sys.stdin = open(0, closefd=False)  # noqa: SIM115
        sys.stdout = open(1, "w", closefd=False)  # noqa: SIM115
        sys.stderr = open(2, "w", closefd=False)  # noqa: SIM115
        signal.signal(signal.SIGINT, signal.SIG_DFL)
        signal.signal(signal.SIGTERM, signal.SIG_DFL)
        code = main(args)
    except SystemExit as e:
        code = e.code if isinstance(e.code, int) else 1
    except BaseException:
        traceback.print_exc()
        code = 98
    finally:
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(code)


def _wait(pid: int, timeout: float) -> int:
    deadline = time.monotonic() + timeout
    while True:
        done, status = os.waitpid(pid, os.WNOHANG)
        if done:
            return os.waitstatus_to_exitcode(status)
        if time.monotonic() > deadline:
            os.killpg(pid, signal.SIGKILL)
            os.waitpid(pid, 0)
            raise TimeoutError(f"runhands {pid} did not end within {timeout} s")
        time.sleep(0.002)
