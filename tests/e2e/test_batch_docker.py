"""`runhands batch` on the docker runtime, end to end, on the real Docker engine: a SWE-bench
instance (`--format swe-bench`) made locally, tasks with an image, setup and eval commands,
and a batch killed while a container runs."""

from __future__ import annotations

import io
import json
import os
import re
import subprocess
import sys
import tarfile
import time
import uuid
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from sandbox.docker_engine import LABEL_RUN, LABEL_SCOPE
from state_store.events import Checkpoint, RunResumed
from state_store.store import read_events
from tests.conftest import Cli
from tests.fixed_script import Step, bash, edit, fixed_script
from tests.scripted_model import ScriptedModel, Turn

pytestmark = pytest.mark.e2e

# The instance's repository, owned in its image by a user that is nobody here.
IMAGE_OWNER = 1234
CALC = "add() { echo $(( $1 - $2 )); }\n"  # the bug
TEST = """\
#!/usr/bin/env bash
source "$(dirname "$0")/lib/calc.sh"
got=$(add 2 3)
if [ "$got" = 5 ]; then echo PASS; else echo "FAIL: add 2 3 gave $got"; exit 1; fi
"""
_GIT_ENV = {
    "GIT_CONFIG_GLOBAL": os.devnull,
    "GIT_CONFIG_NOSYSTEM": "1",
    "GIT_AUTHOR_NAME": "t",
    "GIT_AUTHOR_EMAIL": "t@example.invalid",
    "GIT_COMMITTER_NAME": "t",
    "GIT_COMMITTER_EMAIL": "t@example.invalid",
}


@pytest.fixture(scope="module")
def image() -> str:
    from tests.docker_image import require_base_image

    return require_base_image()


# -- helpers --------------------------------------------------------------------------------


def containers(out: Path, run_id: str | None = None) -> list:
    """The containers runhands made for the batch in `out` (for one of its tasks)."""
    import docker

    labels = [f"{LABEL_SCOPE}={(out / 'runs').resolve()}"]
    labels += [f"{LABEL_RUN}={run_id}"] if run_id else []
    return docker.from_env().containers.list(all=True, filters={"label": labels})


@pytest.fixture
def out(tmp_path: Path) -> Iterator[Path]:
    """The batch's output directory; whatever container a failed test left there is
    removed."""
    yield tmp_path / "out"
    if (tmp_path / "out" / "runs").exists():
        for container in containers(tmp_path / "out"):
            container.remove(force=True)


class TaskModel:
    """A scripted model's policy: each task ("task ID: ...") follows its own fixed script
    (by the answers its request shows); requests are counted per task."""

    _TASK = re.compile(r"task (\S+?):")

    def __init__(self, scripts: dict[str, list[Step]]) -> None:
        self.policies = {task: fixed_script(steps, Path("/")) for task, steps in scripts.items()}
        self.requests: Counter[str] = Counter()
        self.bodies: dict[str, list[dict[str, Any]]] = {}

    def __call__(self, body: dict[str, Any]) -> Turn:
        task = self._task_of(body["messages"])
        self.requests[task] += 1
        self.bodies.setdefault(task, []).append(body)
        return self.policies[task](body)

    def _task_of(self, messages: list[dict[str, Any]]) -> str:
        for message in messages:
            if message["role"] == "user":
                found = self._TASK.search(json.dumps(message["content"]))
                if found:
                    return found.group(1)
        raise AssertionError("no task in the request")

    def tool_outputs(self, task: str) -> list[str]:
        """What the task's tool calls returned, as the model was shown it, in order."""
        last = self.bodies[task][-1]["messages"]
        return [json.dumps(m["content"]) for m in last if m["role"] == "tool"]


@pytest.fixture
def model_for() -> Iterator[Any]:
    servers: list[ScriptedModel] = []

    def start(scripts: dict[str, list[Step]]) -> tuple[ScriptedModel, TaskModel]:
        policy = TaskModel(scripts)
        server = ScriptedModel(policy).__enter__()
        servers.append(server)
        return server, policy

    yield start
    for server in servers:
        server.__exit__(None, None, None)


def write_lines(path: Path, lines: list[dict[str, Any]]) -> Path:
    path.write_text("".join(json.dumps(line) + "\n" for line in lines))
    return path


