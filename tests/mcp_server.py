"""A small MCP server for the tests, written with the `mcp` SDK: `add(a, b)`, `echo(text)`
and `write_note(name, text)` (a file in its working directory, the run's). Each call is
appended to the file named by MCP_TEST_CALLS (when set), so a test can tell whether the
live server was called.

`python tests/mcp_server.py` serves on stdio; `... sse PORT [KEY]` or `... shttp PORT [KEY]`
over HTTP on 127.0.0.1 (SSE, streamable HTTP), refusing requests without `Authorization:
Bearer KEY` when KEY is given (what OpenHands' `api_key` sends)."""

from __future__ import annotations

import os
import sys

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


def _http(transport: str, port: int, key: str | None) -> None:
    import uvicorn

    app = server.sse_app() if transport == "sse" else server.streamable_http_app()

    async def checked(scope, receive, send):  # type: ignore[no-untyped-def]
        headers = dict(scope.get("headers") or [])
        if (
            scope["type"] == "http"
            and key
            and headers.get(b"authorization") != (f"Bearer {key}".encode())
        ):
            await send({"type": "http.response.start", "status": 401, "headers": []})
            await send({"type": "http.response.body", "body": b"no key"})
            return
        await app(scope, receive, send)

    uvicorn.run(checked, host="127.0.0.1", port=port, log_level="warning")


if __name__ == "__main__":
    pid_file = os.environ.get("MCP_TEST_PID")
    if pid_file:
        with open(pid_file, "w") as fh:
            fh.write(str(os.getpid()))
    if len(sys.argv) > 2:
        _http(sys.argv[1], int(sys.argv[2]), sys.argv[3] if len(sys.argv) > 3 else None)
    else:
        server.run("stdio")
