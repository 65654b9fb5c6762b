"""runhands cannot be read by the commands it runs as the same user (non-dumpable)."""

from __future__ import annotations

import ctypes
import os
import subprocess
import sys

import pytest

from controller.cli.hardening import make_undumpable
from tests.conftest import REPO

pytestmark = pytest.mark.skipif(not sys.platform.startswith("linux"), reason="Linux only")

_PR_GET_DUMPABLE, _PR_SET_DUMPABLE = 3, 4
# Root reads every process: both sides run as an ordinary user then.
_USER = 65534 if os.geteuid() == 0 else None


def _become_user() -> None:
    if _USER is not None:
        os.setgid(_USER)
        os.setuid(_USER)  # this resets the dumpable flag: each side sets its own


def _holder(guarded: bool) -> tuple[int, int]:
    """A forked process that holds a secret in its environment until its pipe closes."""
    ready, release = os.pipe(), os.pipe()
    pid = os.fork()
    if pid == 0:  # pragma: no cover - the child
        try:
            os.close(release[1])  # so that the parent's close ends the read below
            _become_user()
            if guarded:
                make_undumpable()
            else:
                ctypes.CDLL(None).prctl(_PR_SET_DUMPABLE, 1, 0, 0, 0)
            os.write(ready[1], b"x")
            os.read(release[0], 1)
        finally:
            os._exit(0)
    os.close(release[0])
    os.read(ready[0], 1)
    os.close(ready[0])
    os.close(ready[1])
    return pid, release[1]


def _can_read_environ(pid: int) -> bool:
    """Whether another process of the same user reads /proc/<pid>/environ."""
    reader = os.fork()
    if reader == 0:  # pragma: no cover - the child
        try:
            _become_user()
            with open(f"/proc/{pid}/environ", "rb") as file:
                file.read()
            os._exit(0)
        except PermissionError:
            os._exit(1)
        finally:
            os._exit(2)
    _, status = os.waitpid(reader, 0)
    code = os.waitstatus_to_exitcode(status)
    assert code in (0, 1), code
    return code == 0


@pytest.mark.parametrize("guarded", [False, True])
def test_a_same_user_process_cannot_read_a_guarded_environment(guarded: bool) -> None:
    pid, release = _holder(guarded)
    try:
        assert _can_read_environ(pid) is not guarded
    finally:
        os.close(release)
        os.waitpid(pid, 0)


def test_the_cli_makes_itself_undumpable_at_start() -> None:
    code = (
        "import ctypes, contextlib, io; from controller.cli import main\n"
        "with contextlib.redirect_stdout(io.StringIO()): main(['config'])\n"
        f"print(ctypes.CDLL(None).prctl({_PR_GET_DUMPABLE}, 0, 0, 0, 0))"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True, check=True
    )
    assert result.stdout.strip() == "0"
