"""Periodic cleanup: delete the sessions nobody has written to for a while.

The decision for one session is :func:`prune_session`, a flow (see
:mod:`sessions._flow`) shared by :func:`prune` and :func:`aprune`: it reads the
session's metadata (cheap, no write lock) and, for a session older than the cutoff,
deletes it with the store's atomic ``delete_if_idle``, which checks the age again in
the same step as the delete. A message appended after the metadata was read therefore
keeps its session: nothing acknowledged is ever pruned with it.

A conversation is judged by its own age; its companion sessions (see
:mod:`sessions.companions`) are deleted after it and never pruned on their own, even
from a store whose listing shows them.
"""

from __future__ import annotations

import math
import re
from datetime import datetime, timedelta, timezone

from ._base import Session
from ._errors import InvalidArgumentError, shown
from ._flow import Flow, arun, call, run
from ._message import check_cutoff
from ._wrapper import delete_if_idle_flow
from .companions import companions, is_companion

__all__ = ["aprune", "parse_duration", "prune", "prune_session"]

_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}
_DURATION = re.compile(r"(\d+(?:\.\d+)?)([smhdw])")
_MAX_SECONDS = timedelta.max.total_seconds()
_EARLIEST = datetime.min.replace(tzinfo=timezone.utc)


def parse_duration(text: str) -> timedelta:
    """``"30d"``, ``"12h"``, ``"90m"``, ``"45s"``, ``"2w"`` or combinations (``"1d12h"``).

    At most what a ``timedelta`` holds (999,999,999 days); longer raises
    :class:`InvalidArgumentError` like any other bad duration.
    """
    cleaned = text.strip().lower().replace(" ", "") if isinstance(text, str) else ""
    if not cleaned or _DURATION.sub("", cleaned):
        raise InvalidArgumentError(
            f"bad duration {shown(text)}: use a number and a unit s, m, h, d or w (e.g. 30d)"
        )
    seconds = sum(float(n) * _UNITS[unit] for n, unit in _DURATION.findall(cleaned))
    if not math.isfinite(seconds) or seconds > _MAX_SECONDS:
        raise InvalidArgumentError(f"duration {shown(text)} is too long (at most 999999999 days)")
    return timedelta(seconds=seconds)


def _cutoff(store: object, older_than: timedelta | str, now: datetime | None,
            dry_run: bool) -> datetime:
    if not isinstance(store, Session):
        raise InvalidArgumentError(f"prune needs a Session, not {type(store).__name__}", operation="prune")
    age = parse_duration(older_than) if isinstance(older_than, str) else older_than
    if not isinstance(age, timedelta) or age < timedelta(0):
        raise InvalidArgumentError(f"older_than must be a duration >= 0, got {shown(older_than)}")
    if type(dry_run) is not bool:
        raise InvalidArgumentError(f"dry_run must be True or False, got {type(dry_run).__name__}")
    start = datetime.now(timezone.utc) if now is None else check_cutoff(now, None, "prune")
    try:
        return start - age
    except OverflowError:  # older than the calendar: no session can be that old
        return _EARLIEST


def prune_session(store: Session, session_id: str, cutoff: datetime, dry_run: bool) -> Flow[bool]:
    """Whether ``session_id`` was pruned (with ``dry_run``: would be): the one step
    :func:`prune` and :func:`aprune` take per session."""
    if is_companion(session_id):
        return False
    info = yield call(store, "info", session_id)
    if info is None or info.updated_at >= cutoff:
        return False
    if dry_run:
        return True
    deleted: bool = yield from delete_if_idle_flow(store, session_id, cutoff)
    if deleted:
        for companion in companions(session_id):
            yield call(store, "delete", companion)
    return deleted


def prune(store: Session, older_than: timedelta | str, *, dry_run: bool = False,
          now: datetime | None = None) -> list[str]:
    """Delete every session whose ``info().updated_at`` is older than ``older_than``
    (a ``timedelta`` or a duration like ``"30d"``) and return their ids.

    The ids are streamed from ``list_sessions`` and each old session is deleted as it
    is found, atomically with a last check of its age (``delete_if_idle``): a session
    written to meanwhile is kept. With ``dry_run=True`` nothing is deleted. ``now``
    (a timezone-aware ``datetime``) replaces the current time.

    A store that implements only the :class:`~sessions.Session` protocol, without
    :class:`~sessions.SupportsDeleteIfIdle`, is pruned by ``info`` then ``delete``: a
    message appended between the two is deleted with its session.
    """
    cutoff = _cutoff(store, older_than, now, dry_run)
    return [sid for sid in store.list_sessions() if run(prune_session(store, sid, cutoff, dry_run))]


async def aprune(store: Session, older_than: timedelta | str, *, dry_run: bool = False,
                 now: datetime | None = None) -> list[str]:
    """Async :func:`prune`: the same step per session, through the async methods."""
    cutoff = _cutoff(store, older_than, now, dry_run)
    return [sid async for sid in store.alist_sessions()
            if await arun(prune_session(store, sid, cutoff, dry_run))]
