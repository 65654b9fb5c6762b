"""Figures for `runhands batch` (the thread backend). Prints them; not a test.

    .venv/bin/python bench/bench_batch.py [--quick] [--workers 1 4 16 32] [--latency 1.0]
        [--jitter 0] [--isolation none default]

Every batch is the real CLI (`python -m controller batch TASKS -o OUT -w W`), with
`--isolation none` and with the default isolation (auto: bubblewrap), against a scripted
OpenAI-compatible model on 127.0.0.1 (in this process) that takes --latency seconds per
answer. Each task is 5 steps: 4 bash commands, then finish. A batch at -w W has
max(4, 2 x W) tasks (two waves; --quick: -w 1 and 32, one wave). Every task must finish in
5 steps, or the script stops: nothing is left out of a figure.

1. Throughput speed-up at -w W: tasks per second relative to -w 1 (same isolation). The time
   is the busy span read from the run logs: from the first event of the first run to the
   last event of the last (so the process start-up, ~3.5 s of litellm import, is out; the
   workspace preparation before a run's first event too, except between runs). The
   command's wall time and the speed-up by wall time are shown beside it, and where a
   run's time goes: the model calls as the client timed them, the rest per step, the CPU.
   Target: speed-up at least 0.85 x W.
2. Peak memory of the whole batch: the batch process and every descendant (bubblewrap, the
   shells, their commands, git), sampled from /proc every 0.2 s: RSS summed (a page shared
   by several processes counts once per process: an upper bound) and PSS summed (shared
   pages split between the processes that map them); the batch process's own peak RSS
   (wait4's ru_maxrss). Target at -w 32: under 1.5 GB, against 32 x the peak of one
   `runhands run` of the same task, measured the same way.
3. Time from the batch's process start to the first model request of its W-th run, at the
   server (at -w 32: each of the 32 concurrent runs has called the model), and of its
   first. No target given: printed.

The scripted server is tests/scripted_model.py's ThreadingHTTPServer (a thread per
connection), but its listen backlog is socketserver's default of 5: a burst of 32 new
connections overflows it, and some wait for a SYN retransmit (1 s, then 3 s...) or are
reset. The server here listens with a backlog of 128 (BacklogModel).
"""

from __future__ import annotations

import argparse
import json
import math
import os
import random
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "bench"))

from bench_run import litellm_import_s  # noqa: E402

from state_store.events import ModelResponse, RunEnded  # noqa: E402
from state_store.store import read_events  # noqa: E402
from tests.batch_tasks import BatchModel, task_line, write_tasks  # noqa: E402
from tests.scripted_model import ScriptedModel, Turn  # noqa: E402

STEPS = 5  # 4 bash commands, then finish
KIND = "bench"  # a kind BatchModel has no rule for: a bash command each step
SPEED_UP_TARGET = 0.85  # x W
MEMORY_TARGET_MB = 1536
SAMPLE_S = 0.2
PAGE = os.sysconf("SC_PAGE_SIZE")
TICKS = os.sysconf("SC_CLK_TCK")
# "default": no --isolation flag (auto: workspace-write under bubblewrap, installed here).
ISOLATIONS = {"none": ["--isolation", "none"], "default": []}


class FiveSteps(BatchModel):
    """BatchModel's bash step (one line appended to steps.txt), STEPS - 1 times, then
    finish; the time each task's first request arrived (time.time()). With `jitter` j, a
    call takes delay x (1 + u), u uniform in [-j, j], drawn from the task's id and step
    (the same for every -w): the runs do not stay in step with each other."""

    def __init__(self, delay: float, jitter: float = 0.0) -> None:
        super().__init__(delay)
        self.jitter = jitter
        self.first: dict[str, float] = {}

    def _turn(self, task_id: str, kind: str, done: int) -> Turn:
        self.first.setdefault(task_id, time.time())  # called under the server's lock
        if done >= STEPS - 1:
            finish = [("finish", {"message": f"{task_id} done"})]
            turn = Turn(tool_calls=finish, content=f"[s={done}]")
        else:
            turn = super()._turn(task_id, kind, done)
        u = random.Random(f"{task_id}/{done}").uniform(-self.jitter, self.jitter)
        turn.delay = self.delay * (1 + u)
        return turn


BacklogModel = ScriptedModel  # its server listens with a backlog of 128, not socketserver's 5


