"""One persistent interactive bash, driven through a terminal.

This is OpenHands' `execute_bash`: cwd and variables persist between calls, a command that
goes quiet is left running (soft timeout) so the model can wait, type into it or press C-c,
and a `timeout` is a hard limit that interrupts the command.

How a command's end is detected: PROMPT_COMMAND prints a marker carrying a per-session
nonce, the exit status and $PWD before every prompt. Commands are sent as one
`eval -- $'...'` so any text (several lines, heredocs, functions, unbalanced quotes) runs
as a single command followed by exactly one marker.

The terminal is reached through a Transport: a local pseudo-terminal here (`PtyTransport`),
an exec socket in a container for the Docker sandbox. The session logic is the same for both.
"""

from __future__ import annotations

import contextlib
import errno
import math
import os
import pty
import re
import secrets
import select
import shutil
import signal
import subprocess
import termios
import time
import weakref
from collections.abc import Callable, Mapping
from typing import Literal, NamedTuple, Protocol

from sandbox.output import MAX_OUTPUT_CHARS, cut_marker, decode_output, truncate_middle
from sandbox.protocol import CommandResult, SandboxError

Outcome = Literal["done", "idle", "deadline", "exited"]

# Bytes of a call's output kept at each end while reading; the middle is only counted, so
# a command printing gigabytes costs bounded memory. Together they fit MAX_OUTPUT_CHARS.
_HEAD_BYTES = MAX_OUTPUT_CHARS // 2
_TAIL_BYTES = MAX_OUTPUT_CHARS // 2
# Extra room before the tail is trimmed, so trimming (a memmove) happens rarely.
_SLACK_BYTES = 1 << 16
# A marker is short but carries $PWD, which can be up to PATH_MAX long.
_MAX_MARKER_BYTES = 4096 + 64
# A terminal in canonical mode takes at most 4095 bytes per line: commands are sent as
# continuation lines of at most this many characters (at most 4 escaped bytes each).
_CHUNK_CHARS = 500
_START_SECONDS = 10.0
# After C-c, how long the prompt may take to come back before the job is killed.
_INTERRUPT_GRACE = 2.0
# How long writing input may take before we give up (the process does not read it).
_SEND_SECONDS = 5.0
_WINSIZE = (50, 200)  # rows, columns: wide enough that tools do not wrap much

# What follows the marker's tag: the exit status and $PWD (which may contain "#").
_MARKER_REST = re.compile(rb"(-?\d+)###(.*?)###\n", re.S)
_CONTROL_KEYS = {"C-c": b"\x03", "C-d": b"\x04", "C-z": b"\x1a"}
# Environment variables that would change how the shell prompts or what it sources.
_DROPPED_ENV = ("PS1", "PS2", "PS4", "PROMPT_COMMAND", "BASH_ENV", "ENV", "HISTFILE")
_FORCED_ENV = {"TERM": "dumb", "PAGER": "cat", "GIT_PAGER": "cat", "MANPAGER": "cat"}
# Backslash escapes inside $'...'; other control characters become \xHH so that none of
# them reaches the terminal raw (where C-c, C-d, C-z... would act as keys).
_ESCAPES = {ord("\\"): "\\\\", ord("'"): "\\'", ord("\n"): "\\n", ord("\t"): "\\t"}
_ESCAPES.update({c: f"\\x{c:02x}" for c in (*range(0x20), 0x7F) if c not in _ESCAPES})

