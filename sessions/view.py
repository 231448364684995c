"""The model view: what a Chat Completions model may be sent, made from stored messages.

A store accepts any canonical message, and one history is written by many frameworks:
it may hold Responses items that only the Agents SDK can use, messages with nothing a
model can read (a document given by URL, a content list of parts no model takes), tool
calls whose results were never stored, or a window cut in the middle of a tool exchange.
:func:`model_view` turns such a history into a valid Chat Completions ``messages`` list;
every adapter and the native runner use it wherever they hand history to a model. The
stored history is never changed by viewing it (``Session.get`` stays exact).

The rules, in order:

1. **Responses-only messages are left out**: messages marked ``"x_responses_only":
   true`` (reasoning, hosted tool calls, … stored by the Agents SDK adapter).
2. **Each message is put in its model form.** Content parts a role cannot take are left
   out (a tool result or system message keeps only its text parts, an assistant its
   text and refusal parts, a user message its text, image, audio and file parts);
   malformed parts and tool calls are left out; a ``name`` the API refuses (anything
   but ``[A-Za-z0-9_-]{1,64}``) is left out; assistant ``audio`` is replaced by its
   transcript; ``content: null``, ``[]`` or a list of nothing readable on a tool result
   becomes ``""`` (it still answers its call).
3. **Messages with nothing a model can read are left out**: a user, system or developer
   message with no readable content, an assistant message with no text, refusal or tool
   call, a legacy function message without a valid name.
4. **Tool exchanges are made whole.** An assistant message's tool calls must be answered
   by the tool messages right after it: calls without a result there are removed from
   the message (and the message left out if nothing remains), and tool results that do
   not answer a call of the assistant message just before them (orphans, duplicates)
   are left out. So a view never starts inside a tool exchange and never ends with
   unanswered tool calls. Assistant messages that only call tools, one after another
   before any result (parallel calls a writer stored apart, as the Agents SDK does
   around a reasoning item), are one exchange: their calls are viewed in the first,
   which stands for the others.
5. **Windows drop orphans rather than grow.** ``limit=N`` keeps the last ``N`` messages
   given *before* the rules apply, so a view of ``limit=N`` never holds more than ``N``
   messages: when the window starts between an assistant's tool calls and their results,
   those results are left out instead of reaching back for the call.

With ``extras=False`` (the default) messages keep only what the Chat Completions API
accepts, down to the keys of parts and tool calls: the list can be sent as it is. With
``extras=True`` messages keep every other key (a framework's namespace, ids): adapters
use this and convert the result into their framework's objects. Messages that need no
change are returned as the same objects, not copies; a message that is changed is a
copy, never the stored dict.

Cost: one pass, O(messages); a plain text message costs one type check and a key count.
"""

from __future__ import annotations

import difflib
import json
import re
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any

from ._errors import CorruptRecordError
from ._message import Message

__all__ = [
    "MODEL_KEYS",
    "RESPONSES_ITEMS_KEY",
    "RESPONSES_ONLY_KEY",
    "ModelView",
    "is_responses_only",
    "model_message",
    "model_view",
    "rewrite_view",
    "same_meaning",
]

RESPONSES_ITEMS_KEY = "x_responses_items"
"""Extra key holding the Responses items a message was made from (Agents SDK adapter)."""

RESPONSES_ONLY_KEY = "x_responses_only"
"""Extra key marking a message that only carries Responses items and is never model input."""

MODEL_KEYS = frozenset({"role", "content", "name", "tool_calls", "tool_call_id", "refusal", "function_call"})
"""Keys of a message a Chat Completions request takes (``audio`` becomes its transcript)."""

