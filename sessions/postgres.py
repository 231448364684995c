"""PostgreSQL through psycopg 3 and psycopg_pool (extra ``postgres``), sync and async.

Layout (``session_layer_`` is the default, configurable table prefix):

* ``session_layer_schema``: the schema version, migrated on first use under a
  transaction-scoped advisory lock, so many processes may start at once.
* ``session_layer_sessions``: one row per session (a ``bigint`` reference, the
  ``session_id`` text, ``created_at``/``updated_at`` timestamps, ``message_count`` and
  ``next_seq``, the next sequence number).
* ``session_layer_messages``: one row per message with primary key
  ``(session_ref, seq)``, so ``get(limit=N)`` is a backward scan of N index entries.
  Bodies are ``json``, not ``jsonb``: ``json`` keeps the record exactly as written
  (key order, duplicate-free text, ``\\u0000`` escapes), while ``jsonb`` reorders keys
  and refuses ``\\u0000``. Both are validated JSON and both work with ``->``/``->>``.

Table names are composed with :class:`psycopg.sql.Identifier` once, when the store is
built, and never formatted into SQL text from user input; the prefix is validated too.
Every operation costs one round trip: an append is one statement, and ``pop``,
``replace``, ``clear`` and ``delete`` two statements of one transaction sent in one
pipeline (see :mod:`sessions._postgres_sql`, which holds the SQL; the connections are
in :mod:`sessions._postgres_pools`).

Durability is PostgreSQL's: an acknowledged append is committed (and survives a crash
as far as the server's ``synchronous_commit``/``fsync`` settings promise).
"""

from __future__ import annotations

import math
import re
from collections.abc import AsyncIterator, Iterator, Mapping
from datetime import datetime
from typing import Any, TypeVar

from . import _fork
from ._base import BaseSession, SessionInfo
from ._errors import BackendUnavailableError, ConfigurationError, MissingDependencyError, SessionError, shown
from ._options import check_flag, check_int, check_seconds, check_text
from ._registry import StoreURL, parse_bool

try:
    import psycopg
    from psycopg_pool import AsyncConnectionPool, ConnectionPool, PoolTimeout
except ImportError as _error:  # pragma: no cover - exercised in a subprocess test
    raise MissingDependencyError(
        _error.name or "psycopg", "postgres", feature="sessions.postgres"
    ) from _error

# These import psycopg too: only once it is known to be installed.
from ._postgres_pools import PostgresPools, build_conninfo
from ._postgres_sql import SCHEMA_VERSION, Plan, Statements

__all__ = ["PostgresSession"]

T = TypeVar("T")

DEFAULT_PREFIX = "session_layer_"
_PREFIX = re.compile(r"[a-z_][a-z0-9_]{0,39}")
_MAX_POOL = 10_000


def _mapping(name: str, value: object) -> Mapping[Any, Any]:
    if value is None:
        return {}
    if not isinstance(value, Mapping):
        raise ConfigurationError(f"{name} must be a mapping, not {type(value).__name__}")
    return value