SOFT_TIMEOUT_NOTE = (
    "[The command has no new output after {seconds:g} seconds. You may wait longer to see "
    "additional output by sending empty command '' with is_input=true, send other commands "
    'to interact with the current process, send keys ("C-c", "C-z", "C-d") to '
    "interrupt/kill the previous command before sending your new command, or use the "
    "timeout parameter in execute_bash for future commands.]"
)
BUSY_NOTE = (
    "[The command is still running and kept printing output for {seconds:g} seconds. Send "
    'empty command \'\' with is_input=true to see more, or send keys ("C-c", "C-z", "C-d") '
    "to interrupt/kill it.]"
)
REFUSED_NOTE = (
    '[Your command "{command}" was NOT executed. The previous command is still running - '
    "you cannot run a new command until it has finished. With is_input=true you can interact "
    "with the running process: send empty command '' to retrieve more output, send text to "
    'its input, or send keys ("C-c", "C-z", "C-d") to interrupt/kill it.]'
)
TIMEOUT_NOTE = (
    "[The command was killed after {seconds:g} seconds (timeout). The output above is what "
    "it printed until then.]"
)
NO_PROCESS_NOTE = (
    "[No command is running, so there is nothing to send input to. Run a new command with "
    "is_input=false instead.]"
)
ALREADY_DONE_NOTE = "[The command had already finished, so your input was not sent.]"
PARTIAL_INPUT_NOTE = "[Only part of the input was sent: the process is not reading its input.]"
EMPTY_NOTE = "[No command given: send a non-empty command to run.]"
EXITED_NOTE = (
    "[The shell exited with code {code}. The next command starts a fresh shell in {workdir}; "
    "the working directory and environment changes are reset.]"
)
RESTARTED_NOTE = (
    "[A fresh shell was started because the previous one exited: the working directory is "
    "{workdir} again and earlier environment changes are gone.]"
)
KILLED_SHELL_NOTE = (
    "[The shell did not respond to the interrupt and was killed; the next command starts a "
    "fresh shell.]"
)
SHELL_GONE_NOTE = "[The shell exited; the next command starts a fresh shell.]"
FINISHED_BEFORE_NOTE = (
    "[Before your command ran, the previous command finished with exit code {code}. Its "
    "last output was:\n{output}]"
)


def encode_command(command: str) -> bytes:
    """The terminal input that runs command as one `eval`, in lines a terminal accepts."""
    chunks = [
        command[i : i + _CHUNK_CHARS].translate(_ESCAPES)
        for i in range(0, len(command), _CHUNK_CHARS)
    ]
    # Adjacent $'..' words joined by backslash-newline form one word for bash.
    line = "eval -- $'" + "'\\\n$'".join(chunks) + "'\n"
    return line.encode("utf-8", errors="replace")


def _prompt_setup(nonce: str) -> bytes:
    """Shell setup: print the marker before each prompt, empty prompts, no history.

    The function keeps $? intact for the next command; the marker goes to /dev/tty so a
    command redirecting stdout or stderr with `exec` does not hide it. The nonce is passed
    as an argument so the marker never appears literally in `set` or `declare` output.
    """
    return (
        "__rh_prompt() { local s=$?; "
        f'printf \'\\n###RH-%s###%s###%s###\\n\' {nonce} "$s" "$PWD" >/dev/tty; '
        "PS1=; PS2=; return $s; }; "
        "PROMPT_COMMAND=__rh_prompt; PS1=; PS2=; set +H +o history; unset HISTFILE\n"
    ).encode()


class _Capture:
    """Output read during one call: head and tail kept, the middle counted, marker found."""

    def __init__(self, pending: bytes, tag: bytes) -> None:
        self._tag = tag
        self.head: bytes | None = None
        self.buf = bytearray(pending)
        self.dropped = 0
        self._scan = 0
        self.exit_code: int | None = None
        self.cwd = ""
        self.leftover = b""

    def feed(self, data: bytes) -> None:
        self.buf += data
        if self.head is None and len(self.buf) > _HEAD_BYTES + _TAIL_BYTES + _SLACK_BYTES:
            self.head = bytes(self.buf[:_HEAD_BYTES])
            self._drop(_HEAD_BYTES, count=False)
        if self.head is not None and len(self.buf) > _TAIL_BYTES + _SLACK_BYTES:
            self._drop(len(self.buf) - _TAIL_BYTES, count=True)

    def _drop(self, n: int, *, count: bool) -> None:
        del self.buf[:n]
        self.dropped += n if count else 0
        self._scan = max(0, self._scan - n)

    def find_marker(self) -> bool:
        """Look for the prompt marker; on success split off the output before it."""
        i = self.buf.find(self._tag, self._scan)
        while i >= 0:
            m = _MARKER_REST.match(self.buf, i + len(self._tag))
            if m:
                self.exit_code = int(m.group(1))
                self.cwd = m.group(2).decode("utf-8", errors="replace")
                self.leftover = bytes(self.buf[m.end() :])
                start = i - 1 if i > 0 and self.buf[i - 1] == ord("\n") else i
                del self.buf[start:]
                return True
            i = self.buf.find(self._tag, i + 1)
        self._scan = max(0, len(self.buf) - _MAX_MARKER_BYTES)
        return False

    def hold_back_partial_marker(self) -> bytes:
        """Remove and return a marker that may be only half read (kept for the next call)."""
        i = self.buf.rfind(b"\n", max(0, len(self.buf) - _MAX_MARKER_BYTES))
        rest = bytes(self.buf[i + 1 :])
        tag = self._tag
        if i < 0 or not rest or not (tag.startswith(rest) or rest.startswith(tag)):
            return b""
        del self.buf[i:]
        return b"\n" + rest

    def text(self) -> str:
        if self.head is None:
            return truncate_middle(decode_output(bytes(self.buf)))
        if len(self.buf) > _TAIL_BYTES:
            self._drop(len(self.buf) - _TAIL_BYTES, count=True)
        # Already short: decoding never makes more characters than there were bytes.
        tail = decode_output(bytes(self.buf))
        return decode_output(self.head) + cut_marker(self.dropped, "bytes") + tail


