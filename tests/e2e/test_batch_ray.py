"""`runhands batch --ray`: the real CLI against a real local Ray cluster (a head and a
second node, on loopback addresses, in a temp dir of their own), with the scripted model.

- the 20 scripted tasks end on the cluster exactly as on the local thread pool;
- the same with each task's directories copied to its worker and back (no shared storage);
- a Ray worker killed mid-run: Ray runs the task again, the run resumes from its store, the
  task is counted once and no step is lost or repeated;
- Ctrl-C: the runs in flight are cancelled and saved interrupted; the same command again
  resumes them, each task ending once;
- bad input (nothing at the address, Ray not importable): one line, exit 2, nothing made;
  and a batch without --ray never imports Ray.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from state_store.events import RunEnded, RunResumed
from state_store.store import read_events
from tests.batch_tasks import OUTCOMES, BatchModel, task_line, twenty_tasks, write_tasks
from tests.conftest import TEST_API_KEY, Cli, CliResult
from tests.scripted_model import ScriptedModel, Turn

pytestmark = pytest.mark.e2e

RAY = Path(sys.executable).with_name("ray")
NODE_CPUS = 4  # per node: two nodes, 8 runs at once
START_TIMEOUT_S = 240
BATCH_TIMEOUT_S = 900
FIELDS = ("id", "state", "reason", "exit_code", "steps", "attempt")
SOME_FAILED = 8  # the nosandbox task ends on an infrastructure failure
INTERRUPTED = 130


# ---- a local Ray cluster -------------------------------------------------------------------


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@dataclass
class RayCluster:
    """A head and a worker node, each a `ray start --block` of our own (its session)."""

    root: Path  # Ray's --temp-dir, the nodes' logs, and the workers' TMPDIR
    ip: str = ""
    port: int = 0
    nodes: list[subprocess.Popen[bytes]] = field(default_factory=list)

    @property
    def address(self) -> str:
        return f"{self.ip}:{self.port}"

    def start(self, second_node: bool = True) -> None:
        # Loopback addresses other than 127.0.0.1 (Ray replaces that one by the machine's),
        # one pair per xdist worker.
        net = 10 + int(os.environ.get("PYTEST_XDIST_WORKER", "gw0").removeprefix("gw") or 0)
        self.ip, self.port = f"127.0.{net}.2", _free_port()
        self._node(
            "head",
            "--head",
            f"--port={self.port}",
            "--include-dashboard=false",
            f"--dashboard-port={_free_port()}",
            *_client_port(),
        )
        if second_node:
            self._node("worker", f"--address={self.address}")

    def _node(self, name: str, *args: str) -> None:
        ip = self.ip if name == "head" else self.ip.rsplit(".", 1)[0] + ".3"
        log = self.root / f"{name}.log"
        command = [
            str(RAY),
            "start",
            "--block",
            "--disable-usage-stats",
            f"--num-cpus={NODE_CPUS}",
            f"--node-ip-address={ip}",
            f"--temp-dir={self.root / 'ray'}",
            f"--dashboard-agent-listen-port={_free_port()}",
            *args,
        ]
        with open(log, "wb") as out:
            node = subprocess.Popen(
                command,
                stdout=out,
                stderr=subprocess.STDOUT,
                env=self._env(),
                start_new_session=True,
            )
        self.nodes.append(node)
        deadline = time.monotonic() + START_TIMEOUT_S
        while b"Ray runtime started" not in log.read_bytes():
            if node.poll() is not None or time.monotonic() > deadline:
                raise AssertionError(f"ray node {name} did not start:\n{log.read_text()}")
            time.sleep(0.2)

    def _env(self) -> dict[str, str]:
        # Fixed ports of Ray's own, moved so that two clusters can run at once; the workers'
        # temp files (runhands' config dir) land in our directory.
        return {
            **os.environ,
            "TMPDIR": str(self.root / "tmp"),
            "AUTOSCALER_METRIC_PORT": str(_free_port()),
            "DASHBOARD_METRIC_PORT": str(_free_port()),
            "RAY_USAGE_STATS_ENABLED": "0",
        }

    def stop(self) -> None:
        """`ray stop` would stop every cluster of the machine: each node of ours is told to
        stop (SIGTERM to its `ray start --block`), then whatever is left of the sessions we
        started (workers, sandboxes) is killed by pid."""
        sessions = {node.pid for node in self.nodes}
        for node in reversed(self.nodes):
            if node.poll() is None:
                node.terminate()
            try:
                node.wait(timeout=60)
            except subprocess.TimeoutExpired:
                os.killpg(node.pid, signal.SIGKILL)
                node.wait()
        _wait_for(lambda: not _in_sessions(sessions), "the nodes' processes", 30, fail=False)
        for pid in _in_sessions(sessions):
            _kill(pid)
        _wait_for(lambda: not _in_sessions(sessions), "the Ray cluster's processes to end", 30)


def _client_port() -> list[str]:
    """Ray Client's server port (default 10001), where Ray has it (ray[client] and up);
    asked of a new interpreter: this one does not import Ray (the CLI is forked from it)."""
    check = "from ray._private.utils import get_ray_client_dependency_error as e; print(e())"
    answer = subprocess.run([sys.executable, "-c", check], capture_output=True, text=True)
    has_client = answer.stdout.strip() == "None"
    return [f"--ray-client-server-port={_free_port()}"] if has_client else []


def _in_sessions(sessions: set[int]) -> list[int]:
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue
        fields = stat.rsplit(")", 1)[1].split()
        if fields[0] != "Z" and int(fields[3]) in sessions:  # state, ppid, pgrp, session
            found.append(int(entry.name))
    return found


def _kill(pid: int) -> None:
    with contextlib.suppress(ProcessLookupError):
        os.kill(pid, signal.SIGKILL)


@pytest.fixture(scope="module")
def cluster() -> Iterator[RayCluster]:
    # A short path: Ray's sockets live under its temp dir (a socket path has 107 bytes).
    root = Path(tempfile.mkdtemp(prefix="rh-ray-", dir="/tmp"))
    (root / "tmp").mkdir()
    ray = RayCluster(root)
    try:
        ray.start()
        yield ray
    finally:
        ray.stop()
        subprocess.run(["rm", "-rf", str(root)], check=False)


# ---- helpers -----------------------------------------------------------------------------


def _model(policy: BatchModel) -> ScriptedModel:
    model = ScriptedModel(policy)
    model._server.socket.listen(128)  # 8 runs connect at once: more than the default 5
    return model


def _batch(
    cli: Cli,
    model: ScriptedModel,
    tasks: Path,
    out: Path,
    *args: str,
    env: dict[str, str] | None = None,
) -> CliResult:
    common = ["-w", "8", "--retry-wait", "0", "--isolation", "none"]
    return cli.run(
        "batch",
        str(tasks),
        "-o",
        str(out),
        *common,
        *args,
        model=model,
        env=env,
        timeout=BATCH_TIMEOUT_S,
    )


def _results(out: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in (out / "results.jsonl").read_text().splitlines()]


def _outcomes(out: Path) -> dict[str, tuple[Any, ...]]:
    results = _results(out)
    assert len({r["id"] for r in results}) == len(results), "a task counted twice"
    return {r["id"]: tuple(r[f] for f in FIELDS) for r in results}


def _check_outcomes(out: Path, lines: list[dict[str, Any]]) -> None:
    """Every task ends as OUTCOMES says; the flaky one on its second attempt, the sandbox
    failure after its two retries; the token file is gone."""
    outcomes = _outcomes(out)
    assert sorted(outcomes) == sorted(line["id"] for line in lines)
    for line in lines:
        kind = line["task"].split()[-1]
        reason, exit_code, steps = OUTCOMES[kind]
        got = outcomes[line["id"]]
        assert got[2:5] == (reason, exit_code, steps), (line["id"], got)
        assert got[5] == {"flaky": 2, "nosandbox": 3}.get(kind, 1), (line["id"], got)
    assert not (out / ".ray-token").exists()


def _file_bytes(root: Path) -> bytes:
    """Every regular file under root (the cluster's: some come and go meanwhile)."""
    found = []
    for path in root.rglob("*"):
        with contextlib.suppress(OSError):
            if path.is_file() and not path.is_symlink():
                found.append(path.read_bytes())
    return b"".join(found)


def _listed_runs(cli: Cli, runs: Path) -> list[str]:
    listed = cli.run("list", "--json", "--state-dir", str(runs))
    assert listed.returncode == 0, listed.stderr
    return sorted(json.loads(line)["run_id"] for line in listed.stdout.splitlines())


def _steps(out: Path, task_id: str) -> list[str]:
    return (out / "workspaces" / task_id / "steps.txt").read_text().splitlines()


def _check_steps(out: Path, task_ids: list[str]) -> None:
    """Each finished task appended one line per bash step: none lost, none repeated."""
    for task_id in task_ids:
        assert _steps(out, task_id) == [f"{task_id}-0", f"{task_id}-1"], task_id


# ---- the same batch as the thread pool -----------------------------------------------------


def test_the_twenty_tasks_end_on_ray_as_on_threads(
    cli: Cli, cluster: RayCluster, tmp_path: Path
) -> None:
    tasks = write_tasks(tmp_path / "tasks.jsonl", twenty_tasks())
    with _model(BatchModel()) as model:  # a model each: the flaky task fails once in each
        local = _batch(cli, model, tasks, tmp_path / "local")
    assert local.returncode == SOME_FAILED, local.stderr
    with _model(BatchModel()) as model:
        on_ray = _batch(cli, model, tasks, tmp_path / "ray", "--ray", cluster.address)
    assert on_ray.returncode == SOME_FAILED, on_ray.stderr
    out = tmp_path / "ray"
    _check_outcomes(out, twenty_tasks())
    assert _outcomes(out) == _outcomes(tmp_path / "local")
    ids = [line["id"] for line in twenty_tasks()]
    assert _listed_runs(cli, out / "runs") == ids
    finished = [i for i in ids if _outcomes(out)[i][2] == "finished"]
    _check_steps(out, finished)
    assert "is not shared" not in on_ray.stderr  # the driver's OUT is the workers' OUT
    # The key went to the workers as a task argument: nothing of Ray's on disk shows it.
    assert TEST_API_KEY.encode() not in _file_bytes(cluster.root)


def test_without_shared_storage_the_runs_travel_to_the_workers_and_back(
    cli: Cli, cluster: RayCluster, tmp_path: Path
) -> None:
    """RUNHANDS_RAY_STORAGE=copy: what a cluster whose nodes do not share OUT does. One task
    of each kind."""
    kinds = ["steps", "steps", "limit", "agent", "flaky", "nosandbox"]
    lines = [task_line(f"x{n}", kind) for n, kind in enumerate(kinds)]
    tasks = write_tasks(tmp_path / "tasks.jsonl", lines)
    out = tmp_path / "out"
    env = {"RUNHANDS_RAY_STORAGE": "copy"}
    with _model(BatchModel()) as model:
        result = _batch(cli, model, tasks, out, "-w", "3", "--ray", cluster.address, env=env)
    assert result.returncode == SOME_FAILED, result.stderr
    _check_outcomes(out, lines)
    ids = [line["id"] for line in lines]
    assert _listed_runs(cli, out / "runs") == ids
    for task_id in ids:
        assert (out / "logs" / f"{task_id}.log").is_file()
    _check_steps(out, [i for i in ids if _outcomes(out)[i][2] == "finished"])
    assert not list(out.glob(".ray-*"))  # nothing left of the unpacking


# ---- a worker killed mid-run ------------------------------------------------------------------


class SlowFor(BatchModel):
    """BatchModel, each answer to `slow` tasks taking `delay` seconds."""

    def __init__(self, slow: set[str], delay: float) -> None:
        super().__init__()
        self.slow = slow
        self.slow_delay = delay

    def _turn(self, task_id: str, kind: str, done: int) -> Turn:
        turn = super()._turn(task_id, kind, done)
        if task_id in self.slow:
            turn.delay = self.slow_delay
        return turn


def _start_batch(cli: Cli, model: ScriptedModel, tasks: Path, out: Path, *args: str) -> Any:
    env = {**cli.env, "LLM_BASE_URL": model.base_url}
    command = [sys.executable, "-m", "controller", "batch", str(tasks), "-o", str(out)]
    return subprocess.Popen(
        [*command, "--retry-wait", "0", "--isolation", "none", *args],
        cwd=cli.workspace,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def _wait_for(condition: Any, what: str, timeout: float = 300, fail: bool = True) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            assert not fail, f"timed out waiting for {what}"
            return
        time.sleep(0.05)


def _lines(path: Path) -> int:
    try:
        return len(path.read_text().splitlines())
    except OSError:
        return 0


def _past_first_step(out: Path, ids: list[str]) -> int:
    return sum(_lines(out / "workspaces" / i / "steps.txt") >= 1 for i in ids)


def _lock_holder(lock: Path) -> int | None:
    """The pid holding the run's flock (the process driving it), from /proc/locks."""
    inode = lock.stat().st_ino
    for line in Path("/proc/locks").read_text().splitlines():
        parts = line.split()
        if "FLOCK" in parts and parts[5].rsplit(":", 1)[-1] == str(inode):
            return int(parts[4])
    return None


def test_a_killed_worker_is_retried_and_its_run_resumed(
    cli: Cli, cluster: RayCluster, tmp_path: Path
) -> None:
    lines = [task_line(f"k{n}", "steps") for n in range(3)]
    tasks = write_tasks(tmp_path / "tasks.jsonl", lines)
    out = tmp_path / "out"
    with _model(SlowFor({"k0"}, delay=3.0)) as model:
        batch = _start_batch(cli, model, tasks, out, "-w", "2", "--ray", cluster.address)
        try:
            # After its first step, k0's run waits 3 s for the model: its worker is killed.
            _wait_for(lambda: _lines(out / "workspaces" / "k0" / "steps.txt") >= 1, "k0's step")
            pid = _lock_holder(out / "runs" / "k0" / "lock")
            assert pid is not None and pid != batch.pid
            assert Path(f"/proc/{pid}/cmdline").read_bytes().startswith(b"ray::")
            os.kill(pid, signal.SIGKILL)
            _stdout, stderr = batch.communicate(timeout=BATCH_TIMEOUT_S)
        finally:
            if batch.poll() is None:
                batch.kill()
    assert batch.returncode == 0, stderr
    outcomes = _outcomes(out)
    assert sorted(outcomes) == ["k0", "k1", "k2"]
    assert all(o[1:5] == ("finished", "finished", 0, 3) for o in outcomes.values()), outcomes
    assert outcomes["k0"][5] == 1  # a crash is not an attempt's end
    events = read_events(out / "runs" / "k0" / "events.jsonl")
    assert any(isinstance(e, RunResumed) for e in events)
    _check_steps(out, list(outcomes))


# ---- Ctrl-C --------------------------------------------------------------------------------


def test_ctrl_c_saves_the_runs_in_flight_and_the_same_command_goes_on(
    cli: Cli, cluster: RayCluster, tmp_path: Path
) -> None:
    ids = [f"c{n}" for n in range(4)]
    tasks = write_tasks(tmp_path / "tasks.jsonl", [task_line(i, "steps") for i in ids])
    out = tmp_path / "out"
    args = ("-w", "2", "--ray", cluster.address)
    with _model(SlowFor(set(ids), delay=2.0)) as model:
        batch = _start_batch(cli, model, tasks, out, *args)
        try:
            _wait_for(lambda: _past_first_step(out, ids) >= 2, "two runs past their first step")
            batch.send_signal(signal.SIGINT)
            _, stderr = batch.communicate(timeout=BATCH_TIMEOUT_S)
        finally:
            if batch.poll() is None:
                batch.kill()
    assert batch.returncode == INTERRUPTED, stderr
    done = set(_outcomes(out)) if (out / "results.jsonl").exists() else set()
    stopped = [i for i in ids if i not in done and (out / "runs" / i).exists()]
    assert stopped, "no run was in flight"
    for task_id in stopped:  # saved as stopped by the cancel, not cut by a crash
        ends = read_events(out / "runs" / task_id / "events.jsonl")
        assert isinstance(ends[-1], RunEnded) and ends[-1].reason == "interrupted", task_id
    with _model(BatchModel()) as model:
        again = _batch(cli, model, tasks, out, *args)
    assert again.returncode == 0, again.stderr
    outcomes = _outcomes(out)
    assert sorted(outcomes) == ids
    assert all(o[1:5] == ("finished", "finished", 0, 3) for o in outcomes.values()), outcomes
    for task_id in stopped:
        events = read_events(out / "runs" / task_id / "events.jsonl")
        assert any(isinstance(e, RunResumed) for e in events), task_id
    _check_steps(out, ids)


# ---- bad input ---------------------------------------------------------------------------


def test_nothing_at_the_address_is_one_line_and_nothing_runs(cli: Cli, tmp_path: Path) -> None:
    tasks = write_tasks(tmp_path / "tasks.jsonl", [task_line("t0", "steps")])
    out = tmp_path / "out"
    result = cli.run("batch", str(tasks), "-o", str(out), "--ray", "127.0.0.1:1", timeout=300)
    assert result.returncode == 2, result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and "no Ray cluster answers" in lines[0], result.stderr
    assert not (out / "runs").exists()


def test_without_ray_installed_it_says_so(cli: Cli, tmp_path: Path) -> None:
    # An environment where `import ray` fails, as without the package.
    shadow = tmp_path / "no-ray" / "ray"
    shadow.mkdir(parents=True)
    (shadow / "__init__.py").write_text("raise ImportError(\"No module named 'ray'\")\n")
    tasks = write_tasks(tmp_path / "tasks.jsonl", [task_line("t0", "steps")])
    out = tmp_path / "out"
    env = {"PYTHONPATH": str(shadow.parent)}
    result = cli.run("batch", str(tasks), "-o", str(out), "--ray", "auto", env=env, fresh=True)
    assert result.returncode == 2, result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and "pip install 'runhands[ray]'" in lines[0], result.stderr
    assert not (out / "runs").exists()


def test_a_batch_without_ray_never_imports_it(cli: Cli, tmp_path: Path) -> None:
    tasks = write_tasks(tmp_path / "tasks.jsonl", [task_line("t0", "steps")])
    with _model(BatchModel()) as model:
        result = cli.run(
            "batch",
            str(tasks),
            "-o",
            str(tmp_path / "out"),
            "--isolation",
            "none",
            model=model,
            env={"PYTHONPROFILEIMPORTTIME": "1"},
        )
    assert result.returncode == 0, result.stderr
    imported = [line.rsplit("|", 1)[-1].strip() for line in result.stderr.splitlines()]
    assert imported and not [m for m in imported if m == "ray" or m.startswith("ray.")]
