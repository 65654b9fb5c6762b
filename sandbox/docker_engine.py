"""The Docker engine side of the sandbox: images, and the lifecycle of runhands' containers.

A container is created from a ContainerSpec, labelled with its run id and state directory
(scope), and reattached when a kept one is still running. The labels are how runhands
finds its containers again (`managed_run_ids`, `remove_leftovers`): a container without
them is never touched.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import sys
from collections.abc import Iterable
from typing import Any

import docker
import docker.errors
import msgspec
from docker.models.containers import Container
from docker.utils import parse_repository_tag

from sandbox.docker_transport import DOCKER_ERRORS, explain, run_script
from sandbox.protocol import SandboxError

LABEL_RUN = "runhands.run_id"
LABEL_MANAGED = "runhands.managed"
# Which runhands state directory the run belongs to: runs of other state directories (other
# users, other projects) may share a run id, and must never be touched.
LABEL_SCOPE = "runhands.scope"
# Keeps the container running; falls back to tail where `sleep` has no "infinity".
_IDLE = ["bash", "-c", "sleep infinity || tail -f /dev/null"]

# Who the sandbox user is, and a writable HOME: the image's when it is writable, otherwise
# /tmp/home (sticky and world-writable, so any later uid can use it too).
_PROBE_USER = r"""
gid=0
while read -r key value _; do [ "$key" = Gid: ] && gid=$value; done < /proc/self/status
home=$HOME
if ! { [ -d "$home" ] && [ -w "$home" ]; }; then
  home=/tmp/home
  { mkdir -p "$home" && chmod 1777 "$home"; } 2>/dev/null
  [ -w "$home" ] || home=
fi
printf '%s %s %s' "$EUID" "$gid" "$home"
"""
_MAKE_HOME = "mkdir -p /tmp/home && chmod 1777 /tmp/home"


class Mount(msgspec.Struct, frozen=True):
    """A host directory bind-mounted into the container."""

    host: str
    container: str
    read_only: bool = False


class ContainerUser(msgspec.Struct, frozen=True):
    """The sandbox user inside a container, and a HOME it can write to."""

    uid: int
    gid: int
    home: str


class ContainerSpec(msgspec.Struct, frozen=True, kw_only=True):
    """What a run's container is made of."""

    image: str
    run_id: str
    # The runhands state directory the run belongs to ("" for none).
    scope: str = ""
    workdir: str
    mounts: tuple[Mount, ...] = ()
    # The container's user (None: the image's default).
    user: str | None = None
    env: dict[str, str] = msgspec.field(default_factory=dict)
    # Resource limits and network mode, as containers.create() takes them; None: not set.
    limits: dict[str, str | int | None] = msgspec.field(default_factory=dict)

    @property
    def name(self) -> str:
        suffix = f"-{hashlib.sha1(self.scope.encode()).hexdigest()[:6]}" if self.scope else ""
        return f"runhands-{self.run_id}{suffix}"


def connect(client: docker.DockerClient | None = None) -> docker.DockerClient:
    """The given client, or one from the environment, once the engine answers."""
    host = os.environ.get("DOCKER_HOST", "the default socket")
    try:
        client = client or docker.from_env()
        client.ping()
    except DOCKER_ERRORS as exc:
        raise SandboxError(f"cannot reach the Docker engine at {host}: {explain(exc)}") from exc
    return client


def attach_or_create(client: docker.DockerClient, spec: ContainerSpec) -> tuple[Container, bool]:
    """Reattach to this run's running container (a kept one), or start a fresh one; the
    container, and whether it was reattached."""
    name = spec.name
    try:
        existing = _get(client, name)
        if existing is not None and not _is_ours(existing, spec.run_id, spec.scope):
            raise SandboxError(
                f"a container named {name} exists and was not created by runhands "
                "for this run; remove or rename it"
            )
        reattached = existing is not None and existing.status == "running"
        if existing is not None and not reattached:
            existing.remove(force=True)
        container = existing if reattached else _create(client, spec)
    except DOCKER_ERRORS as exc:
        raise SandboxError(f"cannot start container {name}: {explain(exc)}") from exc
    return container, reattached


