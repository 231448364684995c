"""``SessionDBChatStore``: the ``AsyncDBChatStore`` LlamaIndex ``Memory`` uses, over a store."""

from __future__ import annotations

import hashlib
import json
from typing import NamedTuple

from llama_index.core.base.llms.types import ChatMessage
from llama_index.core.bridge.pydantic import PrivateAttr
from llama_index.core.storage.chat_store.base_db import AsyncDBChatStore, MessageStatus

from sessions import InvalidArgumentError, Session
from sessions._message import Message, check_session_id
from sessions.companions import acompanions_hidden, adelete_conversation
from sessions.view import ModelView

from ._chat_store import check_index
from ._convert import check_session, from_canonical_all, to_canonical_all
from ._memory_state import MEMORY_STATE_SUFFIX
from ._view import rewrite, view

__all__ = ["MEMORY_STATE_SUFFIX", "SessionDBChatStore"]

_STATE_KEY = "llamaindex_memory"
_STATE_VERSION = 2


def _state_id(key: str) -> str:
    state_id = key + MEMORY_STATE_SUFFIX
    check_session_id(state_id, "memory state")
    return state_id


def _fingerprint(message: Message) -> str:
    """A digest of one stored message (its JSON with sorted keys)."""
    text = json.dumps(message, sort_keys=True, ensure_ascii=False, separators=(",", ":"))
    return hashlib.sha256(text.encode("utf-8", "surrogatepass")).hexdigest()


class _Mark(NamedTuple):
    archived: int
    boundary: str


def _parse_mark(marks: list[Message]) -> _Mark | None:
    """The archive mark a marker session holds; None if it holds none it can vouch for."""
    state = marks[-1].get(_STATE_KEY) if marks else None
    if not isinstance(state, dict) or state.get("v") != _STATE_VERSION:
        return None
    archived, boundary = state.get("archived"), state.get("boundary")
    if type(archived) is not int or archived < 1 or not isinstance(boundary, str):
        return None
    return _Mark(archived, boundary)


class _Loaded(NamedTuple):
    """Stored messages ``messages`` = history[offset:], of which the first ``archived``
    of the whole history are archived."""

    messages: list[Message]
    offset: int
    archived: int
    #: The marker session holds a mark (valid or stale).
    marked: bool

    def part(self, status: MessageStatus | None) -> tuple[int, list[Message]]:
        """(position in the whole history, stored messages) of a status."""
        if status is None:
            return 0, self.messages
        if status == MessageStatus.ARCHIVED:
            return 0, self.messages[:self.archived]
        if status == MessageStatus.ACTIVE:
            return self.archived, self.messages[self.archived - self.offset:]
        raise InvalidArgumentError(f"status must be a MessageStatus or None, got {status!r}")


