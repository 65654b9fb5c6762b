"""MCP servers of one run, through the official `mcp` SDK: started (stdio) or connected
(SSE, streamable HTTP), their tools listed under OpenHands' names, and called.

The SDK is async: each `McpServers` runs its own event loop on a private thread, and one
long-lived task there holds every server's transport and session open (anyio requires them
to be opened and closed by the same task). Nothing is process-global, so the runs of a
`runhands batch` (threads of one process) each have their own. stdio servers are child
processes of runhands, stopped by `close()`; if runhands is killed outright, they see their
stdin close and exit.

Names as OpenHands gives them to the model (`mcp/tool.py`, the sandbox's fastmcp proxy):
a tool's own name, prefixed `<server>_` when two or more stdio servers are configured; a
name already taken (ours, or an earlier server's) is skipped, first wins. A result is what
OpenHands' `MCPObservation` holds: the JSON of the SDK's `CallToolResult`.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import json
import os
import threading
from contextlib import AsyncExitStack
from typing import IO, Any

from controller.config.schema import MCPConfig, ShttpServer, SseServer, StdioServer
from state_store.events import McpTool

CONNECT_TIMEOUT = 30.0  # OpenHands' connect timeout
CALL_TIMEOUT = 300.0
CLOSE_TIMEOUT = 10.0


class McpStartError(Exception):
    """A configured server could not be started, connected or listed: the run cannot start
    with the tools it was configured with."""


class McpCallResult:
    """What a call produced: the observation text and whether the server said it failed."""

    def __init__(self, content: str, error: bool) -> None:
        self.content = content
        self.error = error


def label(server: StdioServer | SseServer | ShttpServer) -> str:
    if isinstance(server, StdioServer):
        return f"stdio {server.name} ({' '.join([server.command, *server.args])})"
    kind = "sse" if isinstance(server, SseServer) else "shttp"
    return f"{kind} {server.url}"


def _headers(api_key: str | None) -> dict[str, str]:
    """OpenHands' headers for a server with an API key (`mcp/client.py: connect_http`)."""
    if not api_key:
        return {}
    return {"Authorization": f"Bearer {api_key}", "s": api_key, "X-Session-API-Key": api_key}


def _reason(exc: BaseException) -> str:
    """The innermost useful message of an exception (anyio wraps them in groups)."""
    while isinstance(exc, BaseExceptionGroup) and exc.exceptions:
        exc = exc.exceptions[0]
    text = str(exc).strip().splitlines()
    return f"{type(exc).__name__}: {text[0]}" if text else type(exc).__name__


