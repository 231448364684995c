"""Async clients kept per event loop.

An asyncio client's connections belong to the event loop that opened them: used from
another loop they fail (``Event loop is closed``, futures attached to a different
loop), sometimes after the request was already applied. So a store keeps one client
per event loop: ``asyncio.run`` twice, or a loop per thread, each get their own.

A client the store owns is closed on its own loop when that loop shuts down:
``asyncio.run()`` (and every ``asyncio.Runner``) finalises the loop's suspended async
generators before closing it, and each owned client waits in one
(:func:`_closed_with_loop`). :meth:`PerLoop.close` closes the others from sync code.
"""

from __future__ import annotations

import asyncio
import functools
import threading
import weakref
from collections.abc import AsyncGenerator, Awaitable, Callable, Coroutine
from typing import Generic, TypeVar

from ._fork import abandon

__all__ = ["PerLoop"]

T = TypeVar("T")


class _Entry(Generic[T]):
    """One loop's client, prepared (and tied to its loop's shutdown) on first use."""

    def __init__(self, client: T, owned: bool) -> None:
        self.client = client
        self.owned = owned
        self.ready = False
        self._lock = asyncio.Lock()
        self._closer: AsyncGenerator[None, None] | None = None

    async def prepare(self, prepare: Callable[[T], Awaitable[None]] | None,
                      close: Callable[[T], Awaitable[None]]) -> None:
        async with self._lock:
            if self.ready:
                return
            if prepare is not None:
                await prepare(self.client)
            if self.owned:
                self._closer = _closed_with_loop(close, self.client)
                await self._closer.__anext__()
            self.ready = True

    async def aclose(self, close: Callable[[T], Awaitable[None]]) -> None:
        closer, self._closer = self._closer, None
        if closer is not None:
            await closer.aclose()
        elif self.owned:
            await close(self.client)


async def _closed_with_loop(close: Callable[[T], Awaitable[None]], client: T) -> AsyncGenerator[None, None]:
    try:
        yield
    finally:
        await close(client)


class PerLoop(Generic[T]):
    """One client per event loop, made on the loop's first call.

    A client the caller gave (``given``) serves the first event loop that asks; every
    other loop gets ``copy(given)``, or ``make()`` when none was given. The store owns
    the clients it made: ``close`` closes them, with their loop or in
    :meth:`close`/:meth:`aclose`; a given client is never closed. ``check`` runs before
    a client is handed to a new loop (a closed store refuses), and ``prepare``, if
    given, once per client before its first use (a cluster client learning its
    topology).
    """

    def __init__(self, make: Callable[[], T], close: Callable[[T], Awaitable[None]], *,
                 given: T | None = None, copy: Callable[[T], T] | None = None,
                 check: Callable[[], None] | None = None,
                 prepare: Callable[[T], Awaitable[None]] | None = None) -> None:
        self._make = make
        self._close = close
        self._given, self._given_used = given, False
        self._copy = copy
        self._check = check
        self._prepare = prepare
        self._entries: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, _Entry[T]] = (
            weakref.WeakKeyDictionary()
        )
        self._guard = threading.Lock()

    async def get(self) -> T:
        """The running loop's client (made and prepared on first use)."""
        loop = asyncio.get_running_loop()
        entry = self._entries.get(loop)
        if entry is None:
            with self._guard:
                entry = self._entries.get(loop)
                if entry is None:
                    for ended in [other for other in self._entries if other.is_closed()]:
                        del self._entries[ended]  # their clients closed with their loops
                    entry = self._entries[loop] = self._new_entry()
        if not entry.ready:
            await entry.prepare(self._prepare, self._close)
        return entry.client

    def _new_entry(self) -> _Entry[T]:
        if self._check is not None:
            self._check()
        given = self._given
        if given is None:
            return _Entry(self._make(), owned=True)
        if not self._given_used:
            self._given_used = True
            return _Entry(given, owned=False)
        if self._copy is None:
            return _Entry(given, owned=False)
        return _Entry(self._copy(given), owned=True)

    def __len__(self) -> int:
        return len(self._entries)

    def close(self) -> None:
        """Close every owned client, each on its own loop where that loop can be driven."""
        with self._guard:
            entries = list(self._entries.items())
            self._entries.clear()
        for loop, entry in entries:
            _close_on_loop(loop, functools.partial(entry.aclose, self._close))

    async def aclose(self) -> None:
        """Close the running loop's client here, the others as :meth:`close` does."""
        with self._guard:
            mine = self._entries.pop(asyncio.get_running_loop(), None)
        if mine is not None:
            await mine.aclose(self._close)
        self.close()

    def forget(self) -> None:
        """In a forked child: drop every client without closing it (see :mod:`sessions._fork`)."""
        entries, self._entries = self._entries, weakref.WeakKeyDictionary()
        self._guard = threading.Lock()
        self._given_used = True  # by the parent: the child gets copies
        abandon(*(entry for entry in entries.values()))


def _close_on_loop(loop: asyncio.AbstractEventLoop,
                   closing: Callable[[], Coroutine[object, object, None]]) -> None:
    """Run ``closing()`` from sync code on the loop its connections belong to."""
    if loop.is_closed():
        return  # the loop's shutdown closed the client already (see _closed_with_loop)
    if loop.is_running():
        # Sync code running on that loop, or another thread: finish in the background.
        asyncio.run_coroutine_threadsafe(closing(), loop)
        return
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        loop.run_until_complete(closing())
    # Otherwise another loop runs in this thread and that one cannot be driven from
    # here; the client closes when its own loop shuts down.