_NAME = re.compile(r"[A-Za-z0-9_-]{1,64}")
_DETAILS = frozenset({"auto", "low", "high", "original"})
_AUDIO_FORMATS = frozenset({"wav", "mp3"})
_PLAIN_ROLES = frozenset({"user", "system", "developer"})
# Keys each role's message takes in a request.
_KEYS_OF = {
    "user": frozenset({"role", "content", "name"}),
    "system": frozenset({"role", "content", "name"}),
    "developer": frozenset({"role", "content", "name"}),
    "assistant": frozenset({"role", "content", "name", "tool_calls", "refusal", "function_call"}),
    "tool": frozenset({"role", "content", "tool_call_id"}),
    "function": frozenset({"role", "content", "name"}),
}
# Keys of a request a role's message does not take (left out of its model form).
_OTHER_MODEL_KEYS = {role: MODEL_KEYS - keys for role, keys in _KEYS_OF.items()}
# Content part types each role takes.
_PARTS_OF = {
    "user": frozenset({"text", "image_url", "input_audio", "file"}),
    "system": frozenset({"text"}),
    "developer": frozenset({"text"}),
    "assistant": frozenset({"text", "refusal"}),
    "tool": frozenset({"text"}),
}


def is_responses_only(message: Mapping[str, Any]) -> bool:
    """True if ``message`` carries only Responses items and must not be sent to a model."""
    return message.get(RESPONSES_ONLY_KEY) is True


# -- one message ----------------------------------------------------------------------------


def _part(part: object, allowed: frozenset[str]) -> dict[str, Any] | None:
    """The model form of one content part, or None if the role cannot take it."""
    if type(part) is not dict:
        return None
    kind = part.get("type")
    if kind not in allowed:
        return None
    if kind == "text":
        text = part.get("text")
        return {"type": "text", "text": text} if type(text) is str else None
    if kind == "refusal":
        refusal = part.get("refusal")
        return {"type": "refusal", "refusal": refusal} if type(refusal) is str else None
    body = part.get(kind)
    if type(body) is not dict:
        return None
    if kind == "image_url":
        url = body.get("url")
        if type(url) is not str or not url:
            return None
        image: dict[str, Any] = {"url": url}
        if body.get("detail") in _DETAILS:
            image["detail"] = body["detail"]
        return {"type": "image_url", "image_url": image}
    if kind == "input_audio":
        data, audio_format = body.get("data"), body.get("format")
        if type(data) is not str or not data or audio_format not in _AUDIO_FORMATS:
            return None
        return {"type": "input_audio", "input_audio": {"data": data, "format": audio_format}}
    # file
    file = {key: body[key] for key in ("file_data", "file_id", "filename")
            if type(body.get(key)) is str and body[key]}
    if "file_data" not in file and "file_id" not in file:
        return None
    return {"type": "file", "file": file}


def _content(content: object, role: str) -> tuple[Any, bool]:
    """(model form of ``content``, whether it changed); None when nothing is readable."""
    if type(content) is str:
        return content, False
    if type(content) is not list:
        return None, content is not None
    allowed = _PARTS_OF[role]
    parts = [p for p in (_part(item, allowed) for item in content) if p is not None]
    if not parts:
        return None, True
    return parts, parts != content


def _tool_call(call: object) -> dict[str, Any] | None:
    """The model form of one tool call (``call`` itself if it is one), or None if it is malformed."""
    if type(call) is not dict:
        return None
    if len(call) == 3 and call.get("type") == "function":
        function = call.get("function")
        if type(function) is dict and len(function) == 2 and type(function.get("name")) is str \
                and function["name"] and type(function.get("arguments")) is str \
                and type(call.get("id")) is str and call["id"]:
            return call
    call_id = call.get("id")
    if type(call_id) is not str or not call_id:
        return None
    kind = call.get("type", "function")
    body = call.get(kind) if type(kind) is str else None
    if type(body) is not dict or type(body.get("name")) is not str or not body["name"]:
        return None
    if kind == "function" and type(body.get("arguments")) is str:
        return {"id": call_id, "type": "function",
                "function": {"name": body["name"], "arguments": body["arguments"]}}
    if kind == "custom" and type(body.get("input")) is str:
        return {"id": call_id, "type": "custom", "custom": {"name": body["name"], "input": body["input"]}}
    return None


def _says(content: object) -> bool:
    """True if assistant ``content`` (in model form) holds text or a refusal that is not empty."""
    if type(content) is str:
        return content != ""
    return type(content) is list and any(part.get("text") or part.get("refusal") for part in content)


