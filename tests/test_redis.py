"""RedisSession specifics: construction, key layout, TTL semantics, round trips, errors.

The contract itself is checked by tests/conformance on Redis and on a Redis Cluster.
"""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import Iterator
from datetime import timedelta
from typing import Any

import pytest
import redis
import redis.asyncio
from redis.crc import key_slot

import sessions
from sessions import RedisSession
from sessions.redis import _glob_escape
from tests.backends import server_unavailable
from tests.redis_servers import SHARED_HOST, SHARED_PORT, free_port, reachable

pytestmark = pytest.mark.redis

USER = {"role": "user", "content": "hi"}
URL = f"redis://{SHARED_HOST}:{SHARED_PORT}/0"


@pytest.fixture
def client() -> Iterator[redis.Redis]:
    if not reachable(SHARED_HOST, SHARED_PORT):
        server_unavailable(f"Redis at {SHARED_HOST}:{SHARED_PORT}", "connection refused")
    with redis.Redis(host=SHARED_HOST, port=SHARED_PORT) as shared:
        yield shared


@pytest.fixture
def prefix(client: redis.Redis) -> Iterator[str]:
    """A key prefix of this test alone; its keys are removed afterwards."""
    chosen = f"test:{uuid.uuid4().hex}:"
    yield chosen
    for key in client.scan_iter(match=_glob_escape(chosen) + "*"):
        client.unlink(key)


def keys_of(client: redis.Redis, prefix: str) -> set[str]:
    return {k.decode() for k in client.scan_iter(match=_glob_escape(prefix) + "*")}


# -- construction ----------------------------------------------------------------------------


def test_url_forms_and_options() -> None:
    store = RedisSession("rediss://user:p%40ss@cache.example:6380/3?prefix=app:&ttl=90&socket_timeout=2")
    assert (store.host, store.port, store.db, store.cluster) == ("cache.example", 6380, 3, False)
    settings = store._clients.settings
    assert settings.ssl and settings.username == "user" and settings.password == "p@ss"
    assert (store.prefix, store.ttl_ms, store.socket_timeout) == ("app:", 90_000, 2.0)
    cluster = sessions.connect("redis+cluster://node1:7000?ttl=0")
    assert isinstance(cluster, RedisSession)
    assert cluster.cluster and cluster.port == 7000 and cluster.ttl_ms == 0
    assert RedisSession(ttl=timedelta(minutes=1)).ttl_ms == 60_000
    assert RedisSession().prefix == "session:"


@pytest.mark.parametrize(("make", "needle"), [
    (lambda: RedisSession(prefix="a{b}:"), "prefix"),
    (lambda: RedisSession(ttl=0), "ttl"),
    (lambda: RedisSession(ttl=-1), "ttl"),
    (lambda: RedisSession(ttl=float("nan")), "ttl"),
    (lambda: RedisSession(socket_timeout=0), "socket_timeout"),
    (lambda: RedisSession(URL, host="other"), "URL"),
    (lambda: RedisSession(URL + "?prefix=a:", prefix="b:"), "prefix"),
    (lambda: RedisSession(host="h", client=redis.Redis()), "clients"),
    (lambda: RedisSession(cluster=True, db=2), "database 0"),
    (lambda: RedisSession("redis://h/notanumber"), "database number"),
    (lambda: RedisSession("redis://h?colour=blue"), "colour"),
    (lambda: RedisSession("redis://h?ttl=soon"), "ttl"),
])
def test_bad_settings_are_refused(make: Any, needle: str) -> None:
    with pytest.raises(sessions.ConfigurationError, match=needle):
        make()


# -- layout --------------------------------------------------------------------------------------


def test_key_layout_and_one_hash_slot_per_session(client: redis.Redis, prefix: str) -> None:
    with RedisSession(URL, prefix=prefix) as store:
        store.append("chat:{1}%", [USER, USER])
        tag = "chat:%7B1%7D%25"
        assert keys_of(client, prefix) == {f"{prefix}{{{tag}}}:messages", f"{prefix}{{{tag}}}:meta"}
        assert client.type(f"{prefix}{{{tag}}}:messages") == b"list"
        assert client.llen(f"{prefix}{{{tag}}}:messages") == 2
        meta = client.hgetall(f"{prefix}{{{tag}}}:meta")
        assert set(meta) == {b"created_at", b"updated_at"}
        assert key_slot(f"{prefix}{{{tag}}}:messages".encode()) == key_slot(tag.encode())
        assert key_slot(f"{prefix}{{{tag}}}:meta".encode()) == key_slot(tag.encode())


