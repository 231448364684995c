"""The embedded default: a SQLite database through the standard library's ``sqlite3``.

Layout: a ``session_layer_sessions`` row per session (id, times, message count, next
sequence number) and a ``session_layer_messages`` row per message keyed by
``(session, seq)`` in a ``WITHOUT ROWID`` table, so the messages of a session are
stored together in sequence order and ``get(limit=N)`` reads N rows from the end of
that index. The schema is versioned in ``session_layer_schema`` and migrated on open.

Durability: WAL journal. ``synchronous="NORMAL"`` (the default) never loses a
committed append when the process is killed; after a power loss or OS crash the last
appends may be missing (earlier ones are intact). ``synchronous="FULL"`` makes every
acknowledged append survive power loss too, at the price of an fsync per append.

Locking: every write, and the journal-mode switch and schema set-up of a new file (which
SQLite may refuse at once, without its busy wait, while another connection is setting
up the same file), retries while another connection holds the lock, until ``timeout``.

Forks wait until no other thread is inside a call of the store (SQLite keeps lock
state per process, which the child inherits: it must show no transaction in flight).
The child then opens its own connection to the file (SQLite connections must not be
carried across ``fork()``) and never touches the parent's; an in-memory database is
copied into the child as it was at the fork.
"""

from __future__ import annotations

import contextlib
import os
import sqlite3
import threading
import time
from collections.abc import Callable, Iterator
from datetime import datetime
from typing import TypeVar

from . import _fork
from ._base import BaseSession, SessionInfo, stored_info, timestamp_before
from ._errors import BackendUnavailableError, ConfigurationError, SessionError, shown
from ._options import check_path, check_seconds
from ._registry import StoreURL

__all__ = ["SQLiteSession", "connect", "iter_keys", "open_database", "write_transaction"]

T = TypeVar("T")

SCHEMA_VERSION = 1

# Each entry upgrades the schema from version ``index`` to ``index + 1``.
_MIGRATIONS: tuple[tuple[str, ...], ...] = (
    (
        """CREATE TABLE IF NOT EXISTS session_layer_sessions (
            id INTEGER PRIMARY KEY,
            session_id TEXT NOT NULL UNIQUE,
            created_at REAL NOT NULL,
            updated_at REAL NOT NULL,
            message_count INTEGER NOT NULL,
            next_seq INTEGER NOT NULL
        )""",
        """CREATE TABLE IF NOT EXISTS session_layer_messages (
            session_ref INTEGER NOT NULL,
            seq INTEGER NOT NULL,
            body TEXT NOT NULL,
            PRIMARY KEY (session_ref, seq)
        ) WITHOUT ROWID""",
        "CREATE INDEX IF NOT EXISTS session_layer_sessions_updated"
        " ON session_layer_sessions (updated_at)",
    ),
)

_SYNCHRONOUS = ("OFF", "NORMAL", "FULL", "EXTRA")

_UPSERT = (
    "INSERT INTO session_layer_sessions"
    " (session_id, created_at, updated_at, message_count, next_seq) VALUES (?, ?, ?, ?, ?)"
    " ON CONFLICT (session_id) DO UPDATE SET updated_at = excluded.updated_at,"
    " message_count = message_count + excluded.message_count,"
    " next_seq = next_seq + excluded.next_seq"
    " RETURNING id, next_seq"
)
_INSERT = "INSERT INTO session_layer_messages (session_ref, seq, body) VALUES (?, ?, ?)"
_REF = "SELECT id FROM session_layer_sessions WHERE session_id = ?"
_SELECT_ALL = (
    "SELECT m.body FROM session_layer_messages AS m JOIN session_layer_sessions AS s"
    " ON m.session_ref = s.id WHERE s.session_id = ? ORDER BY m.seq"
)
_SELECT_LAST = (
    "SELECT m.body FROM session_layer_messages AS m JOIN session_layer_sessions AS s"
    " ON m.session_ref = s.id WHERE s.session_id = ? ORDER BY m.seq DESC LIMIT ?"
)


