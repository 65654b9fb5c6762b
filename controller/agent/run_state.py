"""A run's state, derived from its event log: the one fold that live runs, resume, list and
inspect share.

The live process applies each event as it records it; resume applies the whole log. So the
snapshot a state handler decides from is always exactly what the log says, and the
`snapshot.json` on disk is only a cache of it.
"""

from __future__ import annotations

from collections.abc import Sequence

from controller.agent.lifecycle import TERMINAL, State, Trigger
from state_store.events import (
    Action,
    Checkpoint,
    Condensation,
    Event,
    Finish,
    LogHeader,
    ModelResponse,
    Observation,
    Rewound,
    RunEnded,
    RunForked,
    RunResumed,
    Snapshot,
    Transition,
    UserMessage,
)

TASK_PREVIEW_CHARS = 200
STUCK_KEY = "stuck:"


def derive(run_id: str, events: Sequence[Event]) -> Snapshot:
    """The snapshot the log describes."""
    snapshot = Snapshot(run_id=run_id)
    for index, event in enumerate(events):
        if isinstance(event, Rewound):  # back to the run as it was at `to_seq`
            _rewound(snapshot, derive(run_id, events[: min(event.to_seq, index)]), event)
        apply(snapshot, event)
    return snapshot


def apply(snapshot: Snapshot, event: Event) -> None:
    """Fold one event into the snapshot (in place)."""
    snapshot.last_seq, snapshot.updated_at = event.seq, event.ts
    handler = _APPLY.get(type(event))
    if handler is not None:
        handler(snapshot, event)


def _header(s: Snapshot, e: LogHeader) -> None:
    s.created_at = e.ts


def _transition(s: Snapshot, e: Transition) -> None:
    s.state = e.dest
    s.counters.runtime_s = e.runtime_s
    if e.dest == State.PLANNING:
        s.answered = False
    if e.trigger == Trigger.RESUME:
        if e.source != State.INIT:  # a crash in init during a resume: still from there
            s.resumed_from = e.source
        if e.source in TERMINAL:  # a new start: the old streaks ended with the run
            s.counters.malformed_in_a_row = s.counters.no_action_in_a_row = 0
    elif e.source == State.INIT:
        s.resumed_from = ""
    if e.dest in TERMINAL:
        s.reason, s.message, s.ended = e.end or "internal", e.reason, False


def _model_response(s: Snapshot, e: ModelResponse) -> None:
    c = s.counters
    c.steps += 1
    c.prompt_tokens += e.prompt_tokens
    c.completion_tokens += e.completion_tokens
    c.cost += e.cost
    s.answered = True
    s.open_calls = list(e.tool_calls)
    s.started_calls = []
    s.all_malformed = bool(e.tool_calls)
    s.awaiting_continue = not e.tool_calls
    c.no_action_in_a_row = 0 if e.tool_calls else c.no_action_in_a_row + 1


def _condensation(s: Snapshot, e: Condensation) -> None:  # a summary costs tokens too
    s.counters.prompt_tokens += e.prompt_tokens
    s.counters.completion_tokens += e.completion_tokens
    s.counters.cost += e.cost


def _user_message(s: Snapshot, e: UserMessage) -> None:
    if e.origin == "task" and not s.task:
        s.task = e.content[:TASK_PREVIEW_CHARS]
    if e.origin == "instruction":
        s.finish_message = None
    if e.key.startswith(STUCK_KEY):
        s.stuck_warned_step = s.counters.steps
    elif e.key:
        s.budget_warnings.append(e.key)
    # A budget warning is extra: the text-only answer still gets its "continue".
    if e.origin != "warning" or e.key.startswith(STUCK_KEY):
        s.awaiting_continue = False


def _action(s: Snapshot, e: Action) -> None:
    s.started_calls.append(e.tool_call_id)
    if isinstance(e.args, Finish):
        s.finish_message = e.args.message


def _observation(s: Snapshot, e: Observation) -> None:
    s.open_calls = [c for c in s.open_calls if c.id != e.tool_call_id]
    s.started_calls = [i for i in s.started_calls if i != e.tool_call_id]
    if not e.malformed:
        s.all_malformed = False
    if not s.open_calls:  # the answer is fully handled: one more answer in the streak
        c = s.counters
        c.malformed_in_a_row = c.malformed_in_a_row + 1 if s.all_malformed else 0


def _run_ended(s: Snapshot, e: RunEnded) -> None:
    s.reason, s.message, s.ended = e.reason, e.message, True


def _run_resumed(s: Snapshot, e: RunResumed) -> None:
    s.reason, s.message, s.ended = "", "", False


def _checkpoint(s: Snapshot, e: Checkpoint) -> None:
    if not s.first_tree:
        s.first_tree, s.base_commit = e.tree, e.base_commit
    s.tree, s.skipped = e.tree, [f.path for f in e.skipped]


def _run_forked(s: Snapshot, e: RunForked) -> None:
    """A new process takes the copied history over, in the workspace `tree` was restored to."""
    s.reason, s.message, s.ended = "", "", False
    s.tree, s.parent, s.forked_at = e.tree, e.parent, e.at_step


def _restored(s: Snapshot, e: Rewound) -> None:
    s.tree = e.tree


REWOUND = "rewound"


def _rewound(s: Snapshot, then: Snapshot, e: Rewound) -> None:
    """A rewind is not a move of the machine: the run is put back in the state it had at the
    end of step `to_step` (its open calls, answers, warnings, finish), stopped. What it has
    spent (steps, tokens, cost, time) stays counted: limits count every step taken."""
    for name in (
        "state",
        "open_calls",
        "started_calls",
        "all_malformed",
        "answered",
        "awaiting_continue",
        "finish_message",
        "stuck_warned_step",
        "resumed_from",
    ):
        setattr(s, name, getattr(then, name))
    s.counters.malformed_in_a_row = then.counters.malformed_in_a_row
    s.counters.no_action_in_a_row = then.counters.no_action_in_a_row
    s.reason, s.message, s.ended = REWOUND, f"rewound to the end of step {e.to_step}", True


_APPLY = {
    LogHeader: _header,
    Transition: _transition,
    ModelResponse: _model_response,
    Condensation: _condensation,
    UserMessage: _user_message,
    Action: _action,
    Observation: _observation,
    RunEnded: _run_ended,
    RunResumed: _run_resumed,
    Checkpoint: _checkpoint,
    RunForked: _run_forked,
    Rewound: _restored,
}
