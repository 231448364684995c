"""The Session contract: a Protocol for anyone, a base class for our backends.

A *store* holds many conversations, each named by an opaque session id. Every call
takes the session id, so one store object serves every user of an application.

Rules every backend obeys (checked by ``tests/conformance``):

* ``get`` returns messages oldest first, in append order; the order is decided by the
  store (a sequence, a list position), never by a clock. ``limit=N`` gives the last N
  and costs O(N).
* ``append`` of a batch is all-or-nothing and costs O(batch). An empty batch is a no-op.
* A missing session reads as empty: ``get`` -> ``[]``, ``count`` -> 0, ``pop`` -> None,
  ``info`` -> None.
* ``clear`` removes the messages but keeps the session (it stays listed, keeps its
  creation time); ``delete`` removes it completely.
* Session ids and messages are validated before anything is written (see
  :mod:`sessions._message`); errors derive from :class:`SessionError`.
* ``delete_if_idle(session_id, cutoff)`` (the optional ability
  :class:`SupportsDeleteIfIdle`, which every backend here has) deletes a session only if
  it was last updated before ``cutoff``, in one atomic step: a write that lands first
  keeps the session. :func:`sessions.prune` relies on it.
* After ``close()``/``aclose()`` every call raises :class:`StoreClosedError`; closing
  again does nothing. A store never reopens what it closed.
"""

from __future__ import annotations

import abc
import asyncio
import functools
import itertools
from collections.abc import AsyncIterator, Awaitable, Callable, Coroutine, Iterable, Iterator
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Any, ClassVar, Protocol, TypeVar, runtime_checkable

from ._errors import BackendUnavailableError, CorruptRecordError, SessionError, StoreClosedError
from ._message import (
    Message,
    check_cutoff,
    check_limit,
    check_session_id,
    decode_record,
    decode_records,
    encode_messages,
    is_listable_id,
)
from .companions import COMPANION_SUFFIXES

__all__ = ["BaseSession", "Session", "SessionInfo", "SupportsDeleteIfIdle", "stored_info",
           "timestamp_before"]

T = TypeVar("T")


@dataclass(frozen=True)
class SessionInfo:
    """What a store knows about one session besides its messages.

    Times are timezone-aware UTC ``datetime`` values: ``created_at`` is when the session
    was first written, ``updated_at`` when it was last changed.
    """

    session_id: str
    message_count: int
    created_at: datetime
    updated_at: datetime


@runtime_checkable
class Session(Protocol):
    """The contract every session store fulfils, sync and async.

    Implement this Protocol to plug a store of your own into the adapters, wrappers
    and migration; subclass :class:`BaseSession` to get validation, error mapping and
    the async half for free.
    """

    def get(self, session_id: str, limit: int | None = None) -> list[Message]: ...
    def append(self, session_id: str, messages: Iterable[Message]) -> None: ...
    def clear(self, session_id: str) -> None: ...
    def delete(self, session_id: str) -> None: ...
    def pop(self, session_id: str) -> Message | None: ...
    def replace(self, session_id: str, messages: Iterable[Message]) -> None: ...
    def count(self, session_id: str) -> int: ...
    def list_sessions(self) -> Iterator[str]: ...
    def info(self, session_id: str) -> SessionInfo | None: ...
    def close(self) -> None: ...

    async def aget(self, session_id: str, limit: int | None = None) -> list[Message]: ...
    async def aappend(self, session_id: str, messages: Iterable[Message]) -> None: ...
    async def aclear(self, session_id: str) -> None: ...
    async def adelete(self, session_id: str) -> None: ...
    async def apop(self, session_id: str) -> Message | None: ...
    async def areplace(self, session_id: str, messages: Iterable[Message]) -> None: ...
    async def acount(self, session_id: str) -> int: ...
    def alist_sessions(self) -> AsyncIterator[str]: ...
    async def ainfo(self, session_id: str) -> SessionInfo | None: ...
    async def aclose(self) -> None: ...


def stored_info(session_id: str, count: object, created_at: object,
                updated_at: object) -> SessionInfo:
    """A :class:`SessionInfo` from a store's raw metadata (a count and two times in
    seconds since the epoch); damaged values raise :class:`CorruptRecordError`."""
    try:
        return SessionInfo(
            session_id, int(count),  # type: ignore[call-overload]
            datetime.fromtimestamp(created_at, timezone.utc),  # type: ignore[arg-type]
            datetime.fromtimestamp(updated_at, timezone.utc),  # type: ignore[arg-type]
        )
    except (TypeError, ValueError, OverflowError, OSError) as error:
        raise CorruptRecordError(
            f"the session's metadata is damaged: {error}", session_id=session_id,
            operation="info",
        ) from error


