"""Crashing a representative run and resuming it (tests/e2e/test_crash_recovery.py,
tests/e2e/test_store_faults.py): the run, its fixed-script model, and the checks that the
outcome equals the run that never crashed."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import msgspec

from controller.agent.run_state import derive
from state_store.events import (
    Action,
    Checkpoint,
    ModelResponse,
    Observation,
    RunEnded,
    UserMessage,
)
from state_store.store import load_log, read_snapshot
from tests.conftest import TEST_API_KEY
from tests.fixed_script import Step, bash, edit, fixed_script
from tests.forked_cli import KILLED, Exit, run_forked
from tests.scripted_model import ScriptedModel

RUN = "crashy"
NOTES = "{workspace}/notes.txt"  # the editor takes absolute paths


# One representative run: tool calls, two calls in one answer, the editor, a text-only
# answer, a loop the model is warned about, a budget warning (80% of 12 steps), a
# condensation (more than 14 messages), and finish. Side effects go to side.log, once each.
SCRIPT: list[Step] = [
    [bash("echo one >> side.log")],
    [bash("echo two >> side.log"), edit(command="create", path=NOTES, file_text="a\n")],
    "Let me think about what is left.",
    [edit(command="str_replace", path=NOTES, old_str="a", new_str="b")],
    [bash("cat notes.txt")],
    [bash("cat notes.txt")],
    [bash("cat notes.txt")],
    [bash("cat notes.txt")],  # 4th identical action and result: the stuck warning
    [bash("echo three >> side.log")],
    [("think", {"thought": "nearly done"})],  # step 10: 80% of the step budget
    [("finish", {"message": "all done"})],
    [bash("echo AFTER-FINISH >> side.log")],  # never reached: the run has finished
]
ITERATIONS = "12"
CONFIG = '[condenser]\ntype = "llm"\nmax_size = 14\n'


@dataclass
class Outcome:
    code: int
    state: str
    side_log: str
    notes: str
    actions: list[Any]
    requests: int
    log: bytes = b""
    events: list[Any] = field(default_factory=list)


class Workplace:
    """A home, a workspace and a state directory; runs the CLI against the model."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.resume_stderr = ""  # the last process's stderr, for failure messages
        self.home, self.workspace = root / "home", root / "workspace"
        self.model = ScriptedModel(fixed_script(SCRIPT, self.workspace))
        self.state = self.home / ".openhands-state"
        self.home.mkdir(parents=True)
        self.workspace.mkdir()
        (root / "config.toml").write_text(CONFIG)
        self.env = {
            "PATH": "/usr/local/bin:/usr/bin:/bin",
            "HOME": str(self.home),
            "XDG_CONFIG_HOME": str(self.home / ".config"),
            "LANG": "C.UTF-8",
            "LLM_MODEL": "openai/scripted-model",
            "LLM_API_KEY": TEST_API_KEY,
            "LLM_BASE_URL": self.model.base_url,
            "LLM_NUM_RETRIES": "0",
            "SANDBOX_SOFT_TIMEOUT": "5",
        }

    def cli(self, *args: str, fault: str | None = None) -> Exit:
        env = dict(self.env)
        if fault:
            env["RUNHANDS_TEST_FAULT"] = fault
        full = [*args, "--config-file", str(self.root / "config.toml")]
        return run_forked(full, env=env, cwd=self.workspace)

    def run(self, fault: str | None = None) -> Exit:
        return self.cli("run", "-n", RUN, "-i", ITERATIONS, "-t", "do the steps", fault=fault)

    def resume(self, fault: str | None = None) -> Exit:
        return self.cli("resume", RUN, fault=fault)

    @property
    def log_path(self) -> Path:
        return self.state / RUN / "events.jsonl"

    def log_bytes(self) -> bytes:
        return self.log_path.read_bytes() if self.log_path.exists() else b""

    def outcome(self, code: int) -> Outcome:
        events = load_log(self.log_path).events
        return Outcome(
            code=code,
            state=derive(RUN, events).state,
            side_log=_read(self.workspace / "side.log"),
            notes=_read(self.workspace / "notes.txt"),
            actions=[
                msgspec.json.encode(e.args).decode().replace(str(self.workspace), "{workspace}")
                for e in events
                if isinstance(e, Action)
            ],
            requests=len(self.model.requests),
            log=self.log_bytes(),
            events=events,
        )


