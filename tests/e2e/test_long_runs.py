"""Long runs end well: stuck loops are warned about then stopped, budgets warn at 80% and
stop at their limit (the runtime one too), and a run stopped by a limit resumes."""

from __future__ import annotations

import pytest

from state_store.events import AnyEvent, Transition, UserMessage
from state_store.store import read_events, read_snapshot
from tests.conftest import Cli
from tests.scripted_model import bash, finish, text

pytestmark = pytest.mark.e2e

STUCK_WARNING = "You are repeating yourself"


def events_of(cli: Cli, run_id: str) -> list[AnyEvent]:
    return read_events(cli.state_dir / run_id / "events.jsonl")


def last_message(request: dict) -> dict:
    return request["messages"][-1]


def warned(request: dict) -> bool:
    return any(
        m["role"] == "user" and STUCK_WARNING in (m.get("content") or "")
        for m in request["messages"]
    )


LOOPS = {
    "repeated_action": ([bash("echo same")] * 5, 4, "the same action was repeated 4 times"),
    "repeated_error": ([bash("cat missing.txt")] * 4, 3, "the same action failed 3 times"),
    "monologue": ([text("I am done.")] * 4, 3, "the same answer was given 3 times"),
    "alternation": (
        [bash("echo a"), bash("echo b")] * 3 + [bash("echo a")],
        6,
        "two actions alternated 3 times",
    ),
}


@pytest.mark.parametrize("name", LOOPS)
def test_a_loop_is_warned_about_once_then_stops_the_run(cli: Cli, scripted, name: str) -> None:
    script, warned_after, reason = LOOPS[name]
    model = scripted(script)
    result = cli.run("run", "-n", name, "-t", "loop", model=model)

    assert result.returncode == 1, result.stderr
    assert f"stuck: {reason}" in result.stderr
    # The warning is the last thing the model read before its next answer, and only then.
    assert len(model.requests) == len(script)
    first_warned = model.requests[warned_after]
    assert STUCK_WARNING in last_message(first_warned)["content"]
    assert not any(warned(r) for r in model.requests[:warned_after])
    events = events_of(cli, name)
    final = [e for e in events if isinstance(e, Transition)][-1]
    assert final.dest == "errored" and final.reason.startswith(f"stuck: {reason}")
    origins = [e.origin for e in events if isinstance(e, UserMessage)]
    assert origins.count("warning") == 1
    assert read_snapshot(cli.state_dir / name).reason == "agent"


def test_a_model_that_changes_approach_after_the_warning_finishes(cli: Cli, scripted) -> None:
    model = scripted([bash("echo same")] * 4 + [bash("echo other"), finish("changed course")])
    result = cli.run("run", "-n", "recover", "-t", "loop then recover", model=model)

    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "changed course"
    assert STUCK_WARNING in last_message(model.requests[4])["content"]
    origins = [e.origin for e in events_of(cli, "recover") if isinstance(e, UserMessage)]
    assert origins.count("warning") == 1


def test_the_model_is_told_when_80_percent_of_the_steps_are_used(cli: Cli, scripted) -> None:
    model = scripted([bash(f"echo {i}") for i in range(1, 5)] + [finish()])
    result = cli.run("run", "-n", "steps", "-i", "5", "-t", "count", model=model)

    assert result.returncode == 0, result.stderr
    warning = last_message(model.requests[4])
    assert warning["role"] == "user"
    assert "You have used 80% of your step budget (4 of 5 steps)" in warning["content"]
    earlier = [m.get("content") or "" for r in model.requests[:4] for m in r["messages"]]
    assert not any("of your step budget" in c for c in earlier)


def test_runtime_limit_stops_the_run_and_resume_raises_it(cli: Cli, scripted) -> None:
    model = scripted([bash("sleep 2; touch a"), bash("touch b"), finish("both made")])
    result = cli.run("run", "-n", "slow", "--max-runtime", "2", "-t", "make a, b", model=model)
    assert result.returncode == 3, result.stderr
    assert "runtime limit reached" in result.stderr
    first = read_snapshot(cli.state_dir / "slow")
    assert first.reason == "limit" and first.counters.runtime_s >= 2

    refused = cli.run("resume", "slow", model=model)  # the saved limit still applies
    assert refused.returncode == 2
    assert "runhands resume slow --max-runtime" in refused.stderr

    resumed = cli.run("resume", "slow", "--max-runtime", "60", model=model)
    assert resumed.returncode == 0, resumed.stderr
    assert (cli.workspace / "a").exists() and (cli.workspace / "b").exists()
    # Resume goes on counting from where the first process stopped.
    assert read_snapshot(cli.state_dir / "slow").counters.runtime_s > first.counters.runtime_s


def test_without_stuck_detection_a_loop_runs_to_the_iteration_limit(cli: Cli, scripted) -> None:
    model = scripted([bash("echo same")] * 6)
    env = {"AGENT_ENABLE_STUCK_DETECTION": "false"}
    result = cli.run("run", "-n", "loop", "-i", "6", "-t", "loop", model=model, env=env)

    assert result.returncode == 3, result.stderr
    assert "iteration limit reached" in result.stderr
    assert len(model.requests) == 6
    assert not any(warned(r) for r in model.requests)
