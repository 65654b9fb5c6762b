"""Typed configuration, loaded the way an OpenHands headless user expects.

Layers, later ones winning: built-in defaults < user config file < `config.toml` < `.env` <
environment < command-line flags. Every effective value remembers where it came from, so
`runhands config` can say why a setting has its value. An OpenHands `config.toml` loads as it
is: settings OpenHands knows but runhands does not use are reported in one warning line,
while a typo is an error that suggests the closest known key.
"""

import difflib
import json
import os
import tomllib
import types
from collections.abc import Mapping
from typing import Annotated, Any, Literal, NamedTuple, Union, get_args, get_origin
from urllib.parse import urlsplit, urlunsplit

import msgspec
import platformdirs
from dotenv import dotenv_values

# Shared constrained types: msgspec carries the bounds, `_check_bounds` enforces them.
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
    native_tool_calling: bool | None = None
    reasoning_effort: str | None = None
    custom_llm_provider: str | None = None
    # Ours: models or [llm.NAME] sections used in turn when this model keeps failing.
    fallback_models: list[str] = []


class AgentConfig(msgspec.Struct, kw_only=True):
    """`[agent]`: which tools the agent gets."""

    enable_cmd: bool = True
    enable_editor: bool = True
    enable_think: bool = True
    enable_finish: bool = True
    enable_stuck_detection: bool = True


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
    # Ours, for the docker runtime: container limits, e.g. memory_limit = "2g", cpus = 1.5.
    memory_limit: str | None = None
    cpus: Annotated[float, msgspec.Meta(gt=0)] | None = None
    # Ours: seconds without new output before execute_bash returns what it has so far.
    soft_timeout: Annotated[float, msgspec.Meta(gt=0)] = 10.0


# OpenHands' condenser types, each mapped to what runhands does with it.
CONDENSER_TYPES = {
    "llm": "llm",
    "llm_attention": "llm",
    "structured": "llm",
    "window": "window",
    "recent": "window",
    "amortized": "window",
    "observation_masking": "window",
    "noop": "noop",
}


class CondenserConfig(msgspec.Struct, kw_only=True):
    """`[condenser]`: how a history too long for the model's window is shortened."""

    # "llm": the forgotten middle is replaced by the model's summary; "window": dropped.
    type: Literal[tuple(CONDENSER_TYPES)] = "llm"  # type: ignore[valid-type]
    # Messages after the system prompt always kept (the task).
    keep_first: Annotated[int, msgspec.Meta(ge=1)] = 1
    # Also condense when the model's view holds more messages than this.
    max_size: Annotated[int, msgspec.Meta(ge=4)] | None = None
    # A named [llm.NAME] section for summaries (default: the run's model).
    llm_config: str | None = None


class AppConfig(msgspec.Struct, kw_only=True):
    """The whole effective configuration."""

    core: CoreConfig = msgspec.field(default_factory=CoreConfig)
    llm: LLMConfig = msgspec.field(default_factory=LLMConfig)
    agent: AgentConfig = msgspec.field(default_factory=AgentConfig)
    sandbox: SandboxConfig = msgspec.field(default_factory=SandboxConfig)
    condenser: CondenserConfig = msgspec.field(default_factory=CondenserConfig)
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


class ConfigError(Exception):
    """A configuration problem, described in one line naming key, value and source."""


SECTIONS: dict[str, type[msgspec.Struct]] = {
    "core": CoreConfig,
    "llm": LLMConfig,
    "agent": AgentConfig,
    "sandbox": SandboxConfig,
    "condenser": CondenserConfig,
}
_ENV_PREFIXES = {
    "core": "",
    "llm": "LLM_",
    "agent": "AGENT_",
    "sandbox": "SANDBOX_",
    "condenser": "CONDENSER_",
}