def _read(path: Path) -> str:
    return path.read_text() if path.exists() else ""


def check_same_outcome(place: Workplace, code: int, reference: Outcome, crashed: bytes) -> None:
    got = place.outcome(code)
    assert (got.code, got.state) == (reference.code, reference.state), place.resume_stderr
    assert got.side_log == reference.side_log  # every side effect exactly once
    assert got.notes == reference.notes
    assert got.actions == reference.actions  # no step lost, repeated or added
    assert got.requests <= reference.requests + 1  # at most one model request repeated
    assert got.log.startswith(crashed)  # what was saved before the crash is untouched
    calls = [c.id for e in got.events if isinstance(e, ModelResponse) for c in e.tool_calls]
    observed = Counter(e.tool_call_id for e in got.events if isinstance(e, Observation))
    assert observed == Counter(set(calls)), "one observation per tool call"
    assert sum(isinstance(e, RunEnded) and e.state == "finished" for e in got.events) == 1
    # The workspace's checkpoints: none lost, each step's files saved as in the reference.
    assert _checkpoints(got.events) == _checkpoints(reference.events)
    _check_snapshot_is_the_log(place, got.events)


def _checkpoints(events: list[Any]) -> set[tuple[int, str]]:
    return {(e.step, e.tree) for e in events if isinstance(e, Checkpoint)}


def _check_snapshot_is_the_log(place: Workplace, events: list[Any]) -> None:
    """The saved snapshot is exactly the fold of the log up to the event it has seen."""
    saved = read_snapshot(place.state / RUN)
    rebuilt = derive(RUN, events[: saved.last_seq])
    assert msgspec.to_builtins(saved) == msgspec.to_builtins(rebuilt)


@dataclass
class Crash:
    place: Workplace
    code: int  # the final exit code
    crashed: bytes  # the log as the crash left it
    killed: bool = True  # False: the fault point lay past the run's last write


def crash_then_resume(root: Path, fault: str, second: str | None = None) -> Crash:
    place = Workplace(root)
    with place.model:
        first = place.run(fault=fault)
        crashed = place.log_bytes()
        if first.code != KILLED:  # past the last write: nothing to resume
            place.resume_stderr = first.stderr
            return Crash(place, first.code, crashed, killed=False)
        if not crashed:  # killed before the run existed: the name is free again
            assert "no run named" in place.resume().stderr
            again = place.run()
            place.resume_stderr = again.stderr
            return Crash(place, again.code, crashed)
        if second is not None:
            place.resume(fault=second)
        result = place.resume()
        place.resume_stderr = result.stderr
        assert "Traceback" not in result.stderr, result.stderr
        if _ended(crashed):  # killed after its end was saved: resume only says so
            assert result.code == 2
            assert "is finished" in result.stderr
            return Crash(place, _ended(crashed).exit_code, crashed)
        return Crash(place, result.code, crashed)


def _ended(log: bytes) -> RunEnded | None:
    """The log's last event when it is `run_ended`."""
    last = log.rstrip(b"\n").rsplit(b"\n", 1)[-1]
    if b'"kind":"run_ended"' not in last:
        return None
    return msgspec.json.decode(last, type=RunEnded)


def reference_run(root: Path) -> Outcome:
    """The run that never crashed; checks it shows every feature the crashes must keep."""
    place = Workplace(root)
    with place.model:
        result = place.run()
        assert result.code == 0, result.stderr
        outcome = place.outcome(result.code)
    assert outcome.side_log == "one\ntwo\nthree\n"
    assert outcome.notes == "b\n"
    kinds = Counter(type(e).__name__ for e in outcome.events)
    assert kinds["Condensation"] >= 1
    assert kinds["Checkpoint"] >= 3
    said = [e.content[:30] for e in outcome.events if isinstance(e, UserMessage)]
    assert any("repeating yourself" in o for o in said), said
    assert any("You have used" in o for o in said), said
    assert any(o.startswith("Please continue") for o in said), said
    return outcome
