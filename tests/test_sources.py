"""Read-only sources over the peers' stores, each written by the peer library itself.

For every store layout in ``benchmarks.peers.PEERS`` (LangChain, LlamaIndex and Agents
SDK stores in SQLite, PostgreSQL, Redis and files): several sessions (one of 1,000
messages) with tool calls, tool results, images and unicode are written with the peer's
own API, then read through ``sessions.connect(url)``, migrated into SQLite and into
PostgreSQL, and compared with what the peer's own read returns, converted by the
adapter converters. Every framework then reads the migrated session.
"""

from __future__ import annotations

import asyncio
import multiprocessing
import os
import threading
import time
import uuid
import warnings
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import agents
import openai
import pytest

import sessions
from adapters.langchain import SessionChatMessageHistory
from adapters.llamaindex import SessionChatStore
from adapters.llamaindex import from_canonical as llamaindex_from_canonical
from adapters.openai_agents import AgentsSession
from adapters.runner import Agent, Runner
from adapters.sources import UNKNOWN_TIME, ReadOnlySourceError
from adapters.sources._drivers import PostgresDatabase, one_query
from benchmarks.peers import PEERS, Peer, PeerStore, Place, canonical, history, session_ids
from tests.backends import POSTGRES_URL, Backend, params, server_unavailable
from tests.chat_server import ChatServer, Reply
from tests.redis_servers import SHARED_HOST, SHARED_PORT, reachable

REDIS_URL = f"redis://{SHARED_HOST}:{SHARED_PORT}/0"
#: A time after every peer's write: every session is idle then.
LATER = datetime(3000, 1, 1, tzinfo=timezone.utc)
#: Messages of each session written: a long one, a rich one, short ones.
SIZES = (1000, 43, 9, 1)


def require(server: str) -> None:
    """Skip (fail under CI=true) when the peer's server is not running."""
    if server == "redis" and not reachable(SHARED_HOST, SHARED_PORT):
        server_unavailable(f"Redis at {REDIS_URL}", "connection refused")
    if server == "postgres":
        import psycopg

        try:
            psycopg.connect(POSTGRES_URL, connect_timeout=3).close()
        except psycopg.Error as error:
            server_unavailable(f"PostgreSQL at {POSTGRES_URL}", str(error).strip())


@dataclass
class Written:
    peer: Peer
    store: PeerStore
    ids: list[str]
    #: The peer's own read of each session, in the peer's own types.
    native: dict[str, list[Any]]
    #: That read converted by the adapter converters: what a source must return.
    expected: dict[str, list[dict[str, Any]]]

    def source(self) -> sessions.Session:
        return sessions.connect(self.store.url)


def place(directory: Path) -> Place:
    return Place(directory, POSTGRES_URL, REDIS_URL, "t" + uuid.uuid4().hex[:12])


def write_peer(peer: Peer, directory: Path) -> Written:
    require(peer.server)
    store = peer.open(place(directory))
    ids = session_ids(peer, len(SIZES))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        store.write({sid: history(peer.family, size, seed * 10_000)
                     for seed, (sid, size) in enumerate(zip(ids, SIZES, strict=True))})
        native = store.read_all(ids)
    expected = {sid: canonical(peer.family, stored) for sid, stored in native.items()}
    return Written(peer, store, ids, native, expected)


@pytest.fixture(scope="module", params=PEERS, ids=lambda peer: f"{peer.scheme}-{peer.writer}")
def written(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Written]:
    """One peer store per layout, written once for this module, removed at its end."""
    peer: Peer = request.param
    result = write_peer(peer, tmp_path_factory.mktemp(peer.scheme.replace("+", "-")))
    try:
        yield result
    finally:
        result.store.remove()


