"""The effective configuration from every layer, later ones winning: built-in defaults <
user config file < `config.toml` < `.env` < environment < command-line flags. Every value
remembers its source, so `runhands config` can say why a setting has its value."""

import os
from collections.abc import Mapping

import msgspec
from dotenv import dotenv_values

from controller.config.files import NamedLLMs, config_files, load_files
from controller.config.mcp import env_settings as mcp_env_settings
from controller.config.openhands_keys import openhands_env_names
from controller.config.schema import (
    APPROXIMATE_CONDENSER_TYPES,
    CONDENSER_TYPES,
    LLM_SECRET_FIELDS,
    SECTIONS,
    AgentConfig,
    AppConfig,
    CondenserConfig,
    ConfigError,
    CoreConfig,
    LLMConfig,
    LoadedConfig,
    MCPConfig,
    SandboxConfig,
)
from controller.config.settings import ENV_NAMES, FIELDS, Setting, convert, defaults
from controller.config.volumes import VolumeError, parse_volumes

# The CLI's config flags (argparse dests) and the settings they set, for "flag --NAME" in
# error messages and sources.
FLAG_KEYS: dict[str, str] = {
    "max_iterations": "core.max_iterations",
    "max_budget_per_task": "core.max_budget_per_task",
    "max_runtime": "core.max_runtime_seconds",
    "runtime": "core.runtime",
    "isolation": "sandbox.isolation",
    "directory": "core.workspace_base",
    "state_dir": "core.file_store_path",
    "log_level": "core.log_all_events",  # --log-level debug
    "no_auto_continue": "core.auto_continue",
    "selected_repo": "sandbox.selected_repo",
}
_FLAG_NAMES = {dotted: flag for flag, dotted in FLAG_KEYS.items()}
# OpenHands variables runhands reads in its own way (the logger's) or not at all.
_IGNORED_ENV = openhands_env_names() - set(ENV_NAMES) - {"LOG_LEVEL", "DEBUG"}


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
    files = load_files(config_files(config_file, cwd, user_config_dir), cwd)
    values = {**defaults(), **files.values}
    named_llms, named_sources = _named_configs(values, files.named_llms)
    env_layers = ((dotenv_environment(cwd, env), ".env"), (env, "environment"))
    asked_by = f"-l {llm_config_name}"
    if not llm_config_name and (llm_config_name := _agent_llm_config(values, env_layers)):
        asked_by = f"[agent] llm_config {llm_config_name}"
    if llm_config_name:
        _select_llm(llm_config_name, asked_by, values, files.named_llms)
    warnings = list(files.warnings)
    for layer, label in env_layers:
        if llm_config_name:
            layer = _without_llm_env(layer, label, asked_by, warnings)
        values.update(_log_level_layer(layer, label, warnings))  # below LOG_ALL_EVENTS
        values.update(_env_layer(layer, label))
        values.update(mcp_env_settings(layer, label))
        warnings.extend(_ignored_openhands_env(layer, label))
    values.update(_flag_layer(flags or {}))
    sources = {k: s.source for k, s in values.items()} | named_sources
    config = _app_config(values, named_llms)
    check_volumes(config, sources)
    return LoadedConfig(config=config, sources=sources, warnings=warnings + _notes(config))


# The sandbox's policy: no file the agent could have written (a config.toml or .env in the
# workspace) may loosen it for a run that already exists.
POLICY_KEYS = frozenset(
    {"sandbox.isolation", "sandbox.network", "sandbox.hidden_paths", "sandbox.writable_paths"}
)