def read_lines(path: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in path.read_text().splitlines()]


def git(*args: str, cwd: Path, stdin: str | None = None) -> str:
    env = {"PATH": os.environ["PATH"], "HOME": str(cwd), **_GIT_ENV}
    done = subprocess.run(
        ["git", *args], cwd=cwd, env=env, input=stdin, capture_output=True, text=True, check=True
    )
    return done.stdout.strip()


def make_calc_repo(path: Path) -> str:
    """A git repository whose test fails (add() subtracts); its commit."""
    (path / "lib").mkdir(parents=True)
    (path / "lib" / "calc.sh").write_text(CALC)
    (path / "test.sh").write_text(TEST)
    git("init", "-q", cwd=path)
    git("add", ".", cwd=path)
    git("commit", "-q", "-m", "calc", cwd=path)
    return git("rev-parse", "HEAD", cwd=path)


def build_instance_image(base: str, repo: Path) -> str:
    """An image FROM `base` holding `repo` at /testbed (its working directory), as a
    SWE-bench image does; built from a local context only (no registry)."""
    import docker

    tag = f"runhands-test-swe-calc:{uuid.uuid4().hex[:10]}"
    dockerfile = (
        f"FROM {base}\nCOPY --chown={IMAGE_OWNER}:{IMAGE_OWNER} testbed /testbed\n"
        "WORKDIR /testbed\n"
    ).encode()
    context = io.BytesIO()
    with tarfile.open(fileobj=context, mode="w") as tar:
        info = tarfile.TarInfo("Dockerfile")
        info.size = len(dockerfile)
        tar.addfile(info, io.BytesIO(dockerfile))
        tar.add(repo, arcname="testbed")
    context.seek(0)
    docker.from_env().images.build(
        fileobj=context, custom_context=True, tag=tag, rm=True, forcerm=True, pull=False
    )
    return tag


