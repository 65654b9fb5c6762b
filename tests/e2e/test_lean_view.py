"""The token bill through the real CLI: old outputs reach the model as stand-ins, the log
keeps them whole, and a resumed run sends what an uninterrupted one would."""

from __future__ import annotations

import pytest

from state_store.events import Observation
from tests.conftest import Cli
from tests.e2e.test_run import events_of
from tests.scripted_model import bash, finish

pytestmark = pytest.mark.e2e

STEPS = [bash(f"seq {n} {n + 39}") for n in range(8)]
NOTE = "`[Old output omitted ...]`: rerun the command if you need that output."


def tool_contents(request: dict) -> list[str]:
    return [m["content"] for m in request["messages"] if m["role"] == "tool"]


def test_old_outputs_reach_the_model_as_stand_ins(cli: Cli, scripted) -> None:
    model = scripted([*STEPS, finish()])
    result = cli.run("run", "-t", "count", model=model)
    assert result.returncode == 0, result.stderr
    last = model.requests[-1]
    assert NOTE in last["messages"][0]["content"]
    shown = tool_contents(last)
    # The default keeps the 5 most recent whole (SWE-agent's default).
    stand_in = "[Old output omitted (40 lines); exit code 0]"
    assert shown[0].startswith(stand_in + "\n[Current working directory: ")  # shown once
    assert shown[1:3] == [stand_in] * 2
    assert shown[3].startswith("\n".join(str(n) for n in range(3, 43)) + "\n")
    assert all("Old output omitted" not in text for text in shown[3:])
    # The log keeps every output whole (trajectory, replay, inspect).
    saved = [e.content for e in events_of(cli) if isinstance(e, Observation)]
    assert saved[0].startswith("\n".join(str(n) for n in range(0, 40)) + "\n")


def test_keep_outputs_zero_sends_every_output_whole(cli: Cli, scripted) -> None:
    model = scripted([*STEPS, finish()])
    result = cli.run("run", "-t", "count", model=model, env={"CONDENSER_KEEP_OUTPUTS": "0"})
    assert result.returncode == 0, result.stderr
    last = model.requests[-1]
    assert NOTE not in last["messages"][0]["content"]
    assert all("Old output omitted" not in text for text in tool_contents(last))


def test_a_resumed_run_sends_what_an_uninterrupted_one_would(cli: Cli, scripted) -> None:
    whole = scripted([*STEPS, finish()])
    assert cli.run("run", "-n", "whole", "-t", "count", model=whole).returncode == 0
    cut = scripted([*STEPS, finish()])
    assert cli.run("run", "-n", "cut", "-i", "6", "-t", "count", model=cut).returncode == 3
    resumed = cli.run("resume", "cut", "-i", "20", model=cut)
    assert resumed.returncode == 0, resumed.stderr
    assert len(cut.requests) == len(whole.requests)
    for sent, expected in zip(cut.requests, whole.requests, strict=True):
        assert tool_contents(sent) == tool_contents(expected)
