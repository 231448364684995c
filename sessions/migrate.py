"""Copying sessions between any two stores, wrapped or not.

``migrate(source, target)`` walks the source's sessions one at a time (the ids are
streamed; only one session's history is in memory at once) and makes each target
session equal to its source session:

* target already equal: nothing is written;
* target empty, missing, or holding a prefix of the source (an earlier, interrupted
  or older run): the missing tail is appended in one atomic batch;
* target holding different messages: ``on_conflict`` decides — ``"error"`` (the
  default) raises :class:`ConflictError` before writing anything to that session,
  ``"replace"`` overwrites the target session atomically, ``"skip"`` leaves it and
  lists it in the report.

Messages are compared as their exact JSON text, so order, content, unknown keys and
even ``1`` versus ``1.0`` versus ``true`` must match. Running a migration twice
therefore writes nothing the second time. ``verify=True`` compares without writing and
reports what differs.

A conversation's companion sessions (:mod:`sessions.companions`, e.g. LlamaIndex
``Memory``'s archive mark) move with it: once the conversation is written (or found
equal), each companion of the target is made equal to the source's (replaced, or
deleted when the source has none); a conversation that is skipped keeps the target's.
``verify=True`` lists a conversation whose companions differ as different.

The step for one session is :func:`migrate_session`, a flow (see :mod:`sessions._flow`)
shared by :func:`migrate` and :func:`amigrate`.

Memory: the session contract reads a history from its end (``get(limit=N)``), not
from an offset, so a session is read whole: the per-session bound is one source and
one target history.
"""

from __future__ import annotations

import enum
from collections.abc import AsyncIterator, Callable, Iterator
from dataclasses import dataclass, field

from ._base import Session
from ._errors import ConflictError, InvalidArgumentError, shown
from ._flow import Flow, arun, call, run
from ._message import Message, check_session_id, encode_message
from .companions import acompanions_hidden, companions, companions_hidden

__all__ = ["ON_CONFLICT", "MigrationReport", "amigrate", "migrate", "migrate_session"]

ON_CONFLICT = ("error", "replace", "skip")

Progress = Callable[[int, "int | None", str], None]
"""``progress(done, total, session_id)`` after each session; ``total`` may be None."""


@dataclass
class MigrationReport:
    """What a migration did (or, with ``verify=True``, what it found)."""

    #: Sessions examined.
    sessions: int = 0
    #: Sessions already equal in the target.
    unchanged: int = 0
    #: Sessions copied into an empty or missing target session.
    copied: int = 0
    #: Sessions whose target held a prefix and got the rest appended.
    appended: int = 0
    #: Sessions whose differing target was overwritten (``on_conflict="replace"``).
    replaced: int = 0
    #: Messages written to the target.
    messages_written: int = 0
    #: Sessions left different: skipped conflicts, or (verify) every session not equal.
    different: list[str] = field(default_factory=list)
    #: True for a ``verify=True`` run, which writes nothing.
    verified_only: bool = False

    @property
    def ok(self) -> bool:
        """True when no examined target session was left different from its source."""
        return not self.different


class _Action(enum.Enum):
    NONE = "none"
    CREATE = "create"
    APPEND = "append"
    REPLACE = "replace"
    SKIP = "skip"


def _texts(messages: list[Message]) -> list[str]:
    return [encode_message(m) for m in messages]


def _plan(session_id: str, source: list[Message], target: list[Message], source_exists: bool,
          target_exists: bool, on_conflict: str) -> tuple[_Action, int]:
    """What to do to make ``target`` equal ``source``, and from which index to copy."""
    if not target:  # nothing to compare with (a first migration): no need to encode
        if source:
            return _Action.APPEND, 0
        if source_exists and not target_exists:
            return _Action.CREATE, 0  # an empty (cleared) session is listed too
        return _Action.NONE, 0
    src, tgt = _texts(source), _texts(target)
    if src == tgt:
        if not src and source_exists and not target_exists:
            return _Action.CREATE, 0  # an empty (cleared) session is listed too
        return _Action.NONE, 0
    if len(tgt) < len(src) and src[:len(tgt)] == tgt:
        return _Action.APPEND, len(tgt)
    if on_conflict == "replace":
        return _Action.REPLACE, 0
    if on_conflict == "skip":
        return _Action.SKIP, 0
    raise ConflictError(
        f"the target already holds {len(tgt)} message(s) that differ from the source's "
        f"{len(src)}; pass on_conflict='replace' or 'skip'",
        session_id=session_id, operation="migrate",
    )


def _check(source: object, target: object, session_id: str | None, on_conflict: str,
           verify: bool, progress: object) -> None:
    for name, store in (("source", source), ("target", target)):
        if not isinstance(store, Session):
            raise InvalidArgumentError(
                f"the {name} must be a Session, not {type(store).__name__}", operation="migrate"
            )
    if not isinstance(on_conflict, str) or on_conflict not in ON_CONFLICT:
        raise InvalidArgumentError(
            f"on_conflict must be one of {', '.join(ON_CONFLICT)}, got {shown(on_conflict)}",
            operation="migrate",
        )
    if type(verify) is not bool:
        raise InvalidArgumentError(
            f"verify must be True or False, got {type(verify).__name__}", operation="migrate"
        )
    if progress is not None and not callable(progress):
        raise InvalidArgumentError(
            f"progress must be callable, got {type(progress).__name__}", operation="migrate"
        )
    if session_id is not None:
        check_session_id(session_id, "migrate")


