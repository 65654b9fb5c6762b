"""Fixtures shared by the sandbox tests.

`sandbox` is parametrised over backends so the same suite runs against each one; add the
Docker backend to BACKENDS when it exists. Tests must build paths from `sandbox.workdir`.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from sandbox import LocalSandbox, Sandbox

BACKENDS = ["local"]
SOFT_TIMEOUT = 0.5  # seconds: short, so soft-timeout tests stay fast


def make_sandbox(backend: str, tmp_path: Path) -> Sandbox:
    if backend == "local":
        return LocalSandbox(str(tmp_path / "work"), soft_timeout=SOFT_TIMEOUT)
    raise ValueError(f"unknown sandbox backend {backend!r}")


@pytest.fixture(params=BACKENDS)
def sandbox(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Sandbox]:
    box = make_sandbox(request.param, tmp_path)
    box.start()
    yield box
    box.close()
