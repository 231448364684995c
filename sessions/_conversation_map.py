"""The durable map of :class:`~sessions.conversations.ConversationsSession`.

A small SQLite file (WAL, every write in one ``BEGIN IMMEDIATE`` transaction, shared
safely by threads and processes; ``synchronous=NORMAL``: a killed process loses no
committed write, a power loss may lose the last ones) with two tables:

* ``session_layer_conversations``: session id -> conversation id, with the session's
  creation and update times and its message count (what ``info``, ``count`` and
  ``list_sessions`` read, without a request to the API);
* ``session_layer_conversation_messages``: one row per stored message: its first and
  last item ids and item count (so a message spanning several items, an assistant
  text plus its tool calls, reads back as one message), and, only for a message the
  items cannot carry exactly (a ``name``, unknown keys, ...), its record.

The claim of a conversation for a session is an atomic insert-if-absent: when two
writers race to create the first conversation of one session, exactly one wins.
"""

from __future__ import annotations

import os
import sqlite3
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from typing import TypeVar

from .sqlite import iter_keys, open_database, reconnected, write_transaction

__all__ = ["ConversationMap", "MappedSession", "MessageRow"]

T = TypeVar("T")

_SCHEMA = (
    """CREATE TABLE IF NOT EXISTS session_layer_conversations (
        session_id TEXT PRIMARY KEY,
        conversation_id TEXT NOT NULL,
        created_at REAL NOT NULL,
        updated_at REAL NOT NULL,
        message_count INTEGER NOT NULL
    ) WITHOUT ROWID""",
    """CREATE TABLE IF NOT EXISTS session_layer_conversation_messages (
        conversation_id TEXT NOT NULL,
        first_item TEXT NOT NULL,
        last_item TEXT NOT NULL,
        items INTEGER NOT NULL,
        record TEXT,
        PRIMARY KEY (conversation_id, first_item)
    ) WITHOUT ROWID""",
)
_SCHEMA_VERSION = 1
_IN_CHUNK = 500


@dataclass(frozen=True)
class MappedSession:
    session_id: str
    conversation_id: str
    created_at: float
    updated_at: float
    message_count: int


@dataclass(frozen=True)
class MessageRow:
    """Where one stored message's items start and end, and its record if kept."""

    first_item: str
    last_item: str
    items: int
    record: str | None


