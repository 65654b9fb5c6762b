"""Figures for long runs (issue 5). Prints them; not a test.

    .venv/bin/python bench/bench_long_runs.py [--steps 50 200 500] [--window 8000]

For scripted runs of N steps (a zero-latency model on 127.0.0.1 counting with one short
command per step), with condensation (`LLM_MAX_INPUT_TOKENS=window`, summaries by the
scripted model) and without (`CONDENSER_TYPE=noop`): controller overhead per step, the
largest request sent (bytes, and tokens estimated at 4 bytes each), total prompt tokens
sent, peak RSS of the runhands process, bytes written to the store per step.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "bench"))

from bench_run import overhead_per_step  # noqa: E402

from state_store.store import read_events  # noqa: E402
from tests.scripted_model import ScriptedModel, Turn, bash, finish, text  # noqa: E402


def policy_for(workspace: Path, steps: int):
    def count() -> int:
        path = workspace / "count"
        return int(path.read_text()) if path.exists() else 0

    def policy(body: dict) -> Turn:
        if not body.get("tools"):
            return text(f"Counting; the count file holds {count()}.")
        if count() >= steps - 1:
            return finish("done")
        return bash(
            # written to a temporary file and renamed: a kill never leaves a half-written count
            "n=$(cat count 2>/dev/null || echo 0); echo $((n+1)) > count.tmp && mv count.tmp count"
            " && cat count"
        )

    return policy


def one(steps: int, condense: bool, window: int) -> dict[str, float]:
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        env = {
            **os.environ,
            "HOME": tmp,
            "LLM_MODEL": "openai/bench",
            "LLM_API_KEY": "k",
            "MAX_ITERATIONS": str(steps + 10),
            "LLM_MAX_INPUT_TOKENS": str(window),
            "CONDENSER_TYPE": "llm" if condense else "noop",
        }
        with ScriptedModel(policy_for(root, steps)) as model:
            env["LLM_BASE_URL"] = model.base_url
            cmd = [sys.executable, "-m", "controller", "run", "-n", "b", "-t", "count"]
            with open(root / "stderr.txt", "w") as err:
                proc = subprocess.Popen(
                    cmd, cwd=root, env=env, stdout=subprocess.DEVNULL, stderr=err
                )
                # wait4: this child's own peak RSS, not the largest of all children so far
                _, status, usage = os.wait4(proc.pid, 0)
            assert status == 0, (root / "stderr.txt").read_text()[-2000:]
            sizes = [len(json.dumps(b)) for b in model.requests if b.get("tools")]
        run_dir = root / ".openhands-state" / "b"
        events = read_events(run_dir / "events.jsonl")
        store = sum(p.stat().st_size for p in run_dir.iterdir())
        return {
            "overhead_ms": overhead_per_step(events) * 1000,
            "max_bytes": max(sizes),
            "total_tokens": sum(sizes) / 4,
            "store_per_step": store / steps,
            "peak_rss_mb": usage.ru_maxrss / 1024,
        }


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--steps", type=int, nargs="+", default=[50, 200, 500])
    parser.add_argument("--window", type=int, default=8000)
    args = parser.parse_args()
    print(f"condensation window: {args.window} tokens (estimated at 4 bytes per token)")
    for steps in args.steps:
        for condense in (True, False):
            r = one(steps, condense, args.window)
            label = "condensing" if condense else "no condensation"
            print(
                f"{steps:4d} steps, {label:16s}: overhead {r['overhead_ms']:.2f} ms/step, "
                f"largest request {r['max_bytes'] / 1024:.0f} KB (~{r['max_bytes'] // 4} "
                f"tokens), prompt tokens sent {r['total_tokens'] / 1e6:.2f} M, "
                f"peak RSS {r['peak_rss_mb']:.0f} MB, "
                f"store {r['store_per_step']:.0f} B/step"
            )


if __name__ == "__main__":
    main()
