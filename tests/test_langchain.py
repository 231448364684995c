"""The LangChain adapter inside LangChain: round trips, real chains, windows, errors."""

from __future__ import annotations

import asyncio
import json
import time
import warnings
from collections.abc import Iterator
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

pytest.importorskip("langchain_core")

from langchain_core.language_models.fake_chat_models import GenericFakeChatModel
from langchain_core.messages import (
    AIMessage,
    AIMessageChunk,
    BaseMessage,
    ChatMessage,
    FunctionMessage,
    HumanMessage,
    RemoveMessage,
    SystemMessage,
    ToolMessage,
)
from langchain_core.prompts import ChatPromptTemplate, MessagesPlaceholder
from langchain_core.runnables import RunnableLambda
from langchain_core.runnables.history import RunnableWithMessageHistory

import sessions
from adapters.langchain import (
    EXTRAS_KEY,
    NAMESPACE,
    SessionChatMessageHistory,
    from_canonical,
    session_history_factory,
    to_canonical,
)
from adapters.langchain._convert import TOOL_CALLS_KEY
from tests.conformance.messages import ALL_SHAPES

pytestmark = pytest.mark.filterwarnings("ignore::langchain_core._api.LangChainDeprecationWarning")

PNG = "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mP8z8BQDwAEhQGAhKmMIQAAAABJRU5ErkJggg=="

# One message of every kind LangChain has, with every field the adapter promises to keep,
# in a valid history (every tool call answered right after its message).
EVERY_KIND: list[BaseMessage] = [
    SystemMessage("You are terse.", id="sys-1"),
    SystemMessage("Answer in French.", additional_kwargs={"__openai_role__": "developer"}, name="ops"),
    HumanMessage("Hello", name="alice", id="h-1"),
    HumanMessage([
        "a bare string",
        {"type": "text", "text": "What is in these?"},
        {"type": "image_url", "image_url": {"url": "https://example.invalid/cat.png", "detail": "low"}},
        {"type": "image", "base64": PNG, "mime_type": "image/png", "id": "img-1"},
        {"type": "image", "url": "https://example.invalid/dog.png"},
        {"type": "audio", "base64": "UklGRiQAAABXQVZF", "mime_type": "audio/wav"},
        {"type": "input_audio", "input_audio": {"data": "UklGRiQAAABXQVZF", "format": "mp3"}},
        {"type": "file", "base64": "JVBERi0xLjQK", "mime_type": "application/pdf",
         "extras": {"filename": "report.pdf"}},
        {"type": "file", "file_id": "file-abc123"},
        {"type": "file", "file": {"file_id": "file-xyz", "filename": "x.pdf"}},
        {"type": "image", "source_type": "base64", "data": PNG, "mime_type": "image/png"},
        {"type": "video", "url": "https://example.invalid/v.mp4"},
        {"type": "file", "base64": "JVBERi0xLjUK", "mime_type": "application/pdf"},
        {"type": "image", "file_id": "file-img"},
        {"type": "text-plain", "text": "a plain document", "mime_type": "text/plain"},
        {"type": "image_url", "image_url": "https://example.invalid/old-form.png"},
        {"type": "image_url", "image_url": f"data:image/png;base64,{PNG}"},
        {"type": "image", "source": {"type": "base64", "media_type": "image/png", "data": "QUJD"}},
    ]),
    AIMessage(
        [
            {"type": "reasoning", "reasoning": "Check the weather first.", "id": "rs_1"},
            {"type": "text", "text": "Let me look.", "id": "msg_1", "annotations": []},
            {"type": "tool_use", "id": "call_1", "name": "weather", "input": {"city": "Oslo"}},
        ],
        tool_calls=[{"name": "weather", "args": {"city": "Oslo", "days": [1, 2]}, "id": "call_1"}],
        invalid_tool_calls=[{"name": "time", "args": "{not json", "id": "call_2", "error": "bad JSON"}],
        usage_metadata={"input_tokens": 10, "output_tokens": 5, "total_tokens": 15},
        response_metadata={"model_name": "gpt-test", "finish_reason": "tool_calls"},
        additional_kwargs={"refusal": None, "reasoning_content": "hidden"},
        id="ai-1",
    ),
    ToolMessage("-3 °C, snow", tool_call_id="call_1", name="weather", id="t-1"),
    ToolMessage("arguments are not JSON", tool_call_id="call_2", status="error"),
    AIMessage("", tool_calls=[{"name": "time", "args": {}, "id": "call_3"}]),
    ToolMessage([{"type": "text", "text": "oops"}], tool_call_id="call_3", status="error",
                artifact={"raw": [1, 2.5, None]}),
    AIMessage("I cannot help with that.", additional_kwargs={"refusal": "policy"}),
    AIMessage("", additional_kwargs={"function_call": {"name": "legacy", "arguments": "{}"}}),
    FunctionMessage("42", name="legacy"),
    ChatMessage("Looks fine to me.", role="critic"),
    ChatMessage("As the assistant.", role="assistant"),
    HumanMessage("unicode 🦜 会话 \u202e", additional_kwargs={"lang": "mixed"}, custom_field=[1, 2]),
]


def _json_copy(message: dict[str, Any]) -> dict[str, Any]:
    return json.loads(json.dumps(message))  # type: ignore[no-any-return]


@pytest.fixture
def memory_store() -> Iterator[sessions.Session]:
    with sessions.MemorySession() as store:
        yield store


