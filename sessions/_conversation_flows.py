"""The operations of :class:`~sessions.conversations.ConversationsSession`, written
once for the sync and the async path (no I/O).

Each operation is a *flow*: a generator that yields the steps it needs, calls of the
Conversations API (:class:`Api`) and of the durable map (:class:`MapCall`), and
receives each result (an exception raised by a step is thrown into the flow at its
``yield``). The drivers of :mod:`sessions._conversation_clients` run the steps with the
sync or the async client, so every rule lives here once.

Items read back are grouped into messages by the map's rows where they match (the
items this store wrote for one message), else by the natural rule: function calls join
the assistant message before them.
"""

from __future__ import annotations

import contextlib
import json
import re
import time
from collections.abc import Callable, Generator
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, TypeVar

import openai

from ._base import SessionInfo, stored_info, timestamp_before
from ._conversation_items import items_to_message, message_to_items, needs_record
from ._conversation_map import ConversationMap, MappedSession, MessageRow
from ._errors import BackendUnavailableError, CorruptRecordError, InvalidSessionIdError, shown
from ._message import encode_message

__all__ = ["MAX_ITEMS_PER_CREATE", "PAGE_SIZE", "Api", "ConversationFlows", "Flow", "MapCall", "Step"]

T = TypeVar("T")

#: Most items one ``conversations.items.create`` (or ``conversations.create``) accepts.
MAX_ITEMS_PER_CREATE = 20
#: Page size of ``conversations.items.list`` (the API allows 1 to 100).
PAGE_SIZE = 100
_CONVERSATION_ID = re.compile(r"conv_[A-Za-z0-9]+")
_METADATA_VALUE_MAX = 512


def _is_conversation_id(session_id: str) -> bool:
    return _CONVERSATION_ID.fullmatch(session_id) is not None


# -- the steps a flow asks its driver to run -------------------------------------------------


@dataclass(frozen=True)
class Api:
    """Call ``client.conversations.<method>(*args, **kwargs)``."""

    method: str
    args: tuple[Any, ...] = ()
    kwargs: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class MapCall:
    """Call a method of the durable map (in a worker thread on the async path)."""

    fn: Callable[..., Any]
    args: tuple[Any, ...] = ()


Step = Api | MapCall
Flow = Generator[Step, Any, T]


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


