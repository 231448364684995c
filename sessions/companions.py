"""Companion sessions: small sessions that belong to a conversation.

An adapter may keep state about a conversation that is not part of its history (how
many of its oldest messages LlamaIndex ``Memory`` has archived) in a *companion
session*, named by the conversation's session id followed by a reserved suffix from
:data:`COMPANION_SUFFIXES`. A companion goes with its conversation:

* it is never listed: ``list_sessions`` and ``alist_sessions`` of every backend and
  wrapper skip companions, so the CLI, ``prune`` and ``migrate`` never take one for a
  conversation of its own;
* :func:`delete_conversation` deletes a conversation with its companions, and so do
  ``prune`` (which judges a conversation by its own age and never deletes a companion
  on its own), ``sessions delete`` and the LlamaIndex stores; ``migrate`` copies a
  conversation's companions with it.

``Session.delete`` itself deletes one session (one round trip on every backend), so a
conversation deleted that way leaves its companions behind until it is deleted again
with :func:`delete_conversation`. Session ids ending with a reserved suffix are not for
conversations. A companion must stay correct when its conversation changes without it
(another framework clears, deletes or rewrites the history): the LlamaIndex ``Memory``
mark records a fingerprint of the last message it marks and reads as nothing marked
once that message is gone.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from typing import TYPE_CHECKING

from ._message import MAX_SESSION_ID_BYTES, check_session_id

if TYPE_CHECKING:
    from ._base import Session

__all__ = ["COMPANION_SUFFIXES", "acompanions_hidden", "adelete_conversation", "companions",
           "companions_hidden", "delete_conversation", "is_companion"]

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


def delete_conversation(store: Session, session_id: str) -> None:
    """Delete session ``session_id`` and its companion sessions."""
    check_session_id(session_id, "delete")
    store.delete(session_id)
    for companion in companions(session_id):
        store.delete(companion)


async def adelete_conversation(store: Session, session_id: str) -> None:
    """Async :func:`delete_conversation`."""
    check_session_id(session_id, "delete")
    await store.adelete(session_id)
    for companion in companions(session_id):
        await store.adelete(companion)
