"""The canonical message: validation at the boundary, encoding to stored records.

A message is a JSON-compatible ``dict`` in the OpenAI Chat Completions format. Every
backend stores a message as one *record*: the message's compact JSON text. Validation
and encoding happen together, once, before anything is written, so a batch with one bad
message stores nothing.

Besides messages, a store may hold *envelopes*: records written by a wrapper
(compression, encryption). An envelope is a dict with the single key ``"envelope"``
holding a dict with an integer version ``"v"``. Because it has no ``"role"`` it can
never be mistaken for a message, and a message can never be mistaken for it.
"""

from __future__ import annotations

import json
import json.scanner
import math
from collections.abc import Iterable, Mapping, Sequence
from datetime import datetime
from typing import Any

from ._errors import (
    CorruptRecordError,
    InvalidArgumentError,
    InvalidMessageError,
    InvalidSessionIdError,
    shown,
)

__all__ = [
    "ENVELOPE_KEY",
    "MAX_SESSION_ID_BYTES",
    "ROLES",
    "Message",
    "check_cutoff",
    "check_limit",
    "check_session_id",
    "decode_record",
    "decode_records",
    "encode_message",
    "encode_messages",
    "is_envelope",
    "is_listable_id",
]

Message = dict[str, Any]
"""A canonical message (``openai.types.chat.ChatCompletionMessageParam`` as a dict)."""

ROLES = frozenset({"system", "developer", "user", "assistant", "tool", "function"})
ENVELOPE_KEY = "envelope"
MAX_SESSION_ID_BYTES = 1024
"""Longest accepted session id, in UTF-8 bytes: it must fit every backend's key index."""

_MAX_DEPTH = 64
# A limit above this is "everything": no store holds more, and every driver can take it.
_MAX_LIMIT = 2**53
_encoder = json.JSONEncoder(ensure_ascii=False, separators=(",", ":"), check_circular=False)
_decoder = json.JSONDecoder()
_decode = _decoder.decode
# The decoder's scanner parses one JSON value starting at an index and says where it
# ended; decode() wraps it in whitespace handling that our compact records never need.
_scan = json.scanner.make_scanner(_decoder)  # type: ignore[arg-type]


def check_session_id(session_id: object, operation: str) -> str:
    """Return ``session_id`` if every backend can store it under exactly that id.

    Accepted: any non-empty ``str`` without NUL characters or lone surrogates, at most
    :data:`MAX_SESSION_ID_BYTES` bytes in UTF-8. Ids are opaque: ``../x`` or
    ``/etc/passwd`` are ordinary ids, never paths. Anything else raises
    :class:`InvalidSessionIdError`.
    """
    if type(session_id) is not str:
        raise InvalidSessionIdError(
            f"session id must be a str, not {type(session_id).__name__}", operation=operation
        )
    if not session_id:
        raise InvalidSessionIdError("session id must not be empty", session_id="", operation=operation)
    if "\x00" in session_id:
        raise InvalidSessionIdError(
            "session id must not contain NUL characters", session_id=session_id, operation=operation
        )
    try:
        size = len(session_id.encode("utf-8"))
    except UnicodeEncodeError:
        raise InvalidSessionIdError(
            "session id must be valid Unicode (no lone surrogates)",
            session_id=session_id.encode("utf-8", "backslashreplace").decode("ascii"),
            operation=operation,
        ) from None
    if size > MAX_SESSION_ID_BYTES:
        raise InvalidSessionIdError(
            f"session id is {size} bytes in UTF-8; at most {MAX_SESSION_ID_BYTES} are allowed",
            session_id=session_id,
            operation=operation,
        )
    return session_id


def is_listable_id(session_id: object) -> bool:
    """True if ``session_id`` is an id :func:`check_session_id` accepts: listing skips
    keys or rows of a store that do not name one (written there by something else)."""
    try:
        check_session_id(session_id, "list_sessions")
    except InvalidSessionIdError:
        return False
    return True


def check_cutoff(cutoff: object, session_id: str | None, operation: str) -> datetime:
    """Validate a point in time: a timezone-aware ``datetime``."""
    if not isinstance(cutoff, datetime):
        raise InvalidArgumentError(
            f"expected a datetime, not {type(cutoff).__name__}", session_id=session_id,
            operation=operation,
        )
    if cutoff.utcoffset() is None:
        raise InvalidArgumentError(
            "expected a timezone-aware datetime (e.g. datetime.now(timezone.utc))",
            session_id=session_id, operation=operation,
        )
    return cutoff


def check_limit(limit: object, session_id: str, operation: str) -> int | None:
    """Validate a ``limit`` argument: ``None`` (everything) or an int >= 0. A limit
    larger than any store can hold means everything and is returned as ``None``."""
    if limit is None:
        return None
    if type(limit) is not int:
        raise InvalidArgumentError(
            f"limit must be an int or None, not {type(limit).__name__}",
            session_id=session_id,
            operation=operation,
        )
    if limit < 0:
        raise InvalidArgumentError(
            f"limit must be >= 0, got {limit if limit > -10**18 else 'a huge negative int'}",
            session_id=session_id, operation=operation,
        )
    return None if limit > _MAX_LIMIT else limit


def is_envelope(message: Mapping[str, Any]) -> bool:
    """True if ``message`` is a wrapper's envelope rather than a chat message."""
    return "role" not in message and ENVELOPE_KEY in message


