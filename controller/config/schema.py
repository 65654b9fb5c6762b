"""The configuration's shape: one msgspec struct per `config.toml` section, and the loaded
result. Bounds ride on the types (`msgspec.Meta`); `settings.convert` enforces them."""

from typing import Annotated, Literal

import msgspec

from controller.errors import UserError

NonNegativeInt = Annotated[int, msgspec.Meta(ge=0)]
NonNegativeFloat = Annotated[float, msgspec.Meta(ge=0)]


class CoreConfig(msgspec.Struct, kw_only=True):
    """`[core]`: limits, storage and the runtime."""

    # Our default is the local machine; OpenHands defaults to docker.
    runtime: Literal["local", "docker"] = "local"
    max_iterations: Annotated[int, msgspec.Meta(ge=1)] = 500
    max_budget_per_task: NonNegativeFloat | None = None
    file_store_path: str = "~/.openhands-state"
    save_trajectory_path: str | None = None
    replay_trajectory_path: str | None = None
    # OpenHands' older way to name the working directory (SANDBOX_VOLUMES is the newer one).
    workspace_base: str | None = None
    workspace_mount_path_in_sandbox: str = "/workspace"
    log_all_events: bool = False
    max_runtime_seconds: NonNegativeFloat | None = None
    # Ours: workspace checkpoints. Patterns (gitignore syntax) never saved, beyond the
    # workspace's own .gitignore files; files larger than this are recorded as skipped.
    checkpoint_ignore: list[str] = []
    checkpoint_max_file_mb: Annotated[float, msgspec.Meta(gt=0)] = 20.0
    # Ours: write the run's patch here at every end (a directory: `<run id>.patch` in it).
    save_patch_path: str | None = None
    # False (--no-auto-continue): an answer without a tool call ends the run instead of
    # being answered with "continue".
    auto_continue: bool = True


class LLMConfig(msgspec.Struct, kw_only=True):
    """`[llm]` and each `[llm.NAME]`: the model and how to call it."""

    model: str = ""
    api_key: str | None = None  # secret: masked by describe_config, dropped by public_config
    base_url: str | None = None
    api_version: str | None = None
    num_retries: NonNegativeInt = 5
    retry_min_wait: NonNegativeFloat = 8
    retry_max_wait: NonNegativeFloat = 64
    retry_multiplier: NonNegativeFloat = 2
    timeout: NonNegativeFloat | None = None
    temperature: NonNegativeFloat = 0.0
    top_p: Annotated[float, msgspec.Meta(ge=0, le=1)] = 1.0
    max_input_tokens: NonNegativeInt | None = None
    max_output_tokens: NonNegativeInt | None = None
    input_cost_per_token: NonNegativeFloat | None = None
    output_cost_per_token: NonNegativeFloat | None = None
    # Ours: a cached prompt token's price with the overrides above (unset: the input price).
    cache_read_cost_per_token: NonNegativeFloat | None = None
    max_message_chars: Annotated[int, msgspec.Meta(ge=1)] = 30000
    drop_params: bool = True
    caching_prompt: bool = True
    reasoning_effort: str | None = None
    custom_llm_provider: str | None = None
    # Ours: models or [llm.NAME] sections used in turn when this model keeps failing.
    fallback_models: list[str] = []
    # OpenHands' request parameters and Bedrock credentials, passed to litellm.completion.
    top_k: NonNegativeFloat | None = None
    seed: int | None = None
    aws_access_key_id: str | None = None  # secret, like api_key
    aws_secret_access_key: str | None = None  # secret, like api_key
    aws_region_name: str | None = None
    # An `ollama/...` model's server when base_url is unset.
    ollama_base_url: str | None = None


# The LLMConfig fields that hold credentials: masked, never saved, read again on resume.
LLM_SECRET_FIELDS = ("api_key", "aws_access_key_id", "aws_secret_access_key")


class AgentConfig(msgspec.Struct, kw_only=True):
    """`[agent]`: which tools the agent gets."""

    enable_cmd: bool = True
    enable_editor: bool = True
    enable_think: bool = True
    enable_finish: bool = True
    enable_stuck_detection: bool = True
    # OpenHands' microagents: AGENTS.md and .openhands/microagents/ in the prompt
    # (controller/agent/instructions.py); knowledge microagents left out by name.
    enable_prompt_extensions: bool = True
    disabled_microagents: list[str] = []
    # OpenHands' `[agent] llm_config`: the agent's model is `[llm.NAME]`, as with `-l NAME`
    # (a `-l` on the command line wins).
    llm_config: str | None = None


class SandboxConfig(msgspec.Struct, kw_only=True):
    """`[sandbox]`: where and as whom commands run."""

    timeout: Annotated[int, msgspec.Meta(gt=0)] = 120
    user_id: NonNegativeInt | None = None
    base_container_image: str | None = None
    runtime_container_image: str | None = None
    volumes: str | None = None
    keep_runtime_alive: bool = False
    runtime_startup_env_vars: dict[str, str] = {}
    network_mode: str | None = None
    # OpenHands' docker switch for network_mode "host" (network_mode, when set, wins).
    use_host_network: bool = False
    # OpenHands clones this owner/repo; runhands records it and works on the local directory.
    selected_repo: str | None = None
    # Ours, for the docker runtime: container limits, e.g. memory_limit = "2g", cpus = 1.5.
    memory_limit: str | None = None
    cpus: Annotated[float, msgspec.Meta(gt=0)] | None = None
    # Ours: seconds without new output before execute_bash returns what it has so far.
    soft_timeout: Annotated[float, msgspec.Meta(gt=0)] = 10.0
    # Ours: how the local runtime is isolated ("auto": workspace-write when bubblewrap
    # works here, else none with a warning), what it may also write, what it never sees,
    # and whether the sandbox reaches the network ("off": a private network namespace;
    # docker: network_mode none).
    isolation: Literal["auto", "workspace-write", "read-only", "none"] = "auto"
    writable_paths: list[str] = []
    hidden_paths: list[str] = []
    network: Literal["on", "off"] = "on"


