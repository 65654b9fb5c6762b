"""Typed configuration, loaded the way an OpenHands headless user expects.

Layers, later ones winning: built-in defaults < user config file < `config.toml` < `.env` <
environment < command-line flags (`loading`). Every effective value remembers where it came
from, so `runhands config` can say why a setting has its value (`display`). An OpenHands
`config.toml` loads as it is: settings OpenHands knows but runhands does not use
(`openhands_keys`) are reported in one warning line, while a typo is an error that suggests
the closest known key (`files`).

Modules depend one way: schema, openhands_keys, secret_names < settings < files < loading
< redaction (the secrets of a loaded configuration) < display. This package re-exports what
other modules import.
"""

from controller.config.display import config_options, describe_config, public_config
from controller.config.loading import (
    FLAG_KEYS,
    LOG_LEVELS,
    dotenv_environment,
    is_debug_level,
    load_config,
    overlay_config,
    read_dotenv,
)
from controller.config.openhands_keys import OPENHANDS_ONLY_KEYS, OPENHANDS_ONLY_SECTIONS
from controller.config.redaction import mask_secret, secrets_of
from controller.config.schema import (
    CONDENSER_TYPES,
    SECTIONS,
    AgentConfig,
    AppConfig,
    CondenserConfig,
    ConfigError,
    ConfigOption,
    CoreConfig,
    LLMConfig,
    LoadedConfig,
    NonNegativeFloat,
    NonNegativeInt,
    SandboxConfig,
)
from controller.config.secret_names import is_secret_name
from controller.config.settings import ENV_NAMES

__all__ = [
    "CONDENSER_TYPES",
    "ENV_NAMES",
    "FLAG_KEYS",
    "LOG_LEVELS",
    "OPENHANDS_ONLY_KEYS",
    "OPENHANDS_ONLY_SECTIONS",
    "SECTIONS",
    "AgentConfig",
    "AppConfig",
    "CondenserConfig",
    "ConfigError",
    "ConfigOption",
    "CoreConfig",
    "LLMConfig",
    "LoadedConfig",
    "NonNegativeFloat",
    "NonNegativeInt",
    "SandboxConfig",
    "config_options",
    "describe_config",
    "dotenv_environment",
    "is_debug_level",
    "is_secret_name",
    "load_config",
    "mask_secret",
    "overlay_config",
    "public_config",
    "read_dotenv",
    "secrets_of",
]