def overlay_config(saved: AppConfig, loaded: LoadedConfig) -> AppConfig:
    """A resumed run's config: what it was saved with, under every value given explicitly
    now (file, environment, flag; the sandbox policy only by environment or flag). Secrets
    are never saved, so they always come from now."""
    merged = msgspec.to_builtins(saved)
    current = msgspec.to_builtins(loaded.config)
    for dotted, source in loaded.sources.items():
        section, _, key = dotted.partition(".")
        if source == "default" or section not in SECTIONS or key not in current[section]:
            continue
        if dotted in POLICY_KEYS and not source.startswith(("environment", "flag")):
            # A file here may be the agent's own work (the cwd is often the workspace).
            loaded.warnings.append(
                f"{dotted} from {source} ignored: a saved run's sandbox "
                "policy changes only by a flag or an environment variable"
            )
            continue
        merged[section][key] = current[section][key]
    for key in LLM_SECRET_FIELDS:
        merged["llm"][key] = current["llm"][key]
    merged["llm_configs"] = current["llm_configs"]
    if loaded.config.mcp.any():  # MCP servers configured now win (their keys are not saved)
        merged["mcp"] = current["mcp"]
    return msgspec.convert(merged, AppConfig)


# ---- environment and flags --------------------------------------------------------------------


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


def _env_layer(env: Mapping[str, str | None], label: str) -> dict[str, Setting]:
    """Settings from environment-style variables; names we do not know are ignored."""
    out: dict[str, Setting] = {}
    for name, dotted in ENV_NAMES.items():
        raw = env.get(name)
        if not raw:  # like OpenHands, an empty variable counts as unset
            continue
        where = f"{label} {name}"
        out[dotted] = Setting(convert(dotted, raw, where, text=True), where)
    return out


# OpenHands' logger (logger.py): LOG_LEVEL (default INFO), and DEBUG=true|1|yes forces DEBUG.
# At DEBUG runhands logs every event on stderr, as LOG_ALL_EVENTS does; other levels change
# nothing. DEBUG is a common name (DEBUG=express:* for Node): any other value is not ours.
LOG_LEVELS = ("DEBUG", "INFO", "WARNING", "WARN", "ERROR", "CRITICAL")
_DEBUG_TRUE = ("true", "1", "yes")


def is_debug_level(level: str) -> bool:
    """True for LOG_LEVEL / --log-level debug (any case)."""
    return level.strip().upper() == "DEBUG"


def _log_level_layer(env: Mapping[str, str], label: str, warnings: list[str]) -> dict[str, Setting]:
    level = env.get("LOG_LEVEL", "")
    if level and level.strip().upper() not in LOG_LEVELS:
        warnings.append(
            f"{label} LOG_LEVEL={level!r} ignored: expected one of debug, info, "
            "warning, error, critical"
        )
    for name, debug in (
        ("LOG_LEVEL", is_debug_level(level)),
        ("DEBUG", env.get("DEBUG", "").lower() in _DEBUG_TRUE),
    ):
        if debug:
            return {"core.log_all_events": Setting(True, f"{label} {name}")}
    return {}


def _ignored_openhands_env(env: Mapping[str, str], label: str) -> list[str]:
    """OpenHands variables set here that runhands does not use: named once, never dropped
    silently (OpenHands reads them in utils.py: load_from_env)."""
    names = sorted(n for n in _IGNORED_ENV if env.get(n))
    if not names:
        return []
    return [f"{label}: ignoring OpenHands variables runhands does not use: {', '.join(names)}"]


def _without_llm_env(
    env: Mapping[str, str], label: str, asked_by: str, warnings: list[str]
) -> dict[str, str]:
    """With -l NAME, OpenHands replaces the [llm] object the environment was applied to by
    [llm.NAME] (core/main.py after utils.py: load_from_env), so LLM_* variables are lost.
    runhands does the same, and says which ones."""
    dropped = sorted(n for n in env if n.startswith("LLM_") and n in ENV_NAMES and env[n])
    if dropped:
        warnings.append(
            f"{label}: {', '.join(dropped)} ignored: {asked_by} replaces [llm] (as in OpenHands)"
        )
    return {n: v for n, v in env.items() if n not in dropped}


