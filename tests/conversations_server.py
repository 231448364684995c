"""A local HTTP server speaking the documented OpenAI Conversations API, for tests.

Endpoints (paths under ``/v1``): ``POST /conversations`` (at most 20 initial items),
``GET/POST/DELETE /conversations/{id}``, ``POST /conversations/{id}/items`` (1 to 20
items), ``GET /conversations/{id}/items`` (cursor pages: ``after``, ``limit`` 1-100
defaulting to 20, ``order`` defaulting to ``desc``; ``has_more``, ``first_id``,
``last_id``), ``GET/DELETE /conversations/{id}/items/{item_id}``. Unknown ids answer
404, malformed requests 400, with OpenAI's error body. Like the real service,
deleting a conversation keeps its items (they become unreachable).

Every request is recorded (method, path, query, JSON body) in ``server.requests``.
Listens on 127.0.0.1 on a free port; ``stop()`` shuts it down.
"""

from __future__ import annotations

import json
import secrets
import socket
import threading
import time
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qsl, urlsplit

MAX_ITEMS = 20

_INPUT_PARTS = {"input_text", "input_image", "input_file"}
_ASSISTANT_PARTS = {"output_text", "refusal", "input_text"}
_ITEM_FIELDS = {
    "message": {"type", "role", "content", "id", "status"},
    "function_call": {"type", "call_id", "name", "arguments", "id", "status"},
    "function_call_output": {"type", "call_id", "output", "id", "status"},
}


class ApiError(Exception):
    def __init__(self, status: int, message: str, param: str | None = None) -> None:
        super().__init__(message)
        self.status = status
        self.param = param


@dataclass
class Recorded:
    method: str
    path: str
    query: dict[str, str]
    body: Any


@dataclass
class Conversation:
    id: str
    created_at: int
    metadata: dict[str, str]
    items: list[dict[str, Any]] = field(default_factory=list)
    deleted: bool = False

    def public(self) -> dict[str, Any]:
        return {"id": self.id, "object": "conversation", "created_at": self.created_at,
                "metadata": self.metadata}


def _new_id(prefix: str) -> str:
    return f"{prefix}_{secrets.token_hex(12)}"


def _part(part: Any, role: str, where: str) -> dict[str, Any]:
    if not isinstance(part, dict) or not isinstance(part.get("type"), str):
        raise ApiError(400, f"Invalid value for '{where}': expected a content part object.", where)
    allowed = _ASSISTANT_PARTS if role == "assistant" else _INPUT_PARTS
    kind = part["type"]
    if kind not in allowed:
        raise ApiError(400, f"Invalid value: '{kind}'. Supported values are: {sorted(allowed)}.", where)
    if kind in ("input_text", "output_text"):
        if not isinstance(part.get("text"), str):
            raise ApiError(400, f"Missing required parameter: '{where}.text'.", where)
        if role == "assistant":
            return {"type": "output_text", "text": part["text"], "annotations": part.get("annotations", []),
                    "logprobs": []}
        return {"type": "input_text", "text": part["text"]}
    if kind == "refusal":
        if not isinstance(part.get("refusal"), str):
            raise ApiError(400, f"Missing required parameter: '{where}.refusal'.", where)
        return {"type": "refusal", "refusal": part["refusal"]}
    if kind == "input_image":
        detail = part.get("detail", "auto")
        if detail not in ("low", "high", "auto", "original"):
            raise ApiError(400, f"Invalid value for '{where}.detail'.", where)
        if part.get("image_url") is None and part.get("file_id") is None:
            raise ApiError(400, f"'{where}' needs image_url or file_id.", where)
        return {"type": "input_image", "detail": detail, "image_url": part.get("image_url"),
                "file_id": part.get("file_id")}
    fields = {k: part.get(k) for k in ("file_id", "file_data", "file_url", "filename")}
    if not any(fields.values()):
        raise ApiError(400, f"'{where}' needs file_id, file_data or file_url.", where)
    return {"type": "input_file", **fields}


