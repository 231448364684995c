"""ConversationsSession against the local Conversations API server, through the real
``openai`` client. The contract itself is checked by the conformance suite."""

from __future__ import annotations

import asyncio
import json
import multiprocessing
import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import openai
import pytest

import sessions
from sessions import ConversationsSession
from tests.conformance.messages import ASSISTANT_TOOL_CALLS, TOOL_1, TOOL_2, USER, USER_PARTS, text
from tests.conversations_server import ConversationsServer


@pytest.fixture
def server() -> Iterator[ConversationsServer]:
    started = ConversationsServer()
    yield started
    started.stop()


def make_client(server: ConversationsServer) -> openai.OpenAI:
    return openai.OpenAI(api_key="test-key", base_url=server.base_url, max_retries=0)


@pytest.fixture
def client(server: ConversationsServer) -> Iterator[openai.OpenAI]:
    made = make_client(server)
    yield made
    made.close()


@pytest.fixture
def id_map(tmp_path: Path) -> Path:
    return tmp_path / "map.db"


@pytest.fixture
def conv_store(client: openai.OpenAI, id_map: Path) -> Iterator[ConversationsSession]:
    with ConversationsSession(client, id_map=id_map) as opened:
        yield opened


def items_of(server: ConversationsServer, conversation_id: str) -> list[dict[str, Any]]:
    return server.live(conversation_id).items


def conversation_of(store: ConversationsSession, session_id: str) -> str:
    mapped = store.map.lookup(session_id)
    assert mapped is not None
    return mapped.conversation_id


TOOL_TURN = [
    {"role": "user", "content": "Weather and time in Oslo?"},
    {
        "role": "assistant",
        "content": "Let me check.",
        "tool_calls": [
            {"id": "call_1", "type": "function",
             "function": {"name": "weather", "arguments": '{"city":"Oslo"}'}},
            {"id": "call_2", "type": "function", "function": {"name": "time", "arguments": "{}"}},
        ],
    },
    {"role": "tool", "tool_call_id": "call_1", "content": "-3 °C"},
    {"role": "tool", "tool_call_id": "call_2", "content": "12:00"},
    {"role": "assistant", "content": "-3 °C at noon."},
]


# -- writing: batches of at most 20 items, in order ------------------------------------------


def test_45_messages_are_sent_in_three_creates(conv_store: ConversationsSession,
                                               server: ConversationsServer) -> None:
    conv_store.append("s", [text(i) for i in range(45)])
    creates = server.requests_to("POST", "/items")
    assert [len(r.body["items"]) for r in creates] == [20, 20, 5]
    conversation = items_of(server, conversation_of(conv_store, "s"))
    assert [i["content"][0]["text"] for i in conversation] == [f"message {i}" for i in range(45)]
    assert conv_store.get("s") == [text(i) for i in range(45)]
    assert conv_store.count("s") == 45


def test_no_create_ever_carries_more_than_20_items(conv_store: ConversationsSession,
                                                   server: ConversationsServer) -> None:
    # 30 messages of 3 items each: chunks cut through messages, order is kept.
    turn = {**ASSISTANT_TOOL_CALLS, "content": "with text"}
    conv_store.append("s", [turn] * 30)
    conv_store.replace("s", [turn] * 8 + [text(0)])
    sizes = [len(r.body["items"]) for r in server.requests_to("POST", "/items")]
    assert max(sizes) == 20 and sum(sizes) == 90 + 25
    assert conv_store.get("s") == [turn] * 8 + [text(0)]
    assert all(not r.body.get("items") for r in server.requests_to("POST", "/conversations"))


def test_a_failed_chunk_leaves_nothing_behind(conv_store: ConversationsSession,
                                              server: ConversationsServer) -> None:
    conv_store.append("s", [text(0)])
    server.fail_items_create = (3, 503)  # the second create of the next append
    with pytest.raises(sessions.BackendUnavailableError) as caught:
        conv_store.append("s", [text(i) for i in range(1, 46)])
    assert isinstance(caught.value.__cause__, openai.InternalServerError)
    assert len(server.requests_to("POST", "/items")) == 3
    assert conv_store.get("s") == [text(0)]
    assert len(items_of(server, conversation_of(conv_store, "s"))) == 1
    assert conv_store.count("s") == 1


