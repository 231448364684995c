"""A strict validator of Chat Completions ``messages`` lists, for tests.

It accepts only what the Chat Completions API documents for each role (the request
types of the ``openai`` package, ``ChatCompletionMessageParam``), with the API's rules
between messages, and is stricter than the API where the API is lenient about something
no model can read:

* exactly the documented keys per role, per content part and per tool call; no extras;
* ``content``: a string, or a non-empty list of the parts the role takes (user: text,
  image_url, input_audio, file; assistant: text, refusal; system, developer, tool:
  text); assistant ``content`` may be null only with tool calls, a function call or a
  refusal; an assistant message must say something (text, refusal or a call);
* ``name``: ``[A-Za-z0-9_-]{1,64}``; a legacy function message needs one;
* every assistant message with ``tool_calls`` is followed directly by one tool message
  per call id (any order), and every tool message is part of such a block;
* no Responses-only message or bookkeeping key reaches a model.

``problems(messages)`` lists what is wrong (empty when valid);
``assert_valid(messages)`` raises ``AssertionError`` naming every problem.
"""

from __future__ import annotations

import json
import re
from typing import Any

_NAME = re.compile(r"[A-Za-z0-9_-]{1,64}")
_KEYS = {
    "system": {"role", "content", "name"},
    "developer": {"role", "content", "name"},
    "user": {"role", "content", "name"},
    "assistant": {"role", "content", "name", "tool_calls", "refusal", "function_call", "audio"},
    "tool": {"role", "content", "tool_call_id"},
    "function": {"role", "content", "name"},
}
_PARTS = {
    "system": {"text"}, "developer": {"text"}, "tool": {"text"},
    "user": {"text", "image_url", "input_audio", "file"},
    "assistant": {"text", "refusal"},
}
_PART_KEYS = {"text": {"type", "text"}, "refusal": {"type", "refusal"},
              "image_url": {"type", "image_url"}, "input_audio": {"type", "input_audio"},
              "file": {"type", "file"}}


def _part_problem(part: Any, role: str) -> str | None:
    if not isinstance(part, dict):
        return f"part {part!r} is not an object"
    kind = part.get("type")
    if kind not in _PARTS[role]:
        return f"a {role} message cannot take a {kind!r} part"
    if set(part) != _PART_KEYS[kind]:
        return f"{kind} part has keys {sorted(part)}"
    if kind in ("text", "refusal"):
        return None if isinstance(part[kind], str) else f"{kind} part without a string"
    body = part[kind]
    if not isinstance(body, dict):
        return f"{kind} part body is not an object"
    if kind == "image_url":
        if not set(body) <= {"url", "detail"} or not isinstance(body.get("url"), str) or not body["url"]:
            return f"bad image_url {body!r}"
        if "detail" in body and body["detail"] not in ("auto", "low", "high", "original"):
            return f"bad image detail {body['detail']!r}"
    elif kind == "input_audio":
        if set(body) != {"data", "format"} or not isinstance(body["data"], str) \
                or body["format"] not in ("wav", "mp3"):
            return f"bad input_audio {body!r}"
    elif kind == "file" and (not set(body) <= {"file_data", "file_id", "filename"}
                             or not all(isinstance(v, str) for v in body.values())
                             or not {"file_data", "file_id"} & set(body)):
        return f"bad file {body!r}"
    return None


def _call_problem(call: Any) -> str | None:
    if not isinstance(call, dict) or not isinstance(call.get("id"), str) or not call["id"]:
        return f"tool call {call!r} has no id"
    kind = call.get("type")
    if kind == "function":
        body = call.get("function")
        if set(call) != {"id", "type", "function"} or not isinstance(body, dict) \
                or set(body) != {"name", "arguments"} or not isinstance(body["name"], str) \
                or not body["name"] or not isinstance(body["arguments"], str):
            return f"bad function tool call {call!r}"
    elif kind == "custom":
        body = call.get("custom")
        if set(call) != {"id", "type", "custom"} or not isinstance(body, dict) \
                or set(body) != {"name", "input"} or not all(isinstance(v, str) for v in body.values()):
            return f"bad custom tool call {call!r}"
    else:
        return f"tool call type {kind!r}"
    return None