# -- conversion -------------------------------------------------------------------------


@pytest.mark.parametrize("message", EVERY_KIND, ids=lambda m: f"{type(m).__name__}")
def test_every_kind_round_trips_equal(message: BaseMessage) -> None:
    canonical = to_canonical(message)
    back = from_canonical(_json_copy(canonical))
    assert back == message
    assert type(back) is type(message)


def test_canonical_form_is_chat_completions() -> None:
    dev = to_canonical(EVERY_KIND[1])
    assert dev == {"role": "developer", "content": "Answer in French.", "name": "ops"}
    parts = to_canonical(EVERY_KIND[3])["content"]
    assert parts[0] == {"type": "text", "text": "a bare string"}
    assert parts[3] == {"type": "image_url", "image_url": {"url": f"data:image/png;base64,{PNG}"}}
    assert parts[4] == {"type": "image_url", "image_url": {"url": "https://example.invalid/dog.png"}}
    assert parts[5] == {"type": "input_audio", "input_audio": {"data": "UklGRiQAAABXQVZF", "format": "wav"}}
    assert parts[7] == {"type": "file", "file": {"file_data": "data:application/pdf;base64,JVBERi0xLjQK",
                                                 "filename": "report.pdf"}}
    assert parts[8] == {"type": "file", "file": {"file_id": "file-abc123"}}
    assert all(part["type"] in ("text", "image_url", "input_audio", "file") for part in parts)
    assert parts[11] == {"type": "file", "file": {"file_data": "data:application/pdf;base64,JVBERi0xLjUK",
                                                  "filename": "LC_AUTOGENERATED"}}
    assert parts[12] == {"type": "image_url", "image_url": {"url": "https://example.invalid/old-form.png"}}
    assert parts[13] == {"type": "image_url", "image_url": {"url": f"data:image/png;base64,{PNG}"}}
    assert parts[14] == {"type": "image_url", "image_url": {"url": "data:image/png;base64,QUJD"}}
    # Video, image file ids and plain-text documents have no Chat Completions part: they
    # are kept only in the namespace.
    assert len(parts) == 15
    # Inline data is stored once: the namespace never repeats a converted block's payload.
    assert json.dumps(to_canonical(EVERY_KIND[3])).count(PNG) == 3  # three image blocks

    ai = to_canonical(EVERY_KIND[4])
    assert ai["role"] == "assistant"
    assert ai["content"] == [{"type": "text", "text": "Let me look."}]
    assert ai["tool_calls"] == [
        {"id": "call_1", "type": "function",
         "function": {"name": "weather", "arguments": '{"city": "Oslo", "days": [1, 2]}'}},
        {"id": "call_2", "type": "function", "function": {"name": "time", "arguments": "{not json"}},
    ]
    assert ai["refusal"] is None
    assert ai["id"] == "ai-1"
    assert ai[NAMESPACE]["invalid_tool_calls"] == ["bad JSON"]
    assert ai[NAMESPACE]["additional_kwargs"] == {"reasoning_content": "hidden"}
    assert to_canonical(EVERY_KIND[7]) == {
        "role": "assistant", "content": None,
        "tool_calls": [{"id": "call_3", "type": "function", "function": {"name": "time", "arguments": "{}"}}],
    }
    assert to_canonical(EVERY_KIND[5]) == {
        "role": "tool", "content": "-3 °C, snow", "name": "weather", "id": "t-1", "tool_call_id": "call_1",
    }
    assert to_canonical(EVERY_KIND[12])["role"] == "user"  # a custom ChatMessage role
    assert to_canonical(EVERY_KIND[13])["role"] == "assistant"


def test_plain_messages_carry_no_namespace() -> None:
    for message in (HumanMessage("hi"), AIMessage("hello"), SystemMessage("s"),
                    ToolMessage("r", tool_call_id="c"), HumanMessage([{"type": "text", "text": "x"}])):
        assert NAMESPACE not in to_canonical(message)


@pytest.mark.parametrize("canonical", ALL_SHAPES, ids=lambda m: str(m["role"]))
def test_foreign_messages_survive_a_langchain_read_and_write(canonical: dict[str, Any]) -> None:
    once = to_canonical(from_canonical(_json_copy(canonical)))
    expected = dict(canonical)
    if expected.get("tool_calls"):  # arguments are re-serialised by json.dumps
        expected["tool_calls"] = [
            {**call, "function": {**call["function"],
                                  "arguments": json.dumps(json.loads(call["function"]["arguments"]))}}
            for call in canonical["tool_calls"]
        ]
    assert once == expected


def test_foreign_keys_are_visible_in_langchain() -> None:
    custom = {"id": "d", "type": "custom", "custom": {"name": "g", "input": "x"}}
    message = from_canonical({
        "role": "assistant", "content": None, "metadata": {"run": 1}, "llamaindex": {"x": True},
        "tool_calls": [{"id": "c", "type": "function", "function": {"name": "f", "arguments": "[1]"}},
                       custom],
    })
    assert isinstance(message, AIMessage)
    assert message.content == ""
    assert message.additional_kwargs[EXTRAS_KEY] == {"metadata": {"run": 1}, "llamaindex": {"x": True}}
    # A custom call reads as langchain-openai reads one; the exact call rides along.
    assert message.tool_calls == [{"name": "g", "args": {"__arg1": "x"}, "id": "d", "type": "tool_call"}]
    assert message.additional_kwargs[TOOL_CALLS_KEY] == [custom]
    assert [c["id"] for c in message.invalid_tool_calls] == ["c"]


