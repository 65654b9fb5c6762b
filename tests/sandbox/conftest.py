"""Fixtures shared by the sandbox tests.

`sandbox` is parametrised over backends so the same suite runs against each one. Tests must
build paths from `sandbox.workdir`. The Docker backend needs a reachable engine: without one
its tests skip with the reason, except under CI (`CI=true`) where that is a failure.
"""

from __future__ import annotations

import functools
import os
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from sandbox import LocalSandbox, Sandbox

BACKENDS = ["local", "docker"]
SOFT_TIMEOUT = 0.5  # seconds: short, so soft-timeout tests stay fast


@functools.cache
def docker_problem() -> str | None:
    """Why the Docker tests cannot run here, or None when an engine answers."""
    try:
        import docker

        docker.from_env().ping()
    except Exception as exc:
        return f"no Docker engine reachable: {' '.join(str(exc).split())[:300]}"
    return None


def require_docker() -> None:
    problem = docker_problem()
    if problem is None:
        return
    if os.environ.get("CI") == "true":
        pytest.fail(f"{problem} (under CI the Docker tests must run)")
    pytest.skip(problem)


@pytest.fixture(scope="session")
def docker_image() -> str:
    """The test image (built once per engine, see tests/docker_image.py)."""
    require_docker()
    from tests.docker_image import ensure_base_image

    return ensure_base_image()


def new_run_id() -> str:
    return f"test-{uuid.uuid4().hex[:12]}"


def make_sandbox(backend: str, tmp_path: Path, image: str | None = None) -> Sandbox:
    work = tmp_path / "work"
    if backend == "local":
        return LocalSandbox(str(work), soft_timeout=SOFT_TIMEOUT)
    if backend == "docker" and image is not None:
        from sandbox.docker import DockerSandbox
        from sandbox.docker_engine import Mount

        work.mkdir(exist_ok=True)
        return DockerSandbox(
            image,
            run_id=new_run_id(),
            mounts=[Mount(host=str(work), container="/workspace", read_only=False)],
            user=f"{os.getuid()}:{os.getgid()}",
            soft_timeout=SOFT_TIMEOUT,
        )
    raise ValueError(f"unknown sandbox backend {backend!r}")


@pytest.fixture(params=BACKENDS)
def sandbox(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Sandbox]:
    image = request.getfixturevalue("docker_image") if request.param == "docker" else None
    box = make_sandbox(request.param, tmp_path, image)
    box.start()
    yield box
    box.close()
