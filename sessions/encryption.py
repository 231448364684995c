"""Transparent per-message encryption over any Session: AES-GCM with a key ring.

Each message is encrypted on its own with a fresh random 96-bit nonce and stored as
a versioned envelope::

    {"envelope": {"v": 1, "alg": "A256GCM", "kid": "k1f0c…", "nonce": "<b64>", "data": "<b64>"}}

The associated data binds the envelope version, the algorithm, the key id and the
session id, so a record copied into another session, or with its header edited, fails
to authenticate. A wrong key, a tampered or truncated record, or a record that is not
encrypted at all raises :class:`DecryptionError` naming the session: nothing is
returned, skipped or deleted.

Keys are 16, 24 or 32 random bytes (AES-128/192/256). A *key ring* is a list of keys,
newest first, or a mapping ``{key_id: key}``: the first key encrypts, every key
decrypts, so old records stay readable after a new key is added; :meth:`reencrypt`
rewrites a session under the newest key. Needs the ``crypto`` extra (``cryptography``).
"""

from __future__ import annotations

import binascii
import functools
import hashlib
import json
import os
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING

from ._base import Session
from ._errors import ConfigurationError, DecryptionError, MissingDependencyError, shown
from ._flow import Flow, arun, call, run
from ._message import ENVELOPE_KEY, Message, check_session_id, decode_record, encode_message
from ._wrapper import WrapperSession, b64decode, b64encode

if TYPE_CHECKING:
    from cryptography.hazmat.primitives.ciphers.aead import AESGCM

__all__ = ["EncryptedSession", "Key", "key_id", "with_encryption"]

VERSION = 1
_ALGORITHMS = {16: "A128GCM", 24: "A192GCM", 32: "A256GCM"}
_NONCE_BYTES = 12
_TAG_BYTES = 16

Key = bytes | Sequence[bytes] | Mapping[str, bytes]
"""One key, a list of keys (newest first) or a mapping ``{key_id: key}`` (newest first)."""


def key_id(key: bytes) -> str:
    """The id a key gets when none is given: ``"k"`` + 8 hex digits of a SHA-256 of the
    key (domain-separated; it identifies the key without revealing it)."""
    if not isinstance(key, (bytes, bytearray, memoryview)):
        raise ConfigurationError(f"a key is bytes, not {type(key).__name__}")
    return "k" + hashlib.sha256(b"session-layer key id\x00" + bytes(key)).hexdigest()[:8]


def _load_aesgcm() -> type[AESGCM]:
    try:
        from cryptography.hazmat.primitives.ciphers.aead import AESGCM
    except ImportError as error:
        raise MissingDependencyError("cryptography", "crypto", feature="with_encryption") from error
    return AESGCM


def _invalid_tag() -> type[Exception]:
    from cryptography.exceptions import InvalidTag

    return InvalidTag


def _check_key(key: object, name: str) -> bytes:
    if isinstance(key, str):
        raise ConfigurationError(
            f"{name} is a str; pass the raw key bytes (decode base64 or hex first)"
        )
    if not isinstance(key, (bytes, bytearray, memoryview)):
        raise ConfigurationError(f"{name} must be bytes, not {type(key).__name__}")
    raw = bytes(key)
    if len(raw) not in _ALGORITHMS:
        raise ConfigurationError(
            f"{name} is {len(raw)} bytes; AES-GCM needs 16, 24 or 32 bytes"
        )
    return raw


