"""Reading peer stores with our own drivers: ``sqlite3``, ``psycopg`` and ``redis``.

Everything here reads; nothing writes. A SQLite file is opened read-only
(``mode=ro``), a PostgreSQL read runs in a ``READ ONLY`` transaction, and only Redis
read commands are sent. Table and key names come from URL options: they are checked
(:func:`check_name`) and always quoted as identifiers, never formatted into SQL as text.

Each driver is fork-safe as our stores are (see :mod:`sessions._fork`): a forked child
drops the parent's connections and client without closing them and opens its own.
"""

from __future__ import annotations

import abc
import functools
import importlib
import math
import os
import re
import sqlite3
import threading
from collections.abc import Callable, Iterator, Mapping, Sequence
from typing import Any, TypeVar
from urllib.parse import quote

from sessions import ConfigurationError, MissingDependencyError, _fork
from sessions._registry import StoreURL

__all__ = [
    "DRIVER_ERRORS",
    "Database",
    "Fetch",
    "Layout",
    "PostgresDatabase",
    "RedisReader",
    "SQLiteDatabase",
    "check_layout",
    "check_name",
    "glob_escape",
    "iter_distinct",
    "one_query",
    "open_database",
    "read_rows",
    "redis_reader",
]

T = TypeVar("T")
Row = tuple[Any, ...]
Fetch = Callable[[str, Sequence[Any]], list[Row]]
"""Run one query (``?`` placeholders) inside a read snapshot and return its rows."""


class _NeverRaised(Exception):
    """Stands in for the error class of a driver that is not installed."""


def _error_class(module: str, name: str) -> type[BaseException]:
    try:
        found: type[BaseException] = getattr(importlib.import_module(module), name)
    except ImportError:
        return _NeverRaised
    return found


#: What the drivers raise when a store cannot be reached or read; mapped to
#: ``BackendUnavailableError`` by the sources.
DRIVER_ERRORS: tuple[type[BaseException], ...] = (
    sqlite3.Error, OSError, _error_class("psycopg", "Error"), _error_class("redis", "RedisError"),
)

_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]{0,62}")


def check_name(option: str, value: str) -> str:
    """A table or schema name from a URL option: letters, digits and ``_``, at most 63."""
    if not _NAME.fullmatch(value):
        raise ConfigurationError(
            f"{option} must be 1-63 letters, digits or '_' (not starting with a digit), got {value!r}"
        )
    return value


def glob_escape(text: str) -> str:
    """``text`` matched literally in a Redis ``SCAN MATCH`` pattern."""
    return "".join("\\" + c if c in "\\*?[]^" else c for c in text)


def _positive_seconds(option: str, value: float) -> float:
    if not (math.isfinite(value) and value > 0):
        raise ConfigurationError(f"{option} must be a positive number of seconds, got {value!r}")
    return value


# -- SQL databases ----------------------------------------------------------------------------


class Database(abc.ABC):
    """A SQL database read through one driver: quoting, the catalog, read snapshots."""

    #: Says where the data is, in errors: "SQLite file '/data/chats.db'".
    where: str

    @abc.abstractmethod
    def table(self, name: str, schema: str | None = None) -> str:
        """The quoted (schema-qualified) identifier of a table."""

    @abc.abstractmethod
    def columns(self, name: str, schema: str | None = None) -> dict[str, str]:
        """Column name -> declared type (lower case) of a table; empty if it does not exist."""

    @abc.abstractmethod
    def read(self, work: Callable[[Fetch], T]) -> T:
        """Run ``work`` with queries that all see one snapshot of the database."""

    @abc.abstractmethod
    def close(self) -> None: ...


