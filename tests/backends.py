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
    Backend("memory", _memory),
    Backend("sqlite", _sqlite_file, shared_between_processes=True),
    Backend("sqlite-memory", _sqlite_memory),
    Backend("postgres", _postgres, marks=(pytest.mark.postgres,)),
]


#: The stores framework adapter tests run on: the embedded default and the servers.
FRAMEWORK_BACKENDS = ("sqlite", "redis", "postgres")


def params(names: tuple[str, ...] | None = None) -> list[Any]:
    """pytest params for every backend in BACKENDS, or only those named."""
    chosen = [b for b in BACKENDS if names is None or b.name in names]
    return [pytest.param(b, id=b.name, marks=list(b.marks)) for b in chosen]
