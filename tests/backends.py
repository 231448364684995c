"""The stores the conformance suite runs on: one entry per backend or wrapper stack.

Adding a backend to every contract test is one more ``Backend`` in ``BACKENDS``. Each
``open`` is a context manager that yields a fresh, empty store and cleans up after it.
"""

from __future__ import annotations

import contextlib
import os
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

import sessions

Opener = Callable[[Path], contextlib.AbstractContextManager[sessions.Session]]

IN_CI = os.environ.get("CI", "").lower() in ("1", "true", "yes")


def server_unavailable(what: str, reason: str) -> None:
    """Skip a test whose server is missing, except under CI=true, where it fails."""
    message = f"{what} is not reachable: {reason}"
    if IN_CI:
        pytest.fail(f"{message} (CI=true: a missing server fails the run)", pytrace=False)
    pytest.skip(message)


@dataclass(frozen=True)
class Backend:
    name: str
    open: Opener
    marks: tuple[Any, ...] = ()
    #: Contract features this store cannot offer, each documented where it is built.
    lacks: frozenset[str] = field(default_factory=frozenset)
    #: The store can be opened again in another process (multi-process tests).
    shared_between_processes: bool = False
    #: The data lives in the process: a forked child works on a copy of its own.
    private_to_process: bool = False


@contextlib.contextmanager
def _memory(tmp_path: Path) -> Iterator[sessions.Session]:
    with sessions.MemorySession() as store:
        yield store


@contextlib.contextmanager
def _sqlite_file(tmp_path: Path) -> Iterator[sessions.Session]:
    with sessions.SQLiteSession(tmp_path / "conformance.db") as store:
        yield store


@contextlib.contextmanager
def _file(tmp_path: Path) -> Iterator[sessions.Session]:
    with sessions.FileSession(tmp_path / "sessions") as store:
        yield store


@contextlib.contextmanager
def _sqlite_memory(tmp_path: Path) -> Iterator[sessions.Session]:
    with sessions.SQLiteSession(":memory:") as store:
        yield store


_conversations_server: Any = None


def conversations_server() -> Any:
    """The local Conversations API server shared by this test process (started once,
    stopped at exit)."""
    global _conversations_server
    if _conversations_server is None:
        import atexit

        from tests.conversations_server import ConversationsServer

        _conversations_server = ConversationsServer()
        atexit.register(_conversations_server.stop)
    return _conversations_server


@contextlib.contextmanager
def _conversations(tmp_path: Path) -> Iterator[sessions.Session]:
    import openai

    client = openai.OpenAI(api_key="test-key", base_url=conversations_server().base_url, max_retries=0)
    with sessions.ConversationsSession(client, id_map=tmp_path / "conversation-map.db") as store:
        yield store
    client.close()

def _delete_prefixed(client: Any, prefix: str) -> None:
    """Remove the keys a test created under its own prefix, and nothing else."""
    from sessions.redis import _glob_escape

    for key in client.scan_iter(match=_glob_escape(prefix) + "*", count=1000):
        client.unlink(key)


@contextlib.contextmanager
def _redis(tmp_path: Path) -> Iterator[sessions.Session]:
    from tests.redis_servers import SHARED_HOST, SHARED_PORT, reachable

    if not reachable(SHARED_HOST, SHARED_PORT):
        server_unavailable(f"Redis at {SHARED_HOST}:{SHARED_PORT}", "connection refused")
    prefix = f"test:{uuid.uuid4().hex}:"
    store = sessions.RedisSession(
        f"redis://{SHARED_HOST}:{SHARED_PORT}/0?prefix={prefix}&socket_timeout=10"
    )
    try:
        with store:
            yield store
    finally:
        import redis

        with redis.Redis(host=SHARED_HOST, port=SHARED_PORT) as client:
            _delete_prefixed(client, prefix)


@contextlib.contextmanager
def _redis_cluster(tmp_path: Path, options: str = "") -> Iterator[sessions.Session]:
    from tests.redis_servers import RedisServer, shared_cluster

    if not RedisServer.available():
        server_unavailable("a Redis Cluster", "redis-server is not installed")
    cluster = shared_cluster()
    prefix = f"test:{uuid.uuid4().hex}:"
    store = sessions.RedisSession(
        f"redis+cluster://127.0.0.1:{cluster.port}?prefix={prefix}&socket_timeout=10{options}"
    )
    try:
        with store:
            yield store
    finally:
        import redis.cluster

        with redis.cluster.RedisCluster(host="127.0.0.1", port=cluster.port) as client:
            _delete_prefixed(client, prefix)


# Every write acknowledged by a replica too (WAIT pipelined with the write).
_REPLICATED = "&min_replicas=1&replica_timeout=5"


@contextlib.contextmanager
def _redis_replicated(tmp_path: Path) -> Iterator[sessions.Session]:
    import redis

    from tests.redis_servers import RedisServer, shared_replicated_server

    if not RedisServer.available():
        server_unavailable("a replicated Redis", "redis-server is not installed")
    primary = shared_replicated_server().primary
    prefix = f"test:{uuid.uuid4().hex}:"
    try:
        with sessions.RedisSession(
            f"redis://127.0.0.1:{primary.port}/0?prefix={prefix}&socket_timeout=10{_REPLICATED}"
        ) as store:
            yield store
    finally:
        with redis.Redis(host="127.0.0.1", port=primary.port) as client:
            _delete_prefixed(client, prefix)