class SQLiteDatabase(Database):
    """A SQLite file opened read-only; one connection behind a lock, shared by threads.

    A fork waits until no thread is reading (SQLite keeps per-process lock state); the
    child opens a connection of its own.
    """

    def __init__(self, path: str, timeout: float = 30.0) -> None:
        if not path or path == ":memory:":
            raise ConfigurationError("a peer's SQLite store must be a file: give its path")
        self.path = path
        self.where = f"SQLite file {path!r}"
        if not os.path.isfile(path):
            raise ConfigurationError(f"no SQLite database file {path!r}")
        self.timeout = _positive_seconds("timeout", timeout)
        self._lock = threading.Lock()
        self._conn: sqlite3.Connection | None = None
        _fork.register_quiet(self)

    def _quiet_lock(self) -> threading.Lock:
        return self._lock

    def _after_fork(self) -> None:
        _fork.abandon(self._conn)
        self._lock, self._conn = threading.Lock(), None

    def _connection(self) -> sqlite3.Connection:
        if self._conn is None:
            uri = "file:" + quote(os.path.abspath(self.path)) + "?mode=ro"
            conn = sqlite3.connect(uri, uri=True, timeout=self.timeout, isolation_level=None,
                                   check_same_thread=False)
            try:
                conn.execute("SELECT count(*) FROM sqlite_master").fetchone()
            except sqlite3.DatabaseError as error:
                conn.close()
                raise ConfigurationError(f"{self.where} is not a SQLite database: {error}") from error
            self._conn = conn
        return self._conn

    def table(self, name: str, schema: str | None = None) -> str:
        return '"' + name.replace('"', '""') + '"'

    def columns(self, name: str, schema: str | None = None) -> dict[str, str]:
        rows = self.read(lambda fetch: fetch("SELECT name, type FROM pragma_table_info(?)", (name,)))
        return {str(column).lower(): str(kind).lower() for column, kind in rows}

    def read(self, work: Callable[[Fetch], T]) -> T:
        with self._lock:
            conn = self._connection()

            def fetch(query: str, params: Sequence[Any]) -> list[Row]:
                return conn.execute(query, params).fetchall()

            conn.execute("BEGIN")  # one read snapshot (WAL) for every query of the work
            try:
                return work(fetch)
            finally:
                conn.execute("COMMIT")

    def close(self) -> None:
        with self._lock:
            if self._conn is not None:
                self._conn.close()
                self._conn = None


_LIBPQ_OPTIONS = ("sslmode", "sslrootcert", "sslcert", "sslkey", "application_name",
                  "target_session_attrs")


