"""Canonical messages of every shape the contract promises to keep exactly."""

from __future__ import annotations

from typing import Any

SYSTEM = {"role": "system", "content": "You are terse."}
DEVELOPER = {"role": "developer", "content": "Answer in French.", "name": "ops"}
USER = {"role": "user", "content": "Hello there"}
USER_PARTS = {
    "role": "user",
    "content": [
        {"type": "text", "text": "What is in this picture?"},
        {"type": "image_url", "image_url": {"url": "https://example.invalid/cat.png", "detail": "low"}},
    ],
    "name": "alice",
}
USER_AUDIO = {
    "role": "user",
    "content": [{"type": "input_audio", "input_audio": {"data": "UklGRiQAAABXQVZF", "format": "wav"}}],
}
USER_FILE = {
    "role": "user",
    "content": [{"type": "file", "file": {"file_id": "file-abc123", "filename": "report.pdf"}}],
}
ASSISTANT = {"role": "assistant", "content": "Hi! How can I help?"}
ASSISTANT_TOOL_CALLS = {
    "role": "assistant",
    "content": None,
    "tool_calls": [
        {"id": "call_1", "type": "function", "function": {"name": "weather", "arguments": '{"city":"Oslo"}'}},
        {"id": "call_2", "type": "function", "function": {"name": "time", "arguments": "{}"}},
    ],
}
TOOL_1 = {"role": "tool", "tool_call_id": "call_1", "content": "-3 °C, snow"}
TOOL_2 = {"role": "tool", "tool_call_id": "call_2", "content": [{"type": "text", "text": "12:00"}]}
FUNCTION = {"role": "function", "name": "legacy", "content": "42"}
EXTRAS = {
    "role": "assistant",
    "content": "with extras",
    "id": "msg_01",
    "metadata": {"nested": {"list": [1, 2.5, True, None, "ü"], "empty": {}}, "big": 2**62},
    "refusal": None,
    "x-framework": {"run_id": "r-1", "tags": ["a", "b"]},
}
UNICODE = {
    "role": "user",
    "content": 'emoji 🦜, RTL \u202e, CJK 会话, NUL-free \\u0000 text, quote " and \n newline',
}

ALL_SHAPES: list[dict[str, Any]] = [
    SYSTEM,
    DEVELOPER,
    USER,
    USER_PARTS,
    USER_AUDIO,
    USER_FILE,
    ASSISTANT,
    ASSISTANT_TOOL_CALLS,
    TOOL_1,
    TOOL_2,
    FUNCTION,
    EXTRAS,
    UNICODE,
]


def text(i: int, role: str = "user") -> dict[str, Any]:
    return {"role": role, "content": f"message {i}"}