def _key_ring(key: object) -> list[tuple[str, bytes]]:
    """``[(key_id, key), ...]``, newest first, from any accepted key form."""
    if isinstance(key, (bytes, bytearray, memoryview, str)):
        raw = _check_key(key, "key")
        return [(key_id(raw), raw)]
    if isinstance(key, Mapping):
        ring = []
        for kid, raw in key.items():
            if type(kid) is not str or not kid or len(kid) > 64:
                raise ConfigurationError(f"key id must be a non-empty str of at most 64 chars: {shown(kid)}")
            ring.append((kid, _check_key(raw, f"key {kid!r}")))
    elif isinstance(key, Sequence):
        ring = []
        for position, raw in enumerate(key):
            checked = _check_key(raw, f"key {position}")
            ring.append((key_id(checked), checked))
    else:
        raise ConfigurationError(
            f"key must be bytes, a list of bytes or a mapping of key ids to bytes, "
            f"not {type(key).__name__}"
        )
    if not ring:
        raise ConfigurationError("the key ring is empty; give at least one key")
    kids = [kid for kid, _ in ring]
    if len(set(kids)) != len(kids):
        raise ConfigurationError("the key ring holds the same key (or key id) twice")
    return ring


_AAD_ENCODER = json.JSONEncoder(ensure_ascii=False, separators=(",", ":"))


@functools.lru_cache(maxsize=4096)
def _associated_data(alg: str, kid: str, session_id: str) -> bytes:
    """What every record authenticates besides its content (cached: it is per session)."""
    return _AAD_ENCODER.encode(["session-layer", VERSION, alg, kid, session_id]).encode("utf-8")


_BINARY = b"E"


def _plaintext(item: Message, record: str) -> bytes:
    """What is encrypted for one item: its JSON record; or, for an envelope with a
    base64 ``"data"`` field (a compressed message), ``E`` + the envelope with ``data``
    set to null + a newline + the raw bytes, so compressed data is not base64-encoded
    twice. Both forms are inside the authenticated ciphertext."""
    body = item.get(ENVELOPE_KEY) if len(item) == 1 else None
    if isinstance(body, dict) and isinstance(body.get("data"), str):
        try:
            raw = b64decode(body["data"])
        except (ValueError, binascii.Error):
            return record.encode("utf-8")
        if b64encode(raw) == body["data"]:
            header = encode_message({ENVELOPE_KEY: {**body, "data": None}})
            return _BINARY + header.encode("utf-8") + b"\n" + raw
    return record.encode("utf-8")


def _from_plaintext(plain: bytes, session_id: str, operation: str) -> Message:
    if not plain.startswith(_BINARY):
        return decode_record(plain, session_id, operation)
    header, _, raw = plain[1:].partition(b"\n")
    item = decode_record(header, session_id, operation)
    item[ENVELOPE_KEY]["data"] = b64encode(raw)
    return item


