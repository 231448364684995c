"""LlamaIndex over the session layer: a chat store, a ``Memory`` store and message conversion.

Three public pieces, all keyed by session id:

* :class:`SessionChatStore` -- a ``BaseChatStore`` for ``ChatMemoryBuffer`` and the chat
  engines. ``window=N`` makes every read return only the last N messages of a key,
  so a turn over a long conversation costs O(N), not O(history).
* :class:`SessionDBChatStore` -- an ``AsyncDBChatStore`` for
  ``llama_index.core.memory.Memory.from_defaults(session_id=..., chat_store=...)``.
  The session holds the *whole* conversation in order (what every other framework
  reads); how many of its oldest messages ``Memory`` has archived is kept in a small
  sibling session, ``session_id + MEMORY_STATE_SUFFIX``.
* :func:`to_canonical` and :func:`from_canonical` -- ``ChatMessage`` to and from the
  canonical (Chat Completions) message. A message read back is equal (``==``) to the
  one that was stored: what the canonical format cannot say is kept under the
  message's ``"llamaindex"`` key. Canonical keys LlamaIndex has no field for (written
  by other frameworks) travel in ``additional_kwargs["canonical_extras"]`` and are
  written back as they were.

The conversion rules, per message kind, are listed in ``docs/fidelity.md``.
"""

from __future__ import annotations

import base64
import binascii
import json
from collections.abc import Iterable, Mapping
from typing import Any, Optional

from adapters._gc import collector_paused
from sessions import (
    ConfigurationError,
    CorruptRecordError,
    InvalidArgumentError,
    InvalidMessageError,
    MissingDependencyError,
    Session,
    connect,
)
from sessions._message import Message, check_session_id

try:
    from llama_index.core.base.llms.types import (
        AudioBlock,
        ChatMessage,
        DocumentBlock,
        ImageBlock,
        MessageRole,
        TextBlock,
        ToolCallBlock,
    )
    from llama_index.core.bridge.pydantic import (
        BaseModel,
        PrivateAttr,
        SerializationInfo,
        SerializerFunctionWrapHandler,
        model_serializer,
    )
    from llama_index.core.storage.chat_store.base import BaseChatStore
    from llama_index.core.storage.chat_store.base_db import AsyncDBChatStore, MessageStatus
except ImportError as error:  # pragma: no cover - exercised without the extra installed
    raise MissingDependencyError(
        "llama-index-core", "llamaindex", feature="adapters.llamaindex"
    ) from error

__all__ = [
    "EXTRAS_KEY",
    "MEMORY_STATE_SUFFIX",
    "NAMESPACE",
    "SessionChatStore",
    "SessionDBChatStore",
    "from_canonical",
    "to_canonical",
]

NAMESPACE = "llamaindex"
"""Message key holding what the canonical format cannot express about a ``ChatMessage``."""

EXTRAS_KEY = "canonical_extras"
"""``additional_kwargs`` key holding canonical keys that ``ChatMessage`` has no field for."""

MEMORY_STATE_SUFFIX = "::llamaindex-memory"
"""Appended to a session id to name the sibling session holding ``Memory``'s archive mark."""

_STATE_KEY = "llamaindex_memory"
_CANONICAL_KEYS = frozenset({"role", "content", "name", "tool_calls", "tool_call_id", NAMESPACE})

_ROLE_OUT: dict[Any, str] = {
    MessageRole.SYSTEM: "system",
    MessageRole.DEVELOPER: "developer",
    MessageRole.USER: "user",
    MessageRole.ASSISTANT: "assistant",
    MessageRole.TOOL: "tool",
    MessageRole.FUNCTION: "function",
    # Provider spellings of the assistant role; the original is kept in the namespace.
    MessageRole.CHATBOT: "assistant",
    MessageRole.MODEL: "assistant",
}
_ROLE_OUT.update({role.value: name for role, name in list(_ROLE_OUT.items())})  # str roles too
_RENAMED_ROLES = frozenset({MessageRole.CHATBOT, MessageRole.MODEL, "chatbot", "model"})
_ROLE_IN: dict[str, MessageRole] = {role.value: role for role in MessageRole}
_TEXT_ROLES = frozenset({"system", "developer", "user", "assistant"})


# -- conversion: ChatMessage -> canonical ---------------------------------------------------


