"""Which stored messages a Chat Completions model may see, and in what shape.

The Agents SDK adapter keeps Responses items that have no Chat Completions form
(reasoning, hosted tool calls, ...) as *Responses-only* messages: an assistant message
with empty content whose :data:`RESPONSES_ITEMS_KEY` holds the raw items and whose
:data:`RESPONSES_ONLY_KEY` is ``True``. They exist so an Agents SDK reader gets its
items back without loss; every other adapter must leave them out of what it sends to a
model. :func:`is_responses_only` is the test, :func:`model_messages` the filter.

This module imports no framework, so every adapter can use it.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

__all__ = ["MODEL_KEYS", "RESPONSES_ITEMS_KEY", "RESPONSES_ONLY_KEY", "is_responses_only", "model_messages"]

RESPONSES_ITEMS_KEY = "x_responses_items"
"""Extra key holding the Responses items a message was made from (Agents SDK adapter)."""

RESPONSES_ONLY_KEY = "x_responses_only"
"""Extra key marking a message that only carries Responses items and is never model input."""

# Keys the Chat Completions API accepts on an input message; anything else is ours or
# another framework's bookkeeping and is left out of the request.
MODEL_KEYS = frozenset(
    {"role", "content", "name", "tool_calls", "tool_call_id", "refusal", "audio", "function_call"}
)


def is_responses_only(message: Mapping[str, Any]) -> bool:
    """True if ``message`` carries only Responses items and must not be sent to a model."""
    return message.get(RESPONSES_ONLY_KEY) is True


def model_messages(messages: Iterable[dict[str, Any]]) -> list[dict[str, Any]]:
    """The messages a Chat Completions model may receive, without bookkeeping keys.

    Responses-only messages are dropped; keys the API does not know are removed from a
    copy (messages without such keys are passed through as they are).
    """
    out: list[dict[str, Any]] = []
    for message in messages:
        if message.get(RESPONSES_ONLY_KEY) is True:
            continue
        if message.keys() <= MODEL_KEYS:
            out.append(message)
        else:
            out.append({k: v for k, v in message.items() if k in MODEL_KEYS})
    return out
