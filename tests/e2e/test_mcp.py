"""MCP servers end to end: a real stdio server written with the `mcp` SDK
(tests/mcp_server.py), named in config.toml, through the real CLI and a scripted model."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

from state_store.events import Action, McpCall, McpToolsListed, Observation, RunEnded
from state_store.store import read_events
from tests.conftest import REPO, Cli
from tests.scripted_model import Turn, finish

pytestmark = pytest.mark.e2e

SERVER = str(REPO / "tests" / "mcp_server.py")


def _config(cli: Cli, command: str = sys.executable, args: list[str] | None = None) -> None:
    env = {"MCP_TEST_PID": str(cli.home / "mcp.pid"), "MCP_TEST_CALLS": str(cli.home / "calls")}
    server = {"name": "calc", "command": command, "args": args or [SERVER], "env": env}
    (cli.workspace / "config.toml").write_text("[mcp]\nstdio_servers = [" + _inline(server) + "]\n")


def _inline(value: object) -> str:
    """A TOML inline value (JSON strings are TOML basic strings)."""
    if isinstance(value, dict):
        return "{" + ", ".join(f"{k} = {_inline(v)}" for k, v in value.items()) + "}"
    if isinstance(value, list):
        return "[" + ", ".join(_inline(v) for v in value) + "]"
    return json.dumps(value)


def _gone(pid: int, wait: float = 10.0) -> bool:
    deadline = time.monotonic() + wait
    while time.monotonic() < deadline:
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return True
        # a zombie (not yet reaped by its parent, which is gone) counts as gone
        stat = Path(f"/proc/{pid}/stat")
        if stat.exists() and stat.read_text().split()[2] == "Z":
            return True
        time.sleep(0.1)
    return False


def _calls(cli: Cli) -> list[str]:
    path = cli.home / "calls"
    return path.read_text().splitlines() if path.exists() else []


def _mcp_run(cli: Cli, scripted) -> tuple[object, list]:
    _config(cli)
    model = scripted(
        [Turn(tool_calls=[("add", {"a": 2, "b": 3}), ("echo", {"text": "hi"})]), finish("5")]
    )
    result = cli.run("run", "-n", "m", "-t", "add 2 and 3", model=model)
    assert result.returncode == 0, result.stderr
    return model, read_events(cli.state_dir / "m" / "events.jsonl")


def test_mcp_tools_are_offered_called_recorded_and_the_server_stopped(cli: Cli, scripted) -> None:
    model, events = _mcp_run(cli, scripted)

    offered = [t["function"]["name"] for t in model.requests[0]["tools"]]
    assert offered[-3:] == ["add", "echo", "write_note"] and "execute_bash" in offered
    add_spec = model.requests[0]["tools"][-3]["function"]
    assert add_spec["description"] == "Add two integers."
    assert add_spec["parameters"]["required"] == ["a", "b"]

    # The results reached the model as tool messages (OpenHands' MCPObservation JSON).
    tool_messages = [m for m in model.requests[1]["messages"] if m["role"] == "tool"]
    added = json.loads(tool_messages[0]["content"])
    assert added["content"][0]["text"] == "5" and added["isError"] is False
    assert json.loads(tool_messages[1]["content"])["content"][0]["text"] == "hi"

    listed = [e for e in events if isinstance(e, McpToolsListed)]
    assert [t.name for t in listed[0].tools] == ["add", "echo", "write_note"]
    actions = [e.args for e in events if isinstance(e, Action)]
    assert McpCall(name="add", arguments={"a": 2, "b": 3}) in actions
    observed = [e for e in events if isinstance(e, Observation) and e.tool == "add"]
    assert not observed[0].error and '"text": "5"' in observed[0].content
    assert _calls(cli) == ["add 2 3", "echo hi"]
    assert _gone(int((cli.home / "mcp.pid").read_text()))

    shown = cli.run("inspect", "m")
    assert shown.returncode == 0, shown.stderr
    assert "add" in shown.stdout + shown.stderr


def test_a_file_an_mcp_server_writes_is_in_the_steps_checkpoint(cli: Cli, scripted) -> None:
    _config(cli)
    call = ("write_note", {"name": "note.txt", "text": "from mcp\n"})
    model = scripted([Turn(tool_calls=[call]), finish()])
    result = cli.run("run", "-n", "m", "-t", "note", model=model)
    assert result.returncode == 0, result.stderr
    step = cli.run("diff", "m", "--step", "1")
    assert step.returncode == 0, step.stderr
    assert "note.txt" in step.stdout and "+from mcp" in step.stdout


def test_a_bad_argument_is_an_error_result_the_model_sees(cli: Cli, scripted) -> None:
    _config(cli)
    model = scripted([Turn(tool_calls=[("add", {"a": "x"})]), finish()])
    result = cli.run("run", "-n", "m", "-t", "add", model=model)
    assert result.returncode == 0, result.stderr
    message = [m for m in model.requests[1]["messages"] if m["role"] == "tool"][-1]
    assert json.loads(message["content"])["isError"] is True
    events = read_events(cli.state_dir / "m" / "events.jsonl")
    assert next(e.error for e in events if isinstance(e, Observation)) is True


def test_a_server_that_cannot_start_ends_the_run_with_exit_4(cli: Cli, scripted) -> None:
    _config(cli, command="runhands-no-such-mcp-server")
    model = scripted([finish()])
    result = cli.run("run", "-n", "m", "-t", "hi", model=model)
    assert result.returncode == 4, result.stderr
    lines = [line for line in result.stderr.splitlines() if "MCP server stdio calc" in line]
    assert lines and "runhands-no-such-mcp-server" in lines[0], result.stderr
    assert model.requests == []  # the model was never asked
    events = read_events(cli.state_dir / "m" / "events.jsonl")
    assert [e.reason for e in events if isinstance(e, RunEnded)] == ["sandbox"]


def test_a_server_that_exits_at_once_is_named_with_its_stderr(cli: Cli, scripted) -> None:
    script = "import sys; print('no license key', file=sys.stderr); sys.exit(3)"
    _config(cli, args=["-c", script])
    result = cli.run("run", "-n", "m", "-t", "hi", model=scripted([finish()]))
    assert result.returncode == 4, result.stderr
    assert "no license key" in result.stderr


def test_replay_reuses_recorded_results_or_calls_the_live_server(cli: Cli, scripted) -> None:
    _mcp_run(cli, scripted)
    (cli.workspace / "config.toml").unlink()  # the server is gone
    (cli.home / "calls").unlink()

    reused = cli.run("replay", "m", "--json")
    assert reused.returncode == 0, reused.stderr
    steps = [json.loads(line) for line in reused.stdout.splitlines()]
    mcp_steps = [s for s in steps if s.get("tool") in ("add", "echo")]
    assert len(mcp_steps) == 2 and all(s["same"] for s in mcp_steps)
    assert _calls(cli) == []

    live = cli.run("replay", "m", "--live-mcp")  # the recorded run's servers, started again
    assert live.returncode == 0, live.stderr
    assert _calls(cli) == ["add 2 3", "echo hi"]
    assert _gone(int((cli.home / "mcp.pid").read_text()))


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGKILL])
def test_no_server_outlives_an_interrupted_or_killed_run(cli: Cli, scripted, sig) -> None:
    """Ctrl-C: the run closes its servers; kill -9: the server sees its stdin close."""
    _config(cli)
    model = scripted([Turn(delay=60, content="late")])
    env = {**cli.env, "LLM_BASE_URL": model.base_url}
    proc = subprocess.Popen(
        [sys.executable, "-m", "controller", "run", "-n", "m", "-t", "wait"],
        cwd=cli.workspace,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        pid_file = cli.home / "mcp.pid"
        deadline = time.monotonic() + 60
        while not model.requests and time.monotonic() < deadline:  # the model is being asked
            time.sleep(0.1)
        assert model.requests, "the run never asked the model"
        server = int(pid_file.read_text())
        proc.send_signal(sig)
        proc.wait(timeout=30)
        assert _gone(server), f"MCP server {server} outlived the run"
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        if proc.stderr is not None:
            proc.stderr.close()


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@pytest.fixture
def http_server(request: pytest.FixtureRequest, cli: Cli):
    """The test server over HTTP on 127.0.0.1 (param: "sse" or "shttp"), wanting a key."""
    port = _free_port()
    env = {**os.environ, "MCP_TEST_CALLS": str(cli.home / "calls")}
    proc = subprocess.Popen(
        [sys.executable, SERVER, request.param, str(port), "k3y"],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        deadline = time.monotonic() + 60
        while True:
            assert proc.poll() is None, "the MCP test server exited"
            try:
                socket.create_connection(("127.0.0.1", port), timeout=1).close()
                break
            except OSError:
                assert time.monotonic() < deadline, "the MCP test server did not listen"
                time.sleep(0.1)
        path = "/sse" if request.param == "sse" else "/mcp"
        yield request.param, f"http://127.0.0.1:{port}{path}"
    finally:
        proc.kill()
        proc.wait()


@pytest.mark.parametrize("http_server", ["sse", "shttp"], indirect=True)
def test_sse_and_streamable_http_servers_with_an_api_key(cli: Cli, scripted, http_server) -> None:
    """OpenHands' `sse_servers` / `shttp_servers` entries ({url, api_key}) through the SDK's
    clients: offered, called with the key sent as OpenHands sends it, recorded."""
    kind, url = http_server
    entry = _inline({"url": url, "api_key": "k3y"})
    (cli.workspace / "config.toml").write_text(f"[mcp]\n{kind}_servers = [{entry}]\n")
    model = scripted([Turn(tool_calls=[("add", {"a": 40, "b": 2})]), finish("42")])
    result = cli.run("run", "-n", "h", "-t", "add", model=model)
    assert result.returncode == 0, result.stderr
    offered = [t["function"]["name"] for t in model.requests[0]["tools"]]
    assert offered[-3:] == ["add", "echo", "write_note"]
    reply = next(m for m in model.requests[1]["messages"] if m["role"] == "tool")
    assert json.loads(reply["content"])["content"][0]["text"] == "42"
    assert _calls(cli) == ["add 40 2"]
    assert "k3y" not in cli.saved_bytes().decode(errors="replace")  # a secret: never saved

    # A wrong key: the server refuses, and the run stops at init (exit 4), naming the server.
    (cli.workspace / "config.toml").write_text(
        f"[mcp]\n{kind}_servers = [{_inline({'url': url, 'api_key': 'wrong'})}]\n"
    )
    refused = cli.run("run", "-n", "h2", "-t", "add", model=scripted([finish()]))
    assert refused.returncode == 4, refused.stderr
    assert url in refused.stderr or "127.0.0.1" in refused.stderr
