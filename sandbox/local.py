"""The Sandbox on the host itself: a BashSession plus the host filesystem, isolated by
bubblewrap unless the mode is "none" (see sandbox/isolation.py)."""

from __future__ import annotations

import os
import posixpath
import threading
import time
from collections.abc import Callable, Mapping
from types import TracebackType

from sandbox.bash_session import BashSession, Transport
from sandbox.file_reading import local_path_kind, read_regular_file
from sandbox.isolation import (
    PRIVATE_HOME,
    Confinement,
    IsolationSettings,
    PathPolicy,
    open_checked,
)
from sandbox.protocol import MAX_READ_BYTES, CommandResult, PathKind, SandboxError
from sandbox.pty_transport import PtyTransport

# bubblewrap's words when a mount under / changed while it was bind-mounting it.
_MOUNT_RACE = ("Can't bind mount", "Unable to apply mount flags", "Can't remount")
_MOUNT_RACE_ATTEMPTS = 5


def _lost_mount_race(message: str) -> bool:
    return "bwrap:" in message and any(words in message for words in _MOUNT_RACE)


class LocalSandbox:
    """Commands run in a local bash started in workdir; files are the host's files.

    With `isolation` mode "workspace-write" or "read-only" the shell runs in bubblewrap and
    the file operations obey the same view; with "none" (the default here) the agent can
    do whatever the user running runhands can do, but hidden paths stay refused to the
    file operations.
    """

    def __init__(
        self,
        workdir: str,
        *,
        soft_timeout: float = 10.0,
        max_wait: float = 300.0,
        env: Mapping[str, str] | None = None,
        isolation: IsolationSettings | None = None,
        stop: threading.Event | None = None,
    ) -> None:
        self._workdir = os.path.abspath(workdir)
        self._settings = isolation or IsolationSettings()
        self._confinement: Confinement | None = None
        self._policy: PathPolicy | None = None
        if self._settings.mode == "none":
            self._policy = PathPolicy.unisolated(self._settings.hidden_paths)
        else:
            self._confinement = Confinement(self._workdir, self._settings)
            env = {**(os.environ if env is None else env), "HOME": PRIVATE_HOME}
        self._bash = BashSession(
            self._workdir,
            soft_timeout=soft_timeout,
            max_wait=max_wait,
            env=env,
            transport=self._transport(),
            stop=stop,
        )

    @property
    def workdir(self) -> str:
        return self._workdir

    @property
    def identity(self) -> str:
        """Recorded when the sandbox starts; `stop_leftovers(identity)` cleans up after a
        crash of the process that owned it."""
        return self._bash.identity

    @property
    def isolation(self) -> str:
        return self._settings.mode

    @property
    def process_limit(self) -> str:
        """How the number of processes is limited: "cgroup", "rlimit" or "none"."""
        return self._confinement.process_limit if self._confinement else "none"

    def start(self) -> None:
        if self._settings.mode == "none" and self._settings.network == "off":
            raise SandboxError('network "off" needs isolation: bubblewrap, and a mode not "none"')
        try:
            os.makedirs(self._workdir, exist_ok=True)
        except OSError as exc:
            raise SandboxError(f"cannot create the working directory: {exc}") from exc
        if self._confinement is not None:
            self._confinement.start()
            self._policy = self._confinement.policy
        self._start_shell()

    def _start_shell(self) -> None:
        """Start bash; again, a few times, when bubblewrap lost a race with a mount that
        came or went while it copied the mount table (Docker creating or removing a
        container's overlay at that moment): that failure says nothing about the sandbox."""
        for attempt in range(_MOUNT_RACE_ATTEMPTS):
            try:
                self._bash.start()
                return
            except SandboxError as exc:
                if self._confinement is None or not _lost_mount_race(str(exc)):
                    raise
                if attempt + 1 == _MOUNT_RACE_ATTEMPTS:
                    raise
                time.sleep(0.05 * (attempt + 1))

    def run(
        self, command: str, *, is_input: bool = False, timeout: float | None = None
    ) -> CommandResult:
        return self._bash.run(command, is_input=is_input, timeout=timeout)

    def read_file(self, path: str, max_bytes: int = MAX_READ_BYTES) -> bytes:
        return read_regular_file(self._resolve(path), max_bytes, open_checked)

    def write_file(self, path: str, data: bytes) -> None:
        full = self._checked_policy().check_write(self._absolute(path))
        os.makedirs(os.path.dirname(full), exist_ok=True)
        # Rewritten in place (not replaced) so the file keeps its mode and hard links.
        fd = open_checked(full, os.O_WRONLY | os.O_CREAT)
        with open(fd, "wb") as f:
            f.truncate()
            f.write(data)

    def path_kind(self, path: str) -> PathKind:
        return local_path_kind(self._resolve(path))

    def list_dir(self, path: str, depth: int = 2, hidden: bool = False) -> list[str]:
        shown = self._absolute(path)
        root = self._resolve(path)
        if not os.path.isdir(root):
            raise NotADirectoryError(root) if os.path.exists(root) else FileNotFoundError(root)
        policy = self._checked_policy()
        resolved = policy.resolve(shown)
        found: list[str] = []
        # Walked in the sandbox's view: each directory is looked up where the sandbox shows
        # it (its private /tmp...), and hidden ones are not entered.
        _walk(shown, depth, found, _sandbox_dir(policy, resolved, shown), hidden)
        return sorted(found)

    def close(self) -> None:
        self._bash.close()
        if self._confinement is not None:
            self._confinement.close()

    def __enter__(self) -> LocalSandbox:
        self.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    def _transport(self) -> Callable[[str, dict[str, str]], Transport]:
        def start(cwd: str, env: dict[str, str]) -> Transport:
            if self._confinement is None:
                return PtyTransport(cwd, env)
            return PtyTransport(cwd, env, self._confinement.launch)

        return start

    def _checked_policy(self) -> PathPolicy:
        if self._policy is None:
            raise SandboxError("the sandbox is not started")
        return self._policy

    def _absolute(self, path: str) -> str:
        return os.path.normpath(os.path.join(self._workdir, path))

    def _resolve(self, path: str) -> str:
        """The file of this machine the sandbox shows at `path`, if it may be read
        (PermissionError otherwise: hidden, or the kernel's)."""
        return self._checked_policy().check_read(self._absolute(path))


def _sandbox_dir(policy: PathPolicy, resolved: str, shown: str) -> Callable[[str], str | None]:
    """For a directory listed under `shown`: where this machine holds it, None if hidden."""

    def host(directory: str) -> str | None:
        inner = posixpath.join(resolved, posixpath.relpath(directory, shown))
        return None if policy.hidden(inner) else policy.host_path(inner)

    return host


def _walk(
    directory: str,
    depth: int,
    found: list[str],
    host: Callable[[str], str | None],
    hidden: bool = False,
) -> None:
    """Collect non-hidden entries (hidden ones too if asked, never entered); directories get a
    trailing '/' and are entered if real."""
    where = host(directory)
    if depth <= 0 or where is None:
        return
    try:
        entries = list(os.scandir(where))
    except OSError:
        return  # unreadable directory: list what we can elsewhere
    for entry in entries:
        is_hidden = entry.name.startswith(".")
        if is_hidden and not hidden:
            continue
        path = posixpath.join(directory, entry.name)
        if entry.is_dir():
            found.append(path + "/")
            # Symlinked directories are shown but not entered: no loops, no escapes.
            if not entry.is_symlink() and not is_hidden:
                _walk(path, depth - 1, found, host, hidden)
        else:
            found.append(path)
