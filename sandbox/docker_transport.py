"""Reaching into a container: scripts run with `docker exec`, and the interactive bash
that BashSession drives over an exec socket (ExecTransport).

Also what the other Docker modules share about the engine's errors.
"""

from __future__ import annotations

import contextlib
import re
import select
import socket
import time
from typing import NamedTuple

import docker.errors
import requests
from docker.models.containers import Container

from sandbox.protocol import SandboxError
from sandbox.shell_watch import ShellView, parse_view

# What talking to the engine may raise: the SDK's errors, HTTP errors, socket errors.
DOCKER_ERRORS = (docker.errors.DockerException, requests.RequestException, OSError)
_ROOT = "0:0"  # run_script runs its helper scripts as root unless told otherwise
_START_SECONDS = 10.0
_EXIT_SECONDS = 2.0

# The terminal is set up from inside (no echo, "\n" kept) before anything is typed into it;
# the line we send first makes the shell wait until our socket is ready to read its answer.
_SHELL_WRAPPER = (
    "stty -echo -echonl -onlcr -ixon rows 50 cols 200 || { echo 'rh-error: no stty'; exit 1; }; "
    "IFS= read -r _; printf 'rh-ready %s\\n' \"$$\"; "
    'exec "$BASH" --noprofile --norc --noediting -i'
)
_READY = re.compile(rb"rh-ready (\d+)\n")

# SIGKILL the tty's foreground process group (field 8 of /proc/PID/stat) unless it is the
# shell itself; exit 0 only when something was killed.
_KILL_FOREGROUND = r"""
read -r stat < "/proc/$1/stat" || exit 1
fields=(${stat##*) })
group=${fields[5]}
[ "$group" -gt 0 ] && [ "$group" != "$1" ] && kill -9 -- "-$group"
"""

# What runs on the shell's terminal, for shell_watch.parse_view: the shell's command line and
# the foreground job's (an argument count, then the arguments NUL-terminated), then 1 when
# that job reads the shell's terminal.
_VIEW = r"""
args() {
  local a=()
  mapfile -d '' a < "/proc/$1/cmdline"
  printf '%d\n' "${#a[@]}"
  [ ${#a[@]} = 0 ] || printf '%s\0' "${a[@]}"
}
read -r stat < "/proc/$1/stat" || exit 1
fields=(${stat##*) })
group=${fields[5]}
args "$1"
[ "$group" -gt 0 ] && [ "$group" != "$1" ] || { printf '0\n0'; exit 0; }
args "$group"
[ "/proc/$group/fd/0" -ef "/proc/$1/fd/0" ] && echo 1
exit 0
"""

# SIGKILL the shell's session and the descendants of its members (a child may have started
# a session of its own), until none is left: the container-side twin of
# process_cleanup.kill_session.
_KILL_SESSION = r"""
leader=$1
for round in {1..50}; do
  unset parent ours; declare -A parent=() ours=()
  for dir in /proc/[0-9]*; do
    { read -r stat < "$dir/stat"; } 2>/dev/null || continue
    fields=(${stat##*) })
    [[ ${fields[0]} == [ZX] ]] && continue
    pid=${dir#/proc/}
    parent[$pid]=${fields[1]}
    [ "${fields[3]}" = "$leader" ] && ours[$pid]=1
  done
  changed=1
  while [ $changed = 1 ]; do
    changed=0
    for pid in "${!parent[@]}"; do
      if [ -z "${ours[$pid]}" ] && [ -n "${ours[${parent[$pid]}]}" ]; then
        ours[$pid]=1; changed=1
      fi
    done
  done
  unset "ours[$$]"
  [ ${#ours[@]} = 0 ] && exit 0
  kill -9 "${!ours[@]}" 2>/dev/null
done
"""

# Entries under $1 down to $2 levels, NUL-separated, directories with a trailing "/",


class Ran(NamedTuple):
    code: int  # -1 when the engine or the container is gone
    out: bytes
    err: bytes


def run_script(container: Container, script: str, *args: str, user: str | None = _ROOT) -> Ran:
    """Run a bash script in the container, as root by default (None: the container's user).
    Never raises."""
    try:
        result = container.exec_run(
            ["bash", "-c", script, "runhands", *args], user=user or "", demux=True
        )
    except DOCKER_ERRORS as exc:
        return Ran(-1, b"", explain(exc).encode())
    out, err = result.output or (None, None)
    code = result.exit_code if result.exit_code is not None else -1
    return Ran(code, out or b"", err or b"")


def explain(exc: BaseException) -> str:
    """A one-line reason: the engine's own explanation when there is one."""
    text = getattr(exc, "explanation", None) or str(exc) or type(exc).__name__
    return " ".join(str(text).split())[:400]


