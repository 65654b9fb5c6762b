"""One persistent interactive bash, driven through a terminal.

This is OpenHands' `execute_bash`: cwd and variables persist between calls, a command that
goes quiet is left running (soft timeout) so the model can wait, type into it or press C-c,
and a `timeout` is a hard limit after which the command is left running too (the notes are
OpenHands' own words). How a command is sent and its end found is in `command_framing`. A
session whose command can never end (`exec bash`, a nested `bash`, a prompt lost after C-c:
see `shell_watch`) is recovered, and the model told; a command deaf to C-c is killed at the
second C-c in a row.

The terminal is reached through a Transport: a local pseudo-terminal (`pty_transport`), or
an exec socket in a container for the Docker sandbox (`docker_transport`). The session
logic is the same for both.
"""

from __future__ import annotations

import math
import os
import secrets
import select
import threading
import time
import weakref
from collections.abc import Callable, Mapping
from typing import Literal, Protocol

from sandbox.command_framing import Capture, encode_command, marker_tag, new_nonce, prompt_setup
from sandbox.process_cleanup import SESSION_TAG_VAR

# Re-exported: the controller imports it from here.
from sandbox.protocol import CommandResult, SandboxError
from sandbox.pty_transport import PtyTransport
from sandbox.shell_watch import ShellView, Wedge, describe, find_wedge

Outcome = Literal["done", "idle", "deadline", "exited"]

_START_SECONDS = 10.0
# After C-c, how long the prompt may take to come back before the job is killed.
_INTERRUPT_GRACE = 2.0
# How long writing input may take before we give up (the process does not read it).
_SEND_SECONDS = 5.0
# How often a wait looks at the stop event, when there is one.
_STOP_POLL_MS = 200
# Environment variables that would change how the shell prompts or what it sources.
_DROPPED_ENV = ("PS1", "PS2", "PS4", "PROMPT_COMMAND", "BASH_ENV", "ENV", "HISTFILE")
_FORCED_ENV = {"TERM": "dumb", "PAGER": "cat", "GIT_PAGER": "cat", "MANPAGER": "cat"}

# OpenHands' notes, word for word (openhands/runtime/utils/bash_constants.py and bash.py),
# because models tuned on OpenHands act on them.
_TIMEOUT_TEMPLATE = (
    "You may wait longer to see additional output by sending empty command '', send other "
    'commands to interact with the current process, send keys ("C-c", "C-z", "C-d") to '
    "interrupt/kill the previous command before sending your new command, or use the "
    "timeout parameter in execute_bash for future commands."
)
SOFT_TIMEOUT_NOTE = "[The command has no new output after {seconds:g} seconds. " + (
    _TIMEOUT_TEMPLATE + "]"
)
# {seconds}: OpenHands prints the float it parsed, so `2.5`, `1.0`, `30.0`.
TIMEOUT_NOTE = "[The command timed out after {seconds} seconds. " + _TIMEOUT_TEMPLATE + "]"
REFUSED_NOTE = (
    '[Your command "{command}" is NOT executed. The previous command is still running - You '
    "CANNOT send new commands until the previous command is completed. By setting `is_input` "
    "to `true`, you can interact with the current process: " + _TIMEOUT_TEMPLATE + "]"
)
CONTINUED_PREFIX = "[Below is the output of the previous command.]\n"
NOTHING_TO_SHOW = "ERROR: No previous running command to retrieve logs from."
NOTHING_TO_INPUT = "ERROR: No previous running command to interact with."
# Ours: a second C-c that also fails to stop the command escalates to SIGKILL.
FORCE_KILLED_NOTE = "[The command did not stop on C-c, so it was killed.]"
ALREADY_DONE_NOTE = "[The command had already finished, so your input was not sent.]"
PARTIAL_INPUT_NOTE = "[Only part of the input was sent: the process is not reading its input.]"
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
FINISHED_BEFORE_NOTE = (
    "[Before your command ran, the previous command finished with exit code {code}. Its "
    "last output was:\n{output}]"
)
# A wedged session (see shell_watch), and how it was recovered.
NESTED_SHELL_NOTE = (
    "[`{program}` started a nested interactive shell, which this tool cannot drive (it "
    "cannot tell when a command typed into it ends), so it was stopped: you are back in the "
    "original shell. Run commands directly, or a script with `bash script.sh`.]"
)
WEDGED_SHELL_NOTE = (
    "[{reason}, so a fresh shell was started in {cwd}: earlier environment changes are gone.]"
)
_WEDGE_REASONS: dict[Wedge, str] = {
    "replaced": "The shell was replaced by `{program}` (exec), which this tool cannot drive",
    "nested": "`{program}` started a nested interactive shell that could not be stopped",
    "silent": "The shell did not come back to its prompt after C-c (it ignores interrupts, or "
    "its prompt hook is gone)",
}
PREVIOUS_OUTPUT_NOTE = "[The previous command's last output was:\n{output}]"


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

    def view(self) -> ShellView:
        """What runs on the terminal now (an empty view when it cannot be read)."""
        ...

    def close(self) -> None:
        """Kill the shell and everything it started; idempotent."""
        ...


