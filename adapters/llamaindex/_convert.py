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
from sessions._message import ROLES, Message
from sessions.view import model_message, same_meaning

__all__ = ["NAMESPACE", "from_canonical", "to_canonical"]

NAMESPACE = "llamaindex"
"""Message key holding what the canonical format cannot express about a ``ChatMessage``."""

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
TEXT_ROLES = frozenset({"system", "developer", "user", "assistant"})
_TEXT_ROLES_IN: dict[Any, MessageRole] = {role: _ROLE_IN[role] for role in TEXT_ROLES}
# Keys a role's canonical message must have (the store refuses it without), with the
# namespace flag saying that the ChatMessage had none (``""`` is stored instead).
_REQUIRED = {"tool": (("tool_call_id", "no_tool_call_id"),)}
_FLAG = {key: flag for pairs in _REQUIRED.values() for key, flag in pairs}
_CANONICAL_ROLES = frozenset(ROLES)
MEDIA_BLOCKS = (ImageBlock, AudioBlock, DocumentBlock)
"""Blocks of media LlamaIndex's LLMs send (resolving a URL or path themselves)."""


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
    :func:`from_canonical` returns an equal message. A tool message without a
    ``tool_call_id`` gets ``""`` there (the store requires one; models are not shown
    it) and a flag in the namespace.
    """
    role = _ROLE_OUT[message.role]
    blocks = message.blocks
    kwargs = message.additional_kwargs
    namespace: dict[str, Any] = {}
    if message.role in _RENAMED_ROLES:
        namespace["role"] = MessageRole(message.role).value
    result: Message = {"role": role}

    if not kwargs and role in TEXT_ROLES and len(blocks) == 1 and type(blocks[0]) is TextBlock:
        result["content"] = blocks[0].text
        if namespace:
            result[NAMESPACE] = namespace
        return result

    calls: Any = None
    rest: dict[str, Any] = {}
    for key, value in kwargs.items():
        if key == "tool_calls" and isinstance(value, (list, tuple)):
            calls = _plain(value)
        elif key == "tool_call_id" and isinstance(value, str):
            result["tool_call_id"] = value
        elif key == "name" and isinstance(value, str):
            result["name"] = value
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
    if len(parts) == 1 and parts[0]["type"] == "text":
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

    for key, flag in _REQUIRED.get(role, ()):
        if key not in result:
            result[key] = ""
            namespace[flag] = True
    if rest:
        namespace["additional_kwargs"] = _plain(rest)

    if exact and not all(type(block) is TextBlock for block in blocks):
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
_new = object.__new__


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


def _text_message(role: MessageRole, text: str) -> ChatMessage:
    """``_message(role, {}, [_text_block(text)])`` in one call: most messages of a long
    read are plain text, and each saved call is a tenth of their cost."""
    block = _new(TextBlock)
    _set_attribute(block, "__dict__", {"block_type": "text", "text": text})
    _set_attribute(block, "__pydantic_fields_set__", {"text"})
    _set_attribute(block, "__pydantic_extra__", None)
    _set_attribute(block, "__pydantic_private__", None)
    message = _new(ChatMessage)
    _set_attribute(message, "__dict__", {"role": role, "additional_kwargs": {}, "blocks": [block]})
    _set_attribute(message, "__pydantic_fields_set__", {"role", "additional_kwargs", "blocks"})
    _set_attribute(message, "__pydantic_extra__", None)
    _set_attribute(message, "__pydantic_private__", None)
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
    try:
        return _media_block(kind, part)
    except ValueError:  # data the block's own validation refuses
        return None


def _media_block(kind: object, part: Mapping[str, Any]) -> Any | None:
    if kind == "image_url" and len(part) == 2:
        image = part.get("image_url")
        if not isinstance(image, dict) or not isinstance(image.get("url"), str) \
                or not set(image) <= {"url", "detail"} or not isinstance(image.get("detail", ""), str):
            return None
        detail = image.get("detail")
        inline = _split_data_url(image["url"])
        if inline is not None:
            return ImageBlock(image=inline[1], image_mimetype=inline[0], detail=detail)
        return ImageBlock(url=image["url"], detail=detail)
    if kind == "input_audio" and len(part) == 2:
        audio = part.get("input_audio")
        if isinstance(audio, dict) and set(audio) == {"data", "format"} \
                and isinstance(audio["data"], str) and audio["data"].isascii() \
                and isinstance(audio["format"], str):
            return AudioBlock(audio=audio["data"].encode("ascii"), format=audio["format"])
        return None
    if kind == "file" and len(part) == 2:
        file = part.get("file")
        if not isinstance(file, dict) or not set(file) <= {"file_data", "filename"} \
                or not isinstance(file.get("file_data"), str) \
                or not isinstance(file.get("filename", ""), str):
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


def _readable_blocks(message: Mapping[str, Any]) -> list[Any]:
    """Blocks for what LlamaIndex can hold of any canonical message's content (never
    fails). A refusal has no block of its own: it reads as the text it says."""
    content = message.get("content")
    blocks: list[Any] = []
    if isinstance(content, str):
        blocks.append(_text_block(content))
    elif isinstance(content, list):
        for part in content:
            if not isinstance(part, dict):
                continue
            if part.get("type") == "refusal" and isinstance(part.get("refusal"), str):
                blocks.append(_text_block(part["refusal"]))
            elif (block := _part_to_block(part)) is not None:
                blocks.append(block)
    refusal = message.get("refusal")
    if isinstance(refusal, str) and refusal and message.get("role") == "assistant":
        blocks.append(_text_block(refusal))
    return blocks


def _portable(message: Mapping[str, Any], role: MessageRole, namespace: Mapping[str, Any]) -> ChatMessage:
    """The ChatMessage of a message's canonical fields, with the namespace's
    ``additional_kwargs`` and flags (an empty namespace: as other frameworks wrote it)."""
    kwargs: dict[str, Any] = {}
    extra = namespace.get("additional_kwargs")
    if isinstance(extra, dict):
        kwargs.update(extra)
    blocks = _readable_blocks(message)
    tool_calls = message.get("tool_calls")
    if isinstance(tool_calls, list):
        call_blocks = None if namespace.get("tool_calls") == "additional_kwargs" or not tool_calls \
            else _blocks(None, tool_calls)
        if call_blocks is None:
            kwargs["tool_calls"] = tool_calls
        else:
            blocks.extend(call_blocks)
    for key in ("tool_call_id", "name"):
        value = message.get(key)
        if isinstance(value, str) and not (value == "" and namespace.get(_FLAG.get(key, ""))):
            kwargs[key] = value
    return _message(role, kwargs, blocks)


def _exact(message: Mapping[str, Any], namespace: dict[str, Any], shown: bool) -> ChatMessage | None:
    """The ChatMessage LlamaIndex stored, from the message and its namespace, or None
    if the namespace no longer matches the message (another framework rewrote it), its
    exact blocks no longer validate (an image ``path`` whose file was deleted), or, for
    a ``shown`` message, it would send a model what the model view leaves out."""
    recorded = namespace.get("role")
    role = MessageRole(recorded) if isinstance(recorded, str) and recorded in _RENAMED_ROLES \
        else _ROLE_IN[message["role"]]
    portable = _portable(message, role, namespace)
    if "blocks" in namespace:
        kwargs = portable.additional_kwargs
        if namespace.get("tool_calls") != "additional_kwargs":
            kwargs.pop("tool_calls", None)  # in block form among the exact blocks
        try:
            exact = ChatMessage(role=role, additional_kwargs=kwargs, blocks=namespace["blocks"])
        except (ValueError, TypeError, OSError):  # what the blocks' own validation refuses
            return None
    else:
        exact = portable
    rebuilt = to_canonical(exact)
    stored = message if isinstance(message, dict) else dict(message)
    media = any(isinstance(block, MEDIA_BLOCKS) for block in exact.blocks)
    # Media without a Chat Completions part leaves the content empty, which other
    # frameworks may spell "" or [] (LangChain has no None content).
    if not same_meaning(rebuilt, stored) \
            and not (media and same_meaning(_emptied(rebuilt), _emptied(stored))):
        return None
    if shown and not _sends_only_what_is_shown(rebuilt, media):
        return None
    return exact


def _sends_only_what_is_shown(rebuilt: Message, media: bool) -> bool:
    """Whether the exact form (``rebuilt`` is its canonical form) sends a model nothing
    the model view would leave out: media only in a user message, tool calls only in an
    assistant message, every content part and call kept. Blocks no model is sent
    (thinking, cache points) do not count; nor do media a user message holds without
    a part (LlamaIndex's LLMs resolve and send them)."""
    role = rebuilt["role"]
    calls = rebuilt.get("tool_calls") or ()
    if (media and role != "user") or (calls and role != "assistant"):
        return False
    viewed = model_message(rebuilt)
    if viewed is None:
        return media
    content = rebuilt.get("content")
    return (not isinstance(content, list) or len(viewed.get("content") or ()) == len(content)) \
        and len(viewed.get("tool_calls") or ()) == len(calls)


def _emptied(message: Message) -> Message:
    """``message`` with empty content (``""``, ``[]``) as ``None``."""
    content = message.get("content")
    if content == "" or content == []:
        return {**message, "content": None}
    return message


def _invalid(reason: str) -> InvalidMessageError:
    return InvalidMessageError(reason, operation="from_canonical")


def from_canonical(message: Mapping[str, Any]) -> ChatMessage:
    """Convert a canonical message to a ``ChatMessage``; the inverse of :func:`to_canonical`.

    Total: every message a store accepts reads as a ``ChatMessage``. Messages written
    by other frameworks become the closest ``ChatMessage``: content parts become
    blocks (parts LlamaIndex has no block for, such as a file by ``file_id``, are left
    out), function ``tool_calls`` become ``ToolCallBlock`` blocks (other tool calls stay
    in ``additional_kwargs["tool_calls"]``), a string ``tool_call_id`` and ``name`` go to
    ``additional_kwargs``. Other frameworks' keys are not read: the chat stores keep
    them in the store when LlamaIndex writes the message back unchanged.

    The :data:`NAMESPACE` that :func:`to_canonical` wrote is used while it still says
    what the message says (compared with :func:`sessions.view.same_meaning`: equal JSON
    arguments, ``None`` and ``""`` content are the same); once another framework has
    rewritten the message, or when its exact blocks no longer validate (an image
    ``path`` whose file was deleted), the message is read from its canonical fields
    alone, as other frameworks read it. Raises :class:`InvalidMessageError` only for a
    dict that is not a chat message (no canonical role: a wrapper's envelope).
    """
    return _read(message, shown=False)


def read_shown(message: Mapping[str, Any]) -> ChatMessage:
    """:func:`from_canonical` for a message of the model view, handed to an LLM: its
    exact LlamaIndex form is used only if it sends nothing the view leaves out."""
    return _read(message, shown=True)


def _read(message: Mapping[str, Any], shown: bool) -> ChatMessage:
    role = message.get("role")
    content = message.get("content")
    if len(message) == 2 and type(content) is str and role in TEXT_ROLES:
        return _text_message(_ROLE_IN[role], content)
    if not isinstance(role, str) or role not in _CANONICAL_ROLES:
        raise _invalid(f"role {role!r} is not a chat message role")
    namespace = message.get(NAMESPACE)
    if isinstance(namespace, dict) and namespace:
        exact = _exact(message, namespace, shown)
        if exact is not None:
            return exact
    return _portable(message, _ROLE_IN[role], {})


def from_canonical_all(messages: list[Message], session_id: str, operation: str) -> list[ChatMessage]:
    """Messages of a model view as ``ChatMessage`` objects (:func:`read_shown`);
    CorruptRecordError for one that is not a chat message (a wrapper's envelope: the
    store was opened without its wrapper)."""
    roles = _TEXT_ROLES_IN
    text_message = _text_message
    result: list[ChatMessage] = []
    add = result.append
    try:
        with collector_paused(len(messages)):
            for message in messages:
                content = message.get("content")
                if len(message) == 2 and type(content) is str and (role := roles.get(message.get("role"))):
                    add(text_message(role, content))
                else:
                    add(_read(message, shown=True))
    except InvalidMessageError as error:
        raise CorruptRecordError(
            f"stored record cannot be read as a ChatMessage: {error.reason}"
            " (a wrapper's envelope: open the store with its wrapper)",
            session_id=session_id, operation=operation,
        ) from error
    return result


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
