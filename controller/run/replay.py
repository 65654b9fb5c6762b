"""`runhands replay`: re-run a recording's actions and compare the observations.

The recorded tool calls run again, in order, in a fresh local sandbox in the working
directory a run would use; no model is called. Each new observation is compared with the
recorded one once volatile parts (times, durations, pids, temporary paths, working
directories, hex ids) are masked, and the replay stops at the first divergence: a
recording is a regression test for the environment it ran in.

A recorded action whose arguments held a secret holds `****` in its place (the value was
redacted when it was saved): it is not run (the shell would take `****` as a glob), and the
replay goes on after it, reporting the step as not replayed. Everything printed is redacted
like a run's output, and what the recording or the sandbox wrote cannot drive the terminal.
"""

from __future__ import annotations

import difflib
import os
import re
import sys
import tempfile
from pathlib import Path
from typing import get_args

import msgspec

from controller.agent.checkpoints import CHECKPOINTS_DIR, checkpoint_store
from controller.agent.mcp_tools import McpServers, McpStartError
from controller.agent.outcome import ExitCode
from controller.agent.tools import clip_observation, describe_action, run_tool
from controller.config import AppConfig, LoadedConfig, secrets_of
from controller.config.schema import MCPConfig
from controller.run.recordings import PATH_END, load_recording, relocate
from controller.run.sandbox_for_config import local_sandbox
from controller.run.setup import UserError, resolve_workdir, sandbox_environment
from controller.trajectory import RecordedStep, Recording
from controller.trajectory.command_text import comparable_command_text
from sandbox import LocalSandbox, SandboxError
from sandbox.editor import Editor
from sandbox.isolation import Mode, Network
from sandbox.output import for_terminal, json_for_terminal
from state_store.checkpoints import EMPTY_TREE, CheckpointError
from state_store.events import ExecuteBash, Finish, McpCall, SandboxStarted, Think, ToolArgs
from state_store.files import Redactor, holds_redaction
from state_store.store import EVENTS_FILE, load_config, read_events


class ReplayStep(msgspec.Struct, tag="replay_step", tag_field="kind", kw_only=True):
    """One compared step (`--json`); `recorded` and `replayed` are the masked texts."""

    index: int
    tool: str
    same: bool
    recorded: str
    replayed: str
    note: str = ""
    # Not run: its arguments held a redacted secret. Nothing is compared (`same` stays true).
    skipped: bool = False


class ReplaySummary(msgspec.Struct, tag="replay_summary", tag_field="kind", kw_only=True):
    """The last `--json` line."""

    source: str
    steps: int
    replayed: int
    same: bool
    diverged_at: int | None
    exit_code: int
    # Steps not run because their arguments held a redacted secret.
    skipped: list[int] = []


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


def replay(source: str, loaded: LoadedConfig, *, as_json: bool, live_mcp: bool = False) -> int:
    """`runhands replay`: 0 when every observation matched, 1 at the first divergence.
    MCP calls reuse their recorded results unless `live_mcp` (then the servers of the
    config, or else of the recorded run, are started and called)."""
    config = loaded.config
    out = _Output(secrets_of(config), as_json=as_json)
    recording = load_recording(source, Path(config.core.file_store_path).expanduser())
    if not recording.steps:
        raise UserError(f"{source}: no actions to replay")
    workdir = _workdir(config)
    was_empty = _is_empty(workdir)
    # OpenHands files do not say where they ran: its sandbox mount point, /workspace.
    recorded_dir = recording.workdir or config.core.workspace_mount_path_in_sandbox
    out.say(
        f"runhands: replaying {len(recording.steps)} actions of {source} in {workdir} "
        f"(recorded in {recorded_dir})"
    )
    for note in recording.notes:
        out.say(f"runhands: note: {note}")
    session = _Session(config, _sandbox_for(loaded, recording, workdir, out), recorded_dir, out)
    if live_mcp:
        session.mcp_config = _mcp_config(config, recording)
    try:
        session.files = _files_of(recording, workdir, was_empty, out)
        diverged = session.run(recording.steps)
    except (SandboxError, McpStartError) as e:
        failed = "" if isinstance(e, McpStartError) else "the sandbox failed: "
        out.say(f"runhands: error: {failed}{e}")
        return ExitCode.SANDBOX
    except KeyboardInterrupt:
        out.say("runhands: replay interrupted")
        return ExitCode.INTERRUPTED
    except CheckpointError as e:
        raise UserError(f"cannot compare the workspace with the recorded run's: {e}") from None
    finally:
        session.close()
    if diverged and not was_empty:
        out.say(f"runhands: note: {workdir} was not empty when the replay started")
    return _conclude(source, len(recording.steps), session, diverged)


