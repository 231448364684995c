"""The LlamaIndex adapter inside LlamaIndex: chat store, Memory store, message conversion."""

from __future__ import annotations

import asyncio
import copy
import pickle
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

pytest.importorskip("llama_index.core")

from llama_index.core.base.base_retriever import BaseRetriever
from llama_index.core.base.llms.types import (
    AudioBlock,
    ChatMessage,
    DocumentBlock,
    ImageBlock,
    TextBlock,
    ThinkingBlock,
    ToolCallBlock,
)
from llama_index.core.chat_engine import (
    CondensePlusContextChatEngine,
    ContextChatEngine,
    SimpleChatEngine,
)
from llama_index.core.llms import MockLLM
from llama_index.core.memory import ChatMemoryBuffer, Memory
from llama_index.core.schema import NodeWithScore, QueryBundle, TextNode
from llama_index.core.storage.chat_store.base_db import MessageStatus

import sessions
from adapters.llamaindex import (
    MEMORY_STATE_SUFFIX,
    NAMESPACE,
    SessionChatStore,
    SessionDBChatStore,
    from_canonical,
    to_canonical,
)
from tests.backends import FRAMEWORK_BACKENDS, Backend, params

PNG = b"\x89PNG\r\n\x1a\n" + b"\x00" * 24
PDF = b"%PDF-1.4 a tiny document"
WAV = b"RIFF\x24\x00\x00\x00WAVEfmt "


def _messages() -> list[ChatMessage]:
    """One ChatMessage of every kind the adapter round-trips."""
    return [
        ChatMessage(role="system", content="You are terse."),
        ChatMessage(role="developer", content="Answer in French."),
        ChatMessage(role="user", content="Hello"),
        ChatMessage(role="user", content=""),
        ChatMessage(role="assistant", content="Bonjour"),
        ChatMessage(role="chatbot", content="from a provider that says chatbot"),
        ChatMessage(role="model", content="from a provider that says model"),
        ChatMessage(role="assistant", blocks=[TextBlock(text="two"), TextBlock(text="blocks")]),
        ChatMessage(role="user", blocks=[TextBlock(text="look"), ImageBlock(url="https://example.com/cat.png")]),
        ChatMessage(role="user", blocks=[ImageBlock(url="https://example.com/cat", detail="low")]),
        ChatMessage(role="user", blocks=[ImageBlock(image=PNG)]),
        ChatMessage(role="user", blocks=[
            ImageBlock(url="https://example.com/x.png", image_mimetype="image/jpeg")]),
        ChatMessage(role="user", blocks=[AudioBlock(audio=WAV, format="wav")]),
        ChatMessage(role="user", blocks=[AudioBlock(url="https://example.com/a.mp3")]),
        ChatMessage(role="user", blocks=[DocumentBlock(data=PDF, title="report.pdf")]),
        ChatMessage(role="user", blocks=[DocumentBlock(url="https://example.com/r.pdf")]),
        ChatMessage(role="assistant", blocks=[ThinkingBlock(content="hmm"), TextBlock(text="ok")]),
        ChatMessage(role="assistant", blocks=[
            TextBlock(text="calling"),
            ToolCallBlock(tool_call_id="call_1", tool_name="add", tool_kwargs={"a": 1, "b": "é"}),
            ToolCallBlock(tool_call_id="call_2", tool_name="now", tool_kwargs={}),
        ]),
        ChatMessage(role="assistant", blocks=[
            ToolCallBlock(tool_call_id="call_3", tool_name="raw", tool_kwargs="not json"),
            TextBlock(text="text after the call"),
        ]),
        ChatMessage(role="assistant", content=None, additional_kwargs={"tool_calls": [
            {"id": "call_4", "type": "function", "function": {"name": "add", "arguments": '{"a": 2}'}},
        ]}),
        ChatMessage(role="tool", content="3", additional_kwargs={"tool_call_id": "call_1", "name": "add"}),
        ChatMessage(role="tool", content="no id"),
        ChatMessage(role="function", content="legacy", additional_kwargs={"name": "lookup"}),
        ChatMessage(role="user", content="Hi", additional_kwargs={"name": "alice"}),
        ChatMessage(role="user", content="meta",
                    additional_kwargs={"session_id": "s", "n": [1, {"x": None}]}),
    ]