class TreeSampler:
    """Peak RSS and PSS summed over a process and its descendants, sampled from /proc."""

    def __init__(self, pid: int) -> None:
        self.pid = pid
        self.peak_rss = 0
        self.peak_pss = 0
        self.peak_procs = 0
        self.at_peak: dict[str, list[int]] = {}
        self.own_cpu_s = 0.0  # the root process alone, at the last sample
        self.cpu_series: list[tuple[float, float]] = []  # (time.time(), own CPU s)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, daemon=True)

    def __enter__(self) -> TreeSampler:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()

    def _loop(self) -> None:
        while True:
            self.sample()
            if self._stop.wait(SAMPLE_S):
                return

    def sample(self) -> None:
        rss = pss = 0
        kinds: dict[str, list[int]] = {}  # command name -> [processes, RSS, PSS]
        tree = _descendants(self.pid)
        for pid, name in tree:
            if pid == self.pid:
                self._cpu_ticks(pid)
            pages = _read(f"/proc/{pid}/statm")
            if not pages:
                continue  # gone meanwhile
            resident = int(pages.split()[1]) * PAGE
            proportional = _pss(pid, resident)
            rss += resident
            pss += proportional
            kind = kinds.setdefault(name, [0, 0, 0])
            kind[0] += 1
            kind[1] += resident
            kind[2] += proportional
        if rss > self.peak_rss:
            self.peak_rss = rss
            self.at_peak = kinds
        self.peak_pss = max(self.peak_pss, pss)
        self.peak_procs = max(self.peak_procs, len(tree))

    def _cpu_ticks(self, pid: int) -> None:
        """The process's own user + system time so far (its children's not included)."""
        stat = _read(f"/proc/{pid}/stat")
        if stat:
            fields = stat[stat.rfind(")") + 2 :].split()
            self.own_cpu_s = (int(fields[11]) + int(fields[12])) / TICKS
            self.cpu_series.append((time.time(), self.own_cpu_s))

    def cores(self, start: float, end: float) -> float:
        """The root process's CPU use from `start` to `end` (time.time()), in cores, over the
        samples within."""
        inside = [(t, cpu) for t, cpu in self.cpu_series if start <= t <= end]
        if len(inside) < 2:
            return float("nan")
        (t0, c0), (t1, c1) = inside[0], inside[-1]
        return (c1 - c0) / (t1 - t0)

    def breakdown(self) -> str:
        """The processes of the peak sample (by RSS) by command name: count, RSS, PSS."""
        kinds = sorted(self.at_peak.items(), key=lambda kv: -kv[1][1])
        return ", ".join(
            f"{name} x{n} {rss / 2**20:.0f}/{pss / 2**20:.0f} MB" for name, (n, rss, pss) in kinds
        )


def _read(path: str) -> str:
    try:
        with open(path) as f:
            return f.read()
    except OSError:
        return ""


def _pss(pid: int, resident: int) -> int:
    """PSS from smaps_rollup (readable for our own user's dumpable processes, and for every
    process as root); RSS when it cannot be read."""
    for line in _read(f"/proc/{pid}/smaps_rollup").splitlines():
        if line.startswith("Pss:"):
            return int(line.split()[1]) * 1024
    return resident


def _descendants(root: int) -> list[tuple[int, str]]:
    """The process and its descendants: (pid, command name). A child of `root` still
    running root's program is one between fork and exec: a vfork child shares root's
    memory, a fork child its pages; either way it is not counted again."""
    children: dict[int, list[int]] = {}
    names: dict[int, str] = {}
    for entry in os.scandir("/proc"):
        if not entry.name.isdigit():
            continue
        stat = _read(f"/proc/{entry.name}/stat")
        if stat:
            pid, close = int(entry.name), stat.rfind(")")
            names[pid] = stat[stat.find("(") + 1 : close]
            children.setdefault(int(stat[close + 2 :].split()[1]), []).append(pid)
    if root not in names:
        return []
    found = [(root, names[root])]
    todo = [c for c in children.get(root, []) if names[c] != names[root]]
    while todo:
        pid = todo.pop()
        found.append((pid, names[pid]))
        todo.extend(children.get(pid, []))
    return found