def _conclude(source: str, total: int, session: _Session, diverged: bool) -> int:
    code, done, skipped = (1 if diverged else 0), session.done, session.skipped
    if session.out.as_json:
        summary = ReplaySummary(
            source=source,
            steps=total,
            replayed=done,
            same=not diverged,
            diverged_at=done if diverged else None,
            exit_code=code,
            skipped=skipped,
        )
        session.out.emit(summary)
    if not diverged:
        held = f", {len(skipped)} not replayed (held a secret)" if skipped else ""
        session.out.say(
            f"runhands: replay matched: {done - len(skipped)}/{total} steps the same{held}"
        )
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

    def __init__(self, config: AppConfig, sandbox: LocalSandbox, recorded_dir: str, out: _Output):
        self.workdir = sandbox.workdir
        self.recorded_dir = recorded_dir
        self.out = out
        self.limit = config.llm.max_message_chars
        self.done = 0
        self.skipped: list[int] = []
        self.sandbox = sandbox
        self.editor = Editor(self.sandbox)
        self.files: RecordedFiles | None = None
        # --live-mcp: the servers to call (started at the first MCP step); None: reuse.
        self.mcp_config: MCPConfig | None = None
        self.mcp: McpServers | None = None

    def run(self, steps: list[RecordedStep]) -> bool:
        """Replay steps in order; True when one diverged (the replay stops there)."""
        self.sandbox.start()
        for index, step in enumerate(steps, start=1):
            args = relocate(step.args, self.recorded_dir, self.workdir)
            result = self._step(index, step, args)
            self.done = index
            verdict = "not replayed" if result.skipped else "same" if result.same else "DIFFERENT"
            self.out.say(
                f"[{index}/{len(steps)}] {describe_action(args)} ... {verdict}{_paren(result.note)}"
            )
            if self.out.as_json:
                self.out.emit(result)
            if not result.same:
                self._report_divergence(index, len(steps), args, result)
                return True
        return False

    def _step(self, index: int, step: RecordedStep, args: ToolArgs) -> ReplayStep:
        """Run one recorded action and compare; one that held a secret is not run."""
        held = _secret_fields(args)
        if held:
            self.skipped.append(index)
            note = f"its {', '.join(held)} held a secret, redacted when it was recorded"
            tool = args.__struct_config__.tag
            return ReplayStep(
                index=index, tool=tool, same=True, recorded="", replayed="", note=note, skipped=True
            )
        if isinstance(args, McpCall) and self.mcp_config is None:
            recorded = self.out.redactor.text(step.observation or "")
            return ReplayStep(
                index=index,
                tool=args.name,
                same=True,
                recorded=recorded,
                replayed=recorded,
                note="MCP: recorded result reused",
            )
        if isinstance(args, McpCall) and self.mcp is None and self.mcp_config is not None:
            self.mcp = McpServers(self.mcp_config)
            self.mcp.start(set())
            self.out.say(f"runhands: MCP servers started: {len(self.mcp.tools)} tools")
        output = run_tool(self.sandbox, self.editor, args, self.mcp).content
        replayed = self.out.redactor.text(clip_observation(output, self.limit))
        result = self._compare(index, step, args, replayed)
        if result.same and step.tree and self.files is not None:
            result = self.files.compare(result, step.tree)
        return result

    def _compare(self, index: int, step: RecordedStep, args: ToolArgs, replayed: str) -> ReplayStep:
        workdirs = _spellings(self.workdir) + _spellings(self.recorded_dir)
        new = mask_volatile(replayed, workdirs)
        tool = args.__struct_config__.tag
        # A trajectory file may hold a secret the store would have redacted: compare alike.
        old = mask_volatile(self.out.redactor.text(step.observation or ""), workdirs)
        if isinstance(args, Think | Finish):  # they observe nothing of the environment
            return ReplayStep(index=index, tool=tool, same=True, recorded=old, replayed=new)
        if step.observation is None:
            return ReplayStep(
                index=index, tool=tool, same=True, recorded="", replayed=new, note="not recorded"
            )
        same = _comparable(old, args) == _comparable(new, args)
        return ReplayStep(index=index, tool=tool, same=same, recorded=old, replayed=new)

    def _report_divergence(self, index: int, total: int, args: ToolArgs, step: ReplayStep) -> None:
        say = self.out.say
        say(f"runhands: replay diverged at step {index} of {total}: {describe_action(args)}")
        if step.note:
            say(f"runhands: {step.note}")
        if self.skipped:
            steps = ", ".join(map(str, self.skipped))
            say(
                f"runhands: note: not replayed (they held a secret): step {steps}; "
                "the divergence may follow from them"
            )
        diff = difflib.unified_diff(
            step.recorded.splitlines(keepends=True),
            step.replayed.splitlines(keepends=True),
            fromfile=f"recorded (step {index})",
            tofile=f"replayed (step {index})",
        )
        text = "".join(line if line.endswith("\n") else line + "\n" for line in diff)
        if text:
            say(text.rstrip("\n"))

    def close(self) -> None:
        if self.mcp is not None:
            self.mcp.close()
        self.sandbox.close()
        if self.files is not None:
            self.files.close()