def _plain(value: Any) -> Any:
    """``value`` as JSON data: pydantic models dumped, bytes as base64 text."""
    if isinstance(value, BaseModel):
        return value.model_dump(mode="json")
    if isinstance(value, dict):
        return {key: _plain(item) for key, item in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain(item) for item in value]
    if isinstance(value, bytes):
        return base64.b64encode(value).decode("ascii")
    return value


def _data_url(mimetype: str | None, data: bytes) -> str:
    return f"data:{mimetype or 'application/octet-stream'};base64,{data.decode('ascii')}"


def _block_to_part(block: Any) -> dict[str, Any] | None:
    """The canonical content part of a block, or None if it has none."""
    kind = type(block)
    if kind is TextBlock:
        return {"type": "text", "text": block.text}
    if kind is ImageBlock:
        if isinstance(block.image, bytes):
            url = _data_url(block.image_mimetype, block.image)
        elif block.url is not None:
            url = str(block.url)
        else:
            return None
        image: dict[str, Any] = {"url": url}
        if block.detail is not None:
            image["detail"] = block.detail
        return {"type": "image_url", "image_url": image}
    if kind is AudioBlock and isinstance(block.audio, bytes) and block.format:
        return {"type": "input_audio",
                "input_audio": {"data": block.audio.decode("ascii"), "format": block.format}}
    if kind is DocumentBlock and isinstance(block.data, bytes):
        file = {"file_data": _data_url(block.document_mimetype, block.data)}
        if block.title is not None:
            file["filename"] = block.title
        return {"type": "file", "file": file}
    return None


def _call_to_canonical(block: ToolCallBlock) -> dict[str, Any]:
    kwargs = block.tool_kwargs
    arguments = kwargs if isinstance(kwargs, str) else json.dumps(
        _plain(kwargs), ensure_ascii=False, separators=(",", ":")
    )
    call: dict[str, Any] = {"id": block.tool_call_id, "type": "function",
                            "function": {"name": block.tool_name, "arguments": arguments}}
    return call


def to_canonical(message: ChatMessage) -> Message:
    """Convert a ``ChatMessage`` to a canonical message (a JSON-compatible dict).

    Text becomes ``content`` (a string for one text block, a list of parts otherwise);
    image, audio and file blocks with inline data or a URL become ``image_url``,
    ``input_audio`` and ``file`` parts; ``ToolCallBlock`` blocks and
    ``additional_kwargs["tool_calls"]`` become ``tool_calls``; ``tool_call_id`` and
    ``name`` in ``additional_kwargs`` become the keys of the same name. Everything
    else (other ``additional_kwargs``, blocks without a canonical part, the order of
    blocks, the ``chatbot``/``model`` roles) is kept under :data:`NAMESPACE`, so that
    :func:`from_canonical` returns an equal message.
    """
    role = _ROLE_OUT[message.role]
    blocks = message.blocks
    kwargs = message.additional_kwargs
    namespace: dict[str, Any] = {}
    if message.role in _RENAMED_ROLES:
        namespace["role"] = MessageRole(message.role).value
    result: Message = {"role": role}

    if not kwargs and role in _TEXT_ROLES and len(blocks) == 1 and type(blocks[0]) is TextBlock:
        result["content"] = blocks[0].text
        if namespace:
            result[NAMESPACE] = namespace
        return result

    calls: Any = None
    extras: dict[str, Any] = {}
    rest: dict[str, Any] = {}
    for key, value in kwargs.items():
        if key == "tool_calls" and isinstance(value, (list, tuple)):
            calls = _plain(value)
        elif key == "tool_call_id" and isinstance(value, str):
            result["tool_call_id"] = value
        elif key == "name" and isinstance(value, str):
            result["name"] = value
        elif key == EXTRAS_KEY and isinstance(value, dict):
            extras = value
        else:
            rest[key] = value

    parts: list[dict[str, Any]] = []
    call_blocks: list[ToolCallBlock] = []
    exact = True
    for block in blocks:
        if type(block) is ToolCallBlock:
            call_blocks.append(block)
            continue
        part = _block_to_part(block)
        if part is None:
            exact = False
        else:
            parts.append(part)
    if "content" in extras:
        # Content other frameworks wrote that LlamaIndex blocks cannot hold exactly.
        result["content"] = extras["content"]
    elif len(parts) == 1 and parts[0]["type"] == "text":
        result["content"] = parts[0]["text"]
    else:
        result["content"] = parts or None

    if calls is not None:
        result["tool_calls"] = calls
        if calls and _blocks(None, calls) is not None:
            # from_canonical would read these as blocks: say they were kwargs.
            namespace["tool_calls"] = "additional_kwargs"
    elif call_blocks:
        result["tool_calls"] = [_call_to_canonical(block) for block in call_blocks]

    if role == "tool" and "tool_call_id" not in result:
        result["tool_call_id"] = ""
        namespace["no_tool_call_id"] = True
    for key, value in extras.items():
        if key not in _CANONICAL_KEYS and key not in result:
            result[key] = value
    if rest:
        namespace["additional_kwargs"] = _plain(rest)

    if exact and "content" not in extras and not all(type(block) is TextBlock for block in blocks):
        rebuilt = _blocks(result.get("content"), calls is None and result.get("tool_calls"))
        exact = rebuilt == list(blocks)
    if not exact:
        namespace["blocks"] = [_plain(block.model_dump(mode="json")) for block in blocks]
    if namespace:
        result[NAMESPACE] = namespace
    return result


