"""The Sandbox in a Docker container, through the docker SDK, for any image with bash.

One container per run, kept alive by an idle process; the agent's shell is an interactive
bash started with `docker exec` on a tty, driven by the same BashSession as the local
sandbox over an exec socket (ExecTransport). Files are read and written through the
archive API, so nothing but bash is needed inside the image: no python, no build step.
"""

from __future__ import annotations

import base64
import contextlib
import errno
import hashlib
import io
import json
import os
import posixpath
import re
import select
import socket
import sys
import tarfile
import time
import weakref
from collections.abc import Iterable, Mapping
from types import TracebackType
from typing import Any, NamedTuple

import docker
import docker.errors
import msgspec
import requests
from docker.models.containers import Container
from docker.utils import parse_repository_tag

from sandbox.bash_session import BashSession
from sandbox.protocol import CommandResult, PathKind, SandboxError

LABEL_RUN = "runhands.run_id"
LABEL_MANAGED = "runhands.managed"
# Which runhands state directory the run belongs to: runs of other state directories (other
# users, other projects) may share a run id, and must never be touched.
LABEL_SCOPE = "runhands.scope"
# Keeps the container running; falls back to tail where `sleep` has no "infinity".
_IDLE = ["bash", "-c", "sleep infinity || tail -f /dev/null"]
_ROOT = "0:0"
_START_SECONDS = 10.0
_EXIT_SECONDS = 2.0
_MAX_SYMLINKS = 40
# Go's os.FileMode bits, as the archive API's stat header reports them.
_MODE_DIR = 1 << 31
_MODE_SYMLINK = 1 << 27
_DOCKER_ERRORS = (docker.errors.DockerException, requests.RequestException, OSError)

# The terminal is set up from inside (no echo, "\n" kept) before anything is typed into it;
# the line we send first makes the shell wait until our socket is ready to read its answer.
_SHELL_WRAPPER = (
    "stty -echo -echonl -onlcr -ixon rows 50 cols 200 || { echo 'rh-error: no stty'; exit 1; }; "
    "IFS= read -r _; printf 'rh-ready %s\\n' \"$$\"; "
    'exec "$BASH" --noprofile --norc --noediting -i'
)
_READY = re.compile(rb"rh-ready (\d+)\n")

# Who the sandbox user is, and a writable HOME: the image's when it is writable, otherwise
# /tmp/home (sticky and world-writable, so any later uid can use it too).
_PROBE_USER = r"""
gid=0
while read -r key value _; do [ "$key" = Gid: ] && gid=$value; done < /proc/self/status
home=$HOME
if ! { [ -d "$home" ] && [ -w "$home" ]; }; then
  home=/tmp/home
  { mkdir -p "$home" && chmod 1777 "$home"; } 2>/dev/null
  [ -w "$home" ] || home=
fi
printf '%s %s %s' "$EUID" "$gid" "$home"
"""
_MAKE_HOME = "mkdir -p /tmp/home && chmod 1777 /tmp/home"

# SIGKILL the tty's foreground process group (field 8 of /proc/PID/stat) unless it is the
# shell itself; exit 0 only when something was killed.
_KILL_FOREGROUND = r"""
read -r stat < "/proc/$1/stat" || exit 1
fields=(${stat##*) })
group=${fields[5]}
[ "$group" -gt 0 ] && [ "$group" != "$1" ] && kill -9 -- "-$group"
"""

# SIGKILL the shell's session and the descendants of its members (a child may have started
# a session of its own), until none is left: the container-side twin of _kill_session.
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
# hidden ones excluded; symlinked directories are listed but not entered.
_LIST_DIR = r"""
shopt -s nullglob; shopt -u dotglob failglob
walk() {
  local entry
  [ "$2" -ge 1 ] || return 0
  for entry in "$1"/*; do
    if [ -d "$entry" ]; then
      printf '%s/\0' "$entry"
      [ -L "$entry" ] || walk "$entry" $(($2 - 1))
    else
      printf '%s\0' "$entry"
    fi
  done
}
[ -d "$1" ] || { [ -e "$1" ] && exit 20; exit 21; }
walk "${1%/}" "$2"
"""


class Mount(msgspec.Struct, frozen=True):
    """A host directory bind-mounted into the container."""

    host: str
    container: str
    read_only: bool = False


class _User(msgspec.Struct, frozen=True):
    uid: int
    gid: int
    home: str


