"""The state machine in-process, with a scripted client (no HTTP) and a real local sandbox."""

from __future__ import annotations

import re
from concurrent.futures import Future
from pathlib import Path

import pytest

from controller.agent import machine
from controller.agent.context import Next, RunContext
from controller.agent.lifecycle import RUNNING, TRANSITIONS, State
from controller.agent.machine import AgentMachine
from controller.agent.reporting import Reporter
from controller.agent.run_state import derive
from controller.agent.tools import tool_specs
from controller.config import AppConfig
from controller.model_client import Completion, ProviderError
from sandbox.editor import Editor
from sandbox.local import LocalSandbox
from state_store.events import ToolCall, Transition, UserMessage
from state_store.store import RunStore, read_snapshot
from tests.conftest import REPO


class ScriptedClient:
    """A ModelClient answering from a list: Completions, or exceptions to raise."""

    def __init__(self, answers: list[Completion | Exception]) -> None:
        self.answers = list(answers)
        self.calls = 0

    def complete(self, messages, tools, on_retry, on_switch=None) -> Completion:
        answer = self.answers[self.calls]
        self.calls += 1
        if isinstance(answer, Exception):
            raise answer
        return answer


def call(name: str, arguments: str) -> Completion:
    return Completion(
        model="m", content=None, tool_calls=[ToolCall(id="c", name=name, arguments=arguments)]
    )


def make_context(tmp_path: Path, client: ScriptedClient, **core: object) -> RunContext:
    config = AppConfig()
    for key, value in core.items():
        setattr(config.core, key, value)
    opening = [(UserMessage, {"content": "t", "origin": "task"})]
    store = RunStore.create(tmp_path / "state", "r", config=config, opening=opening)
    sandbox = LocalSandbox(str(tmp_path))
    future: Future = Future()
    future.set_result(client)
    return RunContext(
        config=config,
        store=store,
        sandbox=sandbox,
        reporter=Reporter(err=open("/dev/null", "w")),
        snapshot=derive("r", store.events),
        workdir=str(tmp_path),
        client_future=future,
        editor=Editor(sandbox),
        tools=tool_specs({}),
    )


def transitions_of(ctx: RunContext) -> list[tuple[str, str, str]]:
    return [
        (e.source, e.dest, e.trigger) for e in ctx.store.read_events() if isinstance(e, Transition)
    ]


def test_the_table_only_reaches_the_card_states() -> None:
    states = {s for _, sources, dst in TRANSITIONS for s in (*sources, dst)}
    assert states == {"init", "planning", "acting", "observing", "finished", "errored"}
    assert {dst for t, _, dst in TRANSITIONS if t == "fail"} == {"errored"}
    assert set(machine.HANDLERS) == set(RUNNING)


def _readme_edges() -> set[tuple[str, str, str]]:
    """The moves drawn in the README's state diagram: `a | b ──trigger──▶ c` chains."""
    text = (REPO / "README.md").read_text()
    diagram = text.split("## The state machine", 1)[1].split("```", 2)[1]
    edges = set()
    for line in diagram.splitlines():
        parts = re.split(r"\s*──(\w+)──▶\s*", re.sub(r"\(.*\)", "", line).strip())
        for i in range(1, len(parts) - 1, 2):
            sources = [s.strip() for s in parts[i - 1].split("|")]
            if sources == ["any state"]:
                sources = [str(s) for s in State]
            edges |= {(parts[i], s, parts[i + 1].split()[0]) for s in sources}
    return edges


def test_the_readme_diagram_is_the_transition_table() -> None:
    table = {(str(t), str(s), str(d)) for t, sources, d in TRANSITIONS for s in sources}
    assert _readme_edges() == table


def test_a_run_to_finished(tmp_path: Path) -> None:
    ctx = make_context(tmp_path, ScriptedClient([call("finish", '{"message": "ok"}')]))
    try:
        AgentMachine(ctx).drive()
    finally:
        ctx.sandbox.close()
    assert transitions_of(ctx) == [
        ("init", "planning", "start"),
        ("planning", "acting", "act"),
        ("acting", "observing", "observe"),
        ("observing", "finished", "finish"),
    ]
    assert read_snapshot(ctx.store.run_dir).state == "finished"
    assert ctx.snapshot.finish_message == "ok"


def test_an_illegal_transition_ends_in_errored_not_a_jump(tmp_path, monkeypatch) -> None:
    ctx = make_context(tmp_path, ScriptedClient([]))
    # A buggy handler asks init to jump straight to finished.
    monkeypatch.setitem(machine.HANDLERS, "init", lambda ctx: Next("finish", "bug"))
    AgentMachine(ctx).drive()
    (move,) = [e for e in ctx.store.read_events() if isinstance(e, Transition)]
    assert (move.source, move.dest, move.trigger) == ("init", "errored", "fail")
    assert "illegal transition 'finish' from init" in move.reason
    assert ctx.snapshot.reason == "internal"


def test_a_crashing_handler_ends_in_errored(tmp_path, monkeypatch) -> None:
    def broken(ctx: RunContext) -> Next:
        raise RuntimeError("boom")

    ctx = make_context(tmp_path, ScriptedClient([]))
    monkeypatch.setitem(machine.HANDLERS, "init", broken)
    AgentMachine(ctx).drive()
    assert ctx.snapshot.state == "errored"
    assert "RuntimeError: boom" in ctx.snapshot.message


def test_provider_failure_ends_errored_with_reason(tmp_path: Path) -> None:
    ctx = make_context(tmp_path, ScriptedClient([ProviderError("RateLimitError: slow down")]))
    try:
        AgentMachine(ctx).drive()
    finally:
        ctx.sandbox.close()
    assert (ctx.snapshot.state, ctx.snapshot.reason) == ("errored", "provider")
    assert transitions_of(ctx)[-1] == ("planning", "errored", "fail")


@pytest.mark.parametrize("limit", [1, 3])
def test_iteration_limit(tmp_path: Path, limit: int) -> None:
    answers = [call("think", '{"thought": "hm"}') for _ in range(5)]
    client = ScriptedClient(answers)
    ctx = make_context(tmp_path, client, max_iterations=limit)
    try:
        AgentMachine(ctx).drive()
    finally:
        ctx.sandbox.close()
    assert client.calls == limit
    assert (ctx.snapshot.state, ctx.snapshot.reason) == ("errored", "limit")