def _record(report: MigrationReport, session_id: str, action: _Action, start: int,
            size: int, verify: bool) -> None:
    report.sessions += 1
    if action is _Action.NONE:
        report.unchanged += 1
    elif verify or action is _Action.SKIP:
        report.different.append(session_id)
    elif action is _Action.REPLACE:
        report.replaced += 1
        report.messages_written += size
    else:
        if action is _Action.APPEND and start > 0:
            report.appended += 1
        else:
            report.copied += 1
        report.messages_written += size - start


def migrate_session(source: Session, target: Session, session_id: str, on_conflict: str,
                    verify: bool, report: MigrationReport) -> Flow[None]:
    """Make one target session equal to its source session and record what was done:
    the one step :func:`migrate` and :func:`amigrate` take per session."""
    messages = yield call(source, "get", session_id)
    present = yield call(target, "get", session_id)
    in_source = bool(messages) or (yield call(source, "info", session_id)) is not None
    # Whether the target session exists matters only when both are empty.
    in_target = bool(present) or (
        in_source and not messages and (yield call(target, "info", session_id)) is not None
    )
    action, start = _plan(session_id, messages, present, in_source, in_target,
                          "skip" if verify else on_conflict)
    if not verify:
        if action is _Action.CREATE:
            yield call(target, "replace", session_id, [])
        elif action is _Action.APPEND:
            yield call(target, "append", session_id, messages[start:])
        elif action is _Action.REPLACE:
            yield call(target, "replace", session_id, messages)
    _record(report, session_id, action, start, len(messages), verify)
    yield from _carry_companions(source, target, session_id, action, verify, report)


def _carry_companions(source: Session, target: Session, session_id: str, action: _Action,
                      verify: bool, report: MigrationReport) -> Flow[None]:
    """Make the target's companions of ``session_id`` equal the source's (they move
    with their conversation; a skipped conversation keeps the target's)."""
    if action is _Action.SKIP:
        return
    for companion in companions(session_id):
        messages = yield call(source, "get", companion)
        present = yield call(target, "get", companion)
        if _texts(messages) == _texts(present):
            continue
        if verify:
            if session_id not in report.different:
                report.different.append(session_id)
        elif messages:
            yield call(target, "replace", companion, messages)
        else:
            yield call(target, "delete", companion)


def _ids(source: Session, session_id: str | None) -> Iterator[str]:
    if session_id is not None:
        yield session_id
    else:
        yield from companions_hidden(source.list_sessions())


def migrate(source: Session, target: Session, session_id: str | None = None, *,
            on_conflict: str = "error", verify: bool = False,
            progress: Progress | None = None) -> MigrationReport:
    """Copy one session (``session_id``) or every session of ``source`` into ``target``.

    Idempotent and resumable: see the module documentation for how each target session
    is treated and what ``on_conflict`` (``"error"``, ``"replace"``, ``"skip"``) does.
    With ``verify=True`` nothing is written; the report lists every source session
    whose target differs (``report.ok`` is True when none does); sessions that exist
    only in the target are not examined. ``progress(done, total,
    session_id)`` is called after each session (``total`` is counted first by a
    separate streaming pass over the ids when ``progress`` is given).

    Raises :class:`ConflictError` (with ``on_conflict="error"``) at the first differing
    session; sessions before it have been migrated, and a re-run continues from there.
    """
    _check(source, target, session_id, on_conflict, verify, progress)
    total: int | None = None
    if progress is not None:
        total = 1 if session_id is not None else sum(1 for _ in source.list_sessions())
    report = MigrationReport(verified_only=verify)
    for done, sid in enumerate(_ids(source, session_id), 1):
        run(migrate_session(source, target, sid, on_conflict, verify, report))
        if progress is not None:
            progress(done, total, sid)
    return report


async def _aids(source: Session, session_id: str | None) -> AsyncIterator[str]:
    if session_id is not None:
        yield session_id
    else:
        async for sid in acompanions_hidden(source.alist_sessions()):
            yield sid


async def amigrate(source: Session, target: Session, session_id: str | None = None, *,
                   on_conflict: str = "error", verify: bool = False,
                   progress: Progress | None = None) -> MigrationReport:
    """Async :func:`migrate`: the same step per session, through the async methods."""
    _check(source, target, session_id, on_conflict, verify, progress)
    total: int | None = None
    if progress is not None:
        total = 1
        if session_id is None:
            total = 0
            async for _ in source.alist_sessions():
                total += 1
    report = MigrationReport(verified_only=verify)
    done = 0
    async for sid in _aids(source, session_id):
        done += 1
        await arun(migrate_session(source, target, sid, on_conflict, verify, report))
        if progress is not None:
            progress(done, total, sid)
    return report
