"""LangChain's chat message stores, read in place (extra ``langchain``).

Each stored message is LangChain's ``message_to_dict`` form (``{"type": ..., "data":
...}``), read back with langchain-core's ``messages_from_dict`` and converted by
:func:`adapters.langchain.to_canonical`, as the peer's own read would return it.

=================================================  =====================================
peer store                                         layout read
=================================================  =====================================
langchain-community ``SQLChatMessageHistory``      table ``message_store`` (``?table=``):
(``langchain+sqlite:///chats.db``,                 ``id`` (order), ``session_id`` (or
``langchain+postgresql://...``)                    ``?session_id_field=``), ``message``
                                                   (JSON text)
langchain-postgres ``PostgresChatMessageHistory``  table ``?table=`` (required): ``id``
(``langchain-postgres+postgresql://...``)          (order), ``session_id`` (uuid),
                                                   ``message`` (jsonb), ``created_at``
langchain-community ``RedisChatMessageHistory``    one list per session at
(``langchain+redis://host:6379/0``)                ``message_store:`` + id
                                                   (``?key_prefix=``), newest first
=================================================  =====================================

``SQLChatMessageHistory`` creates no index on ``session_id``: each session read scans
the table, as the peer's own reads do. To migrate a large table in time proportional to
its size, create one first: ``CREATE INDEX ON message_store (session_id, id)``.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Callable, Iterable, Iterator
from typing import Any

from langchain_core.messages import messages_from_dict

from adapters.langchain import to_canonical
from sessions import ConfigurationError, SessionInfo
from sessions._message import Message
from sessions._registry import StoreURL

from ._base import PeerSource, RedisSource, convert_rows
from ._drivers import (
    DRIVER_ERRORS,
    Database,
    Layout,
    check_layout,
    check_name,
    iter_distinct,
    open_database,
    read_rows,
)

__all__ = ["LangChainPostgresSource", "LangChainRedisSource", "LangChainSQLSource"]

def _parse(payload: Any) -> Message:
    """A stored ``message_to_dict`` payload (JSON text or parsed) as a canonical message."""
    data = json.loads(payload) if isinstance(payload, (str, bytes)) else payload
    return to_canonical(messages_from_dict([data])[0])


def _convert(rows: Iterable[tuple[Any, Any]], count: int, where: Callable[[Any], str],
             session_id: str) -> list[Message]:
    return convert_rows(rows, count, where, session_id, _parse, "a LangChain message")


class _TableSource(PeerSource):
    """A table holding one row per message, ordered by its integer ``id``."""

    driver_errors = DRIVER_ERRORS
    _layout: Layout
    _kind: str

    def __init__(self, database: Database, table: str, session_column: str = "session_id") -> None:
        self.database = database
        self.table_name = table
        self._table = database.table(table)
        self._sid = database.table(session_column)
        self._checked = False

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.database.where}, table={self.table_name!r})"

    def _check_layout(self) -> None:
        if not self._checked:
            check_layout(self.database, self.table_name, None, self._layout, self._kind)
            self._checked = True

    def _key(self, session_id: str) -> Any:
        return session_id

    def _read(self, session_id: str, limit: int | None) -> list[Message]:
        self._check_layout()
        key = self._key(session_id)
        if key is None:
            return []
        rows = read_rows(self.database, f"SELECT id, message FROM {self._table} WHERE {self._sid} = ?",
                         key, "id", "id DESC", limit)
        return _convert(rows, len(rows), lambda row_id: f"row id={row_id} of table "
                        f"{self.table_name!r} in {self.database.where}", session_id)

    def _count(self, session_id: str) -> int:
        self._check_layout()
        key = self._key(session_id)
        if key is None:
            return 0
        rows = self.database.read(lambda fetch: fetch(
            f"SELECT count(*) FROM {self._table} WHERE {self._sid} = ?", (key,)))
        return int(rows[0][0])

    def _iter_sessions(self) -> Iterator[str]:
        self._check_layout()
        for session_id in iter_distinct(self.database, self._table, self._sid):
            yield str(session_id)

    def _close(self) -> None:
        self.database.close()


class LangChainSQLSource(_TableSource):
    """langchain-community ``SQLChatMessageHistory`` tables, in SQLite or PostgreSQL.

    ``info`` has no times (the table keeps none): both are :data:`UNKNOWN_TIME`.
    """

    _kind = "SQLChatMessageHistory"

    def __init__(self, database: Database, table: str = "message_store",
                 session_id_field: str = "session_id") -> None:
        check_name("table", table)
        check_name("session_id_field", session_id_field)
        self._layout = (("id", ("int",)), ("message", ("text", "varchar", "character", "json")),
                        (session_id_field.lower(), ()))
        super().__init__(database, table, session_id_field)

    @classmethod
    def from_url(cls, url: StoreURL) -> LangChainSQLSource:
        """``langchain+sqlite:///chats.db``, ``langchain+postgresql://user@host/db``.

        Options: ``table`` (``message_store``), ``session_id_field`` (``session_id``),
        and the connection's (``timeout`` for SQLite; ``connect_timeout``, ``sslmode``,
        ... for PostgreSQL).
        """
        database, options = open_database(url, {"table": str, "session_id_field": str})
        return cls(database, **options)


class LangChainPostgresSource(_TableSource):
    """langchain-postgres ``PostgresChatMessageHistory`` tables (UUID session ids).

    A session id that is not a UUID names no session of the table (it reads as empty).
    ``info`` gives the first and last ``created_at`` of the session's rows.
    """

    _layout = (("id", ("int",)), ("session_id", ("uuid",)), ("message", ("jsonb", "json")),
               ("created_at", ("timestamp",)))
    _kind = "PostgresChatMessageHistory"

    def __init__(self, database: Database, table: str) -> None:
        check_name("table", table)
        super().__init__(database, table)

    @classmethod
    def from_url(cls, url: StoreURL) -> LangChainPostgresSource:
        """``langchain-postgres+postgresql://user@host/db?table=NAME`` (``table`` required:
        the peer has no default)."""
        database, options = open_database(url, {"table": str})
        if "table" not in options:
            database.close()
            raise ConfigurationError(f"{url.scheme}:// needs ?table=NAME (the table the history uses)")
        return cls(database, options["table"])

    def _key(self, session_id: str) -> Any:
        try:
            return uuid.UUID(session_id)
        except ValueError:
            return None

    def _info(self, session_id: str) -> SessionInfo | None:
        self._check_layout()
        key = self._key(session_id)
        if key is None:
            return None
        rows = self.database.read(lambda fetch: fetch(
            f"SELECT count(*), min(created_at), max(created_at) FROM {self._table}"
            f" WHERE {self._sid} = ?", (key,)))
        count, first, last = rows[0]
        if not count:
            return None
        return SessionInfo(session_id, int(count), first, last)


class LangChainRedisSource(RedisSource):
    """langchain-community ``RedisChatMessageHistory``: a list per session, newest first
    (``LPUSH``). ``get(limit=N)`` reads N elements. ``info`` has no times (the list
    keeps none): both are :data:`UNKNOWN_TIME`."""

    default_prefix = "message_store:"

    def _read(self, session_id: str, limit: int | None) -> list[Message]:
        key = self.key_prefix + session_id
        stored = self.reader.client.lrange(key, 0, -1 if limit is None else limit - 1)
        count = len(stored)
        # Newest first: element i of the list is message count-1-i of the history.
        rows = ((count - 1 - i, stored[count - 1 - i]) for i in range(count))
        return _convert(rows, count, lambda i: f"element {i} of list {key!r} in {self.reader.where}",
                        session_id)

    def _count(self, session_id: str) -> int:
        return int(self.reader.client.llen(self.key_prefix + session_id))

    def _iter_sessions(self) -> Iterator[str]:
        return self.reader.session_ids(self.key_prefix, "list")

    def _close(self) -> None:
        self.reader.close()
