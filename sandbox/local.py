"""The Sandbox on the host itself: a BashSession plus the host filesystem."""

from __future__ import annotations

import os
from collections.abc import Mapping
from types import TracebackType

from sandbox.bash_session import BashSession
from sandbox.protocol import CommandResult, PathKind, SandboxError


class LocalSandbox:
    """Commands run in a local bash started in workdir; files are the host's files.

    No isolation: the agent can do whatever the user running runhands can do.
    """

    def __init__(
        self,
        workdir: str,
        *,
        soft_timeout: float = 10.0,
        max_wait: float = 300.0,
        env: Mapping[str, str] | None = None,
    ) -> None:
        self._workdir = os.path.abspath(workdir)
        self._bash = BashSession(
            self._workdir, soft_timeout=soft_timeout, max_wait=max_wait, env=env
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
        return "none"

    def start(self) -> None:
        try:
            os.makedirs(self._workdir, exist_ok=True)
        except OSError as exc:
            raise SandboxError(f"cannot create the working directory: {exc}") from exc
        self._bash.start()

    def run(
        self, command: str, *, is_input: bool = False, timeout: float | None = None
    ) -> CommandResult:
        return self._bash.run(command, is_input=is_input, timeout=timeout)

    def read_file(self, path: str) -> bytes:
        with open(self._resolve(path), "rb") as f:
            return f.read()

    def write_file(self, path: str, data: bytes) -> None:
        full = self._resolve(path)
        os.makedirs(os.path.dirname(full), exist_ok=True)
        # Rewritten in place (not replaced) so the file keeps its mode and hard links.
        with open(full, "wb") as f:
            f.write(data)

    def path_kind(self, path: str) -> PathKind:
        full = self._resolve(path)
        if os.path.isdir(full):
            return "dir"
        return "file" if os.path.exists(full) else "missing"

    def list_dir(self, path: str, depth: int = 2) -> list[str]:
        root = self._resolve(path)
        if not os.path.isdir(root):
            raise NotADirectoryError(root) if os.path.exists(root) else FileNotFoundError(root)
        found: list[str] = []
        _walk(root, depth, found)
        return sorted(found)

    def close(self) -> None:
        self._bash.close()

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

    def _resolve(self, path: str) -> str:
        return os.path.normpath(os.path.join(self._workdir, path))


def _walk(directory: str, depth: int, found: list[str]) -> None:
    """Collect non-hidden entries; directories get a trailing '/' and are entered if real."""
    if depth <= 0:
        return
    try:
        entries = list(os.scandir(directory))
    except OSError:
        return  # unreadable directory: list what we can elsewhere
    for entry in entries:
        if entry.name.startswith("."):
            continue
        if entry.is_dir():
            found.append(entry.path + "/")
            # Symlinked directories are shown but not entered: no loops, no escapes.
            if not entry.is_symlink():
                _walk(entry.path, depth - 1, found)
        else:
            found.append(entry.path)
