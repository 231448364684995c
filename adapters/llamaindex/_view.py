"""What LlamaIndex is shown of a stored history, and how its changes are written back.

Both chat stores hand LlamaIndex the *model view* of the stored messages
(:class:`sessions.view.ModelView`, with ``extras=True``) as ``ChatMessage`` objects:
Responses-only messages, messages with nothing a model can read and tool calls without
their results never reach a LlamaIndex LLM, and a window never starts inside a tool
exchange. One exception keeps LlamaIndex's own data whole: a user message LlamaIndex
wrote whose only media has no Chat Completions part (an image by ``path``, a document
or audio by URL or path) is shown to LlamaIndex, whose LLMs resolve and send it.

Indices LlamaIndex gives back count in what it was shown; ``ModelView.span`` turns them
into stored positions. A message the view leaves out goes with the shown message after it
(and, after the last shown message, with that one): deleting or archiving a shown
message takes the hidden ones before it along, as the Agents SDK needs its reasoning
items to stay with the message they led to.

:func:`rewrite` writes LlamaIndex's version of a shown history back: shown messages it
did not change keep their stored form (with every other framework's keys), wherever
they are; what it changed, added or removed is written as LlamaIndex gives it.
"""

from __future__ import annotations

from collections.abc import Sequence

from sessions import CorruptRecordError
from sessions._message import Message
from sessions.view import MODEL_KEYS, ModelView, rewrite_view

from ._convert import MEDIA_BLOCKS, NAMESPACE, TEXT_ROLES, read_shown, to_canonical

__all__ = ["region", "rewrite", "view"]

# Stands in for a message LlamaIndex can read although its canonical form has nothing
# a Chat Completions model can read, so that the model view keeps it in its place.
_SHOWN: Message = {"role": "user", "content": "shown"}
_NOT_FOR_USERS = MODEL_KEYS - {"role", "content", "name"}


def _left_out(view: ModelView) -> list[int]:
    positions = view.positions
    out: list[int] = []
    expected = 0
    for position in positions:
        out.extend(range(expected, position))
        expected = position + 1
    out.extend(range(expected, view.size))
    return out


def _media_for_llamaindex(message: Message) -> bool:
    """A user message whose exact LlamaIndex blocks hold media its LLMs can send."""
    namespace = message.get(NAMESPACE)
    if message.get("role") != "user" or not isinstance(namespace, dict) or "blocks" not in namespace:
        return False
    return any(isinstance(block, MEDIA_BLOCKS) for block in read_shown(message).blocks)


def view(stored: Sequence[Message], session_id: str, operation: str) -> ModelView:
    """The view LlamaIndex is shown of ``stored`` (rules in the module docstring).

    Raises :class:`CorruptRecordError` for a stored record that is not a message (a
    wrapper's envelope, read without its wrapper): it must not read as a shorter history.
    """
    try:
        shown = ModelView.of(stored, extras=True)
    except CorruptRecordError as error:
        raise CorruptRecordError(error.message, session_id=session_id, operation=operation) from error
    if len(shown.positions) == len(stored):
        return shown
    readable = [index for index in _left_out(shown) if _media_for_llamaindex(stored[index])]
    if not readable:
        return shown
    source = list(stored)
    for index in readable:
        source[index] = _SHOWN
    shown = ModelView.of(source, extras=True)
    shown.messages = [_as_user(stored[at]) if message is _SHOWN else message
                      for message, at in zip(shown.messages, shown.positions, strict=True)]
    return shown


def _as_user(message: Message) -> Message:
    """A stood-in user message without the request keys a user message does not take."""
    return {key: value for key, value in message.items() if key not in _NOT_FOR_USERS}


def region(history: Sequence[Message], window: int | None, session_id: str,
           operation: str) -> tuple[int, ModelView]:
    """``(offset, view of history[offset:])``: the part of ``history`` a store with
    ``window`` shows and may rewrite. With a window it starts at the first message
    shown: hidden messages before it (results of a call outside the window) belong to
    messages outside the window and are never touched."""
    if window is None:
        return 0, view(history, session_id, operation)
    start = max(0, len(history) - window)
    shown = view(history[start:], session_id, operation)
    first = shown.positions[0] if shown.positions else shown.size
    if first:
        shown = ModelView(shown.messages, [at - first for at in shown.positions], shown.size - first,
                          ends_open=shown.ends_open)
    return start + first, shown


def _round_trip(message: Message) -> Message:
    """What LlamaIndex writes for ``message`` when it writes back what it read."""
    content = message.get("content")
    if len(message) == 2 and type(content) is str and message.get("role") in TEXT_ROLES:
        return message
    return to_canonical(read_shown(message))


def rewrite(stored: Sequence[Message], shown: ModelView, new: Sequence[Message]) -> list[Message]:
    """The history to store when LlamaIndex writes ``new`` (canonical) after reading
    ``shown``, the view of ``stored`` (:func:`sessions.view.rewrite_view` with
    LlamaIndex's round trip): shown messages it did not change keep their stored form,
    wherever they are; writing back what was read returns ``stored``."""
    return rewrite_view(stored, shown, new, _round_trip)