def _item(raw: Any, where: str) -> dict[str, Any]:
    """Validate an input item and return it as the server stores it (with an id)."""
    if not isinstance(raw, dict):
        raise ApiError(400, f"Invalid type for '{where}': expected an object.", where)
    kind = raw.get("type", "message" if "role" in raw else None)
    if kind not in _ITEM_FIELDS:
        raise ApiError(400, f"Invalid value for '{where}.type': {kind!r}.", where)
    unknown = set(raw) - _ITEM_FIELDS[kind]
    if unknown:
        raise ApiError(400, f"Unknown parameter: '{where}.{sorted(unknown)[0]}'.", where)
    if kind == "message":
        role = raw.get("role")
        if role not in ("user", "assistant", "system", "developer"):
            raise ApiError(400, f"Invalid value for '{where}.role': {role!r}.", where)
        content = raw.get("content")
        if isinstance(content, str):
            content = [{"type": "output_text" if role == "assistant" else "input_text", "text": content}]
        if not isinstance(content, list):
            raise ApiError(400, f"Invalid type for '{where}.content'.", where)
        parts = [_part(p, role, f"{where}.content[{i}]") for i, p in enumerate(content)]
        return {"id": _new_id("msg"), "type": "message", "status": "completed", "role": role,
                "content": parts}
    if not isinstance(raw.get("call_id"), str):
        raise ApiError(400, f"Missing required parameter: '{where}.call_id'.", where)
    if kind == "function_call":
        for key in ("name", "arguments"):
            if not isinstance(raw.get(key), str):
                raise ApiError(400, f"Missing required parameter: '{where}.{key}'.", where)
        return {"id": _new_id("fc"), "type": "function_call", "status": "completed",
                "call_id": raw["call_id"], "name": raw["name"], "arguments": raw["arguments"]}
    output = raw.get("output")
    if isinstance(output, list):
        output = [_part(p, "tool", f"{where}.output[{i}]") for i, p in enumerate(output)]
    elif not isinstance(output, str):
        raise ApiError(400, f"Missing required parameter: '{where}.output'.", where)
    return {"id": _new_id("fco"), "type": "function_call_output", "status": "completed",
            "call_id": raw["call_id"], "output": output}


def _items(raw: Any, *, required: bool) -> list[dict[str, Any]]:
    if raw is None and not required:
        return []
    if not isinstance(raw, list):
        raise ApiError(400, "Invalid type for 'items': expected an array.", "items")
    if required and not raw:
        raise ApiError(400, "Invalid 'items': empty array. Expected at least 1 item.", "items")
    if len(raw) > MAX_ITEMS:
        raise ApiError(
            400, f"Invalid 'items': array too long. Expected an array with maximum length "
            f"{MAX_ITEMS}, but got an array with length {len(raw)} instead.", "items",
        )
    return [_item(item, f"items[{i}]") for i, item in enumerate(raw)]


def _metadata(raw: Any) -> dict[str, str]:
    if raw is None:
        return {}
    if not isinstance(raw, dict) or len(raw) > 16:
        raise ApiError(400, "Invalid 'metadata': at most 16 string pairs.", "metadata")
    for key, value in raw.items():
        if len(key) > 64 or not isinstance(value, str) or len(value) > 512:
            raise ApiError(400, f"Invalid 'metadata.{key}': too long or not a string.", "metadata")
    return dict(raw)


