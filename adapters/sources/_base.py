"""What every read-only source shares: the read contract, refused writes, row errors.

A source reads a peer library's store where it is and as that library wrote it, and
converts each stored message with our adapter's converter for that library. It imports
no framework itself; each family module does.
"""

from __future__ import annotations

import abc
from collections.abc import Callable, Iterable
from datetime import datetime, timezone
from typing import Any, ClassVar, NoReturn, TypeVar

from adapters._gc import collector_paused
from sessions import CorruptRecordError, SessionError, SessionInfo
from sessions._base import BaseSession
from sessions._message import Message, check_limit, check_session_id, encode_message
from sessions._registry import StoreURL

from ._drivers import DRIVER_ERRORS, RedisReader, redis_reader

__all__ = ["UNKNOWN_TIME", "PeerSource", "ReadOnlySourceError", "corrupt", "utc_from_ns"]

UNKNOWN_TIME = datetime(1970, 1, 1, tzinfo=timezone.utc)
"""``created_at``/``updated_at`` of :meth:`PeerSource.info` where the peer keeps no times."""


class ReadOnlySourceError(SessionError):
    """A write (``append``, ``pop``, ``replace``, ``clear``, ``delete``) was asked of a
    read-only source. Nothing was written: migrate the source into a store first."""


def corrupt(where: str, reason: object, session_id: str | None, operation: str) -> CorruptRecordError:
    """The error for a stored row or file the peer's layout does not allow."""
    return CorruptRecordError(f"{where}: {reason}", session_id=session_id, operation=operation)


def convert_rows(rows: Iterable[tuple[Any, Any]], count: int, where: Callable[[Any], str],
                 session_id: str, parse: Callable[[Any], Message], what: str) -> list[Message]:
    """``(position, payload)`` rows as canonical messages, each made by ``parse``; a
    payload ``parse`` cannot read raises :class:`CorruptRecordError` naming
    ``where(position)`` and saying it is not ``what``. ``count`` rows or more are
    converted with the cyclic collector paused (:mod:`adapters._gc`)."""
    messages: list[Message] = []
    with collector_paused(count):
        for position, payload in rows:
            try:
                messages.append(parse(payload))
            except (ValueError, TypeError, KeyError, AttributeError) as error:
                raise corrupt(where(position), f"not {what} ({error})", session_id, "get") from error
    return messages


