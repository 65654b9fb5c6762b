"""Figures for `runhands batch --ray` next to the thread backend: prints them; not a test.

    .venv/bin/python bench/bench_batch_ray.py [--tasks 20] [--workers 4] [--repeat 3]

The same quick tasks (tests/batch_tasks.py's `steps` kind: two bash steps, then finish; the
scripted model on 127.0.0.1 answers at once) run by the real CLI (`python -m controller
batch TASKS -o OUT -w W --isolation none --json`), on threads and on a local one-node Ray
cluster (4 CPUs, started here in a temp dir of its own, stopped at the end). Each batch is a
new CLI process, so on Ray a new job: its worker processes start and import litellm anew.

Each batch's time, from the `--json` events as they arrive (medians of --repeat):
- start: the process starts -> the first task starts (both import litellm; Ray: connect);
- warm-up: the first task starts -> the first task ends (Ray: W worker processes start and
  import litellm, on this machine's cores, before the first run);
- per task: from the first task's end to the last's, per task (the steady rate at -w W:
  Ray adds submitting, scheduling and the result's round trip to each);
- exit: the summary -> the process exits (Ray: disconnecting).
Ray's overhead per task is the difference of the per-task figures; its fixed overhead the
difference of the rest.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "bench"))

from bench_run import litellm_import_s  # noqa: E402

from tests.batch_tasks import BatchModel, task_line, write_tasks  # noqa: E402
from tests.e2e.test_batch_ray import RayCluster  # noqa: E402
from tests.scripted_model import ScriptedModel  # noqa: E402

PHASES = ("start", "warm-up", "per task", "exit", "total")


def batch_phases(
    tasks: Path, out: Path, workers: int, home: Path, ray: str | None
) -> dict[str, float]:
    """One batch's phases, in seconds, timed as its `--json` events arrive."""
    with ScriptedModel(BatchModel()) as model:
        model._server.socket.listen(128)  # W runs connect at once: more than the default 5
        env = {
            "PATH": os.environ["PATH"],
            "HOME": str(home),
            "LANG": "C.UTF-8",
            "LLM_MODEL": "openai/bench",
            "LLM_API_KEY": "bench-key",
            "LLM_BASE_URL": model.base_url,
        }
        command = [sys.executable, "-m", "controller", "batch", str(tasks), "-o", str(out)]
        command += ["-w", str(workers), "--isolation", "none", "--json"]
        command += ["--ray", ray] if ray else []
        began = time.monotonic()
        seen: dict[str, list[float]] = {}
        with subprocess.Popen(
            command, cwd=home, env=env, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL
        ) as batch:
            assert batch.stdout is not None
            for line in batch.stdout:
                event = json.loads(line)["event"]
                seen.setdefault(event, []).append(time.monotonic() - began)
        total = time.monotonic() - began
    assert batch.returncode == 0, f"exit {batch.returncode}"
    ends = seen["task_ended"]
    assert len(ends) == len(tasks.read_text().splitlines())
    return {
        "start": seen["task_started"][0],
        "warm-up": ends[0] - seen["task_started"][0],
        "per task": (ends[-1] - ends[0]) / (len(ends) - 1),
        "exit": total - seen["batch_ended"][0],
        "total": total,
    }


def measure(
    root: Path, size: int, workers: int, repeat: int, ray: str
) -> dict[str, dict[str, float]]:
    """{backend: {phase: median seconds}}"""
    lines = [task_line(f"b{n}", "steps") for n in range(size)]
    tasks = write_tasks(root / "tasks.jsonl", lines)
    figures: dict[str, dict[str, float]] = {}
    for backend, address in (("threads", None), ("ray", ray)):
        runs = []
        for attempt in range(repeat):
            place = root / f"{backend}-{attempt}"
            (place / "home").mkdir(parents=True)
            runs.append(batch_phases(tasks, place / "out", workers, place / "home", address))
            print(f"  {backend} #{attempt + 1}: {runs[-1]['total']:.1f} s", flush=True)
        figures[backend] = {p: statistics.median(r[p] for r in runs) for p in PHASES}
    return figures


def report(figures: dict[str, dict[str, float]], size: int, workers: int) -> None:
    threads, ray = figures["threads"], figures["ray"]
    print(f"\n{size} tasks at -w {workers} (the CLI process included), medians")
    print(f"   {'':<9}{'threads':>9}{'ray':>9}{'ray - threads':>15}")
    for phase in PHASES:
        unit = 1000 if phase == "per task" else 1
        suffix = "ms" if phase == "per task" else "s"
        a, b = threads[phase] * unit, ray[phase] * unit
        print(f"   {phase:<9}{a:>8.1f}{suffix:<1}{b:>8.1f}{suffix:<1}{b - a:>14.1f}{suffix}")
    per_task = ray["per task"] - threads["per task"]
    fixed = (ray["total"] - threads["total"]) - per_task * (size - 1)
    print(
        f"\nRay's overhead: {per_task * 1000:.0f} ms per task at -w {workers}, {fixed:.1f} s fixed"
    )


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--tasks", type=int, default=20)
    parser.add_argument("--workers", type=int, default=4)
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    print(f"litellm import alone: {litellm_import_s():.1f} s; cores: {os.cpu_count()}")
    root = Path(tempfile.mkdtemp(prefix="rh-bench-ray-", dir="/tmp"))
    (root / "tmp").mkdir()
    cluster = RayCluster(root)
    try:
        began = time.monotonic()
        cluster.start(second_node=False)
        print(f"cluster started in {time.monotonic() - began:.1f} s", flush=True)
        figures = measure(root, args.tasks, args.workers, args.repeat, cluster.address)
    finally:
        cluster.stop()
        subprocess.run(["rm", "-rf", str(root)], check=False)
    report(figures, args.tasks, args.workers)


if __name__ == "__main__":
    main()
