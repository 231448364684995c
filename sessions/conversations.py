"""The OpenAI Conversations API as a session store (extra ``openai``).

Each session lives in one server-side conversation, so the same history can be given
to the Responses API with ``conversation=...``. Messages become conversation items and
back (see :mod:`sessions._conversation_items`): ``message`` items with
``input_text``/``input_image``/``input_file`` or ``output_text``/``refusal`` parts,
``function_call`` items for assistant tool calls, ``function_call_output`` items for
tool results.

The session id -> conversation id map is durable: a small SQLite file
(:mod:`sessions._conversation_map`), never an in-process dict. It also holds each
session's times and message count (``info``, ``count`` and ``list_sessions`` make no
request) and, per stored message, where its items start and end, plus its record
when the items cannot carry it exactly (a ``name``, unknown keys, ``input_audio``
parts): those are returned exactly by this store, and are absent from the server's
copy. A session id of the form ``conv_...`` names an existing conversation and is
used directly (it is added to the map on first use).

Costs and limits:

* ``append`` sends the items in creates of at most 20 (the API's limit). A batch of
  up to 20 items is atomic on the server; a longer one is not: when a later create
  fails, the items already created are deleted again (best effort) before the error
  is raised. A first append also creates the conversation.
* ``get()`` pages through ``items.list(order="asc", limit=100, after=...)``;
  ``get(limit=N)`` reads pages of the newest items (``order="desc"``) only until the
  last N messages are complete, so it costs O(N).
* ``pop`` deletes the items of the last message one by one (last first).
* ``replace`` (and ``clear``) of a mapped session creates a fresh conversation with
  the new items, points the map at it and deletes the old conversation: readers see
  the old or the new history, never a mix. For a ``conv_...`` session, which cannot be
  remapped, the items are deleted one by one (not atomic).
* ``delete`` deletes the conversation and forgets the session. The API documents that
  deleting a conversation does not delete its items: they stay on the server, no
  longer reachable through this store.
* If a mapped conversation was deleted outside this store, calls on that session raise
  :class:`CorruptRecordError`; ``delete(session_id)`` forgets the stale mapping.
* Locks: one writer at a time per session within a process: sync calls in any thread
  and async calls on any event loop share one lock per session (async callers wait
  for it without blocking their loop). Concurrent first appends create one
  conversation: the map's insert-if-absent decides, and a process that lost the race
  deletes its own conversation. Across processes, appends of more than 20 items,
  ``pop`` and ``replace`` of one session are not serialised against each other.
* Clients: one sync client, and one async client per event loop (``asyncio.run``
  twice, or a loop per thread, each get their own), closed with its loop. A forked
  child makes its own clients and map connection and never touches the parent's.

Envelopes (compression and encryption wrappers) are refused with
:class:`InvalidMessageError`: the point of this store is that the server can read
the conversation.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import json
import os
import re
import sqlite3
import threading
import time
from collections.abc import Callable, Generator, Iterator
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, TypeVar

import openai

from . import _fork
from ._base import BaseSession, SessionInfo, stored_info, timestamp_before
from ._conversation_items import items_to_message, message_to_items, needs_record
from ._conversation_map import ConversationMap, MappedSession, MessageRow
from ._errors import (
    BackendUnavailableError,
    ConfigurationError,
    CorruptRecordError,
    InvalidArgumentError,
    InvalidSessionIdError,
    SessionError,
    shown,
)
from ._loops import PerLoop
from ._message import encode_message
from ._options import check_int, check_path, check_seconds, check_text
from ._registry import StoreURL
from .sqlite import describe

__all__ = ["ConversationsSession"]

T = TypeVar("T")

#: Most items one ``conversations.items.create`` (or ``conversations.create``) accepts.
MAX_ITEMS_PER_CREATE = 20
#: Page size of ``conversations.items.list`` (the API allows 1 to 100).
PAGE_SIZE = 100
_LOCK_STRIPES = 64
_CONVERSATION_ID = re.compile(r"conv_[A-Za-z0-9]+")
_METADATA_VALUE_MAX = 512


def _is_conversation_id(session_id: str) -> bool:
    return _CONVERSATION_ID.fullmatch(session_id) is not None


# -- the steps a flow asks its driver to run -------------------------------------------------


@dataclass(frozen=True)
class _Api:
    """Call ``client.conversations.<method>(*args, **kwargs)``."""

    method: str
    args: tuple[Any, ...] = ()
    kwargs: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class _MapCall:
    """Call a method of the durable map (in a worker thread on the async path)."""

    fn: Callable[..., Any]
    args: tuple[Any, ...] = ()


_Step = _Api | _MapCall
_Flow = Generator[_Step, Any, T]


@dataclass
class _Group:
    """The items of one message, with its map row when this store wrote it."""

    items: list[dict[str, Any]]
    row: MessageRow | None


def _group(items: list[dict[str, Any]], rows: dict[str, MessageRow]) -> list[_Group]:
    """Split items (oldest first) into messages: by the map's rows where they match,
    else by the natural rule (function calls join the assistant message before them)."""
    groups: list[_Group] = []
    position = 0
    while position < len(items):
        item = items[position]
        row = rows.get(item.get("id", ""))
        if row is not None:
            end = position + row.items
            if end <= len(items) and items[end - 1].get("id") == row.last_item:
                groups.append(_Group(items[position:end], row))
                position = end
                continue
        if item.get("type") == "function_call" and groups and groups[-1].row is None:
            head = groups[-1].items[0]
            if head.get("type") == "function_call" or (
                head.get("type") == "message" and head.get("role") == "assistant"
            ):
                groups[-1].items.append(item)
                position += 1
                continue
        groups.append(_Group([item], None))
        position += 1
    return groups


def _record(group: _Group) -> str | None:
    """The record a group reads as; None for items that are not chat messages."""
    if group.row is not None and group.row.record is not None:
        return group.row.record
    message = items_to_message(group.items)
    return None if message is None else encode_message(message)


def _chat_groups(groups: list[_Group]) -> list[tuple[_Group, str]]:
    return [(g, r) for g in groups if (r := _record(g)) is not None]


class _Lock:
    """A lock that threads take by blocking and async tasks (of any event loop) by
    awaiting, so that both exclude each other; it is handed over first come, first
    served.

    An async waiter is woken on its own loop (``call_soon_threadsafe``); a waiter whose
    task was cancelled meanwhile passes the lock on, and one whose loop has closed is
    skipped.
    """

    def __init__(self) -> None:
        self._mutex = threading.Lock()
        self._held = False
        self._waiters: collections.deque[threading.Lock | asyncio.Future[None]] = collections.deque()

    def __enter__(self) -> None:
        with self._mutex:
            if not self._held:
                self._held = True
                return
            latch = threading.Lock()
            latch.acquire()
            self._waiters.append(latch)
        latch.acquire()  # released by the holder, who hands the lock over to us

    def __exit__(self, *exc_info: object) -> None:
        self._release()

    async def __aenter__(self) -> None:
        loop = asyncio.get_running_loop()
        with self._mutex:
            if not self._held:
                self._held = True
                return
            future: asyncio.Future[None] = loop.create_future()
            self._waiters.append(future)
        try:
            await future
        except BaseException:
            with self._mutex:
                waiting = future in self._waiters
                if waiting:
                    self._waiters.remove(future)
            if not waiting and future.done() and not future.cancelled():
                self._release()  # handed over just before the cancellation arrived
            raise  # (a cancelled future still to be woken passes the lock on: _wake)

    async def __aexit__(self, *exc_info: object) -> None:
        self._release()

    def _release(self) -> None:
        with self._mutex:
            while self._waiters:
                waiter = self._waiters.popleft()
                if isinstance(waiter, asyncio.Future):
                    try:
                        waiter.get_loop().call_soon_threadsafe(self._wake, waiter)
                    except RuntimeError:
                        continue  # its loop is closed: the waiting task is gone
                    return
                waiter.release()
                return
            self._held = False

    def _wake(self, future: asyncio.Future[None]) -> None:
        if future.cancelled():
            self._release()
        else:
            future.set_result(None)


class _Locks:
    """Striped per-session locks, shared by threads and every event loop."""

    def __init__(self) -> None:
        self._stripes = [_Lock() for _ in range(_LOCK_STRIPES)]

    def __getitem__(self, session_id: str) -> _Lock:
        return self._stripes[hash(session_id) % _LOCK_STRIPES]


class ConversationsSession(BaseSession):
    """Sessions stored as OpenAI conversations (see the module docstring).

    :param client: an ``openai.OpenAI`` client for the sync methods. Without it one is
        made from ``api_key``/``base_url`` (or ``OPENAI_API_KEY``/``OPENAI_BASE_URL``).
    :param async_client: an ``openai.AsyncOpenAI`` client for the async methods, used
        on the first event loop that calls; other event loops get copies of it (with
        openai's default HTTP client), closed with their loops. Without it, each event
        loop gets a client made with the sync client's key, base URL, timeout and retries.
    :param id_map: the SQLite file of the durable session -> conversation map
        (created mode 0600). Every process sharing the sessions must use the same file.
    :param api_key, base_url, timeout, max_retries: used only to make the clients not
        given (``timeout`` in seconds per request).
    :param map_timeout: how long a map write waits for another process's write.
    """

    driver_errors = (openai.OpenAIError, OSError, sqlite3.Error)

    def __init__(
        self,
        client: openai.OpenAI | None = None,
        *,
        async_client: openai.AsyncOpenAI | None = None,
        id_map: str | os.PathLike[str] = "conversations.db",
        api_key: str | None = None,
        base_url: str | None = None,
        timeout: float | None = None,
        max_retries: int | None = None,
        map_timeout: float = 30.0,
    ) -> None:
        if client is not None and not isinstance(client, openai.OpenAI):
            raise ConfigurationError(f"client must be an openai.OpenAI, not {type(client).__name__}")
        if async_client is not None and not isinstance(async_client, openai.AsyncOpenAI):
            raise ConfigurationError(
                f"async_client must be an openai.AsyncOpenAI, not {type(async_client).__name__}"
            )
        id_map = check_path("id_map", id_map)
        map_timeout = check_seconds("map_timeout", map_timeout)
        self._client = client
        self._given_client: openai.OpenAI | None = None  # a template for a forked child
        self._async_clients: PerLoop[openai.AsyncOpenAI] = PerLoop(
            self._own_async_client, _aclose_client, given=async_client, copy=_copy_async_client,
            check=self._refuse_if_closed,
        )
        self._api_key = check_text("api_key", api_key, optional=True)
        self._base_url = check_text("base_url", base_url, optional=True)
        self._client_options: dict[str, Any] = {
            key: value for key, value in (
                ("timeout", check_seconds("timeout", timeout, optional=True)),
                ("max_retries", None if max_retries is None
                 else check_int("max_retries", max_retries, minimum=0, maximum=100)),
            ) if value is not None
        }
        self._owns_client = False
        self._locks = _Locks()
        self._writes: set[asyncio.Future[Any]] = set()
        self._client_guard = threading.Lock()
        self.map = self._call("open", None, lambda: ConversationMap(id_map, timeout=map_timeout))
        _fork.register_quiet(self)

    @classmethod
    def from_url(cls, url: StoreURL) -> ConversationsSession:
        """``openai+conversations:///relative/map.db`` or ``openai+conversations:////abs/map.db``
        (the path is the id map file; ``openai+conversations://`` alone uses
        ``./conversations.db``). Options: ``?base_url=http://127.0.0.1:8080/v1``,
        ``?timeout=30`` (seconds per request), ``?max_retries=2``. The API key comes
        from ``OPENAI_API_KEY``, never from the URL."""
        options = url.options({"base_url": str, "timeout": float, "max_retries": int})
        if url.host or url.username or url.password or url.port:
            raise ConfigurationError(
                f"{url.scheme} URL {url.redacted!r} names a host or credentials; the path is the "
                "id map file and the API key comes from OPENAI_API_KEY"
            )
        path = url.path[1:] if url.path.startswith("/") else url.path
        return cls(id_map=path or "conversations.db", **options)

    def __repr__(self) -> str:
        return f"ConversationsSession(id_map={self.map.path!r})"

    # -- clients --------------------------------------------------------------------------

    @staticmethod
    def _new_client(kind: Callable[..., T], api_key: str | None, base_url: str | None,
                    extra: dict[str, Any]) -> T:
        try:
            return kind(api_key=api_key, base_url=base_url, **extra)
        except openai.OpenAIError as error:
            raise ConfigurationError(f"cannot make an OpenAI client: {error}") from error

    @property
    def client(self) -> openai.OpenAI:
        """The client of the sync methods (made on first use unless one was given)."""
        with self._client_guard:
            if self._client is None:
                self._refuse_if_closed()
                if self._given_client is not None:  # in a forked child: copy the parent's
                    self._client = self._given_client.copy(http_client=openai.DefaultHttpxClient())
                else:
                    self._client = self._new_client(
                        openai.OpenAI, self._api_key, self._base_url, self._client_options
                    )
                self._owns_client = True
            return self._client

    def _own_async_client(self) -> openai.AsyncOpenAI:
        """An event loop's async client, with the sync client's settings if there is one."""
        with self._client_guard:
            base = self._client if self._client is not None else self._given_client
        if base is not None:
            return self._new_client(
                openai.AsyncOpenAI, base.api_key, str(base.base_url),
                {"organization": base.organization, "project": base.project,
                 "timeout": base.timeout, "max_retries": base.max_retries},
            )
        return self._new_client(openai.AsyncOpenAI, self._api_key, self._base_url, self._client_options)

    # -- drivers: run a flow's steps, sync or async ---------------------------------------

    @staticmethod
    def _method(client: Any, name: str) -> Callable[..., Any]:
        target = client.conversations
        for part in name.split("."):
            target = getattr(target, part)
        return target  # type: ignore[no-any-return]

    def _do(self, step: _Step) -> Any:
        if isinstance(step, _Api):
            return self._method(self.client, step.method)(*step.args, **step.kwargs)
        return step.fn(*step.args)

    async def _ado(self, step: _Step) -> Any:
        if isinstance(step, _Api):
            client = await self._async_clients.get()
            return await self._method(client, step.method)(*step.args, **step.kwargs)
        return await asyncio.to_thread(step.fn, *step.args)

    def _run(self, flow: _Flow[T]) -> T:
        try:
            step = next(flow)
            while True:
                try:
                    result = self._do(step)
                except Exception as error:
                    step = flow.throw(error)
                else:
                    step = flow.send(result)
        except StopIteration as stop:
            return stop.value  # type: ignore[no-any-return]

    async def _arun(self, flow: _Flow[T]) -> T:
        try:
            step = next(flow)
            while True:
                try:
                    result = await self._ado(step)
                except Exception as error:
                    step = flow.throw(error)
                else:
                    step = flow.send(result)
        except StopIteration as stop:
            return stop.value  # type: ignore[no-any-return]

    def _locked(self, session_id: str, flow: _Flow[T]) -> T:
        with self._locks[session_id]:
            return self._run(flow)

    async def _alocked(self, session_id: str, flow: _Flow[T]) -> T:
        # A cancelled caller must not leave a write half done: the flow runs in its
        # own task, which the cancellation does not reach (kept referenced until done).
        async def run() -> T:
            async with self._locks[session_id]:
                return await self._arun(flow)

        task = asyncio.ensure_future(run())
        self._writes.add(task)
        task.add_done_callback(self._write_done)
        return await asyncio.shield(task)

    def _write_done(self, task: asyncio.Future[Any]) -> None:
        self._writes.discard(task)
        if not task.cancelled():
            task.exception()  # retrieved here too: its caller may have been cancelled

    # -- flows: the operations, written once for both drivers ------------------------------

    def _resolve(self, session_id: str) -> _Flow[MappedSession | None]:
        """The session's map entry; a ``conv_...`` id seen for the first time is adopted."""
        mapped: MappedSession | None = yield _MapCall(self.map.lookup, (session_id,))
        if mapped is not None or not _is_conversation_id(session_id):
            return mapped
        try:
            conversation = yield _Api("retrieve", (session_id,))
        except openai.NotFoundError:
            return None
        items = yield from self._all_items(session_id)
        count = len(_chat_groups(_group(items, {})))
        yield _MapCall(self.map.claim, (session_id, session_id, float(conversation.created_at), count))
        adopted: MappedSession | None = yield _MapCall(self.map.lookup, (session_id,))
        return adopted

    def _page(self, conversation_id: str, order: str, after: str | None,
              size: int = PAGE_SIZE) -> _Flow[tuple[list[dict[str, Any]], str | None]]:
        """One page of items; returns them and the cursor of the next page (or None).

        The page is read as JSON (``with_raw_response``): the items are wanted as
        plain dicts, and building the client's models first costs ~5x the request."""
        kwargs: dict[str, Any] = {"order": order, "limit": size}
        if after is not None:
            kwargs["after"] = after
        answer = yield _Api("items.with_raw_response.list", (conversation_id,), kwargs)
        try:
            page = answer.http_response.json()
        except ValueError:
            page = None
        if type(page) is not dict or type(page.get("data")) is not list:
            raise CorruptRecordError(f"the Conversations API answered an item list with {shown(page, 200)}")
        items: list[dict[str, Any]] = page["data"]
        more = bool(page.get("has_more")) and bool(items)
        return items, (page.get("last_id") or items[-1]["id"]) if more else None

    def _all_items(self, conversation_id: str) -> _Flow[list[dict[str, Any]]]:
        items: list[dict[str, Any]] = []
        after: str | None = None
        while True:
            page, after = yield from self._page(conversation_id, "asc", after)
            items.extend(page)
            if after is None:
                return items

    def _rows(self, conversation_id: str, items: list[dict[str, Any]]) -> _Flow[dict[str, MessageRow]]:
        rows: dict[str, MessageRow] = yield _MapCall(
            self.map.message_rows, (conversation_id, [item["id"] for item in items])
        )
        return rows

    def _tail(self, conversation_id: str, count: int) -> _Flow[list[tuple[_Group, str]]]:
        """The last ``count`` messages, reading newest pages only until they are complete.

        The oldest group read may lack earlier items on an unread page, so one group
        more than asked is needed before stopping (unless the start is reached)."""
        newest_first: list[dict[str, Any]] = []
        rows: dict[str, MessageRow] = {}
        after: str | None = None
        # Every message is at least one item: the first page need not be larger.
        size = min(PAGE_SIZE, count + 1)
        while True:
            page, after = yield from self._page(conversation_id, "desc", after, size)
            size = PAGE_SIZE
            newest_first.extend(page)
            rows.update((yield from self._rows(conversation_id, page)))
            groups = _chat_groups(_group(newest_first[::-1], rows))
            if after is None or len(groups) > count:
                return groups[-count:]

    def _conversation_of(self, session_id: str) -> _Flow[tuple[str | None, bool]]:
        """The conversation to read, and whether it comes from the map."""
        mapped: MappedSession | None = yield _MapCall(self.map.lookup, (session_id,))
        if mapped is not None:
            return mapped.conversation_id, True
        return (session_id if _is_conversation_id(session_id) else None), False

    def _get_flow(self, session_id: str, limit: int | None) -> _Flow[list[str]]:
        conversation_id, mapped = yield from self._conversation_of(session_id)
        if conversation_id is None:
            return []
        try:
            if limit is not None:
                return [record for _, record in (yield from self._tail(conversation_id, limit))]
            items = yield from self._all_items(conversation_id)
        except openai.NotFoundError:
            if mapped:
                raise
            return []
        rows = yield from self._rows(conversation_id, items)
        return [record for _, record in _chat_groups(_group(items, rows))]

    def _prepare(self, session_id: str, records: list[str]) -> list[tuple[list[dict[str, Any]], str | None]]:
        """Each message's items, and its record when the items cannot carry it exactly."""
        prepared: list[tuple[list[dict[str, Any]], str | None]] = []
        for index, record in enumerate(records):
            message = json.loads(record)
            items = message_to_items(message, index, session_id)
            prepared.append((items, record if needs_record(record, items) else None))
        return prepared

    def _create_conversation(self, session_id: str) -> _Flow[str]:
        metadata = {"session_id": session_id} if len(session_id) <= _METADATA_VALUE_MAX else {}
        conversation = yield _Api("create", (), {"metadata": metadata})
        return str(conversation.id)

    def _discard(self, conversation_id: str) -> _Flow[None]:
        """Delete a conversation this store no longer points at; failures leave only an
        unreachable conversation behind, so they are not raised."""
        try:
            yield _Api("delete", (conversation_id,))
        except openai.OpenAIError:
            return

    def _write_items(self, conversation_id: str,
                     prepared: list[tuple[list[dict[str, Any]], str | None]]) -> _Flow[list[MessageRow]]:
        """Create the items in order, at most 20 per request; on failure delete the ones
        already created (best effort) and raise."""
        flat = [item for items, _ in prepared for item in items]
        created: list[str] = []
        try:
            for start in range(0, len(flat), MAX_ITEMS_PER_CREATE):
                chunk = flat[start:start + MAX_ITEMS_PER_CREATE]
                answer = yield _Api("items.create", (conversation_id,), {"items": chunk})
                ids = [item.id for item in answer.data]
                if len(ids) != len(chunk):
                    raise BackendUnavailableError(
                        f"the server created {len(ids)} items of {len(chunk)}", operation="append"
                    )
                created.extend(ids)
        except Exception:
            for item_id in reversed(created):
                try:
                    yield _Api("items.delete", (item_id,), {"conversation_id": conversation_id})
                except openai.OpenAIError:
                    continue
            raise
        rows: list[MessageRow] = []
        position = 0
        for items, record in prepared:
            rows.append(MessageRow(created[position], created[position + len(items) - 1], len(items), record))
            position += len(items)
        return rows

    def _delete_items(self, conversation_id: str) -> _Flow[None]:
        for item in reversed((yield from self._all_items(conversation_id))):
            try:
                yield _Api("items.delete", (item["id"],), {"conversation_id": conversation_id})
            except openai.NotFoundError:
                continue

    def _missing_conversation(self, session_id: str, operation: str) -> InvalidSessionIdError:
        return InvalidSessionIdError(
            f"no conversation {session_id} exists on the server; session ids of the form "
            "conv_... name existing conversations",
            session_id=session_id, operation=operation,
        )

    def _append_flow(self, session_id: str, records: list[str]) -> _Flow[None]:
        prepared = self._prepare(session_id, records)
        mapped = yield from self._resolve(session_id)
        if mapped is not None:
            conversation_id = mapped.conversation_id
        elif _is_conversation_id(session_id):
            raise self._missing_conversation(session_id, "append")
        else:
            ours = yield from self._create_conversation(session_id)
            conversation_id = yield _MapCall(self.map.claim, (session_id, ours, time.time(), 0))
            if conversation_id != ours:
                yield from self._discard(ours)
        rows = yield from self._write_items(conversation_id, prepared)
        recorded = yield _MapCall(self.map.add_messages, (session_id, conversation_id, rows))
        if not recorded:
            # Another process deleted (or replaced) the session while the items were
            # written: they went into a conversation this session no longer names.
            raise BackendUnavailableError(
                "the session was deleted or replaced by another writer while this append "
                "was written; the messages were not stored",
                session_id=session_id, operation="append",
            )

    def _pop_flow(self, session_id: str) -> _Flow[str | None]:
        mapped = yield from self._resolve(session_id)
        if mapped is None:
            return None
        last = yield from self._tail(mapped.conversation_id, 1)
        if not last:
            return None
        group, record = last[0]
        for item in reversed(group.items):
            try:
                yield _Api("items.delete", (item["id"],), {"conversation_id": mapped.conversation_id})
            except openai.NotFoundError:
                continue
        first = group.row.first_item if group.row is not None else None
        yield _MapCall(self.map.remove_message, (session_id, mapped.conversation_id, first))
        return record

    def _replace_flow(self, session_id: str, records: list[str]) -> _Flow[None]:
        prepared = self._prepare(session_id, records)
        if _is_conversation_id(session_id):
            mapped = yield from self._resolve(session_id)
            if mapped is None:
                raise self._missing_conversation(session_id, "replace")
            yield from self._delete_items(session_id)
            yield _MapCall(self.map.reset, (session_id,))
            if prepared:
                rows = yield from self._write_items(session_id, prepared)
                yield _MapCall(self.map.add_messages, (session_id, session_id, rows))
            return
        yield from self._move_to_fresh_conversation(session_id, prepared)

    def _move_to_fresh_conversation(self, session_id: str,
                                    prepared: list[tuple[list[dict[str, Any]], str | None]]) -> _Flow[None]:
        """Write ``prepared`` into a new conversation, point the map at it, delete the old
        one. Until the map is switched the old history stays; on failure the new
        conversation is deleted again."""
        fresh = yield from self._create_conversation(session_id)
        try:
            rows = yield from self._write_items(fresh, prepared)
            previous = yield _MapCall(self.map.remap, (session_id, fresh, rows))
        except Exception:
            yield from self._discard(fresh)
            raise
        if previous is not None:
            yield from self._discard(previous)

    def _clear_flow(self, session_id: str) -> _Flow[None]:
        mapped = yield from self._resolve(session_id)
        if mapped is None:
            return
        if _is_conversation_id(session_id):
            yield from self._delete_items(session_id)
            yield _MapCall(self.map.reset, (session_id,))
            return
        yield from self._move_to_fresh_conversation(session_id, [])

    def _delete_flow(self, session_id: str) -> _Flow[None]:
        conversation_id, _ = yield from self._conversation_of(session_id)
        if conversation_id is None:
            return
        with contextlib.suppress(openai.NotFoundError):
            yield _Api("delete", (conversation_id,))
        yield _MapCall(self.map.forget, (session_id,))

    def _delete_if_idle_flow(self, session_id: str, cutoff: datetime) -> _Flow[bool]:
        """Forget the session in the map if it is idle (the atomic decision), then
        delete its conversation (best effort: the session is gone either way)."""
        conversation_id = yield _MapCall(self.map.forget_if_idle, (session_id, timestamp_before(cutoff)))
        if conversation_id is None:
            return False
        yield from self._discard(conversation_id)
        return True

    def _info_flow(self, session_id: str) -> _Flow[SessionInfo | None]:
        mapped = yield from self._resolve(session_id)
        if mapped is None:
            return None
        return stored_info(session_id, mapped.message_count, mapped.created_at, mapped.updated_at)

    # -- the record hooks ------------------------------------------------------------------

    def _get(self, session_id: str, limit: int | None) -> list[str]:
        return self._run(self._get_flow(session_id, limit))

    def _append(self, session_id: str, records: list[str]) -> None:
        self._locked(session_id, self._append_flow(session_id, records))

    def _pop(self, session_id: str) -> str | None:
        return self._locked(session_id, self._pop_flow(session_id))

    def _replace(self, session_id: str, records: list[str]) -> None:
        self._locked(session_id, self._replace_flow(session_id, records))

    def _clear(self, session_id: str) -> None:
        self._locked(session_id, self._clear_flow(session_id))

    def _delete(self, session_id: str) -> None:
        self._locked(session_id, self._delete_flow(session_id))

    def _delete_if_idle(self, session_id: str, cutoff: datetime) -> bool:
        return self._locked(session_id, self._delete_if_idle_flow(session_id, cutoff))

    def _count(self, session_id: str) -> int:
        info = self._info(session_id)
        return 0 if info is None else info.message_count

    def _info(self, session_id: str) -> SessionInfo | None:
        return self._run(self._info_flow(session_id))

    def _iter_sessions(self) -> Iterator[str]:
        return self.map.iter_sessions()

    def _close(self) -> None:
        self.map.close()
        self._close_sync_client()
        self._async_clients.close()

    def _close_sync_client(self) -> None:
        with self._client_guard:
            client = self._client if self._owns_client else None
            if self._owns_client:
                self._client, self._owns_client = None, False
        if client is not None:
            client.close()

    def _quiet_lock(self) -> threading.Lock:
        return self.map.quiet_lock()

    def _after_fork(self) -> None:
        self._locks = _Locks()
        self._client_guard = threading.Lock()
        self.map.after_fork()
        if self._client is not None:
            _fork.abandon(self._client)
            if not self._owns_client:
                self._given_client = self._client
            self._client, self._owns_client = None, False
        self._async_clients.forget()

    async def _aget(self, session_id: str, limit: int | None) -> list[str]:
        return await self._arun(self._get_flow(session_id, limit))

    async def _aappend(self, session_id: str, records: list[str]) -> None:
        await self._alocked(session_id, self._append_flow(session_id, records))

    async def _apop(self, session_id: str) -> str | None:
        return await self._alocked(session_id, self._pop_flow(session_id))

    async def _areplace(self, session_id: str, records: list[str]) -> None:
        await self._alocked(session_id, self._replace_flow(session_id, records))

    async def _aclear(self, session_id: str) -> None:
        await self._alocked(session_id, self._clear_flow(session_id))

    async def _adelete(self, session_id: str) -> None:
        await self._alocked(session_id, self._delete_flow(session_id))

    async def _adelete_if_idle(self, session_id: str, cutoff: datetime) -> bool:
        return await self._alocked(session_id, self._delete_if_idle_flow(session_id, cutoff))

    async def _acount(self, session_id: str) -> int:
        info = await self._ainfo(session_id)
        return 0 if info is None else info.message_count

    async def _ainfo(self, session_id: str) -> SessionInfo | None:
        return await self._arun(self._info_flow(session_id))

    async def _aclose(self) -> None:
        await asyncio.to_thread(self.map.close)
        await self._async_clients.aclose()
        await asyncio.to_thread(self._close_sync_client)

    # -- errors -----------------------------------------------------------------------------

    def _translate_error(self, error: BaseException, session_id: str | None,
                         operation: str) -> SessionError:
        context = {"session_id": session_id, "operation": operation}
        if isinstance(error, openai.NotFoundError):
            return CorruptRecordError(
                "the conversation mapped to this session no longer exists on the server "
                "(deleted outside this store); delete(session_id) forgets the mapping",
                **context,
            )
        if isinstance(error, (openai.AuthenticationError, openai.PermissionDeniedError)):
            return ConfigurationError(f"the Conversations API refused the credentials: {error}", **context)
        if isinstance(error, (openai.BadRequestError, openai.UnprocessableEntityError)):
            return InvalidArgumentError(f"the Conversations API refused the request: {error}", **context)
        if isinstance(error, openai.OpenAIError) and not isinstance(error, openai.APIError):
            return ConfigurationError(f"OpenAI client error: {error}", **context)
        return BackendUnavailableError(f"Conversations API or id map failed: {describe(error)}", **context)


def _copy_async_client(given: openai.AsyncOpenAI) -> openai.AsyncOpenAI:
    """A client like a given one (openai's default HTTP client), for another event loop
    or a forked child."""
    return given.copy(http_client=openai.DefaultAsyncHttpxClient())


async def _aclose_client(client: openai.AsyncOpenAI) -> None:
    await client.close()
