"""Repository instructions at work in a run: loaded once when a new run starts and saved as
an event (a resume reads nothing again), knowledge recalled when a later user message
triggers it, and `.openhands/setup.sh` sourced once. Reading and showing the files is
`controller/agent/instructions.py`."""

from __future__ import annotations

import os
import stat
from collections.abc import Sequence
from pathlib import Path

from controller.agent.context import RunContext
from controller.agent.instructions import (
    MAX_SETUP_OUTPUT_CHARS,
    SETUP_SCRIPT,
    SETUP_TIMEOUT_S,
    USER_MICROAGENTS_DIR,
    match_triggers,
    read_instructions,
    real_dir,
)
from state_store.events import (
    Event,
    InstructionsLoaded,
    KnowledgeRecalled,
    SetupScriptRan,
    UserMessage,
)


def _loaded(events: Sequence[Event]) -> InstructionsLoaded | None:
    return next((e for e in reversed(events) if isinstance(e, InstructionsLoaded)), None)


def _already_recalled(events: Sequence[Event]) -> set[str]:
    names: set[str] = set()
    for e in events:
        if isinstance(e, InstructionsLoaded | KnowledgeRecalled):
            names.update(r.name for r in e.recalled)
    return names


def host_workspace(ctx: RunContext) -> Path:
    return Path(ctx.host_workdir or ctx.workdir)


def load_instructions(ctx: RunContext) -> None:
    """At the start of a new run (before the model was first asked): read the workspace's
    instruction files once and save them with what the task triggered. A resume finds the
    event and reads nothing (without one, only a run whose model was never answered reads
    the workspace again)."""
    if not ctx.config.agent.enable_prompt_extensions or ctx.snapshot.counters.steps:
        return
    if _loaded(ctx.events) is not None:
        return
    user_dir = Path(USER_MICROAGENTS_DIR).expanduser()
    files, warnings = read_instructions(host_workspace(ctx), user_dir)
    for warning in warnings:
        ctx.reporter.info(f"runhands: warning: {warning}")
    task = next(
        (e.content for e in ctx.events if isinstance(e, UserMessage) and e.origin == "task"), ""
    )
    recalled = match_triggers(files, task, set(), ctx.config.agent.disabled_microagents)
    if files or warnings:  # a workspace without instructions adds nothing to the log
        ctx.record(InstructionsLoaded, files=files, recalled=recalled, warnings=warnings)


def recall_knowledge(ctx: RunContext, message: Event) -> None:
    """After a user message: the knowledge microagents it newly triggers, from the files
    saved at the run's start (never read again)."""
    loaded = _loaded(ctx.events)
    if loaded is None or not isinstance(message, UserMessage):
        return
    if not ctx.config.agent.enable_prompt_extensions:
        return
    skip = _already_recalled(ctx.events)
    recalled = match_triggers(
        loaded.files, message.content, skip, ctx.config.agent.disabled_microagents
    )
    if recalled:
        ctx.record(KnowledgeRecalled, for_seq=message.seq, recalled=recalled)


def recall_missed(ctx: RunContext) -> None:
    """At (re)start: recall for the later user messages a crash left unanswered (saved, but
    not what they triggered). Matching again is safe: the files are the saved ones, and a
    message that triggered nothing triggers nothing again."""
    loaded = _loaded(ctx.events)
    if loaded is None:
        return
    answered = {e.for_seq for e in ctx.events if isinstance(e, KnowledgeRecalled)}
    for event in list(ctx.events):
        new = isinstance(event, UserMessage) and event.seq > loaded.seq
        if new and event.seq not in answered:
            recall_knowledge(ctx, event)


def run_setup_script(ctx: RunContext) -> None:
    """OpenHands' `maybe_run_setup_script`: source `.openhands/setup.sh` in the agent's
    shell (its exports and `cd` persist) once, when a new run starts; a failure is a
    warning. (Not `chmod +x` first as OpenHands does: `.openhands/` is read-only in the
    sandbox, and `source` does not need it.)"""
    if ctx.snapshot.counters.steps or any(isinstance(e, SetupScriptRan) for e in ctx.events):
        return
    root = host_workspace(ctx)
    if not real_dir(root, ".openhands"):
        return
    try:
        info = os.lstat(root / SETUP_SCRIPT)
    except OSError:
        return
    if not stat.S_ISREG(info.st_mode):
        ctx.reporter.info(f"runhands: warning: {SETUP_SCRIPT} is not a regular file: not run")
        return
    from controller.agent.tools import clip_observation

    command = f"source {SETUP_SCRIPT}"
    ctx.reporter.info(f"runhands: running {SETUP_SCRIPT}")
    result = ctx.sandbox.run(command, timeout=SETUP_TIMEOUT_S)
    if result.still_running:  # the hard timeout: stop it, the agent needs the shell
        ctx.sandbox.run("C-c", is_input=True)
    exit_code = -1 if result.still_running else result.exit_code
    ctx.record(
        SetupScriptRan,
        command=command,
        output=clip_observation(result.output, MAX_SETUP_OUTPUT_CHARS),
        exit_code=exit_code,
        timed_out=result.still_running,
    )
    if exit_code != 0:
        how = "timed out" if result.still_running else f"failed (exit code {exit_code})"
        ctx.reporter.info(f"runhands: warning: {SETUP_SCRIPT} {how}; the run goes on")