class ExecTransport:
    """An interactive bash started by `docker exec` on a tty, reached through its socket.

    With a tty the stream is not multiplexed: the socket carries the terminal's bytes as is.
    """

    def __init__(
        self, container: Container, *, user: str | None, workdir: str, env: dict[str, str]
    ) -> None:
        self._container = container
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
        except _DOCKER_ERRORS as exc:
            raise SandboxError(f"cannot start bash in the container: {_explain(exc)}") from exc
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
            except _DOCKER_ERRORS:
                return -1
            if not state.get("Running") or time.monotonic() > deadline:
                code = state.get("ExitCode")
                return code if isinstance(code, int) else -1
            time.sleep(0.01)

    def kill_foreground(self) -> bool:
        return _exec(self._container, _KILL_FOREGROUND, str(self._pid)).code == 0

    def close(self) -> None:
        """Kill the shell's session and close the socket; idempotent."""
        if self._closed:
            return
        _exec(self._container, _KILL_SESSION, str(self._pid))
        self.detach()

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


class _ShellStarter:
    """The BashSession's transport factory: shells in one container; remembers the latest
    so the sandbox can detach it. (Not a bound method: no reference cycle.)"""

    def __init__(self, container: Container, user: str | None) -> None:
        self._container = container
        self._user = user
        self.latest: ExecTransport | None = None

    def __call__(self, workdir: str, env: dict[str, str]) -> ExecTransport:
        self.latest = ExecTransport(self._container, user=self._user, workdir=workdir, env=env)
        return self.latest