MESSAGES = _messages()
IDS = [f"{m.role.value}-{i}" for i, m in enumerate(MESSAGES)]


def _tool_result(call_id: str, text: str) -> ChatMessage:
    return ChatMessage(role="tool", content=text, additional_kwargs={"tool_call_id": call_id})


# A history of every kind of message, each shown to LlamaIndex as it was written: the
# calls answered by results right after them, no tool result without its call.
HISTORY = [
    *MESSAGES[:18], _tool_result("call_1", "3"), _tool_result("call_2", "noon"),
    MESSAGES[18], _tool_result("call_3", "raw"), MESSAGES[19], _tool_result("call_4", "4"),
    *MESSAGES[22:],
]


@pytest.fixture(params=params((*FRAMEWORK_BACKENDS, "memory")))
def framework_store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[sessions.Session]:
    """The framework stores (SQLite and the servers) plus MemorySession."""
    backend: Backend = request.param
    with backend.open(tmp_path) as opened:
        yield opened


# -- conversion -------------------------------------------------------------------------------


@pytest.mark.parametrize("message", MESSAGES, ids=IDS)
def test_round_trip_is_equal(message: ChatMessage) -> None:
    canonical = to_canonical(message)
    sessions.MemorySession().append("check", [canonical])  # a valid canonical message
    assert from_canonical(canonical) == message


def test_canonical_forms() -> None:
    by_id = dict(zip(IDS, (to_canonical(m) for m in MESSAGES), strict=True))
    assert by_id["user-2"] == {"role": "user", "content": "Hello"}
    assert by_id["developer-1"] == {"role": "developer", "content": "Answer in French."}
    assert by_id["chatbot-5"]["role"] == "assistant"
    assert by_id["user-8"]["content"][1] == {
        "type": "image_url", "image_url": {"url": "https://example.com/cat.png"}}
    assert by_id["user-10"]["content"][0]["image_url"]["url"].startswith("data:image/png;base64,")
    assert by_id["user-12"]["content"][0]["type"] == "input_audio"
    assert by_id["user-14"]["content"][0]["file"]["filename"] == "report.pdf"
    assert by_id["user-14"]["content"][0]["file"]["file_data"].startswith("data:application/pdf;base64,")
    calls = by_id["assistant-17"]["tool_calls"]
    assert calls[0] == {"id": "call_1", "type": "function",
                        "function": {"name": "add", "arguments": '{"a":1,"b":"é"}'}}
    assert by_id["assistant-19"]["tool_calls"][0]["function"]["arguments"] == '{"a": 2}'
    assert by_id["tool-20"] == {"role": "tool", "content": "3", "tool_call_id": "call_1", "name": "add"}
    assert by_id["user-24"][NAMESPACE] == {"additional_kwargs": {"session_id": "s", "n": [1, {"x": None}]}}
    # Plain messages carry nothing LlamaIndex-specific.
    for key in ("system-0", "user-2", "assistant-4", "user-8", "user-10", "assistant-17", "tool-20"):
        assert NAMESPACE not in by_id[key], key


FOREIGN = [
    {"role": "user", "content": "from elsewhere", "id": "msg-1", "metadata": {"k": [1, 2]}},
    {"role": "assistant", "content": None, "tool_calls": [
        {"id": "t1", "type": "function", "function": {"name": "f", "arguments": '{"a":1}'}}]},
    {"role": "tool", "tool_call_id": "t1", "content": "1"},
    {"role": "user", "content": [{"type": "file", "file": {"file_id": "file-1"}},
                                 {"type": "text", "text": "see the file"}]},
    {"role": "user", "content": [{"type": "text", "text": "a", "cache_control": {"type": "ephemeral"}}]},
    {"role": "assistant", "content": "agents item", "openai_agents": {"items": [{"type": "reasoning"}]}},
    {"role": "assistant", "content": None, "tool_calls": [
        {"id": "t2", "type": "custom", "custom": {"name": "grep", "input": "x"}}]},
    {"role": "user", "content": [{"type": "image_url", "image_url": {"url": "https://e.com/i.png"}}]},
]