def test_ids_that_look_like_escapes_or_tags_never_collide(prefix: str) -> None:
    ids = ["{", "}", "%", "%7B", "%257B", "{}", "}{", "a}:meta", "%%", "%7D%7B"]
    with RedisSession(URL, prefix=prefix) as store:
        for i, session_id in enumerate(ids):
            store.append(session_id, [{"role": "user", "content": str(i)}])
        for i, session_id in enumerate(ids):
            assert store.get(session_id) == [{"role": "user", "content": str(i)}]
        assert sorted(store.list_sessions()) == sorted(ids)


def test_listing_ignores_other_prefixes_and_foreign_keys(client: redis.Redis, prefix: str) -> None:
    glob_prefix = prefix + "*?[x]\\:"
    with RedisSession(URL, prefix=glob_prefix) as mine, RedisSession(URL, prefix=prefix) as other:
        mine.append("mine", [USER])
        other.append("other", [USER])
        other.append("x", [USER])
        client.hset(glob_prefix + "{bad%zz}:meta", "created_at", "1")  # not an escape we write
        assert list(mine.list_sessions()) == ["mine"]
        assert sorted(other.list_sessions()) == ["other", "x"]


def test_corrupt_record_is_reported(client: redis.Redis, prefix: str) -> None:
    with RedisSession(URL, prefix=prefix) as store:
        store.append("s", [USER])
        client.rpush(f"{prefix}{{s}}:messages", b"{not json")
        with pytest.raises(sessions.CorruptRecordError):
            store.get("s")


# -- TTL -----------------------------------------------------------------------------------------


def test_every_write_sets_one_deadline_on_all_keys_and_reads_do_not(
    client: redis.Redis, prefix: str
) -> None:
    messages, meta = f"{prefix}{{s}}:messages", f"{prefix}{{s}}:meta"
    with RedisSession(URL, prefix=prefix, ttl=60) as store:
        store.append("s", [USER, USER])
        assert client.pexpiretime(messages) == client.pexpiretime(meta) > 0
        assert 59_000 < client.pttl(meta) <= 60_000
        before = client.pexpiretime(meta)
        time.sleep(0.01)
        store.get("s")
        store.info("s")
        store.count("s")
        list(store.list_sessions())
        assert client.pexpiretime(meta) == before
        for write in (lambda: store.pop("s"), lambda: store.replace("s", [USER]),
                      lambda: store.clear("s"), lambda: store.append("s", [USER])):
            time.sleep(0.01)
            write()
            assert client.pexpiretime(meta) > before
            before = client.pexpiretime(meta)
            if client.exists(messages):
                assert client.pexpiretime(messages) == before


def test_store_without_ttl_keeps_an_existing_deadline(client: redis.Redis, prefix: str) -> None:
    messages, meta = f"{prefix}{{s}}:messages", f"{prefix}{{s}}:meta"
    with RedisSession(URL, prefix=prefix, ttl=60) as expiring, RedisSession(URL, prefix=prefix) as plain:
        expiring.append("s", [USER])
        deadline = client.pexpiretime(meta)
        plain.pop("s")  # the list is now gone
        plain.append("s", [USER])  # and re-created by a store without TTL
        assert client.pexpiretime(messages) == client.pexpiretime(meta) == deadline
        plain.append("new", [USER])
        assert client.pttl(f"{prefix}{{new}}:meta") == -1


# -- round trips and clients ---------------------------------------------------------------------


class CountingRedis(redis.Redis):
    """A real client that counts the commands it sends."""

    commands: list[str]

    def execute_command(self, *args: Any, **options: Any) -> Any:
        self.commands.append(str(args[0]))
        return super().execute_command(*args, **options)