class PostgresDatabase(Database):
    """A PostgreSQL database read in ``REPEATABLE READ, READ ONLY`` transactions.

    Connections are opened on demand (at most ``max_size``) and kept while idle; a
    read that fails on a connection that was idle (closed by a server restart) is
    retried once on a new one: reads have no side effects.
    """

    def __init__(self, url: StoreURL, options: Mapping[str, Any], max_size: int = 4) -> None:
        try:
            import psycopg
            from psycopg.conninfo import make_conninfo
        except ImportError as error:
            raise MissingDependencyError(error.name or "psycopg", "postgres",
                                         feature="reading a PostgreSQL peer store") from error
        self._psycopg = psycopg
        database = url.path[1:] if url.path.startswith("/") else url.path
        timeout = _positive_seconds("connect_timeout", float(options.get("connect_timeout", 10)))
        settings = {"host": options.get("host") or url.host, "port": url.port, "user": url.username,
                    "password": url.password, "dbname": database or None}
        extra = {name: options[name] for name in _LIBPQ_OPTIONS if name in options}
        extra.setdefault("application_name", "session-layer")
        try:
            self._conninfo = make_conninfo(
                "", **{k: v for k, v in settings.items() if v is not None}, **extra,
                connect_timeout=max(2, math.ceil(timeout)),
            )
        except psycopg.ProgrammingError as error:
            raise ConfigurationError(f"bad PostgreSQL connection settings: {error}") from None
        self.where = f"PostgreSQL database {database or '(default)'!r} at {url.host or 'localhost'}"
        self._max_size = max_size
        self._idle: list[Any] = []
        self._open = 0
        self._lock = threading.Condition()
        _fork.register(self)

    def _after_fork(self) -> None:
        # Connections in use by the parent's threads at the fork are the parent's too:
        # none is counted in the child.
        _fork.abandon(*self._idle)
        self._lock, self._idle, self._open = threading.Condition(), [], 0

    #: URL options this database takes, with their parsers.
    OPTIONS: Mapping[str, Callable[[str], Any]] = {
        "connect_timeout": float, "host": str, **{name: str for name in _LIBPQ_OPTIONS},
    }

    def table(self, name: str, schema: str | None = None) -> str:
        from psycopg import sql

        identifier = sql.Identifier(name) if schema is None else sql.Identifier(schema, name)
        return identifier.as_string(None)

    def columns(self, name: str, schema: str | None = None) -> dict[str, str]:
        rows = self.read(lambda fetch: fetch(
            "SELECT a.attname, format_type(a.atttypid, a.atttypmod) FROM pg_attribute AS a"
            " WHERE a.attrelid = to_regclass(?) AND a.attnum > 0 AND NOT a.attisdropped",
            (self.table(name, schema),),
        ))
        return {str(column).lower(): str(kind).lower() for column, kind in rows}

    def _take(self) -> tuple[Any, bool]:
        with self._lock:
            while not self._idle and self._open >= self._max_size:
                self._lock.wait()
            if self._idle:
                return self._idle.pop(), True
            self._open += 1
        try:
            conn = self._psycopg.connect(self._conninfo, autocommit=True)
            conn.isolation_level = self._psycopg.IsolationLevel.REPEATABLE_READ
            conn.read_only = True
        except BaseException:
            self._release(None)
            raise
        return conn, False

    def _release(self, conn: Any) -> None:
        with self._lock:
            if conn is None or conn.closed:
                self._open -= 1
            else:
                self._idle.append(conn)
            self._lock.notify()

    @staticmethod
    def _run(conn: Any, work: Callable[[Fetch], T]) -> T:
        def fetch(query: str, params: Sequence[Any]) -> list[Row]:
            return list(conn.execute(query.replace("?", "%s"), params).fetchall())

        with conn.transaction():
            return work(fetch)

    def read(self, work: Callable[[Fetch], T]) -> T:
        for attempt in (1, 2):
            conn, was_idle = self._take()
            try:
                result = self._run(conn, work)
            except self._psycopg.OperationalError:
                conn.close()
                self._release(conn)
                if attempt == 2 or not was_idle:
                    raise
                continue
            except BaseException:
                conn.close()
                self._release(conn)
                raise
            self._release(conn)
            return result
        raise AssertionError("unreachable")  # pragma: no cover

    def close(self) -> None:
        with self._lock:
            idle, self._idle = self._idle, []
            self._open -= len(idle)
        for conn in idle:
            conn.close()


Layout = tuple[tuple[str, tuple[str, ...]], ...]
"""A peer's table: (column, type prefixes it may have; empty for any type), ..."""


def check_layout(database: Database, table: str, schema: str | None, layout: Layout,
                 kind: str) -> None:
    """Raise ConfigurationError unless ``table`` exists with the columns of ``layout``."""
    columns = database.columns(table, schema)
    if not columns:
        within = f" in schema {schema!r}" if schema else ""
        raise ConfigurationError(f"{database.where} has no table {table!r}{within}")
    for name, kinds in layout:
        found = columns.get(name)
        if found is None or not found.startswith(kinds or ("",)):
            typed = f" of type {'/'.join(kinds)}" if kinds else ""
            present = ", ".join(f"{column} {declared}" for column, declared in sorted(columns.items()))
            raise ConfigurationError(
                f"table {table!r} in {database.where} is not a {kind} table: expected a column "
                f"{name!r}{typed}; it has {present}"
            )


def iter_distinct(database: Database, table: str, column: str, page: int = 500) -> Iterator[Any]:
    """The distinct non-null values of a (quoted) column, in order, a page at a time:
    no snapshot or cursor is held between pages."""
    base = f"SELECT DISTINCT {column} FROM {table} WHERE {column} IS NOT NULL"
    after: Any = None
    while True:
        query = f"{base} ORDER BY {column} LIMIT ?"
        params: tuple[Any, ...] = (page,)
        if after is not None:
            query = f"{base} AND {column} > ? ORDER BY {column} LIMIT ?"
            params = (after, page)
        rows = database.read(one_query(query, params))
        for (value,) in rows:
            yield value
        if len(rows) < page:
            return
        after = rows[-1][0]


