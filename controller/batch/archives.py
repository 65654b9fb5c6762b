"""Unpacking a tar archive into a directory safely, on every Python 3.11: Debian 12's
3.11.2 has no extraction filters (PEP 706 came in 3.11.4), so the checks are ours. Used for
an image's repository (the image is not ours) and for the runs Ray workers send back."""

from __future__ import annotations

import os
import posixpath
import stat
import tarfile
from collections.abc import Iterable
from copy import copy as shallow_copy
from pathlib import Path

_CLEARED_BITS = stat.S_ISUID | stat.S_ISGID | stat.S_ISVTX | stat.S_IWGRP | stat.S_IWOTH


def extract(
    archive: tarfile.TarFile, into: Path, members: Iterable[tarfile.TarInfo] | None = None
) -> None:
    """Extract `members` (default: all) under `into`, each checked: nothing lands outside
    it (absolute names, `..`, links leading out), no device files, no set-id bits, every
    file owned by the user running runhands. tarfile.TarError names the first bad member."""
    chosen = [m for m in (archive.getmembers() if members is None else members) if _kept(m)]
    safe = [_checked(member) for member in chosen]
    if hasattr(tarfile, "fully_trusted_filter"):  # checked above; no second, differing filter
        archive.extractall(into, members=safe, filter="fully_trusted")
    else:
        archive.extractall(into, members=safe)


def _kept(member: tarfile.TarInfo) -> bool:
    return member.isfile() or member.isdir() or member.issym() or member.islnk()


def _checked(member: tarfile.TarInfo) -> tarfile.TarInfo:
    name = member.name
    if _leaves(name):
        raise tarfile.TarError(f"{name}: outside the directory")
    if member.issym() and (
        posixpath.isabs(member.linkname)
        or _leaves(posixpath.join(posixpath.dirname(name), member.linkname))
    ):
        raise tarfile.TarError(f"{name}: a link out of the directory ({member.linkname})")
    if member.islnk() and _leaves(member.linkname):
        raise tarfile.TarError(f"{name}: a hard link out of the directory")
    copy = shallow_copy(member)  # TarInfo.replace() is 3.11.4's too
    copy.mode = member.mode & ~_CLEARED_BITS
    copy.uid, copy.gid, copy.uname, copy.gname = os.getuid(), os.getgid(), "", ""
    return copy


def _leaves(path: str) -> bool:
    """True when `path` (relative to the directory) is absolute or climbs out of it."""
    if posixpath.isabs(path):
        return True
    normal = posixpath.normpath(path)
    return normal == ".." or normal.startswith("../")
