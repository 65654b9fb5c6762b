"""What every sandbox backend offers: a persistent shell and file operations.

The agent's tools (`execute_bash`, `str_replace_editor`) are written against this protocol
only, so they behave the same on the local machine and in a Docker container.
"""

from __future__ import annotations

from typing import Literal, Protocol, runtime_checkable

import msgspec

# "special": a FIFO, device or socket, which file operations never open.
PathKind = Literal["file", "dir", "special", "missing"]
# What read_file returns at most unless the caller asks for less (see file_reading).
MAX_READ_BYTES = 50_000_000


class CommandResult(msgspec.Struct, frozen=True, kw_only=True):
    """What one `execute_bash` call produced."""

    output: str
    # The command's exit status; -1 while it is still running (soft or hard timeout).
    exit_code: int
    cwd: str = ""
    # True when the command has not finished: the model may wait (empty command), send
    # input (is_input), or interrupt it with C-c.
    still_running: bool = False
    # True when a hard `timeout` expired (the command is left running, as OpenHands does).
    timed_out: bool = False
    # OpenHands' `[Below is the output of the previous command.]\n` when this result
    # continues an earlier incomplete one of the same command, else "".
    prefix: str = ""
    # The control key this call sent ("C-c"...), shown with the exit code as OpenHands does.
    key: str = ""
    # The `python` the shell would run after the command ("" when none or unknown).
    python: str = ""
    # An explanation for the model (soft timeout note, refusal, truncation...), or "".
    note: str = ""


class SandboxError(Exception):
    """The sandbox cannot start or stopped working: the run ends with a sandbox failure."""


@runtime_checkable
class Sandbox(Protocol):
    """A place where the agent's commands run and its files live."""

    @property
    def workdir(self) -> str:
        """Absolute path of the agent's working directory inside the sandbox."""
        ...

    @property
    def identity(self) -> str:
        """What a later process needs to find and stop this sandbox after a crash."""
        ...

    @property
    def isolation(self) -> str:
        """The isolation in force, recorded in the run's log: "workspace-write",
        "read-only" or "none" (local), "container" (docker)."""
        ...

    def start(self) -> None:
        """Start the shell; raises SandboxError when that is impossible."""
        ...

    def run(
        self, command: str, *, is_input: bool = False, timeout: float | None = None
    ) -> CommandResult:
        """Run a command in the persistent shell (or send input to the running one)."""
        ...

    def read_file(self, path: str, max_bytes: int = MAX_READ_BYTES) -> bytes:
        """Read a regular file whole; FileNotFoundError / IsADirectoryError as the OS
        would, OSError(EINVAL) for a special file (never opened: it could block forever or
        never end), OSError(EFBIG) when it holds more than max_bytes."""
        ...

    def write_file(self, path: str, data: bytes) -> None:
        """Write a file, creating parent directories."""
        ...

    def path_kind(self, path: str) -> PathKind:
        """Whether path (symlinks followed) is a regular file, a directory, a special file
        or missing."""
        ...

    def list_dir(self, path: str, depth: int = 2, hidden: bool = False) -> list[str]:
        """Paths under `path` up to `depth` levels, hidden entries excluded unless `hidden`
        (hidden directories are then listed but not entered), sorted.

        Paths are absolute; directories end with "/". Raises FileNotFoundError or
        NotADirectoryError when `path` is not a directory.
        """
        ...

    def close(self) -> None:
        """Stop everything the sandbox started (the whole process tree); idempotent."""
        ...
