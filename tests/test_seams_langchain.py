"""LangChain at the seams: histories written by one framework, rewritten by a second,
read by a third, with LangChain in one of those places.

What a LangChain model receives is checked with the strict Chat Completions validator
(``tests/chat_validator.py``) after langchain-core's own conversion,
``convert_to_openai_messages``. That conversion passes two things through that belong
to the LangChain model integration rather than to the request, and :func:`_request`
removes exactly these: reasoning and thinking blocks of an ``AIMessage`` (the provider
that made them takes them back: Anthropic's thinking, OpenAI's reasoning through the
Responses API) and a ``ToolMessage``'s ``name`` (langchain-openai leaves it out of the
request; LangChain keeps the tool's name there).
"""

from __future__ import annotations

import asyncio
import copy
import warnings
from collections.abc import Callable
from typing import Any

import pytest

pytest.importorskip("langchain_core")
pytest.importorskip("llama_index.core")
pytest.importorskip("agents")

import agents
from agents.items import ModelResponse, TResponseOutputItem
from agents.models.interface import Model
from agents.usage import Usage
from langchain_core.language_models.fake_chat_models import GenericFakeChatModel
from langchain_core.messages import (
    AIMessage,
    BaseMessage,
    FunctionMessage,
    HumanMessage,
    ToolMessage,
    convert_to_openai_messages,
)
from langchain_core.runnables import RunnableLambda
from langchain_core.runnables.history import RunnableWithMessageHistory
from llama_index.core.chat_engine import SimpleChatEngine
from llama_index.core.llms import ChatMessage, MessageRole, MockLLM
from llama_index.core.memory import ChatMemoryBuffer, Memory
from pydantic import TypeAdapter

import sessions
from adapters.langchain import (
    SessionChatMessageHistory,
    from_canonical,
    session_history_factory,
    to_canonical,
)
from adapters.llamaindex import SessionChatStore, SessionDBChatStore
from adapters.openai_agents import AgentsSession
from sessions.view import ModelView
from tests.chat_validator import problems

pytestmark = pytest.mark.filterwarnings("ignore::langchain_core._api.LangChainDeprecationWarning")

SID = "seam"


@pytest.fixture(autouse=True)
def _no_tracing() -> None:
    agents.set_tracing_disabled(True)  # traces would go to api.openai.com


def _request(messages: list[BaseMessage]) -> list[dict[str, Any]]:
    """The Chat Completions messages for what a LangChain model was given (module docstring)."""
    request = convert_to_openai_messages(messages)
    for message in request:
        if message["role"] == "tool":
            message.pop("name", None)
        content = message.get("content")
        if message["role"] == "assistant" and isinstance(content, list):
            kept = [p for p in content if p.get("type") not in ("reasoning", "thinking")]
            message["content"] = kept or ""
    return request


def _chain_turn(store: sessions.Session, question: str, *, limit: int | None = None,
                session_id: str = SID) -> list[BaseMessage]:
    """One turn of a RunnableWithMessageHistory chain; returns what its model was given."""
    seen: list[list[BaseMessage]] = []

    def record(messages: Any) -> Any:
        seen.append(list(messages))
        return messages

    model = GenericFakeChatModel(messages=iter(["Noted."]))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        chain = RunnableWithMessageHistory(RunnableLambda(record) | model,
                                           session_history_factory(store, limit=limit))
    chain.invoke([HumanMessage(question)], config={"configurable": {"session_id": session_id}})
    return seen[0]


def _assert_valid_for_a_model(messages: list[BaseMessage]) -> None:
    found = problems(_request(messages))
    assert not found, found


# -- LlamaIndex rewrites a history --------------------------------------------------------------


def _chat_store_set(store: sessions.Session) -> None:
    chat_store = SessionChatStore(store)
    chat_store.set_messages(SID, chat_store.get_messages(SID))


def _memory_aset(store: sessions.Session) -> None:
    async def rewrite() -> None:
        memory = Memory.from_defaults(session_id=SID, chat_store=SessionDBChatStore(store),
                                      token_limit=100_000)
        await memory.aset(await memory.aget_all())

    asyncio.run(rewrite())


