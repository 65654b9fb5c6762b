"""OpenHands' four replay trajectories (`tests/runtime/test_replay.py`) through the real CLI:
`replay_trajectory_path` replays them to the end OpenHands reaches, with no model call when
the recording says how the run ends; `runhands replay` compares them without a spurious
divergence."""

from __future__ import annotations

import fcntl
import json
import socket
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from controller.agent.tools import INTERRUPTED_ACTION
from state_store.events import (
    Action,
    ExecuteBash,
    KnowledgeRecalled,
    ModelResponse,
    Observation,
    UserMessage,
)
from state_store.store import EVENTS_FILE, read_events
from tests.conftest import REPO, Cli
from tests.scripted_model import finish

pytestmark = pytest.mark.e2e

TRAJECTORIES = REPO / "tests" / "data" / "openhands_trajectories"


@pytest.fixture
def port_8000() -> Iterator[bool]:
    """basic_gui_mode.json starts `python3 -m http.server 8000`: one test at a time runs it
    (xdist workers share the port). True when the port is free."""
    with open(Path(tempfile.gettempdir()) / "runhands-tests-port-8000.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        with socket.socket() as probe:
            free = probe.connect_ex(("127.0.0.1", 8000)) != 0
        yield free


def replay_run(cli: Cli, scripted, name: str, *extra: str, script=()) -> tuple:
    """`runhands run` with REPLAY_TRAJECTORY_PATH; a model server that records any request."""
    model = scripted(list(script))
    env = {"REPLAY_TRAJECTORY_PATH": str(TRAJECTORIES / f"{name}.json")}
    result = cli.run("run", "-n", "r", *extra, model=model, env=env)
    events = read_events(cli.state_dir / "r" / EVENTS_FILE)
    return result, model, events


def test_simple_replay_finishes_without_the_model(cli: Cli, scripted) -> None:
    result, model, events = replay_run(cli, scripted, "basic")
    assert result.returncode == 0, result.stderr
    assert model.requests == []  # the recorded finish ends the run
    assert "game_2048.py" in {p.name for p in cli.workspace.iterdir()}
    assert [type(e.args).__name__ for e in events if isinstance(e, Action)] == [
        "StrReplaceEditor",
        "Finish",
    ]


def test_replay_without_any_model_configured(cli: Cli) -> None:
    """A complete trajectory needs no model at all: no server, no key."""
    env = {"REPLAY_TRAJECTORY_PATH": str(TRAJECTORIES / "basic.json"), "LLM_API_KEY": ""}
    env["LLM_BASE_URL"] = "http://127.0.0.1:9/v1"  # nothing listens there
    result = cli.run("run", "-n", "r", env=env)
    assert result.returncode == 0, result.stderr


def test_wrong_initial_state_replays_a_failed_command_and_finishes(cli: Cli, scripted) -> None:
    result, model, events = replay_run(cli, scripted, "wrong_initial_state")
    assert result.returncode == 0, result.stderr
    assert model.requests == []
    moved = [e for e in events if isinstance(e, Observation) and e.tool == "execute_bash"]
    assert len(moved) == 1 and "exit code 1" in moved[0].content  # game_2048.py is absent
    assert "No such file or directory" in moved[0].content


def test_basic_interactions_keep_every_user_message_in_order(cli: Cli, scripted) -> None:
    result, model, events = replay_run(cli, scripted, "basic_interactions")
    assert result.returncode == 0, result.stderr
    assert model.requests == []
    said = [e.content for e in events if isinstance(e, UserMessage)]
    assert said == ["what's 1+1?", "No, I mean by Goldbach's conjecture!", "Finish please"]
    answers = [e.content for e in events if isinstance(e, ModelResponse) and not e.tool_calls]
    assert answers[0] == "1 + 1 equals 2." and answers[1].startswith("Goldbach's conjecture")


def test_the_model_takes_over_with_every_recorded_message_in_view(
    cli: Cli, scripted, tmp_path: Path
) -> None:
    """basic_interactions.json without its finish: the model's first view holds the whole
    conversation, user messages and agent answers in order."""
    events = json.loads((TRAJECTORIES / "basic_interactions.json").read_text())[:-1]
    path = tmp_path / "no_finish.json"
    path.write_text(json.dumps(events))
    model = scripted([finish("4")])
    env = {"REPLAY_TRAJECTORY_PATH": str(path)}
    result = cli.run("run", "-n", "r", model=model, env=env)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "4"
    [request] = model.requests
    said = [(m["role"], m["content"][:20]) for m in request["messages"][1:]]
    assert said[0] == ("user", "what's 1+1?")
    conversation = [s for s in said if not s[1].startswith("<")]  # OpenHands' recall blocks
    assert conversation[-5:] == [
        ("user", "what's 1+1?"),
        ("assistant", "1 + 1 equals 2."),
        ("user", "No, I mean by Goldba"),
        ("assistant", "Goldbach's conjectur"),
        ("user", "Finish please"),
    ]


def test_gui_trajectory_ends_when_the_replay_waits_for_the_user(
    cli: Cli, scripted, port_8000: bool
) -> None:
    """It ends with the agent's message waiting for the user: OpenHands' test answers it
    with `/exit` (exit_on_message); headless runhands' --no-auto-continue does the same."""
    result, model, events = replay_run(cli, scripted, "basic_gui_mode", "--no-auto-continue")
    assert result.returncode == 0, result.stderr
    assert model.requests == []
    assert (cli.workspace / "todo-app" / "app.js").is_file()
    last = [e for e in events if isinstance(e, ModelResponse)][-1]
    assert last.content and last.content.startswith("I've created a complete Vue.js todo")


def test_gui_trajectory_with_auto_continue_hands_over_to_the_model(
    cli: Cli, scripted, port_8000: bool
) -> None:
    """OpenHands' headless default: the waiting message gets the "continue" reply, and the
    model takes over with the whole replayed conversation in view."""
    result, model, _ = replay_run(cli, scripted, "basic_gui_mode", script=[finish("ok")])
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "ok"
    [request] = model.requests
    messages = request["messages"]
    assert messages[-2]["role"] == "assistant"
    assert messages[-2]["content"].startswith("I've created a complete Vue.js todo")
    assert messages[-1]["role"] == "user"
    tools = [m for m in messages if m["role"] == "tool"]
    assert len(tools) == 4


@pytest.mark.parametrize("name", ["basic", "basic_gui_mode", "basic_interactions"])
def test_compare_mode_matches_openhands_recordings(cli: Cli, name: str, port_8000: bool) -> None:
    if name == "basic_gui_mode" and not port_8000:
        pytest.skip("port 8000 is taken: the recorded http.server would fail here")
    result = cli.run("replay", str(TRAJECTORIES / f"{name}.json"), "--json")
    assert result.returncode == 0, result.stderr
    summary = json.loads(result.stdout.splitlines()[-1])
    assert summary["same"] is True and summary["replayed"] == summary["steps"]


def test_compare_mode_on_the_wrong_initial_state(cli: Cli) -> None:
    """Without game_2048.py the first listing differs (a true divergence); with it, every
    step matches, the `mv`'s notes included."""
    source = str(TRAJECTORIES / "wrong_initial_state.json")
    result = cli.run("replay", source)
    assert result.returncode == 1
    assert "replay diverged at step 1 of 4" in result.stderr
    assert "-<workdir>/game_2048.py" in result.stderr
    fresh = cli.workspace / "fresh"
    fresh.mkdir()
    (fresh / "game_2048.py").write_text("print('2048')\n")
    result = cli.run("replay", source, "-d", str(fresh))
    assert result.returncode == 0, result.stderr
    assert "replay matched: 4/4" in result.stderr
    assert Path(fresh / "2048.py").is_file()


def test_a_replay_killed_midway_goes_on_from_the_log_on_resume(cli: Cli, scripted) -> None:
    """The plan is saved when the run is created: `resume` replays the rest (the call the
    kill cut short is reported interrupted), the later user message included, and ends with
    the recorded finish; no trajectory file, no model."""
    events = [
        {"id": 0, "source": "user", "action": "message", "args": {"content": "write files"}},
        {"id": 1, "source": "agent", "action": "run", "args": {"command": "echo one > a.txt"}},
        {"id": 2, "source": "agent", "action": "run", "args": {"command": "sleep 60"}},
        {"id": 3, "source": "user", "action": "message", "args": {"content": "and b.txt"}},
        {"id": 4, "source": "agent", "action": "run", "args": {"command": "echo two > b.txt"}},
        {"id": 5, "source": "agent", "action": "finish", "args": {"final_thought": "written"}},
    ]
    path = cli.home / "t.json"
    path.write_text(json.dumps(events))
    env = {"REPLAY_TRAJECTORY_PATH": str(path), "SANDBOX_SOFT_TIMEOUT": "120"}
    with pytest.raises(TimeoutError):  # killed (SIGKILL) during `sleep 60`
        cli.run("run", "-n", "r", env=env, timeout=10)
    assert (cli.workspace / "a.txt").read_text() == "one\n"
    assert not (cli.workspace / "b.txt").exists()
    model = scripted([])
    result = cli.run("resume", "r", model=model)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "written"
    assert model.requests == []
    assert (cli.workspace / "b.txt").read_text() == "two\n"
    log = read_events(cli.state_dir / "r" / EVENTS_FILE)
    commands = [
        e.args.command for e in log if isinstance(e, Action) and isinstance(e.args, ExecuteBash)
    ]
    assert commands == ["echo one > a.txt", "sleep 60", "echo two > b.txt"]  # none twice
    said = [e.content for e in log if isinstance(e, UserMessage)]
    assert said == ["write files", "and b.txt"]
    [cut] = [e for e in log if isinstance(e, Observation) and e.tool_call_id == "replay_2"]
    assert cut.content == INTERRUPTED_ACTION


def test_replay_continue_calls_recorded_mcp_tools_on_the_run_servers(cli: Cli, scripted) -> None:
    from tests.e2e.test_mcp import _calls, _mcp_run

    _mcp_run(cli, scripted)
    (cli.home / "calls").unlink()
    model = scripted([])
    result = cli.run("replay", "m", "--continue", "-n", "again", model=model)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "5" and model.requests == []
    assert _calls(cli) == ["add 2 3", "echo hi"]
    log = read_events(cli.state_dir / "again" / EVENTS_FILE)
    names = [c.name for e in log if isinstance(e, ModelResponse) for c in e.tool_calls]
    assert names == ["add", "echo", "finish"]


def _goldbach_setup(cli: Cli, tmp_path: Path) -> Path:
    """basic_interactions.json without its finish, and a microagent its second user
    message triggers: the trajectory's path."""
    events = json.loads((TRAJECTORIES / "basic_interactions.json").read_text())[:-1]
    path = tmp_path / "no_finish.json"
    path.write_text(json.dumps(events))
    agents = cli.workspace / ".openhands" / "microagents"
    agents.mkdir(parents=True)
    (agents / "maths.md").write_text("---\ntriggers: [goldbach]\n---\nCite the conjecture.\n")
    return path


def test_a_replayed_user_message_triggers_knowledge_as_a_live_one(
    cli: Cli, scripted, tmp_path: Path
) -> None:
    """OpenHands recalls knowledge microagents for every user message, replayed ones too:
    the microagent follows the message with its trigger, in the model's view and the log."""
    path = _goldbach_setup(cli, tmp_path)
    model = scripted([finish("4")])
    result = cli.run("run", "-n", "r", model=model, env={"REPLAY_TRAJECTORY_PATH": str(path)})
    assert result.returncode == 0, result.stderr
    contents = [m["content"] for m in model.requests[0]["messages"]]
    at = next(i for i, c in enumerate(contents) if c.startswith("No, I mean by Goldbach"))
    assert "Cite the conjecture." in contents[at + 1]
    assert sum("Cite the conjecture." in c for c in contents) == 1
    saved = read_events(cli.state_dir / "r" / EVENTS_FILE)
    recalled = [e for e in saved if isinstance(e, KnowledgeRecalled)]
    asked = next(e for e in saved if isinstance(e, UserMessage) and "Goldbach" in e.content)
    assert [e.for_seq for e in recalled] == [asked.seq]


def test_a_crash_between_a_replayed_message_and_its_recall_loses_nothing(
    cli: Cli, scripted, tmp_path: Path
) -> None:
    """Killed right after the replayed message is saved (the fault point, before the next
    write): the resume recalls its knowledge, once."""
    env = {"REPLAY_TRAJECTORY_PATH": str(_goldbach_setup(cli, tmp_path))}
    for n in range(1, 80):
        name = f"r{n}"
        fault = {**env, "RUNHANDS_TEST_FAULT": f"kill@{n}"}
        cli.run("run", "-n", name, model=scripted([]), env=fault)
        log = cli.state_dir / name / EVENTS_FILE
        saved = read_events(log) if log.exists() else []
        if saved and isinstance(saved[-1], UserMessage) and "Goldbach" in saved[-1].content:
            break
    else:
        pytest.fail("no write boundary fell right after the replayed message")
    model = scripted([finish("4")])
    resumed = cli.run("resume", name, model=model, env=env)
    assert resumed.returncode == 0, resumed.stderr
    saved = read_events(cli.state_dir / name / EVENTS_FILE)
    asked = next(e for e in saved if isinstance(e, UserMessage) and "Goldbach" in e.content)
    assert [e.for_seq for e in saved if isinstance(e, KnowledgeRecalled)] == [asked.seq]
    contents = [m["content"] for m in model.requests[0]["messages"]]
    assert sum("Cite the conjecture." in c for c in contents) == 1