class _ProcStat(NamedTuple):
    ppid: int
    pgrp: int
    session: int
    state: str


def _process_table() -> dict[int, _ProcStat]:
    table: dict[int, _ProcStat] = {}
    for name in os.listdir("/proc"):
        if not name.isdigit():
            continue
        try:
            with open(f"/proc/{name}/stat", "rb") as f:
                raw = f.read()
        except OSError:
            continue  # exited while we were looking
        # The command name is in parentheses and may itself contain spaces or parentheses.
        fields = raw[raw.rfind(b")") + 2 :].split()
        state, ppid, pgrp, session = fields[0].decode(), *map(int, fields[1:4])
        table[int(name)] = _ProcStat(ppid, pgrp, session, state)
    return table


def _session_processes(leader: int) -> dict[int, int]:
    """Live processes of leader's session and their descendants, as pid -> process group.

    Descendants are included because a child may have started a session of its own.
    """
    table = _process_table()
    children: dict[int, list[int]] = {}
    for pid, st in table.items():
        children.setdefault(st.ppid, []).append(pid)
    found = {pid for pid, st in table.items() if st.session == leader}
    stack = list(found)
    while stack:
        for child in children.get(stack.pop(), []):
            if child not in found:
                found.add(child)
                stack.append(child)
    found.discard(os.getpid())
    return {pid: table[pid].pgrp for pid in found if table[pid].state not in ("Z", "X")}


def _kill_session(leader: int) -> None:
    """SIGKILL every process of the session, the leader last so it can reap the others."""
    for _ in range(200):
        live = _session_processes(leader)
        targets = {pid: grp for pid, grp in live.items() if pid != leader} or live
        if not targets:
            return
        for pgrp in set(targets.values()) - {leader}:
            with contextlib.suppress(OSError):
                os.killpg(pgrp, signal.SIGKILL)
        for pid in targets:
            with contextlib.suppress(OSError):
                os.kill(pid, signal.SIGKILL)
        time.sleep(0.002)  # let the kills land before looking again


SESSION_TAG_VAR = "RUNHANDS_SANDBOX_ID"


def stop_leftovers(identity: str) -> bool:
    """Kill what a crashed runhands left running in the shell named by `identity` (from
    `BashSession.identity`). Every process started in that shell inherits its tag variable,
    so this finds them all, even those that left its session or lost their parent, and
    never touches a process it did not start. True when something was stopped."""
    _, _, nonce = identity.partition(":")
    if not nonce:
        return False
    tag = f"{SESSION_TAG_VAR}={nonce}".encode()
    stopped = False
    for _ in range(50):  # a dying process may still fork: look again until none is left
        tagged = [pid for pid in _process_table() if pid != os.getpid() and _has_tag(pid, tag)]
        if not tagged:
            break
        stopped = True
        for pid in tagged:
            with contextlib.suppress(OSError):
                os.kill(pid, signal.SIGKILL)
        time.sleep(0.01)
    return stopped


def _has_tag(pid: int, tag: bytes) -> bool:
    try:
        with open(f"/proc/{pid}/environ", "rb") as f:
            return tag in f.read().split(b"\0")
    except OSError:
        return False


def _open_pty() -> tuple[int, int]:
    master, slave = pty.openpty()
    attrs = termios.tcgetattr(slave)
    attrs[0] &= ~termios.IXON  # C-s in the input must not freeze the output
    attrs[1] &= ~termios.ONLCR  # keep \n as \n, not \r\n
    attrs[3] &= ~(termios.ECHO | termios.ECHONL)  # commands and input are not echoed back
    termios.tcsetattr(slave, termios.TCSANOW, attrs)
    termios.tcsetwinsize(slave, _WINSIZE)
    return master, slave


