"""A small MCP stdio server for the tests, written with the `mcp` SDK: `add(a, b)`,
`echo(text)` and `write_note(name, text)` (a file in its working directory, the run's).
Each call is appended to the file named by MCP_TEST_CALLS (when set), so a test can tell
whether the live server was called."""

from __future__ import annotations

import os

from mcp.server import MCPServer

server = MCPServer("runhands-test")


def _note(line: str) -> None:
    path = os.environ.get("MCP_TEST_CALLS")
    if path:
        with open(path, "a") as fh:
            fh.write(line + "\n")


@server.tool()
def add(a: int, b: int) -> int:
    """Add two integers."""
    _note(f"add {a} {b}")
    return a + b


@server.tool()
def echo(text: str) -> str:
    """Echo the text back."""
    _note(f"echo {text}")
    return text


@server.tool()
def write_note(name: str, text: str) -> str:
    """Write a text file in the working directory."""
    _note(f"write_note {name}")
    with open(name, "w") as fh:
        fh.write(text)
    return "written"


if __name__ == "__main__":
    pid_file = os.environ.get("MCP_TEST_PID")
    if pid_file:
        with open(pid_file, "w") as fh:
            fh.write(str(os.getpid()))
    server.run("stdio")
