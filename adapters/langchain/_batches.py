"""A batch of LangChain messages as canonical messages, with errors naming the session
and the index of a message that has no canonical form.

Only langchain-core is needed, so the chat history and the agent middleware share it;
reads go the other way through :mod:`adapters.langchain._cache`.
"""

from __future__ import annotations

from collections.abc import Sequence

from langchain_core.messages import BaseMessage

from sessions._errors import InvalidMessageError
from sessions._message import Message

from ._convert import to_canonical

__all__ = ["langchain_to_stored"]


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