class ConversationMap:
    """Session ids to conversation ids, in a SQLite file (see the module docstring)."""

    def __init__(self, path: str | os.PathLike[str], *, timeout: float = 30.0) -> None:
        self.path = os.fspath(path)
        self.timeout = timeout
        self._lock = threading.Lock()
        self._conn = open_database(
            self.path, synchronous="NORMAL", timeout=timeout,
            setup=lambda conn: write_transaction(conn, self._lock, timeout, self._migrate),
        )

    @staticmethod
    def _migrate(conn: sqlite3.Connection) -> None:
        version = conn.execute("PRAGMA user_version").fetchone()[0]
        if version > _SCHEMA_VERSION:
            raise sqlite3.DatabaseError(
                f"conversation map schema version {version} is newer than this library's"
            )
        for statement in _SCHEMA:
            conn.execute(statement)
        conn.execute(f"PRAGMA user_version = {_SCHEMA_VERSION}")

    def _write(self, operation: Callable[[sqlite3.Connection], T]) -> T:
        return write_transaction(self._conn, self._lock, self.timeout, operation)

    def close(self) -> None:
        with self._lock:
            self._conn.close()

    def quiet_lock(self) -> threading.Lock:
        """Held during every use of the connection (a fork waits for it)."""
        return self._lock

    def after_fork(self) -> None:
        """In a forked child: a connection of the child's own (see :mod:`sessions._fork`)."""
        self._lock, self._conn = reconnected(self._conn, self.path, "NORMAL", self.timeout)

    # -- sessions -------------------------------------------------------------------------

    def lookup(self, session_id: str) -> MappedSession | None:
        with self._lock:
            row = self._conn.execute(
                "SELECT conversation_id, created_at, updated_at, message_count"
                " FROM session_layer_conversations WHERE session_id = ?",
                (session_id,),
            ).fetchone()
        return None if row is None else MappedSession(session_id, *row)

    def claim(self, session_id: str, conversation_id: str, created_at: float, count: int) -> str:
        """Map ``session_id`` to ``conversation_id`` unless it is mapped already;
        return the conversation id that holds the session afterwards."""
        def claim(conn: sqlite3.Connection) -> str:
            conn.execute(
                "INSERT INTO session_layer_conversations VALUES (?, ?, ?, ?, ?)"
                " ON CONFLICT (session_id) DO NOTHING",
                (session_id, conversation_id, created_at, created_at, count),
            )
            row = conn.execute(
                "SELECT conversation_id FROM session_layer_conversations WHERE session_id = ?",
                (session_id,),
            ).fetchone()
            return str(row[0])

        return self._write(claim)

    def add_messages(self, session_id: str, conversation_id: str, rows: Sequence[MessageRow]) -> bool:
        """Record appended messages and count them; False (nothing recorded) when the
        session no longer maps to ``conversation_id`` (deleted or replaced meanwhile)."""
        def add(conn: sqlite3.Connection) -> bool:
            updated = conn.execute(
                "UPDATE session_layer_conversations SET message_count = message_count + ?,"
                " updated_at = ? WHERE session_id = ? AND conversation_id = ?",
                (len(rows), time.time(), session_id, conversation_id),
            ).rowcount
            if not updated:
                return False
            conn.executemany(
                "INSERT OR REPLACE INTO session_layer_conversation_messages VALUES (?, ?, ?, ?, ?)",
                [(conversation_id, r.first_item, r.last_item, r.items, r.record) for r in rows],
            )
            return True

        return self._write(add)

    def remove_message(self, session_id: str, conversation_id: str, first_item: str | None) -> None:
        """Forget a popped message and count it out."""
        def remove(conn: sqlite3.Connection) -> None:
            if first_item is not None:
                conn.execute(
                    "DELETE FROM session_layer_conversation_messages"
                    " WHERE conversation_id = ? AND first_item = ?",
                    (conversation_id, first_item),
                )
            conn.execute(
                "UPDATE session_layer_conversations SET message_count = max(message_count - 1, 0),"
                " updated_at = ? WHERE session_id = ? AND conversation_id = ?",
                (time.time(), session_id, conversation_id),
            )

        self._write(remove)

    def remap(self, session_id: str, conversation_id: str, rows: Sequence[MessageRow]) -> str | None:
        """Point ``session_id`` at a new conversation holding ``rows`` (replace, clear),
        keeping its creation time; return the conversation it held before, if any."""
        now = time.time()

        def remap(conn: sqlite3.Connection) -> str | None:
            row = conn.execute(
                "SELECT conversation_id FROM session_layer_conversations WHERE session_id = ?",
                (session_id,),
            ).fetchone()
            conn.execute(
                "INSERT INTO session_layer_conversations VALUES (?, ?, ?, ?, ?)"
                " ON CONFLICT (session_id) DO UPDATE SET conversation_id = excluded.conversation_id,"
                " updated_at = excluded.updated_at, message_count = excluded.message_count",
                (session_id, conversation_id, now, now, len(rows)),
            )
            conn.executemany(
                "INSERT OR REPLACE INTO session_layer_conversation_messages VALUES (?, ?, ?, ?, ?)",
                [(conversation_id, r.first_item, r.last_item, r.items, r.record) for r in rows],
            )
            if row is None or row[0] == conversation_id:
                return None
            conn.execute(
                "DELETE FROM session_layer_conversation_messages WHERE conversation_id = ?", (row[0],)
            )
            return str(row[0])

        return self._write(remap)

    def reset(self, session_id: str) -> None:
        """Forget every message row of the session and set its count to 0 (clear in place)."""
        def reset(conn: sqlite3.Connection) -> None:
            conn.execute(
                "DELETE FROM session_layer_conversation_messages WHERE conversation_id ="
                " (SELECT conversation_id FROM session_layer_conversations WHERE session_id = ?)",
                (session_id,),
            )
            conn.execute(
                "UPDATE session_layer_conversations SET message_count = 0, updated_at = ?"
                " WHERE session_id = ?",
                (time.time(), session_id),
            )

        self._write(reset)

    def forget(self, session_id: str) -> None:
        """Remove the session and its message rows."""
        def forget(conn: sqlite3.Connection) -> None:
            conn.execute(
                "DELETE FROM session_layer_conversation_messages WHERE conversation_id ="
                " (SELECT conversation_id FROM session_layer_conversations WHERE session_id = ?)",
                (session_id,),
            )
            conn.execute("DELETE FROM session_layer_conversations WHERE session_id = ?", (session_id,))

        self._write(forget)

    def forget_if_idle(self, session_id: str, before: float) -> str | None:
        """Remove the session and its message rows if it was last updated before
        ``before`` (seconds since the epoch), in one transaction; return the conversation
        it was mapped to, or None if it was kept (or is not mapped)."""
        def forget(conn: sqlite3.Connection) -> str | None:
            row = conn.execute(
                "DELETE FROM session_layer_conversations WHERE session_id = ? AND updated_at < ?"
                " RETURNING conversation_id",
                (session_id, before),
            ).fetchone()
            if row is None:
                return None
            conn.execute(
                "DELETE FROM session_layer_conversation_messages WHERE conversation_id = ?", (row[0],)
            )
            return str(row[0])

        return self._write(forget)

    def message_rows(self, conversation_id: str, first_items: Sequence[str]) -> dict[str, MessageRow]:
        """The message rows starting at any of ``first_items``."""
        found: dict[str, MessageRow] = {}
        for start in range(0, len(first_items), _IN_CHUNK):
            chunk = first_items[start:start + _IN_CHUNK]
            marks = ",".join("?" * len(chunk))
            with self._lock:
                rows = self._conn.execute(
                    "SELECT first_item, last_item, items, record FROM session_layer_conversation_messages"
                    f" WHERE conversation_id = ? AND first_item IN ({marks})",
                    (conversation_id, *chunk),
                ).fetchall()
            for row in rows:
                found[row[0]] = MessageRow(*row)
        return found

    def iter_sessions(self) -> Iterator[str]:
        return iter_keys(
            self._conn, self._lock,
            "SELECT session_id FROM session_layer_conversations WHERE session_id > ? ORDER BY session_id",
        )
