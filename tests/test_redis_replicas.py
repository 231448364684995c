"""Replicated acknowledgement on a standalone Redis primary with one replica
(``min_replicas``): the options, one pipeline per write, and a replica that stops
answering (SIGSTOP, its link still connected) makes every write fail in bounded time.

The cluster side (WAIT on the node that took the write, redirections, failover) is in
tests/test_redis_failover.py.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Iterator
from datetime import datetime, timedelta, timezone
from typing import Any

import pytest
import redis
import redis.asyncio

import sessions
from sessions import RedisSession
from sessions.redis import NotEnoughReplicas
from tests.backends import server_unavailable
from tests.redis_servers import RedisServer, ReplicatedServer, in_sync, wait_until

pytestmark = pytest.mark.redis

USER = {"role": "user", "content": "hello"}
#: A cutoff every session is idle before: delete_if_idle deletes (a write to replicate).
FUTURE = datetime.now(timezone.utc) + timedelta(days=1)
SOCKET_TIMEOUT = 5.0
#: How long writes that must be refused wait for the paused replica.
REPLICA_TIMEOUT = 0.3
#: How long writes that must succeed may wait (a loaded machine's replica is slow).
PATIENT = 3.0


def test_options_from_url_and_arguments() -> None:
    store = sessions.connect("redis://h:6380/0?min_replicas=2&replica_timeout=0.25")
    assert isinstance(store, RedisSession)
    assert (store.min_replicas, store.replica_timeout) == (2, 0.25)
    assert "min_replicas=2" in repr(store)
    default = RedisSession(host="h")
    assert (default.min_replicas, default.replica_timeout) == (0, 1.0)
    cluster = sessions.connect("redis+cluster://h:7000?min_replicas=1")
    assert isinstance(cluster, RedisSession) and cluster.min_replicas == 1


@pytest.mark.parametrize(("make", "needle"), [
    (lambda: RedisSession(host="h", min_replicas=-1), "min_replicas"),
    (lambda: RedisSession(host="h", min_replicas=True), "min_replicas"),
    (lambda: RedisSession(host="h", min_replicas=1, replica_timeout=0), "replica_timeout"),
    (lambda: RedisSession(host="h", min_replicas=1, replica_timeout=float("nan")), "replica_timeout"),
    (lambda: RedisSession(host="h", min_replicas=1, replica_timeout=5, socket_timeout=5), "shorter"),
    (lambda: sessions.connect("redis://h?min_replicas=one"), "min_replicas"),
])
def test_bad_options_are_refused(make: Any, needle: str) -> None:
    with pytest.raises(sessions.ConfigurationError, match=needle):
        make()


@pytest.fixture(scope="module")
def pair() -> Iterator[ReplicatedServer]:
    """A primary and one replica of this module alone (the tests pause the replica)."""
    if not RedisServer.available():
        server_unavailable("redis-server", "not installed")
    started = ReplicatedServer().start()
    yield started
    started.remove()


@pytest.fixture
def url(pair: ReplicatedServer) -> str:
    """A store URL with ``min_replicas=1`` and a fresh prefix, waiting ``PATIENT`` seconds."""
    prefix = f"test:{uuid.uuid4().hex}:"
    return (f"redis://127.0.0.1:{pair.primary.port}/0?prefix={prefix}&socket_timeout={SOCKET_TIMEOUT}"
            f"&min_replicas=1&replica_timeout={PATIENT}")


def impatient(url: str) -> str:
    """The same store, waiting only ``REPLICA_TIMEOUT`` for its replica."""
    return url.replace(f"replica_timeout={PATIENT}", f"replica_timeout={REPLICA_TIMEOUT}")


class CountingPipelines(redis.Redis):
    """A real client that records what each pipeline sends and every single command."""

    pipelines: list[list[str]]
    singles: list[str]

    def execute_command(self, *args: Any, **options: Any) -> Any:
        self.singles.append(str(args[0]))
        return super().execute_command(*args, **options)

    def pipeline(self, transaction: bool = True, shard_hint: Any = None) -> Any:
        pipe = super().pipeline(transaction, shard_hint)
        execute = pipe.execute

        def recording(raise_on_error: bool = True) -> Any:
            self.pipelines.append([str(command[0][0]) for command in pipe.command_stack])
            return execute(raise_on_error)

        pipe.execute = recording  # type: ignore[method-assign]
        return pipe


def test_every_write_is_one_pipeline_with_its_wait(pair: ReplicatedServer) -> None:
    client = CountingPipelines(host="127.0.0.1", port=pair.primary.port)
    client.pipelines, client.singles = [], []
    with RedisSession(client=client, prefix=f"test:{uuid.uuid4().hex}:", min_replicas=1,
                      replica_timeout=PATIENT) as store:
        calls = (lambda: store.append("s", [USER, USER]), lambda: store.pop("s"),
                 lambda: store.replace("s", [USER]), lambda: store.clear("s"), lambda: store.delete("s"))
        for call in calls:  # the first use of a script loads it (NOSCRIPT, then EVAL + WAIT)
            call()
        for call in calls:
            client.pipelines.clear()
            call()
            assert client.singles == []
            assert client.pipelines == [[client.pipelines[0][0], "WAIT"]], client.pipelines
            assert client.pipelines[0][0] in ("EVALSHA", "UNLINK")
        client.pipelines.clear()
        assert store.get("s") == [] and store.count("s") == 0
        assert client.pipelines == [], "reads do not wait for replicas"
    client.close()


def test_a_script_the_server_lost_is_sent_again_whole(pair: ReplicatedServer, url: str) -> None:
    with RedisSession(url) as store:
        store.append("s", [USER])
        pair.primary.command("SCRIPT", "FLUSH")  # as after a restart or a failover
        store.append("s", [USER, USER])
        assert store.count("s") == 3


def _refused(call: Any) -> tuple[float, sessions.BackendUnavailableError]:
    started = time.monotonic()
    with pytest.raises(sessions.BackendUnavailableError) as caught:
        call()
    return time.monotonic() - started, caught.value


def _check_refusal(took: float, error: sessions.BackendUnavailableError, operation: str) -> None:
    assert REPLICA_TIMEOUT * 0.9 < took < REPLICA_TIMEOUT + 1.5, took
    assert isinstance(error.__cause__, NotEnoughReplicas)
    assert (error.__cause__.acknowledged, error.__cause__.required) == (0, 1)
    assert "0 of the 1 replica(s)" in str(error) and "applied on the primary" in str(error)
    assert error.operation == operation and error.session_id == "s"


def test_a_paused_replica_makes_every_write_fail_and_reads_work(pair: ReplicatedServer, url: str) -> None:
    """The replica stays connected while paused: a check of connected replicas would let
    these writes through; waiting for acknowledgements refuses them."""
    store, refusing = RedisSession(url), RedisSession(impatient(url))
    unguarded = RedisSession(url.replace("&min_replicas=1", ""))
    store.append("s", [USER])
    pair.replicas[0].pause()
    try:
        assert in_sync(pair.primary, 1), "the paused replica is still connected"
        for operation, call in (("append", lambda: refusing.append("s", [USER])),
                                ("pop", lambda: refusing.pop("s")),
                                ("replace", lambda: refusing.replace("s", [USER])),
                                ("clear", lambda: refusing.clear("s")),
                                ("delete_if_idle", lambda: refusing.delete_if_idle("s", FUTURE)),
                                ("delete", lambda: refusing.delete("s"))):
            _check_refusal(*_refused(call), operation)
        unguarded.append("u", [USER])  # the default acknowledges on the primary alone
        assert store.get("u") == [USER]
    finally:
        pair.replicas[0].resume()
    # What the refused writes did is on the primary (Redis does not roll back): here the
    # last one deleted the session.
    assert store.get("s") == []
    wait_until(lambda: in_sync(pair.primary, 1), "the replica", 10)
    store.append("s", [USER])
    with pair.replicas[0].client() as replica:
        wait_until(lambda: replica.llen(store._keys("s")[0]) == 1, "the replicated append", 5)
    for opened in (store, refusing, unguarded):
        opened.close()


async def test_a_paused_replica_makes_async_writes_fail(pair: ReplicatedServer, url: str) -> None:
    store, refusing = RedisSession(url), RedisSession(impatient(url))
    await store.aappend("s", [USER])
    pair.replicas[0].pause()
    try:
        started = time.monotonic()
        with pytest.raises(sessions.BackendUnavailableError) as caught:
            await refusing.aappend("s", [USER])
        _check_refusal(time.monotonic() - started, caught.value, "append")
        started = time.monotonic()
        with pytest.raises(sessions.BackendUnavailableError) as caught:
            await refusing.adelete("s")
        _check_refusal(time.monotonic() - started, caught.value, "delete")
    finally:
        pair.replicas[0].resume()
    await store.aappend("s", [USER])
    assert await store.aget("s") == [USER]
    await store.aclose()
    await refusing.aclose()


async def test_given_async_client_waits_too(pair: ReplicatedServer) -> None:
    client = redis.asyncio.Redis(host="127.0.0.1", port=pair.primary.port, socket_timeout=SOCKET_TIMEOUT)
    store = RedisSession(async_client=client, prefix=f"test:{uuid.uuid4().hex}:", min_replicas=1,
                         replica_timeout=PATIENT)
    refusing = RedisSession(async_client=client, prefix=store.prefix, min_replicas=1,
                            replica_timeout=REPLICA_TIMEOUT)
    await store.aappend("s", [USER])
    pair.replicas[0].pause()
    try:
        with pytest.raises(sessions.BackendUnavailableError, match="0 of the 1"):
            await refusing.aappend("s", [USER])
    finally:
        pair.replicas[0].resume()
    await store.aclose()
    await client.aclose()


def test_two_replicas_required_of_one_fail_even_when_it_is_healthy(pair: ReplicatedServer, url: str) -> None:
    with RedisSession(impatient(url).replace("min_replicas=1", "min_replicas=2")) as store:
        _, error = _refused(lambda: store.append("s", [USER]))
        assert "1 of the 2 replica(s)" in str(error)