def test_foreign_messages_are_written_back_unchanged(framework_store: sessions.Session) -> None:
    framework_store.append("foreign", FOREIGN)
    chat_store = SessionChatStore(framework_store)
    chat_store.set_messages("foreign", chat_store.get_messages("foreign"))
    assert framework_store.get("foreign") == FOREIGN
    memory = Memory.from_defaults(session_id="foreign", chat_store=SessionDBChatStore(framework_store))
    memory.set(memory.get_all())
    assert framework_store.get("foreign") == FOREIGN


@pytest.mark.parametrize("canonical", FOREIGN)
def test_other_frameworks_keys_are_not_read(canonical: dict[str, Any]) -> None:
    """Keys LlamaIndex has no field for stay in the store, never in additional_kwargs
    (where Memory would count them as tokens and LLMs would send them)."""
    message = from_canonical(canonical)
    known = set(message.additional_kwargs) - {"tool_call_id", "name", "tool_calls"}
    assert not known
    assert to_canonical(message) == to_canonical(from_canonical(to_canonical(message)))


def test_equivalent_forms_are_normalised_when_rewritten() -> None:
    def rewritten(canonical: dict[str, Any]) -> dict[str, Any]:
        return to_canonical(from_canonical(canonical))

    assert rewritten({"role": "user", "content": [{"type": "text", "text": "a"}]}) == {
        "role": "user", "content": "a"}
    assert rewritten({"role": "user", "content": []}) == {"role": "user", "content": None}
    calls = [{"id": "t", "type": "function", "function": {"name": "f", "arguments": '{"a": 1}'}}]
    assert rewritten({"role": "assistant", "tool_calls": calls}) == {
        "role": "assistant", "content": None,
        "tool_calls": [{"id": "t", "type": "function", "function": {"name": "f", "arguments": '{"a":1}'}}]}


def test_foreign_messages_read_as_llamaindex_expects() -> None:
    assert from_canonical(FOREIGN[0]) == ChatMessage(role="user", content="from elsewhere")
    call = from_canonical(FOREIGN[1]).blocks[0]
    assert call == ToolCallBlock(tool_call_id="t1", tool_name="f", tool_kwargs={"a": 1})
    assert from_canonical(FOREIGN[2]).additional_kwargs == {"tool_call_id": "t1"}
    file_message = from_canonical(FOREIGN[3])
    assert file_message.blocks == [TextBlock(text="see the file")]  # file_id has no block
    custom = from_canonical(FOREIGN[6])
    assert custom.blocks == [] and custom.additional_kwargs["tool_calls"] == FOREIGN[6]["tool_calls"]


def test_fast_path_builds_messages_like_validation_does() -> None:
    built = from_canonical({"role": "assistant", "content": "hi"})
    reference = ChatMessage(role="assistant", content="hi")
    assert built == reference and reference == built
    assert built.content == "hi" and built.role.value == "assistant"
    assert built.model_dump() == reference.model_dump()
    assert built.model_dump_json() == reference.model_dump_json()
    assert repr(built) == repr(reference)
    assert copy.deepcopy(built) == reference
    assert pickle.loads(pickle.dumps(built)) == reference
    assert ChatMessage.model_validate(built.model_dump()) == reference
    built.content = "changed"
    assert built.blocks == [TextBlock(text="changed")]
    other = from_canonical({"role": "assistant", "content": "hi"})
    assert other.additional_kwargs is not built.additional_kwargs


def test_bad_canonical_message_raises() -> None:
    with pytest.raises(sessions.InvalidMessageError):
        from_canonical({"role": "robot", "content": "x"})



def test_unreadable_exact_blocks_fall_back_to_the_portable_form(tmp_path: Path) -> None:
    image = tmp_path / "cat.png"
    image.write_bytes(PNG)
    message = ChatMessage(role="user", blocks=[TextBlock(text="see"), ImageBlock(path=image)])
    canonical = to_canonical(message)
    assert canonical["content"] == "see" and "blocks" in canonical[NAMESPACE]
    assert from_canonical(canonical) == message
    image.unlink()
    assert from_canonical(canonical) == ChatMessage(role="user", content="see")


