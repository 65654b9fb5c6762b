"""Stuck detection: is the agent looping? Pure functions over the run's events, no I/O.

The events are reduced to the agent's recent *moves*: each tool call with its result
(validated arguments and observation), each text answer, and each malformed call. User
messages (auto-replies, warnings, instructions) and bookkeeping events are transparent.
A pattern only counts when it ends at the newest move, so any different move breaks it.

Patterns (OpenHands' stuck detector):
- `repeated_action`: the same action with the same observation 4 times in a row;
- `repeated_error`: the same action 3 times in a row, each answered by an error;
- `monologue`: the same non-empty text answer 3 times in a row (no action between);
- `alternation`: A,B,A,B,A,B over the last 6 moves, A≠B, each with the same result;
- `condensation`: 10 condensations with no successful tool call between them.
"""

from __future__ import annotations

import re
from collections.abc import Sequence

import msgspec

from controller.agent.tools import describe_action, first_line
from state_store.events import (
    Action,
    Event,
    ModelResponse,
    Observation,
    ToolArgs,
)

REPEATED_ACTION = 4
REPEATED_ERROR = 3
MONOLOGUE = 3
ALTERNATION = 6
CONDENSATIONS = 10
# A condensation event is found by its tag, so this works whatever module defines it.
CONDENSATION_TAG = "condensation"

# The trailing metadata lines say where the shell is and which python it has, not what the
# action did (the exit code is also in the line before them).
_CWD_LINE = re.compile(
    r"(?:\n?\[Current working directory: [^\n]*\])?(?:\n?\[Python interpreter: [^\n]*\])?"
    r"(?:\n?\[Command finished with exit code -?\d+\])?\s*\Z"
)


class StuckVerdict(msgspec.Struct, frozen=True):
    pattern: str
    reason: str


class Move(msgspec.Struct, frozen=True):
    """One thing the agent did. `kind`: "act" (a tool call carried out), "say" (a text
    answer) or "malformed" (a tool call that could not be carried out)."""

    kind: str
    args: ToolArgs | None = None
    text: str = ""  # the observation (without its cwd line) or the answer's text
    failed: bool = False

    def same(self, other: Move) -> bool:
        return (self.kind, self.args, self.text) == (other.kind, other.args, other.text)


def detect_stuck(events: Sequence[Event]) -> StuckVerdict | None:
    """The first loop pattern the tail of `events` shows, or None."""
    moves = recent_moves(events, ALTERNATION)
    for check in (_repeated_error, _monologue, _repeated_action, _alternation):
        verdict = check(moves)
        if verdict is not None:
            return verdict
    return _condensation_loop(events)


def recent_moves(events: Sequence[Event], wanted: int) -> list[Move]:
    """At least the last `wanted` moves (when the run has that many), oldest first. Every
    model answer yields at least one move, so the last `wanted` answers suffice."""
    start, answers = 0, 0
    for index in range(len(events) - 1, -1, -1):
        if isinstance(events[index], ModelResponse):
            answers += 1
            if answers == wanted:
                start = index
                break
    return _moves(events[start:])


def _moves(events: Sequence[Event]) -> list[Move]:
    actions: dict[str, Action] = {}
    moves: list[Move] = []
    for event in events:
        if isinstance(event, Action):
            actions[event.tool_call_id] = event
        elif isinstance(event, Observation):
            moves.append(_observed(event, actions.pop(event.tool_call_id, None)))
        elif isinstance(event, ModelResponse) and not event.tool_calls:
            moves.append(Move("say", text=(event.content or "").strip()))
    return moves


def _observed(observation: Observation, action: Action | None) -> Move:
    text = _CWD_LINE.sub("", observation.content)
    if action is None:  # malformed, or not run: never the same action as a real one
        return Move("malformed", text=f"{observation.tool}: {text}", failed=True)
    return Move("act", args=action.args, text=text, failed=_failed(observation))


def _failed(observation: Observation) -> bool:
    # -1 is no exit code at all (still running, or cut by a timeout): a build being
    # polled is waiting, not failing.
    code = observation.exit_code
    return observation.error or (code is not None and code not in (0, -1))


def _tail_repeats(moves: list[Move], count: int) -> list[Move] | None:
    """The last `count` moves when they are all the same action, else None."""
    tail = moves[-count:]
    if len(tail) < count or tail[0].kind != "act":
        return None
    first = tail[0]
    return tail if all(m.kind == "act" and m.args == first.args for m in tail) else None


def _repeated_action(moves: list[Move]) -> StuckVerdict | None:
    tail = _tail_repeats(moves, REPEATED_ACTION)
    if tail is None or any(m.text != tail[0].text for m in tail):
        return None
    return StuckVerdict(
        "repeated_action",
        f"the same action was repeated {REPEATED_ACTION} times with the same result: "
        f"{describe_action(tail[0].args)}",
    )


def _repeated_error(moves: list[Move]) -> StuckVerdict | None:
    tail = _tail_repeats(moves, REPEATED_ERROR)
    if tail is None or not all(m.failed for m in tail):
        return None
    return StuckVerdict(
        "repeated_error",
        f"the same action failed {REPEATED_ERROR} times in a row: {describe_action(tail[0].args)}",
    )


def _monologue(moves: list[Move]) -> StuckVerdict | None:
    tail = moves[-MONOLOGUE:]
    if len(tail) < MONOLOGUE or not tail[0].text or tail[0].kind != "say":
        return None
    if not all(m.same(tail[0]) for m in tail):
        return None
    return StuckVerdict(
        "monologue",
        f"the same answer was given {MONOLOGUE} times without an action: "
        f"{first_line(tail[0].text, 80)!r}",
    )


def _alternation(moves: list[Move]) -> StuckVerdict | None:
    tail = moves[-ALTERNATION:]
    if len(tail) < ALTERNATION or any(m.kind != "act" for m in tail):
        return None
    a, b = tail[0], tail[1]
    if a.args == b.args:
        return None  # one action repeated: the other patterns' business
    if not all(m.same(a if i % 2 == 0 else b) for i, m in enumerate(tail)):
        return None
    return StuckVerdict(
        "alternation",
        f"two actions alternated {ALTERNATION // 2} times each with the same results: "
        f"{describe_action(a.args)} and {describe_action(b.args)}",
    )


def is_condensation(event: Event) -> bool:
    """The hook for condensation events, matched by their tag (see CONDENSATION_TAG)."""
    return getattr(type(event).__struct_config__, "tag", None) == CONDENSATION_TAG


def condensations_without_progress(events: Sequence[Event]) -> int:
    """Condensations since the last tool call that succeeded: a run that keeps forgetting
    its history while none of its actions works is not getting anywhere."""
    count = 0
    for event in reversed(events):
        if is_condensation(event):
            count += 1
        elif isinstance(event, Observation) and not _failed(event):
            break
    return count


def _condensation_loop(events: Sequence[Event]) -> StuckVerdict | None:
    count = condensations_without_progress(events)
    if count < CONDENSATIONS:
        return None
    return StuckVerdict(
        "condensation",
        f"the history was condensed {count} times with no successful action in between",
    )