def test_a_failed_replace_keeps_the_old_history(conv_store: ConversationsSession,
                                                server: ConversationsServer) -> None:
    conv_store.append("s", [text(0), text(1)])
    old = conversation_of(conv_store, "s")
    server.fail_items_create = (3, 500)  # the second create of the replacement
    with pytest.raises(sessions.BackendUnavailableError):
        conv_store.replace("s", [text(i) for i in range(10, 40)])
    assert conversation_of(conv_store, "s") == old
    assert conv_store.get("s") == [text(0), text(1)] and conv_store.count("s") == 2
    assert [c.deleted for c in server.conversations.values() if c.id != old] == [True]


# -- reading: ascending pages, the right parts ------------------------------------------------


def test_reads_ask_for_ascending_order_and_follow_cursors(conv_store: ConversationsSession,
                                                          server: ConversationsServer) -> None:
    conv_store.append("s", [text(i) for i in range(250)])
    server.requests.clear()
    assert conv_store.get("s") == [text(i) for i in range(250)]
    lists = server.requests_to("GET", "/items")
    assert [r.query.get("order") for r in lists] == ["asc"] * 3
    assert [r.query.get("limit") for r in lists] == ["100"] * 3
    assert "after" not in lists[0].query
    assert lists[1].query["after"] != lists[2].query["after"]


def test_desc_default_is_not_read_as_chronological(server: ConversationsServer, client: openai.OpenAI,
                                                   conv_store: ConversationsSession) -> None:
    # The server lists newest first unless asked otherwise.
    conversation = client.conversations.create()
    client.conversations.items.create(conversation.id, items=[
        {"type": "message", "role": "user", "content": f"m{i}"} for i in range(3)
    ])
    default = client.conversations.items.list(conversation.id)
    assert [item.content[0].text for item in default.data] == ["m2", "m1", "m0"]  # type: ignore[union-attr]
    assert [m["content"] for m in conv_store.get(conversation.id)] == ["m0", "m1", "m2"]
    assert [m["content"] for m in conv_store.get(conversation.id, limit=2)] == ["m1", "m2"]


def test_text_is_read_from_the_right_part_types(server: ConversationsServer, client: openai.OpenAI,
                                                conv_store: ConversationsSession) -> None:
    conversation = client.conversations.create()
    client.conversations.items.create(conversation.id, items=[
        {"type": "message", "role": "user", "content": [
            {"type": "input_text", "text": "Look:"},
            {"type": "input_image", "image_url": "https://example.invalid/a.png", "detail": "high"},
        ]},
        {"type": "message", "role": "assistant", "content": [  # type: ignore[list-item]
            {"type": "output_text", "text": "A cat.", "annotations": []},
        ]},
        {"type": "message", "role": "assistant", "content": [  # type: ignore[list-item]
            {"type": "refusal", "refusal": "I cannot say."},
        ]},
    ])
    assert conv_store.get(conversation.id) == [
        {"role": "user", "content": [
            {"type": "text", "text": "Look:"},
            {"type": "image_url", "image_url": {"url": "https://example.invalid/a.png", "detail": "high"}},
        ]},
        {"role": "assistant", "content": "A cat."},
        {"role": "assistant", "content": [{"type": "refusal", "refusal": "I cannot say."}]},
    ]


def test_limit_reads_only_the_newest_pages(conv_store: ConversationsSession,
                                           server: ConversationsServer) -> None:
    conv_store.append("s", [text(i) for i in range(20)] * 15)
    server.requests.clear()
    assert conv_store.get("s", limit=5) == [text(i) for i in range(15, 20)]
    lists = server.requests_to("GET", "/items")
    assert len(lists) == 1 and lists[0].query["order"] == "desc"
    server.requests.clear()
    assert len(conv_store.get("s", limit=150)) == 150
    assert len(server.requests_to("GET", "/items")) == 2


def test_limit_never_splits_a_message_across_pages(conv_store: ConversationsSession) -> None:
    turn = {**ASSISTANT_TOOL_CALLS, "content": "thinking"}
    history = [text(i) for i in range(97)] + [turn, TOOL_1, TOOL_2] + [turn] * 40 + [text(1)]
    conv_store.append("s", history)
    assert conv_store.get("s") == history
    for limit in (1, 2, 3, 4, 40, 41, 42, 43, 44, 45, 100, 141, 500):
        assert conv_store.get("s", limit=limit) == history[-limit:], limit


