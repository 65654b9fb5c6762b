"""`[mcp]` and `MCP_*` read with OpenHands' shapes and checks."""

from __future__ import annotations

from pathlib import Path

import pytest

from controller.config import ConfigError, load_config, public_config, secrets_of
from controller.config.schema import ShttpServer, SseServer, StdioServer


def _load(tmp_path: Path, toml: str, env: dict[str, str] | None = None):
    (tmp_path / "config.toml").write_text(toml)
    return load_config(cwd=str(tmp_path), environ=env or {}, user_config_dir=str(tmp_path / "u"))


def test_openhands_shapes(tmp_path: Path) -> None:
    loaded = _load(
        tmp_path,
        """
[mcp]
sse_servers = [
  "http://localhost:8080/mcp/sse",
  {url = "https://a.example/sse", api_key = "sk-sse-0123456789"},
]
shttp_servers = [{url = "https://b.example/mcp", api_key = "sk-shttp-0123456789", timeout = 180}]
stdio_servers = [
  {name = "fetch", command = "uvx", args = ["mcp-server-fetch"], env = {DEBUG = "true"}},
  {name = "fs", command = "npx", args = "-y @mcp/fs '/a b'", env = "A=1,B=2"},
]
""",
    )
    mcp = loaded.config.mcp
    assert mcp.sse_servers == [
        SseServer(url="http://localhost:8080/mcp/sse"),
        SseServer(url="https://a.example/sse", api_key="sk-sse-0123456789"),
    ]
    assert mcp.shttp_servers == [
        ShttpServer(url="https://b.example/mcp", api_key="sk-shttp-0123456789", timeout=180)
    ]
    assert mcp.stdio_servers[1] == StdioServer(
        name="fs", command="npx", args=["-y", "@mcp/fs", "/a b"], env={"A": "1", "B": "2"}
    )
    assert not loaded.warnings  # [mcp] is no longer ignored
    # API keys are secrets: masked everywhere, never saved with the run.
    assert {"sk-sse-0123456789", "sk-shttp-0123456789"} <= set(secrets_of(loaded.config, {}))
    public = public_config(loaded.config).mcp
    assert all(s.api_key is None for s in [*public.sse_servers, *public.shttp_servers])


def test_environment_form(tmp_path: Path) -> None:
    env = {"MCP_STDIO_SERVERS": "[{'name': 'x', 'command': 'python3', 'args': ['s.py']}]"}
    loaded = _load(tmp_path, "", env)
    assert loaded.config.mcp.stdio_servers == [
        StdioServer(name="x", command="python3", args=["s.py"])
    ]
    assert loaded.sources["mcp.stdio_servers"] == "environment MCP_STDIO_SERVERS"
    assert not loaded.warnings


@pytest.mark.parametrize(
    ("toml", "words"),
    [
        ("[mcp]\nservers = []", "unknown key"),
        ('[mcp]\nsse_servers = ["ftp://x/sse"]', "invalid URL"),
        ('[mcp]\nsse_servers = ["http://x/sse", "http://x/sse"]', "duplicate"),
        ('[mcp]\nstdio_servers = [{name = "a b", command = "x"}]', "name must be"),
        ('[mcp]\nstdio_servers = [{name = "a", command = "npx -y x"}]', "without spaces"),
        ('[mcp]\nshttp_servers = [{url = "http://x/mcp", timeout = 0}]', "timeout"),
    ],
)
def test_refused_like_openhands(tmp_path: Path, toml: str, words: str) -> None:
    with pytest.raises(ConfigError, match=words):
        _load(tmp_path, toml)
