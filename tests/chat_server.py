"""A local HTTP server speaking the Chat Completions protocol, for tests.

It answers ``POST /chat/completions`` (under any prefix, e.g. ``/v1``) from a scripted
queue of replies and records every request body. Like the real API it refuses, with a
400 ``invalid_request_error``, a request whose ``messages`` are not a valid Chat
Completions list (checked by the strict validator of ``tests/chat_validator.py``), so
every test through it also checks that what a model is sent is valid. With ``"stream": true`` it answers in
server-sent events, text split into several deltas and tool calls split into a header
chunk and argument pieces, followed by a usage chunk when ``stream_options.include_usage``
is set. Only 127.0.0.1 is used.
"""

from __future__ import annotations

import itertools
import json
import threading
from collections import deque
from collections.abc import AsyncIterator, Callable, Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import openai
import pytest

from tests.chat_validator import problems


@dataclass
class Reply:
    """One scripted model answer: text, tool calls ``(call_id, name, arguments)``, or an error."""

    content: str | None = None
    tool_calls: list[tuple[str, str, str]] = field(default_factory=list)
    usage: tuple[int, int] = (10, 5)
    status: int = 200
    audio: dict[str, Any] | None = None
    annotations: list[dict[str, Any]] | None = None

    def message(self) -> dict[str, Any]:
        message: dict[str, Any] = {"role": "assistant", "content": self.content}
        if self.audio is not None:
            message["audio"] = self.audio
        if self.annotations is not None:
            message["annotations"] = self.annotations
        if self.tool_calls:
            message["tool_calls"] = [
                {"id": cid, "type": "function", "function": {"name": name, "arguments": args}}
                for cid, name, args in self.tool_calls
            ]
        return message


def calls(*spec: tuple[str, str, dict[str, Any]], usage: tuple[int, int] = (10, 5)) -> Reply:
    """A reply asking for tool calls, arguments given as dicts."""
    return Reply(tool_calls=[(cid, name, json.dumps(args)) for cid, name, args in spec], usage=usage)


ReplySource = Reply | Callable[[dict[str, Any]], Reply]


class ChatServer:
    """``with ChatServer() as server:`` then ``server.base_url``, ``server.script(...)``,
    ``server.requests`` (every request body, decoded)."""

    def __init__(self) -> None:
        self.replies: deque[ReplySource] = deque()
        self.requests: list[dict[str, Any]] = []
        self.invalid: list[list[str]] = []  # the problems of each refused request
        self._ids = itertools.count(1)
        self._lock = threading.Lock()
        owner = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, format: str, *args: Any) -> None:
                pass

            def do_POST(self) -> None:
                body = json.loads(self.rfile.read(int(self.headers.get("Content-Length", "0"))))
                if not self.path.endswith("/chat/completions"):
                    self._send(404, {"error": {"message": f"no route {self.path}", "type": "not_found"}})
                    return
                with owner._lock:
                    owner.requests.append(body)
                    invalid = problems(body.get("messages"))
                    if invalid:
                        owner.invalid.append(invalid)
                        self._send(400, {"error": {"message": "; ".join(invalid),
                                                   "type": "invalid_request_error"}})
                        return
                    source = owner.replies.popleft() if owner.replies else Reply("(script exhausted)")
                reply = source(body) if callable(source) else source
                if reply.status != 200:
                    self._send(reply.status, {"error": {"message": reply.content or "failure",
                                                        "type": "server_error"}})
                elif body.get("stream"):
                    self._stream(body, reply)
                else:
                    self._send(200, owner._completion(body, reply))

            def _send(self, status: int, payload: dict[str, Any]) -> None:
                data = json.dumps(payload).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def _stream(self, body: dict[str, Any], reply: Reply) -> None:
                self.send_response(200)
                self.send_header("Content-Type", "text/event-stream")
                self.send_header("Connection", "close")
                self.end_headers()
                for chunk in owner._chunks(body, reply):
                    self.wfile.write(f"data: {json.dumps(chunk)}\n\n".encode())
                    self.wfile.flush()
                self.wfile.write(b"data: [DONE]\n\n")
                self.wfile.flush()
                self.close_connection = True

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        self._thread = threading.Thread(target=self._server.serve_forever, args=(0.05,), daemon=True)

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self._server.server_address[1]}/v1"

    def script(self, *replies: ReplySource) -> None:
        with self._lock:
            self.replies.extend(replies)

    def _completion(self, body: dict[str, Any], reply: Reply) -> dict[str, Any]:
        prompt, completion = reply.usage
        return {
            "id": f"chatcmpl-{next(self._ids)}", "object": "chat.completion", "created": 0,
            "model": body.get("model", "test"),
            "choices": [{"index": 0, "message": reply.message(),
                         "finish_reason": "tool_calls" if reply.tool_calls else "stop"}],
            "usage": {"prompt_tokens": prompt, "completion_tokens": completion,
                      "total_tokens": prompt + completion},
        }

    def _chunks(self, body: dict[str, Any], reply: Reply) -> Iterator[dict[str, Any]]:
        base = {"id": f"chatcmpl-{next(self._ids)}", "object": "chat.completion.chunk", "created": 0,
                "model": body.get("model", "test")}

        def chunk(delta: dict[str, Any], finish: str | None = None) -> dict[str, Any]:
            return {**base, "choices": [{"index": 0, "delta": delta, "finish_reason": finish}]}

        yield chunk({"role": "assistant", "content": ""})
        text = reply.content or ""
        for start in range(0, len(text), 4):
            yield chunk({"content": text[start:start + 4]})
        for index, (cid, name, args) in enumerate(reply.tool_calls):
            yield chunk({"tool_calls": [{"index": index, "id": cid, "type": "function",
                                         "function": {"name": name, "arguments": ""}}]})
            middle = len(args) // 2
            for piece in (args[:middle], args[middle:]):
                yield chunk({"tool_calls": [{"index": index, "function": {"arguments": piece}}]})
        yield chunk({}, "tool_calls" if reply.tool_calls else "stop")
        if (body.get("stream_options") or {}).get("include_usage"):
            prompt, completion = reply.usage
            yield {**base, "choices": [], "usage": {"prompt_tokens": prompt, "completion_tokens": completion,
                                                    "total_tokens": prompt + completion}}

    def __enter__(self) -> ChatServer:
        self._thread.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(timeout=5)


@pytest.fixture
def chat_server() -> Iterator[ChatServer]:
    """A running ChatServer on 127.0.0.1."""
    with ChatServer() as running:
        yield running


@pytest.fixture
async def chat_aclient(chat_server: ChatServer) -> AsyncIterator[openai.AsyncOpenAI]:
    """An AsyncOpenAI client for ``chat_server`` (no retries)."""
    client = openai.AsyncOpenAI(base_url=chat_server.base_url, api_key="test", max_retries=0)
    yield client
    await client.close()
