"""Canonical messages to OpenAI conversation items and back (pure, no I/O).

One canonical message becomes, in order:

* ``system`` / ``developer`` / ``user``: one ``message`` item with ``input_text``,
  ``input_image`` and ``input_file`` parts;
* ``assistant``: one ``message`` item with ``output_text`` / ``refusal`` parts (left
  out when ``content`` is None and there are tool calls), then one ``function_call``
  item per tool call (``call_id``, ``name``, ``arguments``);
* ``tool``: one ``function_call_output`` item (``call_id`` = ``tool_call_id``; a
  string output, or a list of ``input_text``/``input_image`` parts);
* legacy ``function``: one ``function_call_output`` item whose ``call_id`` is its name.

Reading back turns items into messages with :func:`items_to_message`. What items
cannot carry (``name``, unknown keys, ``input_audio`` parts, the string-or-list form of
``content`` when it differs from the natural reading, keys in another order than the
natural reading's, ...) is detected by :func:`needs_record`: the store keeps the
message's record beside its items.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from ._errors import InvalidMessageError
from ._message import Message, encode_message, is_envelope

__all__ = ["items_to_message", "message_to_items", "needs_record"]

Item = dict[str, Any]

_INPUT_ROLES = ("system", "developer", "user")


def _fail(reason: str, index: int, session_id: str) -> InvalidMessageError:
    return InvalidMessageError(reason, index=index, session_id=session_id, operation="append")


def _input_part(part: Mapping[str, Any]) -> Item | None:
    """An input content part for a canonical part, or None if items cannot hold it."""
    kind = part.get("type")
    if kind == "text" and type(part.get("text")) is str:
        return {"type": "input_text", "text": part["text"]}
    if kind == "image_url":
        image = part.get("image_url")
        if type(image) is dict and type(image.get("url")) is str:
            detail = image.get("detail")
            return {
                "type": "input_image",
                "image_url": image["url"],
                "detail": detail if detail in ("low", "high", "auto") else "auto",
            }
    if kind == "file":
        file = part.get("file")
        if type(file) is dict:
            fields = {k: file[k] for k in ("file_id", "file_data", "filename") if type(file.get(k)) is str}
            if fields:
                return {"type": "input_file", **fields}
    return None


def _output_part(part: Mapping[str, Any]) -> Item | None:
    kind = part.get("type")
    if kind == "text" and type(part.get("text")) is str:
        return {"type": "output_text", "text": part["text"], "annotations": []}
    if kind == "refusal" and type(part.get("refusal")) is str:
        return {"type": "refusal", "refusal": part["refusal"]}
    return None


def _parts(content: Any, assistant: bool) -> list[Item]:
    if content is None:
        return []
    if type(content) is str:
        text: Item = {"type": "output_text" if assistant else "input_text", "text": content}
        if assistant:
            text["annotations"] = []
        return [text]
    convert = _output_part if assistant else _input_part
    return [item for item in (convert(part) for part in content) if item is not None]


def message_to_items(message: Message, index: int, session_id: str) -> list[Item]:
    """The items ``message`` becomes, ready for ``conversations.items.create``.

    Raises :class:`InvalidMessageError` for what no item can hold at all: envelopes
    (a wrapper's ciphertext means nothing to the server) and malformed tool calls.
    """
    if is_envelope(message):
        raise _fail(
            "envelopes (compression or encryption wrappers) cannot be stored as "
            "conversation items; the conversation must hold readable messages",
            index, session_id,
        )
    role = message["role"]
    content = message.get("content")
    if role in _INPUT_ROLES:
        return [{"type": "message", "role": role, "content": _parts(content, assistant=False)}]
    if role in ("tool", "function"):
        call_id = message.get("tool_call_id") if role == "tool" else message.get("name")
        if type(content) is str:
            output: str | list[Item] = content
        elif content is None:
            output = ""
        else:
            output = _parts(content, assistant=False)
        return [{"type": "function_call_output", "call_id": call_id or "", "output": output}]
    items: list[Item] = []
    tool_calls = message.get("tool_calls") or []
    if content is not None or not tool_calls:
        items.append({"type": "message", "role": "assistant", "content": _parts(content, assistant=True)})
    for position, call in enumerate(tool_calls):
        function = call.get("function")
        if (
            call.get("type", "function") != "function"
            or type(call.get("id")) is not str
            or type(function) is not dict
            or type(function.get("name")) is not str
            or type(function.get("arguments")) is not str
        ):
            raise _fail(
                f"tool call {position} must be a function call with a str 'id' and "
                "'function' holding str 'name' and 'arguments'",
                index, session_id,
            )
        items.append({
            "type": "function_call",
            "call_id": call["id"],
            "name": function["name"],
            "arguments": function["arguments"],
        })
    return items


def _canonical_part(part: Mapping[str, Any]) -> Item | None:
    kind = part.get("type")
    if kind in ("input_text", "output_text", "text") and type(part.get("text")) is str:
        return {"type": "text", "text": part["text"]}
    if kind == "refusal" and type(part.get("refusal")) is str:
        return {"type": "refusal", "refusal": part["refusal"]}
    if kind == "input_image" and type(part.get("image_url")) is str:
        image: Item = {"url": part["image_url"]}
        if part.get("detail") in ("low", "high"):
            image["detail"] = part["detail"]
        return {"type": "image_url", "image_url": image}
    if kind == "input_file":
        file = {k: part[k] for k in ("file_id", "file_data", "filename") if type(part.get(k)) is str}
        return {"type": "file", "file": file} if file else None
    return None


def _content(parts: Sequence[Mapping[str, Any]]) -> str | list[Item]:
    """A lone text part reads as a string, anything else as a list of parts."""
    converted = [p for p in (_canonical_part(part) for part in parts) if p is not None]
    if len(converted) == 1 and converted[0]["type"] == "text":
        text: str = converted[0]["text"]
        return text
    return converted


def items_to_message(items: Sequence[Mapping[str, Any]]) -> Message | None:
    """The canonical message a group of items reads as; None for items that are not
    chat messages (reasoning, hosted tool calls), which readers skip."""
    first = items[0]
    kind = first.get("type")
    if kind == "function_call_output":
        output = first.get("output")
        content = output if type(output) is str else _content(output or [])
        return {"role": "tool", "tool_call_id": first.get("call_id") or "", "content": content}
    calls = [item for item in items if item.get("type") == "function_call"]
    if kind == "message":
        role = first.get("role")
        if role not in ("system", "developer", "user", "assistant"):
            return None
        parts = first.get("content") or []
        message: Message = {"role": role}
        if role == "assistant" and not parts:
            message["content"] = None
        else:
            message["content"] = _content(parts)
    elif kind == "function_call":
        message = {"role": "assistant", "content": None}
    else:
        return None
    if calls:
        message["tool_calls"] = [
            {
                "id": call.get("call_id"),
                "type": "function",
                "function": {"name": call.get("name"), "arguments": call.get("arguments")},
            }
            for call in calls
        ]
    return message


def needs_record(record: str, items: Sequence[Mapping[str, Any]]) -> bool:
    """True when reading ``items`` back would not give the message of ``record``
    exactly: the same keys in the same order, the same values of the same JSON types
    (the record texts are compared, so ``1``, ``1.0`` and ``true`` differ too)."""
    back = items_to_message(items)
    return back is None or encode_message(back) != record