# Optional CLI flag names (argparse dests) and the settings they set.
FLAG_KEYS: dict[str, str] = {
    "max_iterations": "core.max_iterations",
    "max_budget_per_task": "core.max_budget_per_task",
    "max_runtime": "core.max_runtime_seconds",
    "runtime": "core.runtime",
    "directory": "core.workspace_base",
    "state_dir": "core.file_store_path",
    "save_trajectory_path": "core.save_trajectory_path",
    "replay_trajectory_path": "core.replay_trajectory_path",
    "log_all_events": "core.log_all_events",
    "model": "llm.model",
    "base_url": "llm.base_url",
    "volumes": "sandbox.volumes",
}


def _names(text: str) -> frozenset[str]:
    return frozenset(text.split())


# Settings OpenHands knows that runhands does not use: accepted with a warning so an existing
# OpenHands config.toml loads. Gathered from OpenHands' openhands/core/config/ (V0 config:
# openhands_config.py / older app_config.py, llm_config.py, agent_config.py,
# sandbox_config.py, the known_sections list in utils.py) and config.template.toml.
OPENHANDS_ONLY_SECTIONS = frozenset(
    {"security", "extended", "mcp", "kubernetes", "model_routing", "offload", "cli"}
)
OPENHANDS_ONLY_KEYS: dict[str, frozenset[str]] = {
    "core": _names(
        """
        default_agent file_store file_store_web_hook_url file_store_web_hook_headers
        file_store_web_hook_batch enable_browser save_screenshots_in_trajectory
        search_api_key workspace_mount_path workspace_mount_rewrite cache_dir
        run_as_openhands init_git_in_empty_workspace disable_color jwt_secret debug
        file_uploads_max_file_size_mb file_uploads_restrict_file_types
        file_uploads_allowed_extensions cli_multiline_input conversation_max_age_seconds
        enable_default_condenser max_concurrent_conversations client_wait_timeout mcp_host
        git_user_name git_user_email trajectories_path e2b_api_key modal_api_token_id
        modal_api_token_secret runloop_api_key enable_cli_session
        """
    ),
    "llm": _names(
        """
        aws_access_key_id aws_secret_access_key aws_region_name openrouter_site_url
        openrouter_app_name top_k ollama_base_url modify_params disable_vision
        disable_stop_word log_completions log_completions_folder custom_tokenizer seed
        safety_settings for_routing correct_num completion_kwargs embedding_model
        embedding_base_url embedding_deployment_name
        """
    ),
    "agent": _names(
        """
        cli_mode llm_config classpath system_prompt_filename enable_browsing
        enable_llm_editor enable_jupyter enable_condensation_request
        enable_prompt_extensions enable_mcp disabled_microagents enable_history_truncation
        enable_som_visual_browsing enable_plan_mode condenser model_routing extended runtime
        function_calling codeact_enable_browsing codeact_enable_llm_editor
        codeact_enable_jupyter micro_agent_name memory_enabled memory_max_threads
        """
    ),
    "sandbox": _names(
        """
        remote_runtime_api_url local_runtime_url pause_closed_runtimes rm_all_containers
        api_key remote_runtime_init_timeout remote_runtime_api_timeout
        remote_runtime_enable_retries remote_runtime_class enable_auto_lint use_host_network
        additional_networks runtime_binding_address runtime_extra_build_args
        initialize_plugins force_rebuild_runtime runtime_extra_deps browsergym_eval_env
        platform close_delay remote_runtime_resource_factor enable_gpu
        gpu_base_container_image docker_runtime_kwargs selected_repo trusted_dirs
        vscode_port cuda_visible_devices
        """
    ),
    "condenser": _names(
        """
        max_event_length attention_window max_events summary_max_length
        """
    ),
}

# OpenHands' template writes 0 for "no limit" on these.
_ZERO_MEANS_UNSET = frozenset(
    {
        "core.max_budget_per_task",
        "core.max_runtime_seconds",
        "llm.timeout",
        "llm.max_input_tokens",
        "llm.max_output_tokens",
    }
)


