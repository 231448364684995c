"""A LangChain chat model for running the examples offline: no key, nothing sent anywhere.

It answers like the Chat Completions stub (``_stub_server.reply_to``: it recalls the
facts it finds in the user messages it is sent) and, given a ``recommend_book`` tool,
calls it when the user asks for a recommendation, on the topic the history says the user
likes. It is not a language model: it shows that the history and the tool reached it.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from _stub_server import facts, reply_to
from langchain_core.language_models import BaseChatModel
from langchain_core.messages import AIMessage, BaseMessage, ToolMessage, convert_to_openai_messages
from langchain_core.outputs import ChatGeneration, ChatResult
from pydantic import Field

__all__ = ["OfflineChatModel"]


class OfflineChatModel(BaseChatModel):
    """Calls ``recommend_book(topic=...)`` when asked for a recommendation, else replies
    from the facts in the conversation."""

    tool_names: list[str] = Field(default_factory=list)

    @property
    def _llm_type(self) -> str:
        return "offline-example"

    def bind_tools(self, tools: Sequence[Any], **kwargs: Any) -> OfflineChatModel:
        return self.model_copy(update={"tool_names": [getattr(t, "name", "") for t in tools]})

    def _generate(self, messages: list[BaseMessage], stop: list[str] | None = None,
                  run_manager: Any = None, **kwargs: Any) -> ChatResult:
        return ChatResult(generations=[ChatGeneration(message=self._reply(messages))])

    def _reply(self, messages: list[BaseMessage]) -> AIMessage:
        said = [m.text for m in messages if m.type == "human"]
        _, likes = facts(said)
        if isinstance(messages[-1], ToolMessage):
            return AIMessage(f"Since you like {likes}, try {messages[-1].text}.")
        if likes and "recommend_book" in self.tool_names and "recommend" in said[-1].lower():
            return AIMessage("", tool_calls=[
                {"id": f"call_{len(messages)}", "name": "recommend_book", "args": {"topic": likes}}])
        return AIMessage(reply_to(convert_to_openai_messages(messages)))  # type: ignore[arg-type]
