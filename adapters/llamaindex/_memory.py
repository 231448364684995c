"""``SessionDBChatStore``: the ``AsyncDBChatStore`` LlamaIndex ``Memory`` uses, over a store."""

from __future__ import annotations

from llama_index.core.base.llms.types import ChatMessage
from llama_index.core.bridge.pydantic import PrivateAttr
from llama_index.core.storage.chat_store.base_db import AsyncDBChatStore, MessageStatus

from sessions import CorruptRecordError, InvalidArgumentError, Session
from sessions._message import Message, check_session_id

from ._chat_store import check_index
from ._convert import check_session, from_canonical_all, to_canonical_all
from ._memory_state import MEMORY_STATE_SUFFIX

__all__ = ["MEMORY_STATE_SUFFIX", "SessionDBChatStore"]

_STATE_KEY = "llamaindex_memory"


def _state_id(key: str) -> str:
    state_id = key + MEMORY_STATE_SUFFIX
    check_session_id(state_id, "memory state")
    return state_id


def _bounds(total: int, archived: int, status: MessageStatus | None,
            offset: int | None, limit: int | None) -> tuple[int, int]:
    """[start, end) positions in the whole history of a status slice after offset/limit."""
    if status is None:
        start, end = 0, total
    elif status == MessageStatus.ARCHIVED:
        start, end = 0, archived
    elif status == MessageStatus.ACTIVE:
        start, end = archived, total
    else:
        raise InvalidArgumentError(f"status must be a MessageStatus or None, got {status!r}")
    start = min(end, start + (offset or 0))
    if limit is not None:
        end = min(end, start + limit)
    return start, end


