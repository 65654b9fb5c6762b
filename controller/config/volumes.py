"""`SANDBOX_VOLUMES`: host directories the sandbox may reach, checked at start-up.

Format `host:container[:mode]`, comma-separated, mode `rw` (default) or `ro`. Stricter than
OpenHands on purpose: a relative host path is an error (OpenHands silently turns it into a
named Docker volume), the host path must exist and must not be `/` (the whole machine, read
or written as root), and two mounts may not share a container path. One host path may be
mounted at several container paths.
"""

import os
import posixpath
from typing import Literal, cast

import msgspec

from controller.errors import UserError

Mode = Literal["rw", "ro"]
_MODES: tuple[Mode, ...] = ("rw", "ro")


class Volume(msgspec.Struct, frozen=True):
    """One bind mount."""

    host: str
    container: str
    mode: Mode


class VolumeError(UserError):
    """A malformed volume entry, described in one line."""


def _parse_entry(entry: str, where: str) -> Volume:
    def fail(problem: str) -> VolumeError:
        return VolumeError(f"{where} entry {entry!r}: {problem}")

    parts = entry.split(":")
    if len(parts) not in (2, 3):
        raise fail("expected host:container[:mode], e.g. /home/me/project:/workspace:rw")
    host, container = os.path.expanduser(parts[0].strip()), parts[1].strip()
    mode = parts[2].strip() if len(parts) == 3 else "rw"
    if not os.path.isabs(host):
        raise fail("host path must be absolute")
    if os.path.realpath(host) == "/":
        raise fail("host path must not be / (the whole machine)")
    if not container.startswith("/"):
        raise fail("container path must be absolute")
    if posixpath.normpath(container) == "/":
        raise fail("container path must not be /")
    if mode not in _MODES:
        raise fail(f"mode must be rw or ro, got {mode!r}")
    if not os.path.exists(host):
        raise fail("host path does not exist")
    return Volume(os.path.normpath(host), posixpath.normpath(container), cast(Mode, mode))


def parse_volumes(spec: str, *, where: str = "SANDBOX_VOLUMES") -> list[Volume]:
    """Parse a volumes string; `where` names its source in errors. Empty entries are skipped."""
    volumes: list[Volume] = []
    seen: set[str] = set()
    for raw in spec.split(","):
        entry = raw.strip()
        if not entry:
            continue
        volume = _parse_entry(entry, where)
        if volume.container in seen:
            raise VolumeError(
                f"{where} entry {entry!r}: container path {volume.container} is already mounted"
            )
        seen.add(volume.container)
        volumes.append(volume)
    return volumes


def workspace_host_path(volumes: list[Volume], mount: str = "/workspace") -> str | None:
    """The host directory mounted at `mount` (the agent's working directory), if any."""
    target = posixpath.normpath(mount)
    return next((v.host for v in volumes if v.container == target), None)
