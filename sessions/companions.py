"""Companion sessions: small sessions that belong to a conversation.

An adapter may keep state about a conversation that is not part of its history (how
many of its oldest messages LlamaIndex ``Memory`` has archived) in a *companion
session*, named by the conversation's session id followed by a reserved suffix from
:data:`COMPANION_SUFFIXES`. A companion goes with its conversation:

* it is never listed: ``list_sessions`` and ``alist_sessions`` of every backend and
  wrapper skip companions, so the CLI, ``prune`` and ``migrate`` never take one for a
  conversation of its own;
* ``delete`` of a conversation deletes its companions too (every backend, sync and
  async; see :meth:`sessions.BaseSession.delete`);
* ``prune`` judges a conversation by its own age and never deletes a companion on its
  own; ``migrate`` copies a conversation's companions with it.

Session ids ending with a reserved suffix are therefore not for conversations. A
companion must stay correct when its conversation changes without it (another
framework clears or rewrites the history, a store implementing the ``Session``
protocol itself leaves a deleted conversation's companion behind): the LlamaIndex
``Memory`` marker records a fingerprint of the messages it marks and reads as empty
once they are gone.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator

from ._message import MAX_SESSION_ID_BYTES

__all__ = ["COMPANION_SUFFIXES", "acompanions_hidden", "companions", "companions_hidden", "is_companion"]

COMPANION_SUFFIXES = ("::llamaindex-memory",)
"""Reserved session id suffixes naming a conversation's companion sessions."""


def is_companion(session_id: str) -> bool:
    """True if ``session_id`` names a companion session (it ends with a reserved suffix)."""
    return session_id.endswith(COMPANION_SUFFIXES)


def companions(session_id: str) -> tuple[str, ...]:
    """The ids of the companion sessions conversation ``session_id`` may have.

    A companion has none; an id too long to take a suffix has none either (such a
    companion could not be stored).
    """
    if is_companion(session_id):
        return ()
    size = len(session_id.encode("utf-8", "surrogatepass"))
    return tuple(session_id + suffix for suffix in COMPANION_SUFFIXES
                 if size + len(suffix.encode("utf-8")) <= MAX_SESSION_ID_BYTES)


def companions_hidden(session_ids: Iterator[str]) -> Iterator[str]:
    """``session_ids`` without companions, streamed."""
    suffixes = COMPANION_SUFFIXES
    return (session_id for session_id in session_ids if not session_id.endswith(suffixes))


async def acompanions_hidden(session_ids: AsyncIterator[str]) -> AsyncIterator[str]:
    """Async :func:`companions_hidden`."""
    suffixes = COMPANION_SUFFIXES
    async for session_id in session_ids:
        if not session_id.endswith(suffixes):
            yield session_id
