"""A container's files, through the engine's archive API: read, write, stat, list.

Nothing but bash is needed inside the image (listing runs a bash script): no python, no
helper binary. Errors are the OSErrors open() would raise.
"""

from __future__ import annotations

import base64
import errno
import io
import json
import os
import posixpath
import tarfile
import time
from typing import Any

import docker.errors
from docker.models.containers import Container

from sandbox.docker_transport import DOCKER_ERRORS, explain, run_script
from sandbox.file_reading import not_regular, too_large
from sandbox.protocol import MAX_READ_BYTES, PathKind

_MAX_SYMLINKS = 40
# Go's os.FileMode bits, as the archive API's stat header reports them.
_MODE_DIR = 1 << 31
_MODE_SYMLINK = 1 << 27
# Device, named pipe, socket, character device, irregular: never read (see file_reading).
_MODE_SPECIAL = (1 << 26) | (1 << 25) | (1 << 24) | (1 << 21) | (1 << 19)
# What an archive of one file holds besides its bytes: headers, padding, end blocks.
_TAR_OVERHEAD = 64 * 1024

# Entries under $1 down to $2 levels, NUL-separated, directories with a trailing "/",
# hidden ones excluded; symlinked directories are listed but not entered.
_LIST_DIR = r"""
shopt -s nullglob; shopt -u dotglob failglob
[ "$3" = 1 ] && shopt -s dotglob
walk() {
  local entry
  [ "$2" -ge 1 ] || return 0
  for entry in "$1"/*; do
    if [ -d "$entry" ]; then
      printf '%s/\0' "$entry"
      case "${entry##*/}" in .*) continue ;; esac
      [ -L "$entry" ] || walk "$entry" $(($2 - 1))
    else
      printf '%s\0' "$entry"
    fi
  done
}
[ -d "$1" ] || { [ -e "$1" ] && exit 20; exit 21; }
walk "${1%/}" "$2"
"""


class ContainerFiles:
    """The files of a started container, seen from `workdir`; new files and directories get
    uid:gid as owner, and listing runs as `user` (None: the container's user)."""

    def __init__(
        self, container: Container, *, workdir: str, user: str | None, uid: int, gid: int
    ) -> None:
        self._container = container
        self._api: docker.APIClient = container.client.api
        self._workdir = workdir
        self._user = user
        self._uid = uid
        self._gid = gid

    def read_file(self, path: str, max_bytes: int = MAX_READ_BYTES) -> bytes:
        target, kind, stat = self._follow(self._resolve(path))
        _raise_unless_file(kind, target)
        if stat and stat.get("size", 0) > max_bytes:
            raise too_large(target, max_bytes)
        data = self._archive(target, max_bytes + _TAR_OVERHEAD)
        if data is None:  # it grew since its stat
            raise too_large(target, max_bytes)
        with tarfile.open(fileobj=io.BytesIO(data)) as tar:
            member = tar.next()
            if member is not None and not member.isreg():
                raise not_regular(target, "a FIFO, device or socket")
            if member is not None and member.size > max_bytes:
                raise too_large(target, max_bytes)
            content = tar.extractfile(member) if member else None
            return content.read() if content else b""

    def _archive(self, target: str, limit: int) -> bytes | None:
        """The engine's archive of one file, None when it is larger than limit."""
        chunks: list[bytes] = []
        size = 0
        try:
            stream, _ = self._api.get_archive(self._container.id, target)
            for chunk in stream:
                size += len(chunk)
                if size > limit:
                    stream.close()
                    return None
                chunks.append(chunk)
        except docker.errors.NotFound:
            raise _os_error(errno.ENOENT, target) from None
        except DOCKER_ERRORS as exc:
            raise OSError(errno.EIO, explain(exc), target) from exc
        return b"".join(chunks)

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

    def list_dir(self, path: str, depth: int = 2, hidden: bool = False) -> list[str]:
        root = self._resolve(path)
        flag = "1" if hidden else "0"
        ran = run_script(self._container, _LIST_DIR, root, str(depth), flag, user=self._user)
        if ran.code == 20:
            raise _os_error(errno.ENOTDIR, root)
        if ran.code != 0:
            raise _os_error(errno.ENOENT, root)
        return sorted(os.fsdecode(entry) for entry in ran.out.split(b"\0") if entry)

    def _resolve(self, path: str) -> str:
        return posixpath.normpath(posixpath.join(self._workdir, path))

    def _stat(self, path: str) -> dict[str, Any] | None:
        """The archive API's stat of path (symlinks not followed), None when missing."""
        api = self._api
        url = api._url("/containers/{0}/archive", self._container.id)
        try:
            response = api.head(url, params={"path": path})
        except DOCKER_ERRORS as exc:
            raise OSError(errno.EIO, explain(exc), path) from exc
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
                return path, _kind(stat["mode"]), stat
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
                info.uid, info.gid, info.mtime = self._uid, self._gid, now
                is_file = depth == len(names)
                info.type = tarfile.REGTYPE if is_file else tarfile.DIRTYPE
                info.mode = mode if is_file else 0o755
                info.size = len(data) if is_file else 0
                tar.addfile(info, io.BytesIO(data) if is_file else None)
        return buffer.getvalue()

    def _put(self, directory: str, archive: bytes, target: str) -> None:
        try:
            self._api.put_archive(self._container.id, directory, archive)
        except docker.errors.NotFound:
            raise _os_error(errno.ENOENT, target) from None
        except docker.errors.APIError as exc:
            if "read-only" in explain(exc):
                raise _os_error(errno.EROFS, target) from None
            raise OSError(errno.EIO, explain(exc), target) from exc
        except DOCKER_ERRORS as exc:
            raise OSError(errno.EIO, explain(exc), target) from exc


def _kind(mode: int) -> PathKind:
    """A found file's kind from its Go file mode."""
    if mode & _MODE_DIR:
        return "dir"
    return "special" if mode & _MODE_SPECIAL else "file"


def _raise_unless_file(kind: PathKind, path: str) -> None:
    if kind == "missing":
        raise _os_error(errno.ENOENT, path)
    if kind == "dir":
        raise _os_error(errno.EISDIR, path)
    if kind == "special":
        raise not_regular(path, "a FIFO, device or socket")


def _os_error(code: int, path: str) -> OSError:
    """The OSError subclass open() would raise (FileNotFoundError, IsADirectoryError...)."""
    return OSError(code, os.strerror(code), path)