class SessionDBChatStore(AsyncDBChatStore):
    """An ``AsyncDBChatStore`` over a session store, for LlamaIndex ``Memory``::

        memory = Memory.from_defaults(session_id="alice",
                                      chat_store=SessionDBChatStore(store))

    The session ``alice`` holds the whole conversation, oldest first: archived
    messages (flushed out of ``Memory``'s short-term queue) followed by active ones,
    so other frameworks read the complete history. The number of archived messages
    at its head is recorded in the sibling session ``alice`` +
    :data:`MEMORY_STATE_SUFFIX` (one marker message; absent when nothing is
    archived), which ``get_keys`` hides. Archiving is O(1) writes and reading the
    active queue is O(active messages), however long the archive grows.

    ``delete_message(key, idx)`` takes a position in the whole conversation (the
    SQL store's row id has no equivalent). Operations that remove or insert messages
    in the middle (``delete_message``, ``delete_oldest_messages``, deleting one status,
    adding *archived* messages while active ones exist) rewrite the history atomically
    and cost O(history).

    The mark and the history are separate writes, not one transaction: a crash
    between them, or a rewrite of the history elsewhere (another framework's
    ``replace``/``clear``), can leave the mark counting the wrong number of leading
    messages as archived (it is capped at the history's length). That changes only
    what ``Memory`` treats as short-term; no message is ever hidden or lost.
    """

    _session: Session = PrivateAttr()

    def __init__(self, session: Session) -> None:
        check_session(session, type(self))
        super().__init__()
        self._session = session

    @classmethod
    def class_name(cls) -> str:
        return "SessionDBChatStore"

    @property
    def session(self) -> Session:
        return self._session

    async def _archived(self, key: str) -> tuple[int, int]:
        """(total messages, archived messages at the head) of ``key``."""
        state_id = _state_id(key)
        total = await self._session.acount(key)
        marks = await self._session.aget(state_id, 1)
        if not marks:
            return total, 0
        state = marks[-1].get(_STATE_KEY)
        if not isinstance(state, dict) or type(state.get("archived")) is not int:
            raise CorruptRecordError("Memory state marker is malformed",
                                     session_id=state_id, operation="get")
        return total, max(0, min(total, state["archived"]))

    async def _mark(self, key: str, archived: int) -> None:
        state_id = _state_id(key)
        if archived:
            marker = {"role": "system", "content": "", _STATE_KEY: {"v": 1, "archived": archived}}
            await self._session.areplace(state_id, [marker])
        else:
            await self._session.adelete(state_id)

    async def _slice(self, key: str, start: int, end: int, total: int) -> list[Message]:
        if end <= start:
            return []
        tail = await self._session.aget(key, total - start)
        return tail[: end - start]

    async def get_messages(self, key: str, status: MessageStatus | None = MessageStatus.ACTIVE,
                           limit: int | None = None, offset: int | None = None) -> list[ChatMessage]:
        """Messages of ``key`` with ``status`` (None: all), oldest first, after
        ``offset`` and at most ``limit``; the active queue costs O(its length)."""
        for name, value in (("limit", limit), ("offset", offset)):
            if value is not None and (type(value) is not int or value < 0):
                raise InvalidArgumentError(f"{name} must be an int >= 0 or None, got {value!r}",
                                           session_id=key, operation="get")
        total, archived = await self._archived(key)
        start, end = _bounds(total, archived, status, offset, limit)
        return from_canonical_all(await self._slice(key, start, end, total), key, "get")

    async def count_messages(self, key: str,
                             status: MessageStatus | None = MessageStatus.ACTIVE) -> int:
        total, archived = await self._archived(key)
        start, end = _bounds(total, archived, status, None, None)
        return end - start

    async def add_message(self, key: str, message: ChatMessage,
                          status: MessageStatus = MessageStatus.ACTIVE) -> None:
        await self.add_messages(key, [message], status)

    async def add_messages(self, key: str, messages: list[ChatMessage],
                           status: MessageStatus = MessageStatus.ACTIVE) -> None:
        """Append to the active queue; *archived* messages go after the archived ones."""
        records = to_canonical_all(messages, key, "append")
        if status != MessageStatus.ARCHIVED:
            await self._session.aappend(key, records)
            return
        total, archived = await self._archived(key)
        if archived == total:
            await self._session.aappend(key, records)
        else:
            history = await self._session.aget(key)
            await self._session.areplace(key, history[:archived] + records + history[archived:])
        await self._mark(key, archived + len(records))

    async def set_messages(self, key: str, messages: list[ChatMessage],
                           status: MessageStatus = MessageStatus.ACTIVE) -> None:
        """Replace the whole conversation of ``key`` with ``messages`` of one status."""
        records = to_canonical_all(messages, key, "replace")
        await self._session.areplace(key, records)
        await self._mark(key, len(records) if status == MessageStatus.ARCHIVED else 0)

    async def delete_message(self, key: str, idx: int) -> ChatMessage | None:
        """Delete the message at position ``idx`` of the whole conversation."""
        check_index(idx, key)
        total, archived = await self._archived(key)
        if not 0 <= idx < total:
            return None
        history = await self._session.aget(key)
        removed = history.pop(idx)
        await self._session.areplace(key, history)
        if idx < archived:
            await self._mark(key, archived - 1)
        return from_canonical_all([removed], key, "delete_message")[0]

    async def delete_messages(self, key: str, status: MessageStatus | None = None) -> None:
        """Delete every message of ``key`` (status None), or only archived/active ones."""
        if status is None:
            await self._session.adelete(key)
            await self._mark(key, 0)
            return
        total, archived = await self._archived(key)
        if status == MessageStatus.ARCHIVED:
            if archived:
                await self._session.areplace(key, await self._slice(key, archived, total, total))
                await self._mark(key, 0)
        elif archived < total:
            await self._session.areplace(key, await self._slice(key, 0, archived, total))

    async def delete_oldest_messages(self, key: str, n: int) -> list[ChatMessage]:
        """Delete the oldest ``n`` active messages and return them."""
        _, archived = await self._archived(key)
        history = await self._session.aget(key)
        start, end = _bounds(len(history), archived, MessageStatus.ACTIVE, None, max(0, n))
        removed = history[start:end]
        if removed:
            await self._session.areplace(key, history[:start] + history[end:])
        return from_canonical_all(removed, key, "delete_oldest_messages")

    async def archive_oldest_messages(self, key: str, n: int) -> list[ChatMessage]:
        """Mark the oldest ``n`` active messages archived and return them (O(n))."""
        total, archived = await self._archived(key)
        start, end = _bounds(total, archived, MessageStatus.ACTIVE, None, max(0, n))
        moved = await self._slice(key, start, end, total)
        if moved:
            await self._mark(key, archived + len(moved))
        return from_canonical_all(moved, key, "archive_oldest_messages")

    async def get_keys(self) -> list[str]:
        return [key async for key in self._session.alist_sessions()
                if not key.endswith(MEMORY_STATE_SUFFIX)]

