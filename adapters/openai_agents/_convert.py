"""Responses items to and from canonical messages (the table in the package docstring)."""

from __future__ import annotations

from collections.abc import Container, Iterable, Mapping
from typing import TYPE_CHECKING, Any

from agents.models.fake_id import FAKE_RESPONSES_ID

from sessions import InvalidMessageError
from sessions._message import Message
from sessions.view import RESPONSES_ITEMS_KEY, RESPONSES_ONLY_KEY, same_meaning

if TYPE_CHECKING:
    from agents.items import TResponseInputItem
else:
    TResponseInputItem = dict

__all__ = [
    "Item", "custom_call_ids", "items_to_messages", "kept_items", "message_items", "messages_to_items",
    "part_of", "plain_items",
]

Item = dict[str, Any]

_INPUT_ROLES = frozenset({"user", "system", "developer"})
# Keys of a message its items decide: a message made from some of another's items
# takes these from the items and every other key from the message.
_ITEM_KEYS = frozenset({"content", "tool_calls", "refusal", "function_call",
                        RESPONSES_ITEMS_KEY, RESPONSES_ONLY_KEY})


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
    """Folds items into messages, remembering which items made each message (unless
    ``keep`` is False: then only the messages' fields are wanted)."""

    def __init__(self, keep: bool = True) -> None:
        self.keep = keep
        self.messages: list[Message] = []
        self.assistant: Message | None = None
        self.group: list[Item] = []
        self.custom: set[str] = set()  # ids of custom tool calls seen so far

    def flush(self) -> None:
        if self.assistant is not None:
            self._emit(self.assistant, self.group)
            self.assistant, self.group = None, []

    def _emit(self, message: Message, items: list[Item]) -> None:
        if self.keep and plain_items(message, self.custom) != items:
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
        elif kind == "custom_tool_call" and isinstance(item.get("call_id"), str) \
                and isinstance(item.get("name"), str) and isinstance(item.get("input"), str):
            if self.assistant is None:
                self.assistant, self.group = {"role": "assistant", "content": None}, []
            self.assistant.setdefault("tool_calls", []).append({
                "id": item["call_id"], "type": "custom",
                "custom": {"name": item["name"], "input": item["input"]},
            })
            self.custom.add(item["call_id"])
            self.group.append(item)
        elif kind in ("function_call_output", "custom_tool_call_output") \
                and isinstance(item.get("call_id"), str):
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

    def build(self, items: Iterable[Any]) -> list[Message]:
        for index, item in enumerate(items):
            self.add(_as_dict(item, index))
        self.flush()
        return self.messages


def items_to_messages(items: Iterable[Any]) -> list[Message]:
    """Convert Responses input items (dicts or SDK models) to canonical messages, in order."""
    return _Builder().build(items)


# -- messages -> items --------------------------------------------------------------------


def custom_call_ids(messages: Iterable[Mapping[str, Any]]) -> set[str]:
    """The ids of the custom tool calls of ``messages`` (their results are custom outputs)."""
    return {call["id"] for message in messages for call in message.get("tool_calls") or ()
            if type(call) is dict and call.get("type") == "custom" and type(call.get("id")) is str}


def _call_item(call: Mapping[str, Any]) -> Item:
    if call.get("type") == "custom":
        custom = call.get("custom") or {}
        return {"type": "custom_tool_call", "call_id": call.get("id", ""),
                "name": custom.get("name", ""), "input": custom.get("input", "")}
    function = call.get("function") or {}
    return {"type": "function_call", "call_id": call.get("id", ""),
            "name": function.get("name", ""), "arguments": function.get("arguments", "")}


