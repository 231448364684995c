"""LlamaIndex's chat stores, read in place (extra ``llamaindex``).

Each stored message is a ``ChatMessage`` dump, validated with
``ChatMessage.model_validate`` as the peer's own read does and converted by
:func:`adapters.llamaindex.to_canonical`. Keys are session ids.

==============================================  ==========================================
peer store                                      layout read
==============================================  ==========================================
``SimpleChatStore`` persist file                ``{"store": {key: [message, ...]}}`` (or
(``llamaindex+file:///path/chat_store.json``)   that object as a JSON string, as older
                                                versions wrote it)
``RedisChatStore``                              a list per key (``RPUSH``, oldest first);
(``llamaindex+redis://host:6379/0``)            every list key of the database, or those
                                                under ``?key_prefix=`` (stripped from ids)
``PostgresChatStore``                           table ``chatstore`` (``?table=``, lowered
(``llamaindex+postgresql://...``)               as the peer does; ``data_`` + name if that
                                                legacy table exists) in schema ``public``
                                                (``?schema=``): ``key``, ``value``
                                                (an array of json/jsonb)
``SQLAlchemyChatStore``, the store of           table ``llama_index_memory``
``Memory`` (``llamaindex-sql+sqlite:///db``,    (``?table=``; ``?schema=`` on PostgreSQL):
``llamaindex-sql+postgresql://...``)            a row per message, active and archived,
                                                ordered by ``(timestamp, id)``
==============================================  ==========================================
"""

from __future__ import annotations

import json
import os
import threading
from collections.abc import Callable, Iterable, Iterator
from typing import Any

from llama_index.core.base.llms.types import ChatMessage

from adapters.llamaindex import to_canonical
from sessions import ConfigurationError, SessionInfo, _fork
from sessions._message import Message
from sessions._registry import StoreURL

from ._base import UNKNOWN_TIME, PeerSource, RedisSource, convert_rows, corrupt, utc_from_ns
from ._drivers import (
    DRIVER_ERRORS,
    Database,
    Layout,
    SQLiteDatabase,
    check_layout,
    check_name,
    iter_distinct,
    one_query,
    open_database,
    read_rows,
)

__all__ = ["LlamaIndexFileSource", "LlamaIndexPostgresSource", "LlamaIndexRedisSource",
           "LlamaIndexSQLSource"]

#: Keys per page when listing a table.
PAGE = 500


def _parse(payload: Any) -> Message:
    """A stored ``ChatMessage`` dump (JSON text or parsed) as a canonical message."""
    if isinstance(payload, (str, bytes)):
        return to_canonical(ChatMessage.model_validate_json(payload))
    return to_canonical(ChatMessage.model_validate(payload))


def _convert(rows: Iterable[tuple[Any, Any]], count: int, where: Callable[[Any], str],
             session_id: str) -> list[Message]:
    return convert_rows(rows, count, where, session_id, _parse, "a LlamaIndex ChatMessage")


# -- SimpleChatStore's persist file ---------------------------------------------------------


class LlamaIndexFileSource(PeerSource):
    """A ``SimpleChatStore`` persist file (``chat_store.persist(path)``).

    The file is one JSON document: it is read whole on first use and again whenever it
    changes (size, time or inode), so ``get(limit=N)`` converts N messages but the file
    is parsed whole. Each message is kept as its JSON text, so every read builds fresh
    objects. ``info`` has no times (the file keeps none): :data:`UNKNOWN_TIME`. A fork
    waits until no thread is loading the file; the child keeps the copy.
    """

    driver_errors = DRIVER_ERRORS

    def __init__(self, path: str) -> None:
        if not os.path.isfile(path):
            raise ConfigurationError(f"no SimpleChatStore file {path!r}")
        self.path = path
        self._lock = threading.Lock()
        self._stamp: tuple[int, int, int] | None = None
        self._store: dict[str, list[str]] = {}
        _fork.register_quiet(self)

    def _quiet_lock(self) -> threading.Lock:
        return self._lock

    def _after_fork(self) -> None:
        self._lock = threading.Lock()  # the forking thread held it: the copy is consistent

    @classmethod
    def from_url(cls, url: StoreURL) -> LlamaIndexFileSource:
        """``llamaindex+file:///relative/chat_store.json``, ``llamaindex+file:////abs/path.json``."""
        url.options({})
        if url.host:
            raise ConfigurationError(f"{url.scheme} URL names a host; use {url.scheme}:///path.json")
        path = url.path[1:] if url.path.startswith("/") else url.path
        if not path:
            raise ConfigurationError(f"{url.scheme} URL names no file")
        return cls(path)

    def __repr__(self) -> str:
        return f"LlamaIndexFileSource({self.path!r})"

    def _snapshot(self) -> dict[str, list[str]]:
        try:
            status = os.stat(self.path)
        except FileNotFoundError:
            raise ConfigurationError(f"no SimpleChatStore file {self.path!r}") from None
        stamp = (status.st_mtime_ns, status.st_size, status.st_ino)
        with self._lock:
            if stamp != self._stamp:
                self._store = self._load()
                self._stamp = stamp
            return self._store

    def _load(self) -> dict[str, list[str]]:
        where = f"SimpleChatStore file {self.path!r}"
        with open(self.path, encoding="utf-8") as handle:
            try:
                data = json.load(handle)
                if isinstance(data, str):  # older versions persisted the JSON text as a string
                    data = json.loads(data)
            except ValueError as error:
                raise corrupt(where, f"not JSON ({error})", None, "read") from error
        store = data.get("store") if isinstance(data, dict) else None
        if not isinstance(store, dict):
            raise corrupt(where, "not a SimpleChatStore persist file (no \"store\" object)", None, "read")
        texts: dict[str, list[str]] = {}
        for key, messages in store.items():
            if not isinstance(messages, list):
                raise corrupt(where, f"key {key!r} holds a {type(messages).__name__}, not a list",
                              key, "read")
            texts[key] = [json.dumps(message, ensure_ascii=False) for message in messages]
        return texts

    def _read(self, session_id: str, limit: int | None) -> list[Message]:
        stored = self._snapshot().get(session_id, [])
        first = 0 if limit is None else max(0, len(stored) - limit)
        rows = ((i, stored[i]) for i in range(first, len(stored)))
        return _convert(rows, len(stored) - first,
                        lambda i: f"message {i} of key {session_id!r} in file {self.path!r}", session_id)

    def _count(self, session_id: str) -> int:
        return len(self._snapshot().get(session_id, []))

    def _exists(self, session_id: str) -> bool:
        return session_id in self._snapshot()

    def _iter_sessions(self) -> Iterator[str]:
        # The file is in memory already; its keys are copied so that a reload while the
        # caller iterates does not change what is being iterated.
        yield from list(self._snapshot())