class DockerSandbox:
    """Commands run in a container of `image`, as `user`, on the given bind mounts."""

    def __init__(
        self,
        image: str,
        *,
        run_id: str,
        workdir: str = "/workspace",
        mounts: Iterable[Mount] = (),
        user: str | None = None,
        env: Mapping[str, str] | None = None,
        soft_timeout: float = 10.0,
        max_wait: float = 300.0,
        network_mode: str | None = None,
        mem_limit: str | None = None,
        nano_cpus: int | None = None,
        keep_alive: bool = False,
        scope: str = "",
        client: docker.DockerClient | None = None,
    ) -> None:
        self._image = image
        self._run_id = run_id
        self._scope = scope
        self._workdir = posixpath.normpath(workdir)
        self._mounts = list(mounts)
        self._user = user
        self._env = dict(env or {})
        self._soft_timeout = soft_timeout
        self._max_wait = max_wait
        self._limits: dict[str, str | int | None] = {
            "network_mode": network_mode,
            "mem_limit": mem_limit,
            "nano_cpus": nano_cpus,
        }
        self._keep_alive = keep_alive
        self._client = client
        self._container: Container | None = None
        self._owner = _User(uid=0, gid=0, home="/root")
        self._shells: _ShellStarter | None = None
        self._bash: BashSession | None = None
        self._remover: weakref.finalize | None = None
        self.reattached = False

    @property
    def workdir(self) -> str:
        return self._workdir

    @property
    def name(self) -> str:
        suffix = f"-{hashlib.sha1(self._scope.encode()).hexdigest()[:6]}" if self._scope else ""
        return f"runhands-{self._run_id}{suffix}"

    @property
    def identity(self) -> str:
        return f"docker:{self._container.id if self._container else ''}"

    @property
    def container(self) -> Container | None:
        return self._container

    def start(self) -> None:
        """Connect, find or pull the image, create (or reattach) the container, start bash."""
        if self._bash is not None and self._container is not None:
            return
        client = self._connect()
        _ensure_image(client, self._image)
        container = self._attach_or_create(client)
        try:
            self._owner = self._probe_user(container)
            self._shells = _ShellStarter(container, self._user)
            env = {"HOME": self._owner.home, **self._env}
            self._bash = BashSession(
                self._workdir,
                soft_timeout=self._soft_timeout,
                max_wait=self._max_wait,
                env=env,
                transport=self._shells,
            )
            self._bash.start()
        except BaseException:
            self._bash = None
            self._discard(container)
            raise

    def run(
        self, command: str, *, is_input: bool = False, timeout: float | None = None
    ) -> CommandResult:
        if self._bash is None:
            raise SandboxError("the sandbox is not started")
        return self._bash.run(command, is_input=is_input, timeout=timeout)

    def close(self) -> None:
        """Remove the container (everything in it dies with it), or with keep_alive leave
        it and its processes running for a later resume; idempotent."""
        shell = self._shells.latest if self._shells else None
        if self._remover is not None:
            self._remover()
        if shell is not None:
            shell.detach()
        if self._bash is not None:
            self._bash.close()
        self._bash = None
        self._shells = None
        self._container = None

    def __enter__(self) -> DockerSandbox:
        self.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    # -- files, through the archive API ----------------------------------------------------

    def read_file(self, path: str) -> bytes:
        target, kind, _ = self._follow(self._resolve(path))
        _raise_unless_file(kind, target)
        try:
            stream, _ = self._api().get_archive(self._require_container().id, target)
            data = b"".join(stream)
        except docker.errors.NotFound:
            raise _os_error(errno.ENOENT, target) from None
        except _DOCKER_ERRORS as exc:
            raise OSError(errno.EIO, _explain(exc), target) from exc
        with tarfile.open(fileobj=io.BytesIO(data)) as tar:
            member = tar.next()
            content = tar.extractfile(member) if member else None
            return content.read() if content else b""

    def write_file(self, path: str, data: bytes) -> None:
        """Write through symlinks like open() does; an existing file keeps its mode (it is
        replaced, so it gets the sandbox user as owner and loses its hard links)."""
        target, kind, stat = self._follow(self._resolve(path))
        if kind == "dir":
            raise _os_error(errno.EISDIR, target)
        mode = stat["mode"] & 0o777 if stat else 0o644
        base, missing = self._existing_ancestor(posixpath.dirname(target))
        names = [*missing, posixpath.basename(target)]
        self._put(base, self._tar(names, data, mode), target)

    def path_kind(self, path: str) -> PathKind:
        return self._follow(self._resolve(path))[1]

    def list_dir(self, path: str, depth: int = 2) -> list[str]:
        root = self._resolve(path)
        ran = _exec(self._require_container(), _LIST_DIR, root, str(depth), user=self._user)
        if ran.code == 20:
            raise _os_error(errno.ENOTDIR, root)
        if ran.code != 0:
            raise _os_error(errno.ENOENT, root)
        return sorted(os.fsdecode(entry) for entry in ran.out.split(b"\0") if entry)

    # -- start-up steps --------------------------------------------------------------------

    def _connect(self) -> docker.DockerClient:
        host = os.environ.get("DOCKER_HOST", "the default socket")
        try:
            client = self._client or docker.from_env()
            client.ping()
        except _DOCKER_ERRORS as exc:
            raise SandboxError(
                f"cannot reach the Docker engine at {host}: {_explain(exc)}"
            ) from exc
        self._client = client
        return client

    def _attach_or_create(self, client: docker.DockerClient) -> Container:
        """Reattach to this run's running container (a kept one), or start a fresh one."""
        try:
            existing = _get(client, self.name)
            if existing is not None and not _is_ours(existing, self._run_id, self._scope):
                raise SandboxError(
                    f"a container named {self.name} exists and was not created by runhands "
                    "for this run; remove or rename it"
                )
            self.reattached = existing is not None and existing.status == "running"
            if existing is not None and not self.reattached:
                existing.remove(force=True)
            container = existing if self.reattached else self._create(client)
        except _DOCKER_ERRORS as exc:
            raise SandboxError(f"cannot start container {self.name}: {_explain(exc)}") from exc
        self._container = container
        # Removed at close, or when this object is collected without being closed.
        if not self._keep_alive:
            self._remover = weakref.finalize(self, _remove_quietly, container)
        return container

    def _create(self, client: docker.DockerClient) -> Container:
        binds = {
            m.host: {"bind": m.container, "mode": "ro" if m.read_only else "rw"}
            for m in self._mounts
        }
        limits = {key: value for key, value in self._limits.items() if value is not None}
        container = client.containers.create(
            self._image,
            entrypoint=_IDLE,  # not the image's own: it could be anything
            name=self.name,
            labels={LABEL_RUN: self._run_id, LABEL_MANAGED: "true", LABEL_SCOPE: self._scope},
            user=self._user or "",
            working_dir=self._workdir,
            environment=self._env,
            volumes=binds,
            init=True,  # reaps the zombies of orphaned processes
            **limits,
        )
        try:
            container.start()
        except BaseException:
            _remove_quietly(container)
            raise
        return container

    def _probe_user(self, container: Container) -> _User:
        ran = _exec(container, _PROBE_USER, user=self._user)
        parts = ran.out.decode(errors="replace").split()
        if ran.code != 0 or len(parts) < 2:
            said = " ".join((ran.err or ran.out).decode(errors="replace").split())[-300:]
            raise SandboxError(
                f"cannot run bash in image {self._image} as user {self._user or '(default)'} "
                f"(the image needs bash): {said or f'exit code {ran.code}'}"
            )
        if len(parts) < 3:  # no writable home for that uid: make one as root
            _exec(container, _MAKE_HOME)
            parts.append("/tmp/home")
        return _User(uid=int(parts[0]), gid=int(parts[1]), home=parts[2])

    def _discard(self, container: Container) -> None:
        """After a failed start: no container is left behind."""
        if self._remover is not None:
            self._remover.detach()
        _remove_quietly(container)
        self._container = None

    # -- helpers ---------------------------------------------------------------------------

    def _resolve(self, path: str) -> str:
        return posixpath.normpath(posixpath.join(self._workdir, path))

    def _api(self) -> docker.APIClient:
        return self._require_container().client.api

    def _require_container(self) -> Container:
        if self._container is None:
            raise SandboxError("the sandbox is not started")
        return self._container

    def _stat(self, path: str) -> dict[str, Any] | None:
        """The archive API's stat of path (symlinks not followed), None when missing."""
        api = self._api()
        url = api._url("/containers/{0}/archive", self._require_container().id)
        try:
            response = api.head(url, params={"path": path})
        except _DOCKER_ERRORS as exc:
            raise OSError(errno.EIO, _explain(exc), path) from exc
        if response.status_code == 404:
            return None
        header = response.headers.get("X-Docker-Container-Path-Stat")
        if not response.ok or not header:
            reason = f"the engine answered {response.status_code} to a stat of {path}"
            raise OSError(errno.EIO, reason, path)
        return json.loads(base64.b64decode(header))

    def _follow(self, path: str) -> tuple[str, PathKind, dict[str, Any] | None]:
        """Where path leads after symlinks, what is there, and its stat."""
        for _ in range(_MAX_SYMLINKS):
            stat = self._stat(path)
            if stat is None:
                return path, "missing", None
            if not stat["mode"] & _MODE_SYMLINK:
                return path, "dir" if stat["mode"] & _MODE_DIR else "file", stat
            if not stat.get("linkTarget"):
                return path, "missing", None
            path = stat["linkTarget"]
        raise _os_error(errno.ELOOP, path)

    def _existing_ancestor(self, directory: str) -> tuple[str, list[str]]:
        """The nearest existing directory and the names to create below it, like makedirs."""
        missing: list[str] = []
        while True:
            target, kind, _ = self._follow(directory)
            if kind == "dir":
                return target, missing
            if kind == "file" or directory == "/":
                raise _os_error(errno.ENOTDIR if kind == "file" else errno.ENOENT, directory)
            directory, name = posixpath.split(directory)
            missing.insert(0, name)

    def _tar(self, names: list[str], data: bytes, mode: int) -> bytes:
        """A tar of the missing directories and the file, owned by the sandbox user."""
        buffer = io.BytesIO()
        now = time.time()
        with tarfile.open(fileobj=buffer, mode="w", format=tarfile.PAX_FORMAT) as tar:
            for depth in range(1, len(names) + 1):
                info = tarfile.TarInfo(posixpath.join(*names[:depth]))
                info.uid, info.gid, info.mtime = self._owner.uid, self._owner.gid, now
                is_file = depth == len(names)
                info.type = tarfile.REGTYPE if is_file else tarfile.DIRTYPE
                info.mode = mode if is_file else 0o755
                info.size = len(data) if is_file else 0
                tar.addfile(info, io.BytesIO(data) if is_file else None)
        return buffer.getvalue()

    def _put(self, directory: str, archive: bytes, target: str) -> None:
        try:
            self._api().put_archive(self._require_container().id, directory, archive)
        except docker.errors.NotFound:
            raise _os_error(errno.ENOENT, target) from None
        except docker.errors.APIError as exc:
            if "read-only" in _explain(exc):
                raise _os_error(errno.EROFS, target) from None
            raise OSError(errno.EIO, _explain(exc), target) from exc
        except _DOCKER_ERRORS as exc:
            raise OSError(errno.EIO, _explain(exc), target) from exc