def plain_items(message: Mapping[str, Any], custom: Container[str] = frozenset()) -> list[Item]:
    """The items a message converts to when nothing else is known about them.

    ``custom`` holds the ids of custom tool calls: a tool message answering one becomes a
    ``custom_tool_call_output``. Assistant text with tool calls is an output message (as
    the SDK makes one from a Chat Completions reply, with its placeholder id), so the
    SDK's Chat Completions converter sends text and calls as one message.
    """
    role = message.get("role")
    content = message.get("content")
    if role in _INPUT_ROLES:
        if isinstance(content, str) or content is None:
            return [{"role": role, "content": content or ""}]
        return [{"role": role, "content": [_part_to_item(p) for p in content if isinstance(p, Mapping)]}]
    if role == "tool":
        output: Any = content if isinstance(content, str) or content is None else [
            {"type": "input_text", "text": t} for t in _text_of(content, ("text",))]
        call_id = message.get("tool_call_id", "")
        kind = "custom_tool_call_output" if call_id in custom else "function_call_output"
        return [{"type": kind, "call_id": call_id, "output": output or ""}]
    if role == "function":  # legacy: the function name stands in for the call id
        return [{"type": "function_call_output", "call_id": message.get("name") or "",
                 "output": content if isinstance(content, str) else ""}]
    items: list[Item] = []
    if isinstance(content, list):
        content = "\n".join(_text_of(content, ("text", "output_text")))
    audio = message.get("audio")
    if content is None and isinstance(audio, Mapping) and isinstance(audio.get("transcript"), str):
        content = audio["transcript"]  # what the model said, as the model view reads it
    calls = list(message.get("tool_calls") or ())
    legacy = message.get("function_call")
    if isinstance(legacy, Mapping):
        calls.append({"id": legacy.get("name", ""), "function": legacy})
    if message.get("refusal"):
        parts: list[Item] = [{"type": "output_text", "text": content, "annotations": []}] if content else []
        parts.append({"type": "refusal", "refusal": message["refusal"]})
        items.append({"type": "message", "role": "assistant", "id": FAKE_RESPONSES_ID,
                      "status": "completed", "content": parts})
    elif content and calls:
        items.append({"type": "message", "role": "assistant", "id": FAKE_RESPONSES_ID, "status": "completed",
                      "content": [{"type": "output_text", "text": content, "annotations": []}]})
    elif content or not calls:
        items.append({"role": "assistant", "content": content or ""})
    items += [_call_item(call) for call in calls if isinstance(call, Mapping)]
    return items


def kept_items(message: Message) -> list[Item] | None:
    """The Responses items ``message`` keeps, if they still say what the message says.

    A message another framework rewrote keeps them while it means the same
    (:func:`sessions.view.same_meaning`: arguments re-serialised, ``None`` for ``""``,
    one text part for a string); once its meaning changed they are ignored.
    """
    kept = message.get(RESPONSES_ITEMS_KEY)
    if type(kept) is not list or not kept or not all(type(i) is dict for i in kept):
        return None
    if message.get(RESPONSES_ONLY_KEY) is True:
        return kept
    rebuilt = _Builder(keep=False).build(kept)
    if len(rebuilt) != 1:
        return None
    made = rebuilt[0]
    # Most messages are as they were made: the same fields, compared as they are.
    get = message.get
    if (made["content"] == get("content") and made.get("tool_calls") == get("tool_calls")
            and made.get("tool_call_id") == get("tool_call_id") and made.get("refusal") == get("refusal")
            and made["role"] == get("role") and "name" not in message and "function_call" not in message):
        return kept
    return kept if same_meaning(made, message) else None


def message_items(message: Message, custom: Container[str] = frozenset()) -> tuple[list[Item], bool]:
    """The items of one message, and whether they are the items it was made from.

    A Responses-only message whose items are unreadable has none. ``custom``: see
    :func:`plain_items`.
    """
    kept = kept_items(message)
    if kept is not None:
        return kept, True
    if message.get(RESPONSES_ONLY_KEY) is True:
        return [], False
    return plain_items(message, custom), False


def messages_to_items(messages: Iterable[Message]) -> list[TResponseInputItem]:
    """Convert canonical messages to Responses input items, in order (see the module table).

    Every message converts, as it is: use :class:`AgentsSession` for what a model may be
    sent.
    """
    messages = list(messages)
    custom = custom_call_ids(messages)
    items: list[Item] = []
    for message in messages:
        items.extend(message_items(message, custom)[0])
    return items  # type: ignore[return-value]


def part_of(message: Message, items: list[Item]) -> list[Message]:
    """The messages standing for some of ``message``'s items, keeping its other keys.

    What the items decide (content, tool calls, refusal, the kept items) comes from the
    items; every other key of ``message`` (an id, another framework's namespace, usage,
    a name) is kept, since the message is still the same one, only shorter.
    """
    rebuilt = items_to_messages(items)
    if len(rebuilt) != 1 or rebuilt[0]["role"] != message.get("role"):
        return rebuilt
    out = rebuilt[0]
    for key, value in message.items():
        if key not in _ITEM_KEYS and key not in out:
            out[key] = value
    return [out]
