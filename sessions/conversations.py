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

This module is the store; its operations are written once in
:mod:`sessions._conversation_flows` and run by the clients and locks of
:mod:`sessions._conversation_clients`.
"""

from __future__ import annotations

import asyncio
import os
import sqlite3
import threading
from collections.abc import Iterator
from datetime import datetime
from typing import Any

import openai

from . import _fork
from ._base import BaseSession, SessionInfo
from ._conversation_clients import ConversationClients
from ._conversation_flows import MAX_ITEMS_PER_CREATE as MAX_ITEMS_PER_CREATE
from ._conversation_flows import PAGE_SIZE as PAGE_SIZE
from ._conversation_flows import ConversationFlows
from ._conversation_map import ConversationMap
from ._errors import (
    BackendUnavailableError,
    ConfigurationError,
    CorruptRecordError,
    InvalidArgumentError,
    SessionError,
)
from ._options import check_int, check_path, check_seconds, check_text
from ._registry import StoreURL
from .sqlite import describe

__all__ = ["ConversationsSession"]


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
        api_key = check_text("api_key", api_key, optional=True)
        base_url = check_text("base_url", base_url, optional=True)
        options: dict[str, Any] = {
            key: value for key, value in (
                ("timeout", check_seconds("timeout", timeout, optional=True)),
                ("max_retries", None if max_retries is None
                 else check_int("max_retries", max_retries, minimum=0, maximum=100)),
            ) if value is not None
        }
        self._clients = ConversationClients(
            client, async_client, api_key=api_key, base_url=base_url, options=options,
            check=self._refuse_if_closed,
        )
        self.map = self._call("open", None, lambda: ConversationMap(id_map, timeout=map_timeout))
        self._flows = ConversationFlows(self.map)
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

    @property
    def client(self) -> openai.OpenAI:
        """The client of the sync methods (made on first use unless one was given)."""
        return self._clients.client

    # -- the record hooks ------------------------------------------------------------------

    def _get(self, session_id: str, limit: int | None) -> list[str]:
        return self._clients.run(self._flows.get(session_id, limit))

    def _append(self, session_id: str, records: list[str]) -> None:
        self._clients.locked(session_id, self._flows.append(session_id, records))

    def _pop(self, session_id: str) -> str | None:
        return self._clients.locked(session_id, self._flows.pop(session_id))

    def _replace(self, session_id: str, records: list[str]) -> None:
        self._clients.locked(session_id, self._flows.replace(session_id, records))

    def _clear(self, session_id: str) -> None:
        self._clients.locked(session_id, self._flows.clear(session_id))

    def _delete(self, session_id: str) -> None:
        self._clients.locked(session_id, self._flows.delete(session_id))

    def _delete_if_idle(self, session_id: str, cutoff: datetime) -> bool:
        return self._clients.locked(session_id, self._flows.delete_if_idle(session_id, cutoff))

    def _count(self, session_id: str) -> int:
        info = self._info(session_id)
        return 0 if info is None else info.message_count

    def _info(self, session_id: str) -> SessionInfo | None:
        return self._clients.run(self._flows.info(session_id))

    def _iter_sessions(self) -> Iterator[str]:
        return self.map.iter_sessions()

    def _close(self) -> None:
        self.map.close()
        self._clients.close()

    def _quiet_lock(self) -> threading.Lock:
        return self.map.quiet_lock()

    def _after_fork(self) -> None:
        self._clients.after_fork()
        self.map.after_fork()

    async def _aget(self, session_id: str, limit: int | None) -> list[str]:
        return await self._clients.arun(self._flows.get(session_id, limit))

    async def _aappend(self, session_id: str, records: list[str]) -> None:
        await self._clients.alocked(session_id, self._flows.append(session_id, records))

    async def _apop(self, session_id: str) -> str | None:
        return await self._clients.alocked(session_id, self._flows.pop(session_id))

    async def _areplace(self, session_id: str, records: list[str]) -> None:
        await self._clients.alocked(session_id, self._flows.replace(session_id, records))

    async def _aclear(self, session_id: str) -> None:
        await self._clients.alocked(session_id, self._flows.clear(session_id))

    async def _adelete(self, session_id: str) -> None:
        await self._clients.alocked(session_id, self._flows.delete(session_id))

    async def _adelete_if_idle(self, session_id: str, cutoff: datetime) -> bool:
        return await self._clients.alocked(session_id, self._flows.delete_if_idle(session_id, cutoff))

    async def _acount(self, session_id: str) -> int:
        info = await self._ainfo(session_id)
        return 0 if info is None else info.message_count

    async def _ainfo(self, session_id: str) -> SessionInfo | None:
        return await self._clients.arun(self._flows.info(session_id))

    async def _aclose(self) -> None:
        await asyncio.to_thread(self.map.close)
        await self._clients.aclose()

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
