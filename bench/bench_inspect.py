"""Figures for `runhands inspect` and `list` on a large run: prints them; not a test.

    .venv/bin/python bench/bench_inspect.py [--events 10000] [--repeat 5]

Builds a synthetic but realistic run through RunStore (model response, transitions, a bash
action and a ~200-byte observation per step) in a temporary state dir, then times the real
CLI as subprocesses, interpreter start-up included (median of --repeat):
`inspect RUN`, `inspect RUN --json` and `list`. Also prints the store size per 1,000
events and whether reading a run imported litellm (it must not).
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

from state_store.events import (  # noqa: E402
    Action,
    Counters,
    ExecuteBash,
    ModelResponse,
    Observation,
    RunEnded,
    RunStarted,
    Snapshot,
    ToolCall,
    Transition,
    UserMessage,
)
from state_store.store import RunStore  # noqa: E402

RUN_ID = "big"
_EVENTS_PER_STEP = 6
# ~200 bytes, like a short command's output with OpenHands' exit-code and cwd suffixes.
_OUTPUT = (
    "total 24\n-rw-r--r-- 1 dev dev 512 Jan  1 12:00 main.py\n"
    "-rw-r--r-- 1 dev dev 128 Jan  1 12:00 README.md\n"
    "[The command completed with exit code 0.]\n[Current working directory: /workspace]"
)


def build_run(root: Path, events: int) -> Path:
    """A finished run of about `events` events, written the way the controller writes it."""
    store = RunStore.create(root, RUN_ID)
    task = "list the files and report their sizes"
    store.append(RunStarted, run_id=RUN_ID, task=task, workdir="/w", runtime="local", model="m")
    store.append(UserMessage, content=task)
    store.append(Transition, source="init", dest="planning", trigger="start", reason="ready")
    steps = max(1, -(-(events - 6) // _EVENTS_PER_STEP))  # rounded up: at least `events`
    for step in range(1, steps + 1):
        write_step(store, step)
    store.append(Transition, source="observing", dest="finished", trigger="finish", reason="done")
    store.append(
        RunEnded,
        run_id=RUN_ID,
        state="finished",
        reason="finished",
        message="done",
        steps=steps,
        prompt_tokens=steps * 1000,
        completion_tokens=steps * 50,
        cost=steps * 0.001,
        exit_code=0,
        duration_s=steps * 2.0,
    )
    counters = Counters(steps=steps, prompt_tokens=steps * 1000, completion_tokens=steps * 50)
    now = time.time()
    store.save_snapshot(
        Snapshot(
            run_id=RUN_ID,
            task=task,
            state="finished",
            reason="finished",
            last_seq=store.last_seq,
            created_at=now - steps * 2.0,
            updated_at=now,
            counters=counters,
        )
    )
    store.close()
    return root / RUN_ID


def write_step(store: RunStore, step: int) -> None:
    call_id = f"call_{step}_0"
    command = f"ls -l src/module_{step}"
    arguments = f'{{"command": "{command}"}}'
    store.append(
        ModelResponse,
        step=step,
        model="m",
        content=None,
        tool_calls=[ToolCall(id=call_id, name="execute_bash", arguments=arguments)],
        prompt_tokens=1000,
        completion_tokens=50,
        cost=0.001,
        latency_s=1.5,
    )
    store.append(Transition, source="planning", dest="acting", trigger="act", reason="a call")
    store.append(Action, step=step, tool_call_id=call_id, args=ExecuteBash(command=command))
    store.append(
        Observation,
        step=step,
        tool_call_id=call_id,
        tool="execute_bash",
        content=_OUTPUT,
        exit_code=0,
    )
    store.append(Transition, source="acting", dest="observing", trigger="observe", reason="1 ok")
    store.append(Transition, source="observing", dest="planning", trigger="plan", reason="next")


def time_cli(args: list[str], env: dict[str, str], repeat: int) -> tuple[float, int]:
    """Median wall time of `python -m controller ARGS`, and the size of its stdout."""
    times, size = [], 0
    for _ in range(repeat):
        started = time.perf_counter()
        proc = subprocess.run(
            [sys.executable, "-m", "controller", *args], env=env, capture_output=True, check=True
        )
        times.append(time.perf_counter() - started)
        size = len(proc.stdout)
    return statistics.median(times), size


def litellm_imports(state: Path, env: dict[str, str]) -> int:
    command = [sys.executable, "-X", "importtime", "-m", "controller", "inspect", RUN_ID]
    proc = subprocess.run([*command, "--state-dir", str(state)], env=env, capture_output=True)
    return proc.stderr.decode().count("litellm")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=10_000)
    parser.add_argument("--repeat", type=int, default=5)
    options = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        state = Path(tmp) / "state"
        run_dir = build_run(state, options.events)
        count = sum(1 for _ in (run_dir / "events.jsonl").open("rb"))
        size = sum(p.stat().st_size for p in run_dir.iterdir())
        # An empty HOME and cwd: no user config or .env changes what is measured.
        env = {**os.environ, "HOME": tmp, "PYTHONPATH": str(REPO)}
        os.chdir(tmp)
        print(f"run of {count:,} events: store {size:,} B, {size * 1000 // count:,} B per 1,000")
        where = ["--state-dir", str(state)]
        for label, args in (
            ("inspect", ["inspect", RUN_ID, *where]),
            ("inspect --json", ["inspect", RUN_ID, "--json", *where]),
            ("list", ["list", *where]),
            ("--version (start-up alone)", ["--version"]),
        ):
            median, out = time_cli(args, env, options.repeat)
            print(f"{label:<28} {median * 1000:6.0f} ms  (median of {options.repeat}, {out:,} B)")
        print(f"litellm imports while inspecting: {litellm_imports(state, env)}")


if __name__ == "__main__":
    main()
