"""`[mcp]` and the `MCP_*` variables, read with OpenHands' shapes and checks
(`openhands/core/config/mcp_config.py`): `stdio_servers` ({name, command, args, env}),
`sse_servers` and `shttp_servers` (a URL or {url, api_key}, shttp also timeout). A key
OpenHands does not know in `[mcp]` is an error there too (`extra='forbid'`)."""

from __future__ import annotations

import ast
import re
import shlex
from collections.abc import Mapping
from typing import Any
from urllib.parse import urlsplit

import msgspec

from controller.config.schema import ConfigError, ShttpServer, SseServer, StdioServer
from controller.config.settings import Setting

KEYS = ("sse_servers", "shttp_servers", "stdio_servers")
ENV_NAMES = {f"MCP_{key.upper()}": key for key in KEYS}
_NAME = re.compile(r"^[a-zA-Z0-9_-]+$")
_ENV_KEY = re.compile(r"^[a-zA-Z_][a-zA-Z0-9_]*$")


def file_settings(body: dict[str, Any], path: str, display: str) -> dict[str, Setting]:
    """`[mcp]` of one config file, as settings `mcp.<key>` (a later file wins per key)."""
    out: dict[str, Setting] = {}
    for key, value in body.items():
        where = f"{display} [mcp] {key}"
        if key not in KEYS:
            raise ConfigError(f"{where}: unknown key (expected one of {', '.join(KEYS)})")
        out[f"mcp.{key}"] = Setting(servers(key, value, where), path)
    return out


def env_settings(env: Mapping[str, str], label: str) -> dict[str, Setting]:
    """`MCP_SSE_SERVERS`, `MCP_SHTTP_SERVERS`, `MCP_STDIO_SERVERS`: a Python-literal (or
    JSON) list of tables, as OpenHands reads them."""
    out: dict[str, Setting] = {}
    for name, key in ENV_NAMES.items():
        raw = env.get(name)
        if not raw:
            continue
        where = f"{label} {name}"
        try:
            value = ast.literal_eval(raw)
        except (ValueError, SyntaxError):
            raise ConfigError(f"{where}: expected a list like [{{'url': ...}}]") from None
        out[f"mcp.{key}"] = Setting(servers(key, value, where), where)
    return out


def servers(key: str, value: Any, where: str) -> list[Any]:
    if not isinstance(value, list):
        raise ConfigError(f"{where}: expected a list")
    parse = {"sse_servers": _sse, "shttp_servers": _shttp, "stdio_servers": _stdio}[key]
    items = [parse(item, f"{where}[{i}]") for i, item in enumerate(value)]
    if key == "sse_servers":
        urls = [s.url for s in items]
        if len(set(urls)) != len(urls):
            raise ConfigError(f"{where}: duplicate MCP SSE server URLs are not allowed")
    if key == "stdio_servers":
        names = [s.name for s in items]
        if len(set(names)) != len(names):
            raise ConfigError(f"{where}: duplicate MCP stdio server names are not allowed")
    return items


def _table(item: Any, where: str, allowed: tuple[str, ...]) -> dict[str, Any]:
    if not isinstance(item, dict):
        raise ConfigError(f"{where}: expected a table")
    for key in item:
        if key not in allowed:
            raise ConfigError(f"{where}: unknown key {key!r} (expected {', '.join(allowed)})")
    return item


def _url(value: Any, where: str) -> str:
    if not isinstance(value, str) or not value.strip():
        raise ConfigError(f"{where}: url must be a non-empty string")
    url = value.strip()
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https", "ws", "wss") or not parts.netloc:
        raise ConfigError(f"{where}: invalid URL {url!r} (expected http(s)://host/...)")
    return url


def _sse(item: Any, where: str) -> SseServer:
    if isinstance(item, str):
        return SseServer(url=_url(item, where))
    table = _table(item, where, ("url", "api_key"))
    return _convert(SseServer, {**table, "url": _url(table.get("url"), where)}, where)


def _shttp(item: Any, where: str) -> ShttpServer:
    if isinstance(item, str):
        return ShttpServer(url=_url(item, where))
    table = _table(item, where, ("url", "api_key", "timeout"))
    timeout = table.get("timeout", 60)
    if not isinstance(timeout, int) or not 1 <= timeout <= 3600:
        raise ConfigError(f"{where}: timeout must be an integer of seconds, 1 to 3600")
    return _convert(ShttpServer, {**table, "url": _url(table.get("url"), where)}, where)


def _stdio(item: Any, where: str) -> StdioServer:
    table = dict(_table(item, where, ("name", "command", "args", "env")))
    name, command = table.get("name"), table.get("command")
    if not isinstance(name, str) or not _NAME.match(name):
        raise ConfigError(f"{where}: name must be letters, digits, - and _ only")
    if not isinstance(command, str) or not command.strip() or " " in command.strip():
        raise ConfigError(
            f"{where}: command must be one executable without spaces (put arguments in args)"
        )
    table["command"] = command.strip()
    if isinstance(table.get("args"), str):
        try:
            table["args"] = shlex.split(table["args"])
        except ValueError as e:
            raise ConfigError(f"{where}: args: {e}") from None
    if isinstance(table.get("env"), str):
        table["env"] = _env_string(table["env"], where)
    return _convert(StdioServer, table, where)


def _env_string(text: str, where: str) -> dict[str, str]:
    """OpenHands' "K1=v1,K2=v2" form."""
    env: dict[str, str] = {}
    for pair in filter(None, (p.strip() for p in text.split(","))):
        key, sep, value = pair.partition("=")
        if not sep or not _ENV_KEY.match(key.strip()):
            raise ConfigError(f"{where}: env: expected KEY=value pairs, got {pair!r}")
        env[key.strip()] = value
    return env


def _convert(cls: type[Any], table: dict[str, Any], where: str) -> Any:
    try:
        return msgspec.convert(table, cls)
    except msgspec.ValidationError as e:
        raise ConfigError(f"{where}: {e}") from None