def test_each_operation_is_one_round_trip(prefix: str) -> None:
    counting = CountingRedis(host=SHARED_HOST, port=SHARED_PORT)
    counting.commands = []
    with RedisSession(client=counting, prefix=prefix) as store:
        store.append("s", [USER])  # may load the script once (NOSCRIPT, then EVAL)
        for call in (lambda: store.append("s", [USER, USER]), lambda: store.get("s", limit=2),
                     lambda: store.get("s"), lambda: store.pop("s"), lambda: store.count("s"),
                     lambda: store.info("s"), lambda: store.replace("s", [USER]),
                     lambda: store.clear("s"), lambda: store.delete("s")):
            counting.commands.clear()
            call()
            assert len(counting.commands) == 1, counting.commands
    counting.ping()  # a given client is not closed by the store
    counting.close()


async def test_given_clients_are_used_and_not_closed(prefix: str) -> None:
    sync_client = redis.Redis(host=SHARED_HOST, port=SHARED_PORT)
    async_client = redis.asyncio.Redis(host=SHARED_HOST, port=SHARED_PORT)
    store = RedisSession(client=sync_client, async_client=async_client, prefix=prefix)
    await store.aappend("s", [USER])
    store.append("s", [USER])
    assert await store.acount("s") == 2
    await store.aclose()
    assert sync_client.ping() and await async_client.ping()
    await async_client.aclose()
    sync_client.close()


async def test_only_a_sync_client_serves_async_calls_in_a_thread(prefix: str) -> None:
    with redis.Redis(host=SHARED_HOST, port=SHARED_PORT) as sync_client:
        store = RedisSession(client=sync_client, prefix=prefix)
        await store.aappend("s", [USER])
        assert await store.aget("s") == [USER]
        assert [s async for s in store.alist_sessions()] == ["s"]


async def test_only_an_async_client_refuses_sync_calls(prefix: str) -> None:
    async_client = redis.asyncio.Redis(host=SHARED_HOST, port=SHARED_PORT)
    store = RedisSession(async_client=async_client, prefix=prefix)
    await store.aappend("s", [USER])
    with pytest.raises(sessions.ConfigurationError, match="async client"):
        store.get("s")
    assert await store.aget("s") == [USER]
    await async_client.aclose()


async def test_one_store_serves_several_event_loops(prefix: str) -> None:
    store = RedisSession(URL, prefix=prefix)

    async def write(n: int) -> None:
        await store.aappend("s", [{"role": "user", "content": str(n)}])

    await write(0)
    await asyncio.get_running_loop().run_in_executor(None, lambda: asyncio.run(write(1)))
    assert [m["content"] for m in await store.aget("s")] == ["0", "1"]
    await store.aclose()


def test_unreachable_server_fails_fast_with_the_cause() -> None:
    store = RedisSession(host="127.0.0.1", port=free_port(), socket_timeout=1)
    started = time.monotonic()
    with pytest.raises(sessions.BackendUnavailableError) as caught:
        store.append("s", [USER])
    assert time.monotonic() - started < 2
    assert isinstance(caught.value.__cause__, redis.ConnectionError)
    assert caught.value.operation == "append" and caught.value.session_id == "s"
    with pytest.raises(sessions.BackendUnavailableError):
        list(store.list_sessions())
    store.close()


def test_async_connections_close_when_their_event_loop_ends() -> None:
    from tests.redis_servers import RedisServer

    if not RedisServer.available():
        server_unavailable("redis-server", "not installed")
    server = RedisServer().start()
    try:
        store = RedisSession(host="127.0.0.1", port=server.port)

        async def use() -> None:
            await asyncio.gather(*(store.aappend(f"s{n}", [USER]) for n in range(4)))

        asyncio.run(use())  # no aclose(): the loop's shutdown closes its connections
        with server.client() as inspector:
            deadline = time.monotonic() + 5
            while inspector.info("clients")["connected_clients"] > 1 and time.monotonic() < deadline:
                time.sleep(0.02)
            assert inspector.info("clients")["connected_clients"] == 1  # the inspector
        asyncio.run(use())  # the same store serves a new loop
        assert store.count("s0") == 2
        store.close()
    finally:
        server.remove()