def test_developer_role_reads_like_langchain_reads_it() -> None:
    from langchain_core.messages import convert_to_messages

    canonical = {"role": "developer", "content": "Be brief."}
    assert from_canonical(canonical) == convert_to_messages([canonical])[0]


@pytest.mark.parametrize("bad", [
    RemoveMessage(id="m-1"),
    {"role": "user", "content": "a dict is not a LangChain message"},
    "hello",
    AIMessage("x", tool_calls=[{"name": "f", "args": {"when": object()}, "id": "c"}]),
])
def test_unconvertible_messages_raise(bad: Any) -> None:
    with pytest.raises(sessions.InvalidMessageError):
        to_canonical(bad)


@pytest.mark.parametrize("stored", [
    {"role": "critic", "content": "unknown role"},
    {"content": "no role"},
    ["not", "a", "dict"],
])
def test_what_no_store_accepts_raises(stored: Any) -> None:
    with pytest.raises(sessions.InvalidMessageError):
        from_canonical(stored)


# Stored messages (each accepted by a store) and the LangChain message each reads as.
STORED_READS: list[tuple[dict[str, Any], BaseMessage]] = [
    # A namespace that is not one, or holds what this version does not know: ignored.
    ({"role": "user", "content": "x", NAMESPACE: "not a dict"}, HumanMessage("x")),
    ({"role": "user", "content": "x", NAMESPACE: {"from_the_future": 1}}, HumanMessage("x")),
    # Content rebuild entries that no longer match the content: the content wins.
    ({"role": "user", "content": [], NAMESPACE: {"content": [5]}}, HumanMessage([])),
    ({"role": "user", "content": [{"type": "text", "text": "x"}],
      NAMESPACE: {"content": [{"part": 3, "block": {"type": "image"}, "payload": "url"}]}},
     HumanMessage([{"type": "text", "text": "x"}])),
    ({"role": "assistant", "content": "joined", NAMESPACE: {"content": [{"text": 0}, {"text": 1}]}},
     AIMessage("joined")),
    # Errors of invalid calls that no longer fit the calls: the calls are read afresh.
    ({"role": "assistant", "content": None, NAMESPACE: {"invalid_tool_calls": ["a", "b"]},
      "tool_calls": [{"id": "c", "type": "function", "function": {"name": "f", "arguments": "{"}}]},
     AIMessage("", invalid_tool_calls=[
         {"name": "f", "args": "{", "id": "c", "error": "arguments are not a JSON object"}])),
    # A ChatMessage role the message no longer has; a tool status LangChain cannot hold.
    ({"role": "assistant", "content": "y", NAMESPACE: {"chat_role": "critic"}}, AIMessage("y")),
    ({"role": "tool", "content": "r", "tool_call_id": "c", NAMESPACE: {"status": "lost"}},
     ToolMessage("r", tool_call_id="c")),
    # LangChain's data that no longer belongs to the message's role is not used.
    ({"role": "user", "content": "u", NAMESPACE: {"usage_metadata": {"input_tokens": 1}, "status": "error",
                                                  "invalid_tool_calls": ["e"]}}, HumanMessage("u")),
    ({"role": "assistant", "content": "a", NAMESPACE: {"usage_metadata": {"input_tokens": "many"}}},
     AIMessage("a")),
    ({"role": "system", "content": "s", NAMESPACE: {"additional_kwargs": {"__openai_role__": "developer"}}},
     SystemMessage("s")),
    # Raw tool calls of langchain-openai for calls the message no longer has.
    ({"role": "assistant", "content": "done", NAMESPACE: {"additional_kwargs": {"tool_calls": [
        {"id": "gone", "type": "function", "function": {"name": "f", "arguments": "{}"}}]}}},
     AIMessage("done")),
    # Extra fields may not replace the message's own.
    ({"role": "user", "content": "real", NAMESPACE: {"fields": {"content": "fake", "tag": 1}}},
     HumanMessage("real", tag=1)),
    # A namespace validation would refuse as a whole: the canonical message alone.
    ({"role": "assistant", "content": "v", NAMESPACE: {"response_metadata": {"a": 1}, "usage_metadata": {
        "input_tokens": 1, "output_tokens": 1, "total_tokens": 2, "input_token_details": "bad"}}},
     AIMessage("v")),
    # Foreign messages LangChain cannot represent exactly: the closest message.
    ({"role": "function", "content": "no name"}, FunctionMessage("no name", name="")),
    ({"role": "tool", "content": None, "tool_call_id": ""}, ToolMessage("", tool_call_id="")),
    ({"role": "assistant", "content": None, "id": ["not", "text"]},
     AIMessage("", additional_kwargs={EXTRAS_KEY: {"id": ["not", "text"]}})),
]


@pytest.mark.parametrize(("stored", "expected"), STORED_READS)
def test_every_stored_message_reads(stored: dict[str, Any], expected: BaseMessage) -> None:
    message = from_canonical(stored)
    assert message == expected
    assert type(message) is type(expected)
    sessions.MemorySession().append("accepted", [stored])  # the store takes it


