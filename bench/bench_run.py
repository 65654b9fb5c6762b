"""Figures for `runhands run` (issue 2): prints them; not a test.

    .venv/bin/python bench/bench_run.py [--steps 200]

- controller overhead per step: wall time of the run's steps minus the model calls (HTTP,
  measured by the client) and the commands (action -> observation), per step; the model is
  a zero-latency scripted server on 127.0.0.1 and every command is `true`;
- time from process start to the first model request, next to `import litellm` alone;
- bytes written to the store per step, for a short and a long run (constant = flat);
- peak RSS of the long run.
"""

from __future__ import annotations

import argparse
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from state_store.events import Action, ModelResponse, Observation, Transition  # noqa: E402
from state_store.store import read_events  # noqa: E402
from tests.scripted_model import ScriptedModel, bash, finish  # noqa: E402


def run_once(steps: int, workdir: Path) -> dict[str, float]:
    script = [bash("true") for _ in range(steps - 1)] + [finish()]
    state = workdir / "state"
    env = {
        **os.environ,
        "HOME": str(workdir),
        "LLM_MODEL": "openai/bench",
        "LLM_API_KEY": "bench-key",
        "AGENT_ENABLE_STUCK_DETECTION": "false",  # every command is `true`: not a loop here
        "FILE_STORE_PATH": str(state),
        "MAX_ITERATIONS": str(steps + 1),
    }
    with ScriptedModel(script) as model:
        env["LLM_BASE_URL"] = model.base_url
        first_request: list[float] = []
        original = model.next_turn

        def stamped(body):  # the time the first request arrives
            if not first_request:
                first_request.append(time.monotonic())
            return original(body)

        model.next_turn = stamped
        before = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
        started = time.monotonic()
        proc = subprocess.run(
            [sys.executable, "-m", "controller", "run", "-n", "bench", "-t", "bench"],
            cwd=workdir,
            env=env,
            capture_output=True,
            text=True,
        )
        assert proc.returncode == 0, proc.stderr
        peak_kb = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    run_dir = state / "bench"
    events = read_events(run_dir / "events.jsonl")
    return {
        "overhead_ms": overhead_per_step(events) * 1000,
        "first_request_s": first_request[0] - started,
        "bytes_per_step": sum(p.stat().st_size for p in run_dir.iterdir()) / steps,
        "peak_rss_mb": max(peak_kb, before) / 1024,
    }


def overhead_per_step(events: list) -> float:
    """Steady state: from the first model answer to the end (the first step also waits for
    litellm's import, which the first-request figure covers)."""
    responses = [e for e in events if isinstance(e, ModelResponse)]
    later = [e for e in events if e.seq > responses[0].seq]
    end = [e for e in later if isinstance(e, Transition)][-1]
    loop = end.ts - responses[0].ts
    model = sum(e.latency_s for e in responses[1:])
    started = {e.tool_call_id: e.ts for e in later if isinstance(e, Action)}
    commands = sum(
        e.ts - started[e.tool_call_id]
        for e in later
        if isinstance(e, Observation) and e.tool_call_id in started
    )
    return (loop - model - commands) / (len(responses) - 1)


def litellm_import_s() -> float:
    env = {**os.environ, "LITELLM_LOCAL_MODEL_COST_MAP": "True"}
    code = "import time; t = time.monotonic(); import litellm; print(time.monotonic() - t)"
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True)
    return float(out.stdout.strip())


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--steps", type=int, default=200)
    parser.add_argument("--repeat", type=int, default=3, help="runs for the start-up figures")
    args = parser.parse_args()
    imports, firsts = [], []
    for _ in range(args.repeat):  # medians: import time alone varies by ~0.5 s run to run
        imports.append(litellm_import_s())
        with tempfile.TemporaryDirectory() as tmp:
            firsts.append(run_once(5, Path(tmp))["first_request_s"])
    imp, first = statistics.median(imports), statistics.median(firsts)
    print(
        f"start-up: first model request {first:.2f} s after process start; "
        f"`import litellm` alone {imp:.2f} s; difference {first - imp:.2f} s (median of "
        f"{args.repeat})"
    )
    for steps in (20, args.steps):
        with tempfile.TemporaryDirectory() as tmp:
            r = run_once(steps, Path(tmp))
        print(
            f"{steps:4d}-step run: controller overhead {r['overhead_ms']:.2f} ms/step, "
            f"store {r['bytes_per_step']:.0f} B/step, peak RSS {r['peak_rss_mb']:.0f} MB"
        )


if __name__ == "__main__":
    main()