def _create(client: docker.DockerClient, spec: ContainerSpec) -> Container:
    binds = {
        m.host: {"bind": m.container, "mode": "ro" if m.read_only else "rw"} for m in spec.mounts
    }
    limits = {key: value for key, value in spec.limits.items() if value is not None}
    container = client.containers.create(
        spec.image,
        entrypoint=_IDLE,  # not the image's own: it could be anything
        name=spec.name,
        labels={LABEL_RUN: spec.run_id, LABEL_MANAGED: "true", LABEL_SCOPE: spec.scope},
        user=spec.user or "",
        working_dir=spec.workdir,
        environment=spec.env,
        volumes=binds,
        init=True,  # reaps the zombies of orphaned processes
        **limits,
    )
    try:
        container.start()
    except BaseException:
        remove_quietly(container)
        raise
    return container


def probe_user(container: Container, spec: ContainerSpec) -> ContainerUser:
    """Who the sandbox user is in the started container, with a writable HOME for it."""
    ran = run_script(container, _PROBE_USER, user=spec.user)
    parts = ran.out.decode(errors="replace").split()
    if ran.code != 0 or len(parts) < 2:
        said = " ".join((ran.err or ran.out).decode(errors="replace").split())[-300:]
        raise SandboxError(
            f"cannot run bash in image {spec.image} as user {spec.user or '(default)'} "
            f"(the image needs bash): {said or f'exit code {ran.code}'}"
        )
    if len(parts) < 3:  # no writable home for that uid: make one as root
        run_script(container, _MAKE_HOME)
        parts.append("/tmp/home")
    return ContainerUser(uid=int(parts[0]), gid=int(parts[1]), home=parts[2])


def remove_leftovers(
    client: docker.DockerClient, run_id: str | None = None, scope: str | None = None
) -> list[str]:
    """Remove the containers runhands created (only one run's when run_id is given, only one
    state directory's when scope is given), running or not; their names. A container
    without our labels is never touched."""
    removed = []
    for container in _managed(client, run_id, scope):
        remove_quietly(container)
        removed.append(container.name)
    return removed


def managed_run_ids(client: docker.DockerClient, scope: str | None = None) -> list[str]:
    """The run ids of the containers runhands created (for one state directory)."""
    return sorted({c.labels[LABEL_RUN] for c in _managed(client, None, scope)})


def _managed(
    client: docker.DockerClient, run_id: str | None, scope: str | None = None
) -> list[Container]:
    labels = [f"{LABEL_MANAGED}=true"] + ([f"{LABEL_RUN}={run_id}"] if run_id else [])
    found = client.containers.list(all=True, filters={"label": labels}, ignore_removed=True)
    # Checked again here: removing someone else's container must be impossible.
    return [c for c in found if _is_ours(c, run_id, scope)]


def _is_ours(container: Container, run_id: str | None, scope: str | None = None) -> bool:
    labels = container.labels
    if labels.get(LABEL_MANAGED) != "true" or LABEL_RUN not in labels:
        return False
    if scope is not None and labels.get(LABEL_SCOPE, "") != scope:
        return False
    return run_id is None or labels[LABEL_RUN] == run_id


def _get(client: docker.DockerClient, name: str) -> Container | None:
    try:
        return client.containers.get(name)
    except docker.errors.NotFound:
        return None


def remove_quietly(container: Container) -> None:
    with contextlib.suppress(*DOCKER_ERRORS):
        container.remove(force=True)


def ensure_image(client: docker.DockerClient, image: str) -> None:
    """The image, pulled (with progress on stderr) when the engine does not have it."""
    try:
        client.images.get(image)
        return
    except docker.errors.ImageNotFound:
        pass
    except DOCKER_ERRORS as exc:
        raise SandboxError(f"cannot look up image {image}: {explain(exc)}") from exc
    print(f"pulling {image} ...", file=sys.stderr, flush=True)
    repository, tag = parse_repository_tag(image)
    try:
        _show_progress(client.api.pull(repository, tag=tag or "latest", stream=True, decode=True))
    except (*DOCKER_ERRORS, SandboxError) as exc:
        raise SandboxError(
            f"image {image} is not available locally and cannot be pulled: {explain(exc)}"
        ) from exc


def _show_progress(lines: Iterable[dict[str, Any]]) -> None:
    """One stderr line per layer and status change (not per byte downloaded)."""
    shown: dict[str, str] = {}
    for line in lines:
        if "error" in line:
            raise SandboxError(str(line["error"]))
        layer, status = line.get("id", ""), line.get("status", "")
        if status and shown.get(layer) != status:
            shown[layer] = status
            print(f"  {layer + ': ' if layer else ''}{status}", file=sys.stderr, flush=True)