class ExecTransport:
    """An interactive bash started by `docker exec` on a tty, reached through its socket.

    With a tty the stream is not multiplexed: the socket carries the terminal's bytes as is.
    """

    def __init__(
        self, container: Container, *, user: str | None, workdir: str, env: dict[str, str]
    ) -> None:
        self._container = container
        self._user = user
        self._api = container.client.api
        self._closed = False
        self._eof = False
        try:
            self._exec_id = self._api.exec_create(
                container.id,
                ["bash", "-c", _SHELL_WRAPPER],
                stdin=True,
                tty=True,
                user=user or "",
                workdir=workdir,
                environment=env,
            )["Id"]
            self._io = self._api.exec_start(self._exec_id, socket=True, tty=True)
        except DOCKER_ERRORS as exc:
            raise SandboxError(f"cannot start bash in the container: {explain(exc)}") from exc
        self._sock: socket.socket = self._io._sock
        if self._sock.family in (socket.AF_INET, socket.AF_INET6):  # DOCKER_HOST=tcp://...
            # Keystrokes and prompts are tiny writes: Nagle would delay each by ~40 ms.
            self._sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self._pid, self._pending = self._handshake()
        self._sock.setblocking(False)
        self._poller = select.poll()
        self._poller.register(self._sock, select.POLLIN)

    def _handshake(self) -> tuple[int, bytes]:
        """Wait for the wrapper's ready line; the shell's pid and what followed it."""
        deadline = time.monotonic() + _START_SECONDS
        seen = b""
        with contextlib.suppress(OSError):  # a timeout, or the engine closed the stream
            self._sock.settimeout(_START_SECONDS)
            self._sock.sendall(b"\n")
            while not _READY.search(seen):
                self._sock.settimeout(max(0.01, deadline - time.monotonic()))
                chunk = self._sock.recv(1 << 16)
                if not chunk:
                    break
                seen += chunk
        if ready := _READY.search(seen):
            return int(ready.group(1)), seen[ready.end() :]
        self._close_socket()
        shown = seen.decode(errors="replace").strip()[-500:] or "no output"
        raise SandboxError(f"bash did not start in the container: {shown!r}")

    @property
    def pid(self) -> int:
        return self._pid

    @property
    def closed(self) -> bool:
        return self._closed

    def fileno(self) -> int:
        return self._sock.fileno()

    def wait(self, timeout_ms: int | None) -> bool:
        if self._pending or self._eof:
            return self._eof
        # Readable may mean end of file, which the engine sends when the shell has exited.
        return bool(self._poller.poll(timeout_ms))

    def read(self) -> bytes:
        if self._pending:
            data, self._pending = self._pending, b""
            return data
        if self._eof:
            return b""
        try:
            data = self._sock.recv(1 << 16)
        except BlockingIOError:
            return b""
        except OSError:
            data = b""
        self._eof = not data
        return data

    def write(self, data: memoryview) -> int:
        try:
            return self._sock.send(data)
        except BlockingIOError:
            return 0
        except OSError:
            return len(data)  # the shell is gone: the bytes are moot

    def exited(self) -> bool:
        return self._eof and not self._pending

    def exit_code(self) -> int:
        deadline = time.monotonic() + _EXIT_SECONDS
        while True:
            try:
                state = self._api.exec_inspect(self._exec_id)
            except DOCKER_ERRORS:
                return -1
            if not state.get("Running") or time.monotonic() > deadline:
                code = state.get("ExitCode")
                return code if isinstance(code, int) else -1
            time.sleep(0.01)

    def kill_foreground(self) -> bool:
        return self._script(_KILL_FOREGROUND).code == 0

    def view(self) -> ShellView:
        ran = self._script(_VIEW)
        return parse_view(ran.out) if ran.code == 0 else ShellView()

    def close(self) -> None:
        """Kill the shell's session and close the socket; idempotent."""
        if self._closed:
            return
        self._script(_KILL_SESSION)
        self.detach()

    def _script(self, script: str) -> Ran:
        """Run a script about the shell (clean-up, what runs on its terminal) as the shell's
        own user: the container has no capabilities, so root could neither signal another
        user's processes (CAP_KILL) nor read their /proc entries (CAP_SYS_PTRACE)."""
        return run_script(self._container, script, str(self._pid), user=self._user)

    def detach(self) -> None:
        """Close the socket and leave the shell's processes as they are (kept container, or
        one being removed with everything in it)."""
        self._closed = True
        self._close_socket()

    def _close_socket(self) -> None:
        with contextlib.suppress(OSError):
            self._sock.close()
        with contextlib.suppress(OSError):
            self._io.close()


class ShellStarter:
    """The BashSession's transport factory: shells in one container; remembers the latest
    so the sandbox can detach it. (Not a bound method: no reference cycle.)"""

    def __init__(self, container: Container, user: str | None) -> None:
        self._container = container
        self._user = user
        self.latest: ExecTransport | None = None

    def __call__(self, workdir: str, env: dict[str, str]) -> ExecTransport:
        self.latest = ExecTransport(self._container, user=self._user, workdir=workdir, env=env)
        return self.latest