def _buffer_set(store: sessions.Session) -> None:
    buffer = ChatMemoryBuffer.from_defaults(chat_store=SessionChatStore(store), chat_store_key=SID,
                                            token_limit=100_000)
    buffer.set(buffer.get_all())


def _engine_chat(store: sessions.Session) -> None:
    buffer = ChatMemoryBuffer.from_defaults(chat_store=SessionChatStore(store), chat_store_key=SID,
                                            token_limit=100_000)
    engine = SimpleChatEngine.from_defaults(llm=MockLLM(max_tokens=2), memory=buffer)
    engine.chat("and now?", chat_history=buffer.get_all())


LLAMAINDEX_REWRITES: dict[str, Callable[[sessions.Session], None]] = {
    "SessionChatStore.set_messages": _chat_store_set,
    "Memory.aset": _memory_aset,
    "ChatMemoryBuffer.set": _buffer_set,
    "chat engine chat_history": _engine_chat,
}

# AIMessages whose content mixes text with blocks that have no Chat Completions form.
MIXED_BLOCKS: dict[str, list[BaseMessage]] = {
    "thinking+text": [AIMessage([
        {"type": "thinking", "thinking": "The user greets me.", "signature": "sig-1"},
        {"type": "text", "text": "Hello!"}], id="ai-1")],
    "text+tool_use": [
        AIMessage([{"type": "text", "text": "Let me look."},
                   {"type": "tool_use", "id": "toolu_1", "name": "weather", "input": {"city": "Oslo"}}],
                  tool_calls=[{"name": "weather", "args": {"city": "Oslo"}, "id": "toolu_1"}], id="ai-1"),
        ToolMessage("-3 °C", tool_call_id="toolu_1", name="weather"),
        AIMessage("It is cold.", id="ai-2")],
    "tool_use only": [
        AIMessage([{"type": "tool_use", "id": "toolu_2", "name": "time", "input": {}}],
                  tool_calls=[{"name": "time", "args": {}, "id": "toolu_2"}], id="ai-1"),
        ToolMessage("12:00", tool_call_id="toolu_2"),
        AIMessage("Noon.", id="ai-2")],
    "reasoning+text": [AIMessage([
        {"type": "reasoning", "reasoning": "Greet back.", "id": "rs_1"},
        {"type": "text", "text": "Hi there."}], id="ai-1",
        response_metadata={"model_name": "m"},
        usage_metadata={"input_tokens": 3, "output_tokens": 2, "total_tokens": 5})],
}


@pytest.mark.parametrize("rewrite", LLAMAINDEX_REWRITES.values(), ids=LLAMAINDEX_REWRITES.keys())
@pytest.mark.parametrize("written", MIXED_BLOCKS.values(), ids=MIXED_BLOCKS.keys())
def test_a_llamaindex_write_back_keeps_langchain_reads_working(
        written: list[BaseMessage], rewrite: Callable[[sessions.Session], None]) -> None:
    store = sessions.MemorySession()
    history = SessionChatMessageHistory(store, SID)
    sent = [HumanMessage("Hi"), *written]
    history.add_messages(sent)

    rewrite(store)

    # LangChain still reads exactly what it wrote: its data still matches in meaning.
    assert history.messages[:len(sent)] == sent
    _assert_valid_for_a_model(_chain_turn(store, "And then?"))


def _as_llamaindex_writes_it(message: dict[str, Any]) -> dict[str, Any]:
    """A stored message after a LlamaIndex read and write (docs/fidelity.md, LlamaIndex):
    one text part becomes a string, no parts ``None``, other keys kept as they were."""
    content = message["content"]
    if isinstance(content, list) and len(content) == 1 and content[0]["type"] == "text":
        content = content[0]["text"]
    elif content == []:
        content = None
    return {**message, "content": content}