# -- conversion: canonical -> ChatMessage ---------------------------------------------------


# Reading a long history is dominated by building message objects. These two build
# them the way pydantic's ``model_construct`` does (field values in ``__dict__``, the
# documented ``__pydantic_fields_set__``/``__pydantic_extra__``/``__pydantic_private__``
# slots), without its per-call field walk: a third of its cost. The values are already
# valid (a str text; a MessageRole, a dict and a list of blocks).
_set_attribute = object.__setattr__


def _construct(cls: type[Any], fields: dict[str, Any], fields_set: set[str]) -> Any:
    instance = object.__new__(cls)
    _set_attribute(instance, "__dict__", fields)
    _set_attribute(instance, "__pydantic_fields_set__", fields_set)
    _set_attribute(instance, "__pydantic_extra__", None)
    _set_attribute(instance, "__pydantic_private__", None)
    return instance


def _text_block(text: str) -> TextBlock:
    block: TextBlock = _construct(TextBlock, {"block_type": "text", "text": text}, {"text"})
    return block


def _message(role: MessageRole, additional_kwargs: dict[str, Any], blocks: list[Any]) -> ChatMessage:
    message: ChatMessage = _construct(
        ChatMessage, {"role": role, "additional_kwargs": additional_kwargs, "blocks": blocks},
        {"role", "additional_kwargs", "blocks"},
    )
    return message


def _split_data_url(url: str) -> tuple[str | None, bytes] | None:
    """(mimetype, base64 bytes) of a ``data:...;base64,...`` URL, or None."""
    if not url.startswith("data:"):
        return None
    header, comma, data = url.partition(",")
    if not comma or not header.endswith(";base64"):
        return None
    mimetype = header[5:-7] or None
    try:
        base64.b64decode(data, validate=True)
    except (binascii.Error, ValueError):
        return None
    return mimetype, data.encode("ascii")


def _part_to_block(part: Mapping[str, Any]) -> Any | None:
    """The LlamaIndex block of a canonical part, or None if it has no exact one."""
    kind = part.get("type")
    if kind == "text" and len(part) == 2 and isinstance(part.get("text"), str):
        return _text_block(part["text"])
    if kind == "image_url" and len(part) == 2:
        image = part.get("image_url")
        if not isinstance(image, dict) or not isinstance(image.get("url"), str) \
                or not set(image) <= {"url", "detail"}:
            return None
        detail = image.get("detail")
        inline = _split_data_url(image["url"])
        if inline is not None:
            return ImageBlock(image=inline[1], image_mimetype=inline[0], detail=detail)
        return ImageBlock(url=image["url"], detail=detail)
    if kind == "input_audio" and len(part) == 2:
        audio = part.get("input_audio")
        if isinstance(audio, dict) and set(audio) == {"data", "format"} \
                and isinstance(audio["data"], str) and isinstance(audio["format"], str):
            return AudioBlock(audio=audio["data"].encode("ascii"), format=audio["format"])
        return None
    if kind == "file" and len(part) == 2:
        file = part.get("file")
        if not isinstance(file, dict) or not set(file) <= {"file_data", "filename"} \
                or not isinstance(file.get("file_data"), str):
            return None
        inline = _split_data_url(file["file_data"])
        if inline is None:
            return None
        return DocumentBlock(data=inline[1], document_mimetype=inline[0], title=file.get("filename"))
    return None