def _function_call(value: object) -> dict[str, Any] | None:
    if type(value) is not dict or type(value.get("name")) is not str or not value["name"] \
            or type(value.get("arguments")) is not str:
        return None
    return {"name": value["name"], "arguments": value["arguments"]}


def _name(message: Mapping[str, Any], out: dict[str, Any]) -> bool:
    """Copy a valid ``name`` into ``out``; True if the message had one the API refuses."""
    name = message.get("name")
    if type(name) is str and _NAME.fullmatch(name):
        out["name"] = name
        return False
    return "name" in message


def _function_form(message: Mapping[str, Any]) -> tuple[dict[str, Any] | None, bool]:
    """A legacy function message: it needs a valid name; content is text or null."""
    name = message.get("name")
    if type(name) is not str or not _NAME.fullmatch(name):
        return None, True
    content = message.get("content")
    changed = False
    if type(content) is list:
        content = "\n".join(p["text"] for p in content if type(p) is dict and type(p.get("text")) is str)
        changed = True
    elif content is not None and type(content) is not str:
        content, changed = None, True
    return {"role": "function", "content": content, "name": name}, changed or "content" not in message


def _assistant_form(message: Mapping[str, Any], content: Any, changed: bool,
                    extras: bool) -> tuple[dict[str, Any] | None, bool]:
    out: dict[str, Any] = {"role": "assistant"}
    audio = message.get("audio")
    if audio is not None:
        transcript = audio.get("transcript") if type(audio) is dict else None
        if content is None and type(transcript) is str and transcript:
            content, changed = transcript, True
        changed = changed or not extras
    if content is not None or "content" in message:
        out["content"] = content
    changed = _name(message, out) or changed
    calls = message.get("tool_calls")
    if calls is not None:
        kept = [c for c in map(_tool_call, calls) if c is not None] if type(calls) is list else []
        if kept:
            out["tool_calls"] = kept
        changed = changed or not kept or kept != calls
    refusal = message.get("refusal")
    if type(refusal) is str and refusal:
        out["refusal"] = refusal
    elif refusal is not None:
        changed = True
    if "function_call" in message:
        legacy = _function_call(message["function_call"])
        if legacy is not None:
            out["function_call"] = legacy
        changed = changed or legacy != message["function_call"]
    if not _says(content) and "tool_calls" not in out and "refusal" not in out and "function_call" not in out:
        return None, True  # nothing a model can read
    return out, changed


def _model_form(message: Message, extras: bool) -> Message | None:
    """One message in its model form (tool calls not yet paired), or None to leave it out.

    Returns ``message`` itself when nothing changes.
    """
    role = message.get("role")
    out: dict[str, Any] | None
    if role == "function":
        out, changed = _function_form(message)
    elif role in _PARTS_OF:
        content, changed = _content(message.get("content"), role)
        if role == "assistant":
            out, changed = _assistant_form(message, content, changed, extras)
        else:
            if content is None:
                if role != "tool":
                    return None  # nothing a model can read
                content, changed = "", True
            out = {"role": role, "content": content}
            if role == "tool":
                call_id = message.get("tool_call_id")
                if type(call_id) is not str or not call_id:
                    return None
                out["tool_call_id"] = call_id
                changed = changed or "name" in message
            else:
                changed = _name(message, out) or changed
    else:
        return None
    if out is None:
        return None
    if extras:
        if not changed and message.keys().isdisjoint(_OTHER_MODEL_KEYS[role]):
            return message
        for key, value in message.items():
            if key not in MODEL_KEYS:
                out[key] = value
        return out
    if not changed and message.keys() <= _KEYS_OF[role]:
        return message
    return out


def model_message(message: Message, *, extras: bool = False) -> Message | None:
    """The model form of one message (rules 1-3), or None if it is left out.

    Tool calls are not paired here: use it for a message whose exchange is known to be
    whole (a reply just received), :func:`model_view` for a history.
    """
    if message.get(RESPONSES_ONLY_KEY) is True:
        return None
    return _model_form(message, extras)


# -- the view -------------------------------------------------------------------------------


