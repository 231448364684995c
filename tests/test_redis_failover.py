"""Redis Cluster with replicas: replicated acknowledgement on the node that took the write,
slots that move under a store, and a primary killed under eight writers.

The module starts a cluster of its own (3 primaries with a replica each, loopback,
``cluster-node-timeout`` 2 s) because its tests pause, kill and restart nodes.

Why the replica is made to lag before the kill: on loopback a replica copies a write
well within a millisecond, so a plain SIGKILL of the primary loses nothing even without
a replicated acknowledgement and would prove nothing. The test pauses the replica
(SIGSTOP) and cuts its link (``CLIENT KILL TYPE replica`` on the primary) shortly
before the kill: without ``min_replicas`` the primary keeps acknowledging appends its
replica never sees, and these are lost when the replica takes over; with it, they are
refused, and every acknowledged append survives.
"""

from __future__ import annotations

import asyncio
import itertools
import threading
import time
import uuid
from collections.abc import Iterator
from typing import Any

import pytest
from redis.crc import key_slot

import sessions
from sessions import RedisSession
from sessions.redis import NotEnoughReplicas
from tests.backends import server_unavailable
from tests.failover import BATCH, Outcome, RedisSettings, batch, redis_cluster_failover, redis_cluster_url
from tests.redis_servers import RedisCluster, RedisServer, wait_until

pytestmark = [pytest.mark.redis, pytest.mark.slow]

NODE_TIMEOUT_MS = 2000
SOCKET_TIMEOUT = RedisSettings().socket_timeout
REPLICA_TIMEOUT = RedisSettings().replica_timeout
#: The replica wait of writes that must succeed (a loaded machine's replica is slow).
PATIENT = 1.5
#: The longest a failing call may take: a dead node's socket timeout, then a topology
#: refresh that may meet a paused node's socket timeout too, plus the replica wait.
FAILURE_BOUND = 2 * SOCKET_TIMEOUT + REPLICA_TIMEOUT + 1.5


@pytest.fixture(scope="module")
def cluster() -> Iterator[RedisCluster]:
    if not RedisServer.available():
        server_unavailable("redis-server", "not installed")
    started = RedisCluster(replicas=1, node_timeout_ms=NODE_TIMEOUT_MS).start()
    yield started
    started.remove()


def cluster_url(cluster: RedisCluster, prefix: str, replica_timeout: float = REPLICA_TIMEOUT) -> str:
    return redis_cluster_url(cluster, prefix, replica_timeout=replica_timeout)


def fresh_prefix() -> str:
    return f"test:{uuid.uuid4().hex}:"


def healthy(cluster: RedisCluster) -> None:
    wait_until(cluster.healthy, "a healthy cluster", 60)


# -- WAIT goes to the node that took the write ------------------------------------------------


def _by_primary(cluster: RedisCluster, store: RedisSession, count: int = 60) -> dict[int, list[str]]:
    """Session ids grouped by the port of the primary serving them (every primary gets some)."""
    groups: dict[int, list[str]] = {}
    for n in range(count):
        groups.setdefault(cluster.primary_for(store._keys(f"s{n}")[0]).port, []).append(f"s{n}")
    assert len(groups) == cluster.masters
    return groups


def test_a_paused_replica_refuses_the_writes_of_its_primary_only(cluster: RedisCluster) -> None:
    healthy(cluster)
    prefix = fresh_prefix()
    store = RedisSession(cluster_url(cluster, prefix))
    patient = RedisSession(cluster_url(cluster, prefix, replica_timeout=PATIENT))
    groups = _by_primary(cluster, store)
    paused_primary = cluster.primaries()[0]
    for ids in groups.values():
        for session_id in ids:
            patient.append(session_id, [{"role": "user", "content": "before"}])
    replica = cluster.replica_of(paused_primary)
    replica.pause()
    try:
        refused = groups[paused_primary.port][:2]
        for session_id in refused:
            started = time.monotonic()
            with pytest.raises(sessions.BackendUnavailableError) as caught:
                store.append(session_id, [{"role": "user", "content": "refused"}])
            assert REPLICA_TIMEOUT * 0.9 < time.monotonic() - started < FAILURE_BOUND
            assert isinstance(caught.value.__cause__, NotEnoughReplicas)
            assert f"127.0.0.1:{paused_primary.port}" in str(caught.value)
        for port, ids in groups.items():
            if port != paused_primary.port:
                for session_id in ids:  # other primaries' replicas confirm
                    patient.append(session_id, [{"role": "user", "content": "accepted"}])
    finally:
        replica.resume()
    healthy(cluster)
    for port, ids in groups.items():
        for session_id in ids:
            contents = [m["content"] for m in store.get(session_id)]
            if port != paused_primary.port:
                assert contents == ["before", "accepted"]
            elif session_id in refused:
                assert contents == ["before", "refused"]  # applied on the primary, not acknowledged
    store.close()
    patient.close()


async def test_async_writes_wait_on_the_node_that_took_them(cluster: RedisCluster) -> None:
    healthy(cluster)
    prefix = fresh_prefix()
    store = RedisSession(cluster_url(cluster, prefix))
    patient = RedisSession(cluster_url(cluster, prefix, replica_timeout=PATIENT))
    groups = _by_primary(cluster, store, count=30)
    paused_primary = cluster.primaries()[-1]
    for ids in groups.values():
        await patient.aappend(ids[0], [{"role": "user", "content": "before"}])
    replica = cluster.replica_of(paused_primary)
    replica.pause()
    try:
        with pytest.raises(sessions.BackendUnavailableError) as caught:
            await store.aappend(groups[paused_primary.port][0], [{"role": "user", "content": "x"}])
        assert isinstance(caught.value.__cause__, NotEnoughReplicas)
        for port, ids in groups.items():
            if port != paused_primary.port:
                await patient.aappend(ids[0], [{"role": "user", "content": "accepted"}])
    finally:
        replica.resume()
    healthy(cluster)
    await store.aclose()
    await patient.aclose()