class _Field(NamedTuple):
    base: Any  # the type without `| None` and without Annotated bounds
    metas: tuple[msgspec.Meta, ...]
    optional: bool = False


class _Setting(NamedTuple):
    value: object
    source: str


def _unwrap(tp: Any) -> _Field:
    """Split `Annotated[T, Meta(...)] | None` into T, its bounds and whether None is allowed."""
    optional = get_origin(tp) in (Union, types.UnionType)
    if optional:
        tp = next(arg for arg in get_args(tp) if arg is not type(None))
    if get_origin(tp) is Annotated:
        base, *metas = get_args(tp)
        return _Field(base, tuple(m for m in metas if isinstance(m, msgspec.Meta)), optional)
    return _Field(tp, (), optional)


_FIELDS: dict[str, dict[str, _Field]] = {
    section: {f.name: _unwrap(f.type) for f in msgspec.structs.fields(cls)}
    for section, cls in SECTIONS.items()
}
ENV_NAMES: dict[str, str] = {
    _ENV_PREFIXES[section] + key.upper(): f"{section}.{key}"
    for section, fields in _FIELDS.items()
    for key in fields
}
_FLAG_NAMES = {dotted: flag for flag, dotted in FLAG_KEYS.items()}


_SECRET_WORDS = ("key", "token", "secret", "password")


def is_secret_name(name: str) -> bool:
    """True for names that hold credentials (api_key, GITHUB_TOKEN, DB_PASSWORD...)."""
    lowered = name.lower()
    if lowered.endswith(("_tokens", "per_token")):  # token counts and prices, not secrets
        return False
    return any(word in lowered for word in _SECRET_WORDS)


# ---- value conversion ---------------------------------------------------------------------


def _describe(field: _Field, *, text: bool = False) -> str:
    """Say in words what a field accepts, e.g. 'an integer >= 1'."""
    base = field.base
    if get_origin(base) is Literal:
        return "one of " + ", ".join(repr(arg) for arg in get_args(base))
    if get_origin(base) is dict or base is dict:
        return "a JSON object of strings" if text else "a table of strings"
    if get_origin(base) is list:
        return "a JSON list or comma-separated names" if text else "a list of strings"
    names = {bool: "true or false", int: "an integer", float: "a number", str: "a string"}
    return " ".join([names.get(base, str(base)), *_bound_words(field.metas)])


def _bound_words(metas: tuple[msgspec.Meta, ...]) -> list[str]:
    words = []
    for meta in metas:
        for attr, op in (("ge", ">="), ("gt", ">"), ("le", "<="), ("lt", "<")):
            bound = getattr(meta, attr)
            if bound is not None:
                words.append(f"{op} {bound}")
    return [" and ".join(words)] if words else []


def _check_bounds(value: Any, metas: tuple[msgspec.Meta, ...]) -> bool:
    return all(
        (meta.ge is None or value >= meta.ge)
        and (meta.gt is None or value > meta.gt)
        and (meta.le is None or value <= meta.le)
        and (meta.lt is None or value < meta.lt)
        for meta in metas
    )


_TRUE = {"true", "1", "yes", "on"}
_FALSE = {"false", "0", "no", "off"}


def _parse_text(raw: str, base: Any) -> object:
    """Turn an environment string into what msgspec can convert; ValueError if impossible."""
    if base is str:
        return raw
    text = raw.strip()
    if base is bool:
        if text.lower() in _TRUE | _FALSE:
            return text.lower() in _TRUE
        raise ValueError(raw)
    if get_origin(base) is dict or base is dict:
        return json.loads(text)  # JSONDecodeError is a ValueError
    if get_origin(base) is list:
        if text.startswith("["):
            return json.loads(text)
        return [item.strip() for item in text.split(",") if item.strip()]
    return text