class ModelView:
    """A model view with where each of its messages came from.

    ``messages[i]`` is the model form of ``source[positions[i]]``, the message list the
    view was made from; ``start`` is where the viewed window begins in that list (0
    without a limit). Adapters that write a history back use the positions to keep what
    the view left out (see :func:`rewrite_view`).

    ``ends_open`` is True when the source ends inside a tool exchange (an assistant
    message with tool calls, followed by nothing but tool results and messages a model
    never sees). Only then can messages appended to the source change how what is
    already there is viewed: otherwise the view of ``source + more`` is this view
    followed by the view of ``more`` alone.
    """

    __slots__ = ("ends_open", "messages", "positions", "size", "start")

    def __init__(self, messages: list[Message], positions: list[int], size: int, start: int = 0,
                 *, ends_open: bool = False) -> None:
        self.messages = messages
        self.positions = positions
        self.size = size
        self.start = start
        self.ends_open = ends_open

    def __repr__(self) -> str:
        return f"ModelView({len(self.messages)} of {self.size} messages)"

    def span(self, start: int, stop: int) -> tuple[int, int]:
        """The source range ``[first, end)`` of viewed messages ``start`` to ``stop - 1``
        with what the view left out that goes with them: a left-out message goes with the
        viewed message after it, and after the last one with that one (``start < stop``)."""
        first = self.positions[start - 1] + 1 if start else self.start
        end = self.size if stop == len(self.positions) else self.positions[stop - 1] + 1
        return first, end

    @classmethod
    def of(cls, messages: Iterable[Message], *, limit: int | None = None,
           extras: bool = False) -> ModelView:
        """The view :func:`model_view` returns, with ``positions`` into ``messages``."""
        whole = messages if isinstance(messages, Sequence) else list(messages)
        source = whole if limit is None else (whole[-limit:] if limit > 0 else [])
        view = _build(source, extras)
        skipped = len(whole) - len(source)
        if skipped:
            view.positions = [p + skipped for p in view.positions]
            view.size, view.start = len(whole), skipped
        return view


def _plain_calls(calls: object) -> bool:
    """True if ``calls`` is a non-empty list of tool calls already in their model form."""
    return type(calls) is list and bool(calls) and all(_tool_call(call) is call for call in calls)


def _in_model_form(message: Message, role: object, content: object, size: int) -> bool:
    """True for the common messages that are their own model form (checked cheaply)."""
    if size == 2:
        return type(content) is str and (role in _PLAIN_ROLES or (role == "assistant" and content != ""))
    if size != 3:
        return False
    if role == "tool":
        call_id = message.get("tool_call_id")
        return type(content) is str and type(call_id) is str and call_id != ""
    return role == "assistant" and (content is None or type(content) is str) \
        and _plain_calls(message.get("tool_calls"))


def _close_exchange(out: list[Message], at: list[int], index: int, asks: Message,
                    answers: list[tuple[int, Message]], wanted: set[str]) -> None:
    """Add an assistant message with tool calls and the results that answer them."""
    calls = asks["tool_calls"]
    if wanted:  # calls without a result right after them are removed
        seen: set[str] = set()
        kept = []
        for call in calls:
            if call["id"] not in wanted and call["id"] not in seen:
                seen.add(call["id"])
                kept.append(call)
        if kept:
            asks = {**asks, "tool_calls": kept}
        else:
            if not (_says(asks.get("content")) or asks.get("refusal") or asks.get("function_call")):
                return  # nothing left a model can read
            asks = {k: v for k, v in asks.items() if k != "tool_calls"}
            asks.setdefault("content", None)
    elif len(answers) != len(calls):  # a call id repeated in one message: the first stays
        first: dict[str, Message] = {}
        for call in calls:
            first.setdefault(call["id"], call)
        asks = {**asks, "tool_calls": list(first.values())}
    out.append(asks)
    at.append(index)
    for position, answer in answers:
        out.append(answer)
        at.append(position)


