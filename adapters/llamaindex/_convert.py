"""``ChatMessage`` to and from canonical messages (rules in ``docs/fidelity.md``)."""

from __future__ import annotations

import base64
import binascii
import json
from collections.abc import Iterable, Mapping
from typing import Any

from llama_index.core.base.llms.types import (
    AudioBlock,
    ChatMessage,
    DocumentBlock,
    ImageBlock,
    MessageRole,
    TextBlock,
    ToolCallBlock,
)
from llama_index.core.bridge.pydantic import BaseModel

from adapters._gc import collector_paused
from sessions import ConfigurationError, CorruptRecordError, InvalidMessageError, Session
from sessions._message import Message

__all__ = ["EXTRAS_KEY", "NAMESPACE", "from_canonical", "to_canonical"]

NAMESPACE = "llamaindex"
"""Message key holding what the canonical format cannot express about a ``ChatMessage``."""

EXTRAS_KEY = "canonical_extras"
"""``additional_kwargs`` key holding canonical keys that ``ChatMessage`` has no field for."""

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


def from_canonical_all(messages: list[Message], session_id: str, operation: str) -> list[ChatMessage]:
    """Stored messages as ``ChatMessage`` objects; CorruptRecordError for one that is not."""
    try:
        with collector_paused(len(messages)):
            return [from_canonical(message) for message in messages]
    except InvalidMessageError as error:
        raise CorruptRecordError(
            f"stored message cannot be read as a ChatMessage: {error.reason}",
            session_id=session_id, operation=operation,
        ) from error


def to_canonical_all(messages: Iterable[ChatMessage], session_id: str, operation: str) -> list[Message]:
    """A batch of ``ChatMessage`` objects as canonical messages, checked one by one."""
    result = []
    for index, message in enumerate(messages):
        if not isinstance(message, ChatMessage):
            raise InvalidMessageError(
                f"expected a ChatMessage, got {type(message).__name__}",
                index=index, session_id=session_id, operation=operation,
            )
        result.append(to_canonical(message))
    return result


def check_session(session: object, owner: type) -> None:
    """Refuse anything but a session store with ConfigurationError."""
    if not isinstance(session, Session):
        raise ConfigurationError(
            f"{owner.__name__} needs a sessions.Session, got {type(session).__name__}"
        )
