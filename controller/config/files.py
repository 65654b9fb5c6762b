"""Reading the `config.toml` files: which ones, their sections and named `[llm.NAME]`
sections, and the OpenHands settings they hold that runhands ignores (one warning a file)."""

import difflib
import os
import tomllib
from typing import Any, NamedTuple

import platformdirs

from controller.config.mcp import file_settings as mcp_file_settings
from controller.config.openhands_keys import OPENHANDS_ONLY_KEYS, OPENHANDS_ONLY_SECTIONS
from controller.config.schema import SECTIONS, ConfigError
from controller.config.settings import FIELDS, Setting, convert, shown

NamedLLMs = dict[str, dict[str, Setting]]
RUNHANDS_AGENT = "CodeActAgent"  # the OpenHands agent runhands stands in for


class FileSettings(NamedTuple):
    """What the config files set, later files winning."""

    values: dict[str, Setting]
    named_llms: NamedLLMs
    warnings: list[str]


class _FileLayer(NamedTuple):
    values: dict[str, Setting]
    named_llms: NamedLLMs
    ignored: list[str]


def config_files(
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


def load_files(files: list[tuple[str, bool]], cwd: str) -> FileSettings:
    loaded = FileSettings({}, {}, [])
    for path, required in files:
        display = _display_path(path, cwd)
        if not os.path.exists(path):
            if required:
                raise ConfigError(f"--config-file {display}: file not found")
            continue
        layer = _parse_file(path, display)
        loaded.values.update(layer.values)
        for name, settings in layer.named_llms.items():
            loaded.named_llms.setdefault(name, {}).update(settings)
        if layer.ignored:
            loaded.warnings.append(
                f"{display}: ignoring OpenHands settings runhands does not use: "
                + ", ".join(layer.ignored)
            )
    return loaded


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
    known = [*SECTIONS, "mcp", *sorted(OPENHANDS_ONLY_SECTIONS)]
    for section, body in _read_toml(path, display).items():
        if not isinstance(body, dict):
            raise ConfigError(
                f"{display}: {section} = {shown(section, body)} is outside any section"
                " (put it under [core]?)"
            )
        if section in SECTIONS:
            _parse_section(section, body, layer, path, display)
        elif section == "mcp":
            layer.values.update(mcp_file_settings(body, path, display))
        elif section in OPENHANDS_ONLY_SECTIONS:
            if body:  # an empty, all-commented section changes nothing: no need to warn
                layer.ignored.append(f"[{section}]")
        else:
            raise ConfigError(f"{display} [{section}]: unknown section{_suggest(section, known)}")
    return layer


def _parse_section(
    section: str, body: dict[str, Any], layer: _FileLayer, path: str, display: str
) -> None:
    # Sub-tables last: [agent.CodeActAgent] wins over [agent] wherever it is written.
    for key, value in sorted(body.items(), key=lambda item: isinstance(item[1], dict)):
        if key in FIELDS[section]:
            where = f"{display} [{section}] {key}"
            dotted = f"{section}.{key}"
            layer.values[dotted] = Setting(convert(dotted, value, where, text=False), path)
        elif key in OPENHANDS_ONLY_KEYS[section]:
            layer.ignored.append(f"{section}.{key}")
        elif isinstance(value, dict) and section == "llm":
            layer.named_llms[key] = _parse_named_llm(key, value, layer, path, display)
        elif isinstance(value, dict) and section == "agent" and key == RUNHANDS_AGENT:
            # [agent.CodeActAgent]: OpenHands' settings for the agent runhands is, over
            # [agent] (config.get_agent_config).
            _parse_section(section, value, layer, path, f"{display} [agent.{key}]")
        elif isinstance(value, dict) and section in ("agent", "condenser"):
            # Other agents' [agent.NAME]; [condenser.NAME] named condensers, read only by
            # OpenHands' evaluation scripts.
            layer.ignored.append(f"{section}.{key}")
        elif section == "core" and not _typo_of_ours(key, section):
            # OpenHands only warns about an unknown [core] key (utils.py: load_from_toml,
            # 'Unknown config key "..." in [core] section'), e.g. runtime_extra_deps.
            layer.ignored.append(f"core.{key}")
        else:
            raise _unknown_key(f"{display} [{section}]", key, section)


def _parse_named_llm(
    name: str, body: dict[str, Any], layer: _FileLayer, path: str, display: str
) -> dict[str, Setting]:
    settings: dict[str, Setting] = {}
    for key, value in body.items():
        if key in FIELDS["llm"]:
            where = f"{display} [llm.{name}] {key}"
            converted = convert(f"llm.{key}", value, where, text=False)
            settings[key] = Setting(converted, f"{path} [llm.{name}]")
        elif key in OPENHANDS_ONLY_KEYS["llm"] or not _typo_of_ours(key, "llm"):
            # OpenHands skips a named section it cannot parse with a warning ('Cannot parse
            # [NAME] config from toml. This section will be skipped.'), e.g. for
            # presence_penalty; runhands keeps the section and names the key.
            layer.ignored.append(f"llm.{name}.{key}")
        else:
            raise _unknown_key(f"{display} [llm.{name}]", key, "llm")
    return settings


def _unknown_key(where: str, key: str, section: str) -> ConfigError:
    candidates = list(FIELDS[section]) + sorted(OPENHANDS_ONLY_KEYS[section])
    return ConfigError(f"{where} {key}: unknown key{_suggest(key, candidates)}")


def _typo_of_ours(key: str, section: str) -> bool:
    """A key close to one of runhands' own: a typo worth an error, not a warning."""
    return bool(difflib.get_close_matches(key, list(FIELDS[section]), n=1, cutoff=0.6))


def _suggest(word: str, candidates: list[str]) -> str:
    match = difflib.get_close_matches(word, candidates, n=1, cutoff=0.6)
    return f" (did you mean {match[0]}?)" if match else ""