class ConversationsServer:
    """The server's state and request handling; ``base_url`` is what clients use."""

    def __init__(self, create_delay: float = 0.0) -> None:
        self.lock = threading.Lock()
        self.conversations: dict[str, Conversation] = {}
        self.requests: list[Recorded] = []
        self.create_delay = create_delay
        #: Answer the next N requests with this status (fault injection).
        self.fail_next: list[int] = []
        #: Answer the Nth ``POST .../items`` (counted from 1) with the given status.
        self.fail_items_create: tuple[int, int] | None = None
        self._items_creates = 0
        handler = type("Handler", (_Handler,), {"api": self})
        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), handler)
        self.httpd.daemon_threads = True
        self.port = self.httpd.server_address[1]
        self.base_url = f"http://127.0.0.1:{self.port}/v1"
        self.thread = threading.Thread(target=self.httpd.serve_forever, args=(0.05,), daemon=True)
        self.thread.start()

    def stop(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()
        self.thread.join()

    def live(self, conversation_id: str) -> Conversation:
        conversation = self.conversations.get(conversation_id)
        if conversation is None or conversation.deleted:
            raise ApiError(404, f"Conversation with id '{conversation_id}' not found.")
        return conversation

    def requests_to(self, method: str, suffix: str = "") -> list[Recorded]:
        with self.lock:
            return [r for r in self.requests if r.method == method and r.path.endswith(suffix)]

    def handle(self, method: str, path: str, query: dict[str, str], body: Any) -> tuple[int, Any]:
        with self.lock:
            self.requests.append(Recorded(method, path, query, body))
            if self.fail_next:
                status = self.fail_next.pop(0)
                raise ApiError(status, f"injected failure {status}")
            if method == "POST" and path.endswith("/items"):
                self._items_creates += 1
                if self.fail_items_create and self.fail_items_create[0] == self._items_creates:
                    raise ApiError(self.fail_items_create[1], "injected failure")
        parts = [p for p in path.split("/") if p]
        if parts[:2] != ["v1", "conversations"]:
            raise ApiError(404, f"Invalid URL ({method} {path})")
        parts = parts[2:]
        if method == "POST" and not parts:
            if self.create_delay:
                time.sleep(self.create_delay)
            if not isinstance(body, dict):
                raise ApiError(400, "Expected a JSON object body.")
            items = _items(body.get("items"), required=False)
            conversation = Conversation(_new_id("conv"), int(time.time()), _metadata(body.get("metadata")),
                                        items)
            with self.lock:
                self.conversations[conversation.id] = conversation
            return 200, conversation.public()
        with self.lock:
            if len(parts) == 1:
                return self._conversation(method, parts[0], body)
            if len(parts) == 2 and parts[1] == "items":
                return self._items(method, parts[0], query, body)
            if len(parts) == 3 and parts[1] == "items":
                return self._item(method, parts[0], parts[2])
        raise ApiError(404, f"Invalid URL ({method} {path})")

    def _conversation(self, method: str, conversation_id: str, body: Any) -> tuple[int, Any]:
        conversation = self.live(conversation_id)
        if method == "GET":
            return 200, conversation.public()
        if method == "POST":
            if not isinstance(body, dict) or "metadata" not in body:
                raise ApiError(400, "Missing required parameter: 'metadata'.", "metadata")
            conversation.metadata = _metadata(body["metadata"])
            return 200, conversation.public()
        if method == "DELETE":
            conversation.deleted = True  # the items stay stored, unreachable
            return 200, {"id": conversation_id, "object": "conversation.deleted", "deleted": True}
        raise ApiError(405, f"{method} not allowed")

    def _items(self, method: str, conversation_id: str, query: dict[str, str], body: Any) -> tuple[int, Any]:
        conversation = self.live(conversation_id)
        if method == "POST":
            if not isinstance(body, dict):
                raise ApiError(400, "Expected a JSON object body.")
            created = _items(body.get("items"), required=True)
            conversation.items.extend(created)
            return 200, _list(created, has_more=False)
        if method != "GET":
            raise ApiError(405, f"{method} not allowed")
        order = query.get("order", "desc")
        if order not in ("asc", "desc"):
            raise ApiError(400, f"Invalid value for 'order': {order!r}.", "order")
        try:
            limit = int(query.get("limit", "20"))
        except ValueError:
            raise ApiError(400, "Invalid 'limit': expected an integer.", "limit") from None
        if not 1 <= limit <= 100:
            raise ApiError(400, f"Invalid 'limit': {limit}. Expected a value between 1 and 100.", "limit")
        ordered = conversation.items if order == "asc" else conversation.items[::-1]
        start = 0
        if "after" in query:
            ids = [item["id"] for item in ordered]
            if query["after"] not in ids:
                raise ApiError(400, f"Invalid 'after': no item {query['after']!r} here.", "after")
            start = ids.index(query["after"]) + 1
        page = ordered[start:start + limit]
        return 200, _list(page, has_more=start + limit < len(ordered))

    def _item(self, method: str, conversation_id: str, item_id: str) -> tuple[int, Any]:
        conversation = self.live(conversation_id)
        for position, item in enumerate(conversation.items):
            if item["id"] == item_id:
                if method == "GET":
                    return 200, item
                if method == "DELETE":
                    del conversation.items[position]
                    return 200, conversation.public()
                raise ApiError(405, f"{method} not allowed")
        raise ApiError(404, f"Item with id '{item_id}' not found.")


def _list(items: list[dict[str, Any]], *, has_more: bool) -> dict[str, Any]:
    return {
        "object": "list",
        "data": items,
        "first_id": items[0]["id"] if items else None,
        "last_id": items[-1]["id"] if items else None,
        "has_more": has_more,
    }


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    api: ConversationsServer

    def setup(self) -> None:
        super().setup()
        # Answer in one segment: without this, Nagle's algorithm and delayed ACKs add
        # ~40 ms to every keep-alive request.
        self.connection.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

    def log_message(self, format: str, *args: Any) -> None:
        pass

    def _serve(self) -> None:
        url = urlsplit(self.path)
        length = int(self.headers.get("Content-Length") or 0)
        raw = self.rfile.read(length) if length else b""
        try:
            try:
                body = json.loads(raw) if raw else None
            except ValueError:
                raise ApiError(400, "We could not parse the JSON body of your request.") from None
            status, answer = self.api.handle(self.command, url.path, dict(parse_qsl(url.query)), body)
        except ApiError as error:
            status = error.status
            answer = {"error": {"message": str(error), "type": "invalid_request_error",
                                "param": error.param, "code": None}}
        payload = json.dumps(answer).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(payload)))
        self.end_headers()
        self.wfile.write(payload)

    do_GET = _serve
    do_POST = _serve
    do_DELETE = _serve