class SessionDBChatStore(AsyncDBChatStore):
    """An ``AsyncDBChatStore`` over a session store, for LlamaIndex ``Memory``::

        memory = Memory.from_defaults(session_id="alice",
                                      chat_store=SessionDBChatStore(store))

    The session ``alice`` holds the whole conversation, oldest first: archived
    messages (flushed out of ``Memory``'s short-term queue) followed by active ones,
    so other frameworks read the complete history. How many stored messages at its
    head are archived is recorded in the companion session ``alice`` +
    :data:`MEMORY_STATE_SUFFIX` (see :mod:`sessions.companions`: never listed, pruned
    and migrated with its conversation, never pruned alone), with a fingerprint of the
    last archived message. When the conversation changes under the mark (another
    framework clears, deletes or rewrites it; a crash between the two writes), the
    fingerprint no longer matches and nothing reads as archived: no message is ever
    hidden by a stale mark.

    Each status reads as the *model view* of its stored messages (see
    :mod:`adapters.llamaindex._view`), so what ``Memory`` hands to the LLM is a valid
    Chat Completions history; ``status=None`` views the whole conversation. Counts
    and indices (``count_messages``, ``delete_message(idx)`` into ``get_messages(key,
    status=None)``, ``delete_oldest_messages(n)``, ``archive_oldest_messages(n)``) are
    in terms of those views; stored messages a view leaves out go with the shown
    message after them. Reading the active queue costs O(active messages) however long
    the archive grows; archiving writes only the mark. Operations that remove or
    insert messages in the middle, and ``set_messages``, rewrite the history atomically
    and cost O(history); messages written back unchanged keep their stored form.
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

    # -- the archive mark --------------------------------------------------------------

    async def _load(self, key: str, status: MessageStatus | None) -> _Loaded:
        """The stored messages a status needs, with the verified archived count.

        The active queue reads only its own messages and the last archived one (to
        check the mark); anything else reads the whole history.
        """
        mark = _parse_mark(await self._session.aget(_state_id(key), 1))
        if mark is not None and status == MessageStatus.ACTIVE:
            total = await self._session.acount(key)
            if mark.archived <= total:
                tail = await self._session.aget(key, total - mark.archived + 1)
                if len(tail) == total - mark.archived + 1 and _fingerprint(tail[0]) == mark.boundary:
                    return _Loaded(tail[1:], mark.archived, mark.archived, True)
        history = await self._session.aget(key)
        archived = 0
        if mark is not None and mark.archived <= len(history) \
                and _fingerprint(history[mark.archived - 1]) == mark.boundary:
            archived = mark.archived
        return _Loaded(history, 0, archived, mark is not None)

    async def _mark(self, key: str, archived: int, boundary: Message | None) -> None:
        """Record that the first ``archived`` stored messages, the last of them
        ``boundary``, are archived (nothing is archived when ``archived`` is 0)."""
        state_id = _state_id(key)
        if archived and boundary is not None:
            state = {"v": _STATE_VERSION, "archived": archived, "boundary": _fingerprint(boundary)}
            await self._session.areplace(state_id, [{"role": "system", "content": "", _STATE_KEY: state}])
        else:
            await self._session.adelete(state_id)

    async def _shown(self, key: str, status: MessageStatus | None,
                     operation: str) -> tuple[_Loaded, int, ModelView]:
        loaded = await self._load(key, status)
        start, messages = loaded.part(status)
        return loaded, start, view(messages, key, operation)

    # -- reading ---------------------------------------------------------------------

    async def get_messages(self, key: str, status: MessageStatus | None = MessageStatus.ACTIVE,
                           limit: int | None = None, offset: int | None = None) -> list[ChatMessage]:
        """The model view of ``key``'s messages with ``status`` (None: all), oldest
        first, after ``offset`` and at most ``limit``; the active queue costs
        O(its length)."""
        for name, value in (("limit", limit), ("offset", offset)):
            if value is not None and (type(value) is not int or value < 0):
                raise InvalidArgumentError(f"{name} must be an int >= 0 or None, got {value!r}",
                                           session_id=key, operation="get")
        _, _, shown = await self._shown(key, status, "get")
        first = offset or 0
        chosen = shown.messages[first:] if limit is None else shown.messages[first:first + limit]
        return from_canonical_all(chosen, key, "get")

    async def count_messages(self, key: str,
                             status: MessageStatus | None = MessageStatus.ACTIVE) -> int:
        """How many messages ``get_messages(key, status)`` returns."""
        _, _, shown = await self._shown(key, status, "count")
        return len(shown.messages)

    # -- writing ---------------------------------------------------------------------

    async def add_message(self, key: str, message: ChatMessage,
                          status: MessageStatus = MessageStatus.ACTIVE) -> None:
        await self.add_messages(key, [message], status)

    async def add_messages(self, key: str, messages: list[ChatMessage],
                           status: MessageStatus = MessageStatus.ACTIVE) -> None:
        """Append to the active queue; *archived* messages go after the archived ones
        (an append when nothing is active, else an atomic rewrite)."""
        records = to_canonical_all(messages, key, "append")
        if status != MessageStatus.ARCHIVED:
            await self._session.aappend(key, records)
            return
        if not records:
            return
        loaded = await self._load(key, MessageStatus.ACTIVE)
        if loaded.offset + len(loaded.messages) == loaded.archived:  # nothing active
            await self._session.aappend(key, records)
        else:
            history = loaded.messages if loaded.offset == 0 else await self._session.aget(key)
            archived = loaded.archived
            await self._session.areplace(key, history[:archived] + records + history[archived:])
        await self._mark(key, loaded.archived + len(records), records[-1])

    async def set_messages(self, key: str, messages: list[ChatMessage],
                           status: MessageStatus = MessageStatus.ACTIVE) -> None:
        """Make the whole conversation of ``key`` ``messages``, all with ``status``.

        Messages that are what ``get_messages(key, status=None)`` returned, unchanged,
        keep their stored form wherever they are in the list, and stored messages the
        view does not show stay (see :class:`SessionChatStore.set_messages`).
        """
        records = to_canonical_all(messages, key, "replace")
        loaded, _, shown = await self._shown(key, None, "replace")
        history = rewrite(loaded.messages, shown, records)
        if history != loaded.messages:
            await self._session.areplace(key, history)
        if status == MessageStatus.ARCHIVED:
            await self._mark(key, len(history), history[-1] if history else None)
        elif loaded.marked:
            await self._mark(key, 0, None)

    async def delete_message(self, key: str, idx: int) -> ChatMessage | None:
        """Delete the message at position ``idx`` of ``get_messages(key, status=None)``
        (with the stored messages it does not show that go with it) and return it."""
        check_index(idx, key)
        loaded, _, shown = await self._shown(key, None, "delete_message")
        if not 0 <= idx < len(shown.messages):
            return None
        first, end = shown.span(idx, idx + 1)
        history = loaded.messages[:first] + loaded.messages[end:]
        await self._session.areplace(key, history)
        if first < loaded.archived:
            archived = loaded.archived - (min(end, loaded.archived) - first)
            await self._mark(key, archived, history[archived - 1] if archived else None)
        return from_canonical_all([shown.messages[idx]], key, "delete_message")[0]

    async def delete_messages(self, key: str, status: MessageStatus | None = None) -> None:
        """Delete every message of ``key`` (status None: the session and its companion
        sessions, the mark among them), or only the archived or only the active ones."""
        if status is None:
            await adelete_conversation(self._session, key)
            return
        loaded = await self._load(key, None)
        history, archived = loaded.messages, loaded.archived
        if status == MessageStatus.ARCHIVED:
            if archived:
                await self._session.areplace(key, history[archived:])
            if loaded.marked:
                await self._mark(key, 0, None)
        elif status == MessageStatus.ACTIVE:
            if archived < len(history):
                await self._session.areplace(key, history[:archived])
        else:
            raise InvalidArgumentError(f"status must be a MessageStatus or None, got {status!r}")

    async def delete_oldest_messages(self, key: str, n: int) -> list[ChatMessage]:
        """Delete the oldest ``n`` active messages (as ``get_messages`` shows them, with
        the hidden messages that go with them) and return them."""
        loaded, start, shown = await self._shown(key, MessageStatus.ACTIVE, "delete_oldest_messages")
        count = min(max(0, n), len(shown.messages))
        if not count:
            return []
        first, end = shown.span(0, count)
        history = loaded.messages if loaded.offset == 0 else await self._session.aget(key)
        await self._session.areplace(key, history[:start + first] + history[start + end:])
        return from_canonical_all(shown.messages[:count], key, "delete_oldest_messages")

    async def archive_oldest_messages(self, key: str, n: int) -> list[ChatMessage]:
        """Mark the oldest ``n`` active messages (as ``get_messages`` shows them, with
        the hidden messages that go with them) archived and return them. Writes only
        the mark."""
        loaded, start, shown = await self._shown(key, MessageStatus.ACTIVE, "archive_oldest_messages")
        count = min(max(0, n), len(shown.messages))
        if not count:
            return []
        _, end = shown.span(0, count)
        active = loaded.messages[start - loaded.offset:]
        await self._mark(key, start + end, active[end - 1])
        return from_canonical_all(shown.messages[:count], key, "archive_oldest_messages")

    async def get_keys(self) -> list[str]:
        """Every session id of the store (companion sessions excluded)."""
        return [key async for key in acompanions_hidden(self._session.alist_sessions())]