@pytest.mark.parametrize("written", MIXED_BLOCKS.values(), ids=MIXED_BLOCKS.keys())
def test_langchain_reads_its_messages_in_the_form_llamaindex_writes_them(written: list[BaseMessage]) -> None:
    for message in written:
        stored = to_canonical(message)
        rewritten = _as_llamaindex_writes_it(stored)
        assert from_canonical(rewritten) == message
        if isinstance(message.content, list):
            assert rewritten != stored  # the case: LlamaIndex's form differs from LangChain's


@pytest.mark.parametrize("rewrite", LLAMAINDEX_REWRITES.values(), ids=LLAMAINDEX_REWRITES.keys())
def test_a_llamaindex_function_message_without_a_name_reads_in_langchain(
        rewrite: Callable[[sessions.Session], None]) -> None:
    store = sessions.MemorySession()
    SessionChatMessageHistory(store, SID).add_messages([HumanMessage("What is 6 x 7?"), AIMessage("42.")])
    SessionChatStore(store).add_message(SID, ChatMessage(role=MessageRole.FUNCTION, content="42"))
    rewrite(store)
    assert [m for m in store.get(SID) if m["role"] == "function"] == [{"role": "function", "content": "42"}]

    history = SessionChatMessageHistory(store, SID)
    # A model cannot take a function message without a name: the view leaves it out.
    assert FunctionMessage("42", name="") not in history.messages
    assert from_canonical({"role": "function", "content": "42"}) == FunctionMessage("42", name="")
    assert to_canonical(FunctionMessage("42", name="")) == {"role": "function", "content": "42"}
    seen = _chain_turn(store, "Sure?")
    _assert_valid_for_a_model(seen)
    # A LangChain write-back keeps it where it was.
    stored = store.get(SID)
    history.messages = history.messages
    assert store.get(SID) == stored


# -- the Agents SDK writes, LangChain reads and rewrites --------------------------------------------


class ScriptedResponses(Model):
    """A Responses model answering from a script of output item lists."""

    def __init__(self, *turns: list[dict[str, Any]]) -> None:
        self.turns = list(turns)
        self.inputs: list[Any] = []

    async def get_response(self, system_instructions: Any, input: Any, *args: Any,
                           **kwargs: Any) -> ModelResponse:
        self.inputs.append(copy.deepcopy(input))
        output = TypeAdapter(list[TResponseOutputItem]).validate_python(self.turns.pop(0))
        return ModelResponse(output=output, usage=Usage(), response_id=None)

    def stream_response(self, *args: Any, **kwargs: Any) -> Any:
        raise NotImplementedError


@agents.function_tool
def get_weather(city: str) -> str:
    """Weather in a city."""
    return f"sunny in {city}"


CITATION = {"type": "url_citation", "url": "https://example.invalid/paris", "title": "Paris",
            "start_index": 0, "end_index": 5}
AGENTS_RUN = [
    [{"type": "reasoning", "id": "rs_1", "summary": [{"type": "summary_text", "text": "Look it up."}],
      "encrypted_content": "opaque-reasoning"},
     {"type": "web_search_call", "id": "ws_1", "status": "completed",
      "action": {"type": "search", "query": "weather Paris"}},
     {"type": "function_call", "id": "fc_1", "call_id": "call_1", "name": "get_weather",
      "arguments": '{"city":"Paris"}', "status": "completed"}],
    [{"type": "message", "id": "msg_1", "role": "assistant", "status": "completed",
      "content": [{"type": "output_text", "text": "Sunny in Paris.", "annotations": [CITATION]}]}],
]


def _agents_run(store: sessions.Session) -> AgentsSession:
    session = AgentsSession(store, SID)
    agent = agents.Agent(name="Assistant", instructions="Be helpful.", tools=[get_weather],
                         model=ScriptedResponses(*copy.deepcopy(AGENTS_RUN)))
    result = asyncio.run(agents.Runner.run(agent, "Weather in Paris?", session=session))
    assert result.final_output == "Sunny in Paris."
    return session