def run_test_script(checkout: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(["bash", "test.sh"], cwd=checkout, capture_output=True, text=True)


# -- SWE-bench ------------------------------------------------------------------------------


def test_swe_bench_instance_gives_a_prediction_that_fixes_it(
    cli: Cli, model_for, image: str, tmp_path: Path, out: Path
) -> None:
    import docker

    repo = tmp_path / "calc"
    base_commit = make_calc_repo(repo)
    instance_image = build_instance_image(image, repo)
    try:
        instance = {
            "instance_id": "local__calc-1",
            "problem_statement": "task local__calc-1: add() subtracts; `bash test.sh` fails.",
            "repo": "local/calc",
            "base_commit": base_commit,
            "version": "1.0",  # a field runhands does not read
        }
        instances = write_lines(tmp_path / "instances.jsonl", [instance])
        steps: list[Step] = [
            [bash("bash test.sh")],
            # sed -i writes a new file in lib/, which the image gave to another user
            [bash("sed -i 's/ - / + /' lib/calc.sh && cat lib/calc.sh")],
            [edit(command="create", path="/testbed/CHANGES", file_text="add() adds.\n")],
            # A file that is not UTF-8: its bytes cannot be in a JSON line as they are.
            [bash("printf 'caf\\351\\n' > NOTES.latin1")],
            [bash("bash test.sh")],
            [("finish", {"message": "fixed add()"})],
        ]
        server, model = model_for({"local__calc-1": steps})
        args = ("batch", str(instances), "--format", "swe-bench", "-o", str(out), "-w", "1")
        args += ("--image-pattern", instance_image)
        result = cli.run(*args, model=server, timeout=300)
        assert result.returncode == 0, result.stdout + result.stderr

        shown = model.tool_outputs("local__calc-1")
        assert "FAIL: add 2 3 gave -1" in shown[0] and "PASS" in shown[4], shown
        (line,) = read_lines(out / "preds.jsonl")
        assert line["instance_id"] == "local__calc-1"
        assert line["model_name_or_path"] == cli.env["LLM_MODEL"]
        patch = line["model_patch"]
        assert "+++ b/lib/calc.sh" in patch and "+++ b/CHANGES" in patch, patch
        assert "+caf\ufffd\n" in patch  # the byte that is not UTF-8, replaced
        assert (out / "patches" / "local__calc-1.patch").read_bytes().count(b"+caf\xe9\n") == 1

        # The patch applies to a clean checkout at base_commit and fixes it.
        clean = tmp_path / "clean"
        git("clone", "-q", str(repo), str(clean), cwd=tmp_path)
        git("checkout", "-q", "--detach", base_commit, cwd=clean)
        assert run_test_script(clean).returncode == 1
        git("apply", "--whitespace=nowarn", "-", cwd=clean, stdin=patch)
        fixed = run_test_script(clean)
        assert fixed.returncode == 0 and fixed.stdout == "PASS\n", fixed.stdout + fixed.stderr
        assert (clean / "CHANGES").read_text() == "add() adds.\n"

        (ended,) = read_lines(out / "results.jsonl")
        assert ended["id"] == "local__calc-1" and ended["reason"] == "finished"
        assert ended["exit_code"] == 0 and ended["patch"] == "patches/local__calc-1.patch"
        assert ended["steps"] == 6
        # The workspace copied out of the image is the batch user's, and git here reads it:
        # the run's patch is relative to the image's commit.
        workspace = out / "workspaces" / "local__calc-1"
        assert {p.stat().st_uid for p in workspace.rglob("*")} == {os.getuid()}
        events = read_events(out / "runs" / "local__calc-1" / "events.jsonl")
        first = next(e for e in events if isinstance(e, Checkpoint))
        assert first.base_commit == base_commit
        # The run's container, and the one the repository was copied out of, are gone.
        assert containers(out, "local__calc-1") == []
        client = docker.from_env()
        assert client.containers.list(all=True, filters={"ancestor": instance_image}) == []

        # The same command again: the task has its line, nothing runs, nothing is doubled.
        requests = sum(model.requests.values())
        again = cli.run(*args, model=server, timeout=300)
        assert again.returncode == 0, again.stdout + again.stderr
        assert sum(model.requests.values()) == requests
        assert read_lines(out / "preds.jsonl") == [line]
        assert len(read_lines(out / "results.jsonl")) == 1
    finally:
        docker.from_env().images.remove(instance_image, force=True)


def test_swe_bench_bad_image_pattern_is_a_usage_error(cli: Cli, tmp_path: Path) -> None:
    instance = {"instance_id": "a__b-1", "problem_statement": "x"}
    instances = write_lines(tmp_path / "instances.jsonl", [instance])
    out = tmp_path / "out"
    args = ("batch", str(instances), "--format", "swe-bench", "-o", str(out))
    result = cli.run(*args, "--image-pattern", "img:{id}")
    assert result.returncode == 2, result.stderr
    assert result.stderr.count("\n") == 1 and "--image-pattern 'img:{id}'" in result.stderr
    assert not out.exists()


# -- setup and eval -------------------------------------------------------------------------


def test_image_tasks_run_setup_and_eval_in_containers(
    cli: Cli, model_for, image: str, tmp_path: Path, out: Path
) -> None:
    in_container = "test -f /.dockerenv"  # the engine puts it in every container
    tasks = [
        {
            "id": "ev",
            "task": "task ev: write 42 to result.txt",
            "image": image,
            "eval": f"{in_container} && pwd && cat result.txt && test $(cat result.txt) = 42",
        },
        {
            "id": "ev-fails",
            "task": "task ev-fails: do nothing",
            "image": image,
            "eval": "echo checking && exit 3",
        },
        {
            "id": "su",
            "task": "task su: look at what setup left",
            "image": image,
            "setup": [
                f"{in_container} && echo seeded-in-$(pwd) > seeded.txt",
                "mkdir -p build && echo 7 > build/n",
            ],
        },
        {
            "id": "su-fails",
            "task": "task su-fails: never seen by the model",
            "image": image,
            "setup": ["echo preparing", "echo broken >&2; exit 7", "echo never > never.txt"],
        },
    ]
    tasks_file = write_lines(tmp_path / "tasks.jsonl", tasks)
    server, model = model_for(
        {
            "ev": [[bash("echo 42 > result.txt")], [("finish", {"message": "ok"})]],
            "ev-fails": [[("finish", {"message": "nothing"})]],
            "su": [[bash("cat seeded.txt build/n")], [("finish", {"message": "seen"})]],
            "su-fails": [[("finish", {"message": "unreachable"})]],
        }
    )
    result = cli.run("batch", str(tasks_file), "-o", str(out), "-w", "2", model=server, timeout=300)
    assert result.returncode == 8, result.stdout + result.stderr  # su-fails: setup failed

    ended = {line["id"]: line for line in read_lines(out / "results.jsonl")}
    assert sorted(ended) == ["ev", "ev-fails", "su", "su-fails"]

    ev = ended["ev"]
    assert ev["reason"] == "finished" and ev["eval"]["exit_code"] == 0, ev
    assert ev["eval"]["output_tail"].split() == ["/workspace", "42"], ev["eval"]
    assert ev["eval"]["command"] == tasks[0]["eval"]
    failing = ended["ev-fails"]["eval"]
    assert failing["exit_code"] == 3 and "checking" in failing["output_tail"], failing

    assert ended["su"]["reason"] == "finished" and ended["su"]["eval"] is None
    assert "seeded-in-/workspace\\n7" in model.tool_outputs("su")[0], model.tool_outputs("su")
    assert (out / "workspaces" / "su" / "seeded.txt").read_text() == "seeded-in-/workspace\n"

    broken = ended["su-fails"]
    assert broken["reason"] == "setup" and broken["run_id"] == "", broken
    assert "exit 7" in broken["message"] and "broken" in broken["message"], broken
    assert model.requests["su-fails"] == 0
    assert not (out / "workspaces" / "su-fails" / "never.txt").exists()
    assert not (out / "runs" / "su-fails").exists()

    summary = json.loads((out / "summary.json").read_text())
    assert summary["eval_passed"] == 1 and summary["failed"] == 1, summary
    assert containers(out) == []  # setup's, the runs', the evals': all removed


# -- a batch killed under a container --------------------------------------------------------


def test_gc_removes_the_container_of_a_killed_batch_which_then_resumes(
    cli: Cli, model_for, image: str, tmp_path: Path, out: Path
) -> None:
    tasks_file = write_lines(
        tmp_path / "tasks.jsonl",
        [{"id": "slow", "task": "task slow: take your time", "image": image}],
    )
    server, model = model_for(
        {
            "slow": [
                [bash("echo before > before.txt && sleep 300")],
                [bash("echo after > after.txt")],
                [("finish", {"message": "done"})],
            ]
        }
    )
    env = {**cli.env, "LLM_BASE_URL": server.base_url, "SANDBOX_SOFT_TIMEOUT": "600"}
    command = [sys.executable, "-m", "controller", "batch", str(tasks_file), "-o", str(out)]
    log = tmp_path / "first-batch.log"
    with open(log, "wb") as output:
        proc = subprocess.Popen(
            command, cwd=cli.workspace, env=env, stdout=output, stderr=subprocess.STDOUT
        )
        try:
            # Until the command runs in the container: its first output is saved there.
            workspace = out / "workspaces" / "slow"
            deadline = time.monotonic() + 240
            while not (workspace / "before.txt").exists() or not containers(out, "slow"):
                assert proc.poll() is None, log.read_text()
                assert time.monotonic() < deadline, log.read_text()
                time.sleep(0.1)
        finally:
            proc.kill()
            proc.wait()
    assert len(containers(out, "slow")) == 1  # the kill left it running
    assert not (out / "results.jsonl").read_bytes()

    gc = cli.run("gc", "--state-dir", str(out / "runs"))
    assert gc.returncode == 0, gc.stderr
    assert "runhands-slow-" in gc.stdout and containers(out, "slow") == [], gc.stdout

    again = cli.run("batch", str(tasks_file), "-o", str(out), model=server, env=env, timeout=300)
    assert again.returncode == 0, again.stdout + again.stderr
    (ended,) = read_lines(out / "results.jsonl")
    assert ended["id"] == "slow" and ended["reason"] == "finished", ended
    events = read_events(out / "runs" / "slow" / "events.jsonl")
    assert any(isinstance(e, RunResumed) for e in events)  # resumed, not started again
    assert (workspace / "before.txt").read_text() == "before\n"
    assert (workspace / "after.txt").read_text() == "after\n"
    assert containers(out, "slow") == []
    # The model was told the cut command may have run, then went on from there.
    cut, after = model.tool_outputs("slow")
    assert "interrupted" in cut and "exit code 0" in after, (cut, after)
    assert model.requests["slow"] == 3
