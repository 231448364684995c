"""Periodic cleanup: delete the sessions nobody has written to for a while.

A conversation is judged by its own age; its companion sessions (see
:mod:`sessions.companions`) are deleted with it by the store's ``delete`` and never
pruned on their own, even by a store whose listing shows them.
"""

from __future__ import annotations

import re
from datetime import datetime, timedelta, timezone

from ._base import Session
from ._errors import InvalidArgumentError
from .companions import is_companion

__all__ = ["aprune", "parse_duration", "prune"]

_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}
_DURATION = re.compile(r"(\d+(?:\.\d+)?)([smhdw])")


def parse_duration(text: str) -> timedelta:
    """``"30d"``, ``"12h"``, ``"90m"``, ``"45s"``, ``"2w"`` or combinations (``"1d12h"``)."""
    cleaned = text.strip().lower().replace(" ", "") if isinstance(text, str) else ""
    if not cleaned or _DURATION.sub("", cleaned):
        raise InvalidArgumentError(
            f"bad duration {text!r}: use a number and a unit s, m, h, d or w (e.g. 30d)"
        )
    seconds = sum(float(n) * _UNITS[unit] for n, unit in _DURATION.findall(cleaned))
    return timedelta(seconds=seconds)


def _cutoff(older_than: timedelta | str, now: datetime | None) -> datetime:
    age = parse_duration(older_than) if isinstance(older_than, str) else older_than
    if not isinstance(age, timedelta) or age < timedelta(0):
        raise InvalidArgumentError(f"older_than must be a duration >= 0, got {older_than!r}")
    return (now or datetime.now(timezone.utc)) - age


def prune(store: Session, older_than: timedelta | str, *, dry_run: bool = False,
          now: datetime | None = None) -> list[str]:
    """Delete every session whose ``info().updated_at`` is older than ``older_than``
    (a ``timedelta`` or a duration like ``"30d"``) and return their ids.

    The ids are streamed from ``list_sessions`` and each old session is deleted as it
    is found; only the pruned ids are kept. With ``dry_run=True`` nothing is deleted.
    """
    cutoff = _cutoff(older_than, now)
    pruned = []
    for session_id in store.list_sessions():
        if is_companion(session_id):
            continue
        info = store.info(session_id)
        if info is None or info.updated_at >= cutoff:
            continue
        if not dry_run:
            store.delete(session_id)
        pruned.append(session_id)
    return pruned


async def aprune(store: Session, older_than: timedelta | str, *, dry_run: bool = False,
                 now: datetime | None = None) -> list[str]:
    """Async :func:`prune`."""
    cutoff = _cutoff(older_than, now)
    pruned = []
    async for session_id in store.alist_sessions():
        if is_companion(session_id):
            continue
        info = await store.ainfo(session_id)
        if info is None or info.updated_at >= cutoff:
            continue
        if not dry_run:
            await store.adelete(session_id)
        pruned.append(session_id)
    return pruned