def utc_from_ns(nanoseconds: int) -> datetime:
    seconds, rest = divmod(int(nanoseconds), 1_000_000_000)
    return datetime.fromtimestamp(seconds, timezone.utc).replace(microsecond=rest // 1000)


class PeerSource(BaseSession):
    """A Session over a peer library's store, for reading only.

    ``get``/``aget`` (``limit=N`` reads only the last N where the layout allows),
    ``count``, ``info`` and ``list_sessions`` work as on every store; the async methods
    run the reads in a worker thread. Every write (``delete_if_idle`` too, so ``prune``)
    raises :class:`ReadOnlySourceError` before anything is sent to the peer's store. A
    stored row that the peer's layout does not allow, or that the adapter's converter
    cannot read, raises :class:`CorruptRecordError` naming the row.

    A subclass implements :meth:`_read` (converted messages) and the listing; it may
    override :meth:`_count`, :meth:`_info` and :meth:`_exists` where the peer's data
    says more than the messages themselves.
    """

    @abc.abstractmethod
    def _read(self, session_id: str, limit: int | None) -> list[Message]:
        """The session's messages, oldest first; only the last ``limit`` (> 0) if given."""

    def _exists(self, session_id: str) -> bool:
        """Whether the session exists though it holds no message (peers without empty
        sessions: never)."""
        return False

    def _count(self, session_id: str) -> int:
        return len(self._read(session_id, None))

    def _info(self, session_id: str) -> SessionInfo | None:
        count = self._count(session_id)
        if not count and not self._exists(session_id):
            return None
        return SessionInfo(session_id, count, UNKNOWN_TIME, UNKNOWN_TIME)

    def _get(self, session_id: str, limit: int | None) -> list[str]:
        return [encode_message(message) for message in self._read(session_id, limit)]

    # -- reads: messages straight from the converter, not through records ---------------

    def get(self, session_id: str, limit: int | None = None) -> list[Message]:
        check_session_id(session_id, "get")
        limit = check_limit(limit, session_id, "get")
        if limit == 0:
            return []
        return self._call("get", session_id, self._read, session_id, limit)

    async def aget(self, session_id: str, limit: int | None = None) -> list[Message]:
        check_session_id(session_id, "get")
        limit = check_limit(limit, session_id, "get")
        if limit == 0:
            return []
        return await self._acall("get", session_id, self._offload(self._read, session_id, limit))

    # -- writes: refused before anything reaches the peer's store -----------------------

    def _refuse(self, operation: str, session_id: str | None) -> NoReturn:
        self._refuse_if_closed(operation, session_id)
        raise ReadOnlySourceError(
            f"{self!r} is a read-only source: {operation} is refused (migrate it into a "
            "store to write)", session_id=session_id, operation=operation,
        )

    def append(self, session_id: str, messages: Iterable[Message]) -> None:
        self._refuse("append", session_id)

    def pop(self, session_id: str) -> Message | None:
        self._refuse("pop", session_id)

    def replace(self, session_id: str, messages: Iterable[Message]) -> None:
        self._refuse("replace", session_id)

    def clear(self, session_id: str) -> None:
        self._refuse("clear", session_id)

    def delete(self, session_id: str) -> None:
        self._refuse("delete", session_id)

    def delete_if_idle(self, session_id: str, cutoff: datetime) -> bool:
        self._refuse("delete_if_idle", session_id)

    async def aappend(self, session_id: str, messages: Iterable[Message]) -> None:
        self._refuse("append", session_id)

    async def apop(self, session_id: str) -> Message | None:
        self._refuse("pop", session_id)

    async def areplace(self, session_id: str, messages: Iterable[Message]) -> None:
        self._refuse("replace", session_id)

    async def aclear(self, session_id: str) -> None:
        self._refuse("clear", session_id)

    async def adelete(self, session_id: str) -> None:
        self._refuse("delete", session_id)

    async def adelete_if_idle(self, session_id: str, cutoff: datetime) -> bool:
        self._refuse("delete_if_idle", session_id)

    # The record hooks of the writes are never reached: the methods above refuse first.

    def _append(self, session_id: str, records: list[str]) -> None:
        self._refuse("append", session_id)

    def _pop(self, session_id: str) -> str | None:
        self._refuse("pop", session_id)

    def _replace(self, session_id: str, records: list[str]) -> None:
        self._refuse("replace", session_id)

    def _clear(self, session_id: str) -> None:
        self._refuse("clear", session_id)

    def _delete(self, session_id: str) -> None:
        self._refuse("delete", session_id)

    def _delete_if_idle(self, session_id: str, cutoff: datetime) -> bool:
        self._refuse("delete_if_idle", session_id)


R = TypeVar("R", bound="RedisSource")


class RedisSource(PeerSource):
    """A peer store kept in Redis, read through one :class:`RedisReader`; ``key_prefix``
    (the peer's own default when not given) says which keys are the peer's."""

    driver_errors = DRIVER_ERRORS
    #: The peer library's own key prefix.
    default_prefix: ClassVar[str] = ""

    def __init__(self, reader: RedisReader, key_prefix: str | None = None) -> None:
        self.reader = reader
        self.key_prefix = self.default_prefix if key_prefix is None else key_prefix

    @classmethod
    def from_url(cls: type[R], url: StoreURL) -> R:
        """``<scheme>://[user:password@]host:6379/0`` (``<scheme>s://`` for TLS: e.g.
        ``agents+rediss://``). Options: ``key_prefix``, ``socket_timeout``."""
        reader, options = redis_reader(url, {"key_prefix": str})
        return cls(reader, **options)

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.reader.where}, key_prefix={self.key_prefix!r})"
