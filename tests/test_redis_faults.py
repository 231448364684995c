"""Faults on real Redis servers: many writer processes, a server that dies or hangs
mid-run, and TTL expiry. Servers that are stopped are started by the tests themselves,
on their own ports; the shared server is only written to under a private prefix.
"""

from __future__ import annotations

import asyncio
import multiprocessing
import os
import signal
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import redis

import sessions
from sessions import RedisSession
from sessions.redis import _glob_escape
from tests.backends import server_unavailable
from tests.redis_servers import SHARED_HOST, SHARED_PORT, RedisCluster, RedisServer, reachable, wait_until

pytestmark = pytest.mark.redis

TIMEOUT = 0.5  # socket timeout of the stores under test, seconds
BATCH = 5


def batch(number: int) -> list[dict[str, Any]]:
    return [{"role": "user", "content": f"{number}:{k}"} for k in range(BATCH)]


def batches_in(messages: list[dict[str, Any]]) -> list[int]:
    """The batch numbers of a history, checking that every batch is whole and in order."""
    contents = [m["content"] for m in messages]
    assert len(contents) % BATCH == 0, "a batch was half-written"
    numbers = []
    for start in range(0, len(contents), BATCH):
        number = int(contents[start].split(":")[0])
        assert contents[start:start + BATCH] == [f"{number}:{k}" for k in range(BATCH)]
        numbers.append(number)
    return numbers


@pytest.fixture
def shared_prefix() -> Iterator[str]:
    if not reachable(SHARED_HOST, SHARED_PORT):
        server_unavailable(f"Redis at {SHARED_HOST}:{SHARED_PORT}", "connection refused")
    chosen = f"test:{uuid.uuid4().hex}:"
    yield chosen
    with redis.Redis(host=SHARED_HOST, port=SHARED_PORT) as client:
        for key in client.scan_iter(match=_glob_escape(chosen) + "*"):
            client.unlink(key)


@pytest.fixture(scope="module")
def own_cluster() -> Iterator[RedisCluster]:
    """A Redis Cluster of this module alone (3 primaries) whose nodes fsync every write."""
    if not RedisServer.available():
        server_unavailable("redis-server", "not installed")
    cluster = RedisCluster(persistent=True).start()
    yield cluster
    cluster.remove()


@pytest.fixture
def own_server(tmp_path: Path) -> Iterator[RedisServer]:
    """A Redis of this test alone that fsyncs every write to its append-only file."""
    if not RedisServer.available():
        server_unavailable("redis-server", "not installed")
    server = RedisServer(directory=tmp_path, args=("--appendonly", "yes", "--appendfsync", "always"))
    server.start()
    yield server
    server.remove()


# -- (a) many processes, one session ------------------------------------------------------------


def _writer(url: str, number: int, count: int, start: Any) -> None:
    store = RedisSession(url)
    start.wait()
    for i in range(count):
        store.append("shared", [{"role": "user", "content": f"{number}:{i}"}])
    store.close()


def test_eight_processes_appending_to_one_session_lose_nothing(shared_prefix: str) -> None:
    processes, per_process = 8, 250
    url = f"redis://{SHARED_HOST}:{SHARED_PORT}/0?prefix={shared_prefix}"
    context = multiprocessing.get_context("spawn")
    start = context.Event()
    workers = [context.Process(target=_writer, args=(url, n, per_process, start))
               for n in range(processes)]
    for worker in workers:
        worker.start()
    start.set()
    for worker in workers:
        worker.join(timeout=120)
        assert worker.exitcode == 0
    with RedisSession(url) as store:
        got = [m["content"] for m in store.get("shared")]
        assert len(got) == processes * per_process == store.count("shared")
        for n in range(processes):
            mine = [int(c.split(":")[1]) for c in got if c.startswith(f"{n}:")]
            assert mine == list(range(per_process))


# -- (b) the server dies mid-run and comes back -----------------------------------------------------


def _timed(call: Callable[[], object]) -> float:
    started = time.monotonic()
    with pytest.raises(sessions.BackendUnavailableError) as caught:
        call()
    assert isinstance(caught.value.__cause__, (redis.RedisError, OSError))
    return time.monotonic() - started


