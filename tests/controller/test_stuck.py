"""Stuck detection over hand-built event lists: each pattern, and loops that are not."""

from __future__ import annotations

import itertools

from controller.agent.stuck import detect_stuck
from controller.agent.tools import describe_action
from state_store.events import (
    Action,
    Condensation,
    ExecuteBash,
    Finish,
    ModelResponse,
    Observation,
    StrReplaceEditor,
    ToolArgs,
    ToolCall,
    Transition,
    UserMessage,
)

_seq = itertools.count(1)
CWD = "\n[Current working directory: {}]"


def step(args: ToolArgs, output: str, *, error: bool = False, code: int | None = 0) -> list:
    """One model answer with one tool call, carried out, with the usual bookkeeping."""
    n = next(_seq)
    call = ToolCall(id=f"c{n}", name=type(args).__struct_config__.tag, arguments="{}")
    return [
        ModelResponse(seq=n, ts=0, step=n, model="m", content=None, tool_calls=[call]),
        Transition(seq=n, ts=0, source="planning", dest="acting", trigger="act", reason=""),
        Action(seq=n, ts=0, step=n, tool_call_id=call.id, args=args),
        Observation(
            seq=n,
            ts=0,
            step=n,
            tool_call_id=call.id,
            tool=call.name,
            content=output,
            error=error,
            exit_code=code if isinstance(args, ExecuteBash) else None,
        ),
        Transition(seq=n, ts=0, source="observing", dest="planning", trigger="plan", reason=""),
    ]


def bash(command: str, output: str, code: int | None = 0, **extra) -> list:
    return step(ExecuteBash(command=command, **extra), output, code=code)


def say(text: str) -> list:
    n = next(_seq)
    return [
        ModelResponse(seq=n, ts=0, step=n, model="m", content=text),
        UserMessage(seq=n, ts=0, content="please continue", origin="auto_continue"),
    ]


def malformed() -> list:
    n = next(_seq)
    call = ToolCall(id=f"c{n}", name="execute_bash", arguments="{oops")
    return [
        ModelResponse(seq=n, ts=0, step=n, model="m", content=None, tool_calls=[call]),
        Observation(
            seq=n,
            ts=0,
            step=n,
            tool_call_id=call.id,
            tool="execute_bash",
            content="not valid JSON",
            error=True,
        ),
    ]


def condensed() -> Condensation:
    return Condensation(seq=0, ts=0, kept_until=2, forgotten_until=5)


def repeat(make, times: int) -> list:
    return [event for _ in range(times) for event in make()]


def pattern(events: list) -> str | None:
    verdict = detect_stuck(events)
    return verdict.pattern if verdict else None


# ---- the same action with the same observation 4 times -------------------------------------


def test_same_action_and_observation_four_times() -> None:
    events = repeat(lambda: bash("ls", "a b"), 4)
    verdict = detect_stuck(events)
    assert verdict is not None and verdict.pattern == "repeated_action"
    assert "4 times" in verdict.reason and "$ ls" in verdict.reason


def test_three_times_is_not_yet_a_loop() -> None:
    assert pattern(repeat(lambda: bash("ls", "a b"), 3)) is None


def test_a_different_working_directory_line_does_not_make_outputs_differ() -> None:
    events = [e for d in ("/a", "/b", "/a", "/c") for e in bash("ls", "x" + CWD.format(d))]
    assert pattern(events) == "repeated_action"


def test_openhands_metadata_lines_do_not_make_outputs_differ() -> None:
    # A completed command ends with OpenHands' cwd, interpreter and exit-code lines.
    def done(cwd: str, python: str) -> str:
        return (
            f"x\n[The command completed with exit code 0.]{CWD.format(cwd)}\n"
            f"[Python interpreter: {python}]\n[Command finished with exit code 0]"
        )

    runs = [("/a", "/v1/python"), ("/b", "/v2/python"), ("/a", "/v1/python"), ("/c", "/p")]
    events = [e for d, py in runs for e in bash("ls", done(d, py))]
    assert pattern(events) == "repeated_action"


def test_editor_views_repeated() -> None:
    events = repeat(lambda: step(StrReplaceEditor(command="view", path="/w/f"), "1\tx"), 4)
    verdict = detect_stuck(events)
    assert verdict is not None and "edit view /w/f" in verdict.reason


def test_user_messages_between_do_not_break_the_loop() -> None:
    warning = UserMessage(seq=0, ts=0, content="you repeat yourself", origin="warning")
    events = [*repeat(lambda: bash("ls", "a"), 3), warning, *bash("ls", "a")]
    assert pattern(events) == "repeated_action"


def test_a_different_move_at_the_end_breaks_the_loop() -> None:
    assert pattern([*repeat(lambda: bash("ls", "a"), 4), *bash("pwd", "/w")]) is None
    assert pattern([*repeat(lambda: bash("ls", "a"), 4), *say("hmm")]) is None
    assert pattern([*repeat(lambda: bash("ls", "a"), 4), *malformed()]) is None


# ---- the same action 3 times, each an error --------------------------------------------------


def test_same_action_failing_three_times() -> None:
    events = repeat(lambda: bash("make", "error 1", code=2), 3)
    verdict = detect_stuck(events)
    assert verdict is not None and verdict.pattern == "repeated_error"
    assert "failed 3 times" in verdict.reason