class EncryptedSession(WrapperSession):
    """Stores every message of ``inner`` encrypted. Use :func:`with_encryption`.

    ``clear`` and ``replace`` first authenticate the whole session (O(history)) and
    raise :class:`DecryptionError` rather than destroy records they cannot read;
    pass ``force=True`` to destroy them anyway. ``delete`` always deletes.
    """

    check_destroy = True

    def __init__(self, inner: Session, key: Key) -> None:
        super().__init__(inner)
        ring = _key_ring(key)
        aesgcm = _load_aesgcm()
        self._ciphers: dict[str, tuple[str, AESGCM]] = {
            kid: (_ALGORITHMS[len(raw)], aesgcm(raw)) for kid, raw in ring
        }
        self._primary = ring[0][0]
        self._invalid_tag = _invalid_tag()

    def __repr__(self) -> str:
        return f"with_encryption({self.inner!r}, key_ids={self.key_ids!r})"

    @property
    def key_ids(self) -> list[str]:
        """The ids of the key ring, newest (the one that encrypts) first."""
        return list(self._ciphers)

    def _seal(self, session_id: str, message: Message, record: str) -> Message:
        alg, cipher = self._ciphers[self._primary]
        nonce = os.urandom(_NONCE_BYTES)
        data = cipher.encrypt(nonce, _plaintext(message, record),
                              _associated_data(alg, self._primary, session_id))
        return {ENVELOPE_KEY: {
            "v": VERSION, "alg": alg, "kid": self._primary,
            "nonce": b64encode(nonce),
            "data": b64encode(data),
        }}

    def _unseal(self, session_id: str, stored: Message, operation: str) -> Message:
        def fail(reason: str) -> DecryptionError:
            return DecryptionError(f"cannot decrypt a stored record: {reason}",
                                   session_id=session_id, operation=operation)

        body = stored.get(ENVELOPE_KEY) if "role" not in stored else None
        if not isinstance(body, dict) or "kid" not in body:
            raise fail("it is not an encrypted envelope")
        if body.get("v") != VERSION:
            raise fail(f"envelope version {shown(body.get('v'))} is not {VERSION}")
        kid = body["kid"]
        entry = self._ciphers.get(kid) if isinstance(kid, str) else None
        if entry is None:
            raise fail(f"no key with id {shown(kid)} in the key ring (wrong key?)")
        alg, cipher = entry
        if body.get("alg") != alg:
            raise fail(f"algorithm {shown(body.get('alg'))} does not match key {kid!r}")
        try:
            nonce = b64decode(body["nonce"])
            data = b64decode(body["data"])
        except (KeyError, TypeError, ValueError, binascii.Error):
            raise fail("the envelope is truncated or malformed") from None
        if len(nonce) != _NONCE_BYTES or len(data) < _TAG_BYTES:
            raise fail("the envelope is truncated or malformed")
        try:
            plain = cipher.decrypt(nonce, data, _associated_data(alg, kid, session_id))
        except self._invalid_tag:
            raise fail(
                "authentication failed (wrong key, tampered record, or a record "
                "that belongs to another session)"
            ) from None
        return _from_plaintext(plain, session_id, operation)

    # -- rotation ---------------------------------------------------------------------------

    def _rewrite(self, session_id: str, stored: list[Message]) -> list[Message] | None:
        """New items for a session not wholly under the newest key, else None; every
        record is authenticated either way."""
        messages = self._unseal_all(session_id, stored, "reencrypt")
        if all(item[ENVELOPE_KEY]["kid"] == self._primary for item in stored):
            return None
        return [self._seal(session_id, m, encode_message(m)) for m in messages]

    def _reencrypt_flow(self, session_id: str) -> Flow[int]:
        check_session_id(session_id, "reencrypt")
        fresh = self._rewrite(session_id, (yield call(self.inner, "get", session_id)))
        if fresh is None:
            return 0
        yield call(self.inner, "replace", session_id, fresh, **self._inner_kwargs(True))
        return len(fresh)

    def reencrypt(self, session_id: str) -> int:
        """Rewrite ``session_id`` under the newest key with one atomic ``replace``.

        Every record is authenticated. Returns the number of messages rewritten (0 when
        every record already uses the newest key: nothing is written). Raises
        :class:`DecryptionError`, writing nothing, if any record cannot be decrypted
        with the key ring. Run it while nobody appends to that session: an append
        landing between the read and the replace would be overwritten. Costs
        O(history).
        """
        return run(self._reencrypt_flow(session_id))

    async def areencrypt(self, session_id: str) -> int:
        """Async :meth:`reencrypt`."""
        return await arun(self._reencrypt_flow(session_id))


def with_encryption(session: Session, key: Key) -> EncryptedSession:
    """Wrap ``session`` so that every message is stored encrypted with AES-GCM.

    ``key`` is 16, 24 or 32 random bytes, a list of such keys (newest first: it
    encrypts, all decrypt) or a mapping ``{key_id: key}`` in the same order. Anything
    else raises :class:`ConfigurationError` here, not at the first write. Keys given
    without ids get :func:`key_id`. Needs the ``crypto`` extra.

    For compression too, wrap the result: ``with_compression(with_encryption(store,
    key))`` compresses, then encrypts (compressing ciphertext gains nothing).
    """
    return EncryptedSession(session, key)
