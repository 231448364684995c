"""The base of wrappers: a Session over another Session that transforms each message.

A wrapper validates the caller's messages itself (the same rules as every backend),
turns each one into what it stores (usually an *envelope*, see :mod:`sessions._message`)
and hands those to the wrapped store; reading turns each stored item back. Work is per
message, so ``append`` stays O(batch) and ``get(limit=N)`` O(N) on every backend.

Wrappers implement the whole contract explicitly. Each operation is written once, as a
flow (:mod:`sessions._flow`) that the sync methods drive through the wrapped store's
sync methods and the async methods through its async ones; the per-message work
(microseconds per message) runs in the caller's thread or event loop. Anything a wrapper cannot read back
(a corrupt or undecryptable record) raises instead of being skipped, and ``pop``
reads the last message before it removes it, so a record that cannot be read is never
removed by ``pop``.
"""

from __future__ import annotations

import abc
import base64
import binascii
import sys
from collections.abc import AsyncIterator, Iterable, Iterator, Mapping
from datetime import datetime
from typing import Any, TypeVar

from ._base import Session, SessionInfo, SupportsDeleteIfIdle
from ._errors import ConfigurationError
from ._flow import Flow, arun, call, run
from ._message import Message, check_cutoff, check_session_id, encode_messages
from .companions import acompanions_hidden, companions_hidden

__all__ = ["WrapperSession", "b64decode", "b64encode", "delete_if_idle_flow"]

W = TypeVar("W", bound="WrapperSession")


def b64encode(data: bytes) -> str:
    """Standard base64 text of ``data``, as stored in envelopes."""
    return binascii.b2a_base64(data, newline=False).decode("ascii")


if sys.version_info >= (3, 11):
    def b64decode(text: str) -> bytes:
        """Decode strict standard base64; raise ``binascii.Error`` (a ValueError) on any
        character outside the alphabet, so an edited envelope never decodes quietly."""
        return binascii.a2b_base64(text, strict_mode=True)
else:  # pragma: no cover - Python 3.10
    def b64decode(text: str) -> bytes:
        """Decode strict standard base64 (see the 3.11+ definition)."""
        return base64.b64decode(text, validate=True)


def _validated(messages: object, session_id: str, operation: str) -> list[tuple[Message, str]]:
    """Each message of the batch with its record; raises before anything is written."""
    if isinstance(messages, (str, bytes, Mapping)) or not isinstance(messages, Iterable):
        encode_messages(messages, session_id, operation)  # raises the usual error
    batch = list(messages)  # type: ignore[call-overload]
    records = encode_messages(batch, session_id, operation)
    return [(dict(message), record) for message, record in zip(batch, records, strict=True)]