class SQLiteSession(BaseSession):
    """Sessions in one SQLite database file (or ``":memory:"``).

    Safe to share between threads (one connection behind a lock) and between processes
    (WAL, ``BEGIN IMMEDIATE`` for every write, a busy timeout of ``timeout`` seconds).

    :param path: the database file, created (mode 0600) if missing, or ``":memory:"``.
    :param synchronous: SQLite's ``synchronous`` setting, ``"NORMAL"`` by default.
    :param timeout: how long a write waits for another writer before failing with
        :class:`BackendUnavailableError`: more than 0 and at most a day (86,400 s).
    """

    driver_errors = (sqlite3.Error, OSError)

    def __init__(self, path: str | os.PathLike[str] = "sessions.db", *,
                 synchronous: str = "NORMAL", timeout: float = 30.0) -> None:
        self.path = check_path("path", path)
        self.synchronous = synchronous.upper() if isinstance(synchronous, str) else ""
        if self.synchronous not in _SYNCHRONOUS:
            raise ConfigurationError(
                f"synchronous must be one of {', '.join(_SYNCHRONOUS)}, got {shown(synchronous)}"
            )
        self.timeout = check_seconds("timeout", timeout)
        self._lock = threading.Lock()
        self._conn = self._call("open", None, self._open)
        _fork.register_quiet(self)

    @classmethod
    def from_url(cls, url: StoreURL) -> SQLiteSession:
        """``sqlite://`` (in memory), ``sqlite:///relative.db``, ``sqlite:////abs/path.db``.

        Options: ``?synchronous=FULL``, ``?timeout=5``.
        """
        options = url.options({"synchronous": str, "timeout": float})
        if url.host or url.username or url.password or url.port:
            raise ConfigurationError(
                f"sqlite URL {url.redacted!r} names a host or credentials; "
                "use sqlite:///relative.db or sqlite:////abs.db"
            )
        path = url.path[1:] if url.path.startswith("/") else url.path
        return cls(path or ":memory:", **options)

    def __repr__(self) -> str:
        return f"SQLiteSession({self.path!r}, synchronous={self.synchronous!r})"

    # -- connection and schema --------------------------------------------------------

    def _open(self) -> sqlite3.Connection:
        return open_database(
            self.path, synchronous=self.synchronous, timeout=self.timeout,
            setup=lambda conn: write_transaction(conn, self._lock, self.timeout, self._migrate),
        )

    def _migrate(self, conn: sqlite3.Connection) -> None:
        conn.execute("CREATE TABLE IF NOT EXISTS session_layer_schema (version INTEGER NOT NULL)")
        row = conn.execute("SELECT max(version) FROM session_layer_schema").fetchone()
        version = row[0] or 0
        if version > SCHEMA_VERSION:
            raise ConfigurationError(
                f"{self.path} has schema version {version}, newer than this library's "
                f"{SCHEMA_VERSION}; upgrade session-layer"
            )
        for step in _MIGRATIONS[version:]:
            for statement in step:
                conn.execute(statement)
        if version < SCHEMA_VERSION:
            conn.execute("DELETE FROM session_layer_schema")
            conn.execute("INSERT INTO session_layer_schema (version) VALUES (?)", (SCHEMA_VERSION,))

    def _quiet_lock(self) -> threading.Lock:
        return self._lock

    def _after_fork(self) -> None:
        self._lock, self._conn = reconnected(self._conn, self.path, self.synchronous, self.timeout)

    @property
    def schema_version(self) -> int:
        with self._lock:
            row = self._conn.execute("SELECT max(version) FROM session_layer_schema").fetchone()
        return int(row[0])

    def _write(self, operation: Callable[[sqlite3.Connection], T]) -> T:
        """Run ``operation`` in one IMMEDIATE transaction (see :func:`write_transaction`)."""
        return write_transaction(self._conn, self._lock, self.timeout, operation)

    # -- the record operations -----------------------------------------------------------

    def _get(self, session_id: str, limit: int | None) -> list[str]:
        with self._lock:
            if limit is None:
                return [row[0] for row in self._conn.execute(_SELECT_ALL, (session_id,))]
            rows = self._conn.execute(_SELECT_LAST, (session_id, limit)).fetchall()
        return [row[0] for row in reversed(rows)]

    def _append(self, session_id: str, records: list[str]) -> None:
        size = len(records)
        now = time.time()

        def append(conn: sqlite3.Connection) -> None:
            ref, next_seq = conn.execute(_UPSERT, (session_id, now, now, size, size)).fetchone()
            first = next_seq - size
            if size == 1:
                conn.execute(_INSERT, (ref, first, records[0]))
            else:
                conn.executemany(_INSERT, [(ref, first + i, r) for i, r in enumerate(records)])

        self._write(append)

    def _pop(self, session_id: str) -> str | None:
        def pop(conn: sqlite3.Connection) -> str | None:
            row = conn.execute(_REF, (session_id,)).fetchone()
            if row is None:
                return None
            deleted = conn.execute(
                "DELETE FROM session_layer_messages WHERE session_ref = ?1 AND seq ="
                " (SELECT max(seq) FROM session_layer_messages WHERE session_ref = ?1)"
                " RETURNING body",
                (row[0],),
            ).fetchone()
            if deleted is None:
                return None
            conn.execute(
                "UPDATE session_layer_sessions SET message_count = message_count - 1,"
                " updated_at = ? WHERE id = ?",
                (time.time(), row[0]),
            )
            return str(deleted[0])

        return self._write(pop)

    def _replace(self, session_id: str, records: list[str]) -> None:
        size = len(records)
        now = time.time()

        def replace(conn: sqlite3.Connection) -> None:
            row = conn.execute(_REF, (session_id,)).fetchone()
            if row is None:
                ref = conn.execute(_UPSERT, (session_id, now, now, size, size)).fetchone()[0]
            else:
                ref = row[0]
                conn.execute("DELETE FROM session_layer_messages WHERE session_ref = ?", (ref,))
                conn.execute(
                    "UPDATE session_layer_sessions SET message_count = ?, next_seq = ?,"
                    " updated_at = ? WHERE id = ?",
                    (size, size, now, ref),
                )
            conn.executemany(_INSERT, [(ref, i, r) for i, r in enumerate(records)])

        self._write(replace)

    def _clear(self, session_id: str) -> None:
        def clear(conn: sqlite3.Connection) -> None:
            row = conn.execute(_REF, (session_id,)).fetchone()
            if row is not None:
                conn.execute("DELETE FROM session_layer_messages WHERE session_ref = ?", (row[0],))
                conn.execute(
                    "UPDATE session_layer_sessions SET message_count = 0, updated_at = ?"
                    " WHERE id = ?",
                    (time.time(), row[0]),
                )

        self._write(clear)

    def _delete(self, session_id: str) -> None:
        def delete(conn: sqlite3.Connection) -> None:
            row = conn.execute(_REF, (session_id,)).fetchone()
            if row is not None:
                conn.execute("DELETE FROM session_layer_messages WHERE session_ref = ?", (row[0],))
                conn.execute("DELETE FROM session_layer_sessions WHERE id = ?", (row[0],))

        self._write(delete)

    def _delete_if_idle(self, session_id: str, cutoff: datetime) -> bool:
        def delete(conn: sqlite3.Connection) -> bool:
            row = conn.execute(
                "DELETE FROM session_layer_sessions WHERE session_id = ? AND updated_at < ?"
                " RETURNING id",
                (session_id, timestamp_before(cutoff)),
            ).fetchone()
            if row is not None:
                conn.execute("DELETE FROM session_layer_messages WHERE session_ref = ?", (row[0],))
            return row is not None

        return self._write(delete)

    def _count(self, session_id: str) -> int:
        with self._lock:
            row = self._conn.execute(
                "SELECT message_count FROM session_layer_sessions WHERE session_id = ?",
                (session_id,),
            ).fetchone()
        return 0 if row is None else int(row[0])

    def _info(self, session_id: str) -> SessionInfo | None:
        with self._lock:
            row = self._conn.execute(
                "SELECT message_count, created_at, updated_at FROM session_layer_sessions"
                " WHERE session_id = ?",
                (session_id,),
            ).fetchone()
        if row is None:
            return None
        return stored_info(session_id, *row)

    def _iter_sessions(self) -> Iterator[str]:
        return iter_keys(
            self._conn, self._lock,
            "SELECT session_id FROM session_layer_sessions WHERE session_id > ? ORDER BY session_id",
        )

    def _close(self) -> None:
        with self._lock:
            self._conn.close()

    def _translate_error(self, error: BaseException, session_id: str | None,
                         operation: str) -> SessionError:
        return BackendUnavailableError(
            f"SQLite database {self.path}: {describe(error)}", session_id=session_id, operation=operation
        )