# -- RedisChatStore -------------------------------------------------------------------------


class LlamaIndexRedisSource(RedisSource):
    """``RedisChatStore``: a list per key, oldest first; ``get(limit=N)`` reads N elements.

    The peer has no key prefix and lists every key of the database: by default so does
    this source (every *list* key); ``key_prefix`` keeps only the keys under it and
    strips it from the session ids. ``info`` has no times: :data:`UNKNOWN_TIME`.
    """

    default_prefix = ""

    def _read(self, session_id: str, limit: int | None) -> list[Message]:
        key = self.key_prefix + session_id
        stored = self.reader.client.lrange(key, 0 if limit is None else -limit, -1)
        # A window's elements are named by their index from the end, as Redis counts them.
        first = 0 if limit is None else -len(stored)
        rows = ((first + i, item) for i, item in enumerate(stored))
        return _convert(rows, len(stored),
                        lambda i: f"element {i} of list {key!r} in {self.reader.where}", session_id)

    def _count(self, session_id: str) -> int:
        return int(self.reader.client.llen(self.key_prefix + session_id))

    def _iter_sessions(self) -> Iterator[str]:
        return self.reader.session_ids(self.key_prefix, "list")

    def _close(self) -> None:
        self.reader.close()


# -- SQL tables ------------------------------------------------------------------------------


class _SQLSource(PeerSource):
    driver_errors = DRIVER_ERRORS
    _kind: str
    _layout: Layout

    def __init__(self, database: Database, table: str, schema: str | None) -> None:
        self.database = database
        self.table_name = table
        self.schema = schema
        self._table = database.table(table, schema)
        self._checked = False

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.database.where}, table={self.table_name!r})"

    def _check_layout(self) -> None:
        if not self._checked:
            check_layout(self.database, self.table_name, self.schema, self._layout, self._kind)
            self._checked = True

    def _where(self, position: Any) -> str:
        return f"row id={position} of table {self.table_name!r} in {self.database.where}"

    def _close(self) -> None:
        self.database.close()


