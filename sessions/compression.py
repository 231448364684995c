"""Transparent per-message compression over any Session (stdlib gzip or zlib).

A message whose JSON text is at least ``threshold`` bytes is stored as a versioned
envelope ``{"envelope": {"v": 1, "alg": "gzip", "data": "<base64>"}}``; a smaller one,
or one that would not get smaller, is stored as it is. Plain messages and envelopes
can therefore be mixed in one session, and reading handles both. An envelope has no
``"role"``, so it is never mistaken for a message, nor a message for an envelope.

Decompression is bounded: a record is inflated incrementally and refused with
:class:`CorruptRecordError` as soon as it would exceed ``max_size`` bytes (64 MiB by
default), so a small hostile record cannot make a reader allocate gigabytes. A message
larger than ``max_size`` is stored uncompressed, so everything this wrapper writes it
can read back.
"""

from __future__ import annotations

import binascii
import gzip
import zlib
from collections.abc import Callable
from typing import Any

from ._base import Session
from ._errors import ConfigurationError, CorruptRecordError, InvalidMessageError, shown
from ._message import ENVELOPE_KEY, Message, decode_record
from ._options import check_int
from ._wrapper import WrapperSession, b64decode, b64encode

__all__ = ["DEFAULT_MAX_SIZE", "CompressedSession", "inflate", "with_compression"]

VERSION = 1
#: Compressor and zlib ``wbits`` (the container format) of each algorithm.
ALGORITHMS: dict[str, tuple[Callable[[bytes, int], bytes], int]] = {
    "gzip": (lambda data, level: gzip.compress(data, level, mtime=0), 31),
    "zlib": (zlib.compress, 15),
}
DEFAULT_THRESHOLD = 256
"""Messages shorter than this (bytes of JSON) are stored as they are."""
DEFAULT_MAX_SIZE = 64 * 1024 * 1024
"""Largest decompressed message read back (64 MiB); larger ones are stored uncompressed."""
_MAX_MAX_SIZE = 2**40
_STEP = 256 * 1024


def inflate(algorithm: str, data: bytes, max_size: int) -> bytes:
    """Decompress ``data`` (a gzip stream of one or more members, or a zlib stream)
    in steps of at most 256 KiB of output, raising ``ValueError`` as soon as the output
    would exceed ``max_size`` bytes: a bomb costs at most ``max_size`` plus one step of
    memory. A truncated or damaged stream raises ``ValueError`` or ``zlib.error``."""
    wbits = ALGORITHMS[algorithm][1]
    pieces: list[bytes] = []
    size = 0
    while True:
        stream = zlib.decompressobj(wbits)
        while not stream.eof:
            piece = stream.decompress(data, _STEP)
            data = stream.unconsumed_tail
            if not piece and not data and not stream.eof:
                raise ValueError("the compressed stream is truncated")
            size += len(piece)
            if size > max_size:
                raise ValueError(f"it inflates to more than max_size={max_size} bytes")
            pieces.append(piece)
        data = stream.unused_data
        if algorithm != "gzip" or not data:  # zlib ignores trailing bytes, gzip reads members
            return b"".join(pieces)


def _algorithm_of(stored: Message) -> str | None:
    body = stored.get(ENVELOPE_KEY) if "role" not in stored else None
    if isinstance(body, dict) and body.get("alg") in ALGORITHMS:
        return str(body["alg"])
    return None


def check_options(algorithm: str = "gzip", level: int = 6, threshold: int = DEFAULT_THRESHOLD,
                  max_size: int = DEFAULT_MAX_SIZE) -> None:
    """Raise :class:`ConfigurationError` unless the compression options are usable."""
    if not isinstance(algorithm, str) or algorithm not in ALGORITHMS:
        raise ConfigurationError(
            f"compression algorithm must be one of {', '.join(ALGORITHMS)}, got {shown(algorithm)}"
        )
    check_int("compression level", level, minimum=0, maximum=9)
    check_int("compression threshold", threshold, minimum=0, maximum=2**63)
    check_int("compression max_size", max_size, minimum=1, maximum=_MAX_MAX_SIZE)


class CompressedSession(WrapperSession):
    """Stores each large message of ``inner`` compressed. Use :func:`with_compression`."""

    def __init__(self, inner: Session, *, algorithm: str = "gzip", level: int = 6,
                 threshold: int = DEFAULT_THRESHOLD, max_size: int = DEFAULT_MAX_SIZE) -> None:
        super().__init__(inner)
        check_options(algorithm, level, threshold, max_size)
        self.algorithm = algorithm
        self.level = level
        self.threshold = threshold
        self.max_size = max_size
        self._compress = ALGORITHMS[algorithm][0]

    def __repr__(self) -> str:
        return f"with_compression({self.inner!r}, algorithm={self.algorithm!r})"

    def _seal(self, session_id: str, message: Message, record: str) -> Message:
        raw = record.encode("utf-8")
        # An item that already looks like our envelope is always wrapped, so what is
        # read back is exactly what was appended.
        ours = _algorithm_of(message) is not None
        if len(raw) > self.max_size:
            if ours:
                raise InvalidMessageError(
                    f"an item shaped like a compressed envelope larger than max_size="
                    f"{self.max_size} bytes cannot be stored", session_id=session_id,
                )
            return message  # stored as it is: it could not be read back compressed
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
                f"compressed record has version {shown(body.get('v'))}; this library reads {VERSION}",
                session_id=session_id, operation=operation,
            )
        try:
            raw = inflate(algorithm, b64decode(body["data"]), self.max_size)
            text = raw.decode("utf-8")
        except (KeyError, TypeError, ValueError, binascii.Error, zlib.error) as error:
            raise CorruptRecordError(
                f"compressed record cannot be decompressed: {error}",
                session_id=session_id, operation=operation,
            ) from error
        return decode_record(text, session_id, operation)


def with_compression(session: Session, *, algorithm: str = "gzip", level: int = 6,
                     threshold: int = DEFAULT_THRESHOLD,
                     max_size: int = DEFAULT_MAX_SIZE) -> CompressedSession:
    """Wrap ``session`` so that every message of at least ``threshold`` bytes (JSON) is
    stored compressed with ``algorithm`` (``"gzip"``, the default, or ``"zlib"``).

    ``max_size`` (bytes, 64 MiB by default) bounds decompression: a stored record that
    would inflate past it raises :class:`CorruptRecordError` without being inflated
    whole, and a message larger than it is stored uncompressed. Readers of a store need
    a ``max_size`` at least as large as the writers'.

    The result is a Session: wrap it again (``with_compression(with_encryption(store,
    key))`` compresses, then encrypts: the recommended order) or pass it anywhere a
    store is expected. A record that cannot be decompressed raises
    :class:`CorruptRecordError`.
    """
    return CompressedSession(session, algorithm=algorithm, level=level, threshold=threshold,
                             max_size=max_size)
