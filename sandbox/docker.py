"""The Sandbox in a Docker container, through the docker SDK, for any image with bash.

One container per run, kept alive by an idle process (`docker_engine`); the agent's shell
is an interactive bash started with `docker exec` on a tty, driven by the same BashSession
as the local sandbox over an exec socket (`docker_transport`). Files are read and written
through the archive API (`docker_files`), so nothing but bash is needed inside the image:
no python, no build step.
"""

from __future__ import annotations

import posixpath
import threading
import weakref
from collections.abc import Iterable, Mapping
from types import TracebackType

import docker
from docker.models.containers import Container

from sandbox.bash_session import BashSession
from sandbox.docker_engine import (
    DEFAULT_PIDS_LIMIT,
    ContainerSpec,
    Mount,
    attach_or_create,
    connect,
    ensure_image,
    probe_user,
    remove_quietly,
)

# Re-exported: the controller imports these from here.
from sandbox.docker_files import ContainerFiles
from sandbox.docker_transport import ShellStarter
from sandbox.protocol import MAX_READ_BYTES, CommandResult, PathKind, SandboxError


class DockerSandbox:
    """Commands run in a container of `image`, as `user`, on the given mounts; the
    container is hardened whatever the options (see docker_engine)."""

    def __init__(
        self,
        image: str,
        *,
        run_id: str,
        workdir: str = "/workspace",
        mounts: Iterable[Mount] = (),
        user: str | None = None,
        env: Mapping[str, str] | None = None,
        soft_timeout: float = 10.0,
        max_wait: float = 300.0,
        network_mode: str | None = None,
        mem_limit: str | None = None,
        nano_cpus: int | None = None,
        pids_limit: int | None = DEFAULT_PIDS_LIMIT,
        keep_alive: bool = False,
        scope: str = "",
        client: docker.DockerClient | None = None,
        stop: threading.Event | None = None,
    ) -> None:
        self._stop = stop
        self._spec = ContainerSpec(
            image=image,
            run_id=run_id,
            scope=scope,
            workdir=posixpath.normpath(workdir),
            mounts=tuple(mounts),
            user=user,
            env=dict(env or {}),
            limits={
                "network_mode": network_mode,
                "mem_limit": mem_limit,
                "nano_cpus": nano_cpus,
                "pids_limit": pids_limit,
            },
        )
        self._soft_timeout = soft_timeout
        self._max_wait = max_wait
        self._keep_alive = keep_alive
        self._client = client
        self._container: Container | None = None
        self._files: ContainerFiles | None = None
        self._shells: ShellStarter | None = None
        self._bash: BashSession | None = None
        self._remover: weakref.finalize | None = None
        self.reattached = False

    @property
    def workdir(self) -> str:
        return self._spec.workdir

    @property
    def name(self) -> str:
        return self._spec.name

    @property
    def identity(self) -> str:
        return f"docker:{self._container.id if self._container else ''}"

    @property
    def isolation(self) -> str:
        return "container"

    @property
    def container(self) -> Container | None:
        return self._container

    def start(self) -> None:
        """Connect, find or pull the image, create (or reattach) the container, start bash."""
        if self._bash is not None and self._container is not None:
            return
        spec = self._spec
        self._client = client = connect(self._client)
        ensure_image(client, spec.image)
        container, self.reattached = attach_or_create(client, spec)
        self._container = container
        # Removed at close, or when this object is collected without being closed.
        if not self._keep_alive:
            self._remover = weakref.finalize(self, remove_quietly, container)
        try:
            owner = probe_user(container, spec)
            self._shells = ShellStarter(container, spec.user)
            self._bash = BashSession(
                spec.workdir,
                soft_timeout=self._soft_timeout,
                max_wait=self._max_wait,
                env={"HOME": owner.home, **spec.env},
                transport=self._shells,
                stop=self._stop,
            )
            self._bash.start()
            self._files = ContainerFiles(
                container, workdir=spec.workdir, user=spec.user, uid=owner.uid, gid=owner.gid
            )
        except BaseException:
            self._bash = None
            self._discard(container)
            raise

    def run(
        self, command: str, *, is_input: bool = False, timeout: float | None = None
    ) -> CommandResult:
        if self._bash is None:
            raise SandboxError("the sandbox is not started")
        return self._bash.run(command, is_input=is_input, timeout=timeout)

    def close(self) -> None:
        """Remove the container (everything in it dies with it), or with keep_alive leave
        it and its processes running for a later resume; idempotent."""
        shell = self._shells.latest if self._shells else None
        if self._remover is not None:
            self._remover()
        if shell is not None:
            shell.detach()
        if self._bash is not None:
            self._bash.close()
        self._bash = None
        self._shells = None
        self._files = None
        self._container = None

    def __enter__(self) -> DockerSandbox:
        self.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    # -- files: see docker_files -----------------------------------------------------------

    def read_file(self, path: str, max_bytes: int = MAX_READ_BYTES) -> bytes:
        return self._require_files().read_file(path, max_bytes)

    def write_file(self, path: str, data: bytes) -> None:
        """Write through symlinks like open() does; an existing file keeps its mode (it is
        replaced, so it gets the sandbox user as owner and loses its hard links)."""
        self._require_files().write_file(path, data)

    def path_kind(self, path: str) -> PathKind:
        return self._require_files().path_kind(path)

    def list_dir(self, path: str, depth: int = 2, hidden: bool = False) -> list[str]:
        return self._require_files().list_dir(path, depth, hidden)

    def _require_files(self) -> ContainerFiles:
        if self._files is None:
            raise SandboxError("the sandbox is not started")
        return self._files

    def _discard(self, container: Container) -> None:
        """After a failed start: no container is left behind."""
        if self._remover is not None:
            self._remover.detach()
        remove_quietly(container)
        self._container = None
        self._files = None
