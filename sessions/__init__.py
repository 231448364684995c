"""session-layer: one conversation history, stored once, served to every agent framework.

The neutral session layer. A store keeps many conversations, each under an opaque
session id, as canonical OpenAI Chat Completions messages (plain dicts)::

    import sessions

    store = sessions.connect()                 # SESSIONS_URL, or ./sessions.db
    store.append("user-alice", [{"role": "user", "content": "Hi"}])
    store.get("user-alice", limit=50)          # the last 50 messages, oldest first
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from ._base import BaseSession, Session, SessionInfo
from ._errors import (
    BackendUnavailableError,
    ConfigurationError,
    ConflictError,
    CorruptRecordError,
    DecryptionError,
    InvalidArgumentError,
    InvalidMessageError,
    InvalidSessionIdError,
    MissingDependencyError,
    SessionError,
)
from ._message import MAX_SESSION_ID_BYTES, Message
from ._registry import StoreURL, connect, register_scheme, registered_schemes
from .memory import MemorySession
from .sqlite import SQLiteSession

if TYPE_CHECKING:
    from .postgres import PostgresSession

__version__ = "0.1.0"

# Backends with optional dependencies, imported on first access: name -> module.
_LAZY = {
    "PostgresSession": "sessions.postgres",
}


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'sessions' has no attribute {name!r}")
    # A missing dependency raises MissingDependencyError naming the extra.
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value


__all__ = [
    "MAX_SESSION_ID_BYTES",
    "BackendUnavailableError",
    "BaseSession",
    "ConfigurationError",
    "ConflictError",
    "CorruptRecordError",
    "DecryptionError",
    "InvalidArgumentError",
    "InvalidMessageError",
    "InvalidSessionIdError",
    "MemorySession",
    "Message",
    "MissingDependencyError",
    "PostgresSession",
    "SQLiteSession",
    "Session",
    "SessionError",
    "SessionInfo",
    "StoreURL",
    "__version__",
    "connect",
    "register_scheme",
    "registered_schemes",
]