def _tool_call_block(call: Any) -> ToolCallBlock | None:
    """The ToolCallBlock of a canonical function tool call, or None if it has none."""
    if not isinstance(call, dict) or call.get("type") != "function" \
            or not set(call) <= {"id", "type", "function"}:
        return None
    function = call.get("function")
    if not isinstance(function, dict) or set(function) != {"name", "arguments"} \
            or not isinstance(function["name"], str) or not isinstance(function["arguments"], str):
        return None
    call_id = call.get("id")
    if call_id is not None and not isinstance(call_id, str):
        return None
    arguments: Any = function["arguments"]
    try:
        parsed = json.loads(arguments)
    except ValueError:
        parsed = None
    if isinstance(parsed, dict):
        arguments = parsed
    return ToolCallBlock(tool_call_id=call_id, tool_name=function["name"], tool_kwargs=arguments)


def _blocks(content: Any, tool_calls: Any) -> list[Any] | None:
    """Blocks for canonical ``content`` and (block form) ``tool_calls``; None if inexact."""
    blocks: list[Any] = []
    if isinstance(content, str):
        blocks.append(_text_block(content))
    elif isinstance(content, list):
        for part in content:
            block = _part_to_block(part) if isinstance(part, dict) else None
            if block is None:
                return None
            blocks.append(block)
    elif content is not None:
        return None
    if tool_calls:
        for call in tool_calls:
            block = _tool_call_block(call)
            if block is None:
                return None
            blocks.append(block)
    return blocks


def _invalid(reason: str) -> InvalidMessageError:
    return InvalidMessageError(reason, operation="from_canonical")


def from_canonical(message: Mapping[str, Any]) -> ChatMessage:
    """Convert a canonical message to a ``ChatMessage``; the inverse of :func:`to_canonical`.

    Messages written by other frameworks become the closest ``ChatMessage``: content
    parts become blocks, function ``tool_calls`` become ``ToolCallBlock`` blocks (other
    tool calls stay in ``additional_kwargs["tool_calls"]``), ``tool_call_id`` and
    ``name`` go to ``additional_kwargs``. Unknown keys, and content LlamaIndex blocks
    cannot hold exactly, are kept in ``additional_kwargs[EXTRAS_KEY]`` and written back
    unchanged by :func:`to_canonical`. Raises :class:`InvalidMessageError` for a dict
    without a canonical role. If the exact blocks kept by :func:`to_canonical` no
    longer validate (an image ``path`` whose file was deleted), the message is read
    from its portable form, as other frameworks read it.
    """
    role_text = message.get("role")
    content = message.get("content")
    if len(message) == 2 and type(content) is str and role_text in _TEXT_ROLES:
        return _message(_ROLE_IN[role_text], {}, [_text_block(content)])
    namespace = message.get(NAMESPACE)
    if not isinstance(namespace, dict):
        namespace = {}
    role = _ROLE_IN.get(namespace.get("role", role_text))  # type: ignore[arg-type]
    if role is None or role_text not in _ROLE_IN:
        raise _invalid(f"role {role_text!r} is not a chat message role")

    kwargs: dict[str, Any] = {}
    extras = {key: value for key, value in message.items() if key not in _CANONICAL_KEYS}
    if isinstance(namespace.get("additional_kwargs"), dict):
        kwargs.update(namespace["additional_kwargs"])

    tool_calls = message.get("tool_calls")
    calls_in_kwargs = namespace.get("tool_calls") == "additional_kwargs"
    blocks: Any
    if "blocks" in namespace:
        # Exact blocks kept by to_canonical; tool calls in block form are among them.
        blocks = namespace["blocks"]
        if tool_calls is not None and calls_in_kwargs:
            kwargs["tool_calls"] = tool_calls
    else:
        blocks = _blocks(content, None)
        if blocks is None:
            extras["content"] = content
            blocks = [block for part in content if isinstance(part, dict)
                      and (block := _part_to_block(part)) is not None] if isinstance(content, list) else []
        if tool_calls is not None:
            call_blocks = None if calls_in_kwargs or not tool_calls else _blocks(None, tool_calls)
            if call_blocks is None:
                kwargs["tool_calls"] = tool_calls
            else:
                blocks.extend(call_blocks)
    if "tool_call_id" in message and not namespace.get("no_tool_call_id"):
        kwargs["tool_call_id"] = message["tool_call_id"]
    if "name" in message:
        kwargs["name"] = message["name"]
    if extras:
        kwargs[EXTRAS_KEY] = extras
    if "blocks" not in namespace:
        return _message(role, kwargs, blocks)
    try:
        return ChatMessage(role=role, additional_kwargs=kwargs, blocks=blocks)
    except ValueError:
        # The exact blocks no longer validate (e.g. an image path that was deleted):
        # read the portable form that every other framework reads.
        portable = {key: value for key, value in message.items() if key != NAMESPACE}
        portable[NAMESPACE] = {key: value for key, value in namespace.items() if key != "blocks"}
        return from_canonical(portable)


