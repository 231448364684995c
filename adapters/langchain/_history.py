"""The LangChain chat history over a store (the legacy path for LCEL chains)."""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator, Sequence

from langchain_core.chat_history import BaseChatMessageHistory
from langchain_core.messages import BaseMessage

from adapters._gc import collector_paused
from sessions._base import Session
from sessions._errors import CorruptRecordError, InvalidArgumentError, InvalidMessageError
from sessions._message import Message, check_limit, check_session_id

from ._batches import langchain_to_stored
from ._cache import read_history
from ._view import rewrite, view_of

__all__ = ["SessionChatMessageHistory", "session_history_factory"]


class SessionChatMessageHistory(BaseChatMessageHistory):
    """A LangChain chat history kept in a :class:`sessions.Session` under one session id.

    :attr:`messages` and :meth:`aget_messages` hand history to a model, so they return
    the *model view* of the stored messages (:func:`sessions.model_view`, as LangChain
    messages): what only the Agents SDK uses (reasoning, hosted tool calls), messages
    with nothing a model can read and tool calls without results are left out, the rest
    comes back as it was added. Every message the store accepts can be read, whichever
    framework wrote or rewrote it. ``limit=N`` is a window: the view of the last N
    stored messages (the store reads O(N), however long the conversation), so it may
    hold fewer than N (never a tool result without its call), while every message stays
    stored. ``add_messages`` appends the whole batch in one atomic ``append``;
    ``clear`` removes every message of the session, not only the window. Assigning
    :attr:`messages` writes back only what changed (see the setter).
    The async methods call the store's async methods, so they never block the event
    loop on I/O; turning records into message objects runs on the loop (about 5 µs a
    message), which a window keeps short. While a read of 1,000 messages or more is
    converted, Python's cyclic garbage collector is paused (see :mod:`adapters._gc`).

    Messages that cannot be stored raise :class:`sessions.InvalidMessageError` naming
    their index, and nothing of the batch is stored.
    """

    def __init__(self, session: Session, session_id: str, *, limit: int | None = None) -> None:
        self.session = session
        self.session_id = check_session_id(session_id, "history")
        self.limit = check_limit(limit, session_id, "history")

    def __repr__(self) -> str:
        return (f"{type(self).__name__}({self.session!r}, {self.session_id!r}"
                f"{'' if self.limit is None else f', limit={self.limit}'})")

    def _to_langchain(self, stored: list[Message]) -> list[BaseMessage]:
        return read_history(stored, session_id=self.session_id, operation="get")

    @contextlib.contextmanager
    def _reading(self, operation: str) -> Iterator[None]:
        try:
            yield
        except InvalidMessageError as error:
            raise CorruptRecordError(
                f"a stored message cannot be read as a LangChain message: {error.reason}",
                session_id=self.session_id, operation=operation,
            ) from error

    def _to_canonical(self, messages: Sequence[BaseMessage], operation: str) -> list[Message]:
        if isinstance(messages, (BaseMessage, str, dict)):
            raise InvalidMessageError(
                f"expected a sequence of messages, got {type(messages).__name__}",
                session_id=self.session_id, operation=operation,
            )
        return langchain_to_stored(messages, session_id=self.session_id, operation=operation)

    @property
    def messages(self) -> list[BaseMessage]:
        """The model view of the stored messages, oldest first (of the last ``limit``
        with a window)."""
        return self._to_langchain(self.session.get(self.session_id, self.limit))

    @messages.setter
    def messages(self, messages: Sequence[BaseMessage]) -> None:
        """Make the history ``messages``, in one atomic ``replace`` of the session.

        ``messages`` is taken as an edit of what :attr:`messages` reads now: stored
        messages it leaves unchanged keep their stored form (another framework's ids
        and data with them), what the view left out stays where it was, and only
        what LangChain changed, added or removed is written; nothing is written when
        nothing changed. Refused with a window (:class:`InvalidArgumentError`): a
        window moves with every append, so an assignment through one cannot say which
        stored messages it replaces.
        """
        if self.limit is not None:
            raise InvalidArgumentError(
                "assigning messages through a windowed history cannot say which stored"
                " messages it replaces; use a history without limit",
                session_id=self.session_id, operation="replace",
            )
        new = self._to_canonical(messages, "replace")
        stored = self.session.get(self.session_id)
        with self._reading("replace"), collector_paused(len(stored)):
            history = rewrite(stored, view_of(stored), new)
        if history != stored:
            self.session.replace(self.session_id, history)

    def add_messages(self, messages: Sequence[BaseMessage]) -> None:
        """Append the batch in one atomic store append."""
        batch = self._to_canonical(messages, "append")
        if batch:
            self.session.append(self.session_id, batch)

    def clear(self) -> None:
        """Remove every message of the session (the session itself remains)."""
        self.session.clear(self.session_id)

    async def aget_messages(self) -> list[BaseMessage]:
        return self._to_langchain(await self.session.aget(self.session_id, self.limit))

    async def aadd_messages(self, messages: Sequence[BaseMessage]) -> None:
        batch = self._to_canonical(messages, "append")
        if batch:
            await self.session.aappend(self.session_id, batch)

    async def aclear(self) -> None:
        await self.session.aclear(self.session_id)


def session_history_factory(
    session: Session, *, limit: int | None = None
) -> Callable[[str], SessionChatMessageHistory]:
    """A ``get_session_history`` for ``RunnableWithMessageHistory`` over ``session``.

    ``RunnableWithMessageHistory(chain, session_history_factory(store, limit=50))``
    keeps each conversation under the ``session_id`` of the call's configuration and
    shows the chain the last 50 messages.
    """
    check_limit(limit, "", "history")

    def get_session_history(session_id: str) -> SessionChatMessageHistory:
        return SessionChatMessageHistory(session, session_id, limit=limit)

    return get_session_history