def read_rows(database: Database, select: str, key: Any, forwards: str, backwards: str,
              limit: int | None) -> list[tuple[Any, Any]]:
    """The ``(id, payload)`` rows ``select`` (a query with one ``?``, for ``key``) gives,
    in ``forwards`` order (an ``ORDER BY`` list): all of them, or the last ``limit``,
    read in ``backwards`` order and put back."""

    def read(fetch: Fetch) -> list[tuple[Any, Any]]:
        if limit is None:
            return [(r[0], r[1]) for r in fetch(f"{select} ORDER BY {forwards}", (key,))]
        rows = fetch(f"{select} ORDER BY {backwards} LIMIT ?", (key, limit))
        return [(r[0], r[1]) for r in reversed(rows)]

    return database.read(read)


def one_query(text: str, params: Sequence[Any]) -> Callable[[Fetch], list[Row]]:
    """Work for :meth:`Database.read`: one query and its rows."""
    return lambda fetch: fetch(text, params)


def open_database(url: StoreURL, extra_options: Mapping[str, Callable[[str], Any]]
                  ) -> tuple[Database, dict[str, Any]]:
    """The database a ``family+sqlite:///path`` or ``family+postgresql://...`` URL names,
    and the URL's other options parsed with ``extra_options``."""
    dialect = url.scheme.partition("+")[2]
    if dialect == "sqlite":
        options = url.options({"timeout": float, **extra_options})
        if url.host:
            raise ConfigurationError(
                f"{url.scheme} URL names a host; use {url.scheme}:///relative.db or {url.scheme}:////abs.db"
            )
        path = url.path[1:] if url.path.startswith("/") else url.path
        return SQLiteDatabase(path, options.pop("timeout", 30.0)), options
    if dialect in ("postgresql", "postgres"):
        options = url.options({**PostgresDatabase.OPTIONS, **extra_options})
        connection = {name: options.pop(name) for name in list(options) if name in PostgresDatabase.OPTIONS}
        return PostgresDatabase(url, connection), options
    raise ConfigurationError(f"{url.scheme}:// names no SQL database this library reads")


# -- Redis ----------------------------------------------------------------------------------------


class RedisReader:
    """Read commands on one Redis server (``redis://`` or ``rediss://``, database in the path)."""

    OPTIONS: Mapping[str, Callable[[str], Any]] = {"socket_timeout": float}

    def __init__(self, url: StoreURL, socket_timeout: float = 10.0) -> None:
        try:
            import redis
        except ImportError as error:
            raise MissingDependencyError(error.name or "redis", "redis",
                                         feature="reading a Redis peer store") from error
        database = url.path.strip("/") or "0"
        if not database.isdigit():
            raise ConfigurationError(f"the path of a Redis URL is a database number, got {url.path!r}")
        timeout = _positive_seconds("socket_timeout", socket_timeout)
        self.where = f"Redis database {database} at {url.host or 'localhost'}:{url.port or 6379}"
        self._new_client = functools.partial(
            redis.Redis,
            host=url.host or "localhost", port=url.port or 6379, db=int(database),
            username=url.username, password=url.password, ssl=url.scheme.endswith("rediss"),
            socket_timeout=timeout, socket_connect_timeout=timeout, protocol=2,
        )
        self.client: Any = self._new_client()
        _fork.register(self)

    def _after_fork(self) -> None:
        _fork.abandon(self.client)
        self.client = self._new_client()  # connects on first use

    def session_ids(self, prefix: str, kind: str) -> Iterator[str]:
        """What follows ``prefix`` in the keys of one type (``list``, ``hash``) that start
        with it, streamed with ``SCAN`` (never ``KEYS``)."""
        size = len(prefix.encode())
        for key in self.client.scan_iter(match=glob_escape(prefix) + "*", count=1000, _type=kind):
            if len(key) > size:
                yield key[size:].decode("utf-8", "surrogateescape")

    def close(self) -> None:
        self.client.close()


def redis_reader(url: StoreURL, extra_options: Mapping[str, Callable[[str], Any]]
                 ) -> tuple[RedisReader, dict[str, Any]]:
    """The Redis server a ``family+redis://...`` URL names, and its other options."""
    options = url.options({**RedisReader.OPTIONS, **extra_options})
    timeout = options.pop("socket_timeout", 10.0)
    return RedisReader(url, timeout), options