class McpServers:
    """The configured servers of one run, alive between `start()` and `close()`."""

    def __init__(self, config: MCPConfig, *, cwd: str | None = None, log_path: str = os.devnull):
        self.config = config
        self.cwd = cwd
        self.log_path = log_path
        self.tools: list[McpTool] = []
        self.skipped: list[str] = []
        self._sessions: dict[str, Any] = {}  # server label -> ClientSession
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._main: concurrent.futures.Future[None] | None = None
        self._closing: asyncio.Event | None = None
        self._log: IO[str] | None = None

    @property
    def servers(self) -> list[StdioServer | SseServer | ShttpServer]:
        c = self.config
        return [*c.sse_servers, *c.stdio_servers, *c.shttp_servers]

    def start(self, taken: set[str]) -> list[McpTool]:
        """Start or connect every server and list its tools; names in `taken` (ours) are
        skipped. Raises McpStartError naming the server that failed."""
        fd = os.open(self.log_path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
        self._log = os.fdopen(fd, "a", encoding="utf-8")  # closed in close()
        loop = asyncio.new_event_loop()
        self._loop = loop
        self._thread = threading.Thread(target=loop.run_forever, name="runhands-mcp", daemon=True)
        self._thread.start()
        ready: concurrent.futures.Future[list[McpTool]] = concurrent.futures.Future()
        self._main = asyncio.run_coroutine_threadsafe(self._hold(ready, set(taken)), loop)
        try:
            self.tools = ready.result(timeout=CONNECT_TIMEOUT * (len(self.servers) + 1))
        except concurrent.futures.TimeoutError:
            self.close()
            raise McpStartError("MCP servers did not start in time") from None
        except McpStartError as e:
            self.close()
            raise McpStartError(f"{e}{self._stderr_tail()}") from None
        return self.tools

    def _stderr_tail(self) -> str:
        """The last line the servers wrote on stderr (in the log), to say why one failed."""
        if self.log_path == os.devnull:
            return ""
        try:
            with open(self.log_path, encoding="utf-8", errors="replace") as fh:
                lines = [line.strip() for line in fh.read()[-4000:].splitlines() if line.strip()]
        except OSError:
            return ""
        return f" (its stderr: {lines[-1][:300]}; see {self.log_path})" if lines else ""

    async def _hold(self, ready: concurrent.futures.Future[list[McpTool]], taken: set[str]) -> None:
        """Open every session, report the tools, and keep them open until close()."""
        self._closing = asyncio.Event()
        current = "?"
        try:
            async with AsyncExitStack() as stack:
                tools: list[McpTool] = []
                prefix = len(self.config.stdio_servers) >= 2
                for server in self.servers:
                    current = label(server)
                    session = await self._connect(stack, server)
                    self._sessions[current] = session
                    listed = await asyncio.wait_for(session.list_tools(), CONNECT_TIMEOUT)
                    for tool in listed.tools:
                        name = tool.name
                        if prefix and isinstance(server, StdioServer):
                            name = f"{server.name}_{tool.name}"
                        if name in taken:
                            self.skipped.append(name)
                            continue
                        taken.add(name)
                        tools.append(
                            McpTool(
                                name=name,
                                server=current,
                                remote_name=tool.name,
                                description=tool.description or "",
                                parameters=dict(tool.input_schema or {"type": "object"}),
                            )
                        )
                current = ""
                ready.set_result(tools)
                await self._closing.wait()
        except BaseException as e:  # (reported to start(), or at close)
            if not ready.done():
                ready.set_exception(McpStartError(f"MCP server {current} failed: {_reason(e)}"))
            if isinstance(e, asyncio.CancelledError):
                raise

    async def _connect(self, stack: AsyncExitStack, server: Any) -> Any:
        from mcp import ClientSession, StdioServerParameters, stdio_client

        if isinstance(server, StdioServer):
            params = StdioServerParameters(
                command=server.command,
                args=list(server.args),
                env=dict(server.env) or None,
                cwd=self.cwd,
            )
            streams = await stack.enter_async_context(stdio_client(params, errlog=self._log))
        elif isinstance(server, SseServer):
            from mcp.client.sse import sse_client

            streams = await stack.enter_async_context(
                sse_client(server.url, headers=_headers(server.api_key), timeout=CONNECT_TIMEOUT)
            )
        else:
            import httpx2
            from mcp.client.streamable_http import streamable_http_client
            from mcp.shared._httpx_utils import create_mcp_http_client

            client = create_mcp_http_client(
                headers=_headers(server.api_key), timeout=httpx2.Timeout(server.timeout)
            )
            await stack.enter_async_context(client)
            streams = await stack.enter_async_context(
                streamable_http_client(server.url, http_client=client)
            )
        read, write = streams[0], streams[1]
        session = await stack.enter_async_context(ClientSession(read, write))
        await asyncio.wait_for(session.initialize(), CONNECT_TIMEOUT)
        return session

    def call(self, name: str, arguments: dict[str, Any]) -> McpCallResult:
        """Call a listed tool; a failure is an error result (OpenHands' JSON), never raised."""
        tool = next((t for t in self.tools if t.name == name), None)
        session = self._sessions.get(tool.server) if tool else None
        if tool is None or session is None or self._loop is None:
            return _error(f"MCP tool {name} is not available")
        future = asyncio.run_coroutine_threadsafe(
            session.call_tool(tool.remote_name, arguments), self._loop
        )
        try:
            result = future.result(timeout=CALL_TIMEOUT)
        except concurrent.futures.TimeoutError:
            future.cancel()
            return _error(f"MCP tool {name} timed out after {CALL_TIMEOUT:.0f} s")
        except Exception as e:  # (the server broke or refused: the model is told)
            return _error(f"MCP tool {name} failed: {_reason(e)}")
        dumped = result.model_dump(mode="json", by_alias=True, exclude={"result_type"})
        return McpCallResult(json.dumps(dumped), bool(result.is_error))

    def close(self) -> None:
        """Stop stdio servers, close connections, end the loop thread. Idempotent."""
        loop, thread = self._loop, self._thread
        if loop is not None and thread is not None:
            closing = self._closing
            if closing is not None:
                loop.call_soon_threadsafe(closing.set)
            if self._main is not None:
                try:
                    self._main.result(timeout=CLOSE_TIMEOUT)
                except Exception:  # (already reported; the loop is stopped anyway)
                    self._main.cancel()
            loop.call_soon_threadsafe(loop.stop)
            thread.join(timeout=CLOSE_TIMEOUT)
            if not thread.is_alive():
                loop.close()
        self._loop = self._thread = self._main = None
        self._sessions = {}
        if self._log is not None:
            self._log.close()
            self._log = None


def _error(message: str) -> McpCallResult:
    """OpenHands' shape for a call that failed before the server answered
    (`mcp/utils.py: call_tool_mcp`)."""
    return McpCallResult(json.dumps({"isError": True, "error": message, "content": []}), True)


def tool_specs(tools: list[McpTool]) -> list[dict[str, Any]]:
    """OpenAI-style function specs for the MCP tools, as OpenHands builds them
    (`MCPClientTool.to_param`)."""
    return [
        {
            "type": "function",
            "function": {"name": t.name, "description": t.description, "parameters": t.parameters},
        }
        for t in tools
    ]