def _convert(dotted: str, value: object, where: str, *, text: bool) -> object:
    """Validate one value for the setting `dotted`; `where` names it in errors."""
    section, key = dotted.split(".", 1)
    field = _FIELDS[section][key]
    try:
        raw = _parse_text(value, field.base) if text and isinstance(value, str) else value
        result = msgspec.convert(raw, field.base, strict=not text)
    except (ValueError, msgspec.ValidationError):
        expected = _describe(_Field(field.base, ()), text=text)
        raise ConfigError(f"{where}: expected {expected}, got {_shown(key, value)}") from None
    if not _check_bounds(result, field.metas):
        raise ConfigError(f"{where}: expected {_describe(field)}, got {_shown(key, value)}")
    # OpenHands' template writes `api_key = ""` and 0 for "no limit": both mean unset.
    if (field.optional and result == "") or (dotted in _ZERO_MEANS_UNSET and result == 0):
        return None
    return result


def _shown(key: str, value: object) -> str:
    """The rejected value for an error message, without echoing anything that may be secret."""
    if is_secret_name(key):
        return "(hidden)"
    if isinstance(value, dict):
        return repr({k: "****" if is_secret_name(str(k)) else v for k, v in value.items()})
    if isinstance(value, str) and any(word in value.lower() for word in _SECRET_WORDS):
        return "(hidden: it may hold a secret)"  # e.g. a JSON object of tokens that did not parse
    return repr(value)


# ---- config files ---------------------------------------------------------------------------


class _FileLayer(NamedTuple):
    values: dict[str, _Setting]
    named_llms: dict[str, dict[str, _Setting]]
    ignored: list[str]


def _suggest(word: str, candidates: list[str]) -> str:
    match = difflib.get_close_matches(word, candidates, n=1, cutoff=0.6)
    return f" (did you mean {match[0]}?)" if match else ""


def _display_path(path: str, cwd: str) -> str:
    """The path as a user would type it: relative to cwd or home when inside them."""
    for root, prefix in ((cwd, ""), (os.path.expanduser("~"), "~/")):
        rel = os.path.relpath(path, root)
        if not rel.startswith(".."):
            return prefix + rel
    return path


def _read_toml(path: str, display: str) -> dict[str, Any]:
    try:
        with open(path, "rb") as fh:
            return tomllib.load(fh)
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{display}: invalid TOML: {str(exc).splitlines()[0]}") from None
    except OSError as exc:
        raise ConfigError(f"{display}: cannot read: {exc.strerror}") from None


def _parse_file(path: str, display: str) -> _FileLayer:
    layer = _FileLayer({}, {}, [])
    known = list(SECTIONS) + sorted(OPENHANDS_ONLY_SECTIONS)
    for section, body in _read_toml(path, display).items():
        if not isinstance(body, dict):
            raise ConfigError(
                f"{display}: {section} = {_shown(section, body)} is outside any section"
                " (put it under [core]?)"
            )
        if section in SECTIONS:
            _parse_section(section, body, layer, path, display)
        elif section in OPENHANDS_ONLY_SECTIONS:
            if body:  # an empty, all-commented section changes nothing: no need to warn
                layer.ignored.append(f"[{section}]")
        else:
            raise ConfigError(f"{display} [{section}]: unknown section{_suggest(section, known)}")
    return layer


def _parse_section(
    section: str, body: dict[str, Any], layer: _FileLayer, path: str, display: str
) -> None:
    for key, value in body.items():
        if key in _FIELDS[section]:
            where = f"{display} [{section}] {key}"
            dotted = f"{section}.{key}"
            layer.values[dotted] = _Setting(_convert(dotted, value, where, text=False), path)
        elif key in OPENHANDS_ONLY_KEYS[section]:
            layer.ignored.append(f"{section}.{key}")
        elif isinstance(value, dict) and section == "llm":
            layer.named_llms[key] = _parse_named_llm(key, value, layer, path, display)
        elif isinstance(value, dict) and section == "agent":
            layer.ignored.append(f"agent.{key}")  # per-agent-class settings, e.g. CodeActAgent
        else:
            raise _unknown_key(f"{display} [{section}]", key, section)


