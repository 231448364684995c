"""Reading a session into LangChain messages again and again without converting it again.

An agent reads its session's whole history at the start of every turn, and from one turn
to the next that history changes little: the turn's own messages are appended, a window
slides on. Converting every message into a LangChain message each time cost most of a
turn's own time (about 4 ms of 5 for 1,000 messages). :class:`HistoryCache` keeps, per
session, the model view it last read and the LangChain messages built from it, and
converts only what differs.

The store stays the only source of truth: every read is a fresh ``get`` of the store,
and a cached message is used only where the fresh read holds a message *equal* (deep
equality of the canonical dicts) to the one it was built from. When the fresh read
begins with everything the last read held (messages were appended), only the appended
messages are viewed and converted: the model view of what was there cannot change,
unless it ended inside a tool exchange (:attr:`sessions.view.ModelView.ends_open`).
Otherwise (a window slid on, another framework rewrote or cleared the session) the
whole read is viewed and compared message by message. Whatever another framework,
process or machine changed is read afresh; a message no longer in the store is never
shown. This relies on what every store of this library does: each ``get`` returns new
message dicts, never ones it keeps and may change.

The LangChain messages given out are shared between the reads of a session (copying
them would cost as much as building them), so they must be treated as read-only, as
LangGraph treats every state value. Each has an id of its own once it is cached.
"""

from __future__ import annotations

import threading
import uuid
from collections import OrderedDict
from collections.abc import Iterable, Sequence
from typing import Any, NamedTuple

from langchain_core.messages import BaseMessage

from adapters._gc import collector_paused
from sessions import _fork
from sessions._errors import CorruptRecordError, InvalidMessageError
from sessions._message import Message

from ._convert import from_canonical
from ._view import view_of

__all__ = ["DEFAULT_CACHE_SIZE", "HistoryCache", "read_history"]

#: How many stored messages (with what was built from them) a :class:`HistoryCache` keeps,
#: over all its sessions.
DEFAULT_CACHE_SIZE = 20_000


def read_history(stored: Sequence[Message], *, session_id: str, operation: str,
                 cache: HistoryCache | None = None) -> list[BaseMessage]:
    """The model view of ``stored`` as LangChain messages (through ``cache`` if given).

    A stored message that cannot be read raises :class:`sessions.CorruptRecordError`
    naming the session.
    """
    try:
        if cache is not None:
            return cache.read(session_id, stored)
        viewed = view_of(stored).messages
        with collector_paused(len(viewed)):
            return [from_canonical(message) for message in viewed]
    except InvalidMessageError as error:
        raise CorruptRecordError(
            f"a stored message cannot be read as a LangChain message: {error.reason}",
            session_id=session_id, operation=operation,
        ) from error
    except CorruptRecordError as error:
        if error.session_id is not None:
            raise
        raise CorruptRecordError(error.message, session_id=session_id, operation=operation) from error


class _Read(NamedTuple):
    """What one read of a session gave: the stored messages, their (fitted) model view,
    the LangChain messages built from it, and whether the view ends inside a tool
    exchange (:attr:`sessions.view.ModelView.ends_open`)."""

    stored: list[Message]
    viewed: list[Message]
    built: list[BaseMessage]
    ends_open: bool


class HistoryCache:
    """Per session: the last read, and the LangChain messages built from it.

    Thread-safe (the lock is held only to look a read up and to keep one, never while
    converting), fork-safe (a fork waits until no thread holds the lock; the child has
    its own) and bounded: past ``size`` stored messages over all sessions, the least
    recently read sessions are dropped. ``size=0`` keeps nothing.
    """

    def __init__(self, size: int = DEFAULT_CACHE_SIZE) -> None:
        self.size = size
        self._reads: OrderedDict[str, _Read] = OrderedDict()
        self._held = 0
        self._lock = threading.Lock()
        _fork.register_quiet(self)

    def _quiet_lock(self) -> threading.Lock:
        return self._lock

    def _after_fork(self) -> None:
        # A fork waited until no thread held the lock (the reads are consistent); the
        # child's copy of it is still held by the forking thread, so it gets a new one.
        self._lock = threading.Lock()

    def __len__(self) -> int:
        """How many stored messages are held."""
        return self._held

    def read(self, session_id: str, stored: Sequence[Message]) -> list[BaseMessage]:
        """``stored`` (a fresh read of the session) as LangChain messages."""
        stored = list(stored)
        with self._lock:
            last = self._reads.get(session_id)
        if last is not None and not last.ends_open and len(stored) >= len(last.stored) \
                and stored[:len(last.stored)] == last.stored:
            # The common case: the session as last read, maybe with messages appended.
            # What was read views as before (the view did not end in an open exchange).
            # The records read before are kept, the equal ones just read are let go.
            if len(stored) == len(last.stored):
                now = last
            else:
                tail_stored = stored[len(last.stored):]
                tail = view_of(tail_stored)
                added = _converted(tail.messages)
                _unique_ids(added, range(len(added)), {message.id for message in last.built})
                built = [*last.built, *added]
                now = _Read([*last.stored, *tail_stored], [*last.viewed, *tail.messages], built,
                            tail.ends_open)
        else:
            view = view_of(stored)
            now = _Read(stored, view.messages, _built(view.messages, last), view.ends_open)
        self._keep(session_id, now)
        return list(now.built)

    def _keep(self, session_id: str, read: _Read) -> None:
        with self._lock:
            old = self._reads.pop(session_id, None)
            if old is not None:
                self._held -= len(old.stored)
            if len(read.stored) > self.size:
                return
            self._reads[session_id] = read
            self._held += len(read.stored)
            while self._held > self.size:
                _, dropped = self._reads.popitem(last=False)
                self._held -= len(dropped.stored)


def _converted(viewed: list[Message]) -> list[BaseMessage]:
    with collector_paused(len(viewed)):
        return [from_canonical(message) for message in viewed]


def _built(viewed: list[Message], last: _Read | None) -> list[BaseMessage]:
    """``viewed`` as LangChain messages, using those of ``last`` built from equal messages."""
    if last is None or not last.viewed or not viewed:
        converted = _converted(viewed)
        _unique_ids(converted, range(len(converted)))
        return converted
    # Where the new view begins in the last one: the same place, or further on (a
    # window slid on). Messages are compared one by one from there.
    offset = 0
    if last.viewed[0] != viewed[0]:
        offset = next((k for k, old in enumerate(last.viewed) if old == viewed[0]), 0)
    old_viewed, old_built = last.viewed, last.built
    built: list[BaseMessage] = []
    fresh: list[int] = []
    with collector_paused(len(viewed)):
        for index, message in enumerate(viewed):
            at = index + offset
            if at < len(old_viewed) and old_viewed[at] == message:
                built.append(old_built[at])
            else:
                fresh.append(index)
                built.append(from_canonical(message))
    if fresh:
        _unique_ids(built, fresh)
    return built


def _unique_ids(history: list[BaseMessage], fresh: Iterable[int], seen: set[Any] | None = None) -> None:
    """Give each message at a ``fresh`` index that has no id, or one another message
    (or ``seen``) has, a new id. Cached messages, shared with earlier reads, keep theirs."""
    fresh = list(fresh)
    if seen is None:
        fresh_at = set(fresh)
        seen = {message.id for index, message in enumerate(history) if index not in fresh_at}
    prefix = ""
    for index in fresh:
        message = history[index]
        if message.id is None or message.id in seen:
            prefix = prefix or f"session-{uuid.uuid4().hex}-"
            message.id = f"{prefix}{index}"
        seen.add(message.id)