def _is_busy(error: sqlite3.OperationalError) -> bool:
    text = str(error)
    return "locked" in text or "busy" in text


class StillLocked(sqlite3.OperationalError):
    """Another connection kept the database locked until the deadline."""

    def __init__(self, error: sqlite3.OperationalError, waited: float) -> None:
        super().__init__(str(error))
        self.waited = waited


def describe(error: BaseException) -> str:
    """What went wrong, saying how long the store waited only when it did."""
    if isinstance(error, StillLocked):
        return f"stayed locked by another connection for {error.waited:.3g}s ({error})"
    if isinstance(error, sqlite3.OperationalError) and _is_busy(error):
        return f"locked by another connection ({error})"
    return str(error)


def _retrying(step: Callable[[], T], deadline: float, started: float) -> T:
    """Run ``step`` again while it fails because another connection holds a lock, until
    ``deadline`` (monotonic); then raise :class:`StillLocked` with the time waited."""
    while True:
        try:
            return step()
        except sqlite3.OperationalError as error:
            if not _is_busy(error):
                raise
            now = time.monotonic()
            if now >= deadline:
                raise StillLocked(error, now - started) from error
            time.sleep(0.005)


# -- helpers shared with other stores that keep a SQLite file ---------------------------------


def _in_memory(path: str) -> bool:
    return path == ":memory:" or path.startswith("file::memory:")


