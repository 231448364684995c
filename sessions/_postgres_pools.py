"""The connections of :class:`~sessions.postgres.PostgresSession`.

Sync calls use a ``psycopg_pool.ConnectionPool``: the store's own, opened on its first
sync call, or the one it was given. Async connections belong to the event loop that
opened them, so each loop gets its own (:class:`LoopPool`: opened on demand in the
calling task, no background tasks), and those of loops that have ended are closed; a
given ``AsyncConnectionPool`` serves the first loop that uses it. A forked child drops
them all, unclosed, and opens its own with the same settings (:class:`PostgresPools`).

An idle connection the server has closed (a restart, an idle timeout) is found with
one non-blocking ``poll`` of its socket, and replaced before use instead of failing
the caller.
"""

from __future__ import annotations

import asyncio
import re
import threading
from collections.abc import Callable
from typing import Any

import psycopg
from psycopg.conninfo import conninfo_to_dict, make_conninfo
from psycopg_pool import AsyncConnectionPool, ConnectionPool, PoolTimeout

from . import _fork
from ._errors import ConfigurationError, StoreClosedError
from ._io import readable_now
from ._registry import redact_url

__all__ = ["LoopPool", "PostgresPools", "build_conninfo"]

# A password in a key=value DSN: password=secret or password='se cret'.
_DSN_PASSWORD = re.compile(r"password\s*=\s*('(?:[^'\\]|\\.)*'?|\S+)")


def _without_secrets(message: str, dsn: str, password: str | None) -> str:
    """``message`` with every password of ``dsn`` (URL or key=value form) and
    ``password`` replaced by ``***``."""
    secrets = [password] if password else []
    secrets += [match.group(1) for match in _DSN_PASSWORD.finditer(dsn)]
    if "://" in dsn:
        masked = redact_url(dsn)
        secrets += [dsn[dsn.find("://") + 3:dsn.rfind("@")]] if masked != dsn else []
    for secret in sorted(filter(None, secrets), key=len, reverse=True):
        message = message.replace(secret, "***")
        message = message.replace(secret.strip("'"), "***") if len(secret.strip("'")) > 2 else message
    return message


def build_conninfo(dsn: str | None, settings: dict[str, Any], options: dict[str, str],
                   connect_timeout: int, password: str | None) -> str:
    """The libpq connection string of ``dsn`` with ``settings`` and ``options`` added
    (``application_name`` ``"session-layer"`` unless given); a bad one raises
    :class:`ConfigurationError` that shows no password."""
    try:
        if "application_name" not in conninfo_to_dict(dsn or ""):
            options.setdefault("application_name", "session-layer")
        return make_conninfo(dsn or "", **settings, **options, connect_timeout=connect_timeout)
    except psycopg.ProgrammingError as error:
        # libpq quotes the part of the DSN it could not parse: never show a password.
        raise ConfigurationError(
            "bad PostgreSQL connection settings: "
            + _without_secrets(str(error).strip(), dsn or "", password)
        ) from None


def _closed_by_server(conn: psycopg.Connection[Any] | psycopg.AsyncConnection[Any]) -> bool:
    """An idle connection with something to read has been closed by the server (a
    restart, an idle timeout). One non-blocking ``poll`` (any descriptor number), no
    round trip."""
    return readable_now(conn.fileno())


def _check_idle(conn: psycopg.Connection[Any]) -> None:
    """Pool check: drop a dead connection before use instead of failing the caller."""
    if _closed_by_server(conn):
        conn.close()
        raise psycopg.OperationalError("connection closed by the server while idle")


class LoopPool:
    """Our own async connections for one event loop: at most ``max_size``, opened on
    demand in the caller's task and kept while idle.

    Unlike ``psycopg_pool.AsyncConnectionPool`` it runs no background tasks, so an event
    loop may end (``asyncio.run`` returning) with the store still open: nothing is left
    running in it, and the idle connections are closed by :meth:`close_idle`.
    """

    def __init__(self, conninfo: str, kwargs: dict[str, Any], max_size: int, timeout: float) -> None:
        self._conninfo, self._kwargs, self._timeout = conninfo, kwargs, timeout
        self._slots = asyncio.Semaphore(max_size)
        self._idle: list[psycopg.AsyncConnection[Any]] = []
        self._closed = False

    async def getconn(self) -> psycopg.AsyncConnection[Any]:
        if self._closed:
            raise StoreClosedError("PostgresSession is closed; open a new store")
        try:
            await asyncio.wait_for(self._slots.acquire(), self._timeout)
        except asyncio.TimeoutError:
            raise PoolTimeout(f"no free connection after {self._timeout:g}s") from None
        try:
            while self._idle:
                conn = self._idle.pop()
                if not conn.closed and not _closed_by_server(conn):
                    return conn
                await conn.close()
            return await psycopg.AsyncConnection.connect(self._conninfo, **self._kwargs)
        except BaseException:
            self._slots.release()
            raise

    async def putconn(self, conn: psycopg.AsyncConnection[Any]) -> None:
        try:
            if conn.closed or conn.info.transaction_status != psycopg.pq.TransactionStatus.IDLE:
                await conn.close()  # broken, or left mid-transaction by a cancelled call
            elif self._closed:
                conn.pgconn.finish()
            else:
                self._idle.append(conn)
        finally:
            self._slots.release()

    def close_idle(self) -> None:
        """Close the idle connections, and any given back later; callable from any
        thread, without the loop."""
        self._closed = True
        idle, self._idle = self._idle, []
        for conn in idle:
            conn.pgconn.finish()


