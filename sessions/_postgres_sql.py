"""The SQL of :class:`~sessions.postgres.PostgresSession`: the schema, its migrations,
and the statements each operation sends (no I/O).

Table names are composed with :class:`psycopg.sql.Identifier` once per table prefix
(:class:`Statements`), and never formatted into SQL text from user input.

An append is one statement (so one round trip and one transaction on an autocommit
connection): a data-modifying CTE upserts the session row, which locks it, bumps
``next_seq`` and returns the first sequence number of the batch, and inserts the batch
from one ``text[]`` parameter. Concurrent appends to one session queue on that row
lock, so sequence numbers are never duplicated and a batch is never interleaved.
``pop``, ``replace``, ``clear`` and ``delete`` first lock the session row and then
change the messages in a second statement of the same transaction (each statement of a
READ COMMITTED transaction sees every write committed before it started); both are
sent in one pipeline, so they also cost one round trip.

What an operation sends is a :class:`Plan`: its statements, and how the rows of the
last one become the result; the store runs plans sync or async.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Any, Generic, TypeVar

from psycopg import sql

from ._base import SessionInfo
from ._errors import ConfigurationError, CorruptRecordError, shown

__all__ = ["SCHEMA_VERSION", "Plan", "Row", "Statements"]

T = TypeVar("T")
Row = tuple[Any, ...]
Params = Mapping[str, Any] | Sequence[Any]

SCHEMA_VERSION = 1
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
class Plan(Generic[T]):
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


def _as_datetime(value: Any) -> datetime:
    if not isinstance(value, datetime):  # pragma: no cover - psycopg always loads timestamptz
        raise CorruptRecordError(f"expected a timestamp, got {shown(value)}")
    return value.astimezone(timezone.utc)


class Statements:
    """The SQL text of the tables under one prefix, and the plan of each operation."""

    def __init__(self, table_prefix: str) -> None:
        self.table_prefix = table_prefix
        names = {
            "schema": sql.Identifier(table_prefix + "schema"),
            "sessions": sql.Identifier(table_prefix + "sessions"),
            "messages": sql.Identifier(table_prefix + "messages"),
        }
        #: Every statement by name, as SQL text with placeholders.
        self.sql = {key: _compose(template, names) for key, template in _SQL.items()}
        self._migrations = tuple(
            tuple(_compose(statement, names) for statement in step) for step in _MIGRATIONS
        )

    # -- schema -------------------------------------------------------------------------------

    def schema_lock(self) -> tuple[str, Params]:
        """The statement that serialises migrations of these tables (a transaction-scoped
        advisory lock, so many processes may start at once)."""
        return self.sql["lock_schema"], (_LOCK_NAMESPACE, self.table_prefix)

    def migration_steps(self, version: int) -> list[str]:
        """The statements that take the tables from schema ``version`` to the current one."""
        if version > SCHEMA_VERSION:
            raise ConfigurationError(
                f"tables {self.table_prefix}* have schema version {version}, newer than this "
                f"library's {SCHEMA_VERSION}; upgrade session-layer"
            )
        return [statement for step in self._migrations[version:] for statement in step]

    def schema_version(self) -> Plan[int]:
        return Plan(((self.sql["schema_version"], ()),), _int_or_zero)

    # -- plans: what each operation sends -----------------------------------------------------

    def get(self, session_id: str, limit: int | None) -> Plan[list[str]]:
        if limit is None:
            return Plan(((self.sql["get_all"], (session_id,)),), _first_column)
        return Plan(((self.sql["get_last"], (session_id, limit)),), _reversed_first_column)

    def append(self, session_id: str, records: list[str]) -> Plan[None]:
        if len(records) == 1:
            one = {"id": session_id, "body": records[0]}
            return Plan(((self.sql["append_one"], one),), _rows_to_none)
        params = {"id": session_id, "n": len(records), "bodies": records}
        return Plan(((self.sql["append"], params),), _rows_to_none)

    def pop(self, session_id: str) -> Plan[str | None]:
        return Plan(
            ((self.sql["lock"], (session_id,)), (self.sql["pop"], {"id": session_id})),
            _optional_text,
        )

    def replace(self, session_id: str, records: list[str]) -> Plan[None]:
        params = {"id": session_id, "n": len(records), "bodies": records}
        return Plan(
            ((self.sql["replace_lock"], params), (self.sql["replace"], params)), _rows_to_none
        )

    def clear(self, session_id: str) -> Plan[None]:
        return Plan(
            ((self.sql["clear_lock"], (session_id,)), (self.sql["clear"], (session_id,))),
            _rows_to_none,
        )

    def delete(self, session_id: str) -> Plan[None]:
        return Plan(
            ((self.sql["lock"], (session_id,)), (self.sql["delete"], (session_id,))),
            _rows_to_none,
        )

    def delete_if_idle(self, session_id: str, cutoff: datetime) -> Plan[bool]:
        params = (session_id, cutoff)
        return Plan(
            ((self.sql["lock_idle"], params), (self.sql["delete_idle"], params)), _one_or_more
        )

    def count(self, session_id: str) -> Plan[int]:
        return Plan(((self.sql["count"], (session_id,)),), _int_or_zero)

    def info(self, session_id: str) -> Plan[SessionInfo | None]:
        def info(rows: list[Row]) -> SessionInfo | None:
            if not rows:
                return None
            count, created_at, updated_at = rows[0]
            return SessionInfo(session_id, int(count), _as_datetime(created_at),
                               _as_datetime(updated_at))

        return Plan(((self.sql["info"], (session_id,)),), info)

    def list_page(self, after: int, size: int) -> Plan[list[Row]]:
        """Up to ``size`` sessions (reference, id) after the reference ``after``."""
        return Plan(((self.sql["list"], (after, size)),), list)
