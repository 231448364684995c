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


@contextlib.contextmanager
def _memory(tmp_path: Path) -> Iterator[sessions.Session]:
    with sessions.MemorySession() as store:
        yield store


@contextlib.contextmanager
def _sqlite_file(tmp_path: Path) -> Iterator[sessions.Session]:
    with sessions.SQLiteSession(tmp_path / "conformance.db") as store:
        yield store


@contextlib.contextmanager
def _sqlite_memory(tmp_path: Path) -> Iterator[sessions.Session]:
    with sessions.SQLiteSession(":memory:") as store:
        yield store


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
def _redis_cluster(tmp_path: Path) -> Iterator[sessions.Session]:
    from tests.redis_servers import RedisServer, shared_cluster

    if not RedisServer.available():
        server_unavailable("a Redis Cluster", "redis-server is not installed")
    cluster = shared_cluster()
    prefix = f"test:{uuid.uuid4().hex}:"
    store = sessions.RedisSession(
        f"redis+cluster://127.0.0.1:{cluster.port}?prefix={prefix}&socket_timeout=10"
    )
    try:
        with store:
            yield store
    finally:
        import redis.cluster

        with redis.cluster.RedisCluster(host="127.0.0.1", port=cluster.port) as client:
            _delete_prefixed(client, prefix)


BACKENDS: list[Backend] = [
    Backend("memory", _memory),
    Backend("sqlite", _sqlite_file, shared_between_processes=True),
    Backend("sqlite-memory", _sqlite_memory),
    Backend("redis", _redis, marks=(pytest.mark.redis,)),
    Backend("redis-cluster", _redis_cluster, marks=(pytest.mark.redis,)),
]


#: The stores framework adapter tests run on: the embedded default and the servers.
FRAMEWORK_BACKENDS = ("sqlite", "redis", "postgres")


def params(names: tuple[str, ...] | None = None) -> list[Any]:
    """pytest params for every backend in BACKENDS, or only those named."""
    chosen = [b for b in BACKENDS if names is None or b.name in names]
    return [pytest.param(b, id=b.name, marks=list(b.marks)) for b in chosen]