def _sandbox_for(
    loaded: LoadedConfig, recording: Recording, workdir: str, out: _Output
) -> LocalSandbox:
    """A fresh local sandbox, isolated as the recorded run was unless the config (or
    --isolation) says otherwise: a recording of a hostile agent stays confined."""
    config = loaded.config
    mode, network = _recorded_isolation(recording)
    if loaded.sources.get("sandbox.isolation", "default") != "default":
        mode = None
    if loaded.sources.get("sandbox.network", "default") != "default":
        network = None
    env = sandbox_environment(config)
    sandbox = local_sandbox(config, workdir, env, mode=mode, network=network)
    shown = network or config.sandbox.network
    out.say(f"runhands: sandbox isolation {sandbox.isolation}, network {shown}")
    return sandbox


def _mcp_config(config: AppConfig, recording: Recording) -> MCPConfig:
    """--live-mcp: the MCP servers configured now, else those the recorded run had."""
    if config.mcp.any() or not recording.run_dir:
        return config.mcp
    return load_config(Path(recording.run_dir), AppConfig).mcp


def _recorded_isolation(recording: Recording) -> tuple[Mode | None, Network | None]:
    """The local isolation and network of the recorded run's last sandbox, if known."""
    if not recording.run_dir:
        return None, None
    events = read_events(Path(recording.run_dir) / EVENTS_FILE)
    started = [e for e in events if isinstance(e, SandboxStarted) and e.runtime == "local"]
    if not started:
        return None, None
    last = started[-1]
    mode = next((m for m in get_args(Mode) if m == last.isolation), None)
    network = next((n for n in get_args(Network) if n == last.network), None)
    return mode, network


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


def _files_of(
    recording: Recording, workdir: str, was_empty: bool, out: _Output
) -> RecordedFiles | None:
    """The recorded checkpoints of a saved run (None for trajectories and older runs); an
    empty replay directory first gets the workspace the run started with."""
    if not recording.run_dir or not recording.start_tree:
        return None
    files = RecordedFiles(recording, workdir)
    if was_empty and recording.start_tree != EMPTY_TREE:
        files.store.checkout(recording.start_tree)
        out.say(f"runhands: {workdir} starts as the recorded run's workspace did")
    return files


def _spellings(path: str) -> list[str]:
    """A directory as given and resolved (/tmp vs /private/tmp on macOS)."""
    return [path, os.path.realpath(path)]


def _secret_fields(args: ToolArgs) -> list[str]:
    """The arguments a redacted secret was cut out of (think and finish run nothing)."""
    if isinstance(args, Think | Finish):
        return []
    return [
        name
        for name in args.__struct_fields__
        if isinstance(value := getattr(args, name), str) and holds_redaction(value)
    ]


def _comparable(text: str, args: ToolArgs) -> str:
    """What a step's observation is compared by: a command's notes by what they mean, not
    their words (OpenHands' and ours changed over time; see comparable_command_text)."""
    return comparable_command_text(text) if isinstance(args, ExecuteBash) else text


def _paren(note: str) -> str:
    return f" ({note})" if note else ""


class _Output:
    """Everything a replay prints, redacted like a run's output (a trajectory file or the
    replayed commands may show a key), on a terminal the text cannot drive."""

    def __init__(self, secrets: list[str], *, as_json: bool = False) -> None:
        self.redactor = Redactor(secrets)
        self.as_json = as_json

    def say(self, text: str) -> None:
        print(for_terminal(self.redactor.text(text)), file=sys.stderr, flush=True)

    def emit(self, record: ReplayStep | ReplaySummary) -> None:
        line = msgspec.json.encode(record).decode()
        print(json_for_terminal(self.redactor.text(line)), flush=True)