def test_outage_fails_promptly_and_the_same_store_recovers(own_server: RedisServer) -> None:
    store = RedisSession(host="127.0.0.1", port=own_server.port, socket_timeout=TIMEOUT)
    acknowledged: list[int] = []
    failed: list[int] = []
    failure_times: list[float] = []
    stop = threading.Event()

    def write() -> None:
        number = 0
        while not stop.is_set():
            started = time.monotonic()
            try:
                store.append("s", batch(number))
                acknowledged.append(number)
            except sessions.BackendUnavailableError:
                failed.append(number)
                failure_times.append(time.monotonic() - started)
                time.sleep(0.02)
            number += 1

    writer = threading.Thread(target=write)
    writer.start()
    try:
        while len(acknowledged) < 30:
            time.sleep(0.005)
        own_server.stop()  # SIGKILL, in the middle of the writes
        while len(failed) < 5:
            time.sleep(0.01)
        outage = [
            _timed(lambda: store.get("s")), _timed(lambda: store.count("s")),
            _timed(lambda: store.info("s")), _timed(lambda: list(store.list_sessions())),
            _timed(lambda: store.pop("s")), _timed(lambda: store.replace("s", batch(-1))),
        ]
        own_server.start()  # same port, same directory: the AOF is replayed
        seen = len(acknowledged)
        while len(acknowledged) < seen + 10:
            time.sleep(0.01)
    finally:
        stop.set()
        writer.join()
    assert max(outage + failure_times) < 2 * TIMEOUT
    numbers = batches_in(store.get("s"))
    assert set(acknowledged) <= set(numbers)
    assert numbers == sorted(numbers)
    assert set(numbers) - set(acknowledged) <= set(failed)  # sent before the kill, maybe applied
    store.append("s", batch(10_000))
    assert batches_in(store.get("s", limit=BATCH)) == [10_000]
    store.close()


async def test_async_outage_fails_promptly_and_the_same_store_recovers(own_server: RedisServer) -> None:
    store = RedisSession(host="127.0.0.1", port=own_server.port, socket_timeout=TIMEOUT)
    for number in range(10):
        await store.aappend("s", batch(number))
    own_server.stop()
    outage = []
    for call in (lambda: store.aappend("s", batch(99)), lambda: store.aget("s"),
                 lambda: store.apop("s"), lambda: store.ainfo("s")):
        started = time.monotonic()
        with pytest.raises(sessions.BackendUnavailableError):
            await call()
        outage.append(time.monotonic() - started)
    assert max(outage) < 2 * TIMEOUT
    await asyncio.to_thread(own_server.start)
    assert batches_in(await store.aget("s")) == list(range(10))
    await store.aappend("s", batch(10))
    assert batches_in(await store.aget("s")) == list(range(11))
    await store.aclose()


def test_a_hung_server_times_out_and_the_same_store_recovers(own_server: RedisServer) -> None:
    store = RedisSession(host="127.0.0.1", port=own_server.port, socket_timeout=TIMEOUT)
    store.append("s", batch(0))
    assert own_server.process is not None
    os.kill(own_server.process.pid, signal.SIGSTOP)
    try:
        waited = [_timed(lambda: store.get("s")), _timed(lambda: store.append("s", batch(1)))]
    finally:
        os.kill(own_server.process.pid, signal.SIGCONT)
    assert all(TIMEOUT * 0.8 < w < 2 * TIMEOUT for w in waited), waited
    # The timed-out append reached the server before it hung: it is applied whole or not at all.
    assert batches_in(store.get("s")) in ([0], [0, 1])
    store.append("s", batch(2))
    assert batches_in(store.get("s"))[-1] == 2
    store.close()


def test_a_restart_between_calls_is_invisible_to_the_next_call(own_server: RedisServer) -> None:
    store = RedisSession(host="127.0.0.1", port=own_server.port, socket_timeout=TIMEOUT)
    store.append("s", batch(0))
    own_server.stop()  # the idle connection the store keeps is now closed by the peer
    own_server.start()
    store.append("s", batch(1))  # reconnects before sending: no error, nothing sent twice
    assert batches_in(store.get("s")) == [0, 1]
    store.close()


def test_a_restart_while_the_loop_was_idle_is_invisible_to_the_next_async_call(
        own_server: RedisServer) -> None:
    """A loop driven call by call (``run_until_complete``) has not read the EOF of its
    idle connection when the next call comes: the socket is polled before sending, the
    connection replaced, and the command sent once."""
    store = RedisSession(host="127.0.0.1", port=own_server.port, socket_timeout=TIMEOUT)
    loop = asyncio.new_event_loop()
    try:
        loop.run_until_complete(store.aappend("s", batch(0)))
        own_server.stop()
        own_server.start()  # the AOF replays batch 0
        loop.run_until_complete(store.aappend("s", batch(1)))
        loop.run_until_complete(store.aappend("s", batch(2)))
        assert batches_in(loop.run_until_complete(store.aget("s"))) == [0, 1, 2]
        loop.run_until_complete(store.aclose())
    finally:
        loop.close()


def _restart(cluster: RedisCluster, node: RedisServer) -> None:
    """Kill ``node`` and start it again (its append-only file replays its writes)."""
    node.stop()  # the idle connections to it are now closed by the peer
    node.start()
    wait_until(cluster.healthy, "the cluster after a restart", 30)


def test_a_restart_between_calls_is_invisible_to_the_next_cluster_call(own_cluster: RedisCluster) -> None:
    store = RedisSession(f"redis+cluster://127.0.0.1:{own_cluster.port}?prefix={uuid.uuid4().hex}:",
                         socket_timeout=TIMEOUT)
    store.append("s", batch(0))
    node = own_cluster.primary_for(store._keys("s")[0])
    _restart(own_cluster, node)
    store.append("s", batch(1))  # reconnects before sending: no error, nothing sent twice
    _restart(own_cluster, node)
    assert batches_in(store.get("s")) == [0, 1]
    store.close()