# -- SessionChatStore --------------------------------------------------------------------------


def test_chat_store_sync_methods(framework_store: sessions.Session) -> None:
    chat_store = SessionChatStore(framework_store)
    key = "alice/../ü"
    assert chat_store.get_messages(key) == []
    assert chat_store.delete_messages(key) is None
    assert chat_store.delete_last_message(key) is None
    assert chat_store.delete_message(key, 0) is None

    chat_store.set_messages(key, HISTORY[:3])
    for message in HISTORY[3:]:
        chat_store.add_message(key, message)
    assert chat_store.get_messages(key) == HISTORY
    assert framework_store.get(key) == [to_canonical(m) for m in HISTORY]

    assert chat_store.delete_message(key, 1) == HISTORY[1]
    assert chat_store.delete_message(key, -1) == HISTORY[-1]
    assert chat_store.delete_message(key, len(HISTORY)) is None
    assert chat_store.delete_last_message(key) == HISTORY[-2]
    expected = [HISTORY[0], *HISTORY[2:-2]]
    assert chat_store.get_messages(key) == expected

    chat_store.add_message("bob", ChatMessage(role="user", content="hi"))
    assert sorted(chat_store.get_keys()) == sorted([key, "bob"])
    assert chat_store.delete_messages(key) == expected
    assert chat_store.get_keys() == ["bob"]
    chat_store.set_messages("bob", [])
    assert chat_store.delete_messages("bob") == []  # existed, but empty


async def test_chat_store_async_methods(framework_store: sessions.Session) -> None:
    chat_store = SessionChatStore(framework_store)
    key = "async-key"
    assert await chat_store.aget_messages(key) == []
    assert await chat_store.adelete_messages(key) is None
    assert await chat_store.adelete_last_message(key) is None
    assert await chat_store.adelete_message(key, 0) is None

    await chat_store.aset_messages(key, HISTORY[:3])
    for message in HISTORY[3:]:
        await chat_store.async_add_message(key, message)
    assert await chat_store.aget_messages(key) == HISTORY
    assert await chat_store.adelete_message(key, 0) == HISTORY[0]
    assert await chat_store.adelete_message(key, -1) == HISTORY[-1]
    assert await chat_store.adelete_last_message(key) == HISTORY[-2]
    assert await chat_store.aget_messages(key) == HISTORY[1:-2]
    assert await chat_store.aget_keys() == [key]
    assert await chat_store.adelete_messages(key) == HISTORY[1:-2]
    assert await chat_store.aget_keys() == []


def test_window_reads_the_last_messages(framework_store: sessions.Session) -> None:
    chat_store = SessionChatStore(framework_store, window=3)
    turns = [ChatMessage(role="user", content=str(i)) for i in range(10)]
    chat_store.set_messages("w", turns)
    assert chat_store.get_messages("w") == turns[-3:]
    # Indices count within the window: 0 is the oldest message shown.
    assert chat_store.delete_message("w", 0) == turns[7]
    assert chat_store.delete_message("w", 5) is None
    assert framework_store.count("w") == 9
    assert chat_store.get_messages("w") == [turns[6], turns[8], turns[9]]
    assert asyncio.run(chat_store.aget_messages("w")) == [turns[6], turns[8], turns[9]]
    assert SessionChatStore(framework_store).get_messages("w") == turns[:7] + turns[8:]


async def test_window_async_delete_message(framework_store: sessions.Session) -> None:
    chat_store = SessionChatStore(framework_store, window=2)
    turns = [ChatMessage(role="user", content=str(i)) for i in range(5)]
    await chat_store.aset_messages("w", turns)
    assert await chat_store.adelete_message("w", -2) == turns[3]
    assert await chat_store.aget_messages("w") == [turns[2], turns[4]]