class Transport(Protocol):
    """A started interactive bash's terminal, as BashSession drives it.

    The terminal must not echo input nor turn "\\n" into "\\r\\n". All I/O is non-blocking.
    """

    @property
    def pid(self) -> int:
        """The shell's pid, in the namespace it runs in."""
        ...

    @property
    def closed(self) -> bool: ...

    def fileno(self) -> int:
        """A descriptor that polls readable when there is output (or end of file)."""
        ...

    def wait(self, timeout_ms: int | None) -> bool:
        """Sleep until output may be ready, at most timeout_ms; True when the shell may
        have exited (then `exited()` tells)."""
        ...

    def read(self) -> bytes:
        """What the terminal has for us now (b"" when nothing or when it is closed)."""
        ...

    def write(self, data: memoryview) -> int:
        """Write what the terminal accepts now; how many bytes were taken."""
        ...

    def exited(self) -> bool: ...

    def exit_code(self) -> int:
        """The exit status of a shell that has exited."""
        ...

    def kill_foreground(self) -> bool:
        """SIGKILL the foreground job, the last resort after C-c; False when the shell
        itself is in the foreground (a busy builtin), so there was nothing to kill."""
        ...

    def close(self) -> None:
        """Kill the shell and everything it started; idempotent."""
        ...


# Starts a shell in a working directory with an environment; raises SandboxError.
TransportFactory = Callable[[str, dict[str, str]], Transport]