def connect(path: str, *, synchronous: str, timeout: float) -> sqlite3.Connection:
    """A connection to an existing database (no I/O until the first statement)."""
    conn = sqlite3.connect(path, timeout=timeout, isolation_level=None, check_same_thread=False)
    try:
        conn.execute(f"PRAGMA synchronous={synchronous}")
    except BaseException:
        conn.close()
        raise
    return conn


def open_database(path: str, *, synchronous: str, timeout: float,
                  setup: Callable[[sqlite3.Connection], None]) -> sqlite3.Connection:
    """Open (creating it private, mode 0600) a database in WAL mode and run ``setup``
    (the schema migration) on it; the connection is closed again if that fails.

    Switching a new file to WAL needs the file to itself: when several connections set
    up one new file at once, SQLite refuses the switch at once (no busy wait), so it is
    retried until ``timeout``."""
    in_memory = _in_memory(path)
    if not in_memory and not os.path.exists(path):
        # Create the file private before SQLite does; its -wal/-shm files copy the mode.
        with contextlib.suppress(FileExistsError):
            os.close(os.open(path, os.O_CREAT | os.O_WRONLY, 0o600))
    started = time.monotonic()
    conn = connect(path, synchronous=synchronous, timeout=timeout)
    try:
        if not in_memory:
            _retrying(lambda: conn.execute("PRAGMA journal_mode=WAL"), started + timeout, started)
        setup(conn)
    except BaseException:
        conn.close()
        raise
    return conn


def reconnected(conn: sqlite3.Connection, path: str, synchronous: str,
                timeout: float) -> tuple[threading.Lock, sqlite3.Connection]:
    """In a forked child that waited for no call to be in flight (see
    :func:`sessions._fork.register_quiet`): a new lock and a connection of the child's
    own. The parent's connection is kept, unused and never closed (see
    :mod:`sessions._fork`); an in-memory database exists only in its connection, whose
    copy is the child's."""
    if _in_memory(path):
        return threading.Lock(), conn
    _fork.abandon(conn)
    return threading.Lock(), connect(path, synchronous=synchronous, timeout=timeout)


def write_transaction(conn: sqlite3.Connection, lock: threading.Lock, timeout: float,
                      operation: Callable[[sqlite3.Connection], T]) -> T:
    """Run ``operation`` in one IMMEDIATE transaction, retrying while another process
    holds the write lock, until ``timeout`` seconds have passed."""
    started = time.monotonic()
    with lock:
        _retrying(lambda: conn.execute("BEGIN IMMEDIATE"), started + timeout, started)
        try:
            result = operation(conn)
            conn.execute("COMMIT")
            return result
        except BaseException:
            if conn.in_transaction:
                conn.execute("ROLLBACK")
            raise


def iter_keys(conn: sqlite3.Connection, lock: threading.Lock, select: str, page: int = 500) -> Iterator[str]:
    """Stream the keys ``select`` returns (``... WHERE key > ? ORDER BY key``) in keyset
    pages: bounded memory, no cursor held open between pages (other threads may use the
    connection meanwhile)."""
    after = ""
    while True:
        with lock:
            rows = conn.execute(f"{select} LIMIT {page:d}", (after,)).fetchall()
        for row in rows:
            yield row[0]
        if len(rows) < page:
            return
        after = rows[-1][0]
