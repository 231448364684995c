"""The items of a stored history a model may be sent: a window made valid.

``get_items`` hands history to a model, through the Responses API or, with the SDK's
Chat Completions model, as Chat Completions messages. Both refuse one side of a tool
exchange without the other, so a window of the last N items must not start with the
result of a call it cut off, nor end with calls never answered; the Responses API also
refuses a reasoning item without the item that followed it. The canonical part of the
window goes through the model view (:class:`sessions.view.ModelView`): it decides which
messages a model can read and which tool calls are answered. What the view cannot see,
the Responses-only items, keeps the Responses API's own pairing rules here.
"""

from __future__ import annotations

from collections.abc import Sequence

from sessions._message import Message
from sessions.view import RESPONSES_ONLY_KEY, ModelView, model_message

from ._convert import Item, custom_call_ids, message_items, part_of, plain_items

__all__ = ["Window"]

# Responses items that call a tool, and the item type of their result (matched by call_id).
_OUTPUT_OF = {
    "function_call": "function_call_output",
    "custom_tool_call": "custom_tool_call_output",
    "computer_call": "computer_call_output",
    "local_shell_call": "local_shell_call_output",
    "shell_call": "shell_call_output",
    "apply_patch_call": "apply_patch_call_output",
    "tool_search_call": "tool_search_output",
}
_CALL_OF = {output: call for call, output in _OUTPUT_OF.items()}


def _call_id(item: Item) -> object:
    """The call id of a function or custom tool call item, else None."""
    return item.get("call_id") if item.get("type") in ("function_call", "custom_tool_call") else None


def _is_reasoning(item: Item) -> bool:
    return item.get("type") == "reasoning"