# Keys that make a text message of a role more than its text (or not model input):
# request keys its role does not take included.
_NOT_PLAIN = {role: _OTHER_MODEL_KEYS[role] | {"name", RESPONSES_ONLY_KEY} for role in _PARTS_OF}
_NOT_PLAIN["assistant"] = _NOT_PLAIN["assistant"] | {"tool_calls", "refusal", "function_call", "audio"}


def _plain_with_extras(message: Message, role: str) -> bool:
    """True if a text message of ``role`` is its own model form with extras kept."""
    return message.keys().isdisjoint(_NOT_PLAIN[role])


def _more_calls(model: Message) -> bool:
    """True for an assistant message (in model form) that only calls tools: when an
    exchange's calls are still waiting for their results, it adds calls to it."""
    return bool(model.get("tool_calls")) and not _says(model.get("content")) \
        and not model.get("refusal") and not model.get("function_call")


def _build(source: Sequence[Message], extras: bool) -> ModelView:
    out: list[Message] = []
    at: list[int] = []
    add, mark = out.append, at.append
    # An assistant message with tool calls waits here until its results are in.
    asks: Message | None = None
    asked_at = 0
    answers: list[tuple[int, Message]] = []
    wanted: set[str] = set()
    for index, message in enumerate(source):
        content = message.get("content")
        role = message.get("role")
        size = len(message)
        # The fast path: a text message outside a tool exchange, the common case (with
        # extras, keys a model never sees do not matter).
        if asks is None and type(content) is str \
                and (role in _PLAIN_ROLES or (role == "assistant" and content != "")) \
                and (size == 2 or (extras and _plain_with_extras(message, role))):
            add(message)
            mark(index)
            continue
        model: Message
        if _in_model_form(message, role, content, size):
            model = message
        elif message.get(RESPONSES_ONLY_KEY) is True:
            continue  # invisible, and no part of a tool exchange
        elif "role" not in message:
            raise CorruptRecordError(
                "a stored record is not a message (a compression or encryption envelope?):"
                " read the store through the wrapper that wrote it", operation="view")
        else:
            form = _model_form(message, extras)
            if form is None:
                continue
            model, role = form, form["role"]
        if role == "tool":
            if asks is not None:
                call_id = model["tool_call_id"]
                if call_id in wanted:
                    wanted.discard(call_id)
                    answers.append((index, model))
            continue  # otherwise an orphan
        if asks is not None:
            if not answers and role == "assistant" and _more_calls(model):
                # Parallel calls the writer stored apart (the Agents SDK keeps a reasoning
                # item between two function calls): one exchange, the calls in its first
                # message, which stands for this one too.
                known = {call["id"] for call in asks["tool_calls"]}
                more = [call for call in model["tool_calls"] if call["id"] not in known]
                if more:
                    asks = {**asks, "tool_calls": [*asks["tool_calls"], *more]}
                    wanted.update(call["id"] for call in more)
                continue
            if wanted or len(answers) != len(asks["tool_calls"]):
                _close_exchange(out, at, asked_at, asks, answers, wanted)
            else:  # every call answered once: the exchange is whole as it is
                add(asks)
                mark(asked_at)
                for answer_at, answer in answers:
                    add(answer)
                    mark(answer_at)
            asks = None
        if role == "assistant" and model.get("tool_calls"):
            asks, asked_at, answers = model, index, []
            wanted = {call["id"] for call in model["tool_calls"]}
            continue
        add(model)
        mark(index)
    if asks is not None:
        _close_exchange(out, at, asked_at, asks, answers, wanted)
    return ModelView(out, at, len(source), ends_open=asks is not None)


def model_view(messages: Iterable[Message], *, limit: int | None = None,
               extras: bool = False) -> list[Message]:
    """The valid Chat Completions ``messages`` list for a stored history (rules above).

    ``limit=N`` views only the last ``N`` of ``messages`` and may return fewer (orphaned
    tool results at the start of the window are dropped, never fetched). ``extras=True``
    keeps keys the API does not know (for adapters). :meth:`ModelView.of` gives the same
    view with where each message came from.
    """
    return ModelView.of(messages, limit=limit, extras=extras).messages


# -- meaning --------------------------------------------------------------------------------