# Tool calls LangChain cannot hold exactly.
FOREIGN_CALLS: list[list[Any]] = [
    [{"id": "c1", "type": "custom", "custom": {"name": "patch", "input": "*** Begin Patch"}}],
    [{"id": "m1", "type": "mcp", "mcp": {"server": "s", "tool": "t"}}],
    [{"id": "f1", "function": {"name": "f", "arguments": "{}"}}],  # no type
    [{"id": "f2", "type": "function", "function": {"name": "f", "arguments": "{\"a\":1}"}, "index": 0}],
    [{"id": "f3", "type": "function", "function": {"name": "f", "arguments": ""}}],
    [{"id": 7, "type": "function", "function": {"name": "f", "arguments": "{}"}}],
    [{"id": "f4", "type": "function", "function": {"name": 5, "arguments": None}}],
    [{"id": "f5", "type": "function", "function": {"name": "f", "arguments": "{}"}},
     {"id": "c2", "type": "custom", "custom": {"name": "g", "input": ""}},
     {"id": "f6", "type": "function", "function": {"name": "h", "arguments": "[1]"}}],
]


@pytest.mark.parametrize("calls", FOREIGN_CALLS)
def test_tool_calls_langchain_cannot_hold_are_written_back_exactly(calls: list[Any]) -> None:
    stored = {"role": "assistant", "content": None, "tool_calls": calls}
    message = from_canonical(stored)
    assert isinstance(message, AIMessage)
    back = to_canonical(message)
    assert sorted(map(json.dumps, back["tool_calls"])) == sorted(map(json.dumps, calls))
    # A call LangChain changed is written as LangChain has it.
    if message.tool_calls:
        edited = message.model_copy(update={"tool_calls": [
            {**message.tool_calls[0], "args": {"__arg1": "edited"}}, *message.tool_calls[1:]]})
        assert to_canonical(edited)["tool_calls"][0] != back["tool_calls"][0]


def test_custom_tool_calls_in_langchain_openai_form_are_stored_as_custom() -> None:
    block = {"type": "custom_tool_call", "id": "ctc_1", "call_id": "call_c", "name": "patch",
             "input": "*** Begin Patch"}
    message = AIMessage([block], tool_calls=[
        {"name": "patch", "args": {"__arg1": "*** Begin Patch"}, "id": "call_c"}])
    canonical = to_canonical(message)
    assert canonical["tool_calls"] == [
        {"id": "call_c", "type": "custom", "custom": {"name": "patch", "input": "*** Begin Patch"}}]
    assert from_canonical(_json_copy(canonical)) == message


# -- the history over real stores ---------------------------------------------------------------


def test_history_round_trips_every_kind(framework_store: sessions.Session) -> None:
    history = SessionChatMessageHistory(framework_store, "lc-every-kind")
    history.add_messages(EVERY_KIND[:5])
    history.add_message(EVERY_KIND[5])
    history.add_messages(EVERY_KIND[5 + 1:])
    assert history.messages == [m for m in EVERY_KIND]
    assert framework_store.count("lc-every-kind") == len(EVERY_KIND)
    assert framework_store.get("lc-every-kind")[1] == {
        "role": "developer", "content": "Answer in French.", "name": "ops",
    }
    history.clear()
    assert history.messages == []
    assert framework_store.info("lc-every-kind") is not None  # cleared, not deleted


async def test_async_history_round_trips_every_kind(framework_store: sessions.Session) -> None:
    history = SessionChatMessageHistory(framework_store, "lc-async")
    await history.aadd_messages(EVERY_KIND)
    assert await history.aget_messages() == EVERY_KIND
    assert history.messages == EVERY_KIND
    await history.aclear()
    assert await history.aget_messages() == []


def test_chunks_are_stored_as_messages(memory_store: sessions.Session) -> None:
    history = SessionChatMessageHistory(memory_store, "chunks")
    history.add_messages([AIMessageChunk(content="par") + AIMessageChunk(content="tial")])
    assert history.messages == [AIMessage("partial")]


def test_add_messages_is_one_append(memory_store: sessions.Session) -> None:
    calls: list[int] = []

    class Counting(sessions.MemorySession):
        def _append(self, session_id: str, records: list[str]) -> None:
            calls.append(len(records))
            super()._append(session_id, records)

    history = SessionChatMessageHistory(Counting(), "one")
    history.add_messages([HumanMessage("a"), AIMessage("b"), HumanMessage("c")])
    history.add_messages([])
    assert calls == [3]


def test_the_history_hands_a_model_only_answered_calls(memory_store: sessions.Session) -> None:
    tool_use = {"type": "tool_use", "id": "c1", "name": "f", "input": {}}
    abandoned = AIMessage([{"type": "text", "text": "Let me look."}, tool_use],
                          tool_calls=[{"name": "f", "args": {}, "id": "c1"}])
    half = AIMessage("Two calls.", tool_calls=[{"name": "g", "args": {}, "id": "c2"}],
                     invalid_tool_calls=[{"name": "h", "args": "{oops", "id": "c3", "error": "bad JSON"}])
    raw = AIMessage("Calling.", additional_kwargs={"tool_calls": [
        {"id": "c4", "type": "function", "function": {"name": "f", "arguments": "{}"}}]})
    written = [HumanMessage("q"), abandoned, HumanMessage("q2"), half,
               ToolMessage("h failed", tool_call_id="c3", status="error"), raw, HumanMessage("q3")]
    history = SessionChatMessageHistory(memory_store, "calls")
    history.add_messages(written)
    assert raw.tool_calls  # langchain-core parsed the raw calls
    read = history.messages
    # The unanswered call is left out, and so is the content block standing for it.
    assert read[1] == AIMessage([{"type": "text", "text": "Let me look."}])
    # Of two calls, the answered invalid one stays, with its error.
    assert read[3] == AIMessage("Two calls.", invalid_tool_calls=[
        {"name": "h", "args": "{oops", "id": "c3", "error": "bad JSON"}])
    assert read[4] == written[4]
    # langchain-openai's raw calls no longer match the message: they would bring the
    # call back, so they are left out.
    assert read[5] == AIMessage("Calling.")
    assert read[5].tool_calls == []
    assert read[6:] == [HumanMessage("q3")]
    # Reading and writing back changes nothing stored.
    stored = memory_store.get("calls")
    history.messages = read
    assert memory_store.get("calls") == stored
    assert [from_canonical(m) for m in stored] == written


