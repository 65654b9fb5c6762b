"""`runhands replay`: re-run a recording's actions and compare the observations.

The recorded tool calls run again, in order, in a fresh local sandbox in the working
directory a run would use; no model is called. Each new observation is compared with the
recorded one once volatile parts (times, durations, pids, temporary paths, working
directories, hex ids) are masked, and the replay stops at the first divergence: a
recording is a regression test for the environment it ran in.
"""

from __future__ import annotations

import difflib
import os
import re
import sys
import tempfile
from pathlib import Path

import msgspec

from controller.agent.checkpoints import CHECKPOINTS_DIR, checkpoint_store
from controller.agent.outcome import ExitCode
from controller.agent.tools import clip_observation, describe_action, run_tool
from controller.config import AppConfig, LoadedConfig, secrets_of
from controller.run.recordings import PATH_END, load_recording, relocate
from controller.run.setup import UserError, resolve_workdir, sandbox_environment
from controller.trajectory import RecordedStep, Recording
from sandbox import LocalSandbox, SandboxError
from sandbox.editor import Editor
from state_store.checkpoints import EMPTY_TREE, CheckpointError
from state_store.events import Finish, Think, ToolArgs
from state_store.store import load_config


class ReplayStep(msgspec.Struct, tag="replay_step", tag_field="kind", kw_only=True):
    """One compared step (`--json`); `recorded` and `replayed` are the masked texts."""

    index: int
    tool: str
    same: bool
    recorded: str
    replayed: str
    note: str = ""


class ReplaySummary(msgspec.Struct, tag="replay_summary", tag_field="kind", kw_only=True):
    """The last `--json` line."""

    source: str
    steps: int
    replayed: int
    same: bool
    diverged_at: int | None
    exit_code: int


_MONTH = r"(?:Jan|Feb|Mar|Apr|May|Jun|Jul|Aug|Sep|Oct|Nov|Dec)"


_DAY = r"(?:Mon|Tue|Wed|Thu|Fri|Sat|Sun)"


# Applied in order: earlier patterns would be broken up by later ones.
_VOLATILE: list[tuple[re.Pattern[str], str]] = [
    (re.compile(r"(?:/private)?/(?:tmp|var/tmp|var/folders)/[^\s'\"`:,;()\[\]{}<>]*"), "<tmp>"),
    (re.compile(r"\b[0-9a-fA-F]{8}-(?:[0-9a-fA-F]{4}-){3}[0-9a-fA-F]{12}\b"), "<uuid>"),
    # `date`: Tue Oct 14 10:22:01 UTC 2025
    (
        re.compile(
            rf"\b{_DAY},? +{_MONTH} +\d{{1,2}},? +\d{{1,2}}:\d{{2}}(?::\d{{2}})?"
            r"(?: +[A-Z]{2,5})?(?: +\d{4})?"
        ),
        "<datetime>",
    ),
    (
        re.compile(
            r"\b\d{4}-\d{2}-\d{2}[T ]\d{2}:\d{2}(?::\d{2}(?:[.,]\d+)?)?"
            r"(?:Z|[+-]\d{2}:?\d{2})?"
        ),
        "<datetime>",
    ),
    (re.compile(r"\b\d{4}-\d{2}-\d{2}\b"), "<date>"),
    (re.compile(rf"\b{_MONTH} +\d{{1,2}} +(?:\d{{1,2}}:\d{{2}}|\d{{4}})\b"), "<date>"),  # ls -l
    (re.compile(r"\b\d{1,2}:\d{2}:\d{2}(?:\.\d+)?\b"), "<time>"),
    (re.compile(r"\b1[5-9]\d{8}(?:\.\d+)?\b"), "<epoch>"),
    (re.compile(r"\b\d+m\d+(?:\.\d+)?s\b"), "<duration>"),  # `time`: 0m0.003s
    (
        re.compile(r"\b\d+(?:\.\d+)?\s?(?:ns|us|µs|ms|s|sec|secs|seconds?|min|minutes?)\b"),
        "<duration>",
    ),
    (re.compile(r"\b0x[0-9a-fA-F]{4,}\b"), "<addr>"),
    (re.compile(r"\b(?=[0-9a-f]*\d)(?=[0-9a-f]*[a-f])[0-9a-f]{7,}\b"), "<hex>"),
    (re.compile(r"^\[\d+\]([+-]?)( +)\d+$", re.MULTILINE), r"[<job>]\1\2<pid>"),  # `cmd &`
    (re.compile(r"^\[\d+\]([+-]?)( +)(?=[A-Z])", re.MULTILINE), r"[<job>]\1\2"),  # [1]+ Done
    (re.compile(r"\b(pid|PID)([ =:]+)\d+\b"), r"\1\2<pid>"),
]


