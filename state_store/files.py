"""Writing files so that a crash, a full disk or a short write never leaves half a file:
the one atomic write and the one redactor of the project."""

from __future__ import annotations

import os
from collections.abc import Iterable
from pathlib import Path

REDACTED = "****"
# Shorter values would redact ordinary words; no real key is that short.
_MIN_SECRET_LEN = 4


class Redactor:
    """Replaces known secret values by `****` in bytes and text."""

    def __init__(self, secrets: Iterable[str] = ()) -> None:
        self._secrets = sorted({s for s in secrets if s and len(s) >= _MIN_SECRET_LEN}, key=len)
        self._secrets.reverse()  # longest first: a key containing another is fully hidden
        self._encoded = [s.encode() for s in self._secrets]

    def text(self, text: str) -> str:
        for secret in self._secrets:
            text = text.replace(secret, REDACTED)
        return text

    def bytes(self, data: bytes) -> bytes:
        for secret in self._encoded:
            data = data.replace(secret, REDACTED.encode())
        return data


def write_all(fd: int, data: bytes) -> None:
    """os.write until every byte is written: a short write is continued, not ignored."""
    view = memoryview(data)
    while view:
        written = os.write(fd, view)
        view = view[written:]


def write_atomic(path: Path, data: bytes, mode: int = 0o600) -> None:
    """Replace `path` with `data`, all or nothing: on any failure (e.g. no space left) the
    old file is kept and the error raised."""
    tmp = path.with_name(path.name + ".tmp")
    try:
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_NOFOLLOW, mode)
        try:
            write_all(fd, data)
            os.fsync(fd)
        finally:
            os.close(fd)
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    sync_directory(path.parent)


def sync_directory(path: Path) -> None:
    """Make a rename or a new file in `path` survive a machine crash."""
    fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