class ConversationFlows:
    """The flows of every operation on the sessions of one durable map."""

    def __init__(self, conversation_map: ConversationMap) -> None:
        self.map = conversation_map

    def _resolve(self, session_id: str) -> Flow[MappedSession | None]:
        """The session's map entry; a ``conv_...`` id seen for the first time is adopted."""
        mapped: MappedSession | None = yield MapCall(self.map.lookup, (session_id,))
        if mapped is not None or not _is_conversation_id(session_id):
            return mapped
        try:
            conversation = yield Api("retrieve", (session_id,))
        except openai.NotFoundError:
            return None
        items = yield from self._all_items(session_id)
        count = len(_chat_groups(_group(items, {})))
        yield MapCall(self.map.claim, (session_id, session_id, float(conversation.created_at), count))
        adopted: MappedSession | None = yield MapCall(self.map.lookup, (session_id,))
        return adopted

    def _page(self, conversation_id: str, order: str, after: str | None,
              size: int = PAGE_SIZE) -> Flow[tuple[list[dict[str, Any]], str | None]]:
        """One page of items; returns them and the cursor of the next page (or None).

        The page is read as JSON (``with_raw_response``): the items are wanted as
        plain dicts, and building the client's models first costs ~5x the request."""
        kwargs: dict[str, Any] = {"order": order, "limit": size}
        if after is not None:
            kwargs["after"] = after
        answer = yield Api("items.with_raw_response.list", (conversation_id,), kwargs)
        try:
            page = answer.http_response.json()
        except ValueError:
            page = None
        if type(page) is not dict or type(page.get("data")) is not list:
            raise CorruptRecordError(f"the Conversations API answered an item list with {shown(page, 200)}")
        items: list[dict[str, Any]] = page["data"]
        more = bool(page.get("has_more")) and bool(items)
        return items, (page.get("last_id") or items[-1]["id"]) if more else None

    def _all_items(self, conversation_id: str) -> Flow[list[dict[str, Any]]]:
        items: list[dict[str, Any]] = []
        after: str | None = None
        while True:
            page, after = yield from self._page(conversation_id, "asc", after)
            items.extend(page)
            if after is None:
                return items

    def _rows(self, conversation_id: str, items: list[dict[str, Any]]) -> Flow[dict[str, MessageRow]]:
        rows: dict[str, MessageRow] = yield MapCall(
            self.map.message_rows, (conversation_id, [item["id"] for item in items])
        )
        return rows

    def _tail(self, conversation_id: str, count: int) -> Flow[list[tuple[_Group, str]]]:
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

    def _conversation_of(self, session_id: str) -> Flow[tuple[str | None, bool]]:
        """The conversation to read, and whether it comes from the map."""
        mapped: MappedSession | None = yield MapCall(self.map.lookup, (session_id,))
        if mapped is not None:
            return mapped.conversation_id, True
        return (session_id if _is_conversation_id(session_id) else None), False

    def get(self, session_id: str, limit: int | None) -> Flow[list[str]]:
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

    def _create_conversation(self, session_id: str) -> Flow[str]:
        metadata = {"session_id": session_id} if len(session_id) <= _METADATA_VALUE_MAX else {}
        conversation = yield Api("create", (), {"metadata": metadata})
        return str(conversation.id)

    def _discard(self, conversation_id: str) -> Flow[None]:
        """Delete a conversation this store no longer points at; failures leave only an
        unreachable conversation behind, so they are not raised."""
        try:
            yield Api("delete", (conversation_id,))
        except openai.OpenAIError:
            return

    def _write_items(self, conversation_id: str,
                     prepared: list[tuple[list[dict[str, Any]], str | None]]) -> Flow[list[MessageRow]]:
        """Create the items in order, at most 20 per request; on failure delete the ones
        already created (best effort) and raise."""
        flat = [item for items, _ in prepared for item in items]
        created: list[str] = []
        try:
            for start in range(0, len(flat), MAX_ITEMS_PER_CREATE):
                chunk = flat[start:start + MAX_ITEMS_PER_CREATE]
                answer = yield Api("items.create", (conversation_id,), {"items": chunk})
                ids = [item.id for item in answer.data]
                if len(ids) != len(chunk):
                    raise BackendUnavailableError(
                        f"the server created {len(ids)} items of {len(chunk)}", operation="append"
                    )
                created.extend(ids)
        except Exception:
            for item_id in reversed(created):
                try:
                    yield Api("items.delete", (item_id,), {"conversation_id": conversation_id})
                except openai.OpenAIError:
                    continue
            raise
        rows: list[MessageRow] = []
        position = 0
        for items, record in prepared:
            rows.append(MessageRow(created[position], created[position + len(items) - 1], len(items), record))
            position += len(items)
        return rows

    def _delete_items(self, conversation_id: str) -> Flow[None]:
        for item in reversed((yield from self._all_items(conversation_id))):
            try:
                yield Api("items.delete", (item["id"],), {"conversation_id": conversation_id})
            except openai.NotFoundError:
                continue

    def _missing_conversation(self, session_id: str, operation: str) -> InvalidSessionIdError:
        return InvalidSessionIdError(
            f"no conversation {session_id} exists on the server; session ids of the form "
            "conv_... name existing conversations",
            session_id=session_id, operation=operation,
        )

    def append(self, session_id: str, records: list[str]) -> Flow[None]:
        prepared = self._prepare(session_id, records)
        mapped = yield from self._resolve(session_id)
        if mapped is not None:
            conversation_id = mapped.conversation_id
        elif _is_conversation_id(session_id):
            raise self._missing_conversation(session_id, "append")
        else:
            ours = yield from self._create_conversation(session_id)
            conversation_id = yield MapCall(self.map.claim, (session_id, ours, time.time(), 0))
            if conversation_id != ours:
                yield from self._discard(ours)
        rows = yield from self._write_items(conversation_id, prepared)
        recorded = yield MapCall(self.map.add_messages, (session_id, conversation_id, rows))
        if not recorded:
            # Another process deleted (or replaced) the session while the items were
            # written: they went into a conversation this session no longer names.
            raise BackendUnavailableError(
                "the session was deleted or replaced by another writer while this append "
                "was written; the messages were not stored",
                session_id=session_id, operation="append",
            )

    def pop(self, session_id: str) -> Flow[str | None]:
        mapped = yield from self._resolve(session_id)
        if mapped is None:
            return None
        last = yield from self._tail(mapped.conversation_id, 1)
        if not last:
            return None
        group, record = last[0]
        for item in reversed(group.items):
            try:
                yield Api("items.delete", (item["id"],), {"conversation_id": mapped.conversation_id})
            except openai.NotFoundError:
                continue
        first = group.row.first_item if group.row is not None else None
        yield MapCall(self.map.remove_message, (session_id, mapped.conversation_id, first))
        return record

    def replace(self, session_id: str, records: list[str]) -> Flow[None]:
        prepared = self._prepare(session_id, records)
        if _is_conversation_id(session_id):
            mapped = yield from self._resolve(session_id)
            if mapped is None:
                raise self._missing_conversation(session_id, "replace")
            yield from self._delete_items(session_id)
            yield MapCall(self.map.reset, (session_id,))
            if prepared:
                rows = yield from self._write_items(session_id, prepared)
                yield MapCall(self.map.add_messages, (session_id, session_id, rows))
            return
        yield from self._move_to_fresh_conversation(session_id, prepared)

    def _move_to_fresh_conversation(self, session_id: str,
                                    prepared: list[tuple[list[dict[str, Any]], str | None]]) -> Flow[None]:
        """Write ``prepared`` into a new conversation, point the map at it, delete the old
        one. Until the map is switched the old history stays; on failure the new
        conversation is deleted again."""
        fresh = yield from self._create_conversation(session_id)
        try:
            rows = yield from self._write_items(fresh, prepared)
            previous = yield MapCall(self.map.remap, (session_id, fresh, rows))
        except Exception:
            yield from self._discard(fresh)
            raise
        if previous is not None:
            yield from self._discard(previous)

    def clear(self, session_id: str) -> Flow[None]:
        mapped = yield from self._resolve(session_id)
        if mapped is None:
            return
        if _is_conversation_id(session_id):
            yield from self._delete_items(session_id)
            yield MapCall(self.map.reset, (session_id,))
            return
        yield from self._move_to_fresh_conversation(session_id, [])

    def delete(self, session_id: str) -> Flow[None]:
        conversation_id, _ = yield from self._conversation_of(session_id)
        if conversation_id is None:
            return
        with contextlib.suppress(openai.NotFoundError):
            yield Api("delete", (conversation_id,))
        yield MapCall(self.map.forget, (session_id,))

    def delete_if_idle(self, session_id: str, cutoff: datetime) -> Flow[bool]:
        """Forget the session in the map if it is idle (the atomic decision), then
        delete its conversation (best effort: the session is gone either way)."""
        conversation_id = yield MapCall(self.map.forget_if_idle, (session_id, timestamp_before(cutoff)))
        if conversation_id is None:
            return False
        yield from self._discard(conversation_id)
        return True

    def info(self, session_id: str) -> Flow[SessionInfo | None]:
        mapped = yield from self._resolve(session_id)
        if mapped is None:
            return None
        return stored_info(session_id, mapped.message_count, mapped.created_at, mapped.updated_at)
