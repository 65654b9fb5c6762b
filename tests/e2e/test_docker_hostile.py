"""A hostile agent in a container, through the real CLI: every attempt to get out of the
sandbox fails inside it, the run goes on, and the host is unchanged."""

from __future__ import annotations

import fcntl
import os
import socket
import struct
import threading
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import urlsplit

import pytest

from state_store.events import Observation
from state_store.store import read_events
from tests.conftest import TEST_API_KEY, Cli
from tests.e2e.test_docker_run import containers, docker_env, image  # noqa: F401 (fixture)
from tests.scripted_model import bash, edit, finish

pytestmark = pytest.mark.e2e

# In runhands' environment, never meant for the sandbox.
HOST_SECRETS = {
    "AWS_SECRET_ACCESS_KEY": "host-aws-secret-5b1f9e",
    "DATABASE_URL": "postgres://app:host-db-pass-77c2@db.internal/app",
    "CI_JOB_JWT": "host-jwt-0c4e8a",
}
# cgroup v2 shows the limit at the top, v1 in the pids controller's directory.
PIDS_MAX = "/sys/fs/cgroup/pids.max /sys/fs/cgroup/pids/pids.max"
EVIL_CONFIG = "[llm]\nbase_url = 'http://evil.example'\n"


def observations(cli: Cli, run_id: str) -> list[Observation]:
    log = cli.state_dir / run_id / "events.jsonl"
    return [e for e in read_events(log) if isinstance(e, Observation)]


def files(root: Path) -> dict[str, bytes]:
    return {str(p.relative_to(root)): p.read_bytes() for p in root.rglob("*") if p.is_file()}


def test_an_agent_started_from_home_cannot_reach_runhands_own_files(
    cli: Cli,
    scripted,
    image: str,  # noqa: F811 (the fixture)
) -> None:
    """With the workspace at $HOME, the state directory, runhands' config, `.env` and the
    credential stores lie in the /workspace mount: hidden from the shell and the editor,
    unchanged, and the run the agent attacked still resumes."""
    cli.workspace = cli.home  # started from $HOME
    planted = {
        ".config/runhands/config.toml": "[core]\nmax_iterations = 40\n",
        ".env": "AWS_SESSION_TOKEN=dotenv-token-9d2a\n",
        ".ssh/id_rsa": "-----BEGIN FAKE KEY-----\n",
        ".aws/credentials": "[default]\naws_secret_access_key = fake-aws-file-3e\n",
        "project/notes.txt": "mine\n",
    }
    for name, content in planted.items():
        (cli.home / name).parent.mkdir(parents=True, exist_ok=True)
        (cli.home / name).write_text(content)
    before = files(cli.home)
    log = "/workspace/.openhands-state/hostile/events.jsonl"
    config = "/workspace/.config/runhands/config.toml"
    # Each attempt, named by what it shows when it fails as it must.
    attempts = {
        "no capability": bash("grep -E '^(CapEff|NoNewPrivs):' /proc/self/status"),
        "pids limit": bash(f"cat {PIDS_MAX} 2>/dev/null"),
        "empty": bash("ls -A /workspace/.openhands-state /workspace/.config/runhands"),
        "no secret": bash(f"cat /workspace/.env {config} .ssh/id_rsa .aws/credentials"),
        "log append": bash(f"echo x >> {log}"),
        "state move": bash("mv /workspace/.openhands-state /workspace/moved"),
        "config move": bash("mv /workspace/.config /workspace/config-moved"),
        "config plant": bash(f"printf {EVIL_CONFIG!r} > {config}"),
        "mount": bash("mount -t tmpfs none /mnt"),
        "chown": bash("chown 1234 /workspace/project/notes.txt"),
        "env": bash("env"),
        "editor view": edit("view", log),
        "editor forge": edit("create", log, file_text="forged\n"),
        "editor plant": edit("create", config, file_text=EVIL_CONFIG),
        "editor secret": edit("view", "/workspace/.ssh/id_rsa"),
    }
    model = scripted([*attempts.values(), finish("tried")])
    env = docker_env(cli, image, SANDBOX_ENV_GREETING="hello", **HOST_SECRETS)
    result = cli.run("run", "-n", "hostile", "-t", "get out", model=model, env=env)
    assert result.returncode == 0, result.stderr
    seen = dict(zip(attempts, observations(cli, "hostile")[: len(attempts)], strict=True))
    assert seen["no capability"].content.split()[:4] == ["CapEff:", "0" * 16, "NoNewPrivs:", "1"]
    assert seen["pids limit"].content.split()[0] == "4096"
    assert seen["empty"].content.split("[The command")[0].split() == [
        "/workspace/.config/runhands:",
        "/workspace/.openhands-state:",
    ]
    for secret in ["dotenv-token", "max_iterations", "FAKE KEY", "fake-aws-file"]:
        assert secret not in seen["no secret"].content
    for name in ["log append", "state move", "config move", "config plant", "mount", "chown"]:
        assert "completed with exit code 0" not in seen[name].content, seen[name]
    environment = seen["env"].content
    assert "GREETING=hello" in environment  # passed on purpose: SANDBOX_ENV_GREETING
    for leaked in [*HOST_SECRETS.values(), TEST_API_KEY, "LLM_"]:
        assert leaked not in environment
    for name in ["editor view", "editor forge", "editor plant", "editor secret"]:
        assert seen[name].error, seen[name]
    outside_the_store = {k: v for k, v in files(cli.home).items() if ".openhands-state" not in k}
    assert outside_the_store == before
    again = scripted([finish("still here")])
    resumed = cli.run("resume", "hostile", "-t", "once more", model=again, env=env)
    assert resumed.returncode == 0, resumed.stderr
    assert containers("hostile") == []