def test_responses_only_items_never_reach_a_langchain_model() -> None:
    store = sessions.MemorySession()
    _agents_run(store)
    assert sum(1 for m in store.get(SID) if m.get("x_responses_only")) == 2  # reasoning, web search

    seen = _chain_turn(store, "Thanks!")
    _assert_valid_for_a_model(seen)
    assert [type(m).__name__ for m in seen] == [
        "HumanMessage", "AIMessage", "ToolMessage", "AIMessage", "HumanMessage"]
    assert all(m.content or getattr(m, "tool_calls", None) for m in seen)
    assert asyncio.run(SessionChatMessageHistory(store, SID).aget_messages())[:-1] == seen  # + the reply


def test_a_langchain_write_back_keeps_what_the_agents_sdk_stored() -> None:
    store = sessions.MemorySession()
    session = _agents_run(store)
    items = asyncio.run(session.get_items())
    stored = store.get(SID)
    assert any(i.get("id") == "fc_1" and i.get("status") == "completed" for i in items)
    assert any(CITATION in part.get("annotations", ()) for item in items
               for part in item.get("content") or () if isinstance(part, dict))

    history = SessionChatMessageHistory(store, SID)
    history.messages = history.messages  # read and write back: nothing to write
    assert store.get(SID) == stored
    history.messages = [*history.messages, HumanMessage("One more thing.")]
    added = {"role": "user", "content": "One more thing."}
    assert store.get(SID) == [*stored, added]
    assert asyncio.run(session.get_items()) == [*items, added]
    # Editing one message writes that one; the others keep their stored form.
    read = history.messages
    read[0] = HumanMessage("Weather in Paris, please?")
    history.messages = read
    again = store.get(SID)
    assert again[0] == {"role": "user", "content": "Weather in Paris, please?"}
    assert again[1:] == [*stored[1:], added]
    # And the Agents SDK reads its items back, ids, status and citations included.
    assert asyncio.run(session.get_items())[1:] == [*items[1:], added]
    # Removing a message in the middle keeps the stored form of those on both sides.
    read = history.messages
    tool_at = next(i for i, m in enumerate(read) if isinstance(m, ToolMessage))
    last_user = len(read) - 1
    read[last_user] = HumanMessage("One more thing, please.")
    history.messages = read[:tool_at] + read[tool_at + 1:]
    after = store.get(SID)
    assert after[:2] == again[:2] and after[-2] == again[-2]  # untouched on both sides
    assert after[-1] == {"role": "user", "content": "One more thing, please."}


# -- custom tool calls ------------------------------------------------------------------------------

CUSTOM_EXCHANGE = [
    {"role": "user", "content": "Patch the file."},
    {"role": "assistant", "content": None, "tool_calls": [
        {"id": "call_p", "type": "custom", "custom": {"name": "apply_patch", "input": "*** Begin Patch"}}]},
    {"role": "tool", "tool_call_id": "call_p", "content": "patched"},
    {"role": "assistant", "content": "Done."},
]


@pytest.mark.parametrize("rewrite", ["langchain", *LLAMAINDEX_REWRITES])
def test_custom_tool_calls_survive_every_rewrite_and_reach_langchain_valid(rewrite: str) -> None:
    store = sessions.MemorySession()
    store.append(SID, copy.deepcopy(CUSTOM_EXCHANGE))  # as the runner stores a custom tool call
    history = SessionChatMessageHistory(store, SID)
    if rewrite == "langchain":
        # The message holding the call changed, so it is written from LangChain's form:
        # the call is still written exactly.
        read = history.messages
        history.messages = [read[0], read[1].model_copy(update={"content": "Patching."}), *read[2:]]
        assert store.get(SID) == [CUSTOM_EXCHANGE[0], {**CUSTOM_EXCHANGE[1], "content": "Patching."},
                                  *CUSTOM_EXCHANGE[2:]]
    else:
        LLAMAINDEX_REWRITES[rewrite](store)
        assert store.get(SID)[1]["tool_calls"] == CUSTOM_EXCHANGE[1]["tool_calls"]
    call = history.messages[1]
    assert isinstance(call, AIMessage)
    assert call.tool_calls == [{"name": "apply_patch", "args": {"__arg1": "*** Begin Patch"},
                                "id": "call_p", "type": "tool_call"}]
    assert to_canonical(call)["tool_calls"] == CUSTOM_EXCHANGE[1]["tool_calls"]
    _assert_valid_for_a_model(_chain_turn(store, "Thanks."))


