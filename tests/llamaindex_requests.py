"""The Chat Completions messages LlamaIndex's OpenAI LLM would send for ``ChatMessage`` objects.

``llama-index-llms-openai`` cannot be installed beside ``openai-agents`` (it requires
``openai<3``), so the tests reproduce its documented conversion (version 0.8):

* text blocks become text parts; an assistant, tool or system message sends its text
  joined into one string, other roles a list of parts unless every block is text;
* image blocks become ``image_url`` parts (a URL, or a ``data:`` URL of inline bytes,
  with ``detail``), audio blocks ``input_audio`` parts, document blocks ``file`` parts
  with a ``data:`` URL (a document given by URL or path is fetched by the LLM itself:
  here its data is the placeholder :data:`FETCHED`); thinking blocks are skipped; any
  other block is an error;
* tool-call blocks become ``tool_calls`` (arguments as JSON text); an assistant message
  with no text and tool calls sends ``content: null``;
* when ``additional_kwargs`` holds ``tool_calls`` or ``function_call`` and the message
  has no tool-call block, *every* key of ``additional_kwargs`` is copied into the
  message; ``additional_kwargs["tool_call_id"]`` becomes ``tool_call_id``.
"""

from __future__ import annotations

import json
from typing import Any

from llama_index.core.base.llms.types import (
    AudioBlock,
    ChatMessage,
    DocumentBlock,
    ImageBlock,
    MessageRole,
    TextBlock,
    ThinkingBlock,
    ToolCallBlock,
)

FETCHED = "data:application/octet-stream;base64,ZmV0Y2hlZA=="
"""The data of a document LlamaIndex's OpenAI LLM would fetch from its URL or path."""


def _part(block: Any) -> dict[str, Any] | None:
    if isinstance(block, TextBlock):
        return {"type": "text", "text": block.text}
    if isinstance(block, ImageBlock):
        if block.url:
            image: dict[str, Any] = {"url": str(block.url)}
        else:
            data = block.resolve_image(as_base64=True).read().decode()
            image = {"url": f"data:{block.image_mimetype};base64,{data}"}
        if block.detail:
            image["detail"] = block.detail
        return {"type": "image_url", "image_url": image}
    if isinstance(block, AudioBlock):
        data = block.resolve_audio(as_base64=True).read().decode()
        return {"type": "input_audio", "input_audio": {"data": data, "format": block.format}}
    if isinstance(block, DocumentBlock):
        if not block.data:
            return {"type": "file", "file": {"filename": block.title, "file_data": FETCHED}}
        return {"type": "file", "file": {"filename": block.title,
                                         "file_data": f"data:{block._guess_mimetype()};base64,"
                                                      f"{block.data.decode()}"}}
    if isinstance(block, ThinkingBlock):
        return None
    raise ValueError(f"Unsupported content block type: {type(block).__name__}")


def openai_message(message: ChatMessage) -> dict[str, Any]:
    role = message.role.value
    parts: list[dict[str, Any]] = []
    calls: list[dict[str, Any]] = []
    for block in message.blocks:
        if isinstance(block, ToolCallBlock):
            arguments = block.tool_kwargs
            calls.append({"type": "function", "id": block.tool_call_id, "function": {
                "name": block.tool_name,
                "arguments": arguments if isinstance(arguments, str) else json.dumps(arguments)}})
            continue
        part = _part(block)
        if part is not None:
            parts.append(part)
    text = "".join(p["text"] for p in parts if p["type"] == "text")
    kwargs = message.additional_kwargs
    if text == "" and message.role == MessageRole.ASSISTANT and (
            calls or "tool_calls" in kwargs or "function_call" in kwargs):
        content: Any = None
    elif role in ("assistant", "tool", "system") or all(isinstance(b, TextBlock) for b in message.blocks):
        content = text
    else:
        content = parts
    result: dict[str, Any] = {"role": role, "content": content}
    if calls:
        result["tool_calls"] = calls
    elif "tool_calls" in kwargs or "function_call" in kwargs:
        result.update(kwargs)
    if "tool_call_id" in kwargs:
        result["tool_call_id"] = kwargs["tool_call_id"]
    return result


def openai_messages(messages: list[ChatMessage]) -> list[dict[str, Any]]:
    return [openai_message(message) for message in messages]