def timestamp_before(cutoff: datetime) -> float:
    """The bound, in seconds since the epoch, for a store keeping times as float
    seconds: a stored time below it reads back (rounded to the microsecond, as ``info``
    reports it) as before ``cutoff``, so ``delete_if_idle`` agrees with ``info``."""
    return cutoff.timestamp() - 0.5e-6


@runtime_checkable
class SupportsDeleteIfIdle(Protocol):
    """The optional ability to delete a session only while it is idle.

    ``delete_if_idle(session_id, cutoff)`` deletes the session if its ``updated_at`` is
    before ``cutoff`` (a timezone-aware ``datetime``) and returns whether it did, as one
    atomic step against every other write: a write that lands before it keeps the
    session, one that lands after it starts a new session. Every store of this library
    has it (wrappers through the store they wrap); :func:`sessions.prune` uses it, and
    falls back to ``info`` then ``delete`` for a store without it.
    """

    def delete_if_idle(self, session_id: str, cutoff: datetime) -> bool: ...
    async def adelete_if_idle(self, session_id: str, cutoff: datetime) -> bool: ...


class BaseSession(abc.ABC):
    """Base class of our backends.

    The public methods check session ids and messages, encode messages into records
    (compact JSON text), decode what is read back and map driver exceptions to
    :class:`SessionError` subclasses. A backend implements the ``_``-prefixed record
    methods below, which receive checked arguments.

    The async methods share the same checks and call ``_a``-prefixed hooks, which by
    default run the sync hooks in a worker thread, so they never block the event loop;
    a backend with a native async driver overrides the ``_a`` hooks. A cancelled async
    write still runs to completion in its thread (it is never left half done).
    """

    #: Exceptions of the backend's driver that are mapped by :meth:`_translate_error`.
    driver_errors: ClassVar[tuple[type[BaseException], ...]] = (OSError,)
    #: How many ids :meth:`alist_sessions` fetches per worker-thread hop.
    list_batch_size: ClassVar[int] = 256
    #: Set by :meth:`close`/:meth:`aclose`; a closed store refuses every call.
    _closed: bool = False

    # -- what a backend implements --------------------------------------------------

    @abc.abstractmethod
    def _get(self, session_id: str, limit: int | None) -> list[str]:
        """Records of the session, oldest first; only the last ``limit`` if given."""

    @abc.abstractmethod
    def _append(self, session_id: str, records: list[str]) -> None:
        """Append a non-empty batch of records atomically."""

    @abc.abstractmethod
    def _pop(self, session_id: str) -> str | None:
        """Remove and return the last record, atomically."""

    @abc.abstractmethod
    def _replace(self, session_id: str, records: list[str]) -> None:
        """Replace every record atomically (``records`` may be empty)."""

    @abc.abstractmethod
    def _clear(self, session_id: str) -> None:
        """Remove every record, keep the session."""

    @abc.abstractmethod
    def _delete(self, session_id: str) -> None:
        """Remove the session completely."""

    @abc.abstractmethod
    def _count(self, session_id: str) -> int: ...

    @abc.abstractmethod
    def _info(self, session_id: str) -> SessionInfo | None: ...

    @abc.abstractmethod
    def _iter_sessions(self) -> Iterator[str]:
        """Every session id, streamed: never all ids in memory at once."""

    def _delete_if_idle(self, session_id: str, cutoff: datetime) -> bool:
        """Delete the session if it was last updated before ``cutoff``; True if deleted.

        Every backend here overrides this with one atomic step. This default (for
        subclasses elsewhere) reads the metadata, then deletes: a write landing in
        between is deleted with the session.
        """
        info = self._info(session_id)
        if info is None or info.updated_at >= cutoff:
            return False
        self._delete(session_id)
        return True

    def _close(self) -> None:  # noqa: B027 - optional hook
        """Release connections and files. Called at most once.

        A backend that opens connections or clients lazily must refuse to open new ones
        once :attr:`_closed` is set (see :meth:`_refuse_if_closed`): a call already past
        the entry check when another thread closed the store must not reopen them."""

    def _translate_error(self, error: BaseException, session_id: str | None,
                         operation: str) -> SessionError:
        """Map a driver exception to ours; by default the backend is unavailable."""
        return BackendUnavailableError(
            f"{type(self).__name__} failed: {error}", session_id=session_id, operation=operation
        )

    # -- the error boundary -----------------------------------------------------------

    def _refuse_if_closed(self, operation: str | None = None, session_id: str | None = None) -> None:
        if self._closed:
            raise StoreClosedError(
                f"{type(self).__name__} is closed; open a new store",
                session_id=session_id, operation=operation,
            )

    def _mapped(self, error: Exception, session_id: str | None, operation: str) -> SessionError | None:
        """What a failed call raises instead of ``error`` (None: ``error`` itself).

        A call whose store was closed while it ran raises :class:`StoreClosedError`,
        whatever its driver made of the closing (a closed pool, client or connection);
        otherwise driver errors are translated."""
        if self._closed and operation != "close":
            return StoreClosedError(f"{type(self).__name__} was closed during the call: {error}",
                                    session_id=session_id, operation=operation)
        if isinstance(error, self.driver_errors):
            return self._translate_error(error, session_id, operation)
        return None

    def _call(self, operation: str, session_id: str | None, fn: Callable[..., T], *args: Any) -> T:
        if operation != "close":
            self._refuse_if_closed(operation, session_id)
        try:
            return fn(*args)
        except SessionError:
            raise
        except Exception as error:
            mapped = self._mapped(error, session_id, operation)
            if mapped is None:
                raise
            raise mapped from error

    # -- the sync contract --------------------------------------------------------------

    def get(self, session_id: str, limit: int | None = None) -> list[Message]:
        """Messages of ``session_id`` oldest first; with ``limit=N`` only the last N."""
        check_session_id(session_id, "get")
        limit = check_limit(limit, session_id, "get")
        if limit == 0:
            return []
        records = self._call("get", session_id, self._get, session_id, limit)
        return decode_records(records, session_id, "get")

    def append(self, session_id: str, messages: Iterable[Message]) -> None:
        """Append a batch of messages atomically: all of them are stored or none."""
        check_session_id(session_id, "append")
        records = encode_messages(messages, session_id, "append")
        if records:
            self._call("append", session_id, self._append, session_id, records)

    def pop(self, session_id: str) -> Message | None:
        """Remove and return the last message, or None if the session is empty."""
        check_session_id(session_id, "pop")
        record = self._call("pop", session_id, self._pop, session_id)
        return None if record is None else decode_record(record, session_id, "pop")

    def replace(self, session_id: str, messages: Iterable[Message]) -> None:
        """Replace the whole history atomically (creating the session if needed)."""
        check_session_id(session_id, "replace")
        records = encode_messages(messages, session_id, "replace")
        self._call("replace", session_id, self._replace, session_id, records)

    def clear(self, session_id: str) -> None:
        """Remove all messages; the session itself (metadata, TTL) remains."""
        check_session_id(session_id, "clear")
        self._call("clear", session_id, self._clear, session_id)

    def delete(self, session_id: str) -> None:
        """Remove the session completely. Deleting a missing session is a no-op."""
        check_session_id(session_id, "delete")
        self._call("delete", session_id, self._delete, session_id)

    def delete_if_idle(self, session_id: str, cutoff: datetime) -> bool:
        """Delete the session if it was last updated before ``cutoff`` (a timezone-aware
        ``datetime``), atomically: a write that lands first keeps it. Returns True if
        the session was deleted (see :class:`SupportsDeleteIfIdle`)."""
        check_session_id(session_id, "delete_if_idle")
        cutoff = check_cutoff(cutoff, session_id, "delete_if_idle")
        return self._call("delete_if_idle", session_id, self._delete_if_idle, session_id, cutoff)

    def count(self, session_id: str) -> int:
        """Number of messages in the session (0 if it does not exist)."""
        check_session_id(session_id, "count")
        return self._call("count", session_id, self._count, session_id)

    def info(self, session_id: str) -> SessionInfo | None:
        """Metadata of the session (created, updated, message count), or None if missing."""
        check_session_id(session_id, "info")
        return self._call("info", session_id, self._info, session_id)

    def list_sessions(self) -> Iterator[str]:
        """Iterate over every session id, streaming (no order is promised).

        Keys or rows that do not name a valid session id (written by something else
        into the store's space) are skipped, so listing never fails on them; companion
        sessions (:mod:`sessions.companions`) are not listed."""
        iterator = self._call("list_sessions", None, self._iter_sessions)
        while True:
            try:
                session_id = self._call("list_sessions", None, next, iterator)
            except StopIteration:
                return
            if is_listable_id(session_id) and not session_id.endswith(COMPANION_SUFFIXES):
                yield session_id

    def close(self) -> None:
        """Release connections and files. Afterwards every call raises
        :class:`StoreClosedError`; closing again does nothing."""
        if not self._closed:
            self._closed = True
            self._call("close", None, self._close)

    def __enter__(self: T) -> T:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    async def __aenter__(self: T) -> T:
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.aclose()

    # -- async hooks: worker-thread defaults, overridden by natively async backends --

    async def _offload(self, fn: Callable[..., T], *args: Any) -> T:
        """Run blocking work in a worker thread; a cancelled caller does not stop it."""
        return await asyncio.get_running_loop().run_in_executor(None, functools.partial(fn, *args))

    async def _aget(self, session_id: str, limit: int | None) -> list[str]:
        return await self._offload(self._get, session_id, limit)

    async def _aappend(self, session_id: str, records: list[str]) -> None:
        await self._offload(self._append, session_id, records)

    async def _apop(self, session_id: str) -> str | None:
        return await self._offload(self._pop, session_id)

    async def _areplace(self, session_id: str, records: list[str]) -> None:
        await self._offload(self._replace, session_id, records)

    async def _aclear(self, session_id: str) -> None:
        await self._offload(self._clear, session_id)

    async def _adelete(self, session_id: str) -> None:
        await self._offload(self._delete, session_id)

    async def _adelete_if_idle(self, session_id: str, cutoff: datetime) -> bool:
        return await self._offload(self._delete_if_idle, session_id, cutoff)

    async def _acount(self, session_id: str) -> int:
        return await self._offload(self._count, session_id)

    async def _ainfo(self, session_id: str) -> SessionInfo | None:
        return await self._offload(self._info, session_id)

    async def _aiter_sessions(self) -> AsyncIterator[str]:
        iterator = self._iter_sessions()
        size = self.list_batch_size
        while True:
            batch = await self._offload(lambda: list(itertools.islice(iterator, size)))
            for session_id in batch:
                yield session_id
            if len(batch) < size:
                return

    async def _aclose(self) -> None:
        await self._offload(self._close)

    async def _acall(self, operation: str, session_id: str | None, awaitable: Awaitable[T]) -> T:
        if self._closed and operation != "close":
            if isinstance(awaitable, Coroutine):
                awaitable.close()  # never started: nothing to undo
            self._refuse_if_closed(operation, session_id)
        try:
            return await awaitable
        except SessionError:
            raise
        except Exception as error:
            mapped = self._mapped(error, session_id, operation)
            if mapped is None:
                raise
            raise mapped from error

    # -- the async contract ---------------------------------------------------------------

    async def aget(self, session_id: str, limit: int | None = None) -> list[Message]:
        check_session_id(session_id, "get")
        limit = check_limit(limit, session_id, "get")
        if limit == 0:
            return []
        records = await self._acall("get", session_id, self._aget(session_id, limit))
        return decode_records(records, session_id, "get")

    async def aappend(self, session_id: str, messages: Iterable[Message]) -> None:
        check_session_id(session_id, "append")
        records = encode_messages(messages, session_id, "append")
        if records:
            await self._acall("append", session_id, self._aappend(session_id, records))

    async def apop(self, session_id: str) -> Message | None:
        check_session_id(session_id, "pop")
        record = await self._acall("pop", session_id, self._apop(session_id))
        return None if record is None else decode_record(record, session_id, "pop")

    async def areplace(self, session_id: str, messages: Iterable[Message]) -> None:
        check_session_id(session_id, "replace")
        records = encode_messages(messages, session_id, "replace")
        await self._acall("replace", session_id, self._areplace(session_id, records))

    async def aclear(self, session_id: str) -> None:
        check_session_id(session_id, "clear")
        await self._acall("clear", session_id, self._aclear(session_id))

    async def adelete(self, session_id: str) -> None:
        check_session_id(session_id, "delete")
        await self._acall("delete", session_id, self._adelete(session_id))

    async def adelete_if_idle(self, session_id: str, cutoff: datetime) -> bool:
        check_session_id(session_id, "delete_if_idle")
        cutoff = check_cutoff(cutoff, session_id, "delete_if_idle")
        return await self._acall("delete_if_idle", session_id,
                                 self._adelete_if_idle(session_id, cutoff))

    async def acount(self, session_id: str) -> int:
        check_session_id(session_id, "count")
        return await self._acall("count", session_id, self._acount(session_id))

    async def ainfo(self, session_id: str) -> SessionInfo | None:
        check_session_id(session_id, "info")
        return await self._acall("info", session_id, self._ainfo(session_id))

    async def alist_sessions(self) -> AsyncIterator[str]:
        """Iterate over every session id without blocking the event loop (companion
        sessions are not listed)."""
        iterator = self._aiter_sessions()
        while True:
            try:
                session_id = await self._acall("list_sessions", None, iterator.__anext__())
            except StopAsyncIteration:
                return
            if is_listable_id(session_id) and not session_id.endswith(COMPANION_SUFFIXES):
                yield session_id

    async def aclose(self) -> None:
        if not self._closed:
            self._closed = True
            await self._acall("close", None, self._aclose())
