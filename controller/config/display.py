"""Showing the configuration: `runhands config` rows, `--help` options, and the copy that
is saved with a run, all without secrets."""

import json

import msgspec

from controller.config.redaction import mask_secret, public_url
from controller.config.schema import (
    LLM_SECRET_FIELDS,
    SECTIONS,
    AppConfig,
    ConfigOption,
    LLMConfig,
    LoadedConfig,
    MCPConfig,
)
from controller.config.secret_names import is_secret_name
from controller.config.settings import ENV_NAMES, FIELDS, defaults, describe


def describe_config(loaded: LoadedConfig) -> list[tuple[str, str, str]]:
    """Rows (dotted key, display value, source) for `runhands config`; secrets masked."""
    rows: list[tuple[str, str, str]] = []
    for section in SECTIONS:
        sub = getattr(loaded.config, section)
        for key in FIELDS[section]:
            dotted = f"{section}.{key}"
            value = _display_value(key, getattr(sub, key))
            rows.append((dotted, value, loaded.sources.get(dotted, "default")))
    for name, llm in sorted(loaded.config.llm_configs.items()):
        for key in FIELDS["llm"]:
            dotted = f"llm_configs.{name}.{key}"
            if dotted in loaded.sources:
                rows.append(
                    (dotted, _display_value(key, getattr(llm, key)), loaded.sources[dotted])
                )
    public = _public_mcp(loaded.config.mcp)  # API keys left out
    for key in ("sse_servers", "shttp_servers", "stdio_servers"):
        if f"mcp.{key}" in loaded.sources:
            shown = json.dumps(msgspec.to_builtins(getattr(public, key)))
            rows.append((f"mcp.{key}", shown, loaded.sources[f"mcp.{key}"]))
    return rows


def config_options() -> list[ConfigOption]:
    """Every setting with its environment variable, accepted type and default, for --help."""
    values = defaults()
    options = []
    for env, dotted in ENV_NAMES.items():
        section, _, key = dotted.partition(".")
        default = _display_value(key, values[dotted].value)
        kind = describe(FIELDS[section][key], text=True)
        options.append(ConfigOption(key=dotted, env=env, type=kind, default=default))
    return options


def public_config(config: AppConfig) -> AppConfig:
    """A copy without secrets (API keys, URL credentials, secret-named sandbox variables):
    what is saved with a run. The secrets are read again on resume."""
    env_vars = config.sandbox.runtime_startup_env_vars
    return msgspec.structs.replace(
        config,
        llm=_public_llm(config.llm),
        llm_configs={name: _public_llm(llm) for name, llm in config.llm_configs.items()},
        mcp=_public_mcp(config.mcp),
        sandbox=msgspec.structs.replace(
            config.sandbox,
            runtime_startup_env_vars={k: v for k, v in env_vars.items() if not is_secret_name(k)},
        ),
    )


def _public_mcp(mcp: MCPConfig) -> MCPConfig:
    """MCP servers without their API keys and secret-named environment values."""
    return msgspec.structs.replace(
        mcp,
        sse_servers=[msgspec.structs.replace(s, api_key=None) for s in mcp.sse_servers],
        shttp_servers=[msgspec.structs.replace(s, api_key=None) for s in mcp.shttp_servers],
        stdio_servers=[
            msgspec.structs.replace(
                s, env={k: v for k, v in s.env.items() if not is_secret_name(k)}
            )
            for s in mcp.stdio_servers
        ],
    )


def _public_llm(llm: LLMConfig) -> LLMConfig:
    unset: dict[str, None] = dict.fromkeys(LLM_SECRET_FIELDS)
    public = msgspec.structs.replace(llm, **unset)
    return msgspec.structs.replace(public, base_url=public_url(llm.base_url))


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
        return public_url(value, mask=True) or ""
    return str(value)
