"""Docker runtime figures through the CLI (issue 4). Prints them; not a test.

    .venv/bin/python bench/bench_docker_runs.py [--runs 20] [--image runhands-test-base:bookworm]

- time from `runhands run` (process start) to the first command's result in the container,
  next to `import litellm` alone (the model client is imported while the container starts);
- containers left after N runs of which every fourth is killed with SIGKILL mid-command and
  then resumed (target: 0).
"""

from __future__ import annotations

import argparse
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

import docker  # noqa: E402
from bench_run import litellm_import_s  # noqa: E402

from state_store.events import Observation  # noqa: E402
from state_store.store import read_events  # noqa: E402
from tests.scripted_model import ScriptedModel, bash, finish  # noqa: E402


def one_run(tmp: Path, model: ScriptedModel, run_id: str, image: str, kill: bool) -> float | None:
    env = {
        **os.environ,
        "HOME": str(tmp),
        "LLM_MODEL": "openai/bench",
        "LLM_API_KEY": "k",
        "LLM_BASE_URL": model.base_url,
        "RUNTIME": "docker",
        "SANDBOX_RUNTIME_CONTAINER_IMAGE": image,
        "SANDBOX_SOFT_TIMEOUT": "30",
    }
    started = time.time()
    task = "bench slow" if kill else "bench"
    cmd = [sys.executable, "-m", "controller", "run", "-n", run_id, "-t", task]
    proc = subprocess.Popen(
        cmd, cwd=tmp, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
    log = tmp / ".openhands-state" / run_id / "events.jsonl"
    if kill:
        while b"sleep 2" not in (log.read_bytes() if log.exists() else b""):
            time.sleep(0.02)
        proc.kill()
        proc.wait()
        resume = [sys.executable, "-m", "controller", "resume", run_id]
        subprocess.run(resume, cwd=tmp, env=env, capture_output=True, check=True)
    else:
        assert proc.wait() == 0
    first = next(e for e in read_events(log) if isinstance(e, Observation))
    return None if kill else first.ts - started


def policy(body: dict):
    """First call of a run: a command (a slow one in runs that get killed); later ones:
    finish (also after a resume)."""
    if any(m["role"] == "tool" for m in body["messages"]):
        return finish()
    slow = body["messages"][1]["content"] == "bench slow"
    return bash("echo first && sleep 2" if slow else "echo first")


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--runs", type=int, default=20)
    parser.add_argument("--image", default="runhands-test-base:bookworm")
    args = parser.parse_args()
    client = docker.from_env()
    firsts = []
    with tempfile.TemporaryDirectory() as tmp, ScriptedModel(policy) as model:
        root = Path(tmp)
        for i in range(args.runs):
            kill = i % 4 == 3
            first = one_run(root, model, f"bench-{i}", args.image, kill)
            if first is not None:
                firsts.append(first)
        scope = str((root / ".openhands-state").resolve())
        left = [
            c.name
            for c in client.containers.list(all=True, filters={"label": f"runhands.scope={scope}"})
        ]
    print(f"import litellm alone: {litellm_import_s():.2f} s")
    print(
        f"runhands run -> first command result in the container: median "
        f"{statistics.median(firsts):.2f} s, max {max(firsts):.2f} s ({len(firsts)} runs)"
    )
    killed = len(range(3, args.runs, 4))
    print(f"containers left after {args.runs} runs ({killed} killed, then resumed): {len(left)}")


if __name__ == "__main__":
    main()