# -- conversion ----------------------------------------------------------------------------------


def test_tool_calls_round_trip_as_function_items(conv_store: ConversationsSession,
                                                 server: ConversationsServer) -> None:
    conv_store.append("s", TOOL_TURN)
    items = items_of(server, conversation_of(conv_store, "s"))
    assert [(i["type"], i.get("role")) for i in items] == [
        ("message", "user"), ("message", "assistant"), ("function_call", None), ("function_call", None),
        ("function_call_output", None), ("function_call_output", None), ("message", "assistant"),
    ]
    assert items[1]["content"][0]["type"] == "output_text"
    assert [(i["call_id"], i["name"], i["arguments"]) for i in items[2:4]] == [
        ("call_1", "weather", '{"city":"Oslo"}'), ("call_2", "time", "{}"),
    ]
    assert [(i["call_id"], i["output"]) for i in items[4:6]] == [("call_1", "-3 °C"), ("call_2", "12:00")]
    assert conv_store.get("s") == TOOL_TURN
    assert conv_store.count("s") == 5


def test_images_round_trip_as_input_image(conv_store: ConversationsSession,
                                          server: ConversationsServer) -> None:
    image = {"role": "user", "content": [
        {"type": "text", "text": "What is this?"},
        {"type": "image_url", "image_url": {"url": "data:image/png;base64,iVBORw0KGgo="}},
        {"type": "image_url", "image_url": {"url": "https://example.invalid/b.png", "detail": "low"}},
    ]}
    conv_store.append("s", [image, USER_PARTS])
    items = items_of(server, conversation_of(conv_store, "s"))
    assert [p["type"] for p in items[0]["content"]] == ["input_text", "input_image", "input_image"]
    assert items[0]["content"][1]["image_url"] == "data:image/png;base64,iVBORw0KGgo="
    assert items[0]["content"][2]["detail"] == "low"
    assert conv_store.get("s") == [image, USER_PARTS]


def test_names_and_unknown_keys_are_kept_beside_the_items(
    conv_store: ConversationsSession, server: ConversationsServer, client: openai.OpenAI, id_map: Path
) -> None:
    named = {"role": "user", "content": "hi", "name": "alice", "x-trace": {"id": 7}}
    conv_store.append("s", [named, USER])
    item = items_of(server, conversation_of(conv_store, "s"))[0]
    assert "name" not in item and "x-trace" not in item  # the API cannot hold them
    # ... the map does, so a restarted store returns the message exactly.
    with ConversationsSession(client, id_map=id_map) as again:
        assert again.get("s") == [named, USER]
    # A store with another map reads what the server holds.
    with ConversationsSession(client, id_map=id_map.with_name("other.db")) as elsewhere:
        assert elsewhere.get(conversation_of(conv_store, "s")) == [{"role": "user", "content": "hi"}, USER]


def test_envelopes_are_refused_and_nothing_is_stored(conv_store: ConversationsSession,
                                                     server: ConversationsServer) -> None:
    conv_store.append("s", [text(0)])
    before = len(server.requests)
    with pytest.raises(sessions.InvalidMessageError) as caught:
        conv_store.append("s", [text(1), {"envelope": {"v": 1, "data": "..."}}])
    assert caught.value.index == 1 and "envelope" in str(caught.value)
    assert len(server.requests) == before
    assert conv_store.get("s") == [text(0)]


def test_malformed_tool_call_is_refused(conv_store: ConversationsSession) -> None:
    bad = {"role": "assistant", "content": None, "tool_calls": [{"id": "c", "type": "function"}]}
    with pytest.raises(sessions.InvalidMessageError) as caught:
        conv_store.append("s", [text(0), bad])
    assert caught.value.index == 1
    assert conv_store.info("s") is None


# -- pop, clear, delete --------------------------------------------------------------------------


