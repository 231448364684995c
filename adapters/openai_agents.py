"""The OpenAI Agents SDK ``Session`` over any store: ``agents.Runner.run(agent, input, session=...)``.

::

    from agents import Agent, Runner
    from adapters.openai_agents import AgentsSession
    import sessions

    store = sessions.connect()
    session = AgentsSession(store, "user-alice")
    await Runner.run(agent, "Hi, I'm Alice", session=session)

The SDK speaks Responses *items*; the store keeps canonical Chat Completions *messages*,
so LangChain, LlamaIndex and the native runner read the same history. Items are
converted in order (see :func:`items_to_messages` and :func:`messages_to_items`):

====================================  ============================================
Responses item                        canonical message
====================================  ============================================
message, role user/system/developer   same role; ``input_text`` -> ``text`` part,
                                      ``input_image`` (by URL) -> ``image_url``,
                                      ``input_file`` (data or id) -> ``file``,
                                      ``input_audio`` -> ``input_audio``
message, role assistant               assistant; ``output_text`` parts joined by a
                                      newline into ``content``, ``refusal`` -> refusal
function_call (one or several)        ``tool_calls`` of the assistant message just
                                      before them (a new one with ``content: None``
                                      if there is none; text right after such
                                      calls joins their message)
function_call_output                  tool message (``call_id`` -> ``tool_call_id``);
                                      text parts kept
anything else (reasoning, hosted      a *Responses-only* message (below)
tool calls, item references, ...)
====================================  ============================================

Nothing is lost for an Agents SDK reader: when the canonical message cannot reproduce
the items it was made from exactly (item ids, ``status``, annotations, an image given by
file id, a non-text tool output part...), the message also keeps those items under the
extra key ``x_responses_items``, and :meth:`AgentsSession.get_items` returns them as they
were, as long as the message's Chat Completions fields still match them (a message
rewritten by another framework is converted afresh instead). Items with no Chat
Completions form at all are stored one per message as ``{"role": "assistant",
"content": "", "x_responses_only": true, "x_responses_items": [item]}``: other
frameworks must not send these to a model (:func:`sessions.view.model_view` leaves them
out). What other frameworks see is only the canonical part:
images by file id, file URLs and non-text tool outputs are not visible to them.

``get_items(limit)`` returns the last ``limit`` items: it reads the last ``limit``
messages (every message yields at least one item) and keeps the last ``limit`` items
they convert to, so it costs O(limit).
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterable, Mapping
from typing import TYPE_CHECKING, Any

from sessions import InvalidMessageError, MissingDependencyError, Session
from sessions._message import Message, check_session_id
from sessions.view import MODEL_KEYS, RESPONSES_ITEMS_KEY, RESPONSES_ONLY_KEY

try:
    import agents  # noqa: F401 - the extra this adapter belongs to
except ImportError as error:
    raise MissingDependencyError("openai-agents", "agents", feature="adapters.openai_agents") from error

if TYPE_CHECKING:
    from agents.items import TResponseInputItem
    from agents.memory.session_settings import SessionSettings
else:
    TResponseInputItem = dict

__all__ = ["AgentsSession", "items_to_messages", "messages_to_items"]

Item = dict[str, Any]

_INPUT_ROLES = frozenset({"user", "system", "developer"})


# -- content parts ------------------------------------------------------------------------


def _part_to_chat(part: Mapping[str, Any]) -> dict[str, Any] | None:
    """A Responses input part as a Chat Completions part, or None if it has no such form."""
    kind = part.get("type")
    if kind == "input_text" and isinstance(part.get("text"), str):
        return {"type": "text", "text": part["text"]}
    if kind == "input_image" and isinstance(part.get("image_url"), str) and part["image_url"]:
        image: dict[str, Any] = {"url": part["image_url"]}
        if part.get("detail") is not None:
            image["detail"] = part["detail"]
        return {"type": "image_url", "image_url": image}
    if kind == "input_file" and (part.get("file_data") or part.get("file_id")):
        file = {k: part[k] for k in ("file_data", "file_id", "filename") if part.get(k)}
        return {"type": "file", "file": file}
    if kind == "input_audio" and isinstance(part.get("input_audio"), dict):
        return {"type": "input_audio", "input_audio": dict(part["input_audio"])}
    return None


def _part_to_item(part: Mapping[str, Any]) -> dict[str, Any]:
    """A Chat Completions part as a Responses input part."""
    kind = part.get("type")
    if kind == "text":
        return {"type": "input_text", "text": part.get("text", "")}
    if kind == "image_url":
        image = part.get("image_url") or {}
        out: dict[str, Any] = {"type": "input_image", "image_url": image.get("url")}
        if image.get("detail") is not None:
            out["detail"] = image["detail"]
        return out
    if kind == "file":
        return {"type": "input_file", **(part.get("file") or {})}
    if kind == "input_audio":
        return {"type": "input_audio", "input_audio": dict(part.get("input_audio") or {})}
    # A part type Responses does not know (a framework's own): keep its text if any.
    return {"type": "input_text", "text": str(part.get("text", ""))}


def _content_to_chat(content: Any) -> Any:
    if isinstance(content, str) or content is None:
        return content
    converted = (_part_to_chat(p) if isinstance(p, Mapping) else None for p in content)
    return [p for p in converted if p is not None]


def _text_of(parts: Iterable[Any], kinds: tuple[str, ...]) -> list[str]:
    return [p["text"] for p in parts if isinstance(p, Mapping) and p.get("type") in kinds
            and isinstance(p.get("text"), str)]


# -- items -> messages --------------------------------------------------------------------


def _as_dict(item: Any, index: int) -> Item:
    if isinstance(item, Mapping):
        return dict(item)
    dump = getattr(item, "model_dump", None)
    if callable(dump):
        return dict(dump(mode="json", exclude_unset=True))
    raise InvalidMessageError(f"a Responses item must be a dict, not {type(item).__name__}", index=index)


def _is_message(item: Item) -> bool:
    return (item.get("type", "message") == "message" and "role" in item
            and isinstance(item.get("content"), (str, list)))


class _Builder:
    """Folds items into messages, remembering which items made each message."""

    def __init__(self) -> None:
        self.messages: list[Message] = []
        self.assistant: Message | None = None
        self.group: list[Item] = []

    def flush(self) -> None:
        if self.assistant is not None:
            self._emit(self.assistant, self.group)
            self.assistant, self.group = None, []

    def _emit(self, message: Message, items: list[Item]) -> None:
        if _plain_items(message) != items:
            message[RESPONSES_ITEMS_KEY] = items
        self.messages.append(message)

    def add(self, item: Item) -> None:
        kind = item.get("type", "message")
        role = item.get("role")
        if _is_message(item) and role in _INPUT_ROLES:
            self.flush()
            self._emit({"role": role, "content": _content_to_chat(item["content"])}, [item])
        elif _is_message(item) and role == "assistant":
            content = item["content"]
            if isinstance(content, str):
                text: str | None = content
                refusals: list[str] = []
            else:
                parts = [p for p in content if isinstance(p, Mapping)]
                texts = _text_of(parts, ("output_text", "input_text", "text"))
                text = "\n".join(texts) if texts else None
                refusals = [p["refusal"] for p in parts if p.get("type") == "refusal"
                            and isinstance(p.get("refusal"), str)]
            pending = self.assistant
            if (pending is not None and pending.get("tool_calls") and pending["content"] is None
                    and "refusal" not in pending):
                # A streamed turn may list its calls before its text: one assistant
                # message, so the calls stay directly before their results.
                pending["content"] = text
                self.group.append(item)
            else:
                self.flush()
                pending = {"role": "assistant", "content": text}
                self.assistant, self.group = pending, [item]
            if refusals:
                pending["refusal"] = "\n".join(refusals)
        elif kind == "function_call" and isinstance(item.get("call_id"), str):
            if self.assistant is None:
                self.assistant, self.group = {"role": "assistant", "content": None}, []
            self.assistant.setdefault("tool_calls", []).append({
                "id": item["call_id"], "type": "function",
                "function": {"name": item.get("name", ""), "arguments": item.get("arguments") or ""},
            })
            self.group.append(item)
        elif kind == "function_call_output" and isinstance(item.get("call_id"), str):
            self.flush()
            output = item.get("output")
            if not isinstance(output, str):
                output = [{"type": "text", "text": t}
                          for t in _text_of(output if isinstance(output, list) else (),
                                            ("input_text", "output_text", "text"))]
            self._emit({"role": "tool", "tool_call_id": item["call_id"], "content": output}, [item])
        else:
            self.flush()
            self.messages.append({"role": "assistant", "content": "", RESPONSES_ONLY_KEY: True,
                                  RESPONSES_ITEMS_KEY: [item]})


def items_to_messages(items: Iterable[Any]) -> list[Message]:
    """Convert Responses input items (dicts or SDK models) to canonical messages, in order."""
    builder = _Builder()
    for index, item in enumerate(items):
        builder.add(_as_dict(item, index))
    builder.flush()
    return builder.messages


# -- messages -> items --------------------------------------------------------------------


def _plain_items(message: Mapping[str, Any]) -> list[Item]:
    """The items a message converts to when nothing else is known about them."""
    role = message.get("role")
    content = message.get("content")
    if role in _INPUT_ROLES:
        if isinstance(content, str) or content is None:
            return [{"role": role, "content": content or ""}]
        return [{"role": role, "content": [_part_to_item(p) for p in content if isinstance(p, Mapping)]}]
    if role == "tool":
        output: Any = content if isinstance(content, str) or content is None else [
            {"type": "input_text", "text": t} for t in _text_of(content, ("text",))]
        return [{"type": "function_call_output", "call_id": message.get("tool_call_id", ""),
                 "output": output or ""}]
    if role == "function":  # legacy: the function name stands in for the call id
        return [{"type": "function_call_output", "call_id": message.get("name") or "",
                 "output": content if isinstance(content, str) else ""}]
    items: list[Item] = []
    if isinstance(content, list):
        content = "\n".join(_text_of(content, ("text", "output_text")))
    calls = list(message.get("tool_calls") or ())
    legacy = message.get("function_call")
    if isinstance(legacy, Mapping):
        calls.append({"id": legacy.get("name", ""), "function": legacy})
    if message.get("refusal"):
        parts: list[Item] = [{"type": "output_text", "text": content, "annotations": []}] if content else []
        parts.append({"type": "refusal", "refusal": message["refusal"]})
        items.append({"type": "message", "role": "assistant", "id": "__fake_id__",
                      "status": "completed", "content": parts})
    elif content is not None or not calls:
        items.append({"role": "assistant", "content": content or ""})
    for call in calls:
        function = call.get("function") or {}
        items.append({"type": "function_call", "call_id": call.get("id", ""),
                      "name": function.get("name", ""), "arguments": function.get("arguments", "")})
    return items


def _model_view(message: Mapping[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in message.items() if k in MODEL_KEYS}


def _message_items(message: Message) -> list[Item]:
    kept = message.get(RESPONSES_ITEMS_KEY)
    if isinstance(kept, list) and kept and all(isinstance(i, dict) for i in kept):
        if message.get(RESPONSES_ONLY_KEY) is True:
            return kept
        # Use the kept items only while the message still says what they say.
        rebuilt = items_to_messages(kept)
        if len(rebuilt) == 1 and _model_view(rebuilt[0]) == _model_view(message):
            return kept
    return _plain_items(message)


def messages_to_items(messages: Iterable[Message]) -> list[TResponseInputItem]:
    """Convert canonical messages to Responses input items, in order (see the module table)."""
    items: list[Item] = []
    for message in messages:
        items.extend(_message_items(message))
    return items  # type: ignore[return-value]


# -- the Session --------------------------------------------------------------------------


class AgentsSession:
    """An Agents SDK ``Session`` keeping its items in ``store`` under ``session_id``.

    Implements the SDK's ``Session`` protocol (``session_id``, ``session_settings``,
    ``get_items``, ``add_items``, ``pop_item``, ``clear_session``) with the store's async
    methods. ``add_items`` is one atomic append. ``pop_item`` removes the last item: when
    the last message holds several items (an assistant message with several tool calls)
    the message is popped and the rest appended back, two writes protected from
    cancellation but not atomic against a concurrent writer of the same session.
    """

    session_settings: SessionSettings | None

    def __init__(self, store: Session, session_id: str, *,
                 session_settings: SessionSettings | None = None) -> None:
        self.store = store
        self.session_id = check_session_id(session_id, "open")
        self.session_settings = session_settings

    async def get_items(self, limit: int | None = None) -> list[TResponseInputItem]:
        """The last ``limit`` items (all when None), oldest first."""
        if limit is None and self.session_settings is not None:
            limit = self.session_settings.limit
        messages = await self.store.aget(self.session_id, limit=limit)
        items = messages_to_items(messages)
        if limit is None:
            return items
        return items[-limit:] if limit else []

    async def add_items(self, items: list[TResponseInputItem]) -> None:
        """Append the items' messages in one atomic batch."""
        messages = items_to_messages(items)
        await self.store.aappend(self.session_id, messages)

    async def pop_item(self) -> TResponseInputItem | None:
        """Remove and return the most recent item, or None if the session is empty."""
        return await asyncio.shield(self._pop())

    async def _pop(self) -> TResponseInputItem | None:
        message = await self.store.apop(self.session_id)
        if message is None:
            return None
        items = messages_to_items([message])
        if len(items) > 1:
            await self.store.aappend(self.session_id, items_to_messages(items[:-1]))
        return items[-1]

    async def clear_session(self) -> None:
        """Remove every item (the store's ``clear``: the session itself remains)."""
        await self.store.aclear(self.session_id)
