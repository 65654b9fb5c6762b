"""`runhands run --runtime docker` end to end, on the real Docker engine."""

from __future__ import annotations

import os
import subprocess
import sys
import time

import pytest

from state_store.events import Observation, RunResumed
from state_store.store import read_events
from tests.conftest import Cli
from tests.scripted_model import bash, finish

pytestmark = pytest.mark.e2e

UID = 1234


@pytest.fixture(scope="module")
def image() -> str:
    from tests.docker_image import require_base_image

    return require_base_image()


def containers(run_id: str) -> list:
    import docker

    return docker.from_env().containers.list(
        all=True, filters={"label": f"runhands.run_id={run_id}"}
    )


def docker_env(cli: Cli, image: str, **extra: str) -> dict[str, str]:
    return {"RUNTIME": "docker", "SANDBOX_RUNTIME_CONTAINER_IMAGE": image, **extra}


def test_seed_task_in_a_container_as_the_host_user(cli: Cli, scripted, image: str) -> None:
    hi = "printf '#!/usr/bin/env bash\\necho hi\\n' > hi.sh && chmod +x hi.sh && ./hi.sh"
    model = scripted([bash(hi), bash("pwd; id -u; echo $HOME; touch ~/ok"), finish("done")])
    os.chown(cli.workspace, UID, UID)  # the user's own project directory
    env = docker_env(cli, image, SANDBOX_USER_ID=str(UID))
    result = cli.run(
        "run", "-n", "dock", "-t", "write a bash script that prints hi", model=model, env=env
    )
    assert result.returncode == 0, result.stderr
    script = cli.workspace / "hi.sh"
    assert script.stat().st_uid == UID  # no root-owned files in the mounted workspace
    assert subprocess.run([str(script)], capture_output=True, text=True).stdout == "hi\n"
    observations = [
        e
        for e in read_events(cli.state_dir / "dock" / "events.jsonl")
        if isinstance(e, Observation)
    ]
    assert observations[0].content.startswith("hi\n")
    lines = observations[1].content.splitlines()
    assert lines[:2] == ["/workspace", str(UID)]
    assert "completed with exit code 0" in observations[1].content  # HOME is writable
    assert containers("dock") == []  # removed at the end of the run


def test_read_only_mount_refuses_writes(cli: Cli, scripted, image: str, tmp_path) -> None:
    data = tmp_path / "data"
    data.mkdir()
    (data / "in.csv").write_text("a,b\n")
    model = scripted([bash("cat /data/in.csv; echo x > /data/out.txt"), finish()])
    env = docker_env(cli, image, SANDBOX_VOLUMES=f"{cli.workspace}:/workspace:rw,{data}:/data:ro")
    result = cli.run("run", "-t", "summarise", model=model, env=env)
    assert result.returncode == 0, result.stderr
    tool_message = model.requests[1]["messages"][-1]["content"]
    assert tool_message.startswith("a,b\n") and "Read-only file system" in tool_message
    assert not (data / "out.txt").exists()


def test_one_directory_mounted_twice_keeps_the_agents_work(cli: Cli, scripted, image: str) -> None:
    """Mounted read-write at /workspace and read-only at /data: both mounts are there, and
    what the agent writes in /workspace outlives the container."""
    model = scripted([bash("echo work > /workspace/out.txt && cat /data/out.txt"), finish()])
    volumes = f"{cli.workspace}:/workspace:rw,{cli.workspace}:/data:ro"
    env = docker_env(cli, image, SANDBOX_VOLUMES=volumes)
    result = cli.run("run", "-t", "write", model=model, env=env)
    assert result.returncode == 0, result.stderr
    assert (cli.workspace / "out.txt").read_text() == "work\n"
    assert model.requests[1]["messages"][-1]["content"].startswith("work\n")


def test_missing_image_fails_at_init_without_leftovers(cli: Cli, scripted, image: str) -> None:
    model = scripted([finish()])
    env = docker_env(cli, "runhands-no-such-image:never")
    result = cli.run("run", "-n", "noimg", "-t", "x", model=model, env=env)
    assert result.returncode == 4, result.stderr
    assert "runhands-no-such-image:never" in result.stderr
    assert model.requests == [] and containers("noimg") == []


def test_unreachable_engine_is_a_sandbox_failure(cli: Cli, scripted, image: str) -> None:
    env = docker_env(cli, image, DOCKER_HOST="tcp://127.0.0.1:9")
    result = cli.run("run", "-t", "x", model=scripted([finish()]), env=env)
    assert result.returncode == 4, result.stderr