def test_window(framework_store: sessions.Session) -> None:
    full = SessionChatMessageHistory(framework_store, "windowed")
    turns = [HumanMessage(f"q{i}") if i % 2 == 0 else AIMessage(f"a{i}") for i in range(10)]
    full.add_messages(turns)
    window = SessionChatMessageHistory(framework_store, "windowed", limit=4)
    assert window.messages == turns[-4:]
    window.add_messages([HumanMessage("q10")])
    assert window.messages == [*turns[-3:], HumanMessage("q10")]
    assert len(full.messages) == 11
    with pytest.raises(sessions.InvalidArgumentError):
        window.messages = []
    assert len(full.messages) == 11


async def test_async_window(framework_store: sessions.Session) -> None:
    history = SessionChatMessageHistory(framework_store, "awindow", limit=2)
    await history.aadd_messages([HumanMessage("1"), AIMessage("2"), HumanMessage("3")])
    assert await history.aget_messages() == [AIMessage("2"), HumanMessage("3")]


def test_assigning_messages_replaces_atomically(memory_store: sessions.Session) -> None:
    history = SessionChatMessageHistory(memory_store, "assign")
    history.add_messages([HumanMessage("old"), AIMessage("old answer")])
    history.messages = [HumanMessage("new")]
    assert history.messages == [HumanMessage("new")]
    with pytest.raises(sessions.InvalidMessageError):
        history.messages = [HumanMessage("newer"), RemoveMessage(id="x")]
    assert history.messages == [HumanMessage("new")]


@pytest.mark.parametrize("bad_batch", [
    [HumanMessage("fine"), RemoveMessage(id="r")],
    [HumanMessage("fine"), {"role": "user", "content": "dict"}],
    [HumanMessage("fine"), AIMessage("x", additional_kwargs={"not_json": object()})],
    [HumanMessage("fine"), AIMessage("x", tool_calls=[{"name": "f", "args": {"s": {1, 2}}, "id": "c"}])],
    [HumanMessage("fine"), HumanMessage("x", additional_kwargs={EXTRAS_KEY: {"role": "system"}})],
])
def test_invalid_batches_store_nothing(framework_store: sessions.Session, bad_batch: list[Any]) -> None:
    history = SessionChatMessageHistory(framework_store, "invalid")
    history.add_messages([HumanMessage("before")])
    with pytest.raises(sessions.InvalidMessageError) as raised:
        history.add_messages(bad_batch)
    assert raised.value.index == 1
    assert raised.value.session_id == "invalid"
    assert history.messages == [HumanMessage("before")]


async def test_invalid_async_batch_stores_nothing(framework_store: sessions.Session) -> None:
    history = SessionChatMessageHistory(framework_store, "ainvalid")
    with pytest.raises(sessions.InvalidMessageError):
        await history.aadd_messages([HumanMessage("fine"), RemoveMessage(id="r")])
    with pytest.raises(sessions.InvalidMessageError):
        await history.aadd_messages(HumanMessage("not a list"))  # type: ignore[arg-type]
    assert await history.aget_messages() == []


def test_constructor_checks_its_arguments(memory_store: sessions.Session) -> None:
    with pytest.raises(sessions.InvalidSessionIdError):
        SessionChatMessageHistory(memory_store, "")
    with pytest.raises(sessions.InvalidArgumentError):
        SessionChatMessageHistory(memory_store, "x", limit=-1)
    with pytest.raises(sessions.InvalidArgumentError):
        session_history_factory(memory_store, limit=-1)
    assert "limit=3" in repr(SessionChatMessageHistory(memory_store, "x", limit=3))


def _envelope(store: sessions.Session, session_id: str) -> None:
    """Store a record no LangChain reader may take for a message: an encrypted one."""
    sessions.with_encryption(store, bytes(16)).append(session_id, [{"role": "user", "content": "secret"}])


def test_a_record_that_is_no_message_is_a_corrupt_record(memory_store: sessions.Session) -> None:
    _envelope(memory_store, "corrupt")
    history = SessionChatMessageHistory(memory_store, "corrupt")
    with pytest.raises(sessions.CorruptRecordError):
        history.messages  # noqa: B018
    with pytest.raises(sessions.CorruptRecordError):
        history.messages = [HumanMessage("x")]
    assert len(memory_store.get("corrupt")) == 1


# -- async never blocks the event loop -------------------------------------------------------------