def mask_volatile(text: str, workdirs: list[str]) -> str:
    """text with what legitimately changes between two runs replaced by placeholders.

    Working directories (the recording's and the replay's) become `<workdir>`; then
    temporary paths, UUIDs, dates and times, epoch seconds, durations, memory addresses,
    hex ids (7+ hex digits with a letter and a digit), job numbers and pids are masked.
    """
    for workdir in sorted(
        {w.rstrip("/") for w in workdirs if w.rstrip("/")}, key=len, reverse=True
    ):
        text = re.sub(re.escape(workdir) + PATH_END, "<workdir>", text)
    for pattern, placeholder in _VOLATILE:
        text = pattern.sub(placeholder, text)
    return text


def replay(source: str, loaded: LoadedConfig, *, as_json: bool) -> int:
    """`runhands replay`: 0 when every observation matched, 1 at the first divergence."""
    config = loaded.config
    recording = load_recording(source, Path(config.core.file_store_path).expanduser())
    if not recording.steps:
        raise UserError(f"{source}: no actions to replay")
    workdir = _workdir(config)
    was_empty = _is_empty(workdir)
    # OpenHands files do not say where they ran: its sandbox mount point, /workspace.
    recorded_dir = recording.workdir or config.core.workspace_mount_path_in_sandbox
    _say(
        f"runhands: replaying {len(recording.steps)} actions of {source} in {workdir} "
        f"(recorded in {recorded_dir})"
    )
    for note in recording.notes:
        _say(f"runhands: note: {note}")
    session = _Session(config, workdir, recorded_dir, as_json=as_json)
    try:
        session.files = _files_of(recording, workdir, was_empty)
        diverged = session.run(recording.steps)
    except SandboxError as e:
        _say(f"runhands: error: the sandbox failed: {e}")
        return ExitCode.SANDBOX
    except KeyboardInterrupt:
        _say("runhands: replay interrupted")
        return ExitCode.INTERRUPTED
    except CheckpointError as e:
        raise UserError(f"cannot compare the workspace with the recorded run's: {e}") from None
    finally:
        session.close()
    if diverged and not was_empty:
        _say(f"runhands: note: {workdir} was not empty when the replay started")
    return _conclude(source, len(recording.steps), session.done, diverged, as_json=as_json)


def _conclude(source: str, total: int, done: int, diverged: bool, *, as_json: bool) -> int:
    code = 1 if diverged else 0
    if as_json:
        _emit(
            ReplaySummary(
                source=source,
                steps=total,
                replayed=done,
                same=not diverged,
                diverged_at=done if diverged else None,
                exit_code=code,
            )
        )
    if not diverged:
        _say(f"runhands: replay matched: {done}/{total} steps the same")
    return code


def _is_empty(directory: str) -> bool:
    try:
        return not any(Path(directory).iterdir())
    except OSError:
        return True  # unreadable: the sandbox start will say what is wrong


def _workdir(config: AppConfig) -> str:
    return resolve_workdir(config)


