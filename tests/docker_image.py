"""The image the Docker tests run in: minimal Debian bookworm, bash and coreutils, no python.

No registry is reachable, so it is built from Debian packages with debootstrap and imported
into the engine, where it stays cached: later calls (and later CI runs) reuse it.
`python -m tests.docker_image` builds it ahead of the tests.
"""

from __future__ import annotations

import fcntl
import os
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager

import docker
import docker.errors

DEFAULT_IMAGE = "runhands-test-base:bookworm"
_MIRROR = "http://deb.debian.org/debian"
_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
# Several pytest-xdist workers may ask at once: only one builds, the others wait for it.
_LOCK_FILE = os.path.join(tempfile.gettempdir(), "runhands-test-image.lock")


def require_base_image() -> str:
    """The base image, for a test that needs a Docker engine: skipped without one, failed
    under CI=true (where .ci/run starts one)."""
    import pytest

    try:
        docker.from_env().ping()
    except Exception as e:
        if os.environ.get("CI") == "true":
            pytest.fail(f"no Docker engine under CI: {e}")
        pytest.skip(f"no Docker engine reachable: {e}")
    return ensure_base_image()


def ensure_base_image(name: str = DEFAULT_IMAGE, client: docker.DockerClient | None = None) -> str:
    """Build `name` unless the engine already has it; returns the name."""
    client = client or docker.from_env()
    with _build_lock():
        if not _image_exists(client, name):
            _build(client, name)
    return name


def _image_exists(client: docker.DockerClient, name: str) -> bool:
    try:
        client.images.get(name)
    except docker.errors.ImageNotFound:
        return False
    return True


@contextmanager
def _build_lock() -> Iterator[None]:
    with open(_LOCK_FILE, "a") as f:
        fcntl.flock(f, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(f, fcntl.LOCK_UN)


def _build(client: docker.DockerClient, name: str) -> None:
    started = time.monotonic()
    print(f"building {name} with debootstrap (once; cached in the engine)", file=sys.stderr)
    _install_debootstrap()
    root = tempfile.mkdtemp(prefix="runhands-rootfs-", dir="/var/tmp")
    try:
        subprocess.run(
            ["debootstrap", "--variant=minbase", "bookworm", root, _MIRROR],
            check=True,
            stdout=subprocess.DEVNULL,
        )
        _import(client, root, name)
    finally:
        shutil.rmtree(root, ignore_errors=True)
    print(f"built {name} in {time.monotonic() - started:.0f} s", file=sys.stderr)


def _install_debootstrap() -> None:
    if shutil.which("debootstrap"):
        return
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    subprocess.run(["apt-get", "update", "-q"], check=True, env=env)
    subprocess.run(["apt-get", "install", "-y", "-q", "debootstrap"], check=True, env=env)


def _import(client: docker.DockerClient, root: str, name: str) -> None:
    """Stream `tar -C root -c .` into the engine as an image (never all in memory)."""
    repository, _, tag = name.partition(":")
    tar = subprocess.Popen(["tar", "-C", root, "-c", "."], stdout=subprocess.PIPE)
    assert tar.stdout is not None
    chunks = iter(lambda: tar.stdout.read(1 << 20), b"")
    try:
        client.api.import_image_from_data(
            chunks, repository=repository, tag=tag or "latest", changes=[f"ENV PATH={_PATH}"]
        )
    finally:
        tar.stdout.close()
        if tar.wait() != 0:
            raise RuntimeError(f"tar of {root} failed with exit code {tar.returncode}")


if __name__ == "__main__":
    print(ensure_base_image(*sys.argv[1:2]))