def test_pop_deletes_every_item_of_a_multi_item_message(conv_store: ConversationsSession,
                                                        server: ConversationsServer) -> None:
    conv_store.append("s", TOOL_TURN[:2])
    conversation_id = conversation_of(conv_store, "s")
    assert len(items_of(server, conversation_id)) == 4
    assert conv_store.pop("s") == TOOL_TURN[1]
    assert len(server.requests_to("DELETE")) == 3
    assert [i["type"] for i in items_of(server, conversation_id)] == ["message"]
    assert conv_store.get("s") == TOOL_TURN[:1] and conv_store.count("s") == 1
    assert conv_store.pop("s") == TOOL_TURN[0]
    assert conv_store.pop("s") is None


def test_clear_moves_the_session_to_a_fresh_conversation(conv_store: ConversationsSession,
                                                         server: ConversationsServer) -> None:
    conv_store.append("s", [text(0), text(1)])
    old = conversation_of(conv_store, "s")
    created = conv_store.info("s")
    conv_store.clear("s")
    new = conversation_of(conv_store, "s")
    assert new != old
    assert server.conversations[old].deleted
    assert len(server.conversations[old].items) == 2  # the API keeps items of deleted conversations
    info = conv_store.info("s")
    assert info is not None and created is not None and info.created_at == created.created_at
    assert conv_store.get("s") == []


def test_delete_deletes_the_conversation(conv_store: ConversationsSession,
                                         server: ConversationsServer) -> None:
    conv_store.append("s", [text(0)])
    conversation_id = conversation_of(conv_store, "s")
    conv_store.delete("s")
    assert server.conversations[conversation_id].deleted
    assert conv_store.map.lookup("s") is None
    conv_store.append("s", [text(1)])
    assert conversation_of(conv_store, "s") != conversation_id


# -- ids and the durable map ---------------------------------------------------------------------


def test_a_restarted_store_finds_the_same_conversation(client: openai.OpenAI, id_map: Path,
                                                       server: ConversationsServer) -> None:
    with ConversationsSession(client, id_map=id_map) as first:
        first.append("alice", TOOL_TURN)
        conversation_id = conversation_of(first, "alice")
    with ConversationsSession(client, id_map=id_map) as second:
        assert second.get("alice") == TOOL_TURN
        second.append("alice", [text(9)])
        assert conversation_of(second, "alice") == conversation_id
        assert second.count("alice") == 6
        assert list(second.list_sessions()) == ["alice"]
    assert len(server.requests_to("POST", "/conversations")) == 1


def test_conversation_ids_are_used_directly(conv_store: ConversationsSession, client: openai.OpenAI,
                                            server: ConversationsServer) -> None:
    conversation = client.conversations.create(items=[{"type": "message", "role": "user", "content": "x"}])
    assert conv_store.get(conversation.id) == [{"role": "user", "content": "x"}]
    assert conv_store.count(conversation.id) == 1
    conv_store.append(conversation.id, [text(1)])
    assert len(items_of(server, conversation.id)) == 2
    assert conv_store.count(conversation.id) == 2
    conv_store.replace(conversation.id, [text(2)])
    assert conv_store.get(conversation.id) == [text(2)]
    conv_store.clear(conversation.id)
    assert items_of(server, conversation.id) == []
    assert len(server.requests_to("POST", "/conversations")) == 1


def test_unknown_conversation_id_reads_empty_and_refuses_writes(conv_store: ConversationsSession) -> None:
    assert conv_store.get("conv_doesnotexist") == []
    assert conv_store.info("conv_doesnotexist") is None
    with pytest.raises(sessions.InvalidSessionIdError):
        conv_store.append("conv_doesnotexist", [USER])


def test_a_conversation_deleted_elsewhere_is_reported(conv_store: ConversationsSession,
                                                      client: openai.OpenAI) -> None:
    conv_store.append("s", [USER])
    client.conversations.delete(conversation_of(conv_store, "s"))
    with pytest.raises(sessions.CorruptRecordError) as caught:
        conv_store.get("s")
    assert caught.value.session_id == "s" and isinstance(caught.value.__cause__, openai.NotFoundError)
    with pytest.raises(sessions.CorruptRecordError):
        conv_store.append("s", [USER])
    conv_store.delete("s")
    conv_store.append("s", [USER])
    assert conv_store.get("s") == [USER]


