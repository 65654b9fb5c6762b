"""The run's state is the fold of its log: the live snapshot equals the one rebuilt from the
events after every single event of a run (tool calls, a malformed call, a text answer,
warnings, finish), and the fold's rules hold on their own."""

from __future__ import annotations

from pathlib import Path

import msgspec

from controller.agent.machine import AgentMachine
from controller.agent.run_state import derive
from controller.model_client import Completion
from state_store.events import Action, Finish, ModelResponse, Observation, ToolCall, UserMessage
from tests.controller.test_machine import ScriptedClient, make_context


def answer(*calls: tuple[str, str], content: str | None = None) -> Completion:
    tool_calls = [ToolCall(id=f"c{i}", name=n, arguments=a) for i, (n, a) in enumerate(calls)]
    return Completion(model="m", content=content, tool_calls=tool_calls)


def test_the_live_snapshot_is_the_fold_of_the_log_after_every_event(tmp_path: Path) -> None:
    bash = ("execute_bash", '{"command": "echo hi"}')
    client = ScriptedClient(
        [
            answer(bash, ("think", '{"thought": "x"}')),
            answer(("no_such_tool", "{}")),  # malformed
            answer(content="thinking aloud"),  # text only: "continue"
            *[answer(bash) for _ in range(4)],  # a loop: the stuck warning
            answer(("finish", '{"message": "ok"}'), bash),  # a call after finish: not run
        ]
    )
    ctx = make_context(tmp_path, client, max_iterations=10)
    checked = 0
    record = ctx.record

    def checking(event_type, **fields):
        nonlocal checked
        event = record(event_type, **fields)
        rebuilt = derive("r", ctx.store.read_events())
        assert msgspec.to_builtins(ctx.snapshot) == msgspec.to_builtins(rebuilt), event
        checked += 1
        return event

    ctx.record = checking
    try:
        AgentMachine(ctx).drive()
    finally:
        ctx.sandbox.close()
    assert (ctx.snapshot.state, ctx.snapshot.finish_message) == ("finished", "ok")
    assert checked > 40
    events = ctx.store.read_events()
    said = [e.origin for e in events if isinstance(e, UserMessage)]
    assert said.count("auto_continue") == 1 and "warning" in said
    observations = [e for e in events if isinstance(e, Observation)]
    assert [o.malformed for o in observations].count(True) == 1
    assert observations[-1].content.startswith("Not run: the task was already finished")


def test_the_fold_rules(tmp_path: Path) -> None:
    calls = [
        ToolCall(id="a", name="execute_bash", arguments="{}"),
        ToolCall(id="b", name="x", arguments="{}"),
    ]
    events = [
        ModelResponse(
            seq=1,
            ts=1.0,
            step=1,
            model="m",
            content=None,
            tool_calls=calls,
            prompt_tokens=10,
            cost=0.5,
        ),
        Action(seq=2, ts=2.0, step=1, tool_call_id="a", args=Finish(message="done")),
    ]
    snapshot = derive("r", events)
    assert [c.id for c in snapshot.open_calls] == ["a", "b"]
    assert snapshot.started_calls == ["a"]  # saved as started: it may have run
    assert snapshot.finish_message == "done"
    assert (snapshot.counters.steps, snapshot.counters.cost) == (1, 0.5)
    instruction = UserMessage(seq=3, ts=3.0, content="more", origin="instruction")
    assert derive("r", [*events, instruction]).finish_message is None