def _from_canonical_all(messages: list[Message], session_id: str, operation: str) -> list[ChatMessage]:
    try:
        with collector_paused(len(messages)):
            return [from_canonical(message) for message in messages]
    except InvalidMessageError as error:
        raise CorruptRecordError(
            f"stored message cannot be read as a ChatMessage: {error.reason}",
            session_id=session_id, operation=operation,
        ) from error


def _to_canonical_all(messages: Iterable[ChatMessage], session_id: str, operation: str) -> list[Message]:
    result = []
    for index, message in enumerate(messages):
        if not isinstance(message, ChatMessage):
            raise InvalidMessageError(
                f"expected a ChatMessage, got {type(message).__name__}",
                index=index, session_id=session_id, operation=operation,
            )
        result.append(to_canonical(message))
    return result


# -- the BaseChatStore ------------------------------------------------------------------------


def _check_session(session: object, owner: type) -> None:
    if not isinstance(session, Session):
        raise ConfigurationError(
            f"{owner.__name__} needs a sessions.Session, got {type(session).__name__}"
        )


def _check_window(window: object) -> int | None:
    if window is not None and (type(window) is not int or window < 1):
        raise ConfigurationError(f"window must be an int >= 1 or None, got {window!r}")
    return window


class SessionChatStore(BaseChatStore):
    """A LlamaIndex ``BaseChatStore`` over a session store; keys are session ids.

    Use it wherever LlamaIndex takes a chat store::

        chat_store = SessionChatStore(sessions.connect("sqlite:///chats.db"), window=200)
        memory = ChatMemoryBuffer.from_defaults(chat_store=chat_store, chat_store_key="alice")

    Every method has a native async twin (``aget_messages`` ...) that calls the
    store's async methods, so it never blocks the event loop.

    ``window=N``: reads (``get_messages``, what ``delete_messages`` returns) give only
    the last N messages of a key, at O(N) cost; writes are unaffected. Indices given
    to ``delete_message`` count within that window (0 is the oldest message *shown*).

    Serialisation: a store opened with :meth:`from_url` serialises as its URL and
    window (``to_dict``/``model_dump``) and :meth:`from_dict` reopens it. A store built
    on a ``Session`` object cannot be serialised (it holds connections); dumping it
    raises :class:`ConfigurationError`. LlamaIndex's own ``load_chat_store`` (used by
    ``ChatMemoryBuffer.from_dict``) only knows ``SimpleChatStore``; reopen ours with
    :meth:`SessionChatStore.from_dict`.
    """

    window: Optional[int] = None  # noqa: UP045 - pydantic evaluates it on Python 3.10
    url: Optional[str] = None  # noqa: UP045

    _session: Session = PrivateAttr()

    def __init__(self, session: Session, *, window: int | None = None, url: str | None = None) -> None:
        _check_session(session, type(self))
        super().__init__(window=_check_window(window), url=url)  # type: ignore[call-arg]
        self._session = session

    @classmethod
    def from_url(cls, url: str, *, window: int | None = None) -> SessionChatStore:
        """Open the store at ``url`` (see :func:`sessions.connect`); serialisable."""
        return cls(connect(url), window=window, url=url)

    @classmethod
    def class_name(cls) -> str:
        return "SessionChatStore"

    @property
    def session(self) -> Session:
        """The session store messages are kept in."""
        return self._session

    @model_serializer(mode="wrap")
    def _dump(self, handler: SerializerFunctionWrapHandler, info: SerializationInfo) -> dict[str, Any]:
        # pydantic reports the ConfigurationError inside a PydanticSerializationError.
        return self.to_dict()

    def _require_url(self) -> str:
        if self.url is None:
            raise ConfigurationError(
                "this SessionChatStore was built from a Session object and cannot be "
                "serialised; open it with SessionChatStore.from_url(url) to make it serialisable"
            )
        return self.url

    def to_dict(self, **kwargs: Any) -> dict[str, Any]:
        """``{"window", "url", "class_name"}``; raises ConfigurationError without a URL."""
        return {"window": self.window, "url": self._require_url(), "class_name": self.class_name()}

    @classmethod
    def from_dict(cls, data: dict[str, Any], **kwargs: Any) -> SessionChatStore:
        """Reopen a store serialised by ``to_dict`` (it reconnects to its URL)."""
        if data.get("class_name", cls.class_name()) != cls.class_name() or not data.get("url"):
            raise ConfigurationError(
                "not a serialised SessionChatStore (expected class_name and url keys)"
            )
        return cls.from_url(data["url"], window=data.get("window"))

    # -- sync ------------------------------------------------------------------------------

    def set_messages(self, key: str, messages: list[ChatMessage]) -> None:
        """Replace the history of ``key`` atomically."""
        self._session.replace(key, _to_canonical_all(messages, key, "replace"))

    def get_messages(self, key: str) -> list[ChatMessage]:
        """The messages of ``key`` oldest first (only the last ``window`` if set)."""
        return _from_canonical_all(self._session.get(key, self.window), key, "get")

    def add_message(self, key: str, message: ChatMessage) -> None:
        """Append one message to ``key``."""
        self._session.append(key, _to_canonical_all([message], key, "append"))

    def delete_messages(self, key: str) -> list[ChatMessage] | None:
        """Delete ``key`` completely; return its messages as ``get_messages`` would,
        or None if the key did not exist."""
        messages = self.get_messages(key)
        if not messages and self._session.info(key) is None:
            return None
        self._session.delete(key)
        return messages

    def delete_message(self, key: str, idx: int) -> ChatMessage | None:
        """Delete the message at position ``idx`` of what ``get_messages`` returns.

        Negative indices count from the end; an index out of range returns None and
        changes nothing. Costs a read and an atomic rewrite of the whole history.
        """
        _check_index(idx, key)
        history = self._session.get(key)
        position = _position(len(history), self.window, idx)
        if position is None:
            return None
        removed = history.pop(position)
        self._session.replace(key, history)
        return _from_canonical_all([removed], key, "delete_message")[0]

    def delete_last_message(self, key: str) -> ChatMessage | None:
        """Remove and return the last message of ``key`` (None if it has none)."""
        removed = self._session.pop(key)
        return None if removed is None else _from_canonical_all([removed], key, "pop")[0]

    def get_keys(self) -> list[str]:
        """Every session id of the store (``Memory`` state sessions excluded)."""
        return [key for key in self._session.list_sessions() if not key.endswith(MEMORY_STATE_SUFFIX)]

    # -- async -----------------------------------------------------------------------------

    async def aset_messages(self, key: str, messages: list[ChatMessage]) -> None:
        await self._session.areplace(key, _to_canonical_all(messages, key, "replace"))

    async def aget_messages(self, key: str) -> list[ChatMessage]:
        return _from_canonical_all(await self._session.aget(key, self.window), key, "get")

    async def async_add_message(self, key: str, message: ChatMessage) -> None:
        await self._session.aappend(key, _to_canonical_all([message], key, "append"))

    async def adelete_messages(self, key: str) -> list[ChatMessage] | None:
        messages = await self.aget_messages(key)
        if not messages and await self._session.ainfo(key) is None:
            return None
        await self._session.adelete(key)
        return messages

    async def adelete_message(self, key: str, idx: int) -> ChatMessage | None:
        _check_index(idx, key)
        history = await self._session.aget(key)
        position = _position(len(history), self.window, idx)
        if position is None:
            return None
        removed = history.pop(position)
        await self._session.areplace(key, history)
        return _from_canonical_all([removed], key, "delete_message")[0]

    async def adelete_last_message(self, key: str) -> ChatMessage | None:
        removed = await self._session.apop(key)
        return None if removed is None else _from_canonical_all([removed], key, "pop")[0]

    async def aget_keys(self) -> list[str]:
        return [key async for key in self._session.alist_sessions()
                if not key.endswith(MEMORY_STATE_SUFFIX)]


