"""The model view as LangChain messages, and writing LangChain's edit of it back.

What LangChain hands a model is the model view of the stored history
(:func:`sessions.view.model_view` with ``extras=True``): Responses-only messages, messages
with nothing a model can read and tool calls without results are left out, and a window
never starts inside a tool exchange. Two things the view does not know are LangChain's:

* where the view removed tool calls from an assistant message, the content blocks that
  stand for those calls (``tool_use``, ``tool_call``, ``function_call``,
  ``custom_tool_call``) are left out of the message's LangChain content too, and the
  namespace's errors of invalid calls follow the calls that remain, because a provider
  would otherwise send the removed calls again from those blocks;
* a tool message keeps its ``name`` (the Chat Completions API takes none, and
  LangChain's provider integrations leave it out when they send the message, but
  LangChain keeps the tool's name there).

Writing back (:func:`rewrite`) keeps the stored form of every message LangChain did not
change and everything the view left out (:func:`sessions.view.rewrite_view`); a message
is unchanged when its canonical form is that of the viewed message read into LangChain
and converted back.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from sessions._errors import InvalidMessageError
from sessions._message import ROLES, Message
from sessions.view import ModelView, rewrite_view

from ._convert import NAMESPACE, from_canonical, to_canonical

__all__ = ["rewrite", "view_of"]

# Content blocks that stand for one of the message's tool calls, by the key of the call id.
_CALL_BLOCKS = {"tool_use": "id", "tool_call": "id", "invalid_tool_call": "id",
                "function_call": "call_id", "custom_tool_call": "call_id"}


def _call_ids(calls: Any) -> list[Any]:
    return [c.get("id") if type(c) is dict else None for c in calls] if type(calls) is list else []


def _called(entry: Any) -> str | None:
    """The call id a content rebuild entry's block stands for, or None."""
    block = entry.get("block") if type(entry) is dict else None
    if type(block) is not dict:
        return None
    key = _CALL_BLOCKS.get(block.get("type"))  # type: ignore[arg-type]
    call_id = block.get(key) if key is not None else None
    return call_id if type(call_id) is str else None


def _without_calls(namespace: dict[str, Any], before: list[Any], after: list[Any]) -> dict[str, Any]:
    """The namespace of an assistant message whose calls ``before`` the view are ``after``."""
    kept = set(after)
    removed = {i for i in before if type(i) is str} - kept
    fitted = dict(namespace)
    entries = namespace.get("content")
    if type(entries) is list and removed:
        fitted["content"] = [entry for entry in entries if _called(entry) not in removed]
    errors = namespace.get("invalid_tool_calls")
    if type(errors) is list and errors and len(errors) <= len(before):
        # The invalid calls are the last ones; those the view kept stay the last ones.
        still = [(i, e) for i, e in zip(before[len(before) - len(errors):], errors, strict=True)
                 if type(i) is str and i in kept]
        if [i for i, _ in still] == after[len(after) - len(still):]:
            fitted["invalid_tool_calls"] = [e for _, e in still]
        else:
            del fitted["invalid_tool_calls"]
        if not fitted.get("invalid_tool_calls"):
            fitted.pop("invalid_tool_calls", None)
    return fitted


def _fitted(viewed: Message, stored: Message) -> Message:
    """``viewed`` (the view's form of ``stored``) with what LangChain keeps of ``stored``."""
    role = viewed.get("role")
    if role == "tool" and "name" not in viewed and type(stored.get("name")) is str:
        if len(viewed) + 1 == len(stored) and viewed.get("content") is stored.get("content"):
            return stored  # the view only left the name out
        return {**viewed, "name": stored["name"]}
    namespace = viewed.get(NAMESPACE)
    if role == "assistant" and type(namespace) is dict:
        before, after = _call_ids(stored.get("tool_calls")), _call_ids(viewed.get("tool_calls"))
        if before != after:
            return {**viewed, NAMESPACE: _without_calls(namespace, before, after)}
    return viewed


def view_of(stored: Sequence[Message]) -> ModelView:
    """The model view of ``stored`` for LangChain: ``ModelView.of(stored, extras=True)``
    with each message fitted as the module docstring says (never the stored dicts
    changed).

    A record that is no message at all (a wrapper's envelope, read without the wrapper)
    raises :class:`InvalidMessageError` instead of being left out unseen.
    """
    view = ModelView.of(stored, extras=True)
    if len(view.messages) != len(stored):
        _check_left_out(stored, view.positions)
    messages = view.messages
    for index, position in enumerate(view.positions):
        if messages[index] is not stored[position]:
            messages[index] = _fitted(messages[index], stored[position])
    return view


def _check_left_out(stored: Sequence[Message], positions: list[int]) -> None:
    viewed = set(positions)
    for index, message in enumerate(stored):
        if index not in viewed and message.get("role") not in ROLES:
            raise InvalidMessageError(
                "a stored record is not a message (a wrapper's envelope? read the store"
                " through the wrapper that wrote it)", index=index)


def _written_as(viewed: Message) -> Message:
    return to_canonical(from_canonical(viewed))


def rewrite(stored: Sequence[Message], view: ModelView, new: Sequence[Message]) -> list[Message]:
    """The history to store when LangChain, having read ``view`` (from :func:`view_of`
    over ``stored``), wants it to be ``new`` (canonical, from :func:`to_canonical`).

    Messages LangChain did not change keep their stored form, and what the view left
    out stays (:func:`sessions.view.rewrite_view`): ``list(stored)`` when nothing changed.
    """
    return rewrite_view(stored, view, new, _written_as)
