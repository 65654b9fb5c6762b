"""The typed records of a run: events (append-only log) and the snapshot.

These structs are the on-disk format, the `--json` output and what tests assert on.
"""

from __future__ import annotations

from typing import Any, Literal

import msgspec

# Bumped whenever a file written by an older runhands could be misread by this one.
SCHEMA_VERSION = 1


class ToolCall(msgspec.Struct, frozen=True, kw_only=True):
    """A tool call exactly as the model sent it (arguments are the raw JSON text)."""

    id: str
    name: str
    arguments: str


class Event(msgspec.Struct, tag_field="kind", frozen=True, kw_only=True):
    seq: int
    ts: float


class LogHeader(Event, tag="header"):
    """First line of every event log: what wrote it."""

    schema: int
    run_id: str
    writer: str


class RunStarted(Event, tag="run_started"):
    run_id: str
    task: str
    workdir: str  # where the agent works (in a container: the workspace mount point)
    runtime: str
    model: str
    host_workdir: str = ""  # the host directory behind it (resume mounts it again)


class SandboxStarted(Event, tag="sandbox_started"):
    """Which sandbox this process started: after a crash, resume stops what it left."""

    runtime: str
    identity: str
    # What earlier processes of this run left running was found and stopped first.
    stopped_leftovers: bool = False
    # The isolation in force ("workspace-write", "read-only", "none", "container") and
    # whether the sandbox could reach the network ("on" / "off"); "" in older logs.
    isolation: str = ""
    network: str = ""


class RunResumed(Event, tag="run_resumed"):
    """A new process took the run over (after a crash, a signal, a limit or an end)."""

    state: str
    reason: str
    torn_bytes: int = 0
    # Written by runhands before init stopped leftovers itself (now on `sandbox_started`);
    # kept so older logs still load.
    stopped_leftovers: bool = False


class Transition(Event, tag="transition"):
    source: str
    dest: str
    trigger: str
    reason: str
    # Into finished/errored: the EndReason that decides the exit code.
    end: str = ""
    # Seconds the run had been active when the move was made, summed over its processes.
    runtime_s: float = 0.0


class UserMessage(Event, tag="user_message"):
    """Text given to the model as the user: the task, or headless auto-replies."""

    content: str
    origin: Literal["task", "auto_continue", "instruction", "warning"] = "task"
    # For warnings: what was warned about ("stuck:<pattern>", "steps:<limit>", ...), so a
    # warning is given once, also across a crash.
    key: str = ""


class Usage(msgspec.Struct, frozen=True, kw_only=True):
    """What one model call cost: a model answer, or a condensation's summary."""

    prompt_tokens: int = 0
    completion_tokens: int = 0
    cost: float = 0.0
    # Prompt tokens read from / written to the provider's prompt cache (part of prompt_tokens).
    cached_tokens: int = 0
    cache_write_tokens: int = 0


class ModelResponse(Event, tag="model_response"):
    step: int
    model: str
    content: str | None
    tool_calls: list[ToolCall] = []
    prompt_tokens: int = 0
    completion_tokens: int = 0
    cost: float = 0.0
    latency_s: float = 0.0
    # Prompt tokens read from / written to the provider's prompt cache (part of prompt_tokens).
    cached_tokens: int = 0
    cache_write_tokens: int = 0


class ModelRetry(Event, tag="model_retry"):
    """A failed model call that will be retried after `wait_s` seconds."""

    step: int
    attempt: int
    error: str
    wait_s: float


class ModelSwitched(Event, tag="model_switched"):
    """The model kept failing: this call and the following ones go to `to_model`."""

    step: int
    from_model: str
    to_model: str
    reason: str


class ExecuteBash(msgspec.Struct, tag="execute_bash", tag_field="tool", frozen=True, kw_only=True):
    command: str
    is_input: bool = False
    timeout: float | None = None


class StrReplaceEditor(
    msgspec.Struct, tag="str_replace_editor", tag_field="tool", frozen=True, kw_only=True
):
    command: Literal["view", "create", "str_replace", "insert", "undo_edit"]
    path: str
    file_text: str | None = None
    old_str: str | None = None
    new_str: str | None = None
    insert_line: int | None = None
    view_range: list[int] | None = None


class Think(msgspec.Struct, tag="think", tag_field="tool", frozen=True, kw_only=True):
    thought: str = ""  # OpenHands accepts a think call without it


class Finish(msgspec.Struct, tag="finish", tag_field="tool", frozen=True, kw_only=True):
    message: str = ""


