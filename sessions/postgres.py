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

An append is one statement (so one round trip and one transaction on an autocommit
connection): a data-modifying CTE upserts the session row, which locks it, bumps
``next_seq`` and returns the first sequence number of the batch, and inserts the batch
from one ``text[]`` parameter. Concurrent appends to one session queue on that row
lock, so sequence numbers are never duplicated and a batch is never interleaved.
``pop``, ``replace``, ``clear`` and ``delete`` first lock the session row and then
change the messages in a second statement of the same transaction (each statement of a
READ COMMITTED transaction sees every write committed before it started); both are
sent in one pipeline, so they also cost one round trip.

Durability is PostgreSQL's: an acknowledged append is committed (and survives a crash
as far as the server's ``synchronous_commit``/``fsync`` settings promise).
"""

from __future__ import annotations

import asyncio
import math
import re
import threading
from collections.abc import AsyncIterator, Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Any, Generic, TypeVar

from . import _fork
from ._base import BaseSession, SessionInfo
from ._errors import (
    BackendUnavailableError,
    ConfigurationError,
    CorruptRecordError,
    MissingDependencyError,
    SessionError,
    StoreClosedError,
    shown,
)
from ._io import readable_now
from ._options import check_flag, check_int, check_seconds, check_text
from ._registry import StoreURL, parse_bool, redact_url

try:
    import psycopg
    from psycopg import sql
    from psycopg.conninfo import conninfo_to_dict, make_conninfo
    from psycopg_pool import AsyncConnectionPool, ConnectionPool, PoolTimeout
except ImportError as _error:  # pragma: no cover - exercised in a subprocess test
    raise MissingDependencyError(
        _error.name or "psycopg", "postgres", feature="sessions.postgres"
    ) from _error

__all__ = ["PostgresSession"]

T = TypeVar("T")
Row = tuple[Any, ...]
Params = Mapping[str, Any] | Sequence[Any]

SCHEMA_VERSION = 1
DEFAULT_PREFIX = "session_layer_"
_PREFIX = re.compile(r"[a-z_][a-z0-9_]{0,39}")
_MAX_POOL = 10_000
# A password in a key=value DSN: password=secret or password='se cret'.
_DSN_PASSWORD = re.compile(r"password\s*=\s*('(?:[^'\\]|\\.)*'?|\S+)")


def _mapping(name: str, value: object) -> Mapping[Any, Any]:
    if value is None:
        return {}
    if not isinstance(value, Mapping):
        raise ConfigurationError(f"{name} must be a mapping, not {type(value).__name__}")
    return value


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
# Namespace of our advisory locks (the second key is hashtext(table prefix)).
_LOCK_NAMESPACE = 0x5E551

# SQL templates: {schema}, {sessions} and {messages} are filled in with identifiers.
_MIGRATIONS: tuple[tuple[str, ...], ...] = (
    (
        """CREATE TABLE IF NOT EXISTS {sessions} (
            id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
            session_id text NOT NULL UNIQUE,
            created_at timestamptz NOT NULL,
            updated_at timestamptz NOT NULL,
            message_count bigint NOT NULL,
            next_seq bigint NOT NULL
        )""",
        """CREATE TABLE IF NOT EXISTS {messages} (
            session_ref bigint NOT NULL,
            seq bigint NOT NULL,
            body json NOT NULL,
            PRIMARY KEY (session_ref, seq)
        )""",
    ),
)

_SQL = {
    "create_schema": "CREATE TABLE IF NOT EXISTS {schema} (version integer NOT NULL)",
    "lock_schema": "SELECT pg_advisory_xact_lock(%s, hashtext(%s))",
    "schema_version": "SELECT max(version) FROM {schema}",
    "clear_version": "DELETE FROM {schema}",
    "set_version": "INSERT INTO {schema} (version) VALUES (%s)",
    "append": """
        WITH s AS (
            INSERT INTO {sessions} AS s (session_id, created_at, updated_at, message_count, next_seq)
            VALUES (%(id)s, now(), now(), %(n)s, %(n)s)
            ON CONFLICT (session_id) DO UPDATE SET updated_at = now(),
                message_count = s.message_count + excluded.message_count,
                next_seq = s.next_seq + excluded.next_seq
            RETURNING s.id, s.next_seq - %(n)s AS first
        )
        INSERT INTO {messages} (session_ref, seq, body)
        SELECT s.id, s.first + m.ord - 1, m.body::json
        FROM s CROSS JOIN unnest(%(bodies)s::text[]) WITH ORDINALITY AS m(body, ord)""",
    # The same for one message, without the array: a third cheaper on the server.
    "append_one": """
        WITH s AS (
            INSERT INTO {sessions} AS s (session_id, created_at, updated_at, message_count, next_seq)
            VALUES (%(id)s, now(), now(), 1, 1)
            ON CONFLICT (session_id) DO UPDATE SET updated_at = now(),
                message_count = s.message_count + 1, next_seq = s.next_seq + 1
            RETURNING s.id, s.next_seq - 1 AS first
        )
        INSERT INTO {messages} (session_ref, seq, body) SELECT s.id, s.first, %(body)s::json FROM s""",
    "get_all": """
        SELECT body::text FROM {messages}
        WHERE session_ref = (SELECT id FROM {sessions} WHERE session_id = %s) ORDER BY seq""",
    "get_last": """
        SELECT body::text FROM {messages}
        WHERE session_ref = (SELECT id FROM {sessions} WHERE session_id = %s)
        ORDER BY seq DESC LIMIT %s""",
    "lock": "SELECT id FROM {sessions} WHERE session_id = %s FOR UPDATE",
    "pop": """
        WITH s AS (SELECT id FROM {sessions} WHERE session_id = %(id)s),
        m AS (
            DELETE FROM {messages} WHERE (session_ref, seq) = (
                SELECT session_ref, seq FROM {messages}
                WHERE session_ref = (SELECT id FROM s) ORDER BY seq DESC LIMIT 1)
            RETURNING body
        ),
        u AS (
            UPDATE {sessions} SET message_count = message_count - 1, updated_at = now()
            WHERE id = (SELECT id FROM s) AND EXISTS (SELECT FROM m)
        )
        SELECT body::text FROM m""",
    "replace_lock": """
        INSERT INTO {sessions} AS s (session_id, created_at, updated_at, message_count, next_seq)
        VALUES (%(id)s, now(), now(), %(n)s, %(n)s)
        ON CONFLICT (session_id) DO UPDATE SET updated_at = now(),
            message_count = excluded.message_count, next_seq = s.next_seq + excluded.next_seq""",
    "replace": """
        WITH s AS (SELECT id, next_seq - %(n)s AS first FROM {sessions} WHERE session_id = %(id)s),
        d AS (DELETE FROM {messages} AS m USING s WHERE m.session_ref = s.id AND m.seq < s.first)
        INSERT INTO {messages} (session_ref, seq, body)
        SELECT s.id, s.first + m.ord - 1, m.body::json
        FROM s CROSS JOIN unnest(%(bodies)s::text[]) WITH ORDINALITY AS m(body, ord)""",
    "clear_lock": "UPDATE {sessions} SET message_count = 0, updated_at = now() WHERE session_id = %s",
    "clear": """
        DELETE FROM {messages}
        WHERE session_ref = (SELECT id FROM {sessions} WHERE session_id = %s)""",
    "delete": """
        WITH s AS (DELETE FROM {sessions} WHERE session_id = %s RETURNING id)
        DELETE FROM {messages} WHERE session_ref IN (SELECT id FROM s)""",
    # Conditional delete: the row lock first (a concurrent append commits before it, and
    # then makes the session fresh), then the delete, re-checked, with its messages.
    "lock_idle": "SELECT id FROM {sessions} WHERE session_id = %s AND updated_at < %s FOR UPDATE",
    "delete_idle": """
        WITH s AS (DELETE FROM {sessions} WHERE session_id = %s AND updated_at < %s RETURNING id),
        m AS (DELETE FROM {messages} WHERE session_ref IN (SELECT id FROM s))
        SELECT count(*) FROM s""",
    "count": "SELECT message_count FROM {sessions} WHERE session_id = %s",
    "info": "SELECT message_count, created_at, updated_at FROM {sessions} WHERE session_id = %s",
    "list": "SELECT id, session_id FROM {sessions} WHERE id > %s ORDER BY id LIMIT %s",
}


def _compose(template: str, names: Mapping[str, sql.Identifier]) -> str:
    """Fill table identifiers into a template; the result is plain SQL text with
    placeholders for the values."""
    return sql.SQL(template).format(**names).as_string(None)


@dataclass(frozen=True)
class _Plan(Generic[T]):
    """What one operation sends: statements run in order (in one transaction when
    there are several) and how the rows of the last one become the result."""

    steps: tuple[tuple[str, Params], ...]
    result: Callable[[list[Row]], T]


def _rows_to_none(rows: list[Row]) -> None:
    return None


def _first_column(rows: list[Row]) -> list[str]:
    return [row[0] for row in rows]


def _reversed_first_column(rows: list[Row]) -> list[str]:
    return [row[0] for row in reversed(rows)]


def _optional_text(rows: list[Row]) -> str | None:
    return None if not rows else str(rows[0][0])


def _int_or_zero(rows: list[Row]) -> int:
    return 0 if not rows else int(rows[0][0])


def _one_or_more(rows: list[Row]) -> bool:
    return _int_or_zero(rows) > 0


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


class _LoopPool:
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
        try:
            if "application_name" not in conninfo_to_dict(dsn or ""):
                extra.setdefault("application_name", "session-layer")
            self._conninfo = make_conninfo(
                dsn or "", **given, **extra, connect_timeout=max(2, math.ceil(self.connect_timeout)),
            )
        except psycopg.ProgrammingError as error:
            # libpq quotes the part of the DSN it could not parse: never show a password.
            raise ConfigurationError(
                "bad PostgreSQL connection settings: "
                + _without_secrets(str(error).strip(), dsn or "", password)
            ) from None
        self._pool = pool
        self._async_pool = async_pool  # the caller's: serves the first loop that uses it
        self._async_pool_used = False
        self._given: ConnectionPool[Any] | AsyncConnectionPool[Any] | None = (
            pool if pool is not None else async_pool
        )
        self._own_pool = pool is None
        # Async connections of each event loop that used this store.
        self._async_pools: dict[asyncio.AbstractEventLoop, _LoopPool | AsyncConnectionPool[Any]] = {}
        self._lock = threading.Lock()
        _fork.register(self)
        self._schema_ready = False
        names = {
            "schema": sql.Identifier(table_prefix + "schema"),
            "sessions": sql.Identifier(table_prefix + "sessions"),
            "messages": sql.Identifier(table_prefix + "messages"),
        }
        self._sql = {key: _compose(template, names) for key, template in _SQL.items()}
        self._migrations = tuple(
            tuple(_compose(statement, names) for statement in step) for step in _MIGRATIONS
        )

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

    # -- connections ------------------------------------------------------------------------

    def _connection_kwargs(self) -> dict[str, Any]:
        return {"autocommit": True, "prepare_threshold": 5 if self.prepare else None}

    def _settings(self) -> tuple[str, dict[str, Any]]:
        """Connection string and keyword arguments of the connections the store opens:
        its own, or those of the pool it was given."""
        given = self._given
        if given is None:
            return self._conninfo, self._connection_kwargs()
        conninfo, kwargs = given.conninfo, given.kwargs or {}
        if not isinstance(conninfo, str) or not isinstance(kwargs, dict):
            raise ConfigurationError(
                "the given pool computes its conninfo or kwargs with a function; the store "
                "cannot open connections like its own for another event loop or a forked process"
            )
        return conninfo, kwargs

    def _sync_pool(self) -> ConnectionPool[Any]:
        pool = self._pool
        if pool is None:
            with self._lock:
                self._refuse_if_closed()
                pool = self._pool
                if pool is None:
                    conninfo, kwargs = self._settings()
                    pool = ConnectionPool(
                        conninfo, kwargs=kwargs, min_size=self.min_size,
                        max_size=self.max_size, timeout=self.connect_timeout, check=_check_idle,
                        open=False, name=f"session-layer-{self.table_prefix}",
                    )
                    pool.open(wait=False)
                    self._pool = pool
        return pool

    def _asyncio_pool(self) -> AsyncConnectionPool[Any] | _LoopPool:
        loop = asyncio.get_running_loop()
        pool = self._async_pools.get(loop)
        if pool is None:
            # Connections belong to the event loop that opened them: each loop gets its
            # own, and those of loops that have ended are closed.
            with self._lock:
                self._refuse_if_closed()
                for gone in [other for other in self._async_pools if other.is_closed()]:
                    _close_idle(self._async_pools.pop(gone))
                if self._async_pool is not None and not self._async_pool_used:
                    self._async_pool_used = True
                    pool = self._async_pool
                else:
                    conninfo, kwargs = self._settings()
                    pool = _LoopPool(conninfo, kwargs, self.max_size, self.connect_timeout)
                self._async_pools[loop] = pool
        return pool

    # -- schema -------------------------------------------------------------------------------

    def _migration_steps(self, version: int) -> list[str]:
        if version > SCHEMA_VERSION:
            raise ConfigurationError(
                f"tables {self.table_prefix}* have schema version {version}, newer than this "
                f"library's {SCHEMA_VERSION}; upgrade session-layer"
            )
        return [statement for step in self._migrations[version:] for statement in step]

    def _migrate(self, conn: psycopg.Connection[Any]) -> None:
        with conn.transaction():
            conn.execute(self._sql["lock_schema"], (_LOCK_NAMESPACE, self.table_prefix))
            conn.execute(self._sql["create_schema"])
            row = conn.execute(self._sql["schema_version"]).fetchone()
            version = int(row[0] or 0) if row else 0
            for statement in self._migration_steps(version):
                conn.execute(statement)
            if version < SCHEMA_VERSION:
                conn.execute(self._sql["clear_version"])
                conn.execute(self._sql["set_version"], (SCHEMA_VERSION,))
        self._schema_ready = True

    async def _amigrate(self, conn: psycopg.AsyncConnection[Any]) -> None:
        async with conn.transaction():
            await conn.execute(self._sql["lock_schema"], (_LOCK_NAMESPACE, self.table_prefix))
            await conn.execute(self._sql["create_schema"])
            row = await (await conn.execute(self._sql["schema_version"])).fetchone()
            version = int(row[0] or 0) if row else 0
            for statement in self._migration_steps(version):
                await conn.execute(statement)
            if version < SCHEMA_VERSION:
                await conn.execute(self._sql["clear_version"])
                await conn.execute(self._sql["set_version"], (SCHEMA_VERSION,))
        self._schema_ready = True

    @property
    def schema_version(self) -> int:
        """The schema version stored in the database (migrating first if needed)."""
        return self._run(_Plan(((self._sql["schema_version"], ()),), _int_or_zero))

    # -- running plans: the only I/O ---------------------------------------------------------

    # (getconn/putconn rather than ``pool.connection()``: the context manager's
    # connection-level ``with`` costs more than the pool itself on a 0.2 ms append.)

    def _run(self, plan: _Plan[T]) -> T:
        pool = self._pool or self._sync_pool()
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
    def _execute(conn: psycopg.Connection[Any], plan: _Plan[T]) -> T:
        if len(plan.steps) == 1:
            query, params = plan.steps[0]
            cursor = conn.execute(query, params)
        else:
            with conn.pipeline(), conn.transaction():
                for query, params in plan.steps:
                    cursor = conn.execute(query, params)
        return plan.result(cursor.fetchall() if cursor.description else [])

    async def _arun(self, plan: _Plan[T]) -> T:
        pool = self._asyncio_pool()
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
    async def _aexecute(conn: psycopg.AsyncConnection[Any], plan: _Plan[T]) -> T:
        if len(plan.steps) == 1:
            query, params = plan.steps[0]
            cursor = await conn.execute(query, params)
        else:
            async with conn.pipeline(), conn.transaction():
                for query, params in plan.steps:
                    cursor = await conn.execute(query, params)
        return plan.result(await cursor.fetchall() if cursor.description else [])

    # -- plans: what each operation sends -----------------------------------------------------

    def _plan_get(self, session_id: str, limit: int | None) -> _Plan[list[str]]:
        if limit is None:
            return _Plan(((self._sql["get_all"], (session_id,)),), _first_column)
        return _Plan(((self._sql["get_last"], (session_id, limit)),), _reversed_first_column)

    def _plan_append(self, session_id: str, records: list[str]) -> _Plan[None]:
        if len(records) == 1:
            one = {"id": session_id, "body": records[0]}
            return _Plan(((self._sql["append_one"], one),), _rows_to_none)
        params = {"id": session_id, "n": len(records), "bodies": records}
        return _Plan(((self._sql["append"], params),), _rows_to_none)

    def _plan_pop(self, session_id: str) -> _Plan[str | None]:
        return _Plan(
            ((self._sql["lock"], (session_id,)), (self._sql["pop"], {"id": session_id})),
            _optional_text,
        )

    def _plan_replace(self, session_id: str, records: list[str]) -> _Plan[None]:
        params = {"id": session_id, "n": len(records), "bodies": records}
        return _Plan(
            ((self._sql["replace_lock"], params), (self._sql["replace"], params)), _rows_to_none
        )

    def _plan_clear(self, session_id: str) -> _Plan[None]:
        return _Plan(
            ((self._sql["clear_lock"], (session_id,)), (self._sql["clear"], (session_id,))),
            _rows_to_none,
        )

    def _plan_delete(self, session_id: str) -> _Plan[None]:
        return _Plan(
            ((self._sql["lock"], (session_id,)), (self._sql["delete"], (session_id,))),
            _rows_to_none,
        )

    def _plan_delete_if_idle(self, session_id: str, cutoff: datetime) -> _Plan[bool]:
        params = (session_id, cutoff)
        return _Plan(
            ((self._sql["lock_idle"], params), (self._sql["delete_idle"], params)), _one_or_more
        )

    def _plan_count(self, session_id: str) -> _Plan[int]:
        return _Plan(((self._sql["count"], (session_id,)),), _int_or_zero)

    def _plan_info(self, session_id: str) -> _Plan[SessionInfo | None]:
        def info(rows: list[Row]) -> SessionInfo | None:
            if not rows:
                return None
            count, created_at, updated_at = rows[0]
            return SessionInfo(session_id, int(count), _as_datetime(created_at),
                               _as_datetime(updated_at))

        return _Plan(((self._sql["info"], (session_id,)),), info)

    def _plan_list_page(self, after: int) -> _Plan[list[Row]]:
        return _Plan(((self._sql["list"], (after, self.list_page_size)),), list)

    # -- the record hooks, sync ---------------------------------------------------------------

    def _get(self, session_id: str, limit: int | None) -> list[str]:
        return self._run(self._plan_get(session_id, limit))

    def _append(self, session_id: str, records: list[str]) -> None:
        self._run(self._plan_append(session_id, records))

    def _pop(self, session_id: str) -> str | None:
        return self._run(self._plan_pop(session_id))

    def _replace(self, session_id: str, records: list[str]) -> None:
        self._run(self._plan_replace(session_id, records))

    def _clear(self, session_id: str) -> None:
        self._run(self._plan_clear(session_id))

    def _delete(self, session_id: str) -> None:
        self._run(self._plan_delete(session_id))

    def _delete_if_idle(self, session_id: str, cutoff: datetime) -> bool:
        return self._run(self._plan_delete_if_idle(session_id, cutoff))

    def _count(self, session_id: str) -> int:
        return self._run(self._plan_count(session_id))

    def _info(self, session_id: str) -> SessionInfo | None:
        return self._run(self._plan_info(session_id))

    def _iter_sessions(self) -> Iterator[str]:
        # Keyset pages over the primary key: bounded memory, and no connection or
        # cursor is held between pages.
        after = 0
        while True:
            rows = self._run(self._plan_list_page(after))
            for row in rows:
                yield row[1]
            if len(rows) < self.list_page_size:
                return
            after = rows[-1][0]

    # -- the record hooks, async (native) ----------------------------------------------------

    async def _aget(self, session_id: str, limit: int | None) -> list[str]:
        return await self._arun(self._plan_get(session_id, limit))

    async def _aappend(self, session_id: str, records: list[str]) -> None:
        await self._arun(self._plan_append(session_id, records))

    async def _apop(self, session_id: str) -> str | None:
        return await self._arun(self._plan_pop(session_id))

    async def _areplace(self, session_id: str, records: list[str]) -> None:
        await self._arun(self._plan_replace(session_id, records))

    async def _aclear(self, session_id: str) -> None:
        await self._arun(self._plan_clear(session_id))

    async def _adelete(self, session_id: str) -> None:
        await self._arun(self._plan_delete(session_id))

    async def _adelete_if_idle(self, session_id: str, cutoff: datetime) -> bool:
        return await self._arun(self._plan_delete_if_idle(session_id, cutoff))

    async def _acount(self, session_id: str) -> int:
        return await self._arun(self._plan_count(session_id))

    async def _ainfo(self, session_id: str) -> SessionInfo | None:
        return await self._arun(self._plan_info(session_id))

    async def _aiter_sessions(self) -> AsyncIterator[str]:
        after = 0
        while True:
            rows = await self._arun(self._plan_list_page(after))
            for row in rows:
                yield row[1]
            if len(rows) < self.list_page_size:
                return
            after = rows[-1][0]

    # -- closing ----------------------------------------------------------------------------------

    def _close(self) -> None:
        with self._lock:
            pool = self._pool if self._own_pool else None
            if self._own_pool:
                self._pool = None
            pools, self._async_pools = self._async_pools, {}
        if pool is not None:
            pool.close()
        for loop_pool in pools.values():
            _close_idle(loop_pool)

    async def _aclose(self) -> None:
        with self._lock:
            pool = self._async_pools.pop(asyncio.get_running_loop(), None)
        if pool is not None:
            _close_idle(pool)
        await self._offload(self._close)

    def _after_fork(self) -> None:
        self._lock = threading.Lock()
        _fork.abandon(self._pool if self._own_pool else None, *self._async_pools.values())
        # A given pool's connections and worker threads are the parent's: the child
        # opens its own with the same settings.
        self._pool, self._own_pool = None, True
        self._async_pools = {}
        self._async_pool_used = True

    def _translate_error(self, error: BaseException, session_id: str | None,
                         operation: str) -> SessionError:
        if isinstance(error, PoolTimeout):
            message = (f"PostgreSQL: no connection within {self.connect_timeout:g}s "
                       f"(server down or pool exhausted): {error}")
        else:
            message = f"PostgreSQL: {error}"
        return BackendUnavailableError(message, session_id=session_id, operation=operation)


def _close_idle(pool: _LoopPool | AsyncConnectionPool[Any]) -> None:
    if isinstance(pool, _LoopPool):  # a given pool is its owner's to close
        pool.close_idle()


def _as_datetime(value: Any) -> datetime:
    if not isinstance(value, datetime):  # pragma: no cover - psycopg always loads timestamptz
        raise CorruptRecordError(f"expected a timestamp, got {shown(value)}")
    return value.astimezone(timezone.utc)
