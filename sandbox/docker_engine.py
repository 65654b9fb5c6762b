"""The Docker engine side of the sandbox: images, and the lifecycle of runhands' containers.

A container is created from a ContainerSpec, labelled with its run id and state directory
(scope), and reattached when a kept one is still running. The labels are how runhands
finds its containers again (`managed_run_ids`, `remove_leftovers`): a container without
them is never touched.

Every container is hardened (`_HARDENING`): never privileged, every capability dropped,
`no-new-privileges`, a PID limit. No capability is given back because a shell needs none:
the engine switches to the sandbox user before the capabilities are dropped, creating
files in one's own directories and `chown`/`chgrp` of one's own files to oneself or one's
groups are plain permissions. What this takes away is what only root could do: write
other users' files (DAC_OVERRIDE), chown to someone else (CHOWN), signal other users'
processes (KILL: our own clean-up scripts run as the sandbox user), setuid/setgid (so
`su`, `sudo` and `apt-get`, which drops to its `_apt` user, fail), raw sockets (ping),
mknod, mount.
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
from docker.types import Mount as DockerMount
from docker.utils import parse_repository_tag

from sandbox.docker_transport import DOCKER_ERRORS, Ran, explain, run_script
from sandbox.protocol import SandboxError

LABEL_RUN = "runhands.run_id"
LABEL_MANAGED = "runhands.managed"
# Which runhands state directory the run belongs to: runs of other state directories (other
# users, other projects) may share a run id, and must never be touched.
LABEL_SCOPE = "runhands.scope"
# Keeps the container running; falls back to tail where `sleep` has no "infinity".
_IDLE = ["bash", "-c", "sleep infinity || tail -f /dev/null"]
# Processes and threads the container may hold at once: a fork bomb stops there, while
# builds (make -j, a JVM, node) stay far below it.
DEFAULT_PIDS_LIMIT = 4096
_HARDENING: dict[str, Any] = {
    "privileged": False,
    "cap_drop": ["ALL"],
    "security_opt": ["no-new-privileges"],
}
# An empty named volume mounted read-only over what a sandbox must not see. A volume, not a
# tmpfs: the engine's archive API (the editor's way in) sees binds and volumes, not tmpfs.
EMPTY_VOLUME = "runhands-empty"
_PROBE_TRIES = 3

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
    """A host path bind-mounted into the container; with `empty`, an empty read-only
    directory that hides what lies at `container` (`host` is then unused)."""

    host: str
    container: str
    read_only: bool = False
    empty: bool = False

    def for_engine(self) -> DockerMount:
        if self.empty:
            return DockerMount(self.container, EMPTY_VOLUME, read_only=True, no_copy=True)
        return DockerMount(self.container, self.host, type="bind", read_only=self.read_only)


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
    limits = {key: value for key, value in spec.limits.items() if value is not None}
    container = client.containers.create(
        spec.image,
        entrypoint=_IDLE,  # not the image's own: it could be anything
        name=spec.name,
        labels={LABEL_RUN: spec.run_id, LABEL_MANAGED: "true", LABEL_SCOPE: spec.scope},
        user=spec.user or "",
        working_dir=spec.workdir,
        environment=spec.env,
        # Mounts, not `volumes`: that dict is keyed by host path, so one directory mounted
        # twice (rw at /workspace, ro at /data) would silently lose one of its mounts.
        mounts=[m.for_engine() for m in spec.mounts],
        init=True,  # reaps the zombies of orphaned processes
        **_HARDENING,
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
    ran, parts = _ask_probe(container, spec)
    if len(parts) < 2:
        raise SandboxError(_probe_failure(spec, ran))
    if len(parts) < 3:  # no writable home for that uid: make one as root
        run_script(container, _MAKE_HOME)
        parts.append("/tmp/home")
    return ContainerUser(uid=int(parts[0]), gid=int(parts[1]), home=parts[2])


def _ask_probe(container: Container, spec: ContainerSpec) -> tuple[Ran, list[str]]:
    """The probe's answer, asked again when it came back empty or cut, or the engine
    failed: under load the engine now and then loses the output of an exec that
    succeeded."""
    for _ in range(_PROBE_TRIES):
        ran = run_script(container, _PROBE_USER, user=spec.user)
        parts = ran.out.decode(errors="replace").split()
        if len(parts) >= 2 and parts[0].isdigit() and parts[1].isdigit():
            return ran, parts
        if ran.code > 0:
            break  # bash is missing or failed: asking again changes nothing
    return ran, []


def _probe_failure(spec: ContainerSpec, ran: Ran) -> str:
    """What really failed: bash (missing, or refusing the user), or the engine."""
    who = f"in image {spec.image} as user {spec.user or '(default)'}"
    said = " ".join((ran.err or ran.out).decode(errors="replace").split())[-300:]
    if ran.code == -1:
        return f"cannot run bash {who}: the engine failed: {said or 'no answer'}"
    if ran.code == 0:
        answer = repr(said) if said else "nothing"
        return (
            f"cannot tell who the sandbox user is {who}: the probe answered {answer} with "
            f"exit code 0, {_PROBE_TRIES} times (the engine lost the output of docker exec, "
            "or `bash` in the image is not bash)"
        )
    return f"cannot run bash {who} (the image needs bash): {said or f'exit code {ran.code}'}"


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
