"""prune / aprune and durations."""

from __future__ import annotations

import time
from datetime import datetime, timedelta, timezone

import pytest

import sessions
from sessions import MemorySession, aprune, prune
from sessions.prune import parse_duration
from tests.conformance.messages import text


@pytest.mark.parametrize(
    ("text_", "seconds"),
    [("30d", 30 * 86400), ("12h", 43200), ("90m", 5400), ("45s", 45), ("2w", 1209600),
     ("1d12h", 129600), (" 1.5h ", 5400), ("0s", 0)],
)
def test_parse_duration(text_: str, seconds: float) -> None:
    assert parse_duration(text_) == timedelta(seconds=seconds)


@pytest.mark.parametrize("bad", ["", "30", "d", "30 days", "-1d", "1y", "1d-2h"])
def test_bad_durations(bad: str) -> None:
    with pytest.raises(sessions.InvalidArgumentError):
        parse_duration(bad)


def _store() -> MemorySession:
    store = MemorySession()
    for session_id in ("a", "b", "c"):
        store.append(session_id, [text(0)])
    return store


def test_prune_deletes_only_sessions_not_updated_since_the_cutoff() -> None:
    store = _store()
    assert prune(store, "30d") == []
    time.sleep(0.05)
    store.append("fresh", [text(1)])
    later = datetime.now(timezone.utc) + timedelta(days=31)
    assert sorted(prune(store, "30d", dry_run=True, now=later)) == ["a", "b", "c", "fresh"]
    assert store.count("a") == 1
    fresh = store.info("fresh")
    assert fresh is not None
    assert sorted(prune(store, timedelta(milliseconds=20), now=fresh.updated_at)) == ["a", "b", "c"]
    assert list(store.list_sessions()) == ["fresh"]


async def test_aprune() -> None:
    store = _store()
    later = datetime.now(timezone.utc) + timedelta(hours=2)
    assert sorted(await aprune(store, "1h", dry_run=True, now=later)) == ["a", "b", "c"]
    assert sorted(await aprune(store, "1h", now=later)) == ["a", "b", "c"]
    assert list(store.list_sessions()) == []


def test_prune_refuses_a_negative_age() -> None:
    with pytest.raises(sessions.InvalidArgumentError):
        prune(MemorySession(), timedelta(seconds=-1))
