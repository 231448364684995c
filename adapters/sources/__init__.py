"""Read-only sources: the stores other libraries write, opened in place as Sessions.

A team moving to session-layer has history in the store its first framework came
with. A source reads that store exactly as the peer library wrote it and presents it
through the Session read contract (``get``, ``get(limit=N)``, ``count``, ``info``,
``list_sessions`` and their async forms), converting each message with the adapter's
converter for that framework. So ``sessions.migrate``, ``sessions migrate SRC DST``,
``export`` and ``show`` work on it unchanged::

    sessions migrate 'agents+sqlite:///agents.db' sqlite:///sessions.db

Every write raises :class:`ReadOnlySourceError` before anything reaches the peer's
store (SQLite files are opened read-only, PostgreSQL reads run in read-only
transactions). A table that is not the peer's layout raises ``ConfigurationError``; a
stored row the peer's layout does not allow raises ``CorruptRecordError`` naming the
row, and a migration writes nothing to that session.

=========================================  =============================  ==========
URL                                        source                         module
=========================================  =============================  ==========
``langchain+sqlite:///chats.db``,          :class:`LangChainSQLSource`    langchain
``langchain+postgresql://...``
``langchain-postgres+postgresql://...``    :class:`LangChainPostgresSource`
``langchain+redis://...``                  :class:`LangChainRedisSource`
``llamaindex+file:///chat_store.json``     :class:`LlamaIndexFileSource`  llamaindex
``llamaindex+redis://...``                 :class:`LlamaIndexRedisSource`
``llamaindex+postgresql://...``            :class:`LlamaIndexPostgresSource`
``llamaindex-sql+sqlite:///memory.db``,    :class:`LlamaIndexSQLSource`
``llamaindex-sql+postgresql://...``
``agents+sqlite:///agents.db``,            :class:`AgentsSQLSource`       openai_agents
``agents+postgresql://...``
``agents+redis://...``                     :class:`AgentsRedisSource`
=========================================  =============================  ==========

Each module needs its framework's extra (``langchain``, ``llamaindex``, ``agents``) and
the driver's (``postgres``, ``redis``) for a server; the classes are imported on first
access, so importing this package imports no framework.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from ._base import UNKNOWN_TIME, PeerSource, ReadOnlySourceError

if TYPE_CHECKING:
    from .langchain import LangChainPostgresSource, LangChainRedisSource, LangChainSQLSource
    from .llamaindex import (
        LlamaIndexFileSource,
        LlamaIndexPostgresSource,
        LlamaIndexRedisSource,
        LlamaIndexSQLSource,
    )
    from .openai_agents import AgentsRedisSource, AgentsSQLSource

__all__ = [
    "UNKNOWN_TIME",
    "AgentsRedisSource",
    "AgentsSQLSource",
    "LangChainPostgresSource",
    "LangChainRedisSource",
    "LangChainSQLSource",
    "LlamaIndexFileSource",
    "LlamaIndexPostgresSource",
    "LlamaIndexRedisSource",
    "LlamaIndexSQLSource",
    "PeerSource",
    "ReadOnlySourceError",
]

_MODULES = {
    "LangChainSQLSource": "langchain",
    "LangChainPostgresSource": "langchain",
    "LangChainRedisSource": "langchain",
    "LlamaIndexFileSource": "llamaindex",
    "LlamaIndexRedisSource": "llamaindex",
    "LlamaIndexPostgresSource": "llamaindex",
    "LlamaIndexSQLSource": "llamaindex",
    "AgentsSQLSource": "openai_agents",
    "AgentsRedisSource": "openai_agents",
}


def __getattr__(name: str) -> Any:
    module = _MODULES.get(name)
    if module is None:
        raise AttributeError(f"module 'adapters.sources' has no attribute {name!r}")
    return getattr(importlib.import_module(f"{__name__}.{module}"), name)
