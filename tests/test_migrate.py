"""migrate / amigrate: every pair of stores, idempotence, conflicts, verification."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

import sessions
from sessions import ConflictError, MemorySession, Session, amigrate, migrate
from tests.backends import BACKENDS, TEST_KEY, Backend
from tests.conformance.messages import ALL_SHAPES, ASSISTANT_TOOL_CALLS, TOOL_1, TOOL_2, USER_PARTS, text

#: Stores migrated between, every ordered pair; those not in BACKENDS (servers not
#: merged or configured) are left out, so a new backend joins by its name here.
MIGRATION_BACKENDS = ("memory", "sqlite", "file", "redis", "postgres",
                      "gzip+sqlite", "aes+memory", "gzip+aes+sqlite")
CHOSEN = [b for name in MIGRATION_BACKENDS for b in BACKENDS if b.name == name]
PAIRS = [pytest.param(s, t, id=f"{s.name}->{t.name}", marks=[*s.marks, *t.marks])
         for s in CHOSEN for t in CHOSEN]

CONTENT: dict[str, list[dict[str, Any]]] = {
    "chat": ALL_SHAPES,
    "tools": [text(0), ASSISTANT_TOOL_CALLS, TOOL_1, TOOL_2, {"role": "assistant", "content": "done"}],
    "images": [USER_PARTS, {"role": "assistant", "content": "a cat", "x-meta": {"n": 1.0, "b": True}}],
    "🦜 ../x": [text(i) for i in range(150)],
}


@contextlib.contextmanager
def _open(backend: Backend, directory: Path) -> Iterator[Session]:
    directory.mkdir()
    with backend.open(directory) as store:
        yield store


def _fill(store: Session) -> None:
    for session_id, messages in CONTENT.items():
        store.append(session_id, messages)
    store.append("emptied", [text(0)])
    store.clear("emptied")


@pytest.mark.parametrize(("source_backend", "target_backend"), PAIRS)
def test_migration_between_every_pair_run_twice(source_backend: Backend, target_backend: Backend,
                                                tmp_path: Path) -> None:
    with _open(source_backend, tmp_path / "src") as source, \
            _open(target_backend, tmp_path / "dst") as target:
        _fill(source)
        first = migrate(source, target)
        assert first.sessions == 5 and first.copied == 5 and first.ok
        assert first.messages_written == sum(map(len, CONTENT.values()))
        for session_id, messages in CONTENT.items():
            assert target.get(session_id) == messages, session_id
        assert target.info("emptied") is not None and target.count("emptied") == 0
        assert sorted(target.list_sessions()) == sorted([*CONTENT, "emptied"])
        stamps = {sid: target.info(sid) for sid in target.list_sessions()}

        second = migrate(source, target)
        assert second.unchanged == 5 and second.messages_written == 0
        assert {sid: target.info(sid) for sid in target.list_sessions()} == stamps
        assert migrate(source, target, verify=True).ok


async def test_amigrate_matches_migrate() -> None:
    source, target = MemorySession(), sessions.with_encryption(MemorySession(), TEST_KEY)
    _fill(source)
    seen: list[tuple[int, int | None, str]] = []
    report = await amigrate(source, target, progress=lambda d, t, s: seen.append((d, t, s)))
    assert report.copied == 5 and [d for d, _, _ in seen] == [1, 2, 3, 4, 5]
    assert {t for _, t, _ in seen} == {5}
    for session_id, messages in CONTENT.items():
        assert await target.aget(session_id) == messages
    again = await amigrate(source, target)
    assert again.unchanged == 5 and again.messages_written == 0
    assert (await amigrate(source, target, verify=True)).ok


def test_a_prefix_in_the_target_gets_the_rest_appended() -> None:
    source, target = MemorySession(), MemorySession()
    source.append("s", [text(i) for i in range(10)])
    target.append("s", [text(i) for i in range(4)])
    report = migrate(source, target)
    assert report.appended == 1 and report.messages_written == 6
    assert target.get("s") == source.get("s")


def test_conflicts_error_by_default_then_skip_or_replace() -> None:
    source, target = MemorySession(), MemorySession()
    source.append("a", [text(0)])
    source.append("b", [text(1), text(2)])
    target.append("b", [text(1), text(99)])
    with pytest.raises(ConflictError) as caught:
        migrate(source, target, "b")
    assert caught.value.session_id == "b" and caught.value.operation == "migrate"
    assert target.get("b") == [text(1), text(99)]

    skipped = migrate(source, target, on_conflict="skip")
    assert skipped.different == ["b"] and not skipped.ok and skipped.copied == 1
    assert target.get("b") == [text(1), text(99)]

    replaced = migrate(source, target, on_conflict="replace")
    assert replaced.replaced == 1 and replaced.unchanged == 1
    assert target.get("b") == [text(1), text(2)]


def test_target_longer_than_source_is_a_conflict() -> None:
    source, target = MemorySession(), MemorySession()
    source.append("s", [text(0)])
    target.append("s", [text(0), text(1)])
    with pytest.raises(ConflictError):
        migrate(source, target)


def test_equality_is_exact_json() -> None:
    """1, 1.0 and true are equal in Python but not the same stored message."""
    source, target = MemorySession(), MemorySession()
    source.append("s", [{"role": "user", "content": "x", "n": 1}])
    target.append("s", [{"role": "user", "content": "x", "n": True}])
    report = migrate(source, target, verify=True)
    assert report.different == ["s"] and not report.ok
    migrate(source, target, on_conflict="replace")
    assert type(target.get("s")[0]["n"]) is int


def test_verify_writes_nothing_and_lists_differences() -> None:
    source, target = MemorySession(), MemorySession()
    _fill(source)
    report = migrate(source, target, verify=True)
    assert report.verified_only and sorted(report.different) == sorted([*CONTENT, "emptied"])
    assert list(target.list_sessions()) == []


async def test_a_session_missing_from_the_source_is_not_created() -> None:
    source, target = MemorySession(), MemorySession()
    report = migrate(source, target, "ghost")
    assert report.unchanged == 1 and target.info("ghost") is None
    assert (await amigrate(source, target, "ghost")).unchanged == 1
    assert target.info("ghost") is None
    source.append("ghost", [text(0)])
    source.clear("ghost")
    assert migrate(source, target, "ghost").copied == 1
    assert target.info("ghost") is not None


def test_bad_arguments() -> None:
    with pytest.raises(sessions.InvalidArgumentError):
        migrate(MemorySession(), MemorySession(), on_conflict="overwrite")
    with pytest.raises(sessions.InvalidSessionIdError):
        migrate(MemorySession(), MemorySession(), "")


def test_undecryptable_source_stops_the_migration_without_writing() -> None:
    inner = MemorySession()
    sessions.with_encryption(inner, TEST_KEY).append("s", [text(0)])
    target = MemorySession()
    with pytest.raises(sessions.DecryptionError):
        migrate(sessions.with_encryption(inner, bytes(32)), target)
    assert list(target.list_sessions()) == []