class PtyTransport:
    """A local bash on a pty master, with a pidfd that becomes readable when it exits."""

    def __init__(self, workdir: str, env: dict[str, str]) -> None:
        bash = shutil.which("bash") or "/bin/bash"
        self.master, slave = _open_pty()
        # The shell needs the pty as its controlling terminal for job control and C-c. A new
        # session leader that opens a terminal by name gets it as such: an outer bash does
        # that and execs the real one (same pid). This avoids preexec_fn, which runs Python
        # between fork and exec and may deadlock when other threads exist.
        relay = 'exec "$0" --noprofile --norc --noediting -i 0<>"$1" 1>&0 2>&0'
        argv = [bash, "--noprofile", "--norc", "-c", relay, bash, os.ttyname(slave)]
        try:
            self.proc = subprocess.Popen(
                argv,
                stdin=slave,
                stdout=slave,
                stderr=slave,
                cwd=workdir,
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
        except OSError:
            return False
        if group <= 0 or group == self.pid:
            return False
        with contextlib.suppress(OSError):
            os.killpg(group, signal.SIGKILL)
        return True

    def close(self) -> None:
        """Kill the whole session and reap the shell; idempotent."""
        if self._closed:
            return
        self._closed = True
        _kill_session(self.proc.pid)
        with contextlib.suppress(subprocess.TimeoutExpired):
            self.proc.wait(timeout=5)
        for fd in (self.master, self.pidfd):
            if fd is not None:
                with contextlib.suppress(OSError):
                    os.close(fd)


class BashSession:
    """A persistent bash for one run; see the module docstring."""

    def __init__(
        self,
        workdir: str,
        *,
        soft_timeout: float = 10.0,
        env: Mapping[str, str] | None = None,
        max_wait: float = 300.0,
        transport: TransportFactory = PtyTransport,
    ) -> None:
        self.workdir = os.path.abspath(workdir)
        self.soft_timeout = soft_timeout
        # A command that never stops printing never goes quiet: return after this long.
        self.max_wait = max_wait
        # `env` replaces the host environment (the caller strips secrets from it).
        self._env = _shell_env(env)
        self._nonce = secrets.token_hex(8)
        self._tag = f"###RH-{self._nonce}###".encode()
        self._start_transport = transport
        self._shell: Transport | None = None
        self._finalizer: weakref.finalize | None = None
        self._running = False
        self._pending = b""  # output read after a marker, shown with the next call
        self._cwd = self.workdir
        self._shell_died = False

    @property
    def cwd(self) -> str:
        return self._cwd

    @property
    def running(self) -> bool:
        """Whether a command is still running (returned early by a soft timeout)."""
        return self._running

    @property
    def identity(self) -> str:
        """`<pid>:<nonce>`: enough for another process to find and stop this shell's tree."""
        return f"{self.pid}:{self._nonce}"

    @property
    def pid(self) -> int | None:
        """The shell's pid (also its session and process group id), None when stopped."""
        return None if self._shell is None or self._shell.closed else self._shell.pid

    def start(self) -> None:
        """Start the shell if it is not running; raises SandboxError when it cannot."""
        if self._shell is not None and not self._shell.closed:
            return
        # The tag lets a later process recognise this shell as ours (see stop_leftovers).
        shell = self._start_transport(self.workdir, {**self._env, SESSION_TAG_VAR: self._nonce})
        self._shell = shell
        self._finalizer = weakref.finalize(self, shell.close)
        cap = self._capture()
        self._send(_prompt_setup(self._nonce), cap)
        if self._wait(cap, idle=None, deadline=time.monotonic() + _START_SECONDS) != "done":
            self._stop_shell()
            raise SandboxError(f"bash did not become ready: {cap.text()[-2000:]!r}")
        self._pending, self._cwd, self._running = cap.leftover, cap.cwd, False

    def close(self) -> None:
        """Kill the shell and everything it started; idempotent."""
        self._stop_shell()
        self._running = False
        self._pending = b""

    def run(
        self, command: str, *, is_input: bool = False, timeout: float | None = None
    ) -> CommandResult:
        """Run a command, or with is_input send text or a key (C-c...) to the running one.

        A positive timeout is a hard limit; otherwise the call returns once the command has
        been quiet for soft_timeout seconds, leaving it running.
        """
        notes: list[str] = []
        timeout = timeout if timeout is not None and timeout > 0 else None
        if self._shell is None or self._shell.closed:
            if self._shell_died:
                notes.append(RESTARTED_NOTE.format(workdir=self.workdir))
                self._shell_died = False
            self.start()
        if is_input or (self._running and not command.strip()):
            return self._input(command, timeout, notes)
        if not command.strip():
            return self._result("", -1, [*notes, EMPTY_NOTE])
        if self._running:
            finished = self._check_previous(command, notes)
            if finished is not None:
                return finished
        cap = self._capture()
        self._send(encode_command(command), cap)
        self._running = True
        return self._collect(cap, timeout, notes)

    # -- the steps of a call ---------------------------------------------------------------

    def _input(self, text: str, timeout: float | None, notes: list[str]) -> CommandResult:
        if not self._running:
            return self._result("", -1, [*notes, NO_PROCESS_NOTE])
        cap = self._capture()
        if text:
            # Input typed into a command that has already finished would run as a command.
            outcome = self._wait(cap, idle=None, deadline=time.monotonic())
            if outcome != "deadline":
                return self._finish(cap, outcome, [*notes, ALREADY_DONE_NOTE])
            keys = _CONTROL_KEYS.get(text) or (text + "\n").encode(errors="replace")
            if not self._send(keys, cap):
                notes = [*notes, PARTIAL_INPUT_NOTE]
        return self._collect(cap, timeout, notes)

    def _check_previous(self, command: str, notes: list[str]) -> CommandResult | None:
        """Refuse a new command while one runs; None when the previous one has finished."""
        cap = self._capture()
        outcome = self._wait(cap, idle=None, deadline=time.monotonic())
        if outcome == "deadline":
            self._pending = cap.hold_back_partial_marker()
            shown = command if len(command) <= 200 else command[:200] + "..."
            note = REFUSED_NOTE.format(command=shown)
            return self._result(cap.text(), -1, [*notes, note], still_running=True)
        previous = self._finish(cap, outcome, [])
        if outcome == "exited":
            return previous
        notes.append(FINISHED_BEFORE_NOTE.format(code=previous.exit_code, output=previous.output))
        return None

    def _collect(self, cap: _Capture, timeout: float | None, notes: list[str]) -> CommandResult:
        """Wait for the command to finish, go quiet, or hit its hard timeout."""
        start = time.monotonic()
        if timeout is not None:
            outcome = self._wait(cap, idle=None, deadline=start + timeout)
            if outcome == "deadline":
                return self._interrupt(cap, timeout, notes)
        else:
            outcome = self._wait(cap, idle=self.soft_timeout, deadline=start + self.max_wait)
        return self._finish(cap, outcome, notes)

    def _finish(self, cap: _Capture, outcome: Outcome, notes: list[str]) -> CommandResult:
        if outcome == "done":
            self._running = False
            self._pending, self._cwd = cap.leftover, cap.cwd
            return self._result(cap.text(), cap.exit_code or 0, notes)
        if outcome == "exited":
            return self._shell_exited(cap, notes)
        self._pending = cap.hold_back_partial_marker()
        note = (SOFT_TIMEOUT_NOTE if outcome == "idle" else BUSY_NOTE).format(
            seconds=self.soft_timeout if outcome == "idle" else self.max_wait
        )
        return self._result(cap.text(), -1, [*notes, note], still_running=True)

    def _interrupt(self, cap: _Capture, timeout: float, notes: list[str]) -> CommandResult:
        """C-c, then SIGKILL of the foreground job, then a new shell if it still hangs."""
        shell = self._require_shell()
        self._send(b"\x03", cap)
        outcome = self._wait(cap, idle=None, deadline=time.monotonic() + _INTERRUPT_GRACE)
        if outcome == "deadline" and shell.kill_foreground():
            outcome = self._wait(cap, idle=None, deadline=time.monotonic() + _INTERRUPT_GRACE)
        notes = [*notes, TIMEOUT_NOTE.format(seconds=timeout)]
        if outcome == "done":
            self._pending, self._cwd = cap.leftover, cap.cwd
        else:
            self._stop_shell()
            self._shell_died = True
            self._cwd = self.workdir
            notes.append(KILLED_SHELL_NOTE if outcome == "deadline" else SHELL_GONE_NOTE)
        self._running = False
        return self._result(cap.text(), -1, notes, timed_out=True)

    def _shell_exited(self, cap: _Capture, notes: list[str]) -> CommandResult:
        shell = self._require_shell()
        code = shell.exit_code()
        self._stop_shell()
        self._shell_died = True
        self._running = False
        self._cwd = self.workdir
        note = EXITED_NOTE.format(code=code, workdir=self.workdir)
        return self._result(cap.text(), code, [*notes, note])

    # -- terminal I/O ----------------------------------------------------------------------

    def _capture(self) -> _Capture:
        cap = _Capture(self._pending, self._tag)
        self._pending = b""
        return cap

    def _require_shell(self) -> Transport:
        if self._shell is None or self._shell.closed:
            raise SandboxError("the shell is not running")
        return self._shell

    def _send(self, data: bytes, cap: _Capture) -> bool:
        """Write to the terminal, reading meanwhile so neither side blocks the other.

        Returns False when it could not all be written in time: a process that never reads
        its input lets the terminal buffer fill up.
        """
        shell = self._require_shell()
        view = memoryview(data)
        deadline = time.monotonic() + max(self.soft_timeout, _SEND_SECONDS)
        poller = select.poll()
        poller.register(shell.fileno(), select.POLLIN | select.POLLOUT)
        while view and time.monotonic() < deadline:
            view = view[shell.write(view) :]
            if view:
                poller.poll(100)
                if chunk := shell.read():
                    cap.feed(chunk)
        return not view

    def _wait(self, cap: _Capture, *, idle: float | None, deadline: float | None) -> Outcome:
        """Read output until the marker, `idle` seconds of silence, the deadline, or exit."""
        shell = self._require_shell()
        last_output = time.monotonic()
        while True:
            maybe_exited = shell.wait(_poll_timeout_ms(last_output, idle, deadline))
            if data := shell.read():
                cap.feed(data)
                last_output = time.monotonic()
            if cap.find_marker():
                return "done"
            if maybe_exited and shell.exited():
                while data := shell.read():  # what it printed before dying
                    cap.feed(data)
                return "exited"
            now = time.monotonic()
            if idle is not None and now - last_output >= idle:
                return "idle"
            if deadline is not None and now >= deadline:
                return "deadline"

    def _stop_shell(self) -> None:
        """Kill the shell's session (through the finalizer, so it is not done again)."""
        if self._finalizer is not None:
            self._finalizer()

    def _result(
        self,
        output: str,
        exit_code: int,
        notes: list[str],
        *,
        still_running: bool = False,
        timed_out: bool = False,
    ) -> CommandResult:
        return CommandResult(
            output=output,
            exit_code=exit_code,
            cwd=self._cwd,
            still_running=still_running,
            timed_out=timed_out,
            note="\n".join(notes),
        )


def _poll_timeout_ms(last_output: float, idle: float | None, deadline: float | None) -> int | None:
    """Milliseconds poll() may sleep: until the soonest limit (None = no limit)."""
    limits = [t for t in (None if idle is None else last_output + idle, deadline) if t is not None]
    if not limits:
        return None
    return max(0, math.ceil((min(limits) - time.monotonic()) * 1000))


def _shell_env(given: Mapping[str, str] | None) -> dict[str, str]:
    # A given environment replaces the host's: the caller may have removed secrets from it.
    base = os.environ if given is None else given
    env = {k: v for k, v in base.items() if k not in _DROPPED_ENV}
    env.update(_FORCED_ENV)
    return env