def _parse_named_llm(
    name: str, body: dict[str, Any], layer: _FileLayer, path: str, display: str
) -> dict[str, _Setting]:
    settings: dict[str, _Setting] = {}
    for key, value in body.items():
        if key in _FIELDS["llm"]:
            where = f"{display} [llm.{name}] {key}"
            converted = _convert(f"llm.{key}", value, where, text=False)
            settings[key] = _Setting(converted, f"{path} [llm.{name}]")
        elif key in OPENHANDS_ONLY_KEYS["llm"]:
            layer.ignored.append(f"llm.{name}.{key}")
        else:
            raise _unknown_key(f"{display} [llm.{name}]", key, "llm")
    return settings


def _unknown_key(where: str, key: str, section: str) -> ConfigError:
    candidates = list(_FIELDS[section]) + sorted(OPENHANDS_ONLY_KEYS[section])
    return ConfigError(f"{where} {key}: unknown key{_suggest(key, candidates)}")


def _config_files(
    config_file: str | None, cwd: str, user_config_dir: str | None
) -> list[tuple[str, bool]]:
    """The files to read, lowest precedence first, each with 'must exist'."""
    user_dir = user_config_dir or platformdirs.user_config_dir("runhands")
    files = [(os.path.abspath(os.path.join(user_dir, "config.toml")), False)]
    if config_file is not None:
        files.append((os.path.abspath(os.path.join(cwd, os.path.expanduser(config_file))), True))
    else:
        files.append((os.path.abspath(os.path.join(cwd, "config.toml")), False))
    if files[0][0] == files[1][0]:
        files.pop(0)  # running from the user config dir: read that file once
    return files


def _load_files(
    files: list[tuple[str, bool]], cwd: str
) -> tuple[dict[str, _Setting], dict[str, dict[str, _Setting]], list[str]]:
    values: dict[str, _Setting] = {}
    named: dict[str, dict[str, _Setting]] = {}
    warnings: list[str] = []
    for path, required in files:
        display = _display_path(path, cwd)
        if not os.path.exists(path):
            if required:
                raise ConfigError(f"--config-file {display}: file not found")
            continue
        layer = _parse_file(path, display)
        values.update(layer.values)
        for name, settings in layer.named_llms.items():
            named.setdefault(name, {}).update(settings)
        if layer.ignored:
            warnings.append(
                f"{display}: ignoring OpenHands settings runhands does not use: "
                + ", ".join(layer.ignored)
            )
    return values, named, warnings


# ---- environment and flags --------------------------------------------------------------------


def _env_layer(env: Mapping[str, str | None], label: str) -> dict[str, _Setting]:
    """Settings from environment-style variables; names we do not know are ignored."""
    out: dict[str, _Setting] = {}
    for name, dotted in ENV_NAMES.items():
        raw = env.get(name)
        if not raw:  # like OpenHands, an empty variable counts as unset
            continue
        where = f"{label} {name}"
        out[dotted] = _Setting(_convert(dotted, raw, where, text=True), where)
    return out


def read_dotenv(cwd: str) -> dict[str, str]:
    """The variables of `<cwd>/.env` (keys without a value are skipped)."""
    path = os.path.join(cwd, ".env")
    if not os.path.isfile(path):
        return {}
    return {k: v for k, v in dotenv_values(path).items() if v is not None}


def dotenv_environment(cwd: str, environ: Mapping[str, str] | None = None) -> dict[str, str]:
    """`.env` variables that the real environment does not set, e.g. for the model client."""
    env = os.environ if environ is None else environ
    return {k: v for k, v in read_dotenv(cwd).items() if k not in env}


def _flag_label(dotted: str) -> str:
    flag = _FLAG_NAMES.get(dotted)
    return f"flag --{flag.replace('_', '-')}" if flag else f"flag {dotted}"


