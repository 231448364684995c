"""SessionHistoryMiddleware reads the session afresh every run and converts only what changed.

The LangChain messages built from a read are kept and used again only where the fresh
read holds an equal message: whatever changed in the store (another framework's rewrite,
a clear, a sliding window) reaches the model, and nothing the store no longer holds does.
"""

from __future__ import annotations

import asyncio
import copy
import os
import signal
import threading
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from langchain.agents import create_agent
from langchain_core.messages import AIMessage, BaseMessage, HumanMessage

from adapters.langchain import SessionHistoryMiddleware, from_canonical, to_canonical
from adapters.langchain._cache import HistoryCache
from adapters.langchain._view import view_of
from adapters.llamaindex import SessionChatStore
from sessions import InvalidArgumentError, MemorySession, Message
from sessions.view import RESPONSES_ONLY_KEY
from tests.langchain_models import ScriptedChatModel

HISTORY: list[Message] = [
    {"role": "user" if n % 2 == 0 else "assistant", "content": f"message {n}"} for n in range(20)
]


def agent_for(store: MemorySession, model: ScriptedChatModel, **options: Any) -> Any:
    return create_agent(model, [], middleware=[SessionHistoryMiddleware(store, **options)])


def with_history(*replies: str, **options: Any) -> tuple[MemorySession, ScriptedChatModel, Any]:
    """A store holding HISTORY in session "s", a model with ``replies``, and its agent."""
    store = MemorySession()
    store.append("s", HISTORY)
    model = ScriptedChatModel(*replies)
    return store, model, agent_for(store, model, **options)


def run(agent: Any, text: str, session_id: str = "s") -> None:
    agent.invoke({"messages": [HumanMessage(text)]}, {"configurable": {"session_id": session_id}})


def read_as(messages: list[BaseMessage]) -> list[Message]:
    """The canonical form of messages the model was sent, without the ids they were given."""
    return [{k: v for k, v in to_canonical(m).items() if k != "id"} for m in messages]


def uncached(stored: list[Message]) -> list[Message]:
    """What a read without the cache gives the model, in canonical form."""
    return read_as([from_canonical(m) for m in view_of(stored).messages])


def texts(messages: list[BaseMessage]) -> list[Any]:
    return [m.content for m in messages]


def test_an_unchanged_history_is_not_converted_again() -> None:
    _store, model, agent = with_history("one", "two", "three")
    run(agent, "first")
    run(agent, "second")
    first, second = model.sent[0][:-1], model.sent[1][:-3]
    # The same objects reach the model: nothing was converted twice.
    assert len(first) == 20 and all(a is b for a, b in zip(first, second, strict=True))
    # The first run's own messages, read back from the store, come after them.
    assert texts(model.sent[1][20:]) == ["first", "one", "second"]
    run(agent, "third")
    assert all(a is b for a, b in zip(model.sent[1][:-1], model.sent[2][:-3], strict=True))


def test_a_rewrite_by_another_framework_reaches_the_next_run() -> None:
    store, model, agent = with_history("one", "two")
    run(agent, "first")
    # LlamaIndex edits message 5 in place: the count of messages stays the same.
    chat_store = SessionChatStore(store)
    edited = chat_store.get_messages("s")
    edited[5].blocks[0].text = "edited by LlamaIndex"  # type: ignore[union-attr]
    chat_store.set_messages("s", edited)
    run(agent, "second")
    sent = model.sent[1]
    assert sent[5].content == "edited by LlamaIndex"
    # Every other message is the one converted before.
    assert all(a is b for i, (a, b) in enumerate(zip(model.sent[0][:-1], sent[:20], strict=True)) if i != 5)


def test_a_cleared_or_shortened_session_is_read_as_it_is() -> None:
    store, model, agent = with_history("one", "two", "three")
    run(agent, "first")
    store.clear("s")
    run(agent, "second")
    assert texts(model.sent[1]) == ["second"]
    store.pop("s")
    run(agent, "third")
    assert texts(model.sent[2]) == ["second", "third"]


def test_a_sliding_window_converts_only_the_messages_it_gains() -> None:
    _store, model, agent = with_history("one", "two", limit=10)
    run(agent, "first")
    run(agent, "second")
    before, after = model.sent[0][:-1], model.sent[1][:-1]
    assert texts(before) == [f"message {n}" for n in range(10, 20)]
    assert texts(after) == [*(f"message {n}" for n in range(12, 20)), "first", "one"]
    assert all(a is b for a, b in zip(before[2:], after[:8], strict=True))


