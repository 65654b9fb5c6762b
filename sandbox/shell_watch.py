"""Recognising a shell session that can no longer end a command (a wedge), from outside.

Our shell prints the end-of-command marker from its prompt hook (`command_framing`). Some
commands take that away for good while the terminal just looks busy: `exec bash` replaces
the shell with one that has no hook; a nested `bash` prompts without it; a prompt that no
longer comes back after C-c has lost it. These are told apart from a program that is
merely slow or waiting for input by looking at the processes (their command lines and
standard input), never by typing into a terminal a running program may be reading.
"""

from __future__ import annotations

import os
import posixpath
from typing import Literal

import msgspec

# The arguments both transports start bash with (pty_transport's relay, docker_transport's
# wrapper): a process at the shell's pid with other arguments has replaced it (`exec`),
# and a subshell (a fork of ours) is recognised by them too.
SHELL_ARGS = ("--noprofile", "--norc", "--noediting", "-i")
_SHELLS = frozenset({"bash", "sh", "dash", "zsh", "ksh", "mksh", "ash", "fish", "csh", "tcsh"})

Wedge = Literal["replaced", "nested", "silent"]


class ShellView(msgspec.Struct, frozen=True):
    """What runs on the shell's terminal; empty when it could not be read."""

    # The command line of the process at the shell's pid now.
    shell: tuple[str, ...] = ()
    # The command line of the terminal's foreground job (its leader); () when the shell
    # itself is in the foreground.
    foreground: tuple[str, ...] = ()
    # Whether that job reads the shell's terminal (a shell reading a script does not).
    foreground_on_terminal: bool = False


def find_wedge(view: ShellView, *, interrupted: bool, new_command: bool) -> Wedge | None:
    """Why the running command can never print its marker, or None when it still may.

    `interrupted`: C-c was sent and the prompt did not come back. `new_command`: the model
    wants to run a command, so a program that replaced the shell must go (the shell it
    replaced can never read that command).
    """
    if not view.shell:
        return None  # nothing could be read: assume the command is just running
    replaced = tuple(view.shell[1:]) != SHELL_ARGS
    if replaced and (interrupted or new_command or _is_interactive_shell(view.shell)):
        return "replaced"
    if view.foreground_on_terminal and _is_interactive_shell(view.foreground):
        return "nested"
    if interrupted and not view.foreground and not replaced:
        return "silent"  # the shell itself is at a prompt that no longer prints the marker
    return None


def _is_interactive_shell(argv: tuple[str, ...]) -> bool:
    """A shell started with options only (no script, no -c): it waits at its own prompt.
    A subshell of ours (same arguments) runs commands and is not one."""
    if not argv or tuple(argv[1:]) == SHELL_ARGS:
        return False
    name = posixpath.basename(argv[0]).lstrip("-")
    options = argv[1:]
    return name in _SHELLS and "-c" not in options and all(a[:1] in "-+" for a in options)


def describe(argv: tuple[str, ...]) -> str:
    """A command line as the model is shown it, kept short."""
    text = " ".join(argv) or "another program"
    return text if len(text) <= 80 else text[:77] + "..."


def read_local_view(shell_pid: int, foreground_group: int) -> ShellView:
    """The view of a shell on this machine from /proc (the pty transport's side)."""
    shell = _cmdline(shell_pid)
    if foreground_group <= 0 or foreground_group == shell_pid:
        return ShellView(shell)
    try:
        on_terminal = os.path.samefile(f"/proc/{foreground_group}/fd/0", f"/proc/{shell_pid}/fd/0")
    except OSError:
        on_terminal = False
    return ShellView(shell, _cmdline(foreground_group), on_terminal)


def parse_view(out: bytes) -> ShellView:
    """The view printed by docker_transport's script: for the shell and the foreground job,
    an argument count line then the arguments NUL-terminated; then "1" when the job reads
    the shell's terminal."""
    argvs: list[tuple[str, ...]] = []
    rest = out
    for _ in range(2):
        count, _, rest = rest.partition(b"\n")
        n = int(count) if count.strip().isdigit() else 0
        parts = rest.split(b"\0", n)
        argvs.append(tuple(os.fsdecode(p) for p in parts[:n]))
        rest = parts[n] if len(parts) > n else b""
    return ShellView(argvs[0], argvs[1], rest.strip() == b"1")


def _cmdline(pid: int) -> tuple[str, ...]:
    try:
        with open(f"/proc/{pid}/cmdline", "rb") as f:
            raw = f.read()
    except OSError:
        return ()
    return tuple(os.fsdecode(arg) for arg in raw.split(b"\0")[:-1])
