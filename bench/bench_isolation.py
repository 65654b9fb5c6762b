"""Figures for the local sandbox's isolation: prints them; not a test.

    .venv/bin/python bench/bench_isolation.py [--starts 10] [--iterations 200]

1. Time from `LocalSandbox.start()` to the first command's result (`echo ready`), for each
   mode: "none" (a bash on a pty), "workspace-write" and "read-only" (bubblewrap: the mount
   plan, the private /tmp, the process limit, the namespaces). Medians of --starts, after
   one start that pays for the once-per-process bubblewrap probe (timed on its own).
2. Round trip of `true` in the persistent session, per mode, median over --iterations.
3. The editor's file operations, which check PathPolicy: `view` of a small file.

Targets (issue 10): start under 50 ms more than without bubblewrap; round trip unchanged.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from timing import median_ms  # noqa: E402  (bench/, beside this script)

from sandbox.editor import Editor  # noqa: E402
from sandbox.isolation import IsolationSettings, bwrap_problem, find_bwrap  # noqa: E402
from sandbox.local import LocalSandbox  # noqa: E402

MODES = ("none", "workspace-write", "read-only")
# What a run hides (a few credential stores and the state directory): part of the cost.
HIDDEN = tuple(os.path.expanduser(p) for p in ("~/.ssh", "~/.aws", "~/.openhands-state"))


def new_sandbox(mode: str, workspace: str) -> LocalSandbox:
    settings = IsolationSettings(mode=mode, hidden_paths=HIDDEN)  # type: ignore[arg-type]
    env = {"PATH": os.environ["PATH"], "LANG": "C.UTF-8"}
    return LocalSandbox(workspace, soft_timeout=5, env=env, isolation=settings)


def time_starts(mode: str, workspace: str, starts: int) -> list[float]:
    """Seconds from start() to the first result, per start."""
    times = []
    for _ in range(starts):
        box = new_sandbox(mode, workspace)
        began = time.perf_counter()
        box.start()
        assert box.run("echo ready").output == "ready\n"
        times.append(time.perf_counter() - began)
        box.close()
    return times


def time_session(mode: str, workspace: str, iterations: int) -> tuple[float, float]:
    """Median ms of a `true` round trip and of an editor `view`."""
    box = new_sandbox(mode, workspace)
    box.start()
    try:
        editor = Editor(box)
        path = os.path.join(workspace, "f.txt")
        box.run("true")
        round_trip = median_ms(lambda: box.run("true"), iterations)
        view = median_ms(lambda: editor.execute("view", path), iterations)
    finally:
        box.close()
    return round_trip, view


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--starts", type=int, default=10)
    parser.add_argument("--iterations", type=int, default=200)
    args = parser.parse_args()
    began = time.perf_counter()
    problem = bwrap_problem(find_bwrap())
    probe_ms = (time.perf_counter() - began) * 1000
    if problem:
        sys.exit(f"cannot measure: {problem}")
    print(f"bubblewrap probe (once per process): {probe_ms:.1f} ms")
    with tempfile.TemporaryDirectory(prefix="bench-isolation-", dir="/var/tmp") as workspace:
        Path(workspace, "f.txt").write_text("hello\n" * 50)
        for mode in MODES:
            time_starts(mode, workspace, 1)  # warm: imports, page cache
        base = statistics.median(time_starts("none", workspace, args.starts)) * 1000
        print(f"{'mode':<16} {'start':>9} {'vs none':>9} {'round trip':>11} {'editor view':>12}")
        for mode in MODES:
            start = base if mode == "none" else None
            if start is None:
                start = statistics.median(time_starts(mode, workspace, args.starts)) * 1000
            round_trip, view = time_session(mode, workspace, args.iterations)
            print(
                f"{mode:<16} {start:>7.1f}ms {start - base:>+7.1f}ms "
                f"{round_trip:>9.2f}ms {view:>10.2f}ms"
            )


if __name__ == "__main__":
    main()