def _message_problems(message: Any) -> list[str]:
    if not isinstance(message, dict):
        return [f"not an object: {message!r}"]
    role = message.get("role")
    if role not in _KEYS:
        return [f"role {role!r}"]
    found = []
    extra = set(message) - _KEYS[role]
    if extra:
        found.append(f"{role} message has keys the API does not take: {sorted(extra)}")
    if "name" in message and (not isinstance(message["name"], str) or not _NAME.fullmatch(message["name"])):
        found.append(f"name {message['name']!r}")
    if role == "function":
        if "name" not in message:
            found.append("function message without a name")
        if "content" not in message or not isinstance(message["content"], (str, type(None))):
            found.append("function content must be a string or null")
        return found
    content = message.get("content")
    if isinstance(content, list):
        if not content:
            found.append(f"{role} content is an empty array")
        found += [p for p in (_part_problem(part, role) for part in content) if p]
    elif content is not None and not isinstance(content, str):
        found.append(f"{role} content {content!r}")
    elif content is None and role != "assistant":
        found.append(f"{role} message without content")
    if role == "tool" and (not isinstance(message.get("tool_call_id"), str) or not message["tool_call_id"]):
        found.append("tool message without tool_call_id")
    if role == "assistant":
        calls = message.get("tool_calls")
        if calls is not None:
            if not isinstance(calls, list) or not calls:
                found.append("tool_calls must be a non-empty list")
            else:
                found += [p for p in map(_call_problem, calls) if p]
                ids = [c.get("id") for c in calls if isinstance(c, dict)]
                if len(ids) != len(set(ids)):
                    found.append(f"repeated tool call ids {ids}")
        refusal = message.get("refusal")
        if refusal is not None and not isinstance(refusal, str):
            found.append(f"refusal {refusal!r}")
        audio = message.get("audio")
        if audio is not None and (not isinstance(audio, dict) or set(audio) != {"id"}):
            found.append(f"audio {audio!r}")
        says = bool(content) or bool(calls) or bool(refusal) or bool(message.get("function_call")) or audio
        if not says:
            found.append("assistant message says nothing (no text, refusal or call)")
    return found


def problems(messages: Any, *, allow_empty: bool = False) -> list[str]:
    """Everything that makes ``messages`` an invalid Chat Completions request."""
    if not isinstance(messages, list):
        return ["messages is not a list"]
    if not messages and not allow_empty:
        return ["no messages"]
    found: list[str] = []
    try:
        json.dumps(messages, allow_nan=False)
    except (TypeError, ValueError) as error:
        found.append(f"not JSON: {error}")
    for index, message in enumerate(messages):
        found += [f"[{index}] {p}" for p in _message_problems(message)]
    index = 0
    while index < len(messages):
        message = messages[index]
        if not isinstance(message, dict):
            index += 1
            continue
        if message.get("role") == "tool":
            found.append(f"[{index}] tool message answers no call of the assistant message before it")
            index += 1
            continue
        calls = message.get("tool_calls") if message.get("role") == "assistant" else None
        index += 1
        if not calls or not isinstance(calls, list):
            continue
        wanted = [c.get("id") for c in calls if isinstance(c, dict)]
        answered: list[Any] = []
        while index < len(messages) and isinstance(messages[index], dict) \
                and messages[index].get("role") == "tool":
            call_id = messages[index].get("tool_call_id")
            if call_id not in wanted or call_id in answered:
                found.append(f"[{index}] tool result {call_id!r} answers no call of its assistant message")
            answered.append(call_id)
            index += 1
        missing = [i for i in wanted if i not in answered]
        if missing:
            found.append(f"tool calls {missing} have no result right after their message")
    return found


def assert_valid(messages: Any, *, allow_empty: bool = False) -> None:
    """Raise AssertionError listing every problem of ``messages`` as a request."""
    found = problems(messages, allow_empty=allow_empty)
    assert not found, "invalid Chat Completions request:\n  " + "\n  ".join(found)
