"""A LlamaIndex ``MockLLM`` that records what an OpenAI LLM would be sent, for tests.

``recording_llm()`` returns a ``MockLLM`` and the list it appends every request to, as
the Chat Completions ``messages`` llama-index's OpenAI LLM builds from the
``ChatMessage`` objects it is given (``to_openai_message_dict`` of
llama-index-llms-openai): text blocks joined into a string for assistant, tool and
system messages and for text-only messages, content parts otherwise; ``ToolCallBlock``
blocks as ``tool_calls``; when ``additional_kwargs`` holds ``tool_calls`` or
``function_call`` (and there is no ``ToolCallBlock``) *every* ``additional_kwargs`` key
is merged into the message; ``tool_call_id`` from ``additional_kwargs``. Media given by
URL or path, which that LLM downloads or reads, become inline placeholders here.
``tests/chat_validator.problems`` then says whether the API would take the request.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
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
from llama_index.core.llms import MockLLM

_PLACEHOLDER = "QUJD"  # base64 of b"ABC": stands for media the LLM would fetch


def _part(block: Any) -> dict[str, Any] | None:
    if isinstance(block, TextBlock):
        return {"type": "text", "text": block.text}
    if isinstance(block, ImageBlock):
        if block.url is not None:
            url = str(block.url)
        else:
            data = block.image.decode("ascii") if isinstance(block.image, bytes) else _PLACEHOLDER
            url = f"data:{block.image_mimetype or 'image/png'};base64,{data}"
        return {"type": "image_url", "image_url": {"url": url, "detail": block.detail or "auto"}}
    if isinstance(block, AudioBlock):
        data = block.audio.decode("ascii") if isinstance(block.audio, bytes) else _PLACEHOLDER
        return {"type": "input_audio", "input_audio": {"data": data, "format": block.format or "wav"}}
    if isinstance(block, DocumentBlock):
        data = block.data.decode("ascii") if isinstance(block.data, bytes) else _PLACEHOLDER
        file = {"file_data": f"data:{block.document_mimetype or 'application/pdf'};base64,{data}"}
        if block.title:
            file["filename"] = block.title
        return {"type": "file", "file": file}
    return None  # thinking, citations, cache points: not sent


def openai_message(message: ChatMessage) -> dict[str, Any]:
    """``message`` as llama-index's OpenAI LLM sends it (see the module docstring)."""
    parts: list[dict[str, Any]] = []
    text = ""
    calls = []
    for block in message.blocks:
        if isinstance(block, ToolCallBlock):
            arguments = block.tool_kwargs if isinstance(block.tool_kwargs, str) \
                else json.dumps(block.tool_kwargs)
            calls.append({"id": block.tool_call_id, "type": "function",
                          "function": {"name": block.tool_name, "arguments": arguments}})
            continue
        part = _part(block)
        if part is not None:
            parts.append(part)
            if part["type"] == "text":
                text += part["text"]
    kwargs = message.additional_kwargs
    role = message.role.value
    content: Any = text
    text_only = all(isinstance(block, TextBlock) for block in message.blocks)
    if role not in ("assistant", "tool", "system") and not text_only:
        content = parts
    elif text == "" and message.role == MessageRole.ASSISTANT and (
            calls or "tool_calls" in kwargs or "function_call" in kwargs):
        content = None
    sent: dict[str, Any] = {"role": role, "content": content}
    if calls:
        sent["tool_calls"] = calls
    elif "tool_calls" in kwargs or "function_call" in kwargs:
        sent.update(kwargs)
    if "tool_call_id" in kwargs:
        sent["tool_call_id"] = kwargs["tool_call_id"]
    return sent


def recording_llm(max_tokens: int = 4) -> tuple[MockLLM, list[list[dict[str, Any]]]]:
    """A MockLLM answering ``"text text ..."`` and the requests it was sent."""
    requests: list[list[dict[str, Any]]] = []

    def record(messages: Sequence[ChatMessage]) -> str:
        requests.append([openai_message(m) for m in messages])
        return "\n".join(f"{m.role.value}: {m.content}" for m in messages)

    return MockLLM(max_tokens=max_tokens, messages_to_prompt=record), requests