def _flag_layer(flags: Mapping[str, object]) -> dict[str, _Setting]:
    out: dict[str, _Setting] = {}
    for dotted, value in flags.items():
        if value is None:  # an option that was not given
            continue
        section, _, key = dotted.partition(".")
        if key not in _FIELDS.get(section, {}):
            raise ConfigError(f"flag {dotted}: unknown setting")
        label = _flag_label(dotted)
        out[dotted] = _Setting(_convert(dotted, value, label, text=isinstance(value, str)), label)
    return out


# ---- assembling --------------------------------------------------------------------------------


def _defaults() -> dict[str, _Setting]:
    values: dict[str, _Setting] = {}
    for section, cls in SECTIONS.items():
        instance = cls()
        for key in _FIELDS[section]:
            values[f"{section}.{key}"] = _Setting(getattr(instance, key), "default")
    return values


def _llm_name(name: str) -> str:
    """Accept what OpenHands accepts: 'NAME', 'llm.NAME' or '[llm.NAME]'."""
    return name.strip("[]").removeprefix("llm.")


def _select_llm(
    name: str, values: dict[str, _Setting], named: dict[str, dict[str, _Setting]]
) -> None:
    """Make `[llm.NAME]` (already over `[llm]`) the effective `llm`, as `-l NAME` asks."""
    name = _llm_name(name)
    if name == "llm":  # OpenHands' name for the base section
        return
    if name not in named:
        available = ", ".join(sorted(named)) or "none defined"
        raise ConfigError(
            f"--llm-config {name}: no [llm.{name}] section in the config files "
            f"(available: {available})"
        )
    for key, setting in named[name].items():
        values[f"llm.{key}"] = setting


def _section(values: dict[str, _Setting], section: str) -> dict[str, object]:
    prefix = section + "."
    return {k.removeprefix(prefix): s.value for k, s in values.items() if k.startswith(prefix)}


def _named_configs(
    values: dict[str, _Setting], named: dict[str, dict[str, _Setting]]
) -> tuple[dict[str, LLMConfig], dict[str, str]]:
    """Each `[llm.NAME]` over defaults and `[llm]` (env and flags apply to `llm` only)."""
    configs: dict[str, LLMConfig] = {}
    sources: dict[str, str] = {}
    base = {k: s for k, s in values.items() if k.startswith("llm.")}
    for name, overrides in named.items():
        merged = {**base, **{f"llm.{k}": s for k, s in overrides.items()}}
        configs[name] = LLMConfig(**_section(merged, "llm"))
        for dotted, setting in merged.items():
            if setting.source != "default":
                sources[f"llm_configs.{name}.{dotted.removeprefix('llm.')}"] = setting.source
    return configs, sources


def load_config(
    *,
    config_file: str | None = None,
    llm_config_name: str | None = None,
    flags: Mapping[str, object] | None = None,
    environ: Mapping[str, str] | None = None,
    cwd: str | None = None,
    user_config_dir: str | None = None,
) -> LoadedConfig:
    """Load the effective configuration from every layer; raise ConfigError on a bad one.

    `flags` maps dotted keys ("core.max_iterations") to values; None values are skipped.
    """
    env = os.environ if environ is None else environ
    cwd = os.path.abspath(cwd or os.getcwd())
    files = _config_files(config_file, cwd, user_config_dir)
    file_values, named, warnings = _load_files(files, cwd)
    values = {**_defaults(), **file_values}
    named_llms, named_sources = _named_configs(values, named)
    if llm_config_name:
        _select_llm(llm_config_name, values, named)
    values.update(_env_layer(dotenv_environment(cwd, env), ".env"))
    values.update(_env_layer(env, "environment"))
    values.update(_flag_layer(flags or {}))
    config = AppConfig(
        core=CoreConfig(**_section(values, "core")),
        llm=LLMConfig(**_section(values, "llm")),
        agent=AgentConfig(**_section(values, "agent")),
        sandbox=SandboxConfig(**_section(values, "sandbox")),
        condenser=CondenserConfig(**_section(values, "condenser")),
        llm_configs=named_llms,
    )
    sources = {k: s.source for k, s in values.items()} | named_sources
    return LoadedConfig(config=config, sources=sources, warnings=warnings)


