"""Checks for constructor options: one rule per kind of value, shared by every store.

Each check returns the value in its canonical form or raises
:class:`ConfigurationError` naming the option, so a bad option is refused when the
store is built, never later as a driver's ``OverflowError`` or a wait that never
happens. Numbers are checked for their type (``True`` is not a number here), for being
finite and for a range every driver can represent; URL options reach the same checks,
since ``from_url`` constructors pass them on to ``__init__``.
"""

from __future__ import annotations

import math
import os
from typing import Any

from ._errors import ConfigurationError

__all__ = ["MAX_TIMEOUT", "MAX_TTL", "check_flag", "check_int", "check_path", "check_seconds",
           "check_text"]

MAX_TIMEOUT = 86_400.0
"""Longest accepted timeout, in seconds (a day): every clock and driver can wait that long."""
MAX_TTL = 100 * 365 * 86_400.0
"""Longest accepted time to live, in seconds (100 years)."""


def check_seconds(name: str, value: object, *, maximum: float = MAX_TIMEOUT,
                  optional: bool = False) -> float:
    """A positive, finite number of seconds up to ``maximum`` (``None`` too if
    ``optional``, returned as it is)."""
    if value is None and optional:
        return None  # type: ignore[return-value]
    if type(value) not in (int, float):
        raise ConfigurationError(
            f"{name} must be a number of seconds, not {type(value).__name__}"
        )
    try:
        seconds = float(value)  # type: ignore[arg-type]
    except OverflowError:  # an int too large for a float
        seconds = math.inf
    if not (math.isfinite(seconds) and 0 < seconds <= maximum):
        raise ConfigurationError(
            f"{name} must be more than 0 and at most {maximum:g} seconds, got {seconds!r}"
        )
    return seconds


def check_int(name: str, value: object, *, minimum: int, maximum: int) -> int:
    """An ``int`` (not a ``bool``) from ``minimum`` to ``maximum``."""
    if type(value) is not int:
        raise ConfigurationError(f"{name} must be an int, not {type(value).__name__}")
    if not minimum <= value <= maximum:
        raise ConfigurationError(
            f"{name} must be from {minimum} to {maximum}, got {value if abs(value) < 10**30 else '(huge)'}"
        )
    return value


def check_flag(name: str, value: object) -> bool:
    """``True`` or ``False``, nothing that merely looks true."""
    if type(value) is not bool:
        raise ConfigurationError(f"{name} must be True or False, got {type(value).__name__}")
    return value


def check_text(name: str, value: object, *, optional: bool = False, empty: bool = False) -> Any:
    """A ``str`` without NUL characters (``None`` too if ``optional``)."""
    if value is None and optional:
        return None
    if type(value) is not str:
        raise ConfigurationError(f"{name} must be a str, not {type(value).__name__}")
    if "\x00" in value or (not value and not empty):
        raise ConfigurationError(f"{name} must be a non-empty str without NUL characters")
    return value


def check_path(name: str, value: object) -> str:
    """A file system path given as ``str`` or ``os.PathLike[str]``, without NUL."""
    if not isinstance(value, (str, os.PathLike)):
        raise ConfigurationError(f"{name} must be a str or a path, not {type(value).__name__}")
    path = os.fspath(value)
    if not isinstance(path, str):
        raise ConfigurationError(f"{name} must be a str path, not {type(path).__name__}")
    if not path or "\x00" in path:
        raise ConfigurationError(f"{name} must be a non-empty path without NUL characters")
    try:
        os.fsencode(path)
    except UnicodeEncodeError:
        raise ConfigurationError(
            f"{name} cannot be a file name on this system (it holds a character the file"
            " system encoding cannot write, such as a lone surrogate)") from None
    return path