# -- windows ----------------------------------------------------------------------------------------


def test_windows_never_start_inside_a_tool_exchange() -> None:
    store = sessions.MemorySession()
    _agents_run(store)  # user, reasoning, web search, call, result, answer
    SessionChatMessageHistory(store, SID).add_messages([
        HumanMessage("Two cities?"),
        AIMessage("", tool_calls=[{"name": "get_weather", "args": {"city": "Oslo"}, "id": "c_o"},
                                  {"name": "get_weather", "args": {"city": "Rome"}, "id": "c_r"}]),
        ToolMessage("snow", tool_call_id="c_o"), ToolMessage("sun", tool_call_id="c_r"),
        AIMessage("Snow in Oslo, sun in Rome."),
    ])
    total = store.count(SID)
    for limit in range(total + 2):
        history = SessionChatMessageHistory(store, SID, limit=limit)
        window = history.messages
        assert len(window) <= limit
        assert not window or not isinstance(window[0], ToolMessage)
        viewed = ModelView.of(store.get(SID, limit), extras=True).messages
        assert window == [from_canonical(m) for m in viewed]
        seen = _chain_turn(store, "q", limit=limit, session_id=SID)
        _assert_valid_for_a_model(seen)
        store.pop(SID)
        store.pop(SID)  # the turn the chain added
    # A window cannot be assigned: it moves with every append.
    with pytest.raises(sessions.InvalidArgumentError):
        SessionChatMessageHistory(store, SID, limit=3).messages = []
    assert store.count(SID) == total


# -- three frameworks ----------------------------------------------------------------------------------


def _langchain_writes(store: sessions.Session) -> None:
    SessionChatMessageHistory(store, SID).add_messages(
        [HumanMessage("Hi"), *MIXED_BLOCKS["text+tool_use"], *MIXED_BLOCKS["reasoning+text"]])


def _llamaindex_writes(store: sessions.Session) -> None:
    SessionChatStore(store).set_messages(SID, [
        ChatMessage(role=MessageRole.USER, content="Compute."),
        ChatMessage(role=MessageRole.FUNCTION, content="42"),
        ChatMessage(role=MessageRole.ASSISTANT, content="It is 42."),
    ])


def _langchain_rewrites(store: sessions.Session) -> None:
    history = SessionChatMessageHistory(store, SID)
    history.messages = [*history.messages, HumanMessage("Noted by LangChain.")]


WRITERS = {"langchain": _langchain_writes, "agents": _agents_run, "llamaindex": _llamaindex_writes}
REWRITERS = {"langchain": _langchain_rewrites, **LLAMAINDEX_REWRITES}


@pytest.mark.parametrize("rewrite", REWRITERS.values(), ids=REWRITERS.keys())
@pytest.mark.parametrize("write", WRITERS.values(), ids=WRITERS.keys())
def test_written_rewritten_then_read_by_langchain_and_the_others(
        write: Callable[[sessions.Session], Any], rewrite: Callable[[sessions.Session], None]) -> None:
    store = sessions.MemorySession()
    write(store)
    before = store.get(SID)
    rewrite(store)
    after = store.get(SID)
    # No message lost or duplicated (a rewriter may only add its own turn at the end).
    assert len(after) >= len(before)
    assert [m["role"] for m in after[:len(before)]] == [m["role"] for m in before]

    history = SessionChatMessageHistory(store, SID)
    read = history.messages
    assert len(read) == len(ModelView.of(after).messages)
    _assert_valid_for_a_model(_chain_turn(store, "Go on."))
    # The other frameworks still read the history too.
    assert len(SessionChatStore(store).get_messages(SID)) == len(ModelView.of(store.get(SID)).messages)
    assert asyncio.run(AgentsSession(store, SID).get_items())
