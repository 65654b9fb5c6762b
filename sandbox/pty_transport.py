"""The local Transport for BashSession: a bash on a pseudo-terminal of this machine."""

from __future__ import annotations

import contextlib
import errno
import fcntl
import os
import pty
import select
import shutil
import signal
import struct
import subprocess
import termios
from collections.abc import Callable
from typing import NamedTuple

from sandbox.process_cleanup import kill_session
from sandbox.protocol import SandboxError
from sandbox.shell_watch import ShellView, read_local_view

_WINSIZE = (50, 200)  # rows, columns: wide enough that tools do not wrap much
_TIOCGSID = getattr(termios, "TIOCGSID", 0x5429)  # Linux's number; Python does not export it


class Launch(NamedTuple):
    """How the shell is started around bash: e.g. inside bubblewrap."""

    prefix: list[str]  # the command the shell runs under (bubblewrap and its options)
    tty: str  # the terminal's path as the shell sees it
    cwd: str  # where that command starts on this machine
    setup: str = ""  # shell commands run before the interactive bash (e.g. a ulimit)


# Given the terminal's path on this machine and the shell's working directory, how to
# start the shell.
Launcher = Callable[[str, str], Launch]


def _direct(tty: str, cwd: str) -> Launch:
    return Launch([], tty, cwd)


def _open_pty() -> tuple[int, int]:
    master, slave = pty.openpty()
    attrs = termios.tcgetattr(slave)
    attrs[0] &= ~termios.IXON  # C-s in the input must not freeze the output
    attrs[1] &= ~termios.ONLCR  # keep \n as \n, not \r\n
    attrs[3] &= ~(termios.ECHO | termios.ECHONL)  # commands and input are not echoed back
    termios.tcsetattr(slave, termios.TCSANOW, attrs)
    termios.tcsetwinsize(slave, _WINSIZE)
    return master, slave


class PtyTransport:
    """A local bash on a pty master, with a pidfd that becomes readable when it exits."""

    def __init__(self, workdir: str, env: dict[str, str], launcher: Launcher = _direct) -> None:
        bash = shutil.which("bash") or "/bin/bash"
        self.master, slave = _open_pty()
        # The shell needs the pty as its controlling terminal for job control and C-c. A new
        # session leader that opens a terminal by name gets it as such: an outer bash does
        # that and execs the real one (same pid). This avoids preexec_fn, which runs Python
        # between fork and exec and may deadlock when other threads exist.
        launch = launcher(os.ttyname(slave), workdir)
        relay = launch.setup + 'exec "$0" --noprofile --norc --noediting -i 0<>"$1" 1>&0 2>&0'
        argv = [*launch.prefix, bash, "--noprofile", "--norc", "-c", relay, bash, launch.tty]
        try:
            self.proc = subprocess.Popen(
                argv,
                stdin=slave,
                stdout=slave,
                stderr=slave,
                cwd=launch.cwd,
                env=env,
                start_new_session=True,
            )
        except OSError as exc:
            os.close(self.master)
            raise SandboxError(f"cannot start bash in {workdir}: {exc}") from exc
        finally:
            os.close(slave)  # only the shell holds it, so EOF is seen when it is gone
        os.set_blocking(self.master, False)
        self.poller = select.poll()
        self.poller.register(self.master, select.POLLIN)
        self.pidfd: int | None = None
        with contextlib.suppress(OSError, AttributeError):
            self.pidfd = os.pidfd_open(self.proc.pid)
            self.poller.register(self.pidfd, select.POLLIN)
        self.master_open = True
        self._closed = False

    @property
    def pid(self) -> int:
        return self.proc.pid

    @property
    def closed(self) -> bool:
        return self._closed

    def fileno(self) -> int:
        return self.master

    def wait(self, timeout_ms: int | None) -> bool:
        if self.pidfd is None:  # without a pidfd, exit is noticed by polling
            timeout_ms = 100 if timeout_ms is None else min(timeout_ms, 100)
        events = self.poller.poll(timeout_ms)
        return self.pidfd is None or any(fd == self.pidfd for fd, _ in events)

    def exited(self) -> bool:
        return self.proc.poll() is not None

    def exit_code(self) -> int:
        return self.proc.wait()

    def read(self) -> bytes:
        if not self.master_open:
            return b""
        try:
            return os.read(self.master, 1 << 16)
        except BlockingIOError:
            return b""
        except OSError as exc:
            if exc.errno != errno.EIO:
                raise
            # EIO: no process holds the terminal any more.
            self.master_open = False
            self.poller.unregister(self.master)
            return b""

    def write(self, data: memoryview) -> int:
        try:
            return os.write(self.master, data)
        except BlockingIOError:
            return 0
        except OSError as exc:
            if exc.errno != errno.EIO:
                raise
            return len(data)  # nobody holds the terminal any more: the bytes are moot

    def kill_foreground(self) -> bool:
        try:
            group = os.tcgetpgrp(self.master)
            shell = _session_of(self.master)
        except OSError:
            return False
        if group <= 0 or group == shell:
            return False
        with contextlib.suppress(OSError):
            os.killpg(group, signal.SIGKILL)
        return True

    def view(self) -> ShellView:
        try:
            group, shell = os.tcgetpgrp(self.master), _session_of(self.master)
        except OSError:
            return ShellView()
        return read_local_view(shell, group)

    def close(self) -> None:
        """Kill the whole session and reap the shell; idempotent."""
        if self._closed:
            return
        self._closed = True
        kill_session(self.proc.pid)
        with contextlib.suppress(subprocess.TimeoutExpired):
            self.proc.wait(timeout=5)
        for fd in (self.master, self.pidfd):
            if fd is not None:
                with contextlib.suppress(OSError):
                    os.close(fd)


def _session_of(master: int) -> int:
    """The terminal's session leader: the shell, whether started directly or inside a
    sandbox (where it is not the process we started)."""
    raw = fcntl.ioctl(master, _TIOCGSID, struct.pack("i", 0))
    return struct.unpack("i", raw)[0]