class _Session:
    """One replay: a fresh sandbox and editor, and the steps carried out so far."""

    def __init__(self, config: AppConfig, workdir: str, recorded_dir: str, *, as_json: bool):
        self.workdir = workdir
        self.recorded_dir = recorded_dir
        self.as_json = as_json
        self.limit = config.llm.max_message_chars
        self.done = 0
        self.sandbox = LocalSandbox(
            workdir,
            soft_timeout=config.sandbox.soft_timeout,
            max_wait=config.sandbox.timeout,
            env=sandbox_environment(secrets_of(config)),
        )
        self.editor = Editor(self.sandbox)
        self.files: RecordedFiles | None = None

    def run(self, steps: list[RecordedStep]) -> bool:
        """Replay steps in order; True when one diverged (the replay stops there)."""
        self.sandbox.start()
        for index, step in enumerate(steps, start=1):
            args = relocate(step.args, self.recorded_dir, self.workdir)
            replayed = clip_observation(
                run_tool(self.sandbox, self.editor, args).content, self.limit
            )
            self.done = index
            result = self._compare(index, step, args, replayed)
            if result.same and step.tree and self.files is not None:
                result = self.files.compare(result, step.tree)
            verdict = "same" if result.same else "DIFFERENT"
            _say(
                f"[{index}/{len(steps)}] {describe_action(args)} ... {verdict}{_paren(result.note)}"
            )
            if self.as_json:
                _emit(result)
            if not result.same:
                _report_divergence(index, len(steps), args, result)
                return True
        return False

    def _compare(self, index: int, step: RecordedStep, args: ToolArgs, replayed: str) -> ReplayStep:
        workdirs = _spellings(self.workdir) + _spellings(self.recorded_dir)
        new = mask_volatile(replayed, workdirs)
        tool = args.__struct_config__.tag
        old = mask_volatile(step.observation or "", workdirs)
        if isinstance(args, Think | Finish):  # they observe nothing of the environment
            return ReplayStep(index=index, tool=tool, same=True, recorded=old, replayed=new)
        if step.observation is None:
            return ReplayStep(
                index=index, tool=tool, same=True, recorded="", replayed=new, note="not recorded"
            )
        return ReplayStep(index=index, tool=tool, same=old == new, recorded=old, replayed=new)

    def close(self) -> None:
        self.sandbox.close()
        if self.files is not None:
            self.files.close()


class RecordedFiles:
    """A saved run's workspace checkpoints, compared with the replay's workspace after each
    step that saved one (in a scratch copy of the run's checkpoint store: the run itself is
    only read)."""

    def __init__(self, recording: Recording, workdir: str) -> None:
        run_dir = Path(recording.run_dir)
        config = load_config(run_dir, AppConfig)
        self._scratch = tempfile.TemporaryDirectory(prefix="runhands-replay-")
        scratch = Path(self._scratch.name)
        recorded = checkpoint_store(config, run_dir, Path(recording.workdir or workdir))
        recorded.copy_to(scratch / CHECKPOINTS_DIR)
        self.store = checkpoint_store(config, scratch, Path(workdir))

    def compare(self, result: ReplayStep, tree: str) -> ReplayStep:
        """The step, marked different at the first file that is not as recorded."""
        changes = self.store.changes(tree, self.store.save().tree)
        if not changes:
            return result
        first = changes[0]
        note = f"files differ from the recorded checkpoint: {first.path} ({first.status})"
        return msgspec.structs.replace(result, same=False, note=note)

    def close(self) -> None:
        self._scratch.cleanup()


def _files_of(recording: Recording, workdir: str, was_empty: bool) -> RecordedFiles | None:
    """The recorded checkpoints of a saved run (None for trajectories and older runs); an
    empty replay directory first gets the workspace the run started with."""
    if not recording.run_dir or not recording.start_tree:
        return None
    files = RecordedFiles(recording, workdir)
    if was_empty and recording.start_tree != EMPTY_TREE:
        files.store.checkout(recording.start_tree)
        _say(f"runhands: {workdir} starts as the recorded run's workspace did")
    return files


def _spellings(path: str) -> list[str]:
    """A directory as given and resolved (/tmp vs /private/tmp on macOS)."""
    return [path, os.path.realpath(path)]


def _report_divergence(index: int, total: int, args: ToolArgs, step: ReplayStep) -> None:
    _say(f"runhands: replay diverged at step {index} of {total}: {describe_action(args)}")
    if step.note:
        _say(f"runhands: {step.note}")
    diff = difflib.unified_diff(
        step.recorded.splitlines(keepends=True),
        step.replayed.splitlines(keepends=True),
        fromfile=f"recorded (step {index})",
        tofile=f"replayed (step {index})",
    )
    sys.stderr.writelines(line if line.endswith("\n") else line + "\n" for line in diff)
    sys.stderr.flush()


def _paren(note: str) -> str:
    return f" ({note})" if note else ""


def _say(text: str) -> None:
    print(text, file=sys.stderr, flush=True)


def _emit(record: ReplayStep | ReplaySummary) -> None:
    print(msgspec.json.encode(record).decode(), flush=True)