@dataclass
class Figures:
    isolation: str
    workers: int
    tasks: int
    span_s: float  # first event of the first run to the last event of the last
    wall_s: float  # the command, process start to exit
    mean_task_s: float  # a run's first event to its last, averaged
    call_s: float  # a model call as the client saw it (ModelResponse.latency_s), averaged
    other_s: float  # per step: a run's time that is not a model call, averaged
    cpu_s: float  # user + system of the batch process and the children it reaped (wait4)
    own_cores: float  # CPU of the batch process alone during the span, in cores
    load: float  # the 1-minute load average when the batch started
    runs_from_s: float  # process start to the first event of the first run
    first_request_s: float  # process start to the first model request of the first run
    all_started_s: float  # ... of the W-th run
    peak_rss_mb: float  # summed over the tree
    peak_pss_mb: float
    own_rss_mb: float  # the batch process alone (wait4)
    peak_procs: int
    at_peak: str  # the peak sample's processes by command name
    harness_cpu_s: float  # this process (the scripted server and the sampler)

    @property
    def rate(self) -> float:
        return self.tasks / self.span_s

    @property
    def wall_rate(self) -> float:
        return self.tasks / self.wall_s


def environment(home: Path, model: ScriptedModel) -> dict[str, str]:
    return {
        **os.environ,
        "HOME": str(home),
        "LLM_MODEL": "openai/bench",
        "LLM_API_KEY": "bench-key",
        "LLM_BASE_URL": model.base_url,
    }


def run_batch(
    workers: int, isolation: str, latency: float, per_worker: int, jitter: float = 0.0
) -> Figures:
    count = max(4, per_worker * workers)
    with tempfile.TemporaryDirectory(prefix="bench-batch-", dir="/var/tmp") as tmp:
        root = Path(tmp)
        ids = [f"t{n:03d}" for n in range(count)]
        tasks = write_tasks(root / "tasks.jsonl", [task_line(i, KIND) for i in ids])
        out = root / "out"
        policy = FiveSteps(latency, jitter)
        with BacklogModel(policy) as model:
            cmd = [sys.executable, "-m", "controller", "batch", str(tasks), "-o", str(out)]
            cmd += ["-w", str(workers), *ISOLATIONS[isolation]]
            with open(root / "stderr.txt", "w") as err:
                load = os.getloadavg()[0]
                harness = time.process_time()  # this process: the server, the sampler
                started = time.time()
                proc = subprocess.Popen(
                    cmd, cwd=root, env=environment(root, model), stdout=err, stderr=err
                )
                with TreeSampler(proc.pid) as sampler:
                    # wait4: this child's own peak RSS, not the largest of all children so far
                    _, status, usage = os.wait4(proc.pid, 0)
                wall = time.time() - started
                harness = time.process_time() - harness
        log = (root / "stderr.txt").read_text()
        if status != 0:
            sys.exit(f"the batch failed (status {status}):\n{log[-3000:]}")
        check_results(out, ids, log)
        runs = [RunTimes.read(out / "runs" / i / "events.jsonl") for i in ids]
        firsts = sorted(policy.first[i] for i in ids)
    calls = sum(r.calls for r in runs)
    return Figures(
        isolation=isolation,
        workers=workers,
        tasks=count,
        span_s=max(r.end for r in runs) - min(r.start for r in runs),
        wall_s=wall,
        mean_task_s=sum(r.end - r.start for r in runs) / count,
        call_s=sum(r.model_s for r in runs) / calls,
        other_s=sum(r.end - r.start - r.model_s for r in runs) / calls,
        cpu_s=usage.ru_utime + usage.ru_stime,
        own_cores=sampler.cores(min(r.start for r in runs), max(r.end for r in runs)),
        load=load,
        runs_from_s=min(r.start for r in runs) - started,
        first_request_s=firsts[0] - started,
        all_started_s=firsts[min(workers, count) - 1] - started,
        peak_rss_mb=sampler.peak_rss / 2**20,
        peak_pss_mb=sampler.peak_pss / 2**20,
        own_rss_mb=usage.ru_maxrss / 1024,
        peak_procs=sampler.peak_procs,
        at_peak=sampler.breakdown(),
        harness_cpu_s=harness,
    )


def check_results(out: Path, ids: list[str], log: str) -> None:
    """Every task finished, in STEPS steps: nothing is left out of the figures silently."""
    lines = (out / "results.jsonl").read_text().splitlines()
    results = {r["id"]: r for r in map(json.loads, lines)}
    bad = [
        f"{i}: {results[i]['reason']}, {results[i]['steps']} steps" if i in results else i
        for i in ids
        if i not in results or results[i]["reason"] != "finished" or results[i]["steps"] != STEPS
    ]
    if bad:
        sys.exit(f"tasks that did not finish in {STEPS} steps: {bad[:5]}\n{log[-3000:]}")


