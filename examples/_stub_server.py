"""A tiny OpenAI-compatible Chat Completions stub for running the examples offline.

It listens on 127.0.0.1 only and answers ``POST /v1/chat/completions`` (no streaming,
no tools) from the conversation it is sent: it picks up "my name is ..." and "I like
..." from the user's messages, so it can answer "what's my name?" only if the history
reached it - which is what the examples demonstrate. It is not a language model.
"""

from __future__ import annotations

import json
import re
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

__all__ = ["StubServer", "facts", "reply_to"]

_NAME = re.compile(r"\bmy name is (\w+)", re.IGNORECASE)
_LIKES = re.compile(r"\bI (?:like|love) ([^.,!?]+)", re.IGNORECASE)


def _text(content: Any) -> str:
    if isinstance(content, str):
        return content
    return " ".join(p.get("text", "") for p in content or () if isinstance(p, dict))


def facts(said: list[str]) -> tuple[str | None, str | None]:
    """(name, what they like) as the user last said them in ``said``, or None."""
    name = likes = None
    for text in said:
        if found := _NAME.search(text):
            name = found.group(1)
        if found := _LIKES.search(text):
            likes = found.group(1).strip()
    return name, likes


def reply_to(messages: list[dict[str, Any]]) -> str:
    """The stub's answer to a conversation, from the facts in its user messages."""
    said = [_text(m.get("content")) for m in messages if m.get("role") == "user"]
    if not said:
        return "Hello! How can I help?"
    name, likes = facts(said)
    last = said[-1]
    if "?" in last and re.search(r"\b(name|like)\b", last, re.IGNORECASE):
        if name is None and likes is None:
            return "I don't know anything about you yet."
        known = [f"your name is {name}" if name else "", f"you like {likes}" if likes else ""]
        answer = " and ".join(k for k in known if k)
        return answer[0].upper() + answer[1:] + "."
    if _NAME.search(last) or _LIKES.search(last):
        greeting = f"Nice to meet you, {name}!" if name else "Noted!"
        return f"{greeting} {likes[0].upper() + likes[1:]} is a fine thing to like." if likes else greeting
    return f"You said: {last}"


class _Handler(BaseHTTPRequestHandler):
    def log_message(self, format: str, *args: Any) -> None:
        pass

    def do_POST(self) -> None:
        body = json.loads(self.rfile.read(int(self.headers.get("Content-Length", "0"))) or b"{}")
        if not self.path.endswith("/chat/completions") or body.get("stream"):
            refusal = "the stub answers non-streamed chat completions only"
            status, payload = 400, {"error": {"message": refusal}}
        else:
            text = reply_to(body.get("messages", []))
            prompt = sum(len(_text(m.get("content")).split()) for m in body.get("messages", []))
            status, payload = 200, {
                "id": "chatcmpl-stub", "object": "chat.completion", "created": 0,
                "model": body.get("model", "stub"),
                "choices": [{"index": 0, "finish_reason": "stop",
                             "message": {"role": "assistant", "content": text}}],
                "usage": {"prompt_tokens": prompt, "completion_tokens": len(text.split()),
                          "total_tokens": prompt + len(text.split())},
            }
        data = json.dumps(payload).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)


class StubServer:
    """``with StubServer() as stub:`` serves on ``stub.base_url`` until the block ends."""

    def __init__(self) -> None:
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
        self._thread = threading.Thread(target=self._server.serve_forever, args=(0.05,), daemon=True)
        self.base_url = f"http://127.0.0.1:{self._server.server_address[1]}/v1"

    def __enter__(self) -> StubServer:
        self._thread.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self._server.shutdown()
        self._server.server_close()