class McpCall(msgspec.Struct, tag="mcp", tag_field="tool", frozen=True, kw_only=True):
    """A call of a tool an MCP server offers: its name as the model saw it, and the JSON
    arguments as sent (the server checks them)."""

    name: str
    arguments: dict[str, Any] = {}


# The arguments of each tool the model may call, validated from its JSON.
ToolArgs = ExecuteBash | StrReplaceEditor | Think | Finish | McpCall
TOOL_ARG_TYPES: dict[str, type[ToolArgs]] = {
    t.__struct_config__.tag: t for t in (ExecuteBash, StrReplaceEditor, Think, Finish)
}


class Action(Event, tag="action"):
    """A tool call the controller is about to carry out (arguments already validated)."""

    step: int
    tool_call_id: str
    args: ToolArgs


class Observation(Event, tag="observation"):
    """The result of a tool call, exactly as the model will see it."""

    step: int
    tool_call_id: str
    tool: str
    content: str
    error: bool = False
    exit_code: int | None = None
    # The call could not be carried out (unknown tool, bad arguments): counts towards the
    # malformed-answers cap.
    malformed: bool = False


class McpTool(msgspec.Struct, frozen=True, kw_only=True):
    """One MCP tool offered to the model: its name there, its server, the server's own
    name for it, and its description and JSON schema as given to the model."""

    name: str
    server: str
    remote_name: str
    description: str = ""
    parameters: dict[str, Any] = {}


class McpToolsListed(Event, tag="mcp_tools"):
    """The configured MCP servers were started or connected, and these tools offered to
    the model beside ours (recorded at each start, so replay knows what was offered)."""

    servers: list[str]
    tools: list[McpTool]
    skipped: list[str] = []  # names already taken (first wins, as in OpenHands)


class Condensation(Event, tag="condensation"):
    """The model's view was shortened: the events after `kept_until` up to `forgotten_until`
    are replaced by `summary` (None: simply dropped). The latest condensation defines the
    view; the full history stays in the log."""

    kept_until: int
    forgotten_until: int
    summary: str | None = None
    reason: str = ""
    prompt_tokens: int = 0
    completion_tokens: int = 0
    cost: float = 0.0


class PlannedTurn(msgspec.Struct, frozen=True, kw_only=True, omit_defaults=True):
    """One turn of a recording to replay: a tool call (`args`), or a message of the user's
    or the agent's (`source`, `content`)."""

    args: ToolArgs | None = None
    source: Literal["", "user", "agent"] = ""
    content: str = ""


class ReplayPlanned(Event, tag="replay_planned"):
    """The recording (`replay --continue`, `replay_trajectory_path`) carried out before the
    model takes over, saved whole when the run is created: init replays the turns not yet
    in the log, so a resume after a crash goes on with the rest."""

    source: str
    turns: list[PlannedTurn]


class InstructionFile(msgspec.Struct, frozen=True, kw_only=True):
    """A repository instruction file as it was read at the run's start: `AGENTS.md`, a repo
    microagent (always given) or a knowledge microagent (given when a trigger appears)."""

    name: str  # OpenHands' microagent name: "agents", "repo", "sub/x" (path without .md)
    path: str  # relative to the workspace, '/'-separated
    kind: Literal["repo", "knowledge"]
    content: str  # without the front matter; cut to the size limit, with a note
    triggers: list[str] = []


class Recalled(msgspec.Struct, frozen=True, kw_only=True):
    """A knowledge microagent a user message triggered (OpenHands' MicroagentKnowledge)."""

    name: str
    trigger: str
    content: str


class InstructionsLoaded(Event, tag="instructions_loaded"):
    """The workspace's instruction files, read once when a new run starts (a resume never
    reads them again), and the knowledge microagents the task triggered. The model sees
    the repo files and `recalled` as one user message after the task."""

    files: list[InstructionFile] = []
    recalled: list[Recalled] = []
    warnings: list[str] = []


class KnowledgeRecalled(Event, tag="knowledge_recalled"):
    """Knowledge microagents a later user message (`for_seq`) triggered, each once a run."""

    for_seq: int
    recalled: list[Recalled]


class SetupScriptRan(Event, tag="setup_script"):
    """`.openhands/setup.sh` was sourced in the sandbox's shell when the run started (once a
    run). A failure is a warning: the run goes on."""

    command: str
    output: str
    exit_code: int
    timed_out: bool = False


class SkippedFile(msgspec.Struct, frozen=True, kw_only=True):
    """A workspace file a checkpoint left out, and why (never silently lost)."""

    path: str  # relative to the workspace, '/'-separated
    reason: str  # e.g. "larger than 20 MB (35.2 MB)", "unreadable", "nested git repository"