class SlowStore(sessions.MemorySession):
    """A memory store whose every storage call takes a while, like a remote server."""

    delay = 0.3

    def _get(self, session_id: str, limit: int | None) -> list[str]:
        time.sleep(self.delay)
        return super()._get(session_id, limit)

    def _append(self, session_id: str, records: list[str]) -> None:
        time.sleep(self.delay)
        super()._append(session_id, records)

    def _clear(self, session_id: str) -> None:
        time.sleep(self.delay)
        super()._clear(session_id)


async def test_async_methods_do_not_block_the_loop() -> None:
    history = SessionChatMessageHistory(SlowStore(), "slow")

    async def use_history() -> list[BaseMessage]:
        await history.aadd_messages([HumanMessage("hi")])
        read = await history.aget_messages()
        await history.aclear()
        return read

    work = asyncio.ensure_future(use_history())
    lags: list[float] = []
    while not work.done():
        started = time.perf_counter()
        await asyncio.sleep(0.01)
        lags.append(time.perf_counter() - started)
    assert await work == [HumanMessage("hi")]
    # Each storage call sleeps 0.3 s in its thread; a blocked loop would lag that long.
    assert len(lags) >= 20
    assert max(lags) < 0.25


# -- real chains ----------------------------------------------------------------------------------


def _recording_model(replies: list[AIMessage | str], seen: list[list[BaseMessage]]) -> Any:
    model = GenericFakeChatModel(messages=iter(replies))

    def record(messages: Any) -> Any:
        seen.append(list(messages.to_messages() if hasattr(messages, "to_messages") else messages))
        return messages

    return RunnableLambda(record) | model


def _chain(store: sessions.Session, replies: list[AIMessage | str], seen: list[list[BaseMessage]],
           limit: int | None = None) -> RunnableWithMessageHistory:
    prompt = ChatPromptTemplate.from_messages([
        ("system", "You are a helpful assistant."),
        MessagesPlaceholder("history"),
        ("human", "{question}"),
    ])
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return RunnableWithMessageHistory(
            prompt | _recording_model(replies, seen),
            session_history_factory(store, limit=limit),
            input_messages_key="question",
            history_messages_key="history",
        )


def _config(session_id: str) -> Any:
    return {"configurable": {"session_id": session_id}}


def test_chain_keeps_history_sync(framework_store: sessions.Session) -> None:
    seen: list[list[BaseMessage]] = []
    chain = _chain(framework_store, ["Hi Alice!", "Your name is Alice.", "You like Python."], seen)
    questions = ["I'm Alice and I like Python.", "What's my name?", "What do I like?"]
    for question in questions:
        chain.invoke({"question": question}, config=_config("alice"))
    stored = framework_store.get("alice")
    assert [(m["role"], m["content"]) for m in stored] == [
        ("user", questions[0]), ("assistant", "Hi Alice!"),
        ("user", questions[1]), ("assistant", "Your name is Alice."),
        ("user", questions[2]), ("assistant", "You like Python."),
    ]
    # The model saw the system prompt, the whole history and the new question.
    assert [m.content for m in seen[2]] == [
        "You are a helpful assistant.", questions[0], "Hi Alice!", questions[1],
        "Your name is Alice.", questions[2],
    ]
    # The AI messages come back exactly as the model produced them (ids included).
    history = SessionChatMessageHistory(framework_store, "alice").messages
    assert all(m.id for m in history if isinstance(m, AIMessage))
    assert framework_store.get("bob") == []


async def test_chain_keeps_history_async(framework_store: sessions.Session) -> None:
    seen: list[list[BaseMessage]] = []
    chain = _chain(framework_store, ["one", "two", "three"], seen)
    for question in ("q1", "q2", "q3"):
        await chain.ainvoke({"question": question}, config=_config("async-chain"))
    stored = framework_store.get("async-chain")
    assert [m["content"] for m in stored] == ["q1", "one", "q2", "two", "q3", "three"]
    assert [m.content for m in seen[-1]][1:] == ["q1", "one", "q2", "two", "q3"]


def test_chain_with_a_window_shows_the_last_messages(framework_store: sessions.Session) -> None:
    seen: list[list[BaseMessage]] = []
    chain = _chain(framework_store, [f"a{i}" for i in range(4)], seen, limit=2)
    for i in range(4):
        chain.invoke({"question": f"q{i}"}, config=_config("windowed-chain"))
    assert [m.content for m in seen[-1]] == ["You are a helpful assistant.", "q2", "a2", "q3"]
    assert framework_store.count("windowed-chain") == 8


def test_chain_over_a_message_list_input(framework_store: sessions.Session) -> None:
    # No prompt: the chain takes the message list, and the history is prepended to it.
    seen: list[list[BaseMessage]] = []
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        chain = RunnableWithMessageHistory(
            _recording_model(["first", "second"], seen), session_history_factory(framework_store)
        )
    chain.invoke([HumanMessage("hello")], config=_config("list-input"))
    chain.invoke([HumanMessage("again")], config=_config("list-input"))
    assert [m.content for m in seen[1]] == ["hello", "first", "again"]
    assert [m["content"] for m in framework_store.get("list-input")] == ["hello", "first", "again", "second"]


