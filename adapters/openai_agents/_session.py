"""``AgentsSession``: the Agents SDK ``Session`` protocol over a store."""

from __future__ import annotations

import asyncio
import operator
from typing import TYPE_CHECKING, Any

from agents.memory.session_settings import SessionSettings, coerce_session_settings

from adapters._gc import collector_paused
from sessions import (
    BackendUnavailableError,
    ConfigurationError,
    InvalidArgumentError,
    Session,
    connect,
)
from sessions._message import check_session_id

from ._convert import items_to_messages, message_items, part_of
from ._window import Window

if TYPE_CHECKING:
    from agents.items import TResponseInputItem
else:
    TResponseInputItem = dict

__all__ = ["AgentsSession"]


def _settings(value: object, session_id: str) -> SessionSettings:
    """Session settings as the SDK takes them: a ``SessionSettings``, a dict or None."""
    if value is None:
        return SessionSettings()
    try:
        return coerce_session_settings(value)  # type: ignore[arg-type]
    except (TypeError, ValueError) as error:  # pydantic's ValidationError is a ValueError
        raise ConfigurationError(f"bad session_settings: {error}", session_id=session_id,
                                 operation="open") from error


class AgentsSession:
    """An Agents SDK ``Session`` keeping its items in ``store`` under ``session_id``.

    Implements the SDK's ``Session`` protocol (``session_id``, ``session_settings``,
    ``get_items``, ``add_items``, ``pop_item``, ``clear_session``) with the store's async
    methods, and what the SDK's own sessions add: ``close()`` (and ``async with``), an
    atomic whole-history replace for ``OpenAIResponsesCompactionSession``, and
    :meth:`from_url` for a session that owns its store.

    ``session_settings`` takes what the SDK's sessions take (a ``SessionSettings``, a
    dict such as ``{"limit": 20}``, or None) and always reads as a ``SessionSettings``.

    ``get_items`` is what the Runner sends a model, so it is always valid model input
    (the rules are in :class:`adapters.openai_agents._window.Window`): items other
    frameworks wrote that no model can read are left out, a window never starts inside
    a tool exchange nor ends with calls still waiting for their result, and a reasoning
    item stays with the item that followed it. The stored history is never changed by
    reading it.
    """

    def __init__(self, store: Session, session_id: str, *,
                 session_settings: SessionSettings | dict[str, Any] | None = None) -> None:
        self.store = store
        self.session_id = check_session_id(session_id, "open")
        self._settings = _settings(session_settings, self.session_id)
        self._owns_store = False
        self._closed = False

    @classmethod
    def from_url(cls, session_id: str, *, url: str | None = None,
                 session_settings: SessionSettings | dict[str, Any] | None = None) -> AgentsSession:
        """A session over the store ``url`` opens (:func:`sessions.connect`), which it owns:
        :meth:`close` closes that store."""
        store = connect(url)
        try:
            session = cls(store, session_id, session_settings=session_settings)
        except BaseException:
            store.close()
            raise
        session._owns_store = True
        return session

    @property
    def session_settings(self) -> SessionSettings:
        """The settings the Runner reads (``limit``: items ``get_items`` returns by default)."""
        return self._settings

    @session_settings.setter
    def session_settings(self, value: SessionSettings | dict[str, Any] | None) -> None:
        self._settings = _settings(value, self.session_id)

    def _check_open(self, operation: str) -> None:
        if self._closed:
            raise BackendUnavailableError("the session is closed", session_id=self.session_id,
                                          operation=operation)

    def _limit(self, limit: object) -> int | None:
        """``limit``, or the settings' limit when it is None: an int, or None for all."""
        if limit is None:
            limit = self._settings.limit
        if limit is None:
            return None
        try:
            if type(limit) is bool:
                raise TypeError
            return operator.index(limit)  # type: ignore[arg-type]
        except TypeError:
            raise InvalidArgumentError(f"limit must be an int or None, not {type(limit).__name__}",
                                       session_id=self.session_id, operation="get_items") from None

    async def get_items(self, limit: int | None = None) -> list[TResponseInputItem]:
        """The last ``limit`` items (all when None; ``session_settings.limit`` when not
        given), oldest first, as valid model input (see the class docstring).

        Like the SDK's sessions: ``limit=0`` or a negative limit gives ``[]``. A window may
        hold fewer than ``limit`` items: results whose call it cut off are left out rather
        than reaching back for the call. Costs O(limit): it reads the last ``limit + 1``
        messages (every message holds at least one item).
        """
        self._check_open("get_items")
        return (await self._window(self._limit(limit))).items  # type: ignore[return-value]

    async def _window(self, limit: int | None) -> Window:
        if limit is not None and limit <= 0:
            return Window([], 0)
        messages = await self.store.aget(self.session_id, limit=None if limit is None else limit + 1)
        with collector_paused(len(messages)):
            return Window(messages, limit)

    async def _read_compaction_items(self, limit: int | None) -> tuple[list[TResponseInputItem], bool]:
        """``get_items(limit)`` and whether it covers the whole history, for
        ``OpenAIResponsesCompactionSession``.

        A window that left items out holds fewer than ``limit`` items although the
        history goes on before it: judged by its length, as the SDK judges a session
        without this method, it would pass for the whole history, and an automatic
        compaction would replace everything with a summary of the window.
        """
        self._check_open("get_items")
        window = await self._window(self._limit(limit))
        return window.items, window.complete  # type: ignore[return-value]

    async def add_items(self, items: list[TResponseInputItem]) -> None:
        """Append the items' messages in one atomic batch."""
        self._check_open("add_items")
        messages = items_to_messages(items)
        await self.store.aappend(self.session_id, messages)

    async def pop_item(self) -> TResponseInputItem | None:
        """Remove and return the most recent item, or None if the session is empty.

        When the last message holds several items (an assistant message with several
        tool calls), it is popped and appended back without its last item, keeping every
        other key it has (an id, another framework's namespace): two writes, completed
        even if the caller is cancelled, but not atomic against a concurrent writer.
        """
        self._check_open("pop_item")
        return await asyncio.shield(self._pop())

    async def _pop(self) -> TResponseInputItem | None:
        while True:
            message = await self.store.apop(self.session_id)
            if message is None:
                return None
            items = message_items(message)[0]
            if items:  # a Responses-only message whose items are unreadable holds none
                break
        if len(items) > 1:
            await self.store.aappend(self.session_id, part_of(message, items[:-1]))
        return items[-1]  # type: ignore[return-value]

    async def clear_session(self) -> None:
        """Remove every item (the store's ``clear``: the session itself remains)."""
        self._check_open("clear_session")
        await self.store.aclear(self.session_id)

    async def _atomic_replace_items(self, items: list[TResponseInputItem]) -> bool:
        """Replace the history with ``items`` in one atomic store write.

        ``OpenAIResponsesCompactionSession`` uses this, when the session has it, instead
        of a clear followed by an append. What ``get_items`` left out at the end of the
        history (calls still waiting for their result) stays after the new items.
        """
        self._check_open("replace")
        messages = items_to_messages(items)  # refused before anything is read or written
        return await asyncio.shield(self._replace(messages))

    async def _replace(self, messages: list[dict[str, Any]]) -> bool:
        stored = await self.store.aget(self.session_id)
        tail = Window(stored, None).hidden_tail()
        await self.store.areplace(self.session_id, [*messages, *tail])
        return True

    async def close(self) -> None:
        """Close the store if this session opened it (:meth:`from_url`); the session is
        then closed. A store passed in belongs to the caller: it stays open, and so does
        the session (as with the SDK's own sessions over a client they were given)."""
        if self._owns_store and not self._closed:
            self._closed = True
            await self.store.aclose()

    async def __aenter__(self) -> AgentsSession:
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.close()

    def __repr__(self) -> str:
        return f"AgentsSession({type(self.store).__name__}, {self.session_id!r})"