@pytest.fixture(params=params(("sqlite", "postgres")))
def target(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[sessions.Session]:
    """An empty store of ours: a SQLite file, or PostgreSQL tables of this test."""
    backend: Backend = request.param
    with backend.open(tmp_path) as store:
        yield store


def test_the_histories_are_realistic(written: Written) -> None:
    long = written.expected[written.ids[0]]
    assert len(long) >= 900 and len(written.native[written.ids[0]]) == 1000
    everything = [m for sid in written.ids for m in written.expected[sid]]
    assert any(m.get("tool_calls") for m in everything)
    assert any(m["role"] == "tool" for m in everything)
    assert any(isinstance(m.get("content"), list)
               and any(p.get("type") == "image_url" for p in m["content"]) for m in everything)
    assert any("東京" in str(m.get("content")) for m in everything)


def test_migrates_into_our_stores_as_the_peer_reads_it(written: Written, target: sessions.Session) -> None:
    with written.source() as source:
        assert sorted(source.list_sessions()) == sorted(written.ids)
        report = sessions.migrate(source, target)
        assert (report.sessions, report.copied) == (len(written.ids), len(written.ids))
        assert report.messages_written == sum(len(m) for m in written.expected.values())
        for sid in written.ids:
            assert target.get(sid) == written.expected[sid], sid

        again = sessions.migrate(source, target)
        assert (again.unchanged, again.messages_written) == (len(written.ids), 0)
        assert sessions.migrate(source, target, verify=True).ok
    # The peer's store is as it was.
    for sid in written.ids[1:]:
        assert canonical(written.peer.family, written.store.read(sid)) == written.expected[sid]


def test_reads_windows_counts_and_infos(written: Written) -> None:
    with written.source() as source:
        long, rich = written.ids[0], written.ids[1]
        for limit in range(1, len(written.expected[rich]) + 2):
            assert source.get(rich, limit=limit) == written.expected[rich][-limit:], limit
        total = len(written.expected[long])
        for limit in (1, 2, 3, 7, 100, total - 1, total, total + 1):
            assert source.get(long, limit=limit) == written.expected[long][-limit:], limit
        assert source.get(long, limit=0) == []
        for sid in written.ids:
            info = source.info(sid)
            assert source.count(sid) == len(written.expected[sid])
            assert info is not None and info.message_count == len(written.expected[sid])
            assert info.created_at <= info.updated_at and info.created_at.tzinfo is not None
        missing = "no-such-session" if "uuid" not in written.peer.writer else str(uuid.uuid4())
        assert (source.get(missing), source.count(missing), source.info(missing)) == ([], 0, None)


def test_a_window_reads_only_the_end_of_the_history(written: Written,
                                                    monkeypatch: pytest.MonkeyPatch) -> None:
    """``get(limit=N)`` fetches O(N) rows or list elements, not the 1,000 of the session."""
    long, limit = written.ids[0], 5
    fetched: list[int] = []
    with written.source() as source:
        source.count(long)  # the first use checks the layout: not part of the window
        database = getattr(source, "database", None)
        if database is not None:
            read = database.read

            def counting_read(work: Any) -> Any:
                def counted(fetch: Any) -> Any:
                    def fetch_rows(query: str, params: Any) -> Any:
                        rows = fetch(query, params)
                        fetched.append(len(rows))
                        return rows

                    return work(fetch_rows)

                return read(counted)

            monkeypatch.setattr(database, "read", counting_read)
        elif hasattr(source, "reader"):
            client = source.reader.client
            lrange = client.lrange

            def counting_lrange(key: Any, start: int, end: int) -> Any:
                elements = lrange(key, start, end)
                fetched.append(len(elements))
                return elements

            monkeypatch.setattr(client, "lrange", counting_lrange)
        else:
            pytest.skip("a SimpleChatStore file is one JSON document: it is parsed whole")
        assert source.get(long, limit=limit) == written.expected[long][-limit:]
    # One row per message, or for the Agents SDK a first window of 2N+16 items.
    assert 0 < sum(fetched) <= 2 * limit + 16, fetched


async def test_async_reads_equal_the_sync_ones(written: Written) -> None:
    source = written.source()
    try:
        assert sorted([sid async for sid in source.alist_sessions()]) == sorted(written.ids)
        rich = written.ids[1]
        assert await source.aget(rich) == written.expected[rich]
        assert await source.aget(rich, limit=5) == written.expected[rich][-5:]
        assert await source.acount(rich) == len(written.expected[rich])
        assert await source.ainfo(rich) == source.info(rich)
        gathered = await asyncio.gather(*(source.aget(sid) for sid in written.ids))
        assert gathered == [written.expected[sid] for sid in written.ids]
    finally:
        await source.aclose()


async def test_every_write_is_refused_and_nothing_changes(written: Written) -> None:
    sid = written.ids[-1]
    message = {"role": "user", "content": "must not be stored"}
    source = written.source()
    try:
        refused = [
            lambda: source.append(sid, [message]), lambda: source.replace(sid, [message]),
            lambda: source.pop(sid), lambda: source.clear(sid), lambda: source.delete(sid),
            # Refused even when the session is not idle (nothing would be deleted).
            lambda: source.delete_if_idle(sid, UNKNOWN_TIME),
            lambda: sessions.prune(source, "1s", now=LATER),
        ]
        for write in refused:
            with pytest.raises(ReadOnlySourceError) as caught:
                write()
            assert isinstance(caught.value, sessions.SessionError)
            assert caught.value.session_id in (sid, *written.ids)
        for awrite in (source.aappend(sid, [message]), source.areplace(sid, []), source.apop(sid),
                       source.aclear(sid), source.adelete(sid),
                       source.adelete_if_idle(sid, UNKNOWN_TIME),
                       sessions.aprune(source, "1s", now=LATER)):
            with pytest.raises(ReadOnlySourceError):
                await awrite
        assert source.get(sid) == written.expected[sid]
    finally:
        await source.aclose()
    # A closed source refuses every call, reads and writes alike, as a closed store does.
    for call in (lambda: source.get(sid), lambda: list(source.list_sessions()),
                 lambda: source.append(sid, [message]), lambda: source.delete(sid)):
        with pytest.raises(sessions.StoreClosedError):
            call()
    stored = await asyncio.to_thread(written.store.read, sid)  # some peers run their own loop
    assert canonical(written.peer.family, stored) == written.expected[sid]


@pytest.fixture
def _no_tracing() -> None:
    agents.set_tracing_disabled(True)  # traces would go to api.openai.com


@pytest.mark.usefixtures("_no_tracing")
async def test_every_framework_reads_the_migrated_session(written: Written, tmp_path: Path,
                                                           chat_server: ChatServer) -> None:
    # Into SQLite: that every framework reads every one of our stores alike is the
    # adapters' own tests' business.
    target = sessions.SQLiteSession(tmp_path / "migrated.db")
    with written.source() as source:
        sessions.migrate(source, target)
    family = written.peer.family
    for sid in written.ids[:2]:
        native = written.native[sid]
        langchain = SessionChatMessageHistory(target, sid).messages
        llamaindex = SessionChatStore(target).get_messages(sid)
        items = await AgentsSession(target, sid).get_items()
        # Every framework reads the session (what each leaves out of its read, such as
        # Responses-only items outside the Agents SDK, is each adapter's own rule);
        # the framework that wrote the history gets it back exactly.
        assert langchain and llamaindex and items
        if family == "langchain":
            assert langchain == native
        elif family == "llamaindex":
            # SessionChatStore reads through the model view, which leaves out keys a role
            # cannot send (a tool result's name); the converter gives back everything.
            assert [llamaindex_from_canonical(m) for m in target.get(sid)] == native
            assert len(llamaindex) == len(native)
        else:
            assert items == native

    # The native runner and the Agents SDK send the rich session to a model.
    sid = written.ids[1]
    last_text = next(m["content"] for m in reversed(written.expected[sid])
                     if m["role"] == "assistant" and isinstance(m.get("content"), str) and m["content"])
    client = openai.AsyncOpenAI(base_url=chat_server.base_url, api_key="test", max_retries=0)
    try:
        chat_server.script(Reply("Tomorrow: the same."))
        result = await Runner(client).run(Agent("helper", instructions="Be brief."), "And tomorrow?",
                                          session=target, session_id=sid)
        assert result.final_output == "Tomorrow: the same."
        sent = chat_server.requests[-1]["messages"]
        assert sent[-1] == {"role": "user", "content": "And tomorrow?"}
        assert any(m.get("content") == last_text for m in sent)

        chat_server.script(Reply("Still the same."))
        sdk = agents.Agent(name="sdk", instructions="Be brief.", model=agents.OpenAIChatCompletionsModel(
            model="test", openai_client=client))
        run = await agents.Runner.run(sdk, "And the day after?", session=AgentsSession(target, sid))
        assert run.final_output == "Still the same."
        sent = chat_server.requests[-1]["messages"]
        assert any(m.get("content") == last_text for m in sent)
        assert sent[-1] == {"role": "user", "content": "And the day after?"}
    finally:
        await client.close()
        target.close()


# -- fork ----------------------------------------------------------------------------------------


def _connection_id(source: sessions.Session) -> Any:
    """The server's id for the connection a read of ``source`` runs on; None for files."""
    database = getattr(source, "database", None)
    if isinstance(database, PostgresDatabase):
        return database.read(one_query("SELECT pg_backend_pid()", ()))[0][0]
    reader = getattr(source, "reader", None)
    return None if reader is None else reader.client.client_id()


def _read_in_child(source: sessions.Session, written: Written, parents: Any) -> None:
    """Runs in a forked child, as a pre-forked worker does: reads every session through
    the inherited source while the parent goes on reading others, then closes it."""
    if parents is not None:
        assert _connection_id(source) != parents
    for _ in range(20):
        for sid in written.ids[2:]:
            assert source.get(sid) == written.expected[sid], sid
            assert source.get(sid, limit=3) == written.expected[sid][-3:], sid
    for sid in written.ids:
        assert source.get(sid) == written.expected[sid], sid
        assert source.count(sid) == len(written.expected[sid]), sid
    assert sorted(source.list_sessions()) == sorted(written.ids)
    source.close()  # the child's own connections, never the parent's


def test_forked_children_read_with_connections_of_their_own(written: Written) -> None:
    """Children forked after the parent read (its connections open), then while a parent
    thread reads (its locks and connections in use), each read through the inherited
    source what the peer wrote; the parent reads on."""
    rich = written.ids[1]
    source = written.source()
    context = multiprocessing.get_context("fork")
    stop = threading.Event()
    reads: list[int] = []
    errors: list[BaseException] = []

    def busy_parent() -> None:
        while not stop.is_set():
            try:
                if written.peer.server == "file":
                    store: Any = written.store
                    os.utime(store.path)  # as if the peer persisted it again: a reload
                assert source.get(rich) == written.expected[rich]
                assert source.get(rich, limit=1) == written.expected[rich][-1:]
            except BaseException as error:
                errors.append(error)
                return
            reads.append(1)

    def fork_and_wait(count: int, parents: Any = None) -> list[int | None]:
        children = [context.Process(target=_read_in_child, args=(source, written, parents))
                    for _ in range(count)]
        for child in children:
            child.start()
        deadline = time.monotonic() + 30
        for child in children:
            child.join(max(0.0, deadline - time.monotonic()))
            if child.is_alive():
                child.kill()
                child.join()
        return [child.exitcode for child in children]

    try:
        assert sorted(source.list_sessions()) == sorted(written.ids)
        assert source.get(rich) == written.expected[rich]
        parents = _connection_id(source)  # the one connection the parent holds now
        assert fork_and_wait(1, parents) == [0]
        assert source.get(rich) == written.expected[rich]
        assert _connection_id(source) == parents  # the child neither used nor closed it

        thread = threading.Thread(target=busy_parent)
        thread.start()
        try:
            while len(reads) < 5 and thread.is_alive():
                time.sleep(0.001)
            exits = fork_and_wait(3)
        finally:
            stop.set()
            thread.join(60)
        assert exits == [0, 0, 0]
        assert errors == []
        for sid in written.ids:
            assert source.get(sid) == written.expected[sid], sid
        assert sorted(source.list_sessions()) == sorted(written.ids)
    finally:
        source.close()