@dataclass
class RunTimes:
    start: float  # the run's first event
    end: float  # its last (run_ended)
    model_s: float  # its model calls, as the client timed them
    calls: int

    @staticmethod
    def read(path: Path) -> RunTimes:
        events = read_events(path)
        assert isinstance(events[-1], RunEnded), path
        calls = [e.latency_s for e in events if isinstance(e, ModelResponse)]
        return RunTimes(events[0].ts, events[-1].ts, sum(calls), len(calls))


def single_run(isolation: str, latency: float) -> tuple[float, float, float]:
    """One `runhands run` of the same 5-step task: peak RSS and PSS of its tree, and its
    own peak RSS, in MB."""
    with tempfile.TemporaryDirectory(prefix="bench-batch-run-", dir="/var/tmp") as tmp:
        root = Path(tmp)
        with BacklogModel(FiveSteps(latency)) as model:
            cmd = [sys.executable, "-m", "controller", "run", "-n", "single"]
            cmd += ["-t", f"task single kind {KIND}", *ISOLATIONS[isolation]]
            with open(root / "stderr.txt", "w") as err:
                proc = subprocess.Popen(
                    cmd, cwd=root, env=environment(root, model), stdout=err, stderr=err
                )
                with TreeSampler(proc.pid) as sampler:
                    _, status, usage = os.wait4(proc.pid, 0)
        if status != 0:
            sys.exit(f"runhands run failed: {(root / 'stderr.txt').read_text()[-3000:]}")
    return sampler.peak_rss / 2**20, sampler.peak_pss / 2**20, usage.ru_maxrss / 1024


def verdict(ok: bool) -> str:
    return "PASS" if ok else "MISS"


def speed_ups(rows: list[Figures], r: Figures) -> tuple[float, float]:
    """Tasks per second at r's -w over -w 1's (same isolation): by span, by wall time."""
    base = next((b for b in rows if b.isolation == r.isolation and b.workers == 1), None)
    if base is None:
        return float("nan"), float("nan")
    return r.rate / base.rate, r.wall_rate / base.wall_rate