def test_bad_input_leaves_the_store_untouched(framework_store: sessions.Session) -> None:
    chat_store = SessionChatStore(framework_store)
    chat_store.set_messages("k", MESSAGES[:2])
    with pytest.raises(sessions.InvalidMessageError) as info:
        chat_store.set_messages("k", [MESSAGES[0], "not a message"])  # type: ignore[list-item]
    assert info.value.index == 1
    with pytest.raises(sessions.InvalidMessageError):
        chat_store.add_message("k", {"role": "user", "content": "dict"})  # type: ignore[arg-type]
    with pytest.raises(sessions.InvalidMessageError):  # an object is not JSON data
        chat_store.add_message("k", ChatMessage(role="user", content="x",
                                                additional_kwargs={"obj": object()}))
    with pytest.raises(sessions.InvalidArgumentError):
        chat_store.delete_message("k", "0")  # type: ignore[arg-type]
    with pytest.raises(sessions.InvalidSessionIdError):
        chat_store.add_message("", MESSAGES[0])
    assert chat_store.get_messages("k") == MESSAGES[:2]
    for bad in (0, -1, 1.5, "3"):
        with pytest.raises(sessions.ConfigurationError):
            SessionChatStore(framework_store, window=bad)  # type: ignore[arg-type]
    with pytest.raises(sessions.ConfigurationError):
        SessionChatStore("sqlite://")  # type: ignore[arg-type]


def test_stored_message_without_a_chat_role_raises(framework_store: sessions.Session) -> None:
    framework_store.append("bad", [{"envelope": {"v": 99}}])  # e.g. written through a wrapper
    with pytest.raises(sessions.CorruptRecordError):
        SessionChatStore(framework_store).get_messages("bad")


def test_serialisation(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'chat.db'}"
    chat_store = SessionChatStore.from_url(url, window=7)
    chat_store.add_message("k", MESSAGES[2])
    data = chat_store.to_dict()
    assert data == {"window": 7, "url": url, "class_name": "SessionChatStore"}
    reopened = SessionChatStore.from_dict(data)
    assert reopened.window == 7 and reopened.get_messages("k") == [MESSAGES[2]]
    memory = ChatMemoryBuffer.from_defaults(chat_store=chat_store, chat_store_key="k")
    assert memory.to_dict()["chat_store"] == data

    unserialisable = SessionChatStore(sessions.MemorySession())
    with pytest.raises(sessions.ConfigurationError, match="from_url"):
        unserialisable.to_dict()
    with pytest.raises(ValueError, match="from_url"):  # pydantic wraps it
        ChatMemoryBuffer.from_defaults(chat_store=unserialisable).to_dict()
    with pytest.raises(sessions.ConfigurationError):
        SessionChatStore.from_dict({"class_name": "SimpleChatStore", "store": {}})


# -- inside LlamaIndex -------------------------------------------------------------------------


def _llm() -> MockLLM:
    return MockLLM(max_tokens=4)


def test_simple_chat_engine_keeps_its_history(framework_store: sessions.Session) -> None:
    memory = ChatMemoryBuffer.from_defaults(
        chat_store=SessionChatStore(framework_store), chat_store_key="conv", token_limit=2000
    )
    engine = SimpleChatEngine.from_defaults(llm=_llm(), memory=memory)
    for question in ("one", "two", "three"):
        assert str(engine.chat(question)) == "text text text text"
    stored = framework_store.get("conv")
    assert [(m["role"], m["content"]) for m in stored] == [
        ("user", "one"), ("assistant", "text text text text"),
        ("user", "two"), ("assistant", "text text text text"),
        ("user", "three"), ("assistant", "text text text text"),
    ]
    # A new engine over the same store continues the conversation.
    again = SimpleChatEngine.from_defaults(llm=_llm(), memory=ChatMemoryBuffer.from_defaults(
        chat_store=SessionChatStore(framework_store), chat_store_key="conv"))
    assert [m.content for m in again.chat_history][:2] == ["one", "text text text text"]
    engine.reset()
    assert framework_store.get("conv") == []