# Starts a shell in a working directory with an environment; raises SandboxError.
TransportFactory = Callable[[str, dict[str, str]], Transport]


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
        stop: threading.Event | None = None,
    ) -> None:
        self.workdir = os.path.abspath(workdir)
        # Set by whoever drives several runs in one process (a batch): a wait for output
        # ends at once with KeyboardInterrupt, as Ctrl-C ends it for a run in the main thread.
        self._stop = stop
        self.soft_timeout = soft_timeout
        # A command that never stops printing never goes quiet: return after this long.
        self.max_wait = max_wait
        self._env = _shell_env(env)
        # Marks every process of this session (see stop_leftovers); unrelated to the
        # markers' nonces, so knowing it does not help forge one.
        self._session_tag = secrets.token_hex(8)
        self._tag = b""  # the marker the running (or last) command ends with
        self._start_transport = transport
        self._shell: Transport | None = None
        self._finalizer: weakref.finalize | None = None
        self._running = False
        self._pending = b""  # output read after a marker, shown with the next call
        self._cwd = self.workdir
        self._shell_died = False
        # Whether this command already gave an incomplete result (the next one continues it).
        self._shown_incomplete = False
        # The key last sent to the running command: a second C-c escalates.
        self._last_key = ""

    @property
    def cwd(self) -> str:
        return self._cwd

    @property
    def identity(self) -> str:
        """`<pid>:<tag>`: enough for another process to find and stop this shell's tree."""
        return f"{self.pid}:{self._session_tag}"

    @property
    def pid(self) -> int | None:
        """The shell's pid (also its session and process group id), None when stopped."""
        return None if self._shell is None or self._shell.closed else self._shell.pid

    def start(self, cwd: str | None = None) -> None:
        """Start the shell (in cwd when it can, else in workdir) if it is not running;
        raises SandboxError when it cannot."""
        if self._shell is not None and not self._shell.closed:
            return
        try:
            self._start_in(cwd or self.workdir)
        except SandboxError:
            if cwd in (None, self.workdir):
                raise
            self._start_in(self.workdir)  # that directory is gone, or cannot be entered

    def _start_in(self, cwd: str) -> None:
        # The tag lets a later process recognise this shell as ours (see stop_leftovers).
        shell = self._start_transport(cwd, {**self._env, SESSION_TAG_VAR: self._session_tag})
        self._shell = shell
        self._finalizer = weakref.finalize(self, shell.close)
        nonce = new_nonce()
        self._tag = marker_tag(nonce)
        cap = self._capture()
        self._send(prompt_setup(nonce), cap)
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

        A positive timeout is a hard limit: when it expires the command is left running, as
        after a soft timeout (once it has been quiet for soft_timeout seconds), so the model
        can wait for more with '', type into it, or stop it with C-c.
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
            return self._result(NOTHING_TO_SHOW, -1, notes)
        if self._running:
            finished = self._check_previous(command, notes)
            if finished is not None:
                return finished
        nonce = new_nonce()
        self._tag = marker_tag(nonce)
        cap = self._capture()
        self._send(encode_command(command, nonce), cap)
        self._running, self._shown_incomplete, self._last_key = True, False, ""
        return self._collect(cap, timeout, notes)

    # -- the steps of a call ---------------------------------------------------------------

    def _input(self, text: str, timeout: float | None, notes: list[str]) -> CommandResult:
        if not self._running:
            return self._result(NOTHING_TO_INPUT if text else NOTHING_TO_SHOW, -1, notes)
        cap = self._capture()
        key = _control_key(text)
        if text:
            # Input typed into a command that has already finished would run as a command.
            outcome = self._wait(cap, idle=None, deadline=time.monotonic())
            if outcome != "deadline":
                return self._finish(cap, outcome, [*notes, ALREADY_DONE_NOTE])
            if key == b"\x03" and self._last_key == "C-c":
                return self._force_stop(cap, notes)
            if not self._send(key or (text + "\n").encode(errors="replace"), cap):
                notes = [*notes, PARTIAL_INPUT_NOTE]
            self._last_key = text.strip() if key else ""
        return self._collect(cap, timeout, notes, key=text.strip() if key else "")

    def _check_previous(self, command: str, notes: list[str]) -> CommandResult | None:
        """Refuse a new command while one runs; None when the previous one has finished
        (or was wedged and has been dealt with)."""
        cap = self._capture()
        outcome = self._wait(cap, idle=None, deadline=time.monotonic())
        if outcome == "deadline":
            recovered = self._recover(cap, [], interrupted=False, new_command=True)
            if recovered is None:
                self._pending = cap.hold_back_partial_marker()
                shown = command if len(command) <= 200 else command[:200] + "..."
                note = REFUSED_NOTE.format(command=shown)
                return self._incomplete(cap.text(), [*notes, note])
            if self.pid is None:  # the shell exited meanwhile: as below
                return recovered
            notes.append(recovered.note)
            if recovered.output:
                notes.append(PREVIOUS_OUTPUT_NOTE.format(output=recovered.output))
            return None
        previous = self._finish(cap, outcome, [])
        if outcome == "exited":
            return previous
        notes.append(FINISHED_BEFORE_NOTE.format(code=previous.exit_code, output=previous.output))
        return None

    def _collect(
        self, cap: Capture, timeout: float | None, notes: list[str], *, key: str = ""
    ) -> CommandResult:
        """Wait for the command to finish, go quiet, or hit its hard timeout."""
        start = time.monotonic()
        if timeout is not None:
            outcome = self._wait(cap, idle=None, deadline=start + timeout)
            limit = repr(float(timeout))  # OpenHands prints the float it parsed: 1.0, 2.5
        else:
            outcome = self._wait(cap, idle=self.soft_timeout, deadline=start + self.max_wait)
            limit = f"{self.max_wait:g}"
        return self._finish(cap, outcome, notes, key=key, limit=limit)

    def _finish(
        self, cap: Capture, outcome: Outcome, notes: list[str], *, key: str = "", limit: str = ""
    ) -> CommandResult:
        if outcome == "done":
            self._running = False
            self._pending, self._cwd = cap.leftover, cap.cwd
            code = cap.exit_code or 0
            return self._result(cap.text(), code, notes, key=key, python=cap.python)
        if outcome == "exited":
            return self._shell_exited(cap, notes)
        recovered = self._recover(cap, notes, interrupted=key == "C-c", new_command=False)
        if recovered is not None:
            return recovered
        self._pending = cap.hold_back_partial_marker()
        if outcome == "idle":
            note = SOFT_TIMEOUT_NOTE.format(seconds=self.soft_timeout)
        else:
            note = TIMEOUT_NOTE.format(seconds=limit)
        return self._incomplete(cap.text(), [*notes, note], timed_out=outcome == "deadline")

    def _force_stop(self, cap: Capture, notes: list[str]) -> CommandResult:
        """A second C-c in a row: C-c, then SIGKILL of the foreground job, then a new shell
        if it still hangs (OpenHands would leave the model with a command it cannot stop)."""
        shell = self._require_shell()
        self._send(b"\x03", cap)
        outcome = self._wait(cap, idle=None, deadline=time.monotonic() + _INTERRUPT_GRACE)
        if outcome == "deadline" and shell.kill_foreground():
            notes = [*notes, FORCE_KILLED_NOTE]
            outcome = self._wait(cap, idle=None, deadline=time.monotonic() + _INTERRUPT_GRACE)
        if outcome != "deadline":
            return self._finish(cap, outcome, notes, key="C-c")
        output = cap.text()
        self._stop_shell()
        self._shell_died, self._running, self._pending = True, False, b""
        self._cwd = self.workdir
        return self._result(output, -1, [*notes, KILLED_SHELL_NOTE])

    def _recover(
        self, cap: Capture, notes: list[str], *, interrupted: bool, new_command: bool
    ) -> CommandResult | None:
        """End a wedge: a command that can never print its marker. A nested shell is
        stopped (back to our shell, nothing lost); otherwise the shell is restarted. None
        when the command may still end by itself."""
        shell = self._require_shell()
        view = shell.view()
        wedge = find_wedge(view, interrupted=interrupted, new_command=new_command)
        if wedge is None:
            return None
        if wedge == "nested" and shell.kill_foreground():
            outcome = self._wait(cap, idle=None, deadline=time.monotonic() + _INTERRUPT_GRACE)
            if outcome != "deadline":
                note = NESTED_SHELL_NOTE.format(program=describe(view.foreground))
                return self._finish(cap, outcome, [*notes, note])
        program = describe(view.shell if wedge == "replaced" else view.foreground)
        return self._restart(cap, notes, _WEDGE_REASONS[wedge].format(program=program))

    def _restart(self, cap: Capture, notes: list[str], reason: str) -> CommandResult:
        """Replace a wedged shell by a fresh one in the last known working directory."""
        output = cap.text()
        self._stop_shell()
        self._running, self._pending = False, b""
        self.start(self._cwd)
        note = WEDGED_SHELL_NOTE.format(reason=reason, cwd=self._cwd)
        return self._result(output, -1, [*notes, note])

    def _shell_exited(self, cap: Capture, notes: list[str]) -> CommandResult:
        shell = self._require_shell()
        code = shell.exit_code()
        self._stop_shell()
        self._shell_died = True
        self._running = False
        self._cwd = self.workdir
        note = EXITED_NOTE.format(code=code, workdir=self.workdir)
        return self._result(cap.text(), code, [*notes, note])

    # -- terminal I/O ----------------------------------------------------------------------

    def _capture(self) -> Capture:
        cap = Capture(self._pending, self._tag)
        self._pending = b""
        return cap

    def _require_shell(self) -> Transport:
        if self._shell is None or self._shell.closed:
            raise SandboxError("the shell is not running")
        return self._shell

    def _send(self, data: bytes, cap: Capture) -> bool:
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

    def _wait(self, cap: Capture, *, idle: float | None, deadline: float | None) -> Outcome:
        """Read output until the marker, `idle` seconds of silence, the deadline, or exit."""
        shell = self._require_shell()
        last_output = time.monotonic()
        while True:
            maybe_exited = shell.wait(self._poll_ms(last_output, idle, deadline))
            if self._stop is not None and self._stop.is_set():
                raise KeyboardInterrupt
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

    def _poll_ms(
        self, last_output: float, idle: float | None, deadline: float | None
    ) -> int | None:
        ms = _poll_timeout_ms(last_output, idle, deadline)
        if self._stop is None:
            return ms
        return _STOP_POLL_MS if ms is None else min(ms, _STOP_POLL_MS)

    def _stop_shell(self) -> None:
        """Kill the shell's session (through the finalizer, so it is not done again)."""
        if self._finalizer is not None:
            self._finalizer()

    def _result(
        self, output: str, exit_code: int, notes: list[str], *, key: str = "", python: str = ""
    ) -> CommandResult:
        """A result the command is done with (or that no command was part of)."""
        self._shown_incomplete = False
        note = "\n".join(notes)
        return CommandResult(
            output=output, exit_code=exit_code, cwd=self._cwd, key=key, python=python, note=note
        )

    def _incomplete(
        self, output: str, notes: list[str], *, timed_out: bool = False
    ) -> CommandResult:
        """A result of a command still running; from the second on, it is marked as the
        continuation of the previous one, as OpenHands does."""
        prefix = CONTINUED_PREFIX if self._shown_incomplete else ""
        self._shown_incomplete = True
        return CommandResult(
            output=output,
            exit_code=-1,
            cwd=self._cwd,
            still_running=True,
            timed_out=timed_out,
            prefix=prefix,
            note="\n".join(notes),
        )


def _poll_timeout_ms(last_output: float, idle: float | None, deadline: float | None) -> int | None:
    """Milliseconds poll() may sleep: until the soonest limit (None = no limit)."""
    limits = [t for t in (None if idle is None else last_output + idle, deadline) if t is not None]
    if not limits:
        return None
    return max(0, math.ceil((min(limits) - time.monotonic()) * 1000))


def _control_key(text: str) -> bytes | None:
    """The byte a control key sends (`C-c`, `C-d`, `C-z`, any `C-<letter>` as OpenHands
    accepts), or None when text is to be typed."""
    key = text.strip()
    if len(key) == 3 and key.startswith("C-") and key[2].isascii() and key[2].isalpha():
        return bytes([ord(key[2].lower()) & 0x1F])
    return None


def _shell_env(given: Mapping[str, str] | None) -> dict[str, str]:
    # A given environment replaces the host's: the caller may have removed secrets from it.
    base = os.environ if given is None else given
    env = {k: v for k, v in base.items() if k not in _DROPPED_ENV}
    env.update(_FORCED_ENV)
    return env
