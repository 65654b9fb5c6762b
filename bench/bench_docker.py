"""Figures for the Docker sandbox: prints them; not a test.

    .venv/bin/python bench/bench_docker.py [--image IMAGE] [--starts 5] [--iterations 50]

1. Time from `DockerSandbox.start()` to the first command's result (container create and
   start, user probe, exec'd bash, prompt set-up, `echo ready`), median of --starts, and the
   time `close()` takes to remove the container.
2. Round trip of `true` in the persistent session against a raw `container.exec_run("true")`
   (what a `docker exec` per command would cost), medians over --iterations.

Default image: the test image built from Debian packages (tests/docker_image.py).
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
import uuid
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from timing import median_ms  # noqa: E402  (bench/, beside this script)

from sandbox.docker import DockerSandbox  # noqa: E402
from sandbox.docker_engine import Mount  # noqa: E402
from tests.docker_image import ensure_base_image  # noqa: E402


def new_sandbox(image: str, workspace: str) -> DockerSandbox:
    mounts = [Mount(host=workspace, container="/workspace", read_only=False)]
    return DockerSandbox(image, run_id=f"bench-{uuid.uuid4().hex[:8]}", mounts=mounts)


def time_start(image: str, workspace: str, starts: int) -> tuple[list[float], list[float]]:
    """Seconds from start() to the first result, and seconds close() took, per start."""
    first, close = [], []
    for _ in range(starts):
        box = new_sandbox(image, workspace)
        began = time.perf_counter()
        box.start()
        assert box.run("echo ready").output == "ready\n"
        first.append(time.perf_counter() - began)
        began = time.perf_counter()
        box.close()
        close.append(time.perf_counter() - began)
    return first, close


def time_round_trips(image: str, workspace: str, iterations: int) -> tuple[float, float]:
    box = new_sandbox(image, workspace)
    box.start()
    try:
        container = box.container
        assert container is not None
        box.run("true")
        container.exec_run("true")  # warm both paths
        session = median_ms(lambda: box.run("true"), iterations)
        raw = median_ms(lambda: container.exec_run("true"), iterations)
    finally:
        box.close()
    return session, raw


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--image", help="default: the test image, built when missing")
    parser.add_argument("--starts", type=int, default=5)
    parser.add_argument("--iterations", type=int, default=50)
    args = parser.parse_args()
    image = args.image or ensure_base_image()
    with tempfile.TemporaryDirectory() as workspace:
        first, close = time_start(image, workspace, args.starts)
        session, raw = time_round_trips(image, workspace, args.iterations)
    print(f"image: {image}")
    print(
        f"start() to first command result: median {statistics.median(first) * 1000:.0f} ms "
        f"(min {min(first) * 1000:.0f}, max {max(first) * 1000:.0f}, {args.starts} starts)"
    )
    print(f"close() removing the container: median {statistics.median(close) * 1000:.0f} ms")
    print(f"round trip of `true`, median of {args.iterations}:")
    print(f"  persistent session:        {session:.2f} ms")
    print(f"  raw container.exec_run():  {raw:.2f} ms")
    print(f"  ratio session / exec_run:  {session / raw:.3f} (target: at most 2)")


if __name__ == "__main__":
    main()