class Window:
    """The last ``limit`` items of ``messages`` (all with None), made valid model input.

    ``messages`` are the stored messages read for the window, oldest first; to know
    whether the window cut a reasoning item from the item it produced, read one message
    more than ``limit``. The rules:

    * messages a model cannot read (written by other frameworks: a document by URL, a
      thinking-only message) give no items; Responses-only items and Agents SDK messages
      whose items are valid Responses input stay;
    * tool exchanges are made whole, as the model view makes them: results whose call
      is outside the window and calls without a result are left out (the window drops
      them rather than reaching back, so it may hold fewer than ``limit`` items);
    * Responses-only tool items (``computer_call``, ``custom_tool_call``, …) pair with
      their outputs the same way, an ``mcp_approval_response`` needs its request;
    * a reasoning item stays only with the item that followed it; an item whose
      reasoning the window cut off loses its ``id`` (the Responses API ties an item id
      to its reasoning).

    ``items`` is the result; ``complete`` says whether it covers the whole history (it
    may hold fewer than ``limit`` items and still not); ``hidden_tail()`` gives back
    what it left out after its last item (calls still waiting for their result), as
    messages.
    """

    __slots__ = ("complete", "custom", "entries", "items", "last", "messages", "owner")

    def __init__(self, messages: Sequence[Message], limit: int | None) -> None:
        self.messages = messages
        # Every item of the messages read, and the index of the message it belongs to.
        self.entries: list[Item] = []
        self.owner: list[int] = []
        exact: list[bool] = []
        starts: list[int] = []
        self.custom = custom_call_ids(messages)
        for index, message in enumerate(messages):
            items, is_exact = message_items(message, self.custom)
            starts.append(len(self.entries))
            exact.append(is_exact)
            self.entries += items
            self.owner += [index] * len(items)
        starts.append(len(self.entries))
        cut = 0 if limit is None else max(0, len(self.entries) - limit)
        # Whether the window holds every item of the history: the messages read were all
        # there are (fewer than a reader of limit + 1 asked for) and none was cut.
        self.complete = limit is None or (cut == 0 and len(messages) <= limit and limit > 0)
        items, sources, responses_only = self._choose(cut, starts, exact)
        if responses_only:  # the model view paired everything else
            items, sources = self._pair(items, sources)
            items, sources = self._reason(items, sources, cut)
        if cut and items and _is_reasoning(self.entries[cut - 1]):
            items[0] = self._cut_from_reasoning(items[0], sources[0], cut)
        self.items = items
        # The last entry the window shows: what follows it is the hidden tail.
        self.last = max(sources, default=-1)

    def _choose(self, cut: int, starts: list[int], exact: list[bool]) -> tuple[list[Item], list[int], bool]:
        """The window's items the model view keeps, each with the last entry it stands
        for, and whether any is a Responses-only item."""
        entries, messages = self.entries, self.messages
        items: list[Item] = []
        sources: list[int] = []
        responses_only = False
        if cut >= len(entries):
            return items, sources, responses_only
        first = self.owner[cut]
        window: list[Message] = []
        for index in range(first, len(messages)):
            message = messages[index]
            if index == first and cut > starts[index]:  # the window starts inside it
                parts = part_of(message, entries[cut:starts[index + 1]])
                message = parts[0] if len(parts) == 1 else {"role": "assistant", "content": None}
            window.append(message)
        view = ModelView.of(window, extras=True)
        viewed = dict(zip(view.positions, view.messages, strict=True))
        # Calls the view shows, and those whose items are in already: the view shows
        # parallel calls stored apart in the first of their messages.
        shown_calls = {call["id"] for seen in view.messages for call in seen.get("tool_calls") or ()}
        given: set[object] = set()
        for offset, message in enumerate(window):
            index = first + offset
            low, high = max(cut, starts[index]), starts[index + 1]
            seen = viewed.get(offset)
            if seen is None:
                # Left out of the view: only items valid as Responses input stay.
                if not exact[index]:
                    continue
                if message.get(RESPONSES_ONLY_KEY) is True:
                    responses_only = True
                elif message.get("tool_calls"):  # its calls may be shown with an earlier message's
                    merged = [e for e in range(low, high) if _call_id(entries[e]) in shown_calls
                              and _call_id(entries[e]) not in given]
                    given.update(_call_id(entries[e]) for e in merged)
                    items += [entries[e] for e in merged]
                    sources += merged
                    continue
                elif message.get("role") == "tool" or model_message(message, extras=True) is not None:
                    continue
                items += entries[low:high]
                sources += range(low, high)
                continue
            kept = range(low, high)
            if seen is not message and message.get("tool_calls"):
                answered = {call["id"] for call in seen.get("tool_calls") or ()}
                kept = [e for e in kept if entries[e].get("type") not in ("function_call", "custom_tool_call")
                        or entries[e].get("call_id") in answered]  # type: ignore[assignment]
            if exact[index] or seen is message:
                items += [entries[e] for e in kept]
                sources += kept
                given.update(_call_id(entries[e]) for e in kept)
            elif kept:  # another framework's message: the items of its model form
                made = plain_items(seen, self.custom)
                items += made
                sources += [kept[-1]] * len(made)
                given.update(_call_id(item) for item in made)
        return items, sources, responses_only

    @staticmethod
    def _pair(items: list[Item], sources: list[int]) -> tuple[list[Item], list[int]]:
        """Leave out tool results without their call before them, calls without a result
        after them, and approval responses without their request."""
        calls: set[tuple[str, object]] = set()
        requests: set[object] = set()
        keep = [True] * len(items)
        for position, item in enumerate(items):
            kind = item.get("type")
            if kind in _OUTPUT_OF:
                calls.add((kind, item.get("call_id")))
            elif kind in _CALL_OF and (_CALL_OF[kind], item.get("call_id")) not in calls:
                keep[position] = False
            elif kind == "mcp_approval_request":
                requests.add(item.get("id"))
            elif kind == "mcp_approval_response" and item.get("approval_request_id") not in requests:
                keep[position] = False
        answered: set[tuple[str, object]] = set()
        for position in range(len(items) - 1, -1, -1):
            item = items[position]
            kind = item.get("type")
            if not keep[position]:
                continue
            if kind in _CALL_OF:
                answered.add((_CALL_OF[kind], item.get("call_id")))
            elif kind in _OUTPUT_OF and (kind, item.get("call_id")) not in answered:
                keep[position] = False
        return ([item for item, k in zip(items, keep, strict=True) if k],
                [source for source, k in zip(sources, keep, strict=True) if k])

    def _reason(self, items: list[Item], sources: list[int], cut: int) -> tuple[list[Item], list[int]]:
        """Keep a reasoning item only with the item that followed it, and not when the
        window cut off the run of reasoning it belongs to."""
        entries = self.entries
        shown = set(sources)
        follower: dict[int, int] = {}  # a reasoning entry's next entry that is not reasoning
        following = len(entries)
        for index in range(len(entries) - 1, cut - 1, -1):
            if _is_reasoning(entries[index]):
                follower[index] = following
            else:
                following = index
        cut_run = cut > 0 and _is_reasoning(entries[cut - 1])
        kept_items: list[Item] = []
        kept_sources: list[int] = []
        for item, source in zip(items, sources, strict=True):
            if source in follower and (follower[source] not in shown or (
                    cut_run and all(_is_reasoning(entries[e]) for e in range(cut, source)))):
                continue
            kept_items.append(item)
            kept_sources.append(source)
        return kept_items, kept_sources

    def _cut_from_reasoning(self, item: Item, source: int, cut: int) -> Item:
        """The window's first item without its id if the window cut off the reasoning
        item that produced it."""
        if "id" not in item or not all(_is_reasoning(self.entries[e]) for e in range(cut, source)):
            return item
        return {key: value for key, value in item.items() if key != "id"}

    def hidden_tail(self) -> list[Message]:
        """The messages standing for the items after the window's last one, as stored."""
        tail: list[Message] = []
        position = self.last + 1
        while position < len(self.entries):
            index = self.owner[position]
            end = position
            while end < len(self.entries) and self.owner[end] == index:
                end += 1
            message = self.messages[index]
            items = self.entries[position:end]
            whole = position == 0 or self.owner[position - 1] != index
            tail.extend([message] if whole else part_of(message, items))
            position = end
        return tail