class PostgresSession(BaseSession):
    """Sessions in PostgreSQL, with psycopg 3 connection pools (sync and async).

    Construct from a DSN or URL (``"postgresql://user@host:5432/db"``), from settings
    (``host``, ``port``, ``user``, ``password``, ``database``), or from pools you already
    have (``pool`` a ``psycopg_pool.ConnectionPool``, ``async_pool`` an
    ``AsyncConnectionPool``). Pools you pass in are used as they are — open them
    yourself — and never closed by this store; a given async pool serves the first event
    loop that uses it, and other event loops (and forked child processes, for both
    pools) use connections of the store's own made with the pool's ``conninfo`` and
    ``kwargs``. Otherwise the store opens a
    ``psycopg_pool.ConnectionPool`` on its first sync call, and native async psycopg
    connections for async calls: a small set per event loop, opened on demand in the
    calling task with no background tasks, so a loop may end (``asyncio.run``
    returning) with the store still open. :meth:`close`/:meth:`aclose` close them all.

    A DSN may name a primary and its standbys (libpq's multi-host form,
    ``"host=db1,db2 port=5432,5432 target_session_attrs=read-write"``): every new
    connection goes to whichever of them accepts writes, so after a failover the same
    store reaches the promoted standby once the old connections have failed.

    :param table_prefix: prefix of the three tables (lowercase letters, digits and
        ``_``, at most 40 characters).
    :param min_size, max_size: connections the sync pool keeps open, and the most it
        opens; ``max_size`` also bounds the async connections of each event loop.
    :param connect_timeout: seconds to wait for a connection (from the pool, and for
        each new connection) before :class:`BackendUnavailableError`.
    :param prepare: use server-side prepared statements for repeated queries
        (psycopg's automatic preparation). Pass ``False`` behind a transaction-mode
        pooler (PgBouncer before 1.21, or without ``max_prepared_statements``).
    :param connect_options: further libpq settings (``sslmode``, ``application_name``
        — ``"session-layer"`` unless given —, ...).
    """

    driver_errors = (psycopg.Error, PoolTimeout, OSError)
    #: Session ids per keyset page read by :meth:`list_sessions`.
    list_page_size = 500

    def __init__(
        self,
        dsn: str | None = None,
        *,
        pool: ConnectionPool[Any] | None = None,
        async_pool: AsyncConnectionPool[Any] | None = None,
        host: str | None = None,
        port: int | None = None,
        user: str | None = None,
        password: str | None = None,
        database: str | None = None,
        table_prefix: str = DEFAULT_PREFIX,
        min_size: int = 1,
        max_size: int = 10,
        connect_timeout: float = 5.0,
        prepare: bool = True,
        connect_options: Mapping[str, str] | None = None,
    ) -> None:
        if not isinstance(table_prefix, str) or not _PREFIX.fullmatch(table_prefix):
            raise ConfigurationError(
                f"table_prefix must be 1-40 lowercase letters, digits or '_' (not starting "
                f"with a digit), got {shown(table_prefix)}"
            )
        self.connect_timeout = check_seconds("connect_timeout", connect_timeout)
        self.min_size = check_int("min_size", min_size, minimum=0, maximum=_MAX_POOL)
        self.max_size = check_int("max_size", max_size, minimum=1, maximum=_MAX_POOL)
        if self.min_size > self.max_size:
            raise ConfigurationError(f"need min_size <= max_size, got {min_size} > {max_size}")
        self.prepare = check_flag("prepare", prepare)
        settings = {"host": check_text("host", host, optional=True),
                    "port": None if port is None else check_int("port", port, minimum=1, maximum=65535),
                    "user": check_text("user", user, optional=True),
                    "password": check_text("password", password, optional=True, empty=True),
                    "dbname": check_text("database", database, optional=True)}
        given = {key: value for key, value in settings.items() if value is not None}
        dsn = check_text("dsn", dsn, optional=True, empty=True)
        extra = {
            check_text("connect_options key", key):
                check_text(f"connect option {shown(key)}", value, empty=True)
            for key, value in _mapping("connect_options", connect_options).items()
        }
        if (pool is not None or async_pool is not None) and (dsn is not None or given):
            raise ConfigurationError("pass either existing pools or connection settings, not both")
        if pool is not None and not isinstance(pool, ConnectionPool):
            raise ConfigurationError(f"pool must be a psycopg_pool.ConnectionPool, not {type(pool).__name__}")
        if async_pool is not None and not isinstance(async_pool, AsyncConnectionPool):
            raise ConfigurationError(
                f"async_pool must be a psycopg_pool.AsyncConnectionPool, not {type(async_pool).__name__}"
            )
        self.table_prefix = table_prefix
        conninfo = build_conninfo(dsn, given, extra, max(2, math.ceil(self.connect_timeout)), password)
        self._pools = PostgresPools(
            conninfo, {"autocommit": True, "prepare_threshold": 5 if self.prepare else None},
            pool=pool, async_pool=async_pool, min_size=self.min_size, max_size=self.max_size,
            timeout=self.connect_timeout, name=f"session-layer-{table_prefix}",
            check=self._refuse_if_closed,
        )
        _fork.register(self)
        self._schema_ready = False
        self._statements = Statements(table_prefix)

    @classmethod
    def from_url(cls, url: StoreURL) -> PostgresSession:
        """``postgresql://user:password@host:5432/database`` (or ``postgres://``).

        Options: ``table_prefix``, ``connect_timeout``, ``min_size``, ``max_size``,
        ``prepare`` (true/false), and the libpq settings ``host`` (e.g. a socket
        directory), ``port``, ``sslmode``, ``sslrootcert``, ``sslcert``, ``sslkey``,
        ``application_name``, ``target_session_attrs``. As in libpq, ``host`` and
        ``port`` given as options win over the URL's own, and may list several servers:
        ``postgresql://app@/app?host=db1,db2&port=5432,5432&target_session_attrs=read-write``
        connects to whichever of them is the primary.
        """
        libpq = ("host", "port", "sslmode", "sslrootcert", "sslcert", "sslkey", "application_name",
                 "target_session_attrs")
        options = url.options({
            "table_prefix": str, "connect_timeout": float, "min_size": int, "max_size": int,
            "prepare": parse_bool, **{name: str for name in libpq},
        })
        connect_options = {name: options.pop(name) for name in libpq if name in options}
        database = url.path[1:] if url.path.startswith("/") else url.path
        return cls(
            host=None if "host" in connect_options else url.host,
            port=None if "port" in connect_options else url.port,
            user=url.username, password=url.password, database=database or None,
            connect_options=connect_options, **options,
        )

    def __repr__(self) -> str:
        return f"PostgresSession(table_prefix={self.table_prefix!r})"

    # -- schema -------------------------------------------------------------------------------

    def _migrate(self, conn: psycopg.Connection[Any]) -> None:
        sql = self._statements.sql
        with conn.transaction():
            conn.execute(*self._statements.schema_lock())
            conn.execute(sql["create_schema"])
            row = conn.execute(sql["schema_version"]).fetchone()
            version = int(row[0] or 0) if row else 0
            for statement in self._statements.migration_steps(version):
                conn.execute(statement)
            if version < SCHEMA_VERSION:
                conn.execute(sql["clear_version"])
                conn.execute(sql["set_version"], (SCHEMA_VERSION,))
        self._schema_ready = True

    async def _amigrate(self, conn: psycopg.AsyncConnection[Any]) -> None:
        sql = self._statements.sql
        async with conn.transaction():
            await conn.execute(*self._statements.schema_lock())
            await conn.execute(sql["create_schema"])
            row = await (await conn.execute(sql["schema_version"])).fetchone()
            version = int(row[0] or 0) if row else 0
            for statement in self._statements.migration_steps(version):
                await conn.execute(statement)
            if version < SCHEMA_VERSION:
                await conn.execute(sql["clear_version"])
                await conn.execute(sql["set_version"], (SCHEMA_VERSION,))
        self._schema_ready = True

    @property
    def schema_version(self) -> int:
        """The schema version stored in the database (migrating first if needed)."""
        return self._run(self._statements.schema_version())

    # -- running plans: the only I/O ---------------------------------------------------------

    # (getconn/putconn rather than ``pool.connection()``: the context manager's
    # connection-level ``with`` costs more than the pool itself on a 0.2 ms append.)

    def _run(self, plan: Plan[T]) -> T:
        pool = self._pools.sync()
        conn = pool.getconn()
        try:
            if not self._schema_ready:
                self._migrate(conn)
            if conn.autocommit:
                return self._execute(conn, plan)
            with conn.transaction():  # a pool of the caller's, with transactional connections
                return self._execute(conn, plan)
        finally:
            pool.putconn(conn)

    @staticmethod
    def _execute(conn: psycopg.Connection[Any], plan: Plan[T]) -> T:
        if len(plan.steps) == 1:
            query, params = plan.steps[0]
            cursor = conn.execute(query, params)
        else:
            with conn.pipeline(), conn.transaction():
                for query, params in plan.steps:
                    cursor = conn.execute(query, params)
        return plan.result(cursor.fetchall() if cursor.description else [])

    async def _arun(self, plan: Plan[T]) -> T:
        pool = self._pools.for_loop()
        conn = await pool.getconn()
        try:
            if not self._schema_ready:
                await self._amigrate(conn)
            if conn.autocommit:
                return await self._aexecute(conn, plan)
            async with conn.transaction():
                return await self._aexecute(conn, plan)
        finally:
            await pool.putconn(conn)

    @staticmethod
    async def _aexecute(conn: psycopg.AsyncConnection[Any], plan: Plan[T]) -> T:
        if len(plan.steps) == 1:
            query, params = plan.steps[0]
            cursor = await conn.execute(query, params)
        else:
            async with conn.pipeline(), conn.transaction():
                for query, params in plan.steps:
                    cursor = await conn.execute(query, params)
        return plan.result(await cursor.fetchall() if cursor.description else [])

    # -- the record hooks, sync ---------------------------------------------------------------

    def _get(self, session_id: str, limit: int | None) -> list[str]:
        return self._run(self._statements.get(session_id, limit))

    def _append(self, session_id: str, records: list[str]) -> None:
        self._run(self._statements.append(session_id, records))

    def _pop(self, session_id: str) -> str | None:
        return self._run(self._statements.pop(session_id))

    def _replace(self, session_id: str, records: list[str]) -> None:
        self._run(self._statements.replace(session_id, records))

    def _clear(self, session_id: str) -> None:
        self._run(self._statements.clear(session_id))

    def _delete(self, session_id: str) -> None:
        self._run(self._statements.delete(session_id))

    def _delete_if_idle(self, session_id: str, cutoff: datetime) -> bool:
        return self._run(self._statements.delete_if_idle(session_id, cutoff))

    def _count(self, session_id: str) -> int:
        return self._run(self._statements.count(session_id))

    def _info(self, session_id: str) -> SessionInfo | None:
        return self._run(self._statements.info(session_id))

    def _iter_sessions(self) -> Iterator[str]:
        # Keyset pages over the primary key: bounded memory, and no connection or
        # cursor is held between pages.
        after = 0
        while True:
            rows = self._run(self._statements.list_page(after, self.list_page_size))
            for row in rows:
                yield row[1]
            if len(rows) < self.list_page_size:
                return
            after = rows[-1][0]

    # -- the record hooks, async (native) ----------------------------------------------------

    async def _aget(self, session_id: str, limit: int | None) -> list[str]:
        return await self._arun(self._statements.get(session_id, limit))

    async def _aappend(self, session_id: str, records: list[str]) -> None:
        await self._arun(self._statements.append(session_id, records))

    async def _apop(self, session_id: str) -> str | None:
        return await self._arun(self._statements.pop(session_id))

    async def _areplace(self, session_id: str, records: list[str]) -> None:
        await self._arun(self._statements.replace(session_id, records))

    async def _aclear(self, session_id: str) -> None:
        await self._arun(self._statements.clear(session_id))

    async def _adelete(self, session_id: str) -> None:
        await self._arun(self._statements.delete(session_id))

    async def _adelete_if_idle(self, session_id: str, cutoff: datetime) -> bool:
        return await self._arun(self._statements.delete_if_idle(session_id, cutoff))

    async def _acount(self, session_id: str) -> int:
        return await self._arun(self._statements.count(session_id))

    async def _ainfo(self, session_id: str) -> SessionInfo | None:
        return await self._arun(self._statements.info(session_id))

    async def _aiter_sessions(self) -> AsyncIterator[str]:
        after = 0
        while True:
            rows = await self._arun(self._statements.list_page(after, self.list_page_size))
            for row in rows:
                yield row[1]
            if len(rows) < self.list_page_size:
                return
            after = rows[-1][0]

    # -- closing ----------------------------------------------------------------------------------

    def _close(self) -> None:
        self._pools.close()

    async def _aclose(self) -> None:
        self._pools.close_loop()
        await self._offload(self._close)

    def _after_fork(self) -> None:
        self._pools.after_fork()

    def _translate_error(self, error: BaseException, session_id: str | None,
                         operation: str) -> SessionError:
        if isinstance(error, PoolTimeout):
            message = (f"PostgreSQL: no connection within {self.connect_timeout:g}s "
                       f"(server down or pool exhausted): {error}")
        else:
            message = f"PostgreSQL: {error}"
        return BackendUnavailableError(message, session_id=session_id, operation=operation)