def test_chain_with_a_tool_call_exchange(framework_store: sessions.Session) -> None:
    call = AIMessage("", tool_calls=[{"name": "weather", "args": {"city": "Oslo"}, "id": "call_9"}])
    seen: list[list[BaseMessage]] = []
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        chain = RunnableWithMessageHistory(
            _recording_model([call, "It is -3 °C in Oslo."], seen),
            session_history_factory(framework_store),
        )
    first = chain.invoke([HumanMessage("Weather in Oslo?")], config=_config("tools"))
    assert first.tool_calls[0]["id"] == "call_9"
    # The call's result goes into the history, so the next turn sees the whole exchange.
    result = ToolMessage("-3 °C", tool_call_id="call_9", name="weather")
    SessionChatMessageHistory(framework_store, "tools").add_messages([result])
    chain.invoke([HumanMessage("So?")], config=_config("tools"))

    stored = framework_store.get("tools")
    assert [m["role"] for m in stored] == ["user", "assistant", "tool", "user", "assistant"]
    assert stored[1]["content"] is None
    assert stored[1]["tool_calls"] == [
        {"id": "call_9", "type": "function", "function": {"name": "weather", "arguments": '{"city": "Oslo"}'}}
    ]
    assert stored[2] == {"role": "tool", "content": "-3 °C", "name": "weather", "tool_call_id": "call_9"}
    history = SessionChatMessageHistory(framework_store, "tools").messages
    assert history[1] == first
    assert history[2] == result
    assert seen[1][1] == first and seen[1][2] == result


# -- fast construction is construction ------------------------------------------------------------


def test_fast_construction_builds_what_validation_builds(monkeypatch: pytest.MonkeyPatch) -> None:
    import adapters.langchain._build as adapter

    assert adapter._fast_path, "the self-check disabled fast construction on this langchain-core"
    stored = [_json_copy(to_canonical(m)) for m in EVERY_KIND] + [_json_copy(m) for m in ALL_SHAPES]
    stored += [_json_copy(m) for m, _ in STORED_READS]
    stored += [{"role": "assistant", "content": None, "tool_calls": calls} for calls in FOREIGN_CALLS]
    fast = [from_canonical(m) for m in stored]
    monkeypatch.setattr(adapter, "_fast_path", False)
    validated = [from_canonical(m) for m in stored]
    for built, reference in zip(fast, validated, strict=True):
        assert built == reference
        assert repr(built) == repr(reference)
        assert built.model_fields_set == reference.model_fields_set
        assert list(built.__dict__) == list(reference.__dict__)
        assert built.model_dump() == reference.model_dump()


@pytest.mark.parametrize(("stored", "attribute", "expected"), [
    ({"role": "user", "content": "x", "id": 5}, "id", "5"),
    ({"role": "tool", "content": ("x",), "tool_call_id": "c"}, "content", ["x"]),
    ({"role": "assistant", "content": "x", NAMESPACE: {"usage_metadata": {
        "total_tokens": 3, "input_tokens": 1, "output_tokens": 2}}}, "usage_metadata",
     {"input_tokens": 1, "output_tokens": 2, "total_tokens": 3}),
])
def test_values_validation_would_change_go_through_validation(
        stored: dict[str, Any], attribute: str, expected: Any) -> None:
    message = from_canonical(stored)
    assert getattr(message, attribute) == expected
    assert repr(message) == repr(type(message)(**{
        k: getattr(message, k) for k in message.model_fields_set}))


def test_long_reads_pause_the_collector_only_while_converting(memory_store: sessions.Session) -> None:
    import gc

    from adapters._gc import PAUSE_FROM

    count = PAUSE_FROM
    turns = [HumanMessage(f"q{i}") if i % 2 == 0 else AIMessage(f"a{i}") for i in range(count)]
    history = SessionChatMessageHistory(memory_store, "long")
    history.add_messages(turns)
    assert gc.isenabled()
    assert history.messages == turns
    assert gc.isenabled()
    gc.disable()
    try:
        assert history.messages == turns
        assert not gc.isenabled()  # a caller's choice is left alone
    finally:
        gc.enable()
    _envelope(memory_store, "long")
    with pytest.raises(sessions.CorruptRecordError):
        history.messages  # noqa: B018
    assert gc.isenabled()


def test_example_runs_offline(tmp_path: Any) -> None:
    import os
    import subprocess
    import sys
    from pathlib import Path

    root = Path(__file__).resolve().parent.parent
    env = {k: v for k, v in os.environ.items() if k not in ("OPENAI_API_KEY", "SESSIONS_URL")}
    env["PYTHONPATH"] = str(root)
    done = subprocess.run([sys.executable, str(root / "examples" / "langchain_chain.py")], cwd=tmp_path,
                          env=env, capture_output=True, text=True, timeout=120, check=False)
    assert done.returncode == 0, done.stderr
    assert "assistant: You like Python." in done.stdout
    with sessions.SQLiteSession(tmp_path / "sessions.db") as store:
        assert store.count("langchain-example-alice") == 6


async def test_streamed_replies_are_stored_whole(framework_store: sessions.Session) -> None:
    seen: list[list[BaseMessage]] = []
    chain = _chain(framework_store, ["a streamed reply", "another one"], seen)
    chunks = list(chain.stream({"question": "q1"}, config=_config("stream")))
    assert len(chunks) > 1
    async for _ in chain.astream({"question": "q2"}, config=_config("stream")):
        pass
    stored = framework_store.get("stream")
    assert [(m["role"], m["content"]) for m in stored] == [
        ("user", "q1"), ("assistant", "a streamed reply"), ("user", "q2"), ("assistant", "another one"),
    ]
    history = SessionChatMessageHistory(framework_store, "stream").messages
    assert type(history[1]) is AIMessage


