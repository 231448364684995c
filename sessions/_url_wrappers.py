"""Wrappers named in a store URL.

Any store URL may carry these query options; :func:`sessions.connect` removes them
before the backend sees the URL and wraps the store it opens:

``compress=gzip`` (or ``zlib``)
    :func:`with_compression`; ``compress_level=0..9``, ``compress_threshold=BYTES`` and
    ``compress_max_size=BYTES`` (the decompression bound) tune it.
``encrypt_key_env=NAME``
    :func:`with_encryption` with the key ring read from the environment variable
    ``NAME``: one or more keys separated by commas, newest first, each 16, 24 or 32
    bytes written in hex (``hex:`` prefix optional) or base64 (standard or URL-safe;
    ``base64:`` prefix optional). A bare value of 32, 48 or 64 hex digits is read as
    hex. The key itself is never accepted in the URL.

With both, the stack is compress-then-encrypt:
``with_compression(with_encryption(store, keys))``, e.g.
``sqlite:///chats.db?compress=gzip&encrypt_key_env=SESSIONS_KEY``.
"""

from __future__ import annotations

import base64
import binascii
import dataclasses
import os
import string
from collections.abc import Callable
from typing import TYPE_CHECKING, Any
from urllib.parse import urlencode, urlsplit, urlunsplit

from ._base import Session
from ._errors import ConfigurationError, shown

__all__ = ["WRAPPER_OPTIONS", "parse_keys", "split_wrapper_options", "wrap_from_options"]

WRAPPER_OPTIONS = ("compress", "compress_level", "compress_threshold", "compress_max_size",
                   "encrypt_key_env")
_COMPRESS_TUNING = {"compress_level": "level", "compress_threshold": "threshold",
                    "compress_max_size": "max_size"}

if TYPE_CHECKING:
    from ._registry import StoreURL


def split_wrapper_options(url: StoreURL) -> tuple[StoreURL, dict[str, str]]:
    """The URL without the wrapper options (``raw`` rebuilt too), and those options."""
    options = {k: v for k, v in url.query.items() if k in WRAPPER_OPTIONS}
    if not options:
        return url, {}
    rest = {k: v for k, v in url.query.items() if k not in WRAPPER_OPTIONS}
    parts = urlsplit(url.raw)
    raw = urlunsplit(parts._replace(query=urlencode(rest)))
    return dataclasses.replace(url, raw=raw, query=rest), options


def _decode_key(text: str, position: int, variable: str) -> bytes:
    text = text.strip()
    where = f"key {position} in ${variable}"
    try:
        if text.startswith("hex:"):
            return bytes.fromhex(text[4:])
        if text.startswith("base64:"):
            text = text[7:]
        elif len(text) in (32, 48, 64) and all(c in string.hexdigits for c in text):
            return bytes.fromhex(text)
        padded = text + "=" * (-len(text) % 4)
        if "-" in text or "_" in text:
            return base64.urlsafe_b64decode(padded)
        return base64.b64decode(padded, validate=True)
    except (ValueError, binascii.Error):
        raise ConfigurationError(f"{where} is neither hex nor base64") from None


def parse_keys(variable: str) -> list[bytes]:
    """The key ring held by the environment variable ``variable`` (see module doc)."""
    value = os.environ.get(variable)
    if not value or not value.strip():
        raise ConfigurationError(f"environment variable ${variable} (encrypt_key_env) is not set")
    keys = [_decode_key(part, i, variable) for i, part in enumerate(value.split(",")) if part.strip()]
    for position, key in enumerate(keys):
        if len(key) not in (16, 24, 32):
            raise ConfigurationError(
                f"key {position} in ${variable} is {len(key)} bytes; AES-GCM needs 16, 24 or 32"
            )
    return keys


def _int(name: str, text: str) -> int:
    try:
        return int(text)
    except ValueError:
        raise ConfigurationError(f"bad value {shown(text)} for option {name!r}: expected an int") from None


def wrap_from_options(options: dict[str, str]) -> Callable[[Session], Session]:
    """A function wrapping a store as ``options`` say; every option is checked (and the
    key read) now, so a mistake is reported before the store is opened."""
    compress: dict[str, Any] | None = None
    if "compress" in options:
        algorithm = options["compress"] or "gzip"
        compress = {"algorithm": algorithm}
        for option, name in _COMPRESS_TUNING.items():
            if option in options:
                compress[name] = _int(option, options[option])
    elif options.keys() & _COMPRESS_TUNING.keys():
        raise ConfigurationError(
            f"{'/'.join(_COMPRESS_TUNING)} need compress=gzip or compress=zlib"
        )
    keys = parse_keys(options["encrypt_key_env"]) if "encrypt_key_env" in options else None

    from .compression import check_options, with_compression
    from .encryption import EncryptedSession, _load_aesgcm

    if keys is not None:
        _load_aesgcm()
    if compress is not None:
        check_options(**compress)

    def wrap(store: Session) -> Session:
        if keys is not None:
            store = EncryptedSession(store, keys)
        if compress is not None:
            store = with_compression(store, **compress)
        return store

    return wrap