class ChangeSummary(msgspec.Struct, frozen=True, kw_only=True):
    """What changed between two checkpoints: files touched, lines added and removed."""

    files: int = 0
    added: int = 0
    removed: int = 0


class Checkpoint(Event, tag="checkpoint"):
    """The workspace's files were saved (content-addressed, under the run's store) after a
    tool call that may have changed them, or at the start (step 0)."""

    step: int
    tree: str  # the git tree id of the workspace's files
    skipped: list[SkippedFile] = []
    # At the start of a run whose workspace is a git repository: the commit it was at
    # (`runhands patch` is relative to it).
    base_commit: str = ""


class RunForked(Event, tag="run_forked"):
    """This run was forked from `parent` at the end of its step `at_step` (the events before
    this one are the parent's up to `parent_seq`); its workspace was checkpoint `tree`."""

    parent: str
    at_step: int
    parent_seq: int
    tree: str


class Rewound(Event, tag="rewound"):
    """The run went back to the end of step `to_step` (event `to_seq`): the model's view is
    the history up to that event, then what follows this one. The workspace was saved as
    `saved_tree` first (rewinding to this step undoes the rewind), then restored to `tree`."""

    to_step: int
    to_seq: int
    tree: str
    saved_tree: str
    from_step: int


class RunEnded(Event, tag="run_ended"):
    """How the run stopped; also the final line of `--json` output."""

    run_id: str
    state: str
    reason: str
    message: str
    steps: int
    prompt_tokens: int
    completion_tokens: int
    cost: float
    exit_code: int
    duration_s: float
    # What the run changed in the workspace, from its first checkpoint to its last.
    changes: ChangeSummary | None = None


AnyEvent = (
    LogHeader
    | RunStarted
    | ReplayPlanned
    | SandboxStarted
    | RunResumed
    | Transition
    | UserMessage
    | ModelResponse
    | ModelRetry
    | ModelSwitched
    | Action
    | Observation
    | McpToolsListed
    | Condensation
    | Checkpoint
    | RunForked
    | Rewound
    | RunEnded
    | InstructionsLoaded
    | KnowledgeRecalled
    | SetupScriptRan
)


class Counters(msgspec.Struct, kw_only=True):
    """What limits are checked against, derived from the log."""

    steps: int = 0
    prompt_tokens: int = 0
    completion_tokens: int = 0
    cost: float = 0.0
    malformed_in_a_row: int = 0
    no_action_in_a_row: int = 0
    # Seconds this run was active, summed over its processes (the runtime budget), as of
    # the last transition.
    runtime_s: float = 0.0


class Snapshot(msgspec.Struct, kw_only=True):
    """Everything the state handlers decide from, derived from the event log by
    `controller.agent.run_state.apply`: a cache of the log, which can be deleted at any time."""

    schema: int = SCHEMA_VERSION
    run_id: str
    state: str = "init"
    last_seq: int = 0
    created_at: float = 0.0
    updated_at: float = 0.0
    # The task's first line(s), for listings (the task itself lives in the log once).
    task: str = ""
    counters: Counters = msgspec.field(default_factory=Counters)
    # How the run ended (EndReason) and why, while it is ended or stopped.
    reason: str = ""
    message: str = ""
    # `run_ended` was written for the current end (a crash can come between the two).
    ended: bool = False
    # Tool calls of the last model answer still without an observation, in order, and
    # those of them whose `action` was saved (they may have run).
    open_calls: list[ToolCall] = []
    started_calls: list[str] = []
    # Every call of the current answer so far was malformed (the streak counts answers).
    all_malformed: bool = False
    # A model answer was saved since the machine last entered planning.
    answered: bool = False
    # The last answer was text only and has not been replied to yet ("continue").
    awaiting_continue: bool = False
    # The model called `finish` (its message), until a new instruction.
    finish_message: str | None = None
    # The step at which the model was last warned that it loops (0: never).
    stuck_warned_step: int = 0
    # The budgets whose 80% warning was given, as "name:limit" (a new limit warns again).
    budget_warnings: list[str] = []
    # The state a `resume` left (init then re-enters the machine there).
    resumed_from: str = ""
    # Workspace checkpoints: the first (the run's start), its repository's commit, the
    # one in force now (last saved or restored) and the files it skipped.
    first_tree: str = ""
    base_commit: str = ""
    # A fork's parent run and the step it was forked at.
    parent: str = ""
    forked_at: int = 0
    tree: str = ""
    skipped: list[str] = []