def test_a_restart_while_the_loop_was_idle_is_invisible_to_the_next_async_cluster_call(
        own_cluster: RedisCluster) -> None:
    """As on a standalone server: a cluster node polls the socket of the idle connection
    it takes before sending on it, so the first command after the restart goes out once,
    on a new connection, whether it is a write, a read or a scan over every primary."""
    store = RedisSession(f"redis+cluster://127.0.0.1:{own_cluster.port}?prefix={uuid.uuid4().hex}:",
                         socket_timeout=TIMEOUT)

    async def listed() -> list[str]:
        return [session_id async for session_id in store.alist_sessions()]

    loop = asyncio.new_event_loop()
    run = loop.run_until_complete
    try:
        run(store.aappend("s", batch(0)))
        node = own_cluster.primary_for(store._keys("s")[0])
        _restart(own_cluster, node)
        run(store.aappend("s", batch(1)))
        _restart(own_cluster, node)
        assert batches_in(run(store.aget("s"))) == [0, 1]
        _restart(own_cluster, node)
        assert run(listed()) == ["s"]
        run(store.aclose())
    finally:
        loop.close()


def test_async_clients_warn_about_nothing(shared_prefix: str) -> None:
    import warnings

    async def use(store: RedisSession) -> None:
        await store.aappend("s", batch(0))
        assert batches_in(await store.aget("s")) == [0]
        await store.aclose()

    with warnings.catch_warnings():
        warnings.simplefilter("error")
        asyncio.run(use(RedisSession(f"redis://{SHARED_HOST}:{SHARED_PORT}/0?prefix={shared_prefix}")))


def test_a_given_async_client_serves_one_loop_and_copies_serve_the_others(shared_prefix: str) -> None:
    import redis.asyncio

    given = redis.asyncio.Redis(host=SHARED_HOST, port=SHARED_PORT)
    store = RedisSession(client=redis.Redis(host=SHARED_HOST, port=SHARED_PORT), async_client=given,
                         prefix=shared_prefix)
    for number in range(3):  # each asyncio.run is a new loop; the writes land once each
        asyncio.run(store.aappend("s", batch(number)))
    errors: list[BaseException] = []

    def in_thread() -> None:
        try:
            asyncio.run(store.aappend("s", batch(3)))
        except BaseException as error:
            errors.append(error)

    thread = threading.Thread(target=in_thread)
    thread.start()
    thread.join(30)
    assert errors == []
    assert batches_in(store.get("s")) == [0, 1, 2, 3]
    store.close()


def _append_in_child(store: RedisSession, start: Any) -> None:
    start.wait()
    for number in range(1000, 1200):
        store.append("s", batch(number))


def test_a_forked_child_uses_connections_of_its_own(shared_prefix: str) -> None:
    store = RedisSession(f"redis://{SHARED_HOST}:{SHARED_PORT}/0?prefix={shared_prefix}")
    store.append("s", batch(0))  # the parent now holds an idle connection
    context = multiprocessing.get_context("fork")
    start = context.Event()
    child = context.Process(target=_append_in_child, args=(store, start))
    child.start()
    start.set()
    for number in range(1, 201):  # at the same time as the child: one socket would cross replies
        store.append("s", batch(number))
    child.join()
    assert child.exitcode == 0
    numbers = batches_in(store.get("s"))
    assert sorted(numbers) == [0, *range(1, 201), *range(1000, 1200)]
    store.close()


# -- (c) TTL expiry removes a whole session at once -----------------------------------------------------

_BOTH_EXIST = "return redis.call('EXISTS', KEYS[1]) + redis.call('EXISTS', KEYS[2])"


def test_ttl_expires_every_key_of_a_session_together(shared_prefix: str) -> None:
    url = f"redis://{SHARED_HOST}:{SHARED_PORT}/0?prefix={shared_prefix}&ttl=1"
    with RedisSession(url) as store, redis.Redis(host=SHARED_HOST, port=SHARED_PORT) as client:
        ids = ["a", "b{1}", "c"]
        for session_id in ids:
            store.append(session_id, batch(0))
            store.append(session_id, batch(1))
        store.pop("c")  # a list re-created after being emptied must expire with its meta too
        store.clear("c")
        store.append("c", batch(2))
        assert sorted(store.list_sessions()) == sorted(ids)
        keys = {s: store._keys(s) for s in ids}
        states: set[int] = set()
        deadline = time.monotonic() + 5
        while time.monotonic() < deadline:
            # One script sees the keys at one instant (Redis freezes the clock in scripts).
            now = {int(client.eval(_BOTH_EXIST, 2, *keys[s])) for s in ids}
            states |= now
            if now == {0}:
                break
            time.sleep(0.005)
        assert states == {2, 0}, "some session was half expired"
        assert list(store.list_sessions()) == []
        for session_id in ids:
            assert store.get(session_id) == [] and store.info(session_id) is None
        assert not list(client.scan_iter(match=_glob_escape(shared_prefix) + "*"))