def _close_idle(pool: LoopPool | AsyncConnectionPool[Any]) -> None:
    if isinstance(pool, LoopPool):  # a given pool is its owner's to close
        pool.close_idle()


class PostgresPools:
    """The sync pool and the per-loop async connections of one store.

    ``conninfo`` and ``kwargs`` are the settings of the connections the store opens
    itself; with a given pool, those of that pool. ``check`` runs before anything new
    is opened (a closed store refuses).
    """

    def __init__(self, conninfo: str, kwargs: dict[str, Any], *, pool: ConnectionPool[Any] | None,
                 async_pool: AsyncConnectionPool[Any] | None, min_size: int, max_size: int,
                 timeout: float, name: str, check: Callable[[], None]) -> None:
        self._conninfo, self._kwargs = conninfo, kwargs
        self._min_size, self._max_size, self._timeout, self._name = min_size, max_size, timeout, name
        self._check = check
        self._pool = pool
        self._async_pool = async_pool  # the caller's: serves the first loop that uses it
        self._async_pool_used = False
        self._given: ConnectionPool[Any] | AsyncConnectionPool[Any] | None = (
            pool if pool is not None else async_pool
        )
        self._own_pool = pool is None
        # Async connections of each event loop that used this store.
        self._async_pools: dict[asyncio.AbstractEventLoop, LoopPool | AsyncConnectionPool[Any]] = {}
        self._lock = threading.Lock()

    def _settings(self) -> tuple[str, dict[str, Any]]:
        """Connection string and keyword arguments of the connections the store opens:
        its own, or those of the pool it was given."""
        given = self._given
        if given is None:
            return self._conninfo, self._kwargs
        conninfo, kwargs = given.conninfo, given.kwargs or {}
        if not isinstance(conninfo, str) or not isinstance(kwargs, dict):
            raise ConfigurationError(
                "the given pool computes its conninfo or kwargs with a function; the store "
                "cannot open connections like its own for another event loop or a forked process"
            )
        return conninfo, kwargs

    def sync(self) -> ConnectionPool[Any]:
        """The pool of sync calls (opened on first use unless one was given)."""
        pool = self._pool
        if pool is None:
            with self._lock:
                self._check()
                pool = self._pool
                if pool is None:
                    conninfo, kwargs = self._settings()
                    pool = ConnectionPool(
                        conninfo, kwargs=kwargs, min_size=self._min_size,
                        max_size=self._max_size, timeout=self._timeout, check=_check_idle,
                        open=False, name=self._name,
                    )
                    pool.open(wait=False)
                    self._pool = pool
        return pool

    def for_loop(self) -> AsyncConnectionPool[Any] | LoopPool:
        """The running event loop's async connections."""
        loop = asyncio.get_running_loop()
        pool = self._async_pools.get(loop)
        if pool is None:
            # Connections belong to the event loop that opened them: each loop gets its
            # own, and those of loops that have ended are closed.
            with self._lock:
                self._check()
                for gone in [other for other in self._async_pools if other.is_closed()]:
                    _close_idle(self._async_pools.pop(gone))
                if self._async_pool is not None and not self._async_pool_used:
                    self._async_pool_used = True
                    pool = self._async_pool
                else:
                    conninfo, kwargs = self._settings()
                    pool = LoopPool(conninfo, kwargs, self._max_size, self._timeout)
                self._async_pools[loop] = pool
        return pool

    def close(self) -> None:
        """Close the store's own pool and the idle async connections of every loop."""
        with self._lock:
            pool = self._pool if self._own_pool else None
            if self._own_pool:
                self._pool = None
            pools, self._async_pools = self._async_pools, {}
        if pool is not None:
            pool.close()
        for loop_pool in pools.values():
            _close_idle(loop_pool)

    def close_loop(self) -> None:
        """Close the idle async connections of the running event loop."""
        with self._lock:
            pool = self._async_pools.pop(asyncio.get_running_loop(), None)
        if pool is not None:
            _close_idle(pool)

    def after_fork(self) -> None:
        """In a forked child: drop the parent's pools and connections, unclosed."""
        self._lock = threading.Lock()
        _fork.abandon(self._pool if self._own_pool else None, *self._async_pools.values())
        # A given pool's connections and worker threads are the parent's: the child
        # opens its own with the same settings.
        self._pool, self._own_pool = None, True
        self._async_pools = {}
        self._async_pool_used = True
