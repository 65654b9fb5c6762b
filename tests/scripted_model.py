"""A scripted OpenAI-compatible model server on 127.0.0.1, for tests and benchmarks.

Each POST to `.../chat/completions` takes the next `Turn` of the script: tool calls, plain
text, an HTTP error (with optional Retry-After), a delay, or fields of the answer sent as
given (`raw`, e.g. `"choices": []` or negative token counts). Every request body is kept so
tests can assert on what the agent sent.
"""

from __future__ import annotations

import json
import socket
import threading
import time
import uuid
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any


class _Server(ThreadingHTTPServer):
    # A batch opens dozens of connections at once: socketserver's backlog of 5 would make
    # some of them wait for a retried connect (or be reset), which is not the model's latency.
    request_queue_size = 128


@dataclass
class Turn:
    tool_calls: list[tuple[str, dict[str, Any] | str]] = field(default_factory=list)
    content: str | None = None
    status: int = 200
    retry_after: float | None = None
    delay: float = 0.0
    prompt_tokens: int = 100
    completion_tokens: int = 20
    # Top-level fields of the answer replaced verbatim, e.g. {"choices": []}, {"usage": ...}.
    raw: dict[str, Any] = field(default_factory=dict)


def bash(command: str, **extra: Any) -> Turn:
    return Turn(tool_calls=[("execute_bash", {"command": command, **extra})])


def edit(command: str, path: str, **extra: Any) -> Turn:
    return Turn(tool_calls=[("str_replace_editor", {"command": command, "path": path, **extra})])


def finish(message: str = "done") -> Turn:
    return Turn(tool_calls=[("finish", {"message": message})])


def text(content: str) -> Turn:
    return Turn(content=content)


def raw_call(name: str, arguments: str) -> Turn:
    """A tool call whose arguments are sent verbatim (e.g. malformed JSON)."""
    return Turn(tool_calls=[(name, arguments)])


def error(status: int, retry_after: float | None = None) -> Turn:
    return Turn(status=status, retry_after=retry_after)


def raw_answer(**fields: Any) -> Turn:
    """A `finish` answer with some of its top-level fields replaced as given."""
    return Turn(tool_calls=[("finish", {"message": "done"})], raw=fields)


Policy = Callable[[dict[str, Any]], Turn]


class ScriptedModel:
    """Context manager: `with ScriptedModel([...]) as model: model.base_url`.

    The script is a list of turns played in order, or a policy: a function from the request
    body to the turn (for runs killed and resumed at arbitrary points)."""

    def __init__(self, script: Iterable[Turn] | Policy, port: int = 0) -> None:
        self.policy = script if callable(script) else None
        self.script = [] if callable(script) else list(script)
        self.requests: list[dict[str, Any]] = []
        self.tag = uuid.uuid4().hex[:6]  # tool-call ids stay unique across servers
        self._lock = threading.Lock()
        self._server = _Server(("127.0.0.1", port), self._handler())
        self._server.daemon_threads = True
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self._server.server_address[1]}/v1"

    def __enter__(self) -> ScriptedModel:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._server.shutdown()
        self._server.server_close()

    def next_turn(self, body: dict[str, Any]) -> tuple[int, Turn | None]:
        with self._lock:
            self.requests.append(body)
            index = len(self.requests) - 1
            if self.policy is not None:
                return index, self.policy(body)
            return index, self.script[index] if index < len(self.script) else None

    def _handler(self) -> type[BaseHTTPRequestHandler]:
        model = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"
            wbufsize = -1  # headers and body in one write: no Nagle/delayed-ACK stall

            def setup(self) -> None:
                super().setup()
                self.connection.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

            def log_message(self, *args: object) -> None:
                pass

            def do_POST(self) -> None:
                length = int(self.headers.get("content-length", 0))
                body = json.loads(self.rfile.read(length) or b"{}")
                index, turn = model.next_turn(body)
                if turn is None:
                    self._send(400, {"error": {"message": f"script exhausted at call {index}"}})
                    return
                if turn.delay:
                    time.sleep(turn.delay)
                if turn.status != 200:
                    headers = {}
                    if turn.retry_after is not None:
                        headers["Retry-After"] = str(turn.retry_after)
                    self._send(turn.status, {"error": {"message": "scripted error"}}, headers)
                    return
                self._send(200, completion(turn, index, body.get("model", "scripted"), model.tag))

            def _send(self, status: int, payload: dict, headers: dict | None = None) -> None:
                data = json.dumps(payload).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                for name, value in (headers or {}).items():
                    self.send_header(name, value)
                self.end_headers()
                self.wfile.write(data)

        return Handler


def completion(turn: Turn, index: int, model: str, tag: str = "") -> dict[str, Any]:
    calls = [
        {
            "id": f"call_{tag}{index}_{i}",
            "type": "function",
            "function": {
                "name": name,
                "arguments": args if isinstance(args, str) else json.dumps(args),
            },
        }
        for i, (name, args) in enumerate(turn.tool_calls)
    ]
    message: dict[str, Any] = {"role": "assistant", "content": turn.content}
    if calls:
        message["tool_calls"] = calls
    answer = {
        "id": f"chatcmpl-{index}",
        "object": "chat.completion",
        "created": 1_700_000_000,
        "model": model,
        "choices": [
            {
                "index": 0,
                "message": message,
                "finish_reason": "tool_calls" if calls else "stop",
            }
        ],
        "usage": {
            "prompt_tokens": turn.prompt_tokens,
            "completion_tokens": turn.completion_tokens,
            "total_tokens": turn.prompt_tokens + turn.completion_tokens,
        },
    }
    return answer | turn.raw