def test_no_image_configured_is_a_usage_error(cli: Cli, image: str) -> None:
    result = cli.run("run", "-t", "x", env={"RUNTIME": "docker"})
    assert result.returncode == 2
    assert "SANDBOX_RUNTIME_CONTAINER_IMAGE" in result.stderr


def test_killed_run_leaves_a_container_that_gc_or_resume_removes(
    cli: Cli, scripted, image: str
) -> None:
    model = scripted([bash("sleep 60"), bash("echo after > after.txt"), finish()])
    env = {
        **cli.env,
        **docker_env(cli, image),
        "LLM_BASE_URL": model.base_url,
        "SANDBOX_SOFT_TIMEOUT": "120",
    }
    proc = subprocess.Popen(
        [sys.executable, "-m", "controller", "run", "-n", "killed", "-t", "x"],
        cwd=cli.workspace,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    log = cli.state_dir / "killed" / "events.jsonl"
    deadline = time.monotonic() + 90
    while time.monotonic() < deadline and b'"sleep 60"' not in (
        log.read_bytes() if log.exists() else b""
    ):
        time.sleep(0.05)
    proc.kill()
    proc.wait()
    assert len(containers("killed")) == 1  # the crash left it behind

    gc = cli.run("gc", env=docker_env(cli, image))
    assert gc.returncode == 0, gc.stderr
    assert "runhands-killed" in gc.stdout and containers("killed") == []

    result = cli.run("resume", "killed", model=model, env=docker_env(cli, image))
    assert result.returncode == 0, result.stderr
    assert (cli.workspace / "after.txt").read_text() == "after\n"
    assert containers("killed") == []


def test_kept_container_is_reattached_on_resume(cli: Cli, scripted, image: str) -> None:
    model = scripted(
        [
            bash("echo state > /tmp/inside.txt"),
            finish("first"),
            bash("cat /tmp/inside.txt"),
            finish("second"),
        ]
    )
    env = docker_env(cli, image, SANDBOX_KEEP_RUNTIME_ALIVE="true")
    assert cli.run("run", "-n", "kept", "-t", "x", model=model, env=env).returncode == 0
    try:
        assert len(containers("kept")) == 1
        # gc leaves it: kept on purpose; and gc of another state directory never sees it.
        assert cli.run("gc", env=env).returncode == 0
        other = {**env, "FILE_STORE_PATH": str(cli.home / "other-state")}
        assert cli.run("gc", env=other).returncode == 0
        assert len(containers("kept")) == 1
        result = cli.run("resume", "kept", "-t", "read it back", model=model, env=env)
        assert result.returncode == 0, result.stderr
        # /tmp inside the container survived: the same container was reattached.
        assert model.requests[-1]["messages"][-1]["content"].startswith("state\n")
        resumed = [
            e
            for e in read_events(cli.state_dir / "kept" / "events.jsonl")
            if isinstance(e, RunResumed)
        ]
        assert not resumed[0].stopped_leftovers
    finally:
        for container in containers("kept"):
            container.remove(force=True)


def test_fork_of_a_container_run_gets_its_own_workspace_mount(
    cli: Cli, scripted, image: str, tmp_path
) -> None:
    """Checkpoints are taken from the host side of the /workspace mount; a fork mounts its
    own directory there, even with the parent's SANDBOX_VOLUMES still in the environment."""
    env = docker_env(cli, image, SANDBOX_VOLUMES=f"{cli.workspace}:/workspace:rw")
    model = scripted(
        [
            bash("echo one > /workspace/one.txt"),
            bash("echo two > /workspace/two.txt"),
            finish("done"),
        ]
    )
    assert cli.run("run", "-n", "dp", "-t", "files", model=model, env=env).returncode == 0
    target = tmp_path / "forked"
    fork_model = scripted([bash("ls /workspace && echo mine > /workspace/mine.txt"), finish("ok")])
    result = cli.run(
        "fork", "dp", "--at", "1", "-n", "df", "-d", str(target), model=fork_model, env=env
    )
    assert result.returncode == 0, result.stderr
    assert sorted(p.name for p in target.iterdir()) == ["mine.txt", "one.txt"]
    assert sorted(p.name for p in cli.workspace.iterdir()) == ["one.txt", "two.txt"]
    listing = [
        e for e in read_events(cli.state_dir / "df" / "events.jsonl") if isinstance(e, Observation)
    ]
    seen = listing[-2].content  # the container saw the fork's files
    assert seen.split()[0] == "one.txt" and "two.txt" not in seen, seen
    assert containers("df") == [] and containers("dp") == []
    diff = cli.run("diff", "df", "--step", "2")
    assert "+++ b/mine.txt" in diff.stdout, diff.stderr