async def test_simple_chat_engine_async_with_window(framework_store: sessions.Session) -> None:
    framework_store.append("long", [{"role": "user" if i % 2 == 0 else "assistant", "content": f"m{i}"}
                                    for i in range(100)])
    chat_store = SessionChatStore(framework_store, window=10)
    engine = SimpleChatEngine.from_defaults(
        llm=_llm(), memory=ChatMemoryBuffer.from_defaults(chat_store=chat_store, chat_store_key="long"))
    await engine.achat("next")
    assert len(engine.chat_history) == 10
    stored = framework_store.get("long")
    assert len(stored) == 102
    assert stored[-2:] == [{"role": "user", "content": "next"},
                           {"role": "assistant", "content": "text text text text"}]


class _FixedRetriever(BaseRetriever):
    def _retrieve(self, query_bundle: QueryBundle) -> list[NodeWithScore]:
        return [NodeWithScore(node=TextNode(text="The sky is green on Tuesdays."), score=1.0)]


@pytest.mark.parametrize("engine_class", [ContextChatEngine, CondensePlusContextChatEngine])
def test_context_chat_engines(framework_store: sessions.Session, engine_class: Any) -> None:
    memory = ChatMemoryBuffer.from_defaults(
        chat_store=SessionChatStore(framework_store), chat_store_key="ctx", token_limit=2000
    )
    engine = engine_class.from_defaults(retriever=_FixedRetriever(), llm=_llm(), memory=memory)
    engine.chat("What colour is the sky?")
    engine.chat("And on Wednesdays?")
    stored = framework_store.get("ctx")
    assert [m["role"] for m in stored] == ["user", "assistant", "user", "assistant"]
    assert stored[0]["content"] == "What colour is the sky?"
    assert stored[2]["content"] == "And on Wednesdays?"


# -- Memory and SessionDBChatStore -----------------------------------------------------------


def _turn(i: int) -> list[ChatMessage]:
    return [ChatMessage(role="user", content=f"question {i} " + "word " * 20),
            ChatMessage(role="assistant", content=f"answer {i} " + "word " * 20)]


def test_memory_archives_into_the_same_session(framework_store: sessions.Session) -> None:
    db_store = SessionDBChatStore(framework_store)
    memory = Memory.from_defaults(session_id="mem", chat_store=db_store,
                                  token_limit=200, token_flush_size=40)
    sent = []
    for i in range(8):
        for message in _turn(i):
            memory.put(message)
            sent.append(message)
    # The session holds the whole conversation in order; Memory sees only the active tail.
    assert framework_store.get("mem") == [to_canonical(m) for m in sent]
    active = memory.get_all(status=MessageStatus.ACTIVE)
    archived = memory.get_all(status=MessageStatus.ARCHIVED)
    assert archived, "the token limit must have forced archiving"
    assert archived + active == sent
    assert memory.get_all() == sent
    assert memory.get() == active
    mark = framework_store.get("mem" + MEMORY_STATE_SUFFIX)
    assert mark[0]["llamaindex_memory"]["archived"] == len(archived)
    assert asyncio.run(db_store.get_keys()) == ["mem"]
    # Other frameworks read (and LlamaIndex's plain chat store reads) the full history.
    assert SessionChatStore(framework_store).get_messages("mem") == sent
    memory.reset()
    assert framework_store.get("mem") == []
    assert framework_store.info("mem" + MEMORY_STATE_SUFFIX) is None


def test_memory_from_defaults_with_history_and_engine(framework_store: sessions.Session) -> None:
    history = _turn(0)
    memory = Memory.from_defaults(session_id="m2", chat_store=SessionDBChatStore(framework_store),
                                  chat_history=history, token_limit=5000)
    engine = SimpleChatEngine.from_defaults(llm=_llm(), memory=memory)
    engine.chat("hello")
    stored = framework_store.get("m2")
    assert stored[:2] == [to_canonical(m) for m in history]
    assert stored[2:] == [{"role": "user", "content": "hello"},
                          {"role": "assistant", "content": "text text text text"}]