def test_the_cache_is_the_model_view_a_fresh_read_gives() -> None:
    """Whatever is cached, the history is what an uncached read converts."""
    store = MemorySession()
    exchange: list[Message] = [
        {"role": "user", "content": "Weather?"},
        # An Anthropic-style assistant message: text and a tool_use block, never answered.
        to_canonical(AIMessage(
            content=[{"type": "text", "text": "Looking."},
                     {"type": "tool_use", "id": "t1", "name": "weather", "input": {}}],
            tool_calls=[{"id": "t1", "name": "weather", "args": {}}])),
        {"role": "user", "content": "Never mind."},
    ]
    store.append("s", exchange)
    model = ScriptedChatModel("one", "two")
    agent = agent_for(store, model, cache_size=100)
    run(agent, "first")
    sent = model.sent[0]
    assert read_as(sent[:3]) == uncached(exchange)
    # The removed call's tool_use block is gone with the call: a provider would send it.
    assert sent[1].content == [{"type": "text", "text": "Looking."}] and not sent[1].tool_calls
    run(agent, "second")
    assert read_as(model.sent[1]) == uncached(store.get("s")[:-1])


def test_the_cache_is_bounded_and_can_be_turned_off() -> None:
    cache = HistoryCache(25)
    for session in ("a", "b", "c"):
        cache.read(session, HISTORY[:10])
    assert len(cache) == 20  # "a" was dropped to stay within 25
    again = cache.read("a", HISTORY[:10])
    assert len(cache) == 20 and len(again) == 10
    too_long = HistoryCache(5)
    too_long.read("a", HISTORY)
    assert len(too_long) == 0
    _store, model, agent = with_history("one", "two", cache_size=0)
    run(agent, "first")
    run(agent, "second")
    assert not any(a is b for a, b in zip(model.sent[0][:-1], model.sent[1][:20], strict=True))
    assert texts(model.sent[1][:20]) == texts(model.sent[0][:20])


def test_a_tool_call_answered_after_the_last_read_is_shown_with_its_result() -> None:
    store = MemorySession()
    asks: Message = {"role": "assistant", "content": None, "tool_calls": [
        {"id": "c1", "type": "function", "function": {"name": "weather", "arguments": "{}"}}]}
    store.append("s", [{"role": "user", "content": "Weather?"}, asks])
    cache = HistoryCache()
    assert texts(cache.read("s", store.get("s"))) == ["Weather?"]  # the call has no result yet
    # Another framework's run completes the exchange.
    store.append("s", [{"role": "tool", "tool_call_id": "c1", "content": "Sunny."},
                       {"role": "assistant", "content": "It is sunny."}])
    read = cache.read("s", store.get("s"))
    assert texts(read) == ["Weather?", "", "Sunny.", "It is sunny."]
    assert [c["id"] for c in read[1].tool_calls] == ["c1"]  # type: ignore[attr-defined]
    assert read_as(read) == uncached(store.get("s"))


def test_appended_messages_are_viewed_with_what_was_read_before() -> None:
    store = MemorySession()
    store.append("s", HISTORY)
    cache = HistoryCache()
    first = cache.read("s", store.get("s"))
    # An orphaned tool result, a Responses-only item and a plain message are appended.
    store.append("s", [{"role": "tool", "tool_call_id": "nowhere", "content": "?"},
                       {"role": "assistant", "content": "", RESPONSES_ONLY_KEY: True},
                       {"role": "user", "content": "next"}])
    second = cache.read("s", store.get("s"))
    assert all(a is b for a, b in zip(first, second[:20], strict=True))
    assert texts(second[20:]) == ["next"]
    assert read_as(second) == uncached(store.get("s"))


@pytest.mark.parametrize("size", [-1, 1.5, "10", True])
def test_a_bad_cache_size_is_refused(size: Any) -> None:
    with pytest.raises(InvalidArgumentError, match="cache_size"):
        SessionHistoryMiddleware(MemorySession(), cache_size=size)


def test_cached_messages_keep_their_ids_and_an_input_with_the_same_id_gets_a_copy() -> None:
    store = MemorySession()
    store.append("s", [{"role": "user", "content": "no id"}, {"role": "assistant", "content": "none"}])
    model = ScriptedChatModel("one", "two")
    agent = agent_for(store, model)
    run(agent, "first")
    given = model.sent[0][0]
    assert given.id is not None
    # The next run's input has the id of a history message (a resent message object).
    agent.invoke({"messages": [HumanMessage("again", id=given.id)]}, {"configurable": {"session_id": "s"}})
    history = model.sent[1]
    assert history[0].id != given.id and history[0].content == "no id"
    assert given.id == model.sent[0][0].id  # the cached message itself is unchanged
    assert history[-1].id == given.id and history[-1].content == "again"


