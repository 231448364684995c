"""Building LangChain message objects fast, with the values validation would give.

Reading a long history is mostly building message objects, and pydantic validation is
most of that. Values read from a canonical message are plain JSON data, so when each
one already has the exact type validation would produce, validation would return them
unchanged: the object is then assembled directly, with the same field values, field
order and set of explicitly given fields as the validated constructor gives. Anything
else (an int id to coerce, unusual usage metadata, extra fields, legacy raw tool calls)
goes through the validated constructor. A self-check at import compares both ways and
keeps only validation if a langchain-core release builds messages differently.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from langchain_core.messages import (
    AIMessage,
    BaseMessage,
    ChatMessage,
    FunctionMessage,
    HumanMessage,
    SystemMessage,
    ToolMessage,
)
from langchain_core.messages.tool import tool_call

from sessions._errors import InvalidMessageError

DEVELOPER_MARK = "__openai_role__"
"""``additional_kwargs`` key by which langchain-core marks a developer ``SystemMessage``."""


def invalid_call(name: Any, args: Any, call_id: Any, error: str | None) -> Any:
    """An invalid tool call in the field order of langchain-core's ``InvalidToolCall``."""
    return {"type": "invalid_tool_call", "id": call_id, "name": name, "args": args, "error": error}


def optional_str(value: object) -> bool:
    """True for ``None`` or a ``str``."""
    return value is None or type(value) is str


_USAGE_KEYS = ("input_tokens", "output_tokens", "total_tokens", "input_token_details", "output_token_details")


def _usage_ok(value: object) -> bool:
    if type(value) is not dict or list(value) != [k for k in _USAGE_KEYS if k in value]:
        return False  # validation would reorder (or drop) keys
    for key, item in value.items():
        if key in ("input_tokens", "output_tokens", "total_tokens"):
            if type(item) is not int:
                return False
        elif key in ("input_token_details", "output_token_details"):
            if type(item) is not dict or any(type(v) is not int for v in item.values()):
                return False
        else:
            return False
    return "input_tokens" in value and "output_tokens" in value and "total_tokens" in value


_FAST_CHECKS: dict[str, Callable[[Any], bool]] = {
    "content": lambda v: type(v) is str or (
        type(v) is list and all(type(i) is str or type(i) is dict for i in v)),
    "additional_kwargs": lambda v: type(v) is dict and "tool_calls" not in v,
    "response_metadata": lambda v: type(v) is dict,
    "name": optional_str,
    "id": optional_str,
    "tool_call_id": lambda v: type(v) is str,
    "status": lambda v: v in ("success", "error"),
    "artifact": lambda v: True,
    "role": lambda v: type(v) is str,
    "tool_calls": lambda v: all(
        type(c["name"]) is str and type(c["args"]) is dict and optional_str(c["id"]) for c in v),
    "invalid_tool_calls": lambda v: all(
        optional_str(c[k]) for c in v for k in ("name", "args", "id", "error")),
    "usage_metadata": _usage_ok,
}

_MISSING = object()
_FIELDS: dict[type[BaseMessage], list[tuple[str, Any, Any]]] = {
    cls: [(name, info.default, info.default_factory) for name, info in cls.model_fields.items()]
    for cls in (HumanMessage, AIMessage, SystemMessage, ToolMessage, FunctionMessage, ChatMessage)
}
_new = object.__new__
_set = object.__setattr__


def _assemble(cls: type[BaseMessage], values: dict[str, Any]) -> BaseMessage:
    fields: dict[str, Any] = {}
    for name, default, factory in _FIELDS[cls]:
        value = values.get(name, _MISSING)
        if value is _MISSING:
            value = factory() if factory is not None else default
        fields[name] = value
    message: BaseMessage = _new(cls)
    _set(message, "__dict__", fields)
    _set(message, "__pydantic_fields_set__", set(values))
    _set(message, "__pydantic_extra__", {})
    _set(message, "__pydantic_private__", None)
    return message


def _validated(cls: type[BaseMessage], values: dict[str, Any]) -> BaseMessage:
    try:
        return cls(**values)
    except ValueError as error:  # pydantic's ValidationError is a ValueError
        raise InvalidMessageError(f"not a valid {cls.__name__}: {error}") from None


def build(cls: type[BaseMessage], values: dict[str, Any]) -> BaseMessage:
    """``cls(**values)``, assembled directly when validation would change nothing."""
    if _fast_path:
        for key, value in values.items():
            check = _FAST_CHECKS.get(key)
            if check is None or not check(value):
                return _validated(cls, values)
        return _assemble(cls, values)
    return _validated(cls, values)


def _assembles_like_validation() -> bool:
    samples: list[tuple[type[BaseMessage], dict[str, Any]]] = [
        (HumanMessage, {"content": "hi", "name": "a", "id": "1"}),
        (HumanMessage, {"content": ["x", {"type": "text", "text": "y"}]}),
        (AIMessage, {"content": "", "id": "r", "tool_calls": [tool_call(name="f", args={"a": 1}, id="c")],
                     "invalid_tool_calls": [invalid_call("g", "{", "d", "e")],
                     "usage_metadata": {"input_tokens": 1, "output_tokens": 2, "total_tokens": 3},
                     "response_metadata": {"model_name": "m"}, "additional_kwargs": {"refusal": None}}),
        (AIMessage, {"content": "plain"}),
        (SystemMessage, {"content": "s", "additional_kwargs": {DEVELOPER_MARK: "developer"}}),
        (ToolMessage, {"content": "r", "tool_call_id": "c", "status": "error", "artifact": [1]}),
        (ToolMessage, {"content": "r", "tool_call_id": "c"}),
        (FunctionMessage, {"content": "42", "name": "f"}),
        (ChatMessage, {"content": "c", "role": "critic"}),
    ]
    for cls, values in samples:
        built, validated = _assemble(cls, values), cls(**values)
        if (built != validated or built.model_fields_set != validated.model_fields_set
                or list(built.__dict__) != list(validated.__dict__) or repr(built) != repr(validated)):
            return False
    return True


_fast_path = False
_fast_path = _assembles_like_validation()