class WrapperSession(abc.ABC):
    """A Session that stores every message of ``inner`` in a transformed form.

    Subclasses implement :meth:`_seal` (message -> stored item) and :meth:`_unseal`
    (stored item -> message). Closing the wrapper closes the wrapped store.

    ``clear`` and ``replace`` first read the whole session when :attr:`check_destroy`
    is set (encryption), so history that cannot be read back is not destroyed unless
    the caller passes ``force=True``; ``delete`` always deletes.
    """

    #: Read (authenticate) every record before ``clear``/``replace`` destroy them.
    check_destroy: bool = False

    def __init__(self, inner: Session) -> None:
        if not isinstance(inner, Session):
            raise ConfigurationError(
                f"{type(self).__name__} wraps a Session, not {type(inner).__name__}"
            )
        self.inner = inner

    # -- what a wrapper implements ----------------------------------------------------

    @abc.abstractmethod
    def _seal(self, session_id: str, message: Message, record: str) -> Message:
        """What to store for one validated message (``record`` is its JSON text)."""

    @abc.abstractmethod
    def _unseal(self, session_id: str, stored: Message, operation: str) -> Message:
        """The message a stored item holds; raise a SessionError if it cannot be read."""

    # -- shared helpers ---------------------------------------------------------------

    def _seal_batch(self, session_id: str, messages: object, operation: str) -> list[Message]:
        check_session_id(session_id, operation)
        return [self._seal(session_id, m, r) for m, r in _validated(messages, session_id, operation)]

    def _unseal_all(self, session_id: str, stored: list[Message], operation: str) -> list[Message]:
        return [self._unseal(session_id, item, operation) for item in stored]

    def _popped(self, session_id: str, peeked: Message, removed: Message | None) -> Message | None:
        """The message ``pop`` returns, given the last item read (and checked) before
        popping, or None when the item removed is another one that cannot be read:
        the caller then puts it back and reads it again to raise its error."""
        if removed is None:
            return None
        if removed == peeked:
            return self._unseal(session_id, peeked, "pop")
        try:
            return self._unseal(session_id, removed, "pop")
        except Exception:
            return None

    def _inner_kwargs(self, force: bool) -> dict[str, Any]:
        return {"force": True} if force and isinstance(self.inner, WrapperSession) else {}

    # -- the operations, written once for both drivers (see sessions._flow) --------------

    def _get_flow(self, session_id: str, limit: int | None) -> Flow[list[Message]]:
        stored = yield call(self.inner, "get", session_id, limit)
        return self._unseal_all(session_id, stored, "get")

    def _append_flow(self, session_id: str, messages: object) -> Flow[None]:
        stored = self._seal_batch(session_id, messages, "append")
        if stored:
            yield call(self.inner, "append", session_id, stored)

    def _pop_flow(self, session_id: str) -> Flow[Message | None]:
        check_session_id(session_id, "pop")
        last = yield call(self.inner, "get", session_id, 1)
        if not last:
            return None
        self._unseal(session_id, last[0], "pop")
        removed = yield call(self.inner, "pop", session_id)
        message = self._popped(session_id, last[0], removed)
        if message is None and removed is not None:
            # Another writer appended in between, and what was removed cannot be read.
            yield call(self.inner, "append", session_id, [removed])
            self._unseal(session_id, removed, "pop")
        return message

    def _destroy_flow(self, operation: str, session_id: str, stored: list[Message] | None,
                      force: bool) -> Flow[None]:
        """``clear`` (``stored`` None) or ``replace``: after reading and checking the
        current history first when this wrapper checks before destroying."""
        if self.check_destroy and not force:
            current = yield call(self.inner, "get", session_id)
            self._unseal_all(session_id, current, operation)
        args = (session_id,) if stored is None else (session_id, stored)
        yield call(self.inner, operation, *args, **self._inner_kwargs(force))

    def _delete_if_idle_flow(self, session_id: str, cutoff: datetime) -> Flow[bool]:
        check_session_id(session_id, "delete_if_idle")
        check_cutoff(cutoff, session_id, "delete_if_idle")
        deleted: bool = yield from delete_if_idle_flow(self.inner, session_id, cutoff)
        return deleted

    # -- the sync contract --------------------------------------------------------------

    def get(self, session_id: str, limit: int | None = None) -> list[Message]:
        """Messages of ``session_id`` oldest first; ``limit=N`` the last N (O(N))."""
        return run(self._get_flow(session_id, limit))

    def append(self, session_id: str, messages: Iterable[Message]) -> None:
        """Append a batch atomically (validated here, transformed per message)."""
        run(self._append_flow(session_id, messages))

    def pop(self, session_id: str) -> Message | None:
        """Remove and return the last message; a last record that cannot be read is
        left in place and its error raised."""
        return run(self._pop_flow(session_id))

    def replace(self, session_id: str, messages: Iterable[Message], *, force: bool = False) -> None:
        """Replace the whole history atomically. Unless ``force=True``, a wrapper that
        checks before destroying first reads the current history (O(history))."""
        stored = self._seal_batch(session_id, messages, "replace")
        run(self._destroy_flow("replace", session_id, stored, force))

    def clear(self, session_id: str, *, force: bool = False) -> None:
        """Remove all messages, keep the session; see :meth:`replace` for ``force``."""
        check_session_id(session_id, "clear")
        run(self._destroy_flow("clear", session_id, None, force))

    def delete(self, session_id: str) -> None:
        """Remove the session completely, whether or not its records can be read."""
        self.inner.delete(session_id)

    def delete_if_idle(self, session_id: str, cutoff: datetime) -> bool:
        """The wrapped store's ``delete_if_idle`` (see
        :class:`~sessions.SupportsDeleteIfIdle`): atomic when that store's is."""
        return run(self._delete_if_idle_flow(session_id, cutoff))

    def count(self, session_id: str) -> int:
        return self.inner.count(session_id)

    def info(self, session_id: str) -> SessionInfo | None:
        return self.inner.info(session_id)

    def list_sessions(self) -> Iterator[str]:
        """The wrapped store's session ids, companion sessions left out."""
        return companions_hidden(self.inner.list_sessions())

    def close(self) -> None:
        """Close the wrapped store."""
        self.inner.close()

    def __enter__(self: W) -> W:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    # -- the async contract: the same flows, through the inner store's async methods ----

    async def aget(self, session_id: str, limit: int | None = None) -> list[Message]:
        return await arun(self._get_flow(session_id, limit))

    async def aappend(self, session_id: str, messages: Iterable[Message]) -> None:
        await arun(self._append_flow(session_id, messages))

    async def apop(self, session_id: str) -> Message | None:
        return await arun(self._pop_flow(session_id))

    async def areplace(self, session_id: str, messages: Iterable[Message], *,
                       force: bool = False) -> None:
        stored = self._seal_batch(session_id, messages, "replace")
        await arun(self._destroy_flow("replace", session_id, stored, force))

    async def aclear(self, session_id: str, *, force: bool = False) -> None:
        check_session_id(session_id, "clear")
        await arun(self._destroy_flow("clear", session_id, None, force))

    async def adelete(self, session_id: str) -> None:
        await self.inner.adelete(session_id)

    async def adelete_if_idle(self, session_id: str, cutoff: datetime) -> bool:
        return await arun(self._delete_if_idle_flow(session_id, cutoff))

    async def acount(self, session_id: str) -> int:
        return await self.inner.acount(session_id)

    async def ainfo(self, session_id: str) -> SessionInfo | None:
        return await self.inner.ainfo(session_id)

    def alist_sessions(self) -> AsyncIterator[str]:
        return acompanions_hidden(self.inner.alist_sessions())

    async def aclose(self) -> None:
        await self.inner.aclose()

    async def __aenter__(self: W) -> W:
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.aclose()


def delete_if_idle_flow(store: Session, session_id: str, cutoff: datetime) -> Flow[bool]:
    """Delete ``session_id`` of ``store`` if it was last updated before ``cutoff``:
    atomically through the store's ``delete_if_idle`` when it has one
    (:class:`~sessions.SupportsDeleteIfIdle`), else by ``info`` then ``delete`` (a
    write landing between the two is deleted with the session)."""
    if isinstance(store, SupportsDeleteIfIdle):
        deleted: bool = yield call(store, "delete_if_idle", session_id, cutoff)
        return deleted
    info = yield call(store, "info", session_id)
    if info is None or info.updated_at >= cutoff:
        return False
    yield call(store, "delete", session_id)
    return True