def _check_index(idx: object, key: str) -> None:
    if type(idx) is not int:
        raise InvalidArgumentError(
            f"idx must be an int, not {type(idx).__name__}", session_id=key, operation="delete_message"
        )


def _position(size: int, window: int | None, idx: int) -> int | None:
    """Position in the whole history of index ``idx`` within the visible window."""
    start = max(0, size - window) if window is not None else 0
    visible = size - start
    if idx < 0:
        idx += visible
    if not 0 <= idx < visible:
        return None
    return start + idx


# -- the AsyncDBChatStore face for Memory ---------------------------------------------------


def _state_id(key: str) -> str:
    state_id = key + MEMORY_STATE_SUFFIX
    check_session_id(state_id, "memory state")
    return state_id


def _bounds(total: int, archived: int, status: MessageStatus | None,
            offset: int | None, limit: int | None) -> tuple[int, int]:
    """[start, end) positions in the whole history of a status slice after offset/limit."""
    if status is None:
        start, end = 0, total
    elif status == MessageStatus.ARCHIVED:
        start, end = 0, archived
    elif status == MessageStatus.ACTIVE:
        start, end = archived, total
    else:
        raise InvalidArgumentError(f"status must be a MessageStatus or None, got {status!r}")
    start = min(end, start + (offset or 0))
    if limit is not None:
        end = min(end, start + limit)
    return start, end


