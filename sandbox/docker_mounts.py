"""What a container must not reach through its mounts, and how it is kept out.

runhands' own files (the state directory, its configuration) may lie inside a mounted
directory, e.g. when the workspace is $HOME. Each is covered inside the container: a
directory by an empty read-only volume, a file by /dev/null read-only. Each directory
between the mount and it is bound over itself: a mount point cannot be renamed or removed,
so the agent can neither move the way to a hidden path aside nor plant a new one there.
Binds and volumes, never tmpfs: the engine's archive API, through which the editor reads
and writes, sees through a tmpfs but not through those.

The engine's socket is looked for in mounts, so the caller can refuse or warn: whoever
reaches it controls the engine, which is root on the host.
"""

from __future__ import annotations

import os
import posixpath
from collections.abc import Iterable, Mapping, Sequence

from sandbox.docker_engine import Mount
from sandbox.isolation import inside

_ENGINE_SOCKETS = (
    "/var/run/docker.sock",
    "/run/docker.sock",
    "/run/containerd/containerd.sock",
    "/run/podman/podman.sock",
)


def enclosing(host: str, protected: Iterable[str]) -> str | None:
    """The protected path that `host` is, or lies inside, if any."""
    real = os.path.realpath(host)
    return next((p for p in protected if inside(real, os.path.realpath(p))), None)


def hiding_mounts(mounts: Sequence[Mount], protected: Iterable[str]) -> list[Mount]:
    """The mounts that hide every existing protected path lying strictly inside one of
    `mounts` (a mount inside a protected path must be refused before)."""
    paths = _outermost({os.path.realpath(p) for p in protected if os.path.lexists(p)})
    taken = {m.container for m in mounts}
    hiding: dict[str, Mount] = {}
    for mount in mounts:
        root = os.path.realpath(mount.host)
        for path in paths:
            if path != root and inside(path, root):
                for extra in _hide(mount, root, path):
                    if extra.container not in taken:
                        hiding.setdefault(extra.container, extra)
    return list(hiding.values())


def _outermost(paths: set[str]) -> list[str]:
    """Paths not inside another one: hiding the outer one hides them too."""
    return sorted(p for p in paths if not any(q != p and inside(p, q) for q in paths))


def _hide(mount: Mount, root: str, path: str) -> list[Mount]:
    """The ancestors of `path` below `root` bound over themselves, then the cover."""
    names = os.path.relpath(path, root).split(os.sep)
    made = [
        Mount(
            host=os.path.join(root, *names[:depth]),
            container=posixpath.join(mount.container, *names[:depth]),
            read_only=mount.read_only,
        )
        for depth in range(1, len(names))
    ]
    container = posixpath.join(mount.container, *names)
    if os.path.isdir(path):
        made.append(Mount(host="", container=container, empty=True))
    else:
        made.append(Mount(host=os.devnull, container=container, read_only=True))
    return made


def engine_sockets(environ: Mapping[str, str]) -> list[str]:
    """The container engines' sockets on this machine (real paths)."""
    candidates = list(_ENGINE_SOCKETS)
    docker_host = environ.get("DOCKER_HOST", "")
    if docker_host.startswith("unix://"):
        candidates.append(docker_host.removeprefix("unix://"))
    if runtime_dir := environ.get("XDG_RUNTIME_DIR"):
        candidates += [os.path.join(runtime_dir, "docker.sock")]
    return sorted({os.path.realpath(p) for p in candidates if os.path.exists(p)})


def reached_socket(host: str, sockets: Iterable[str]) -> str | None:
    """The engine socket a mount of `host` would show the container, if any."""
    root = os.path.realpath(host)
    return next((s for s in sockets if inside(s, root)), None)