def test_interleaved_sessions_and_threads_each_read_their_own_history() -> None:
    store = MemorySession()
    for session in ("alice", "bob"):
        store.append(session, [{"role": "user", "content": f"{session} {n}"} for n in range(50)])

    def echo(sent: list[BaseMessage]) -> str:
        return f"echo {sent[-1].content}"

    agent = agent_for(store, ScriptedChatModel(*[echo] * 40), cache_size=60)
    errors: list[BaseException] = []

    def worker(session: str) -> None:
        try:
            for n in range(10):
                run(agent, f"{session} run {n}", session)
        except BaseException as error:
            errors.append(error)

    threads = [threading.Thread(target=worker, args=(s,)) for s in ("alice", "bob") for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    for session in ("alice", "bob"):
        said = [m["content"] for m in store.get(session)]
        assert len(said) == 90 and all(session in text for text in said)


def test_the_async_path_uses_the_cache_too() -> None:
    _store, model, agent = with_history("one", "two")

    async def two_runs() -> None:
        for text in ("first", "second"):
            await agent.ainvoke({"messages": [HumanMessage(text)]}, {"configurable": {"session_id": "s"}})

    asyncio.run(two_runs())
    assert all(a is b for a, b in zip(model.sent[0][:-1], model.sent[1][:20], strict=True))


# -- any sequence of reads gives what an uncached read gives ---------------------------------

_text = st.sampled_from(["a", "b", "", "ü"])
_call_ids = st.sampled_from(["c1", "c2"])
_stored = st.one_of(
    st.builds(lambda r, c: {"role": r, "content": c},
              st.sampled_from(["user", "assistant", "system"]), _text),
    st.builds(lambda c, i: {"role": "assistant", "content": c, "tool_calls": [
        {"id": i, "type": "function", "function": {"name": "f", "arguments": "{}"}}]},
        st.one_of(st.none(), _text), _call_ids),
    st.builds(lambda c, i: {"role": "tool", "tool_call_id": i, "content": c}, _text, _call_ids),
    st.just({"role": "assistant", "content": "", RESPONSES_ONLY_KEY: True}),
)
# How the session changes between two reads: messages appended, one rewritten, the
# oldest dropped (a window sliding on), the last popped, or the whole session cleared.
_change = st.one_of(
    st.tuples(st.just("append"), st.lists(_stored, min_size=1, max_size=4)),
    st.tuples(st.just("rewrite"), st.tuples(st.integers(min_value=0), _stored)),
    st.tuples(st.just("slide"), st.integers(min_value=1, max_value=3)),
    st.tuples(st.just("pop"), st.none()),
    st.tuples(st.just("clear"), st.none()),
)


def _changed(history: list[Message], change: tuple[str, Any]) -> list[Message]:
    kind, value = change
    if kind == "append":
        return [*history, *value]
    if kind == "rewrite" and history:
        at, message = value
        return [*history[:at % len(history)], message, *history[at % len(history) + 1:]]
    if kind == "slide":
        return history[value:]
    if kind == "pop":
        return history[:-1]
    return [] if kind == "clear" else history


@settings(max_examples=300, deadline=None)
@given(st.lists(_stored, max_size=8), st.lists(_change, max_size=8), st.integers(min_value=0, max_value=30))
def test_every_read_is_what_an_uncached_read_gives(history: list[Message], changes: list[tuple[str, Any]],
                                                   size: int) -> None:
    cache = HistoryCache(size)
    for change in [("append", []), *changes]:
        history = _changed(history, change)
        fresh = copy.deepcopy(history)  # a store's get: new dicts every time
        read = cache.read("s", fresh)
        assert read_as(read) == uncached(history)
        ids = [message.id for message in read]
        assert None not in ids and len(set(ids)) == len(ids)
        assert fresh == history, "reading changed the records"


@pytest.mark.skipif(not hasattr(os, "fork"), reason="needs os.fork")
def test_a_process_forked_while_another_thread_keeps_a_read_can_read() -> None:
    cache = HistoryCache()
    cache.read("s", HISTORY)
    cache._lock.acquire()  # another thread is keeping a read when the process forks
    releasing = threading.Timer(0.2, cache._lock.release)
    releasing.start()
    pid = os.fork()
    if pid == 0:  # the child: it must not wait for a lock no thread of its own holds
        signal.alarm(10)
        try:
            ok = texts(cache.read("s", copy.deepcopy(HISTORY))) == texts(cache.read("t", HISTORY))
        except BaseException:
            ok = False
        os._exit(0 if ok else 1)
    releasing.join()
    _, status = os.waitpid(pid, 0)
    assert os.waitstatus_to_exitcode(status) == 0
    assert len(cache.read("s", copy.deepcopy(HISTORY))) == 20  # and the parent goes on
