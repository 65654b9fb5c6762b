"""Reading a file whole without hanging or running out of memory.

Only regular files are opened: opening a FIFO blocks until a writer comes (forever, in a
sandbox nobody writes to), reading a device like /dev/zero never ends, and opening some
devices acts on them. Every read is bounded: a file larger than the caller's limit is an
error, never a partial read. The errors are OSErrors, like open()'s.
"""

from __future__ import annotations

import errno
import os
import stat
from collections.abc import Callable

from sandbox.protocol import PathKind

_SPECIAL_KINDS = (
    (stat.S_ISFIFO, "a FIFO (named pipe)"),
    (stat.S_ISCHR, "a character device"),
    (stat.S_ISBLK, "a block device"),
    (stat.S_ISSOCK, "a socket"),
)


def special_kind(mode: int) -> str | None:
    """What a file of this st_mode is when it is neither a regular file nor a directory."""
    if stat.S_ISREG(mode) or stat.S_ISDIR(mode):
        return None
    return next((name for test, name in _SPECIAL_KINDS if test(mode)), "not a regular file")


def local_path_kind(path: str) -> PathKind:
    """What is at a path of this machine, symlinks followed ("missing" when it cannot be
    reached)."""
    try:
        mode = os.stat(path).st_mode
    except OSError:
        return "missing"
    if stat.S_ISDIR(mode):
        return "dir"
    return "special" if special_kind(mode) else "file"


def not_regular(path: str, kind: str) -> OSError:
    return OSError(errno.EINVAL, f"not a regular file: {kind}", path)


def too_large(path: str, max_bytes: int) -> OSError:
    return OSError(errno.EFBIG, f"larger than {describe_size(max_bytes)}", path)


def describe_size(n: int) -> str:
    """A byte count as people read it: "1 MB", "10 MB", "4,096 bytes"."""
    return f"{n / 1e6:g} MB" if n >= 1_000_000 else f"{n:,} bytes"


def read_regular_file(
    path: str, max_bytes: int, opener: Callable[[str, int], int] = os.open
) -> bytes:
    """The bytes of the regular file at path (symlinks followed), at most max_bytes.

    Raises FileNotFoundError, IsADirectoryError..., OSError(EINVAL) for a FIFO, device or
    socket (never opened), OSError(EFBIG) when the file holds more than max_bytes. `opener`
    opens the path with the given flags (e.g. one that also checks where it leads).
    """
    mode = os.stat(path).st_mode
    if stat.S_ISDIR(mode):
        raise IsADirectoryError(errno.EISDIR, os.strerror(errno.EISDIR), path)
    if kind := special_kind(mode):
        raise not_regular(path, kind)
    # O_NONBLOCK: should a FIFO be swapped in after the check, opening it does not block.
    fd = opener(path, os.O_RDONLY | os.O_NONBLOCK | os.O_CLOEXEC)
    with open(fd, "rb") as f:
        opened = os.fstat(fd)
        if kind := special_kind(opened.st_mode):
            raise not_regular(path, kind)
        if opened.st_size > max_bytes:
            raise too_large(path, max_bytes)
        data = f.read(max_bytes + 1)  # the file may have grown since
    if len(data) > max_bytes:
        raise too_large(path, max_bytes)
    return data