def report(rows: list[Figures], singles: dict[str, tuple[float, float, float]]) -> None:
    print("\n1. throughput")
    print(
        f"{'isolation':<10}{'-w':>3}{'tasks':>6}{'load':>6}{'span s':>8}{'tasks/s':>8}"
        f"{'speed-up':>9}{'target':>7}{'':>5}{'wall s':>8}{'by wall':>8}{'task s':>7}"
        f"{'call s':>7}{'other':>7}{'CPU s':>7}{'cores':>6}{'bench':>6}"
    )
    for r in rows:
        speed, by_wall = speed_ups(rows, r)
        target = SPEED_UP_TARGET * r.workers
        mark = verdict(speed >= target) if r.workers > 1 and not math.isnan(speed) else ""
        print(
            f"{r.isolation:<10}{r.workers:>3}{r.tasks:>6}{r.load:>6.1f}{r.span_s:>8.2f}"
            f"{r.rate:>8.2f}{speed:>8.2f}x{target:>6.1f}x {mark:<4}{r.wall_s:>8.2f}"
            f"{by_wall:>7.2f}x{r.mean_task_s:>7.2f}{r.call_s:>7.2f}{r.other_s:>7.2f}"
            f"{r.cpu_s / r.tasks:>7.2f}{r.own_cores:>6.2f}{r.harness_cpu_s / r.wall_s:>6.2f}"
        )
    print(
        "   span: the first event of the first run to the last event of the last (run logs);\n"
        "   speed-up: tasks/s over -w 1's, same isolation; target 0.85 x W.\n"
        "   wall: the command, process start to exit (with the import of litellm); by wall:\n"
        "   the speed-up by wall time. task s: a run's first to last event, mean; call s: a\n"
        "   model call as the client timed it (the server takes the latency), mean; other: a\n"
        "   step's time outside its model call (command, checkpoint, saves), mean; CPU s: user\n"
        "   + system of the batch process and the children it reaped, per task (with the\n"
        "   import); cores: the batch process's own CPU during the span, in cores (its Python\n"
        "   threads share one GIL: near 1 it is the limit); bench: this script's own CPU (the\n"
        "   scripted server, the sampler) during the command, in cores; load: the machine's\n"
        "   1-minute load average when the batch started (other work on the machine)."
    )
    print("\n2. memory and 3. start-up")
    print(
        f"{'isolation':<10}{'-w':>3}{'RSS MB':>8}{'PSS MB':>8}{'own MB':>8}{'procs':>6}"
        f"{'1st run s':>10}{'1st req s':>10}{'W-th req s':>11}"
    )
    for r in rows:
        print(
            f"{r.isolation:<10}{r.workers:>3}{r.peak_rss_mb:>8.0f}{r.peak_pss_mb:>8.0f}"
            f"{r.own_rss_mb:>8.0f}{r.peak_procs:>6}{r.runs_from_s:>10.2f}"
            f"{r.first_request_s:>10.2f}{r.all_started_s:>11.2f}"
        )
    print(
        "   RSS / PSS: peak, summed over the batch process and all its descendants (sampled\n"
        f"   every {SAMPLE_S:g} s); own: the batch process alone (wait4's ru_maxrss); procs: most\n"
        "   processes in the tree at once; 1st run: from the batch's process start to its\n"
        "   first run's first event (the import of litellm is before); 1st / W-th req: from\n"
        "   the process start to the first model request of its first / W-th run (at the\n"
        "   server)."
    )
    for isolation, (rss, pss, own) in singles.items():
        print(
            f"   one `runhands run` of the same task, isolation {isolation}: peak RSS {rss:.0f} "
            f"MB summed over its tree (PSS {pss:.0f} MB; the process alone {own:.0f} MB); "
            f"32 of them: ~{32 * rss / 1024:.1f} GB"
        )
    print("\ntargets")
    for r in rows:
        if r.workers != 32:
            continue
        speed, _ = speed_ups(rows, r)
        print(f"-w 32, isolation {r.isolation}:")
        print(
            f"  1. speed-up {speed:.2f}x (target >= {SPEED_UP_TARGET * 32:.1f}x): "
            f"{verdict(speed >= SPEED_UP_TARGET * 32)}"
        )
        print(
            f"  2. peak memory {r.peak_rss_mb:.0f} MB RSS summed ({r.peak_pss_mb:.0f} MB PSS), "
            f"target < {MEMORY_TARGET_MB} MB: {verdict(r.peak_rss_mb < MEMORY_TARGET_MB)}"
        )
        print(f"     at the peak (name xN RSS/PSS): {r.at_peak}")
        print(
            f"  3. batch start -> first model request of the 32nd run: {r.all_started_s:.2f} s "
            f"(of the first run: {r.first_request_s:.2f} s); no target given"
        )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="-w 1 and 32, one wave each")
    parser.add_argument("--workers", type=int, nargs="+", default=[1, 4, 16, 32])
    parser.add_argument("--latency", type=float, default=1.0, help="model seconds per call")
    parser.add_argument("--per-worker", type=int, default=2, help="tasks per worker (waves)")
    parser.add_argument(
        "--jitter",
        type=float,
        default=0.0,
        help="each call takes latency x (1 + u), u uniform in [-J, J] (default 0: the runs "
        "stay in step)",
    )
    parser.add_argument(
        "--isolation", choices=list(ISOLATIONS), nargs="+", default=list(ISOLATIONS)
    )
    args = parser.parse_args()
    if args.quick:
        args.workers, args.per_worker = [1, 32], 1
    print(
        f"{os.cpu_count()} CPUs; load average {os.getloadavg()[0]:.2f}; import litellm alone: "
        f"{litellm_import_s():.2f} s; model latency {args.latency:g} s (jitter {args.jitter:g}); "
        f"{STEPS}-step tasks"
    )
    rows = []
    for isolation in args.isolation:
        for workers in args.workers:
            rows.append(run_batch(workers, isolation, args.latency, args.per_worker, args.jitter))
            r = rows[-1]
            print(
                f"  {isolation}, -w {workers}: {r.tasks} tasks in {r.span_s:.2f} s "
                f"(wall {r.wall_s:.2f} s)",
                flush=True,
            )
    singles = {isolation: single_run(isolation, args.latency) for isolation in args.isolation}
    report(rows, singles)


if __name__ == "__main__":
    main()