# ---- showing and saving -------------------------------------------------------------------------


def mask_secret(value: str) -> str:
    """Show at most the last 4 characters, and only of a long secret."""
    if not value:
        return "(empty)"
    return "****" + value[-4:] if len(value) >= 12 else "(set)"


def _strip_userinfo(url: str | None) -> str | None:
    """Remove `user:password@` from a URL: a base_url may carry credentials."""
    if not url or "@" not in url:
        return url
    parts = urlsplit(url)
    if parts.username is None and parts.password is None:
        return url
    return urlunsplit(parts._replace(netloc=parts.netloc.rsplit("@", 1)[1]))


def _display_value(name: str, value: object) -> str:
    if value is None:
        return "(not set)"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, dict):
        inner = ", ".join(f"{k}={_display_value(k, v)}" for k, v in value.items())
        return "{" + inner + "}"
    if isinstance(value, list):
        return json.dumps(value)
    if is_secret_name(name):
        return mask_secret(str(value))
    if isinstance(value, str):
        return _strip_userinfo(value) or ""
    return str(value)


def describe_config(loaded: LoadedConfig) -> list[tuple[str, str, str]]:
    """Rows (dotted key, display value, source) for `runhands config`; secrets masked."""
    rows: list[tuple[str, str, str]] = []
    for section in SECTIONS:
        sub = getattr(loaded.config, section)
        for key in _FIELDS[section]:
            dotted = f"{section}.{key}"
            value = _display_value(key, getattr(sub, key))
            rows.append((dotted, value, loaded.sources.get(dotted, "default")))
    for name, llm in sorted(loaded.config.llm_configs.items()):
        for key in _FIELDS["llm"]:
            dotted = f"llm_configs.{name}.{key}"
            if dotted in loaded.sources:
                rows.append(
                    (dotted, _display_value(key, getattr(llm, key)), loaded.sources[dotted])
                )
    return rows


def _public_llm(llm: LLMConfig) -> LLMConfig:
    return msgspec.structs.replace(llm, api_key=None, base_url=_strip_userinfo(llm.base_url))


def public_config(config: AppConfig) -> AppConfig:
    """A copy without secrets (API keys, URL credentials, secret-named sandbox variables)."""
    env_vars = config.sandbox.runtime_startup_env_vars
    return msgspec.structs.replace(
        config,
        llm=_public_llm(config.llm),
        llm_configs={name: _public_llm(llm) for name, llm in config.llm_configs.items()},
        sandbox=msgspec.structs.replace(
            config.sandbox,
            runtime_startup_env_vars={k: v for k, v in env_vars.items() if not is_secret_name(k)},
        ),
    )


def config_options() -> list[ConfigOption]:
    """Every setting with its environment variable, accepted type and default, for --help."""
    defaults = _defaults()
    options = []
    for env, dotted in ENV_NAMES.items():
        section, _, key = dotted.partition(".")
        default = _display_value(key, defaults[dotted].value)
        kind = _describe(_FIELDS[section][key], text=True)
        options.append(ConfigOption(key=dotted, env=env, type=kind, default=default))
    return options


def overlay_config(saved: AppConfig, loaded: LoadedConfig) -> AppConfig:
    """A resumed run's config: what it was saved with, under every value given explicitly
    now (file, environment, flag). Secrets are never saved, so they always come from now."""
    merged = msgspec.to_builtins(saved)
    current = msgspec.to_builtins(loaded.config)
    for dotted, source in loaded.sources.items():
        section, _, key = dotted.partition(".")
        if source != "default" and section in SECTIONS and key in current[section]:
            merged[section][key] = current[section][key]
    merged["llm"]["api_key"] = current["llm"]["api_key"]
    merged["llm_configs"] = current["llm_configs"]
    return msgspec.convert(merged, AppConfig)