def test_errors_may_differ_in_their_text() -> None:
    events = [e for i in range(3) for e in bash("./flaky", f"error at {i}", code=1)]
    assert pattern(events) == "repeated_error"


def test_editor_errors_count_as_errors() -> None:
    args = StrReplaceEditor(command="str_replace", path="/w/f", old_str="x", new_str="y")
    events = repeat(lambda: step(args, "No replacement was performed", error=True), 3)
    assert pattern(events) == "repeated_error"


def test_three_identical_actions_with_only_two_errors() -> None:
    events = [
        *bash("make", "ok", code=0),
        *bash("make", "error", code=2),
        *bash("make", "error", code=2),
    ]
    assert pattern(events) is None
    events = [*bash("make", "error", code=2), *bash("make", "error", code=2), *bash("make", "ok")]
    assert pattern(events) is None


def test_three_different_failing_commands() -> None:
    events = [e for c in ("a", "b", "c") for e in bash(c, "command not found", code=127)]
    assert pattern(events) is None


def test_malformed_calls_are_not_repeated_actions() -> None:
    assert pattern(repeat(malformed, 4)) is None


# ---- the same text answer 3 times ---------------------------------------------------------


def test_same_text_answer_three_times() -> None:
    verdict = detect_stuck(repeat(lambda: say("I am done."), 3))
    assert verdict is not None and verdict.pattern == "monologue"
    assert "I am done." in verdict.reason


def test_different_text_answers_or_an_action_between() -> None:
    assert pattern([*say("a"), *say("b"), *say("a")]) is None
    assert pattern([*say("a"), *say("a"), *bash("ls", "x"), *say("a")]) is None
    assert pattern(repeat(lambda: say(""), 3)) is None  # empty answers: not a monologue


# ---- A,B,A,B,A,B -----------------------------------------------------------------------------


def test_two_actions_alternating_over_six_steps() -> None:
    events = repeat(lambda: [*bash("cd a", ""), *bash("cd ..", "")], 3)
    verdict = detect_stuck(events)
    assert verdict is not None and verdict.pattern == "alternation"
    assert "$ cd a" in verdict.reason and "$ cd .." in verdict.reason


def test_alternation_needs_six_steps_and_the_same_results() -> None:
    assert (
        pattern([*repeat(lambda: [*bash("a", "1"), *bash("b", "2")], 2), *bash("a", "1")]) is None
    )
    events = [e for i in range(3) for e in (*bash("a", f"{i}"), *bash("b", "2"))]
    assert pattern(events) is None  # A's output changes: something is happening


def test_parallel_tool_calls_count_as_separate_moves() -> None:
    n = next(_seq)
    calls = [ToolCall(id=f"p{n}-{i}", name="execute_bash", arguments="{}") for i in range(4)]
    events: list = [ModelResponse(seq=n, ts=0, step=n, model="m", content=None, tool_calls=calls)]
    for call in calls:
        events.append(
            Action(seq=n, ts=0, step=n, tool_call_id=call.id, args=ExecuteBash(command="ls"))
        )
        events.append(
            Observation(seq=n, ts=0, step=n, tool_call_id=call.id, tool="execute_bash", content="a")
        )
    assert pattern(events) == "repeated_action"


# ---- condensation without progress ----------------------------------------------------------


def test_condensations_without_a_successful_action() -> None:
    def condensed_failure() -> list:
        return [condensed(), *bash(f"try{next(_seq)}", "nope", code=1)]

    events = [*bash("ls", "ok"), *repeat(condensed_failure, 10)]
    verdict = detect_stuck(events)
    assert verdict is not None and verdict.pattern == "condensation"
    assert "10 times" in verdict.reason
    assert pattern([*bash("ls", "ok"), *repeat(condensed_failure, 9)]) is None


def test_condensations_with_progress_between() -> None:
    def condensed_success() -> list:
        return [condensed(), *bash(f"step{next(_seq)}", "ok")]

    assert pattern(repeat(condensed_success, 12)) is None


# ---- what must not look stuck -----------------------------------------------------------------


def test_a_long_build_polled_with_different_outputs() -> None:
    still = "\n[The command has no new output after 10 seconds.]"
    events = [
        *bash("make -j4", "compiling 1" + still, code=-1),
        *[
            e
            for i in range(2, 12)
            for e in bash("", f"compiling {i}" + still, code=-1, is_input=True)
        ],
    ]
    assert pattern(events) is None


def test_the_same_command_with_different_outputs() -> None:
    events = [e for i in range(6) for e in bash("date +%s%N", f"{i}")]
    assert pattern(events) is None


def test_normal_progress_and_short_runs() -> None:
    assert pattern([]) is None
    assert pattern(bash("ls", "a")) is None
    events = [*bash("ls", "a"), *bash("cat f", "x"), *step(Finish(message="ok"), "done")]
    assert pattern(events) is None


def test_describe_is_short() -> None:
    assert describe_action(ExecuteBash(command="", is_input=True)) == "input "
    assert describe_action(Finish()) == "finish"
    long = describe_action(ExecuteBash(command="x" * 500), 80)
    assert len(long) <= 82 and long.endswith("...")