def check_volumes(config: AppConfig, sources: Mapping[str, str]) -> None:
    """SANDBOX_VOLUMES as `run` will read them: `runhands config` refuses what `run` does."""
    source = sources.get("sandbox.volumes", "default")
    named = source.startswith(("environment", ".env", "flag"))
    try:
        parse_volumes(config.sandbox.volumes or "", where=source if named else f"{source} volumes")
    except VolumeError as e:
        raise ConfigError(str(e)) from None


def _notes(config: AppConfig) -> list[str]:
    """Settings accepted for OpenHands that runhands only approximates (the selected repo is
    checked against the working directory when a run starts: run/setup.py)."""
    notes = []
    if config.condenser.type in APPROXIMATE_CONDENSER_TYPES:
        notes.append(
            f"[condenser] type {config.condenser.type!r}: runhands has one condenser; "
            f"using {CONDENSER_TYPES[config.condenser.type]!r}"
        )
    return notes


def _flag_label(dotted: str) -> str:
    flag = _FLAG_NAMES.get(dotted)
    return f"flag --{flag.replace('_', '-')}" if flag else f"flag {dotted}"


def _flag_layer(flags: Mapping[str, object]) -> dict[str, Setting]:
    out: dict[str, Setting] = {}
    for dotted, value in flags.items():
        if value is None:  # an option that was not given
            continue
        section, _, key = dotted.partition(".")
        if key not in FIELDS.get(section, {}):
            raise ConfigError(f"flag {dotted}: unknown setting")
        label = _flag_label(dotted)
        out[dotted] = Setting(convert(dotted, value, label, text=isinstance(value, str)), label)
    return out


# ---- named [llm.NAME] sections ---------------------------------------------------------------


def _llm_name(name: str) -> str:
    """Accept what OpenHands accepts: 'NAME', 'llm.NAME' or '[llm.NAME]'."""
    return name.strip("[]").removeprefix("llm.")


def _agent_llm_config(
    values: dict[str, Setting], env_layers: tuple[tuple[Mapping[str, str], str], ...]
) -> str | None:
    """OpenHands' `[agent] llm_config` / `AGENT_LLM_CONFIG` (the environment winning):
    the named `[llm.NAME]` the agent uses (config.get_llm_config_from_agent)."""
    name = None
    if (setting := values.get("agent.llm_config")) is not None:
        name = setting.value
    for layer, _ in env_layers:
        name = layer.get("AGENT_LLM_CONFIG") or name
    return name or None


def _select_llm(name: str, asked_by: str, values: dict[str, Setting], named: NamedLLMs) -> None:
    """Make `[llm.NAME]` (already over `[llm]`) the effective `llm`, as `-l NAME` asks."""
    name = _llm_name(name)
    if name == "llm":  # OpenHands' name for the base section
        return
    if name not in named:
        available = ", ".join(sorted(named)) or "none defined"
        raise ConfigError(
            f"{asked_by}: no [llm.{name}] section in the config files (available: {available})"
        )
    for key, setting in named[name].items():
        values[f"llm.{key}"] = setting


def _named_configs(
    values: dict[str, Setting], named: NamedLLMs
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


# ---- assembling --------------------------------------------------------------------------------


def _section(values: dict[str, Setting], section: str) -> dict[str, object]:
    prefix = section + "."
    return {k.removeprefix(prefix): s.value for k, s in values.items() if k.startswith(prefix)}


def _app_config(values: dict[str, Setting], named_llms: dict[str, LLMConfig]) -> AppConfig:
    return AppConfig(
        core=CoreConfig(**_section(values, "core")),
        llm=LLMConfig(**_section(values, "llm")),
        agent=AgentConfig(**_section(values, "agent")),
        sandbox=SandboxConfig(**_section(values, "sandbox")),
        condenser=CondenserConfig(**_section(values, "condenser")),
        mcp=MCPConfig(**_section(values, "mcp")),
        llm_configs=named_llms,
    )
