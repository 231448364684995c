"""The OpenAI Agents SDK's session stores, read in place (extra ``agents``).

The SDK stores Responses input items, one per row or list element, as JSON text; they
are converted to canonical messages by :func:`adapters.openai_agents.items_to_messages`
exactly as the adapter converts what the SDK appends (an assistant turn's text and its
function calls become one message; items with no Chat Completions form are kept, marked
Responses-only), so an Agents SDK reader of the migrated session gets its items back.

=====================================================  ======================================
peer store                                             layout read
=====================================================  ======================================
``SQLiteSession`` (``agents+sqlite:///agents.db``),    ``agent_sessions`` (``?sessions_table=``:
``SQLAlchemySession`` (``agents+sqlite:///...``,       ``session_id``, ``created_at``,
``agents+postgresql://...``)                           ``updated_at``) and ``agent_messages``
                                                       (``?messages_table=``: ``id``,
                                                       ``session_id``, ``message_data``,
                                                       ``created_at``); items in ``id`` order
                                                       (SQLite) or ``(created_at, id)``
                                                       order (PostgreSQL), as the peers read
``RedisSession`` (``agents+redis://host:6379/0``)      hash ``agents:session:<id>``
                                                       (``?key_prefix=``) and list
                                                       ``agents:session:<id>:messages``
=====================================================  ======================================

``get(limit=N)`` reads items from the end until the last N messages are complete (a
message never starts inside an assistant turn), so it costs O(N) items. ``count`` and
``info`` convert the whole session: a message may hold several items.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator, Sequence
from datetime import datetime, timezone
from typing import Any

from adapters._gc import collector_paused
from adapters.openai_agents import items_to_messages
from sessions import SessionInfo
from sessions._message import Message
from sessions._registry import StoreURL

from ._base import UNKNOWN_TIME, PeerSource, RedisSource, corrupt
from ._drivers import (
    DRIVER_ERRORS,
    Database,
    PostgresDatabase,
    check_layout,
    check_name,
    iter_distinct,
    open_database,
    read_rows,
)

__all__ = ["AgentsRedisSource", "AgentsSQLSource"]

_INPUT_ROLES = frozenset({"user", "system", "developer"})

#: (position, JSON text) of stored items, oldest first, and whether they reach back to
#: the session's first item.
Window = tuple[list[tuple[Any, Any]], bool]


def _starts_afresh(item: Any) -> bool:
    """Whether ``item`` begins a message whatever came before it: an input message or a
    tool result (an assistant turn's items are joined into one message)."""
    if not isinstance(item, dict):
        return False
    kind = item.get("type", "message")
    if kind == "function_call_output":
        return isinstance(item.get("call_id"), str)
    return (kind == "message" and item.get("role") in _INPUT_ROLES
            and isinstance(item.get("content"), (str, list)))


def _decode(rows: Sequence[tuple[Any, Any]], where: Callable[[Any], str],
            session_id: str) -> list[Any]:
    items: list[Any] = []
    for position, text in rows:
        try:
            item = json.loads(text)
        except (ValueError, TypeError) as error:
            raise corrupt(where(position), f"not JSON ({error})", session_id, "get") from error
        if not isinstance(item, dict):
            raise corrupt(where(position), f"a Responses item must be a JSON object, not "
                          f"{type(item).__name__}", session_id, "get")
        items.append(item)
    return items


def _to_messages(items: list[Any], rows: Sequence[tuple[Any, Any]], where: Callable[[Any], str],
                 session_id: str) -> list[Message]:
    with collector_paused(len(items)):
        try:
            return items_to_messages(items)
        except (ValueError, TypeError, KeyError, AttributeError) as error:
            index = getattr(error, "index", None)
            place = where(rows[index][0]) if isinstance(index, int) and 0 <= index < len(rows) \
                else f"an item of session {session_id!r}"
            raise corrupt(place, f"not a Responses item ({error})", session_id, "get") from error


def read_messages(window: Callable[[int | None], Window], limit: int | None,
                  where: Callable[[Any], str], session_id: str) -> list[Message]:
    """The session's messages (the last ``limit``), from ``window(n)``: the last ``n``
    stored items (all with None).

    A window that does not reach the first item is converted from its first item that
    begins a message afresh, so its messages are exactly the tail of the whole
    conversion; it is widened until that tail holds ``limit`` messages.
    """
    size = None if limit is None else 2 * limit + 16
    while True:
        rows, complete = window(size)
        items = _decode(rows, where, session_id)
        start = 0 if complete else next((i for i, item in enumerate(items) if _starts_afresh(item)), None)
        if start is not None:
            messages = _to_messages(items[start:], rows[start:], where, session_id)
            if limit is None:
                return messages
            if complete or len(messages) >= limit:
                return messages[-limit:]
        assert size is not None  # a window of everything is complete
        size *= 4


class AgentsSQLSource(PeerSource):
    """``SQLiteSession`` and ``SQLAlchemySession`` tables, in SQLite or PostgreSQL.

    ``list_sessions`` lists the sessions table; ``info`` gives its ``created_at`` and
    ``updated_at`` (UTC in SQLite; in PostgreSQL, the server's time zone, as the SDK wrote
    them) and the number of messages.
    """

    driver_errors = DRIVER_ERRORS

    def __init__(self, database: Database, sessions_table: str = "agent_sessions",
                 messages_table: str = "agent_messages") -> None:
        self.database = database
        self.sessions_table = check_name("sessions_table", sessions_table)
        self.messages_table = check_name("messages_table", messages_table)
        self._sessions = database.table(sessions_table)
        self._messages = database.table(messages_table)
        postgres = isinstance(database, PostgresDatabase)
        # SQLAlchemySession orders by (created_at, id); SQLiteSession by id, as written.
        self._order = "created_at, id" if postgres else "id"
        self._backwards = "created_at DESC, id DESC" if postgres else "id DESC"
        # SQLAlchemy's TIMESTAMP column holds the server's local time, without a zone.
        self._time = "{} AT TIME ZONE current_setting('TimeZone')" if postgres else "{}"
        self._checked = False

    @classmethod
    def from_url(cls, url: StoreURL) -> AgentsSQLSource:
        """``agents+sqlite:///agents.db``, ``agents+postgresql://user@host/db``.

        Options: ``sessions_table`` (``agent_sessions``), ``messages_table``
        (``agent_messages``), and the connection's.
        """
        database, options = open_database(url, {"sessions_table": str, "messages_table": str})
        return cls(database, **options)

    def __repr__(self) -> str:
        return (f"AgentsSQLSource({self.database.where}, sessions_table={self.sessions_table!r}, "
                f"messages_table={self.messages_table!r})")

    def _check_layout(self) -> None:
        if self._checked:
            return
        any_time = ("timestamp", "datetime", "text", "")
        check_layout(self.database, self.sessions_table, None,
                     (("session_id", ()), ("created_at", any_time), ("updated_at", any_time)),
                     "SQLiteSession/SQLAlchemySession sessions")
        check_layout(self.database, self.messages_table, None,
                     (("id", ("int",)), ("session_id", ()), ("message_data", ("text",)),
                      ("created_at", any_time)), "SQLiteSession/SQLAlchemySession messages")
        self._checked = True

    def _where(self, row_id: Any) -> str:
        return f"row id={row_id} of table {self.messages_table!r} in {self.database.where}"

    def _window(self, session_id: str, size: int | None) -> Window:
        rows = read_rows(self.database, f"SELECT id, message_data FROM {self._messages} WHERE session_id = ?",
                         session_id, self._order, self._backwards, size)
        return rows, size is None or len(rows) < size

    def _read(self, session_id: str, limit: int | None) -> list[Message]:
        self._check_layout()
        return read_messages(lambda size: self._window(session_id, size), limit, self._where, session_id)

    def _info(self, session_id: str) -> SessionInfo | None:
        self._check_layout()
        created, updated = self._time.format("created_at"), self._time.format("updated_at")
        rows = self.database.read(lambda fetch: fetch(
            f"SELECT {created}, {updated} FROM {self._sessions} WHERE session_id = ?", (session_id,)))
        count = self._count(session_id)
        if not rows:
            return None if not count else SessionInfo(session_id, count, *_times(None, None))
        return SessionInfo(session_id, count, *_times(rows[0][0], rows[0][1]))

    def _iter_sessions(self) -> Iterator[str]:
        self._check_layout()
        for session_id in iter_distinct(self.database, self._sessions, "session_id"):
            yield str(session_id)

    def _close(self) -> None:
        self.database.close()


def _time(value: Any) -> datetime:
    if isinstance(value, datetime):
        return value.astimezone(timezone.utc) if value.tzinfo else value.replace(tzinfo=timezone.utc)
    if isinstance(value, (int, float)) or (isinstance(value, (str, bytes)) and value.isdigit()):
        return datetime.fromtimestamp(int(value), timezone.utc)
    if isinstance(value, str):
        try:
            return _time(datetime.fromisoformat(value))
        except ValueError:
            pass
    return UNKNOWN_TIME


def _times(created: Any, updated: Any) -> tuple[datetime, datetime]:
    return _time(created), _time(updated if updated is not None else created)


class AgentsRedisSource(RedisSource):
    """``RedisSession``: a hash per session (``session_id``, ``created_at``,
    ``updated_at`` in seconds) and a list of items; ``list_sessions`` scans the hashes."""

    default_prefix = "agents:session"

    def _keys(self, session_id: str) -> tuple[str, str]:
        session_key = f"{self.key_prefix}:{session_id}"
        return session_key, session_key + ":messages"

    def _read(self, session_id: str, limit: int | None) -> list[Message]:
        key = self._keys(session_id)[1]
        client = self.reader.client

        def window(size: int | None) -> Window:
            stored = client.lrange(key, 0 if size is None else -size, -1)
            first = 0 if size is None else -len(stored)  # a window's elements: from the end
            return [(first + i, text) for i, text in enumerate(stored)], size is None or len(stored) < size

        return read_messages(window, limit,
                             lambda i: f"element {i} of list {key!r} in {self.reader.where}", session_id)

    def _info(self, session_id: str) -> SessionInfo | None:
        session_key, _ = self._keys(session_id)
        created, updated = self.reader.client.hmget(session_key, ["created_at", "updated_at"])
        count = self._count(session_id)
        if created is None and updated is None and not count:
            return None
        return SessionInfo(session_id, count, *_times(created, updated))

    def _iter_sessions(self) -> Iterator[str]:
        return self.reader.session_ids(self.key_prefix + ":", "hash")

    def _close(self) -> None:
        self.reader.close()