# -- the engine ----------------------------------------------------------------------------


def remove_leftovers(
    client: docker.DockerClient, run_id: str | None = None, scope: str | None = None
) -> list[str]:
    """Remove the containers runhands created (only one run's when run_id is given, only one
    state directory's when scope is given), running or not; their names. A container
    without our labels is never touched."""
    removed = []
    for container in _managed(client, run_id, scope):
        _remove_quietly(container)
        removed.append(container.name)
    return removed


def managed_run_ids(client: docker.DockerClient, scope: str | None = None) -> list[str]:
    """The run ids of the containers runhands created (for one state directory)."""
    return sorted({c.labels[LABEL_RUN] for c in _managed(client, None, scope)})


def _managed(
    client: docker.DockerClient, run_id: str | None, scope: str | None = None
) -> list[Container]:
    labels = [f"{LABEL_MANAGED}=true"] + ([f"{LABEL_RUN}={run_id}"] if run_id else [])
    found = client.containers.list(all=True, filters={"label": labels}, ignore_removed=True)
    # Checked again here: removing someone else's container must be impossible.
    return [c for c in found if _is_ours(c, run_id, scope)]


def _is_ours(container: Container, run_id: str | None, scope: str | None = None) -> bool:
    labels = container.labels
    if labels.get(LABEL_MANAGED) != "true" or LABEL_RUN not in labels:
        return False
    if scope is not None and labels.get(LABEL_SCOPE, "") != scope:
        return False
    return run_id is None or labels[LABEL_RUN] == run_id