def test_concurrent_first_appends_from_threads_create_one_conversation(
    conv_store: ConversationsSession, server: ConversationsServer
) -> None:
    server.create_delay = 0.05
    barrier = threading.Barrier(6)

    def first(n: int) -> None:
        barrier.wait()
        conv_store.append("new", [text(n)])

    threads = [threading.Thread(target=first, args=(n,)) for n in range(6)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(server.requests_to("POST", "/conversations")) == 1
    assert sorted(m["content"] for m in conv_store.get("new")) == [f"message {n}" for n in range(6)]


async def test_concurrent_first_appends_from_tasks_create_one_conversation(
    conv_store: ConversationsSession, server: ConversationsServer
) -> None:
    server.create_delay = 0.05
    await asyncio.gather(*(conv_store.aappend("new", [text(n)]) for n in range(6)))
    assert len(server.requests_to("POST", "/conversations")) == 1
    assert sorted(m["content"] for m in await conv_store.aget("new")) == [f"message {n}" for n in range(6)]


async def test_a_cancelled_append_still_completes(conv_store: ConversationsSession,
                                                  server: ConversationsServer) -> None:
    server.create_delay = 0.3
    task = asyncio.create_task(conv_store.aappend("s", [text(i) for i in range(30)]))
    await asyncio.sleep(0.1)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    for _ in range(100):
        if conv_store.count("s") == 30:
            break
        await asyncio.sleep(0.05)
    assert await conv_store.aget("s") == [text(i) for i in range(30)]


def test_sync_and_async_pops_of_one_session_exclude_each_other(conv_store: ConversationsSession) -> None:
    """A sync pop in a worker thread and an apop on the event loop never take the same
    message: sync and async writers of a session share one lock."""

    async def rounds() -> None:
        for round_ in range(20):
            session_id = f"s{round_}"
            await conv_store.aappend(session_id, [text(i) for i in range(4)])
            in_thread = asyncio.create_task(asyncio.to_thread(conv_store.pop, session_id))
            popped = [await conv_store.apop(session_id), await in_thread]
            assert sorted(m["content"] for m in popped) == ["message 2", "message 3"], round_
            assert conv_store.get(session_id) == [text(0), text(1)]
            assert conv_store.count(session_id) == 2

    asyncio.run(rounds())


def test_writers_on_loops_in_two_threads_exclude_each_other(conv_store: ConversationsSession) -> None:
    conv_store.append("s", [text(i) for i in range(40)])
    popped: list[Any] = []
    barrier = threading.Barrier(2)

    def on_own_loop() -> None:
        async def pops() -> None:
            await asyncio.to_thread(barrier.wait, 10)
            for _ in range(10):
                popped.append(await conv_store.apop("s"))

        asyncio.run(pops())

    threads = [threading.Thread(target=on_own_loop) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    assert sorted(popped, key=lambda m: m["content"]) == sorted(
        [text(i) for i in range(20, 40)], key=lambda m: m["content"])
    assert conv_store.get("s") == [text(i) for i in range(20)] and conv_store.count("s") == 20


@pytest.mark.parametrize("given_async_client", [False, True])
def test_asyncio_run_twice_applies_each_write_once(server: ConversationsServer, id_map: Path,
                                                   given_async_client: bool) -> None:
    """Each event loop gets its own async client: the second asyncio.run neither fails
    after its write was applied nor leaves the id map behind the server."""
    given = openai.AsyncOpenAI(api_key="k", base_url=server.base_url, max_retries=0) \
        if given_async_client else None
    store = ConversationsSession(api_key="k", base_url=server.base_url, max_retries=0,
                                 async_client=given, id_map=id_map)
    for i in range(3):
        asyncio.run(store.aappend("s", [text(i)]))
    assert store.get("s") == [text(0), text(1), text(2)]
    assert store.count("s") == 3
    assert len(server.requests_to("POST", "/items")) == 3
    store.close()
    if given is not None:  # a given client is the caller's to close (on its own loop)
        assert not given.is_closed()


def test_a_tool_call_in_model_dump_key_order_migrates_twice(conv_store: ConversationsSession) -> None:
    """openai-python's model_dump() puts a tool call's keys as id, function, type: the
    message reads back with the same key order, so a second migration finds it equal."""
    message = {"role": "assistant", "content": None, "tool_calls": [
        {"id": "call_1", "function": {"arguments": "{}", "name": "now"}, "type": "function"}]}
    source = sessions.MemorySession()
    source.append("s", [USER, message, {"role": "tool", "content": "12:00", "tool_call_id": "call_1"}])
    for _ in range(2):
        sessions.migrate(source, conv_store)
    assert json.dumps(conv_store.get("s")) == json.dumps(source.get("s"))
    assert sessions.migrate(source, conv_store, verify=True).ok


def _append_from_process(base_url: str, id_map: str, n: int, barrier: Any) -> None:
    client = openai.OpenAI(api_key="test-key", base_url=base_url, max_retries=0)
    with ConversationsSession(client, id_map=id_map) as store:
        barrier.wait()
        store.append("shared", [{"role": "user", "content": f"from process {n}"}])


def test_concurrent_first_appends_from_processes_create_one_conversation(
    server: ConversationsServer, client: openai.OpenAI, id_map: Path
) -> None:
    # Both processes create a conversation before either claims the session: the map
    # decides, and the loser deletes its own conversation.
    server.create_delay = 0.5
    context = multiprocessing.get_context("spawn")
    barrier = context.Barrier(2)
    processes = [
        context.Process(target=_append_from_process, args=(server.base_url, str(id_map), n, barrier))
        for n in range(2)
    ]
    for process in processes:
        process.start()
    for process in processes:
        process.join(60)
        assert process.exitcode == 0
    assert len(server.requests_to("POST", "/conversations")) == 2
    live = [c for c in server.conversations.values() if not c.deleted]
    assert len(live) == 1 and live[0].metadata == {"session_id": "shared"}
    with ConversationsSession(client, id_map=id_map) as store:
        assert conversation_of(store, "shared") == live[0].id
        assert sorted(m["content"] for m in store.get("shared")) == ["from process 0", "from process 1"]
        assert store.count("shared") == 2


# -- errors, async, URL, packaging ---------------------------------------------------------------


@pytest.mark.parametrize("status", [500, 503, 429])
def test_server_errors_are_backend_unavailable(conv_store: ConversationsSession,
                                               server: ConversationsServer, status: int) -> None:
    conv_store.append("s", [USER])
    server.fail_next.append(status)
    with pytest.raises(sessions.BackendUnavailableError) as caught:
        conv_store.get("s")
    assert caught.value.operation == "get" and isinstance(caught.value.__cause__, openai.APIStatusError)
    assert conv_store.get("s") == [USER]


def test_unreachable_server_is_backend_unavailable(id_map: Path) -> None:
    client = openai.OpenAI(api_key="k", base_url="http://127.0.0.1:9/v1", max_retries=0, timeout=2)
    with ConversationsSession(client, id_map=id_map) as store:
        with pytest.raises(sessions.BackendUnavailableError) as caught:
            store.append("s", [USER])
        assert isinstance(caught.value.__cause__, openai.APIConnectionError)
        assert store.info("s") is None


def test_refused_credentials_are_a_configuration_error(conv_store: ConversationsSession,
                                                       server: ConversationsServer) -> None:
    server.fail_next.append(401)
    with pytest.raises(sessions.ConfigurationError):
        conv_store.append("s", [USER])


async def test_async_path_uses_the_async_client(server: ConversationsServer, id_map: Path) -> None:
    async_client = openai.AsyncOpenAI(api_key="k", base_url=server.base_url, max_retries=0)
    async with ConversationsSession(make_client(server), async_client=async_client, id_map=id_map) as store:
        await store.aappend("s", TOOL_TURN + [text(i) for i in range(40)])
        assert await store.aget("s", limit=3) == [text(37), text(38), text(39)]
        assert await store.apop("s") == text(39)
        assert store.get("s") == TOOL_TURN + [text(i) for i in range(39)]
        assert [len(r.body["items"]) for r in server.requests_to("POST", "/items")] == [20, 20, 7]
    await async_client.close()


def test_connect_by_url(server: ConversationsServer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OPENAI_API_KEY", "test-key")
    path = tmp_path / "by-url.db"
    store = sessions.connect(f"openai+conversations:///{path}?base_url={server.base_url}&max_retries=0")
    assert isinstance(store, ConversationsSession)
    store.append("s", [USER])
    assert store.get("s") == [USER]
    store.close()
    assert path.exists()
    monkeypatch.delenv("OPENAI_API_KEY")
    keyless = sessions.connect(f"openai+conversations:///{path}?base_url={server.base_url}")
    with pytest.raises(sessions.ConfigurationError, match="OPENAI_API_KEY"):
        keyless.append("t", [USER])
    assert keyless.get("t") == []  # reads of a session never written need no request
    keyless.close()
    with pytest.raises(sessions.ConfigurationError):
        sessions.connect("openai+conversations:///x.db?colour=blue")
    with pytest.raises(sessions.ConfigurationError):
        sessions.connect("openai+conversations://user:secret@host/x.db")


def test_missing_openai_names_the_extra(tmp_path: Path) -> None:
    code = (
        "import sys; sys.modules['openai'] = None\n"
        "import sessions\n"
        "try:\n"
        "    sessions.ConversationsSession\n"
        "except sessions.MissingDependencyError as error:\n"
        "    print(error.extra, '|', error)\n"
        "try:\n"
        "    sessions.connect('openai+conversations:///x.db')\n"
        "except sessions.MissingDependencyError as error:\n"
        "    print(error.extra)\n"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True,
                          cwd=Path(__file__).resolve().parent.parent)
    lines = done.stdout.splitlines()
    assert lines[0].startswith("openai |") and "session-layer[openai]" in lines[0]
    assert lines[1] == "openai"


# -- the test server itself follows the documented API -------------------------------------------


def test_server_enforces_the_documented_limits(client: openai.OpenAI) -> None:
    too_many = [{"type": "message", "role": "user", "content": "x"}] * 21
    with pytest.raises(openai.BadRequestError):
        client.conversations.create(items=too_many)  # type: ignore[arg-type]
    conversation = client.conversations.create(items=too_many[:20])  # type: ignore[arg-type]
    with pytest.raises(openai.BadRequestError):
        client.conversations.items.create(conversation.id, items=too_many)  # type: ignore[arg-type]
    for limit in (0, 101):
        with pytest.raises(openai.BadRequestError):
            client.conversations.items.list(conversation.id, limit=limit)
    first = client.conversations.items.list(conversation.id, order="asc", limit=15)
    assert first.has_more and len(first.data) == 15 and first.last_id == first.data[-1].id
    rest = client.conversations.items.list(conversation.id, order="asc", after=first.last_id or "")
    assert not rest.has_more and len(rest.data) == 5
    default = client.conversations.items.list(conversation.id)
    assert len(default.data) == 20 and default.data[0].id == rest.data[-1].id
    item = client.conversations.items.retrieve(rest.data[0].id, conversation_id=conversation.id)
    assert item.id == rest.data[0].id
    client.conversations.items.delete(item.id, conversation_id=conversation.id)
    with pytest.raises(openai.NotFoundError):
        client.conversations.items.retrieve(item.id, conversation_id=conversation.id)
    updated = client.conversations.update(conversation.id, metadata={"k": "v"})
    assert updated.metadata == {"k": "v"} == client.conversations.retrieve(conversation.id).metadata
    with pytest.raises(openai.BadRequestError):
        client.conversations.items.create(conversation.id, items=[  # type: ignore[list-item]
            {"type": "message", "role": "user", "content": "x", "name": "not an item field"}
        ])
    assert client.conversations.delete(conversation.id).deleted
    with pytest.raises(openai.NotFoundError):
        client.conversations.retrieve(conversation.id)
    with pytest.raises(openai.NotFoundError):
        client.conversations.items.list(conversation.id)


def test_server_records_requests(server: ConversationsServer, client: openai.OpenAI) -> None:
    client.conversations.create(metadata={"a": "b"})
    recorded = server.requests[-1]
    assert (recorded.method, recorded.path) == ("POST", "/v1/conversations")
    assert json.loads(json.dumps(recorded.body)) == {"metadata": {"a": "b"}}


def test_satisfies_the_session_protocol(conv_store: ConversationsSession) -> None:
    assert isinstance(conv_store, sessions.Session)
    target = sessions.registered_schemes()["openai+conversations"]
    assert target == "sessions.conversations:ConversationsSession"