# -- a slot that moves: ASK while it migrates, TRYAGAIN while a session is split, then MOVED --


def _node_id(cluster: RedisCluster, server: RedisServer) -> str:
    return next(node.id for node in cluster.nodes() if node.port == server.port)


def _migrate(source: RedisServer, target: RedisServer, keys: list[str]) -> None:
    source.command("MIGRATE", "127.0.0.1", target.port, "", 0, 5000, "KEYS", *keys)


def _contents(messages: list[sessions.Message]) -> list[str]:
    return [str(m["content"]) for m in messages]


def _batches(*numbers: int) -> list[str]:
    return [f"0:{n}:{part}" for n in numbers for part in range(BATCH)]


def test_writes_follow_a_slot_that_moves_to_another_primary(cluster: RedisCluster) -> None:
    healthy(cluster)
    prefix = fresh_prefix()
    store = RedisSession(cluster_url(cluster, prefix, replica_timeout=PATIENT))
    astore = RedisSession(cluster_url(cluster, prefix, replica_timeout=PATIENT))
    run = asyncio.Runner()  # the async store's calls, on one event loop

    def slot_of(session_id: str) -> int:
        return key_slot(store._keys(session_id)[0].encode())

    slot = slot_of("stays")
    same_slot = (f"s{n}" for n in itertools.count() if slot_of(f"s{n}") == slot)
    moved, split, created = next(same_slot), next(same_slot), next(same_slot)
    source = cluster.primary_for(store._keys("stays")[0])
    target = next(p for p in cluster.primaries() if p is not source)
    for session_id in ("stays", moved, split):
        store.append(session_id, batch(0, 0))
    run.run(astore.aappend("stays", batch(0, 1)))  # both stores now know the slot's owner

    target.command("CLUSTER", "SETSLOT", slot, "IMPORTING", _node_id(cluster, source))
    source.command("CLUSTER", "SETSLOT", slot, "MIGRATING", _node_id(cluster, target))
    try:
        _migrate(source, target, list(store._keys(moved)))
        store.append(moved, batch(0, 1))  # gone from the source: ASK, then ASKING + write + WAIT
        run.run(astore.aappend(moved, batch(0, 2)))
        store.append("stays", batch(0, 2))  # still on the source
        # Redis refuses to create the two keys of a new session in a migrating slot
        # (TRYAGAIN on the importing node): a bounded failure, nothing written.
        started = time.monotonic()
        with pytest.raises(sessions.BackendUnavailableError, match="redirected"):
            store.append(created, batch(0, 0))
        assert time.monotonic() - started < FAILURE_BOUND
        # Half of a session moved: the source answers TRYAGAIN until the other half follows.
        _migrate(source, target, [store._keys(split)[0]])
        writer = threading.Thread(target=store.append, args=(split, batch(0, 1)))
        writer.start()
        time.sleep(0.2)
        _migrate(source, target, [store._keys(split)[1]])
        writer.join(10)
        keys = source.command("CLUSTER", "GETKEYSINSLOT", slot, 100)
        if keys:
            _migrate(source, target, [key.decode() for key in keys])  # type: ignore[union-attr]
    finally:
        for server in cluster.primaries():
            server.command("CLUSTER", "SETSLOT", slot, "NODE", _node_id(cluster, target))
    # The async store still routes the slot to the source: MOVED, then the write on the target.
    run.run(astore.aappend("stays", batch(0, 3)))
    store.append(moved, batch(0, 3))
    assert cluster.primary_for(store._keys("stays")[0]) is target
    assert _contents(store.get("stays")) == _batches(0, 1, 2, 3)
    assert _contents(run.run(astore.aget(moved))) == _batches(0, 1, 2, 3)
    assert _contents(store.get(split)) == _batches(0, 1)
    assert store.get(created) == []
    store.close()
    run.run(astore.aclose())
    run.close()


# -- a primary killed under eight writers ---------------------------------------------------------


def report(capsys: Any, title: str, outcome: Outcome) -> None:
    with capsys.disabled():
        print(f"\n{title}: {outcome.summary()}")


@pytest.mark.parametrize("kind", ["threads", "processes", "tasks"])
def test_replicated_acknowledgement_loses_nothing_in_a_failover(
        cluster: RedisCluster, kind: str, capsys: Any) -> None:
    outcome = redis_cluster_failover(cluster, kind, min_replicas=1)
    report(capsys, f"Redis Cluster failover, {kind}, min_replicas=1", outcome)
    assert outcome.lost == []
    assert outcome.unexpected == [], outcome.unexpected[:3]
    assert outcome.failed, "the failover went unnoticed: the test did not test anything"
    assert outcome.slowest_failure < FAILURE_BOUND
    assert outcome.first_ack_after is not None


def test_without_replicated_acknowledgement_a_failover_loses_appends(
        cluster: RedisCluster, capsys: Any) -> None:
    """Not an assertion on the count: the figure users choose by (docs/scaling.md)."""
    outcome = redis_cluster_failover(cluster, "threads", min_replicas=0)
    report(capsys, "Redis Cluster failover, threads, no min_replicas", outcome)
    assert outcome.unexpected == [], outcome.unexpected[:3]
    assert outcome.slowest_failure < FAILURE_BOUND