async def test_db_chat_store_methods(framework_store: sessions.Session) -> None:
    db = SessionDBChatStore(framework_store)
    msgs = [ChatMessage(role="user", content=str(i)) for i in range(8)]
    assert await db.get_messages("k") == [] and await db.count_messages("k") == 0
    assert await db.archive_oldest_messages("k", 3) == []
    await db.add_messages("k", msgs[:6])
    assert await db.archive_oldest_messages("k", 2) == msgs[:2]
    assert await db.count_messages("k") == 4
    assert await db.count_messages("k", status=MessageStatus.ARCHIVED) == 2
    assert await db.count_messages("k", status=None) == 6
    assert await db.get_messages("k", limit=2, offset=1) == msgs[3:5]
    assert await db.get_messages("k", status=MessageStatus.ARCHIVED, offset=1) == msgs[1:2]
    assert await db.get_messages("k", status=None, offset=5, limit=9) == msgs[5:6]

    # Archived messages added while active ones exist go after the archived ones.
    await db.add_message("k", msgs[6], status=MessageStatus.ARCHIVED)
    assert await db.get_messages("k", status=None) == [*msgs[:2], msgs[6], *msgs[2:6]]
    assert await db.get_messages("k", status=MessageStatus.ARCHIVED) == [*msgs[:2], msgs[6]]
    await db.add_message("k", msgs[7])
    assert await db.get_messages("k") == [*msgs[2:6], msgs[7]]

    assert await db.delete_message("k", 1) == msgs[1]  # a position in the whole conversation
    assert await db.delete_message("k", 99) is None
    assert await db.count_messages("k", status=MessageStatus.ARCHIVED) == 2
    assert await db.delete_oldest_messages("k", 2) == msgs[2:4]
    assert await db.get_messages("k") == [msgs[4], msgs[5], msgs[7]]

    await db.delete_messages("k", status=MessageStatus.ARCHIVED)
    assert await db.get_messages("k", status=None) == [msgs[4], msgs[5], msgs[7]]
    assert await db.count_messages("k", status=MessageStatus.ARCHIVED) == 0
    await db.archive_oldest_messages("k", 1)
    await db.delete_messages("k", status=MessageStatus.ACTIVE)
    assert await db.get_messages("k", status=None) == [msgs[4]]

    await db.set_messages("k", msgs[:3], status=MessageStatus.ARCHIVED)
    assert await db.get_messages("k") == []
    assert await db.get_messages("k", status=MessageStatus.ARCHIVED) == msgs[:3]
    await db.set_messages("k", msgs[:2])
    assert await db.get_messages("k") == msgs[:2]
    await db.add_messages("other", msgs[:1], status=MessageStatus.ARCHIVED)
    assert sorted(await db.get_keys()) == ["k", "other"]
    await db.delete_messages("k")
    assert await db.get_keys() == ["other"]
    with pytest.raises(sessions.InvalidArgumentError):
        await db.get_messages("k", limit=-1)
    with pytest.raises(sessions.InvalidArgumentError):
        await db.count_messages("k", status="deleted")  # type: ignore[arg-type]
    assert await db.count_messages("other", status="archived") == 1  # type: ignore[arg-type]


async def test_db_chat_store_mark_goes_stale_when_history_is_rewritten(
        framework_store: sessions.Session) -> None:
    db = SessionDBChatStore(framework_store)
    await db.add_messages("k", _turn(0) + _turn(1))
    await db.archive_oldest_messages("k", 3)
    framework_store.replace("k", [{"role": "user", "content": "rewritten"}])
    assert await db.count_messages("k") == 1
    assert await db.get_messages("k", status=MessageStatus.ARCHIVED) == []
    assert await db.get_messages("k") == [ChatMessage(role="user", content="rewritten")]


async def test_db_chat_store_bad_input_leaves_the_store_untouched(
        framework_store: sessions.Session) -> None:
    db = SessionDBChatStore(framework_store)
    msgs = _turn(0)
    await db.add_messages("k", msgs)
    await db.archive_oldest_messages("k", 1)
    for status in (MessageStatus.ACTIVE, MessageStatus.ARCHIVED):
        with pytest.raises(sessions.InvalidMessageError):
            await db.add_messages("k", [msgs[0], "not a message"], status=status)  # type: ignore[list-item]
        with pytest.raises(sessions.InvalidMessageError):
            await db.set_messages("k", [object()], status=status)  # type: ignore[list-item]
    with pytest.raises(sessions.InvalidArgumentError):
        await db.delete_message("k", None)  # type: ignore[arg-type]
    assert await db.get_messages("k", status=None) == msgs
    assert await db.count_messages("k", status=MessageStatus.ARCHIVED) == 1
    with pytest.raises(sessions.ConfigurationError):
        SessionDBChatStore(object())  # type: ignore[arg-type]


