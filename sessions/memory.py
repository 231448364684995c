"""In-process store: for tests and development. Nothing survives the process."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import datetime, timezone

from . import _fork
from ._base import BaseSession, SessionInfo
from ._errors import ConfigurationError
from ._registry import StoreURL

__all__ = ["MemorySession"]


def _now() -> datetime:
    return datetime.now(timezone.utc)


@dataclass
class _Entry:
    records: list[str] = field(default_factory=list)
    created_at: datetime = field(default_factory=_now)
    updated_at: datetime = field(default_factory=_now)


class MemorySession(BaseSession):
    """A thread-safe store in a dict of lists.

    Messages are kept as their JSON records, so what is read back is a fresh copy:
    mutating a returned message (or one that was appended) never changes the store.
    A forked child gets a copy of the contents as they were at the fork (the fork
    waits for calls in flight), its own from then on.
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._entries: dict[str, _Entry] = {}
        _fork.register_quiet(self)

    def _quiet_lock(self) -> threading.Lock:
        return self._lock

    def _after_fork(self) -> None:
        self._lock = threading.Lock()  # the forking thread held it: the copy is consistent

    @classmethod
    def from_url(cls, url: StoreURL) -> MemorySession:
        """``memory://`` opens a fresh, empty store."""
        url.options({})
        if url.host or url.username or url.password or url.port or url.path:
            raise ConfigurationError(f"memory URL {url.redacted!r} takes no host, path or credentials")
        return cls()

    def _get(self, session_id: str, limit: int | None) -> list[str]:
        with self._lock:
            entry = self._entries.get(session_id)
            if entry is None:
                return []
            if limit is None:
                return entry.records[:]
            return entry.records[-limit:] if limit else []

    def _append(self, session_id: str, records: list[str]) -> None:
        with self._lock:
            entry = self._entries.get(session_id)
            if entry is None:
                entry = self._entries[session_id] = _Entry()
            entry.records.extend(records)
            entry.updated_at = _now()

    def _pop(self, session_id: str) -> str | None:
        with self._lock:
            entry = self._entries.get(session_id)
            if entry is None or not entry.records:
                return None
            entry.updated_at = _now()
            return entry.records.pop()

    def _replace(self, session_id: str, records: list[str]) -> None:
        with self._lock:
            entry = self._entries.get(session_id)
            if entry is None:
                entry = self._entries[session_id] = _Entry()
            entry.records = list(records)
            entry.updated_at = _now()

    def _clear(self, session_id: str) -> None:
        with self._lock:
            entry = self._entries.get(session_id)
            if entry is not None:
                entry.records = []
                entry.updated_at = _now()

    def _delete(self, session_id: str) -> None:
        with self._lock:
            self._entries.pop(session_id, None)

    def _delete_if_idle(self, session_id: str, cutoff: datetime) -> bool:
        with self._lock:
            entry = self._entries.get(session_id)
            if entry is None or entry.updated_at >= cutoff:
                return False
            del self._entries[session_id]
            return True

    def _count(self, session_id: str) -> int:
        with self._lock:
            entry = self._entries.get(session_id)
            return 0 if entry is None else len(entry.records)

    def _info(self, session_id: str) -> SessionInfo | None:
        with self._lock:
            entry = self._entries.get(session_id)
            if entry is None:
                return None
            return SessionInfo(session_id, len(entry.records), entry.created_at, entry.updated_at)

    def _iter_sessions(self) -> Iterator[str]:
        with self._lock:
            ids = list(self._entries)
        return iter(ids)