def _get(client: docker.DockerClient, name: str) -> Container | None:
    try:
        return client.containers.get(name)
    except docker.errors.NotFound:
        return None


def _remove_quietly(container: Container) -> None:
    with contextlib.suppress(*_DOCKER_ERRORS):
        container.remove(force=True)


def _ensure_image(client: docker.DockerClient, image: str) -> None:
    """The image, pulled (with progress on stderr) when the engine does not have it."""
    try:
        client.images.get(image)
        return
    except docker.errors.ImageNotFound:
        pass
    except _DOCKER_ERRORS as exc:
        raise SandboxError(f"cannot look up image {image}: {_explain(exc)}") from exc
    print(f"pulling {image} ...", file=sys.stderr, flush=True)
    repository, tag = parse_repository_tag(image)
    try:
        _show_progress(client.api.pull(repository, tag=tag or "latest", stream=True, decode=True))
    except (*_DOCKER_ERRORS, SandboxError) as exc:
        raise SandboxError(
            f"image {image} is not available locally and cannot be pulled: {_explain(exc)}"
        ) from exc


def _show_progress(lines: Iterable[dict[str, Any]]) -> None:
    """One stderr line per layer and status change (not per byte downloaded)."""
    shown: dict[str, str] = {}
    for line in lines:
        if "error" in line:
            raise SandboxError(str(line["error"]))
        layer, status = line.get("id", ""), line.get("status", "")
        if status and shown.get(layer) != status:
            shown[layer] = status
            print(f"  {layer + ': ' if layer else ''}{status}", file=sys.stderr, flush=True)


class _Ran(NamedTuple):
    code: int  # -1 when the engine or the container is gone
    out: bytes
    err: bytes


def _exec(container: Container, script: str, *args: str, user: str | None = _ROOT) -> _Ran:
    """Run a bash script in the container, as root by default (None: the container's user).
    Never raises."""
    try:
        result = container.exec_run(
            ["bash", "-c", script, "runhands", *args], user=user or "", demux=True
        )
    except _DOCKER_ERRORS as exc:
        return _Ran(-1, b"", _explain(exc).encode())
    out, err = result.output or (None, None)
    code = result.exit_code if result.exit_code is not None else -1
    return _Ran(code, out or b"", err or b"")


def _raise_unless_file(kind: PathKind, path: str) -> None:
    if kind == "missing":
        raise _os_error(errno.ENOENT, path)
    if kind == "dir":
        raise _os_error(errno.EISDIR, path)


def _os_error(code: int, path: str) -> OSError:
    """The OSError subclass open() would raise (FileNotFoundError, IsADirectoryError...)."""
    return OSError(code, os.strerror(code), path)


def _explain(exc: BaseException) -> str:
    """A one-line reason: the engine's own explanation when there is one."""
    text = getattr(exc, "explanation", None) or str(exc) or type(exc).__name__
    return " ".join(str(text).split())[:400]
