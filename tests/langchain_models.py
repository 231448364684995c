"""A scripted LangChain chat model for agent tests: it calls tools, streams, and keeps
what it was sent."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator, Sequence
from typing import Any

from langchain_core.callbacks import CallbackManagerForLLMRun
from langchain_core.language_models.fake_chat_models import GenericFakeChatModel
from langchain_core.messages import AIMessage, AIMessageChunk, BaseMessage
from langchain_core.outputs import ChatGeneration, ChatGenerationChunk, ChatResult
from pydantic import Field

Reply = AIMessage | str | Callable[[list[BaseMessage]], AIMessage | str] | Exception


def call(name: str, call_id: str, **args: Any) -> AIMessage:
    """An assistant message asking for one tool call."""
    return AIMessage("", tool_calls=[{"id": call_id, "name": name, "args": args}])


class ScriptedChatModel(GenericFakeChatModel):
    """Answers each model call with the next reply of its script.

    A reply is an ``AIMessage``, a text, a function of the messages sent (returning
    either), or an exception to raise (the script then moves on). The messages of every
    call are kept in ``sent``. Replies are copies, so no two runs get the same message
    object. ``bind_tools`` is accepted (the script decides the tool calls), and
    streaming yields the tool calls too.
    """

    messages: Iterator[AIMessage | str] = Field(default_factory=lambda: iter(()))
    script: list[Any] = Field(default_factory=list)
    sent: list[list[BaseMessage]] = Field(default_factory=list)

    def __init__(self, *replies: Reply, **kwargs: Any) -> None:
        super().__init__(script=list(replies), **kwargs)

    def _generate(self, messages: list[BaseMessage], stop: list[str] | None = None,
                  run_manager: CallbackManagerForLLMRun | None = None, **kwargs: Any) -> ChatResult:
        self.sent.append(list(messages))
        if len(self.sent) > len(self.script):
            raise AssertionError(f"the script has {len(self.script)} replies; call {len(self.sent)} made")
        reply = self.script[len(self.sent) - 1]
        if isinstance(reply, Exception):
            raise reply
        if callable(reply):
            reply = reply(list(messages))
        message = AIMessage(reply) if isinstance(reply, str) else reply.model_copy(deep=True)
        return ChatResult(generations=[ChatGeneration(message=message)])

    def _stream(self, messages: list[BaseMessage], stop: list[str] | None = None,
                run_manager: CallbackManagerForLLMRun | None = None,
                **kwargs: Any) -> Iterator[ChatGenerationChunk]:
        message = self._generate(messages, stop=stop, run_manager=run_manager).generations[0].message
        assert isinstance(message, AIMessage)
        chunk = AIMessageChunk(
            content=message.content, id=message.id, name=message.name,
            additional_kwargs=message.additional_kwargs, response_metadata=message.response_metadata,
            usage_metadata=message.usage_metadata, chunk_position="last",
            tool_call_chunks=[
                {"type": "tool_call_chunk", "name": call["name"], "id": call["id"], "index": index,
                 "args": json.dumps(call["args"])}
                for index, call in enumerate(message.tool_calls)
            ],
        )
        generation = ChatGenerationChunk(message=chunk)
        if run_manager:
            run_manager.on_llm_new_token(message.text, chunk=generation)
        yield generation

    def bind_tools(self, tools: Sequence[Any], **kwargs: Any) -> ScriptedChatModel:
        return self