# OpenHands' condenser types, each mapped to what runhands does with it.
CONDENSER_TYPES = {
    "llm": "llm",
    "llm_attention": "llm",
    "structured": "llm",
    "window": "window",
    "recent": "window",
    "amortized": "window",
    "observation_masking": "window",
    "conversation_window": "window",  # OpenHands' default with no config.toml
    # Masks browser output: runhands has no browser, so nothing to mask.
    "browser_output_masking": "noop",
    # A chain of condensers: runhands has one; the summary is the closest (warned about).
    "pipeline": "llm",
    "noop": "noop",
}
# OpenHands types runhands only approximates: named on stderr when chosen.
APPROXIMATE_CONDENSER_TYPES = frozenset({"pipeline"})


class CondenserConfig(msgspec.Struct, kw_only=True):
    """`[condenser]`: how a history too long for the model's window is shortened."""

    # "llm": the forgotten middle is replaced by the model's summary; "window": dropped.
    type: Literal[tuple(CONDENSER_TYPES)] = "llm"  # type: ignore[valid-type]
    # Messages after the system prompt always kept (the task).
    keep_first: Annotated[int, msgspec.Meta(ge=1)] = 1
    # Also condense when the model's view holds more messages than this.
    max_size: Annotated[int, msgspec.Meta(ge=4)] | None = None
    # Tool results shown whole; older ones are sent as a one-line stand-in (0: all whole).
    # The events keep them all (see controller/agent/lean_view.py).
    keep_outputs: Annotated[int, msgspec.Meta(ge=0)] = 5  # SWE-agent's default
    # OpenHands' observation_masking window, in events (an action and its result each):
    # when set, half of it is keep_outputs.
    attention_window: Annotated[int, msgspec.Meta(ge=1)] | None = None

    def outputs_kept(self) -> int:
        """How many recent tool results the model is shown whole (0: all)."""
        if CONDENSER_TYPES[self.type] == "noop":
            return 0  # no condenser: the history goes as recorded
        if self.attention_window is not None:
            return max(1, self.attention_window // 2)
        return self.keep_outputs


class StdioServer(msgspec.Struct, kw_only=True, frozen=True):
    """`[mcp] stdio_servers` item: a server runhands starts as a child process."""

    name: str
    command: str
    args: list[str] = []
    env: dict[str, str] = {}


class SseServer(msgspec.Struct, kw_only=True, frozen=True):
    """`[mcp] sse_servers` item (legacy SSE transport)."""

    url: str
    api_key: str | None = None  # secret


class ShttpServer(msgspec.Struct, kw_only=True, frozen=True):
    """`[mcp] shttp_servers` item (streamable HTTP); timeout in seconds."""

    url: str
    api_key: str | None = None  # secret
    timeout: int = 60


class MCPConfig(msgspec.Struct, kw_only=True):
    """`[mcp]`: OpenHands' MCP servers, whose tools are offered beside ours
    (parsed and checked by `config/mcp.py`)."""

    sse_servers: list[SseServer] = []
    shttp_servers: list[ShttpServer] = []
    stdio_servers: list[StdioServer] = []

    def any(self) -> bool:
        return bool(self.sse_servers or self.shttp_servers or self.stdio_servers)


class AppConfig(msgspec.Struct, kw_only=True):
    """The whole effective configuration."""

    core: CoreConfig = msgspec.field(default_factory=CoreConfig)
    llm: LLMConfig = msgspec.field(default_factory=LLMConfig)
    agent: AgentConfig = msgspec.field(default_factory=AgentConfig)
    sandbox: SandboxConfig = msgspec.field(default_factory=SandboxConfig)
    condenser: CondenserConfig = msgspec.field(default_factory=CondenserConfig)
    mcp: MCPConfig = msgspec.field(default_factory=MCPConfig)
    # Named `[llm.NAME]` sections, each already merged over `[llm]` from the config files.
    llm_configs: dict[str, LLMConfig] = {}


class LoadedConfig(msgspec.Struct, kw_only=True):
    """The configuration plus, for each dotted key, a human description of its source."""

    config: AppConfig
    sources: dict[str, str]
    warnings: list[str]


class ConfigOption(msgspec.Struct, frozen=True, kw_only=True):
    """One setting as `--help` can list it."""

    key: str
    env: str
    type: str
    default: str


class ConfigError(UserError):
    """A configuration problem, described in one line naming key, value and source."""


SECTIONS: dict[str, type[msgspec.Struct]] = {
    "core": CoreConfig,
    "llm": LLMConfig,
    "agent": AgentConfig,
    "sandbox": SandboxConfig,
    "condenser": CondenserConfig,
}