class SessionDBChatStore(AsyncDBChatStore):
    """An ``AsyncDBChatStore`` over a session store, for LlamaIndex ``Memory``::

        memory = Memory.from_defaults(session_id="alice",
                                      chat_store=SessionDBChatStore(store))

    The session ``alice`` holds the whole conversation, oldest first: archived
    messages (flushed out of ``Memory``'s short-term queue) followed by active ones,
    so other frameworks read the complete history. The number of archived messages
    at its head is recorded in the sibling session ``alice`` +
    :data:`MEMORY_STATE_SUFFIX` (one marker message; absent when nothing is
    archived), which ``get_keys`` hides. Archiving is O(1) writes and reading the
    active queue is O(active messages), however long the archive grows.

    ``delete_message(key, idx)`` takes a position in the whole conversation (the
    SQL store's row id has no equivalent). Operations that remove or insert messages
    in the middle (``delete_message``, ``delete_oldest_messages``, deleting one status,
    adding *archived* messages while active ones exist) rewrite the history atomically
    and cost O(history).

    The mark and the history are separate writes, not one transaction: a crash
    between them, or a rewrite of the history elsewhere (another framework's
    ``replace``/``clear``), can leave the mark counting the wrong number of leading
    messages as archived (it is capped at the history's length). That changes only
    what ``Memory`` treats as short-term; no message is ever hidden or lost.
    """

    _session: Session = PrivateAttr()

    def __init__(self, session: Session) -> None:
        _check_session(session, type(self))
        super().__init__()
        self._session = session

    @classmethod
    def class_name(cls) -> str:
        return "SessionDBChatStore"

    @property
    def session(self) -> Session:
        return self._session

    async def _archived(self, key: str) -> tuple[int, int]:
        """(total messages, archived messages at the head) of ``key``."""
        state_id = _state_id(key)
        total = await self._session.acount(key)
        marks = await self._session.aget(state_id, 1)
        if not marks:
            return total, 0
        state = marks[-1].get(_STATE_KEY)
        if not isinstance(state, dict) or type(state.get("archived")) is not int:
            raise CorruptRecordError("Memory state marker is malformed",
                                     session_id=state_id, operation="get")
        return total, max(0, min(total, state["archived"]))

    async def _mark(self, key: str, archived: int) -> None:
        state_id = _state_id(key)
        if archived:
            marker = {"role": "system", "content": "", _STATE_KEY: {"v": 1, "archived": archived}}
            await self._session.areplace(state_id, [marker])
        else:
            await self._session.adelete(state_id)

    async def _slice(self, key: str, start: int, end: int, total: int) -> list[Message]:
        if end <= start:
            return []
        tail = await self._session.aget(key, total - start)
        return tail[: end - start]

    async def get_messages(self, key: str, status: MessageStatus | None = MessageStatus.ACTIVE,
                           limit: int | None = None, offset: int | None = None) -> list[ChatMessage]:
        """Messages of ``key`` with ``status`` (None: all), oldest first, after
        ``offset`` and at most ``limit``; the active queue costs O(its length)."""
        for name, value in (("limit", limit), ("offset", offset)):
            if value is not None and (type(value) is not int or value < 0):
                raise InvalidArgumentError(f"{name} must be an int >= 0 or None, got {value!r}",
                                           session_id=key, operation="get")
        total, archived = await self._archived(key)
        start, end = _bounds(total, archived, status, offset, limit)
        return _from_canonical_all(await self._slice(key, start, end, total), key, "get")

    async def count_messages(self, key: str,
                             status: MessageStatus | None = MessageStatus.ACTIVE) -> int:
        total, archived = await self._archived(key)
        start, end = _bounds(total, archived, status, None, None)
        return end - start

    async def add_message(self, key: str, message: ChatMessage,
                          status: MessageStatus = MessageStatus.ACTIVE) -> None:
        await self.add_messages(key, [message], status)

    async def add_messages(self, key: str, messages: list[ChatMessage],
                           status: MessageStatus = MessageStatus.ACTIVE) -> None:
        """Append to the active queue; *archived* messages go after the archived ones."""
        records = _to_canonical_all(messages, key, "append")
        if status != MessageStatus.ARCHIVED:
            await self._session.aappend(key, records)
            return
        total, archived = await self._archived(key)
        if archived == total:
            await self._session.aappend(key, records)
        else:
            history = await self._session.aget(key)
            await self._session.areplace(key, history[:archived] + records + history[archived:])
        await self._mark(key, archived + len(records))

    async def set_messages(self, key: str, messages: list[ChatMessage],
                           status: MessageStatus = MessageStatus.ACTIVE) -> None:
        """Replace the whole conversation of ``key`` with ``messages`` of one status."""
        records = _to_canonical_all(messages, key, "replace")
        await self._session.areplace(key, records)
        await self._mark(key, len(records) if status == MessageStatus.ARCHIVED else 0)

    async def delete_message(self, key: str, idx: int) -> ChatMessage | None:
        """Delete the message at position ``idx`` of the whole conversation."""
        _check_index(idx, key)
        total, archived = await self._archived(key)
        if not 0 <= idx < total:
            return None
        history = await self._session.aget(key)
        removed = history.pop(idx)
        await self._session.areplace(key, history)
        if idx < archived:
            await self._mark(key, archived - 1)
        return _from_canonical_all([removed], key, "delete_message")[0]

    async def delete_messages(self, key: str, status: MessageStatus | None = None) -> None:
        """Delete every message of ``key`` (status None), or only archived/active ones."""
        if status is None:
            await self._session.adelete(key)
            await self._mark(key, 0)
            return
        total, archived = await self._archived(key)
        if status == MessageStatus.ARCHIVED:
            if archived:
                await self._session.areplace(key, await self._slice(key, archived, total, total))
                await self._mark(key, 0)
        elif archived < total:
            await self._session.areplace(key, await self._slice(key, 0, archived, total))

    async def delete_oldest_messages(self, key: str, n: int) -> list[ChatMessage]:
        """Delete the oldest ``n`` active messages and return them."""
        _, archived = await self._archived(key)
        history = await self._session.aget(key)
        start, end = _bounds(len(history), archived, MessageStatus.ACTIVE, None, max(0, n))
        removed = history[start:end]
        if removed:
            await self._session.areplace(key, history[:start] + history[end:])
        return _from_canonical_all(removed, key, "delete_oldest_messages")

    async def archive_oldest_messages(self, key: str, n: int) -> list[ChatMessage]:
        """Mark the oldest ``n`` active messages archived and return them (O(n))."""
        total, archived = await self._archived(key)
        start, end = _bounds(total, archived, MessageStatus.ACTIVE, None, max(0, n))
        moved = await self._slice(key, start, end, total)
        if moved:
            await self._mark(key, archived + len(moved))
        return _from_canonical_all(moved, key, "archive_oldest_messages")

    async def get_keys(self) -> list[str]:
        return [key async for key in self._session.alist_sessions()
                if not key.endswith(MEMORY_STATE_SUFFIX)]