def test_the_history_itself_warns_nothing(memory_store: sessions.Session) -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        history = session_history_factory(memory_store)("quiet")
        history.add_messages([HumanMessage("hi")])
        assert history.messages == [HumanMessage("hi")]
        history.clear()


# -- any stored message -----------------------------------------------------------------------------

_text = st.text(max_size=4)
_any = st.one_of(st.none(), st.booleans(), st.integers(-2, 3), _text, st.lists(st.integers(0, 2), max_size=2),
                 st.fixed_dictionaries({"k": _text}))
_part = st.one_of(
    st.fixed_dictionaries({"type": st.just("text"), "text": _text}),
    st.fixed_dictionaries({"type": st.just("text"), "text": _text, "id": _text}),
    st.fixed_dictionaries({"type": st.just("image_url"), "image_url": st.one_of(
        _text, st.fixed_dictionaries({"url": _text}, optional={"detail": st.sampled_from(["low", "x"])}))}),
    st.fixed_dictionaries({"type": st.just("input_audio"), "input_audio": st.fixed_dictionaries(
        {"data": _text, "format": st.sampled_from(["wav", "ogg"])})}),
    st.fixed_dictionaries({"type": st.just("file"), "file": st.fixed_dictionaries(
        {}, optional={"file_id": _text, "file_data": _text, "filename": _text})}),
    st.fixed_dictionaries({"type": st.sampled_from(["refusal", "thinking", "reasoning", "video", "tool_use"]),
                           "id": st.sampled_from(["c1", "c2"])}, optional={"refusal": _text, "url": _text}),
)
_call = st.one_of(
    st.fixed_dictionaries({"id": st.sampled_from(["c1", "c2", "", 7, None, [1]]), "type": st.just("function"),
                           "function": st.fixed_dictionaries({}, optional={
                               "name": st.sampled_from(["f", "", None, 3]),
                               "arguments": st.sampled_from(["{}", '{"a":1}', "[1]", "{", "", None])})},
                          optional={"index": st.integers(0, 2)}),
    st.fixed_dictionaries({"id": st.sampled_from(["c1", "c3"]), "type": st.just("custom"),
                           "custom": st.fixed_dictionaries({"name": st.just("g"), "input": _text})}),
    st.fixed_dictionaries({"id": st.sampled_from(["c1", "c4"])},
                          optional={"type": st.sampled_from(["mcp", 5])}),
)
_namespace = st.one_of(_any, st.fixed_dictionaries({}, optional={
    "content": st.one_of(_any, st.lists(st.one_of(
        st.integers(-1, 3), _any, st.fixed_dictionaries({"text": st.integers(0, 2)}),
        st.fixed_dictionaries({"block": st.one_of(_part, _any)}, optional={
            "part": st.integers(0, 2), "payload": st.sampled_from(["url", "text", "base64"])})), max_size=3)),
    "invalid_tool_calls": st.one_of(_any, st.lists(st.one_of(st.none(), _text, st.integers()), max_size=3)),
    "chat_role": st.one_of(_any, st.sampled_from(["critic", "assistant", "user", "system"])),
    "status": st.one_of(_any, st.sampled_from(["error", "success"])),
    "artifact": _any,
    "usage_metadata": st.one_of(_any, st.fixed_dictionaries(
        {"input_tokens": st.integers(0, 3), "output_tokens": st.integers(0, 3),
         "total_tokens": st.integers(0, 6)},
        optional={"input_token_details": st.one_of(
            _any, st.fixed_dictionaries({"audio": st.integers(0, 2)}))})),
    "additional_kwargs": st.one_of(_any, st.fixed_dictionaries({}, optional={
        "tool_calls": st.lists(_call, max_size=2), "__openai_role__": st.just("developer"),
        "canonical_extras": _any, "canonical_tool_calls": _any, "k": _any})),
    "fields": st.one_of(_any, st.fixed_dictionaries(
        {}, optional={"content": _any, "tag": _any, "type": _any})),
    "response_metadata": _any,
    "from_the_future": _any,
}))
_stored = st.builds(
    lambda role, content, extra: {"role": role, "content": content, **extra},
    st.sampled_from(["user", "system", "developer", "assistant", "tool", "function"]),
    st.one_of(st.none(), _text, st.lists(_part, max_size=3)),
    st.fixed_dictionaries({}, optional={
        "name": st.one_of(st.none(), st.sampled_from(["alice", "bad name", ""])),
        "id": _any, "tool_calls": st.lists(_call, max_size=3), "refusal": st.one_of(st.none(), _text),
        "langchain": _namespace, "metadata": _any, "x_responses_only": st.booleans(),
    }),
).map(lambda m: {**m, "tool_call_id": "c1"} if m["role"] == "tool" else m)


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(_stored, max_size=6))
def test_any_stored_history_reads_and_writes_back_unchanged(stored: list[dict[str, Any]]) -> None:
    store = sessions.MemorySession()
    store.append("any", stored)  # whatever a store accepts...
    for message in store.get("any"):
        once = from_canonical(message)  # ...reads,
        again = to_canonical(once)  # is written as LangChain has it,
        assert from_canonical(_json_copy(again)) == once  # and reads back the same.
    history = SessionChatMessageHistory(store, "any")
    read = history.messages
    assert len(read) <= len(stored)
    history.messages = read  # a read written back changes nothing
    assert store.get("any") == [_json_copy(m) for m in stored]
