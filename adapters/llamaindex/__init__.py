"""LlamaIndex over the session layer: a chat store, a ``Memory`` store and message conversion.

Three public pieces, all keyed by session id:

* :class:`SessionChatStore` -- a ``BaseChatStore`` for ``ChatMemoryBuffer`` and the chat
  engines. ``window=N`` makes every read view only the last N messages of a key,
  so a turn over a long conversation costs O(N), not O(history).
* :class:`SessionDBChatStore` -- an ``AsyncDBChatStore`` for
  ``llama_index.core.memory.Memory.from_defaults(session_id=..., chat_store=...)``.
  The session holds the *whole* conversation in order (what every other framework
  reads); how many of its oldest messages ``Memory`` has archived is kept in a small
  companion session, ``session_id + MEMORY_STATE_SUFFIX``.
* :func:`to_canonical` and :func:`from_canonical` -- ``ChatMessage`` to and from the
  canonical (Chat Completions) message. A message read back is equal (``==``) to the
  one that was stored: what the canonical format cannot say is kept under the
  message's ``"llamaindex"`` key, used while it still matches the message.

Both stores hand LlamaIndex the model view of the stored messages
(:func:`sessions.model_view`), whichever framework wrote them, and write back only
what LlamaIndex changed: messages it returns unchanged keep their stored form, with
every other framework's keys.

The conversion rules, per message kind, are listed in ``docs/fidelity.md``.
"""

from __future__ import annotations

from sessions import MissingDependencyError

try:
    import llama_index.core  # noqa: F401 - the extra this adapter belongs to
except ImportError as error:  # pragma: no cover - exercised without the extra installed
    raise MissingDependencyError(
        "llama-index-core", "llamaindex", feature="adapters.llamaindex"
    ) from error

from ._chat_store import SessionChatStore
from ._convert import NAMESPACE, from_canonical, to_canonical
from ._memory import MEMORY_STATE_SUFFIX, SessionDBChatStore

__all__ = [
    "MEMORY_STATE_SUFFIX",
    "NAMESPACE",
    "SessionChatStore",
    "SessionDBChatStore",
    "from_canonical",
    "to_canonical",
]