def bridge_address() -> str:
    """The host's address on Docker's default bridge, as containers reach it."""
    import docker

    bridge = docker.from_env().networks.get("bridge")
    name = bridge.attrs["Options"].get("com.docker.network.bridge.name", "docker0")
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as probe:
        ifreq = struct.pack("256s", name[:15].encode())
        return socket.inet_ntoa(fcntl.ioctl(probe.fileno(), 0x8915, ifreq)[20:24])  # SIOCGIFADDR


@pytest.fixture
def host_service() -> Iterator[tuple[str, int]]:
    """A service of the host on its bridge address (local to this machine): what an agent
    on the bridge network reaches."""
    server = socket.create_server((bridge_address(), 0))
    server.settimeout(0.2)
    stop = threading.Event()

    def serve() -> None:
        while not stop.is_set():
            try:
                server.accept()[0].close()
            except OSError:
                continue

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    yield server.getsockname()[:2]
    stop.set()
    thread.join()
    server.close()


@pytest.mark.parametrize("network", ["off", "on"])
def test_network_off_reaches_neither_the_model_nor_the_host(
    cli: Cli,
    scripted,
    image: str,  # noqa: F811 (the fixture)
    host_service: tuple[str, int],
    network: str,
) -> None:
    """Off: no interface but loopback, so neither the model's port nor a service of the
    host answers. On (the default): the host is reachable over the bridge."""
    address, port = host_service
    model = scripted([])
    model_port = urlsplit(model.base_url).port
    # A refused or unroutable connection fails at once; 10 s is for a loaded machine, where
    # starting bash and the bridge's first connection can take seconds.
    reach = "timeout 10 bash -c 'echo > /dev/tcp/{}/{}' && echo reached"
    model.script += [
        bash("ls /sys/class/net"),
        bash(reach.format("127.0.0.1", model_port)),
        bash(reach.format(address, model_port)),
        bash(reach.format(address, port)),
        finish(),
    ]
    env = docker_env(cli, image, SANDBOX_NETWORK=network)
    result = cli.run("run", "-n", "net", "-t", "call home", model=model, env=env)
    assert result.returncode == 0, result.stderr
    seen = [o.content for o in observations(cli, "net")]
    interfaces = seen[0].split("[The command")[0].split()
    reached = ["reached\n" in attempt for attempt in seen[1:4]]
    if network == "off":
        assert interfaces == ["lo"]
        assert reached == [False, False, False]
    else:
        assert "eth0" in interfaces
        assert reached == [False, False, True]  # the model listens on 127.0.0.1 only


def test_the_whole_machine_is_never_the_workspace(cli: Cli, scripted, image: str) -> None:  # noqa: F811
    model = scripted([finish()])
    for how in (["-d", "/"], []):
        env = docker_env(cli, image, **({} if how else {"SANDBOX_VOLUMES": "/:/workspace:ro"}))
        result = cli.run("run", *how, "-n", "root", "-t", "x", model=model, env=env)
        assert result.returncode == 2, result.stderr
        assert "/" in result.stderr and "whole machine" in result.stderr
    assert model.requests == [] and containers("root") == []
    assert not (cli.state_dir / "root").exists()


def test_network_off_cannot_be_contradicted(cli: Cli, image: str) -> None:  # noqa: F811
    env = docker_env(cli, image, SANDBOX_NETWORK="off", SANDBOX_NETWORK_MODE="host")
    result = cli.run("run", "-t", "x", env=env)
    assert result.returncode == 2
    assert "network is off but network_mode is 'host'" in result.stderr


def test_a_workspace_inside_the_state_directory_is_refused(
    cli: Cli,
    scripted,
    image: str,  # noqa: F811 (the fixture)
) -> None:
    inner = cli.state_dir / "somewhere"
    inner.mkdir(parents=True)
    model = scripted([finish()])
    result = cli.run("run", "-d", str(inner), "-t", "x", model=model, env=docker_env(cli, image))
    assert result.returncode == 2, result.stderr
    assert "the state directory" in result.stderr and model.requests == []


def test_the_engine_socket_is_mounted_only_on_purpose_and_with_a_warning(
    cli: Cli,
    scripted,
    image: str,  # noqa: F811 (the fixture)
) -> None:
    from sandbox.docker_mounts import engine_sockets

    sockets = engine_sockets({})
    if not sockets:
        pytest.skip("the engine is not reached through a socket file here")
    listed = f"{cli.workspace}:/workspace,{sockets[0]}:/run/engine.sock"
    model = scripted([bash("test -S /run/engine.sock && echo mounted"), finish()])
    env = docker_env(cli, image, SANDBOX_VOLUMES=listed)
    result = cli.run("run", "-n", "sock", "-t", "x", model=model, env=env)
    assert result.returncode == 0, result.stderr
    warning = [line for line in result.stderr.splitlines() if "engine's socket" in line]
    assert warning and warning[0].startswith("runhands: warning: SANDBOX_VOLUMES mounts")
    assert "root on this machine" in warning[0]
    assert observations(cli, "sock")[0].content.startswith("mounted\n")
    holder = os.path.dirname(sockets[0])  # a working directory showing the socket: refused
    refused = cli.run("run", "-d", holder, "-t", "x", model=model, env=docker_env(cli, image))
    assert refused.returncode == 2 and "holds the container engine's socket" in refused.stderr
    plain = scripted([bash("ls /run /var/run"), finish()])
    result = cli.run("run", "-n", "nosock", "-t", "x", model=plain, env=docker_env(cli, image))
    assert result.returncode == 0 and "engine's socket" not in result.stderr
    assert ".sock" not in observations(cli, "nosock")[0].content