def test_db_chat_store_refuses_a_session_id_too_long_for_its_state() -> None:
    db = SessionDBChatStore(sessions.MemorySession())
    with pytest.raises(sessions.InvalidSessionIdError):
        asyncio.run(db.count_messages("x" * 1024))



def _add(a: int = 2, b: int = 3) -> int:
    """Add two numbers."""
    return a + b


async def test_function_agent_tool_calls_are_stored_canonically(framework_store: sessions.Session) -> None:
    from llama_index.core.agent.workflow import FunctionAgent
    from llama_index.core.llms.mock import MockFunctionCallingLLM
    from llama_index.core.tools import FunctionTool

    earlier = [  # written by another framework
        {"role": "developer", "content": "Use the tools."},
        {"role": "user", "content": "Hello", "id": "m-1"},
        {"role": "assistant", "content": "Hi!", "id": "m-2"},
    ]
    framework_store.append("agent", earlier)
    memory = Memory.from_defaults(session_id="agent", chat_store=SessionDBChatStore(framework_store))
    agent = FunctionAgent(tools=[FunctionTool.from_defaults(_add)], llm=MockFunctionCallingLLM())
    assert str(await agent.run("add please", memory=memory)) == "Tool calls complete."

    stored = framework_store.get("agent")
    assert stored[:3] == earlier  # untouched
    user, call, result, answer = stored[3:]
    assert user == {"role": "user", "content": "add please"}
    (tool_call,) = call["tool_calls"]
    assert call["role"] == "assistant" and call["content"] is None
    assert tool_call["function"] == {"name": "_add", "arguments": '{"a":2,"b":3}'}
    assert result == {"role": "tool", "tool_call_id": tool_call["id"], "content": "5"}
    assert answer == {"role": "assistant", "content": "Tool calls complete."}
    history = await memory.aget_all()
    assert history[1] == ChatMessage(role="user", content="Hello")
    assert history[4].blocks == [
        ToolCallBlock(tool_call_id=tool_call["id"], tool_name="_add", tool_kwargs={"a": 2, "b": 3})]


async def test_memory_async_api(framework_store: sessions.Session) -> None:
    memory = Memory.from_defaults(session_id="am", chat_store=SessionDBChatStore(framework_store),
                                  token_limit=200, token_flush_size=40)
    sent = [message for i in range(6) for message in _turn(i)]
    await memory.aput_messages(sent[:4])
    for message in sent[4:]:
        await memory.aput(message)
    assert await memory.aget_all() == sent
    assert await memory.aget_all(status=MessageStatus.ARCHIVED)
    await memory.aset(sent[:2])
    assert framework_store.get("am") == [to_canonical(m) for m in sent[:2]]
    assert await memory.aget_all(status=MessageStatus.ARCHIVED) == []
    await memory.areset()
    assert framework_store.get("am") == []


def test_example_runs_offline(tmp_path: Path) -> None:
    import os
    import subprocess
    import sys

    root = Path(__file__).resolve().parent.parent
    env = {key: value for key, value in os.environ.items()
           if key not in ("OPENAI_API_KEY", "SESSIONS_URL")}
    env["PYTHONPATH"] = str(root)
    for run in (1, 2):
        done = subprocess.run([sys.executable, str(root / "examples" / "llamaindex_chat_engine.py")],
                              cwd=tmp_path, env=env, capture_output=True, text=True, timeout=120)
        assert done.returncode == 0, done.stderr
        assert "MockLLM" in done.stdout
        assert ("Continuing a conversation of 4 stored messages" in done.stdout) == (run == 2)
    with sessions.SQLiteSession(tmp_path / "llamaindex_example.db") as store:
        assert store.count("llamaindex-example") == 8
