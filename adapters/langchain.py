"""LangChain over the session layer: a ``BaseChatMessageHistory`` and message conversion.

Needs the ``langchain`` extra (``langchain-core >= 1.0``)::

    from langchain_core.runnables.history import RunnableWithMessageHistory
    from adapters.langchain import session_history_factory

    chain = RunnableWithMessageHistory(prompt | model, session_history_factory(store))
    chain.invoke({...}, config={"configurable": {"session_id": "user-alice"}})

History is stored as canonical Chat Completions messages, so LlamaIndex, the Agents SDK
and the OpenAI runner read what a LangChain chain wrote. :func:`to_canonical` and
:func:`from_canonical` convert one message; reading back what was added gives messages
equal (``==``) to the originals:

* The Chat Completions form carries what every framework understands: role (a
  ``SystemMessage`` marked ``__openai_role__="developer"`` is the ``developer`` role),
  content (LangChain v1 image, audio and file blocks become ``image_url``,
  ``input_audio`` and ``file`` parts through langchain-core's converter), ``name``,
  ``id``, ``tool_calls`` (arguments as JSON text; invalid tool calls too, as LangChain
  sends them), ``tool_call_id`` and, on assistant messages, ``refusal`` and
  ``function_call`` from ``additional_kwargs``.
* What that form cannot hold is kept under the message's ``"langchain"`` key:
  ``additional_kwargs``, ``response_metadata``, ``usage_metadata``, a tool message's
  ``status`` and ``artifact``, the error of each invalid tool call, a ``ChatMessage``'s
  own role (its canonical role is that role if it is a canonical one, else ``user``),
  extra pydantic fields, and the exact content list when the parts lose something
  (content blocks with no Chat Completions form, such as reasoning or ``tool_use``
  blocks, live only there; a converted block keeps only what the part lacks, never a
  second copy of its data).
* Keys of a canonical message that LangChain has no field for (written by another
  framework, e.g. ``metadata`` or another framework's namespace) are read into
  ``additional_kwargs["canonical_extras"]`` and written back from there as top-level
  keys, so they survive a LangChain read and write.

Message chunks are stored as the message they complete
(``langchain_core.messages.message_chunk_to_message``). ``RemoveMessage`` and other
message classes have no canonical form and raise :class:`InvalidMessageError`.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from typing import Any

from adapters._gc import collector_paused
from sessions._base import Session
from sessions._errors import (
    CorruptRecordError,
    InvalidArgumentError,
    InvalidMessageError,
    MissingDependencyError,
)
from sessions._message import Message, check_limit, check_session_id

try:
    from langchain_core.chat_history import BaseChatMessageHistory
    from langchain_core.messages import (
        AIMessage,
        BaseMessage,
        BaseMessageChunk,
        ChatMessage,
        FunctionMessage,
        HumanMessage,
        SystemMessage,
        ToolMessage,
        is_data_content_block,
        message_chunk_to_message,
    )
    from langchain_core.messages.block_translators.openai import convert_to_openai_data_block
    from langchain_core.messages.tool import tool_call
except ImportError as error:  # pragma: no cover - exercised without the extra installed
    raise MissingDependencyError(
        "langchain-core", "langchain", feature="adapters.langchain"
    ) from error

__all__ = [
    "EXTRAS_KEY",
    "NAMESPACE",
    "SessionChatMessageHistory",
    "from_canonical",
    "session_history_factory",
    "to_canonical",
]

NAMESPACE = "langchain"
"""Key of a canonical message holding what only LangChain knows about it."""

EXTRAS_KEY = "canonical_extras"
"""``additional_kwargs`` key holding canonical keys LangChain has no field for."""

_DEVELOPER_MARK = "__openai_role__"
# ChatMessage roles stored under their own name; any other role is stored as "user".
_CHAT_ROLES = frozenset({"system", "developer", "user", "assistant"})
# Chat Completions parts kept as they are: the type names the one other key.
_PART_TYPES = {"text": str, "refusal": str, "image_url": dict, "input_audio": dict, "file": dict}
# additional_kwargs keys that are fields of a Chat Completions assistant message.
_ASSISTANT_FIELDS = ("refusal", "function_call")
_COMMON_KEYS = frozenset({"role", "content", "name", "id", NAMESPACE})
_KNOWN_KEYS = {
    "assistant": _COMMON_KEYS | {"tool_calls", *_ASSISTANT_FIELDS},
    "tool": _COMMON_KEYS | {"tool_call_id"},
}
_NAMESPACE_KEYS = frozenset({
    "additional_kwargs", "response_metadata", "usage_metadata", "status", "artifact",
    "invalid_tool_calls", "chat_role", "fields", "content",
})
_ROLE_OF: dict[type[BaseMessage], str] = {
    HumanMessage: "user",
    AIMessage: "assistant",
    ToolMessage: "tool",
    FunctionMessage: "function",
}
_NO_NAMESPACE: dict[str, Any] = {}


# -- LangChain -> canonical ----------------------------------------------------------------


def _payload(part: dict[str, Any], *, whole: bool = False) -> Any:
    """The data a Chat Completions part carries: a data URL's base64 text, or the
    whole URL with ``whole=True``."""
    kind = part["type"]
    if kind == "text":
        return part["text"]
    body = part[kind]
    if kind == "image_url":
        value = body.get("url")
    elif kind == "input_audio":
        value = body.get("data")
    else:
        value = body.get("file_data", body.get("file_id"))
    if not whole and isinstance(value, str) and value.startswith("data:") and "," in value:
        return value.split(",", 1)[1]
    return value


def _is_part(block: object) -> bool:
    if type(block) is not dict or len(block) != 2:
        return False
    kind = block.get("type")
    expected = _PART_TYPES.get(kind) if isinstance(kind, str) else None
    return expected is not None and type(block.get(kind)) is expected


def _as_part(block: dict[str, Any]) -> dict[str, Any] | None:
    """The Chat Completions part closest to a LangChain block, or None if there is none."""
    kind = block.get("type")
    if kind == "text" and type(block.get("text")) is str and "source_type" not in block:
        return {"type": "text", "text": block["text"]}
    if kind == "image_url" and type(block.get("image_url")) is str:  # older LangChain form
        return {"type": "image_url", "image_url": {"url": block["image_url"]}}
    source = block.get("source")
    if (kind == "image" and type(source) is dict and source.get("type") == "base64"
            and type(source.get("media_type")) is str and type(source.get("data")) is str):
        # Anthropic's form, as langchain-core's convert_to_openai_messages reads it.
        url = f"data:{source['media_type']};base64,{source['data']}"
        return {"type": "image_url", "image_url": {"url": url}}
    if not is_data_content_block(block):
        return None
    if (block.get("type") == "file" and not block.get("filename")
            and "filename" not in (block.get("extras") or {})):
        # The placeholder langchain-core would add when sending, without its warning.
        block = {**block, "filename": "LC_AUTOGENERATED"}
    try:
        part = convert_to_openai_data_block(block)
    except (ValueError, KeyError, TypeError, AttributeError):
        return None  # e.g. image file ids, file URLs, video: no Chat Completions part
    return part if _is_part(part) else None


def _convert_content(content: Any) -> tuple[Any, list[Any] | None]:
    """Canonical content and, when the parts lose something, how to rebuild the original.

    The rebuild list has one entry per original item: ``k`` (part k as is), ``{"text":
    k}`` (a bare string, part k's text), ``{"part": k, "block": ..., "payload": key}``
    (a converted block minus the data part k holds under ``key``; ``"whole": true`` when
    that is a whole data URL rather than its base64 text) or ``{"block": ...}`` (a block
    with no Chat Completions form, kept only here).
    """
    if isinstance(content, str):
        return content, None
    if not isinstance(content, list):
        raise InvalidMessageError(f"content must be a str or a list, not {type(content).__name__}")
    parts: list[dict[str, Any]] = []
    entries: list[Any] = []
    exact = True
    for item in content:
        if isinstance(item, str):
            entries.append({"text": len(parts)})
            parts.append({"type": "text", "text": item})
            exact = False
        elif _is_part(item):
            entries.append(len(parts))
            parts.append(item)
        elif isinstance(item, dict) and (part := _as_part(item)) is not None:
            entry: dict[str, Any] = {"part": len(parts)}
            for whole in (False, True):
                payload = _payload(part, whole=whole)
                key = next((k for k, v in item.items() if k != "type" and v == payload), None)
                if key is not None:
                    break
            if key is None:
                entry["block"] = item  # nothing to share with the part: kept whole
            else:
                entry["block"] = {k: v for k, v in item.items() if k != key}
                entry["payload"] = key
                if whole:
                    entry["whole"] = True
            entries.append(entry)
            parts.append(part)
            exact = False
        else:
            entries.append({"block": item})
            exact = False
    return parts, (None if exact else entries)


def _tool_call_to_canonical(call: Any, *, invalid: bool) -> dict[str, Any]:
    if invalid:
        arguments = call.get("args")
    else:
        try:
            arguments = json.dumps(call["args"], ensure_ascii=False)
        except (TypeError, ValueError) as error:
            raise InvalidMessageError(f"tool call arguments are not JSON: {error}") from None
    return {"id": call.get("id"), "type": "function",
            "function": {"name": call.get("name"), "arguments": arguments}}


def to_canonical(message: BaseMessage) -> Message:
    """Convert a LangChain message to a canonical message (a Chat Completions dict).

    Raises :class:`InvalidMessageError` for objects that are not LangChain messages,
    message classes with no canonical form (``RemoveMessage``) and tool call arguments
    that are not JSON. Other values that are not JSON (in ``additional_kwargs``, say)
    are refused by the store when the message is appended.
    """
    if not isinstance(message, BaseMessage):
        raise InvalidMessageError(
            f"expected a LangChain BaseMessage, got {type(message).__name__}"
        )
    if isinstance(message, BaseMessageChunk):
        message = message_chunk_to_message(message)
    namespace: dict[str, Any] = {}
    additional = message.additional_kwargs
    extras = additional.get(EXTRAS_KEY)
    if extras is not None:
        if type(extras) is not dict:
            raise InvalidMessageError(f"additional_kwargs[{EXTRAS_KEY!r}] must be a dict")
        additional = {k: v for k, v in additional.items() if k != EXTRAS_KEY}
    role: str
    if isinstance(message, SystemMessage):
        role = "system"
        if additional.get(_DEVELOPER_MARK) == "developer":
            role = "developer"
            additional = {k: v for k, v in additional.items() if k != _DEVELOPER_MARK}
    elif isinstance(message, ChatMessage):
        role = message.role if message.role in _CHAT_ROLES else "user"
        namespace["chat_role"] = message.role
    else:
        role_of = _ROLE_OF.get(type(message)) or next(
            (r for cls, r in _ROLE_OF.items() if isinstance(message, cls)), None
        )
        if role_of is None:
            raise InvalidMessageError(
                f"{type(message).__name__} has no canonical form (it is not a conversation message)"
            )
        role = role_of

    canonical: dict[str, Any] = {"role": role}
    content, rebuild = _convert_content(message.content)
    if rebuild is not None:
        namespace["content"] = rebuild
    canonical["content"] = content
    if message.name is not None:
        canonical["name"] = message.name
    if message.id is not None:
        canonical["id"] = message.id

    if isinstance(message, AIMessage):
        calls = [_tool_call_to_canonical(c, invalid=False) for c in message.tool_calls]
        if message.invalid_tool_calls:
            calls += [_tool_call_to_canonical(c, invalid=True) for c in message.invalid_tool_calls]
            namespace["invalid_tool_calls"] = [c.get("error") for c in message.invalid_tool_calls]
        if calls:
            canonical["tool_calls"] = calls
            if content == "":
                canonical["content"] = None
        if "refusal" in additional or "function_call" in additional:
            for key in _ASSISTANT_FIELDS:
                if key in additional:
                    canonical[key] = additional[key]
            additional = {k: v for k, v in additional.items() if k not in _ASSISTANT_FIELDS}
        if message.usage_metadata is not None:
            namespace["usage_metadata"] = message.usage_metadata
    elif isinstance(message, ToolMessage):
        canonical["tool_call_id"] = message.tool_call_id
        if message.status != "success":
            namespace["status"] = message.status
        if message.artifact is not None:
            namespace["artifact"] = message.artifact

    if additional:
        namespace["additional_kwargs"] = additional
    if message.response_metadata:
        namespace["response_metadata"] = message.response_metadata
    if message.__pydantic_extra__:
        namespace["fields"] = dict(message.__pydantic_extra__)
    if namespace:
        canonical[NAMESPACE] = namespace
    if extras:
        clash = sorted(k for k in extras if k in canonical or k in _KNOWN_KEYS.get(role, _COMMON_KEYS))
        if clash:
            raise InvalidMessageError(
                f"additional_kwargs[{EXTRAS_KEY!r}] repeats message fields: {', '.join(clash)}"
            )
        canonical.update(extras)
    return canonical


# -- canonical -> LangChain ----------------------------------------------------------------


def _rebuild_content(parts: Any, entries: Any) -> list[Any]:
    if type(entries) is not list or type(parts) is not list:
        raise InvalidMessageError(f"{NAMESPACE}.content does not match the message's content")
    content: list[Any] = []
    try:
        for entry in entries:
            if type(entry) is int:
                content.append(parts[entry])
            elif "text" in entry:
                content.append(parts[entry["text"]]["text"])
            elif "part" in entry:
                block = dict(entry["block"])
                if "payload" in entry:
                    block[entry["payload"]] = _payload(parts[entry["part"]], whole="whole" in entry)
                content.append(block)
            else:
                content.append(entry["block"])
    except (KeyError, IndexError, TypeError, AttributeError) as error:
        raise InvalidMessageError(
            f"{NAMESPACE}.content does not match the message's content ({error!r})"
        ) from None
    return content


def _invalid_call(name: Any, args: Any, call_id: Any, error: str | None) -> Any:
    # In the field order of langchain-core's InvalidToolCall, as validation leaves it.
    return {"type": "invalid_tool_call", "id": call_id, "name": name, "args": args, "error": error}


def _tool_calls_from_canonical(
    calls: Any, errors: list[Any] | None
) -> tuple[list[Any], list[Any]]:
    if type(calls) is not list or any(type(call) is not dict for call in calls):
        raise InvalidMessageError("'tool_calls' must be a list of dicts")
    if errors is not None and (type(errors) is not list or len(errors) > len(calls)):
        raise InvalidMessageError(f"{NAMESPACE}.invalid_tool_calls does not match 'tool_calls'")
    split = len(calls) - len(errors) if errors is not None else len(calls)
    valid: list[Any] = []
    invalid: list[Any] = []
    for position, call in enumerate(calls):
        function = call.get("function")
        if type(function) is not dict:
            invalid.append(_invalid_call(None, json.dumps(call, ensure_ascii=False), call.get("id"),
                                         f"unsupported tool call type {call.get('type')!r}"))
            continue
        name, arguments = function.get("name"), function.get("arguments")
        if position >= split:
            invalid.append(_invalid_call(name, arguments, call.get("id"), errors[position - split]))  # type: ignore[index]
            continue
        try:
            args = json.loads(arguments) if arguments else {}
        except (TypeError, ValueError):
            args = None
        if type(args) is dict and type(name) is str:
            valid.append(tool_call(name=name, args=args, id=call.get("id")))
        else:
            invalid.append(_invalid_call(name, arguments if type(arguments) is str else None,
                                         call.get("id"), "arguments are not a JSON object"))
    return valid, invalid


def from_canonical(message: Message) -> BaseMessage:
    """Convert a canonical message to the LangChain message it stands for.

    A message written by :func:`to_canonical` comes back equal to the original; one
    written by another framework becomes the natural LangChain message (Chat
    Completions content parts are valid LangChain content as they are), with keys
    LangChain has no field for in ``additional_kwargs["canonical_extras"]``. Raises
    :class:`InvalidMessageError` if the message cannot be read.
    """
    if type(message) is not dict:
        raise InvalidMessageError(f"expected a canonical message (a dict), got {type(message).__name__}")
    role = message.get("role")
    namespace = message.get(NAMESPACE)
    if namespace is None:
        namespace = _NO_NAMESPACE
    elif type(namespace) is not dict:
        raise InvalidMessageError(f"{NAMESPACE!r} must be a dict, not {type(namespace).__name__}")
    elif not namespace.keys() <= _NAMESPACE_KEYS:
        unknown = ", ".join(sorted(set(namespace) - _NAMESPACE_KEYS))
        raise InvalidMessageError(f"{NAMESPACE!r} holds keys this version does not know: {unknown}")
    content = message.get("content")
    if "content" in namespace:
        content = _rebuild_content(content, namespace["content"])
    elif content is None:
        content = ""
    kwargs: dict[str, Any] = {"content": content}
    # additional_kwargs: what the namespace kept, plus what the message says in its own keys.
    additional: dict[str, Any] = {}
    if "additional_kwargs" in namespace:
        additional.update(namespace["additional_kwargs"])
    known = _KNOWN_KEYS.get(role, _COMMON_KEYS)  # type: ignore[arg-type]
    if not message.keys() <= known:
        additional[EXTRAS_KEY] = {k: v for k, v in message.items() if k not in known}
    name = message.get("name")
    if name is not None:
        kwargs["name"] = name
    message_id = message.get("id")
    if message_id is not None:
        kwargs["id"] = message_id
    if namespace:
        if "response_metadata" in namespace:
            kwargs["response_metadata"] = namespace["response_metadata"]
        if "fields" in namespace:
            kwargs.update(namespace["fields"])

    cls: type[BaseMessage]
    if "chat_role" in namespace:
        cls = ChatMessage
        kwargs["role"] = namespace["chat_role"]
    elif role == "user":
        cls = HumanMessage
    elif role == "assistant":
        cls = AIMessage
        for key in _ASSISTANT_FIELDS:
            if key in message:
                additional[key] = message[key]
        if message.get("tool_calls"):
            valid, invalid = _tool_calls_from_canonical(
                message["tool_calls"], namespace.get("invalid_tool_calls")
            )
            kwargs["tool_calls"] = valid
            kwargs["invalid_tool_calls"] = invalid
        if "usage_metadata" in namespace:
            kwargs["usage_metadata"] = namespace["usage_metadata"]
    elif role == "system" or role == "developer":
        cls = SystemMessage
        if role == "developer":
            additional[_DEVELOPER_MARK] = "developer"
    elif role == "tool":
        cls = ToolMessage
        kwargs["tool_call_id"] = message.get("tool_call_id")
        if "status" in namespace:
            kwargs["status"] = namespace["status"]
        if "artifact" in namespace:
            kwargs["artifact"] = namespace["artifact"]
    elif role == "function":
        cls = FunctionMessage
        if type(name) is not str:
            raise InvalidMessageError("a function message needs a str 'name'")
    else:
        raise InvalidMessageError(f"role {role!r} has no LangChain message class")
    if additional:
        kwargs["additional_kwargs"] = additional
    return _build(cls, kwargs)


# -- building messages fast -----------------------------------------------------------------
#
# Reading a long history is mostly building message objects, and pydantic validation is
# most of that. Values read from a canonical message are plain JSON data, so when each
# one already has the exact type validation would produce, validation would return them
# unchanged: the object is then assembled directly, with the same field values, field
# order and set of explicitly given fields as the validated constructor gives. Anything
# else (an int id to coerce, unusual usage metadata, extra fields, legacy raw tool calls)
# goes through the validated constructor. A self-check at import compares both ways and
# keeps only validation if a langchain-core release builds messages differently.


def _optional_str(value: object) -> bool:
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
    "name": _optional_str,
    "id": _optional_str,
    "tool_call_id": lambda v: type(v) is str,
    "status": lambda v: v in ("success", "error"),
    "artifact": lambda v: True,
    "role": lambda v: type(v) is str,
    "tool_calls": lambda v: all(
        type(c["name"]) is str and type(c["args"]) is dict and _optional_str(c["id"]) for c in v),
    "invalid_tool_calls": lambda v: all(
        _optional_str(c[k]) for c in v for k in ("name", "args", "id", "error")),
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


def _build(cls: type[BaseMessage], values: dict[str, Any]) -> BaseMessage:
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
                     "invalid_tool_calls": [_invalid_call("g", "{", "d", "e")],
                     "usage_metadata": {"input_tokens": 1, "output_tokens": 2, "total_tokens": 3},
                     "response_metadata": {"model_name": "m"}, "additional_kwargs": {"refusal": None}}),
        (AIMessage, {"content": "plain"}),
        (SystemMessage, {"content": "s", "additional_kwargs": {_DEVELOPER_MARK: "developer"}}),
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


# -- the chat history -------------------------------------------------------------------------

class SessionChatMessageHistory(BaseChatMessageHistory):
    """A LangChain chat history kept in a :class:`sessions.Session` under one session id.

    ``limit=N`` is a window: :attr:`messages` and :meth:`aget_messages` return only
    the last N messages (the store reads O(N), however long the conversation), while
    every message stays stored. ``add_messages`` appends the whole batch in one atomic
    ``append``; ``clear`` removes every message of the session, not only the window.
    The async methods call the store's async methods, so they never block the event
    loop on I/O; turning records into message objects runs on the loop (about 5 µs a
    message), which a window keeps short. While a read of 1,000 messages or more is
    converted, Python's cyclic garbage collector is paused (see :mod:`adapters._gc`).

    Messages that cannot be stored raise :class:`sessions.InvalidMessageError` naming
    their index, and nothing of the batch is stored.
    """

    def __init__(self, session: Session, session_id: str, *, limit: int | None = None) -> None:
        self.session = session
        self.session_id = check_session_id(session_id, "history")
        self.limit = check_limit(limit, session_id, "history")

    def __repr__(self) -> str:
        return (f"{type(self).__name__}({self.session!r}, {self.session_id!r}"
                f"{'' if self.limit is None else f', limit={self.limit}'})")

    def _to_langchain(self, stored: list[Message]) -> list[BaseMessage]:
        try:
            with collector_paused(len(stored)):
                return [from_canonical(message) for message in stored]
        except InvalidMessageError as error:
            raise CorruptRecordError(
                f"a stored message cannot be read as a LangChain message: {error.reason}",
                session_id=self.session_id, operation="get",
            ) from error

    def _to_canonical(self, messages: Sequence[BaseMessage], operation: str) -> list[Message]:
        if isinstance(messages, (BaseMessage, str, dict)):
            raise InvalidMessageError(
                f"expected a sequence of messages, got {type(messages).__name__}",
                session_id=self.session_id, operation=operation,
            )
        converted = []
        for index, message in enumerate(messages):
            try:
                converted.append(to_canonical(message))
            except InvalidMessageError as error:
                raise InvalidMessageError(
                    error.reason, index=index, session_id=self.session_id, operation=operation
                ) from error
        return converted

    @property
    def messages(self) -> list[BaseMessage]:
        """The stored messages, oldest first (only the last ``limit`` with a window)."""
        return self._to_langchain(self.session.get(self.session_id, self.limit))

    @messages.setter
    def messages(self, messages: Sequence[BaseMessage]) -> None:
        """Replace the whole stored history atomically (refused with a window)."""
        if self.limit is not None:
            raise InvalidArgumentError(
                "assigning messages through a windowed history would drop the messages"
                " outside the window; use a history without limit",
                session_id=self.session_id, operation="replace",
            )
        self.session.replace(self.session_id, self._to_canonical(messages, "replace"))

    def add_messages(self, messages: Sequence[BaseMessage]) -> None:
        """Append the batch in one atomic store append."""
        batch = self._to_canonical(messages, "append")
        if batch:
            self.session.append(self.session_id, batch)

    def clear(self) -> None:
        """Remove every message of the session (the session itself remains)."""
        self.session.clear(self.session_id)

    async def aget_messages(self) -> list[BaseMessage]:
        return self._to_langchain(await self.session.aget(self.session_id, self.limit))

    async def aadd_messages(self, messages: Sequence[BaseMessage]) -> None:
        batch = self._to_canonical(messages, "append")
        if batch:
            await self.session.aappend(self.session_id, batch)

    async def aclear(self) -> None:
        await self.session.aclear(self.session_id)


def session_history_factory(
    session: Session, *, limit: int | None = None
) -> Callable[[str], SessionChatMessageHistory]:
    """A ``get_session_history`` for ``RunnableWithMessageHistory`` over ``session``.

    ``RunnableWithMessageHistory(chain, session_history_factory(store, limit=50))``
    keeps each conversation under the ``session_id`` of the call's configuration and
    shows the chain the last 50 messages.
    """
    check_limit(limit, "", "history")

    def get_session_history(session_id: str) -> SessionChatMessageHistory:
        return SessionChatMessageHistory(session, session_id, limit=limit)

    return get_session_history