def _arguments(text: object) -> object:
    if type(text) is str:
        try:
            return json.loads(text)
        except ValueError:
            return text
    return text


def _normal(message: Message) -> dict[str, Any]:
    """The model form with equivalent spellings made equal, for comparison."""
    model = _model_form(message, extras=False)
    if model is None:
        return {"role": message.get("role"), "unreadable": True}
    out = dict(model)
    content = out.get("content")
    if type(content) is list and len(content) == 1 and content[0]["type"] == "text":
        out["content"] = content[0]["text"]
    if out.get("content") == "":
        out["content"] = None
    calls = out.get("tool_calls")
    if calls:
        out["tool_calls"] = [
            {**call, "function": {**call["function"], "arguments": _arguments(call["function"]["arguments"])}}
            if call["type"] == "function" else call
            for call in calls
        ]
    return out


def same_meaning(a: Message, b: Message) -> bool:
    """True if ``a`` and ``b`` say the same thing to a model.

    Compares their model forms, with equivalent spellings equal: ``content`` ``None`` and
    ``""``, one text part and a string, tool-call ``arguments`` that are the same JSON
    value (``'{"a":1}'`` and ``'{"a": 1}'``), a tool call without ``type`` and one with
    ``"function"``. Keys a model never sees (ids, namespaces) are not compared.
    """
    if a is b:
        return True
    return _normal(a) == _normal(b)


# -- writing a viewed history back ----------------------------------------------------------


def _key(message: Message) -> str:
    return json.dumps(message, sort_keys=True, ensure_ascii=False)


def rewrite_view(stored: Sequence[Message], view: ModelView, new: Sequence[Message],
                 written_as: Callable[[Message], Message]) -> list[Message]:
    """The history to store when a framework writes back ``new`` after reading ``view``.

    ``view`` was made (:meth:`ModelView.of`) from ``stored``; ``new`` is what the
    framework wants the viewed history to be, as canonical messages; ``written_as(m)``
    is what the framework writes for a viewed message ``m`` it read and did not change
    (its round trip). ``new`` is matched in order against the viewed messages' round
    trips (the runs equal at both ends first, then the longest common subsequence of
    the middle), so wherever they are:

    * a viewed message the framework did not change keeps its stored form (every other
      framework's keys with it), together with what the view left out that goes with it;
    * everything else in ``new`` is written as it is, and viewed messages it does not
      keep are removed, with what the view left out that goes with them.

    What the view left out (Responses items, unreadable messages, unanswered calls) goes
    with the viewed message after it, and after the last one, with that one. A windowed
    view (``view.start > 0``) never touches what lies before its first viewed message:
    results of a call outside the window belong to it. Returns the whole new history
    for ``stored``: ``list(stored)`` when nothing changed; ``new`` after everything
    when the view showed nothing.
    """
    viewed = view.messages
    if not viewed:
        return [*stored, *new]
    read_keys = [_key(written_as(message)) for message in viewed]
    new_keys = [_key(message) for message in new]
    if read_keys == new_keys:
        return list(stored)
    size = min(len(read_keys), len(new_keys))
    head = 0
    while head < size and read_keys[head] == new_keys[head]:
        head += 1
    tail = 0
    while tail < size - head and read_keys[-1 - tail] == new_keys[-1 - tail]:
        tail += 1
    matcher = difflib.SequenceMatcher(None, read_keys[head:len(read_keys) - tail],
                                      new_keys[head:len(new_keys) - tail], autojunk=False)
    blocks = [(0, 0, head)] if head else []
    blocks += [(head + i, head + j, n) for i, j, n in matcher.get_matching_blocks() if n]
    if tail:
        blocks.append((len(read_keys) - tail, len(new_keys) - tail, tail))
    floor = view.positions[0] if view.start else 0
    out: list[Message] = list(stored[:floor])
    new_at = 0
    for i, j, n in blocks:
        out.extend(new[new_at:j])  # new or changed messages take the place of those unmatched
        first, end = view.span(i, i + n)
        out.extend(stored[max(first, floor):end])
        new_at = j + n
    out.extend(new[new_at:])
    return out