class LlamaIndexPostgresSource(_SQLSource):
    """``PostgresChatStore``: one row per key holding the whole history as an array.

    ``get(limit=N)`` sends only the last N elements (the server still reads the row);
    ``count`` is the array's length. ``info`` has no times: :data:`UNKNOWN_TIME`.
    """

    _kind = "PostgresChatStore"
    _layout = (("id", ("int",)), ("key", ("character varying", "varchar", "text")),
               ("value", ("json[]", "jsonb[]")))

    def __init__(self, database: Database, table: str = "chatstore", schema: str = "public") -> None:
        # The peer lowers both names; a legacy table is named data_<table>.
        table, schema = check_name("table", table).lower(), check_name("schema", schema).lower()
        super().__init__(database, table, schema)

    @classmethod
    def from_url(cls, url: StoreURL) -> LlamaIndexPostgresSource:
        """``llamaindex+postgresql://user@host/db``. Options: ``table`` (``chatstore``),
        ``schema`` (``public``), and the connection's (``connect_timeout``, ``sslmode``, ...)."""
        database, options = open_database(url, {"table": str, "schema": str})
        return cls(database, **options)

    def _check_layout(self) -> None:
        if not self._checked and self.database.columns("data_" + self.table_name, self.schema):
            self.table_name = "data_" + self.table_name
            self._table = self.database.table(self.table_name, self.schema)
        super()._check_layout()

    def _read(self, session_id: str, limit: int | None) -> list[Message]:
        self._check_layout()
        if limit is None:
            elements = "t.value"
        else:
            elements = "t.value[greatest(array_upper(t.value, 1) - ? + 1, array_lower(t.value, 1)):]"
        query = (f"SELECT cardinality(t.value), u.ord, u.v::text FROM {self._table} AS t"
                 f" CROSS JOIN LATERAL unnest({elements}) WITH ORDINALITY AS u(v, ord)"
                 ' WHERE t."key" = ? ORDER BY u.ord')
        params = (session_id,) if limit is None else (limit, session_id)
        rows = self.database.read(lambda fetch: fetch(query, params))
        first = 0 if not rows or limit is None else int(rows[0][0]) - len(rows)
        return _convert(((first + int(r[1]) - 1, r[2]) for r in rows), len(rows),
                        lambda i: f"element {i} of key {session_id!r} in table {self.table_name!r} "
                        f"of {self.database.where}", session_id)

    def _key_row(self, session_id: str) -> list[tuple[Any, ...]]:
        self._check_layout()
        return self.database.read(lambda fetch: fetch(
            f'SELECT coalesce(cardinality("value"), 0) FROM {self._table} WHERE "key" = ?', (session_id,)))

    def _count(self, session_id: str) -> int:
        rows = self._key_row(session_id)
        return int(rows[0][0]) if rows else 0

    def _info(self, session_id: str) -> SessionInfo | None:
        rows = self._key_row(session_id)
        return SessionInfo(session_id, int(rows[0][0]), UNKNOWN_TIME, UNKNOWN_TIME) if rows else None

    def _iter_sessions(self) -> Iterator[str]:
        self._check_layout()
        after = -(2**63)
        while True:
            rows = self.database.read(one_query(
                f'SELECT id, "key" FROM {self._table} WHERE id > ? ORDER BY id LIMIT ?', (after, PAGE)))
            for _, key in rows:
                yield str(key)
            if len(rows) < PAGE:
                return
            after = rows[-1][0]


class LlamaIndexSQLSource(_SQLSource):
    """``SQLAlchemyChatStore`` (``Memory``'s store): a row per message, active and
    archived alike, in ``(timestamp, id)`` order, as ``get_messages(key, status=None)``
    reads them. ``info`` gives the first and last message's ``timestamp``."""

    _kind = "SQLAlchemyChatStore"
    _layout = (("id", ("int",)), ("key", ("varchar", "character varying", "text")),
               ("timestamp", ("bigint", "int")), ("status", ("varchar", "character varying", "text")),
               ("data", ("json", "text")))

    def __init__(self, database: Database, table: str = "llama_index_memory",
                 schema: str | None = None) -> None:
        check_name("table", table)
        if schema is not None and isinstance(database, SQLiteDatabase):
            raise ConfigurationError("a SQLite database has no schemas: drop ?schema=")
        super().__init__(database, table, None if schema is None else check_name("schema", schema))

    @classmethod
    def from_url(cls, url: StoreURL) -> LlamaIndexSQLSource:
        """``llamaindex-sql+sqlite:///memory.db``, ``llamaindex-sql+postgresql://user@host/db``.

        Options: ``table`` (``llama_index_memory``), ``schema`` (PostgreSQL only), and
        the connection's.
        """
        database, options = open_database(url, {"table": str, "schema": str})
        return cls(database, **options)

    def _read(self, session_id: str, limit: int | None) -> list[Message]:
        self._check_layout()
        rows = read_rows(self.database, f'SELECT id, "data" FROM {self._table} WHERE "key" = ?',
                         session_id, '"timestamp", id', '"timestamp" DESC, id DESC', limit)
        return _convert(rows, len(rows), self._where, session_id)

    def _summary(self, session_id: str) -> tuple[int, Any, Any]:
        self._check_layout()
        rows = self.database.read(lambda fetch: fetch(
            f'SELECT count(*), min("timestamp"), max("timestamp") FROM {self._table} WHERE "key" = ?',
            (session_id,)))
        count, first, last = rows[0]
        return int(count), first, last

    def _count(self, session_id: str) -> int:
        return self._summary(session_id)[0]

    def _info(self, session_id: str) -> SessionInfo | None:
        count, first, last = self._summary(session_id)
        if not count:
            return None
        return SessionInfo(session_id, count, utc_from_ns(first), utc_from_ns(last))

    def _iter_sessions(self) -> Iterator[str]:
        self._check_layout()
        for key in iter_distinct(self.database, self._table, '"key"'):
            yield str(key)
