"""A long run that stays within the model's input window through condensations."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path

import pytest

from controller.agent.history import SUMMARY_INTRO
from state_store.events import Condensation, RunResumed
from state_store.store import read_events
from tests.conftest import Cli
from tests.scripted_model import Turn, bash, finish, text

pytestmark = pytest.mark.e2e

STEPS = 300
WINDOW = 4000  # tokens


def counting_policy(workspace: Path):
    """Counts to STEPS one command at a time (reading the workspace, so it goes on right
    after a crash); answers summary requests (sent without tools) with a summary."""

    def count() -> int:
        path = workspace / "count"
        return int(path.read_text()) if path.exists() else 0

    def policy(body: dict) -> Turn:
        if not body.get("tools"):
            return text(f"The agent has been counting; the count file holds {count()}.")
        if count() >= STEPS:
            return finish(f"counted to {count()}")
        return bash(
            # written to a temporary file and renamed: a kill never leaves a half-written count
            "n=$(cat count 2>/dev/null || echo 0); echo $((n+1)) > count.tmp && mv count.tmp count"
            " && cat count"
        )

    return policy


def _read(path: Path) -> int:
    return int(path.read_text()) if path.exists() else 0


def request_tokens(body: dict) -> int:
    return (len(json.dumps(body["messages"])) + len(json.dumps(body.get("tools", [])))) // 4


def test_300_steps_stay_within_the_window_through_condensations_and_a_resume(
    cli: Cli, scripted
) -> None:
    model = scripted(counting_policy(cli.workspace))
    env = {
        **cli.env,
        "LLM_BASE_URL": model.base_url,
        "LLM_MAX_INPUT_TOKENS": str(WINDOW),
        "MAX_ITERATIONS": "1000",
    }
    proc = subprocess.Popen(
        [sys.executable, "-m", "controller", "run", "-n", "long", "-t", "count to 300"],
        cwd=cli.workspace,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    count = cli.workspace / "count"
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline and _read(count) < 150:
        time.sleep(0.05)
    proc.kill()  # in the middle, after several condensations
    proc.wait()
    before_kill = len(model.requests)

    result = cli.run("resume", "long", model=model, env={"LLM_MAX_INPUT_TOKENS": str(WINDOW)})
    assert result.returncode == 0, result.stderr
    assert int(count.read_text()) == STEPS

    chat = [b for b in model.requests if b.get("tools")]
    assert len(chat) > STEPS
    assert max(request_tokens(b) for b in chat) <= WINDOW  # never over the window
    events = read_events(cli.state_dir / "long" / "events.jsonl")
    condensations = [e for e in events if isinstance(e, Condensation)]
    assert len(condensations) >= 5 and all(c.summary for c in condensations)
    assert any(isinstance(e, RunResumed) for e in events)
    # The resumed process showed the model the same condensed view: task, then summary.
    first_after = next(b for b in model.requests[before_kill:] if b.get("tools"))
    assert first_after["messages"][1]["content"] == "count to 300"
    assert first_after["messages"][2]["content"].startswith(SUMMARY_INTRO)


def test_window_condenser_drops_without_summary_calls(cli: Cli, scripted) -> None:
    model = scripted(counting_policy(cli.workspace))
    env = {"LLM_MAX_INPUT_TOKENS": "2500", "CONDENSER_TYPE": "window", "MAX_ITERATIONS": "1000"}
    (cli.workspace / "count").write_text(str(STEPS - 60))  # 60 steps are enough here
    result = cli.run("run", "-n", "win", "-t", "count", model=model, env=env)
    assert result.returncode == 0, result.stderr
    assert all(b.get("tools") for b in model.requests)  # no summary requests
    events = read_events(cli.state_dir / "win" / "events.jsonl")
    assert any(isinstance(e, Condensation) and e.summary is None for e in events)
    assert max(request_tokens(b) for b in model.requests) <= 2500
