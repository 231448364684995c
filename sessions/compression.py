"""Transparent per-message compression over any Session (stdlib gzip or zlib).

A message whose JSON text is at least ``threshold`` bytes is stored as a versioned
envelope ``{"envelope": {"v": 1, "alg": "gzip", "data": "<base64>"}}``; a smaller one,
or one that would not get smaller, is stored as it is. Plain messages and envelopes
can therefore be mixed in one session, and reading handles both. An envelope has no
``"role"``, so it is never mistaken for a message, nor a message for an envelope.
"""

from __future__ import annotations

import binascii
import gzip
import zlib
from collections.abc import Callable
from typing import Any

from ._base import Session
from ._errors import ConfigurationError, CorruptRecordError
from ._message import ENVELOPE_KEY, Message, decode_record
from ._wrapper import WrapperSession, b64decode, b64encode

__all__ = ["CompressedSession", "with_compression"]

VERSION = 1
ALGORITHMS: dict[str, tuple[Callable[[bytes, int], bytes], Callable[[bytes], bytes]]] = {
    "gzip": (lambda data, level: gzip.compress(data, level, mtime=0), gzip.decompress),
    "zlib": (zlib.compress, zlib.decompress),
}
DEFAULT_THRESHOLD = 256
"""Messages shorter than this (bytes of JSON) are stored as they are."""


def _algorithm_of(stored: Message) -> str | None:
    body = stored.get(ENVELOPE_KEY) if "role" not in stored else None
    if isinstance(body, dict) and body.get("alg") in ALGORITHMS:
        return str(body["alg"])
    return None


def check_options(algorithm: str = "gzip", level: int = 6, threshold: int = DEFAULT_THRESHOLD) -> None:
    """Raise :class:`ConfigurationError` unless the compression options are usable."""
    if algorithm not in ALGORITHMS:
        raise ConfigurationError(
            f"compression algorithm must be one of {', '.join(ALGORITHMS)}, got {algorithm!r}"
        )
    if type(level) is not int or not 0 <= level <= 9:
        raise ConfigurationError(f"compression level must be an int from 0 to 9, got {level!r}")
    if type(threshold) is not int or threshold < 0:
        raise ConfigurationError(f"compression threshold must be an int >= 0, got {threshold!r}")


class CompressedSession(WrapperSession):
    """Stores each large message of ``inner`` compressed. Use :func:`with_compression`."""

    def __init__(self, inner: Session, *, algorithm: str = "gzip", level: int = 6,
                 threshold: int = DEFAULT_THRESHOLD) -> None:
        super().__init__(inner)
        check_options(algorithm, level, threshold)
        self.algorithm = algorithm
        self.level = level
        self.threshold = threshold
        self._compress = ALGORITHMS[algorithm][0]

    def __repr__(self) -> str:
        return f"with_compression({self.inner!r}, algorithm={self.algorithm!r})"

    def _seal(self, session_id: str, message: Message, record: str) -> Message:
        raw = record.encode("utf-8")
        # An item that already looks like our envelope is always wrapped, so what is
        # read back is exactly what was appended.
        ours = _algorithm_of(message) is not None
        if len(raw) < self.threshold and not ours:
            return message
        data = b64encode(self._compress(raw, self.level))
        if len(data) + 40 >= len(raw) and not ours:
            return message
        return {ENVELOPE_KEY: {"v": VERSION, "alg": self.algorithm, "data": data}}

    def _unseal(self, session_id: str, stored: Message, operation: str) -> Message:
        algorithm = _algorithm_of(stored)
        if algorithm is None:
            return stored
        body: dict[str, Any] = stored[ENVELOPE_KEY]
        if body.get("v") != VERSION:
            raise CorruptRecordError(
                f"compressed record has version {body.get('v')!r}; this library reads {VERSION}",
                session_id=session_id, operation=operation,
            )
        try:
            raw = ALGORITHMS[algorithm][1](b64decode(body["data"]))
            text = raw.decode("utf-8")
        except (KeyError, TypeError, ValueError, binascii.Error, OSError, EOFError, zlib.error) as error:
            raise CorruptRecordError(
                f"compressed record cannot be decompressed: {error}",
                session_id=session_id, operation=operation,
            ) from error
        return decode_record(text, session_id, operation)


def with_compression(session: Session, *, algorithm: str = "gzip", level: int = 6,
                     threshold: int = DEFAULT_THRESHOLD) -> CompressedSession:
    """Wrap ``session`` so that every message of at least ``threshold`` bytes (JSON) is
    stored compressed with ``algorithm`` (``"gzip"``, the default, or ``"zlib"``).

    The result is a Session: wrap it again (``with_compression(with_encryption(store,
    key))`` compresses, then encrypts: the recommended order) or pass it anywhere a
    store is expected. A record that cannot be decompressed raises
    :class:`CorruptRecordError`.
    """
    return CompressedSession(session, algorithm=algorithm, level=level, threshold=threshold)