def _check_json(value: object, depth: int) -> str | None:
    """Return why ``value`` is not plain JSON data, or None if it is."""
    if depth > _MAX_DEPTH:
        return f"nested deeper than {_MAX_DEPTH} levels (or circular)"
    kind = type(value)
    if kind is str or kind is int or kind is bool or value is None:
        return None
    if kind is float:
        return None if math.isfinite(value) else f"{value!r} is not a JSON number"  # type: ignore[arg-type]
    if kind is dict:
        for key, item in value.items():  # type: ignore[attr-defined]
            if type(key) is not str:
                return f"dict key {shown(key)} is not a str"
            problem = _check_json(item, depth + 1)
            if problem is not None:
                return f"{shown(key)}: {problem}"
        return None
    if kind is list or kind is tuple:
        for position, item in enumerate(value):  # type: ignore[arg-type]
            problem = _check_json(item, depth + 1)
            if problem is not None:
                return f"[{position}]: {problem}"
        return None
    return f"{kind.__name__} is not JSON-serialisable"


def _check_shape(message: Mapping[str, Any]) -> str | None:
    """Return why ``message`` is not a canonical message or envelope, or None."""
    if "role" not in message:
        if ENVELOPE_KEY in message:
            if len(message) != 1:
                return "an envelope holds only the 'envelope' key"
            body = message[ENVELOPE_KEY]
            if type(body) is not dict or type(body.get("v")) is not int:
                return "an envelope must be a dict with an int version 'v'"
            return None
        return "missing 'role'"
    role = message["role"]
    if type(role) is not str or role not in ROLES:
        return f"role {shown(role)} is not one of {', '.join(sorted(ROLES))}"
    content = message.get("content")
    if content is not None and type(content) is not str:
        if type(content) not in (list, tuple):
            return "'content' must be a str, a list of parts, or None"
        for position, part in enumerate(content):
            if type(part) is not dict or type(part.get("type")) is not str:
                return f"content part {position} must be a dict with a str 'type'"
    if role == "tool" and type(message.get("tool_call_id")) is not str:
        return "a tool message needs a str 'tool_call_id'"
    if "name" in message and message["name"] is not None and type(message["name"]) is not str:
        return "'name' must be a str"
    tool_calls = message.get("tool_calls")
    if tool_calls is not None:
        if type(tool_calls) not in (list, tuple):
            return "'tool_calls' must be a list"
        for position, call in enumerate(tool_calls):
            if type(call) is not dict:
                return f"tool call {position} must be a dict"
    return None


def encode_message(message: object, *, index: int = 0, session_id: str | None = None,
                   operation: str | None = None) -> str:
    """Validate one message and return its record (compact JSON text)."""
    if type(message) is not dict and not isinstance(message, Mapping):
        raise InvalidMessageError(
            f"expected a dict, got {type(message).__name__}",
            index=index, session_id=session_id, operation=operation,
        )
    if type(message) is not dict:
        message = dict(message)
    problem = _check_shape(message) or _check_json(message, 0)
    if problem is not None:
        raise InvalidMessageError(problem, index=index, session_id=session_id, operation=operation)
    try:
        text = _encoder.encode(message)
        text.encode("utf-8")
    except UnicodeEncodeError:
        raise InvalidMessageError(
            "contains a string that is not valid Unicode (lone surrogate)",
            index=index, session_id=session_id, operation=operation,
        ) from None
    except ValueError as error:  # an int too long to write as decimal digits
        raise InvalidMessageError(
            f"cannot be written as JSON: {error}", index=index, session_id=session_id,
            operation=operation,
        ) from None
    return text


def encode_messages(messages: object, session_id: str | None = None,
                    operation: str | None = None) -> list[str]:
    """Validate a batch and return its records; raise before anything is written."""
    if type(messages) is not list and (  # a list is the common case: skip the ABC checks
        isinstance(messages, (str, bytes, Mapping)) or not isinstance(messages, Iterable)
    ):
        raise InvalidMessageError(
            f"expected a list of messages, got {type(messages).__name__}",
            session_id=session_id, operation=operation,
        )
    return [
        encode_message(message, index=index, session_id=session_id, operation=operation)
        for index, message in enumerate(messages)
    ]


def decode_record(record: str | bytes, session_id: str | None = None,
                  operation: str | None = None) -> Message:
    """Turn a stored record back into a message; raise CorruptRecordError if it is not one."""
    try:
        value = _decode(record if isinstance(record, str) else record.decode("utf-8"))
    except (ValueError, TypeError) as exc:
        raise CorruptRecordError(
            f"stored record is not valid JSON: {exc}", session_id=session_id, operation=operation
        ) from exc
    except RecursionError:
        raise CorruptRecordError(
            "stored record is nested too deeply to decode", session_id=session_id,
            operation=operation,
        ) from None
    if type(value) is not dict:
        raise CorruptRecordError(
            f"stored record is a {type(value).__name__}, not a message",
            session_id=session_id, operation=operation,
        )
    return value


def decode_records(records: Sequence[str | bytes], session_id: str | None = None,
                   operation: str | None = None) -> list[Message]:
    """Decode a sequence of records, oldest first.

    Each record is parsed on its own and must be exactly one JSON object, so a damaged
    record can never merge with its neighbours. The fast path scans each record's text
    directly (about half the cost of ``json.loads`` per record); anything it does not
    accept (surrounding whitespace, bytes that are not UTF-8, damage) is decoded again
    one by one by :func:`decode_record`, which names the problem.
    """
    values: list[Message] = []
    add = values.append
    try:
        for record in records:
            text = record if type(record) is str else record.decode("utf-8")  # type: ignore[union-attr]
            value, end = _scan(text, 0)
            if end != len(text) or type(value) is not dict:
                raise ValueError
            add(value)
    except (ValueError, TypeError, StopIteration, RecursionError):
        return [decode_record(r, session_id, operation) for r in records]
    return values
