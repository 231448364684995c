"""Whole batches between the store and LangChain, with errors naming the session.

Only langchain-core is needed, so the chat history and the agent middleware can share
them: reads go through the model view, writes name the index of a message that has no
canonical form.
"""

from __future__ import annotations

from collections.abc import Sequence

from langchain_core.messages import BaseMessage

from sessions._errors import InvalidMessageError
from sessions._message import Message

from ._cache import read_history
from ._convert import to_canonical

__all__ = ["langchain_to_stored", "stored_to_langchain"]


def stored_to_langchain(stored: Sequence[Message], *, session_id: str,
                        operation: str = "get") -> list[BaseMessage]:
    """Stored messages as the LangChain messages a model may be sent.

    The model view of ``stored`` fitted for LangChain (:func:`adapters.langchain._view.view_of`:
    no Responses-only messages, no orphaned tool results, no unanswered tool calls nor
    the content blocks that stand for them), converted by
    :func:`adapters.langchain.from_canonical`. Reads of 1,000 messages or more run with
    the cyclic collector paused (:mod:`adapters._gc`). A message that cannot be read
    raises :class:`sessions.CorruptRecordError`.
    """
    return read_history(stored, session_id=session_id, operation=operation)


def langchain_to_stored(messages: Sequence[BaseMessage], *, session_id: str,
                        operation: str) -> list[Message]:
    """LangChain messages as canonical messages; :class:`sessions.InvalidMessageError`
    names the index of one that has no canonical form."""
    converted = []
    for index, message in enumerate(messages):
        try:
            converted.append(to_canonical(message))
        except InvalidMessageError as error:
            raise InvalidMessageError(
                error.reason, index=index, session_id=session_id, operation=operation
            ) from error
    return converted
