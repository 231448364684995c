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

from ._base import BaseSession, Session, SessionInfo, SupportsDeleteIfIdle
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
    StoreClosedError,
)
from ._message import MAX_SESSION_ID_BYTES, Message
from ._registry import StoreURL, connect, register_scheme, registered_schemes
from .compression import CompressedSession, with_compression
from .encryption import EncryptedSession, key_id, with_encryption
from .file import FileSession
from .memory import MemorySession
from .migrate import MigrationReport, amigrate, migrate
from .prune import aprune, prune
from .sqlite import SQLiteSession
from .view import model_view

if TYPE_CHECKING:
    from .conversations import ConversationsSession
    from .postgres import PostgresSession
    from .redis import RedisSession

__version__ = "0.1.0"

__all__ = [
    "MAX_SESSION_ID_BYTES",
    "BackendUnavailableError",
    "BaseSession",
    "CompressedSession",
    "ConfigurationError",
    "ConflictError",
    "ConversationsSession",
    "CorruptRecordError",
    "DecryptionError",
    "EncryptedSession",
    "FileSession",
    "InvalidArgumentError",
    "InvalidMessageError",
    "InvalidSessionIdError",
    "MemorySession",
    "Message",
    "MigrationReport",
    "MissingDependencyError",
    "PostgresSession",
    "RedisSession",
    "SQLiteSession",
    "Session",
    "SessionError",
    "SessionInfo",
    "StoreClosedError",
    "StoreURL",
    "SupportsDeleteIfIdle",
    "__version__",
    "amigrate",
    "aprune",
    "connect",
    "key_id",
    "migrate",
    "model_view",
    "prune",
    "register_scheme",
    "registered_schemes",
    "with_compression",
    "with_encryption",
]

# Backends with an optional dependency: imported on first access, so that importing
# ``sessions`` never imports their driver. name -> (module, package, extra).
_OPTIONAL = {
    "ConversationsSession": ("sessions.conversations", "openai", "openai"),
    "PostgresSession": ("sessions.postgres", "psycopg", "postgres"),
    "RedisSession": ("sessions.redis", "redis", "redis"),
}


def __getattr__(name: str) -> Any:
    entry = _OPTIONAL.get(name)
    if entry is None:
        raise AttributeError(f"module 'sessions' has no attribute {name!r}")
    module_name, package, extra = entry
    try:
        module = importlib.import_module(module_name)
    except ImportError as error:
        if (error.name or "").partition(".")[0] != package:
            raise
        raise MissingDependencyError(package, extra, feature=name) from error
    return getattr(module, name)
