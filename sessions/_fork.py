"""Stores in a forked child process.

A process that forks (multiprocessing's ``fork`` start method, pre-forking servers
such as Gunicorn or uWSGI after importing the application) hands its child a copy of
every store object. The child must never use what the parent's store held at that
moment: a socket used by two processes crosses their replies, a pool's worker threads
do not exist in the child, and a lock another thread held stays locked there forever.
Nor may it close them: closing a database connection or sending a protocol goodbye
ends the connection for the parent too.

Every store registers here; in a forked child each one gives up those resources
without closing them and makes its own on first use. What it gave up stays referenced
in :data:`_inherited` for the life of the child, so that garbage collection does not
close it either.

A store whose state lives in the process itself (an in-memory store, SQLite's
per-process lock bookkeeping) may also ask to be *quiet* at the fork: the forking
thread first waits until no other thread is inside one of its calls, so that the
child inherits a consistent copy.
"""

from __future__ import annotations

import os
import threading
import weakref
from typing import Protocol

__all__ = ["ForkAware", "QuietAtFork", "abandon", "register", "register_quiet"]


class ForkAware(Protocol):
    def _after_fork(self) -> None:
        """In a forked child: drop (never close) the parent's connections, clients, pools,
        threads and locks; make new ones on first use."""


class QuietAtFork(ForkAware, Protocol):
    def _quiet_lock(self) -> threading.Lock:
        """The lock every call holds: a fork waits for it, and releases it after in the
        parent (in the child, ``_after_fork`` replaces it)."""


_registered: weakref.WeakSet[ForkAware] = weakref.WeakSet()
_quiet: weakref.WeakSet[QuietAtFork] = weakref.WeakSet()
_held: list[threading.Lock] = []
_inherited: list[object] = []


def register(obj: ForkAware) -> None:
    """Call ``obj._after_fork()`` in every process forked from this one."""
    _registered.add(obj)


def register_quiet(obj: QuietAtFork) -> None:
    """As :func:`register`, and make every fork wait until no thread is inside ``obj``."""
    _registered.add(obj)
    _quiet.add(obj)


def _before() -> None:
    for obj in list(_quiet):
        lock = obj._quiet_lock()
        lock.acquire()
        _held.append(lock)


def _in_parent() -> None:
    while _held:
        _held.pop().release()


def abandon(*resources: object) -> None:
    """Keep resources inherited from the parent alive, unused, for the child's lifetime."""
    _inherited.extend(resource for resource in resources if resource is not None)


def _in_child() -> None:
    _held.clear()
    failed: Exception | None = None
    for obj in list(_registered):
        try:
            obj._after_fork()
        except Exception as error:  # pragma: no cover - a bug; reset the other stores first
            failed = error
    if failed is not None:  # pragma: no cover - Python reports it as an ignored exception
        raise failed


if hasattr(os, "register_at_fork"):  # pragma: no branch - absent on Windows only
    os.register_at_fork(before=_before, after_in_parent=_in_parent, after_in_child=_in_child)
