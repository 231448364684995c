"""The clients of :class:`~sessions.conversations.ConversationsSession`, its
per-session locks, and the drivers that run its flows.

* Clients: one sync client (given, or made on first use), and one async client per
  event loop (``asyncio.run`` twice, or a loop per thread, each get their own), closed
  with its loop. A forked child makes its own clients and never touches the parent's.
* Locks (:class:`SessionLock`): one writer at a time per session within a process:
  sync calls in any thread and async calls on any event loop share one lock per
  session, and async callers wait for it without blocking their loop.
* Drivers: :meth:`ConversationClients.run` and :meth:`~ConversationClients.arun` run
  the steps of a flow (:mod:`sessions._conversation_flows`) with the sync client or the
  running loop's async client; map calls run in a worker thread on the async path.
"""

from __future__ import annotations

import asyncio
import collections
import threading
from collections.abc import Callable
from typing import Any, TypeVar

import openai

from . import _fork
from ._conversation_flows import Api, Flow, Step
from ._errors import ConfigurationError
from ._flow import adrive, drive
from ._loops import PerLoop

__all__ = ["ConversationClients", "SessionLock", "SessionLocks"]

T = TypeVar("T")

_LOCK_STRIPES = 64


class SessionLock:
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


class SessionLocks:
    """Striped per-session locks, shared by threads and every event loop."""

    def __init__(self) -> None:
        self._stripes = [SessionLock() for _ in range(_LOCK_STRIPES)]

    def __getitem__(self, session_id: str) -> SessionLock:
        return self._stripes[hash(session_id) % _LOCK_STRIPES]


class ConversationClients:
    """The clients and session locks of one store, and the drivers of its flows.

    A given async client serves the first event loop that calls; other loops get
    copies of it (with openai's default HTTP client). Without one, each loop gets a
    client made with the sync client's key, base URL, timeout and retries, or with
    ``api_key``, ``base_url`` and ``options`` when there is no sync client. ``check``
    runs before a client is made (a closed store refuses).
    """

    def __init__(self, client: openai.OpenAI | None, async_client: openai.AsyncOpenAI | None, *,
                 api_key: str | None, base_url: str | None, options: dict[str, Any],
                 check: Callable[[], None]) -> None:
        self._client = client
        self._owns_client = False
        self._given_client: openai.OpenAI | None = None  # a template for a forked child
        self._async_clients: PerLoop[openai.AsyncOpenAI] = PerLoop(
            self._own_async_client, _aclose_client, given=async_client, copy=_copy_async_client,
            check=check,
        )
        self._api_key, self._base_url, self._client_options = api_key, base_url, options
        self._check = check
        self._guard = threading.Lock()
        self.locks = SessionLocks()
        self._writes: set[asyncio.Future[Any]] = set()

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
        with self._guard:
            if self._client is None:
                self._check()
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
        with self._guard:
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

    def _do(self, step: Step) -> Any:
        if isinstance(step, Api):
            return self._method(self.client, step.method)(*step.args, **step.kwargs)
        return step.fn(*step.args)

    async def _ado(self, step: Step) -> Any:
        if isinstance(step, Api):
            client = await self._async_clients.get()
            return await self._method(client, step.method)(*step.args, **step.kwargs)
        return await asyncio.to_thread(step.fn, *step.args)

    def run(self, flow: Flow[T]) -> T:
        """Run ``flow`` with the sync client; return what it returns."""
        return drive(flow, self._do)

    async def arun(self, flow: Flow[T]) -> T:
        """Run ``flow`` with the running event loop's client; return what it returns."""
        return await adrive(flow, self._ado)

    def locked(self, session_id: str, flow: Flow[T]) -> T:
        """Run ``flow`` under the session's lock."""
        with self.locks[session_id]:
            return self.run(flow)

    async def alocked(self, session_id: str, flow: Flow[T]) -> T:
        """Run ``flow`` under the session's lock, to the end even if the caller is cancelled."""
        # A cancelled caller must not leave a write half done: the flow runs in its
        # own task, which the cancellation does not reach (kept referenced until done).
        async def run() -> T:
            async with self.locks[session_id]:
                return await self.arun(flow)

        task = asyncio.ensure_future(run())
        self._writes.add(task)
        task.add_done_callback(self._write_done)
        return await asyncio.shield(task)

    def _write_done(self, task: asyncio.Future[Any]) -> None:
        self._writes.discard(task)
        if not task.cancelled():
            task.exception()  # retrieved here too: its caller may have been cancelled

    # -- closing ----------------------------------------------------------------------------

    def _close_sync_client(self) -> None:
        with self._guard:
            client = self._client if self._owns_client else None
            if self._owns_client:
                self._client, self._owns_client = None, False
        if client is not None:
            client.close()

    def close(self) -> None:
        """Close the clients made here (given clients are their owner's to close)."""
        self._close_sync_client()
        self._async_clients.close()

    async def aclose(self) -> None:
        await self._async_clients.aclose()
        await asyncio.to_thread(self._close_sync_client)

    def after_fork(self) -> None:
        """In a forked child: new locks, and drop the parent's clients unclosed."""
        self.locks = SessionLocks()
        self._guard = threading.Lock()
        if self._client is not None:
            _fork.abandon(self._client)
            if not self._owns_client:
                self._given_client = self._client
            self._client, self._owns_client = None, False
        self._async_clients.forget()


def _copy_async_client(given: openai.AsyncOpenAI) -> openai.AsyncOpenAI:
    """A client like a given one (openai's default HTTP client), for another event loop
    or a forked child."""
    return given.copy(http_client=openai.DefaultAsyncHttpxClient())


async def _aclose_client(client: openai.AsyncOpenAI) -> None:
    await client.close()
