"""Condensation: what is forgotten, what the model then sees, and that resume sees the same."""

from __future__ import annotations

import msgspec

from controller.agent.condenser import estimate_tokens, plan_cut, why_condense
from controller.agent.history import SUMMARY_INTRO, build_messages
from controller.config import AppConfig
from state_store.events import (
    Action,
    Condensation,
    ExecuteBash,
    InstructionFile,
    InstructionsLoaded,
    ModelResponse,
    Observation,
    ToolCall,
    Transition,
    UserMessage,
)


def make_run(steps: int, output: str = "x" * 400) -> list:
    """A task then `steps` steps of model answer, action, observation, transitions."""
    events: list = [UserMessage(seq=1, ts=0, content="the task")]
    for step in range(1, steps + 1):
        seq = len(events) + 1
        call = ToolCall(id=f"c{step}", name="execute_bash", arguments='{"command": "ls"}')
        events += [
            ModelResponse(seq=seq, ts=0, step=step, model="m", content=None, tool_calls=[call]),
            Transition(
                seq=seq + 1, ts=0, source="planning", dest="acting", trigger="act", reason=""
            ),
            Action(
                seq=seq + 2, ts=0, step=step, tool_call_id=call.id, args=ExecuteBash(command="ls")
            ),
            Observation(
                seq=seq + 3,
                ts=0,
                step=step,
                tool_call_id=call.id,
                tool="execute_bash",
                content=f"{step}:{output}",
            ),
        ]
    return events


def test_the_cut_keeps_the_task_and_recent_steps_and_never_splits_a_step() -> None:
    events = make_run(30)
    cut = plan_cut(events, keep_first=1, budget=1000)
    assert cut is not None and cut.kept_until == 1
    first_kept = next(e for e in events if e.seq == cut.forgotten_until + 1)
    assert isinstance(first_kept, ModelResponse)  # the kept part starts with a whole step
    forget = Condensation(
        seq=999, ts=0, kept_until=cut.kept_until, forgotten_until=cut.forgotten_until
    )
    view = build_messages("sys", [*events, forget])
    assert view[1]["content"] == "the task"
    assert view[2]["role"] == "assistant"  # dropped: no summary, straight to recent steps
    assert estimate_tokens(view) <= 1000 + 200
    ids = [m["tool_call_id"] for m in view if m["role"] == "tool"]
    calls = [c["id"] for m in view for c in m.get("tool_calls", [])]
    assert ids == calls  # every kept call has its result and vice versa


def test_the_summary_stands_where_the_forgotten_steps_were() -> None:
    events = make_run(10)
    # steps 1-5 are events 2-21
    events.append(
        Condensation(seq=100, ts=0, kept_until=1, forgotten_until=21, summary="did ls five times")
    )
    view = build_messages("sys", events)
    assert view[2] == {"role": "user", "content": SUMMARY_INTRO + "did ls five times"}
    assert view[3]["role"] == "assistant" and view[4]["content"].startswith("6:")


def test_the_latest_condensation_defines_the_view() -> None:
    events = make_run(10)
    events.append(Condensation(seq=100, ts=0, kept_until=1, forgotten_until=21, summary="a"))
    events.append(Condensation(seq=101, ts=0, kept_until=1, forgotten_until=33, summary="b"))
    view = build_messages("sys", events)
    assert view[2]["content"].endswith("b") and view[4]["content"].startswith("9:")


def test_nothing_new_to_forget_gives_no_cut() -> None:
    events = make_run(3)
    assert plan_cut(events, keep_first=1, budget=100_000) is None
    events.append(Condensation(seq=50, ts=0, kept_until=1, forgotten_until=9, summary=None))
    assert plan_cut(events, keep_first=1, budget=100_000) is None


def test_when_to_condense() -> None:
    config = AppConfig()
    small = build_messages("sys", make_run(2))
    big = build_messages("sys", make_run(40))
    assert why_condense(config, small, 2000) == ""
    assert "input window (2000)" in why_condense(config, big, 2000)
    config.condenser.max_size = 10
    assert "max_size 10" in why_condense(config, big, None)
    config.condenser.type = "noop"
    assert why_condense(config, big, 2000) == ""


def test_the_repository_instructions_stay_with_the_task() -> None:
    """AGENTS.md holds for the whole run: a condensation keeps its message after the task."""
    agents = InstructionFile(name="agents", path="AGENTS.md", kind="repo", content="Use tabs.")
    run = make_run(30)
    loaded = InstructionsLoaded(seq=2, ts=0, files=[agents])
    events = [run[0], loaded, *[msgspec.structs.replace(e, seq=e.seq + 1) for e in run[1:]]]
    cut = plan_cut(events, keep_first=1, budget=1000)
    assert cut is not None and cut.kept_until == 2
    forget = Condensation(
        seq=999, ts=0, kept_until=cut.kept_until, forgotten_until=cut.forgotten_until
    )
    view = build_messages("sys", [*events, forget])
    assert view[1]["content"] == "the task" and "Use tabs." in view[2]["content"]
    assert view[3]["role"] == "assistant"