@contextlib.contextmanager
def _redis_cluster_replicated(tmp_path: Path) -> Iterator[sessions.Session]:
    with _redis_cluster(tmp_path, _REPLICATED) as store:
        yield store

POSTGRES_URL = os.environ.get("SESSIONS_TEST_POSTGRES", "postgresql://postgres@127.0.0.1:5432/test")
_postgres_down: list[str] = []


def drop_postgres_tables(url: str, prefix: str) -> None:
    """Drop the tables of one test's table prefix (and nothing else)."""
    import psycopg
    from psycopg import sql

    tables = [sql.Identifier(prefix + name) for name in ("messages", "sessions", "schema")]
    with psycopg.connect(url, autocommit=True, connect_timeout=5) as conn:
        conn.execute(sql.SQL("DROP TABLE IF EXISTS {}").format(sql.SQL(", ").join(tables)))


@contextlib.contextmanager
def _postgres(tmp_path: Path) -> Iterator[sessions.Session]:
    import psycopg

    if not _postgres_down:
        try:
            psycopg.connect(POSTGRES_URL, connect_timeout=3).close()
        except psycopg.Error as error:
            _postgres_down.append(str(error).strip())
    if _postgres_down:
        server_unavailable(f"PostgreSQL at {POSTGRES_URL}", _postgres_down[0])
    prefix = f"t{uuid.uuid4().hex[:12]}_"
    try:
        with sessions.PostgresSession(POSTGRES_URL, table_prefix=prefix, max_size=4) as store:
            yield store
    finally:
        drop_postgres_tables(POSTGRES_URL, prefix)


BACKENDS: list[Backend] = [
    Backend("memory", _memory, private_to_process=True),
    Backend("sqlite", _sqlite_file, shared_between_processes=True),
    Backend("sqlite-memory", _sqlite_memory, private_to_process=True),
    Backend("file", _file, shared_between_processes=True),
    # Nothing is lacking: what items cannot carry is kept in the id map (sessions/conversations.py).
    Backend("conversations", _conversations),
    Backend("redis", _redis, marks=(pytest.mark.redis,)),
    Backend("redis-cluster", _redis_cluster, marks=(pytest.mark.redis,)),
    Backend("redis-min-replicas", _redis_replicated, marks=(pytest.mark.redis,)),
    Backend("redis-cluster-min-replicas", _redis_cluster_replicated, marks=(pytest.mark.redis,)),
    Backend("postgres", _postgres, marks=(pytest.mark.postgres,)),
]

#: The fixed key wrapper stacks are encrypted with in tests.
TEST_KEY = bytes(range(32))


def _compress(store: sessions.Session) -> sessions.Session:
    # threshold=0: even short messages are compressed, so the envelope path is exercised.
    return sessions.with_compression(store, threshold=0)


def _encrypt(store: sessions.Session) -> sessions.Session:
    return sessions.with_encryption(store, TEST_KEY)


WRAPPERS: dict[str, Callable[[sessions.Session], sessions.Session]] = {
    "gzip": _compress,
    "aes": _encrypt,
}


def wrapped(stack: str, base: str) -> Backend:
    """The backend named ``base`` in BACKENDS under the wrappers of ``stack``, outermost
    first ("gzip+aes" is with_compression(with_encryption(store))), named "gzip+aes+base"."""
    inner = next(b for b in BACKENDS if b.name == base)
    layers = [WRAPPERS[name] for name in reversed(stack.split("+"))]

    @contextlib.contextmanager
    def open_wrapped(tmp_path: Path) -> Iterator[sessions.Session]:
        with inner.open(tmp_path) as store:
            for layer in layers:
                store = layer(store)
            yield store

    return Backend(f"{stack}+{base}", open_wrapped, inner.marks, inner.lacks,
                   inner.shared_between_processes, inner.private_to_process)


# Each backend gets its stacks with one line per stack, after its own entry, e.g.
# wrapped("gzip", "redis"), wrapped("aes", "redis"), wrapped("gzip+aes", "redis").
BACKENDS += [
    wrapped("gzip", "memory"),
    wrapped("gzip", "sqlite"),
    wrapped("aes", "memory"),
    wrapped("aes", "sqlite"),
    wrapped("gzip+aes", "sqlite"),
    wrapped("gzip", "file"),
    wrapped("aes", "file"),
    wrapped("gzip", "redis"),
    wrapped("aes", "redis"),
    wrapped("gzip", "postgres"),
    wrapped("aes", "postgres"),
    wrapped("gzip+aes", "postgres"),
]


#: The stores framework adapter tests run on: the embedded default and the servers.
FRAMEWORK_BACKENDS = ("sqlite", "redis", "postgres")


def params(names: tuple[str, ...] | None = None) -> list[Any]:
    """pytest params for every backend in BACKENDS, or only those named."""
    chosen = [b for b in BACKENDS if names is None or b.name in names]
    return [pytest.param(b, id=b.name, marks=list(b.marks)) for b in chosen]
