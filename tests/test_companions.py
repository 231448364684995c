"""Companion sessions go with their conversation: never listed, deleted with it, never
pruned alone, migrated with it; on every backend and wrapper stack, sync and async."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import sessions
from sessions import MemorySession, Session, aprune, migrate, prune
from sessions.companions import (
    COMPANION_SUFFIXES,
    adelete_conversation,
    companions,
    delete_conversation,
    is_companion,
)
from tests.conformance.messages import text
from tests.test_cli import run

MARK = {"role": "system", "content": "", "x-state": {"archived": 2}}


def _companion(session_id: str) -> str:
    return session_id + COMPANION_SUFFIXES[0]


def _fill(store: Session) -> None:
    store.append("conv", [text(0), text(1)])
    store.append(_companion("conv"), [MARK])
    store.append("other", [text(2)])


def test_companion_ids() -> None:
    assert companions("conv") == tuple(f"conv{suffix}" for suffix in COMPANION_SUFFIXES)
    assert is_companion(_companion("conv")) and not is_companion("conv")
    assert companions(_companion("conv")) == ()
    assert companions("x" * sessions.MAX_SESSION_ID_BYTES) == ()  # no room for a suffix


def test_companions_are_not_listed_and_go_with_their_conversation(store: Session) -> None:
    _fill(store)
    assert sorted(store.list_sessions()) == ["conv", "other"]
    assert store.get(_companion("conv")) == [MARK]  # still readable by its id
    delete_conversation(store, "conv")
    assert store.info("conv") is None and store.info(_companion("conv")) is None
    assert list(store.list_sessions()) == ["other"]
    # Session.delete deletes one session, in one round trip: the companion stays
    # (unlisted) until its conversation is deleted again with its companions.
    store.append(_companion("other"), [MARK])
    store.delete("other")
    assert store.get(_companion("other")) == [MARK] and list(store.list_sessions()) == []
    delete_conversation(store, "other")
    assert store.info(_companion("other")) is None


async def test_companions_are_not_listed_and_go_with_their_conversation_async(store: Session) -> None:
    await store.aappend("conv", [text(0)])
    await store.aappend(_companion("conv"), [MARK])
    assert [sid async for sid in store.alist_sessions()] == ["conv"]
    await adelete_conversation(store, "conv")
    assert await store.ainfo("conv") is None and await store.ainfo(_companion("conv")) is None


class _ListsEverything(MemorySession):
    """A store whose listing shows companions (as one implementing the protocol might)."""

    def list_sessions(self) -> Iterator[str]:
        return self._iter_sessions()


async def test_prune_judges_the_conversation_and_never_a_companion_alone() -> None:
    for store in (MemorySession(), _ListsEverything()):
        store.append(_companion("conv"), [MARK])
        await asyncio.sleep(0.02)
        store.append("conv", [text(0)])  # the conversation goes on; its mark is older
        mark, conv = store.info(_companion("conv")), store.info("conv")
        assert mark is not None and conv is not None
        between = mark.updated_at + (conv.updated_at - mark.updated_at) / 2
        assert prune(store, timedelta(0), now=between) == []
        assert await aprune(store, timedelta(0), now=between) == []
        assert store.get(_companion("conv")) == [MARK]
        later = conv.updated_at + timedelta(seconds=1)
        assert prune(store, timedelta(0), now=later) == ["conv"]
        assert store.info(_companion("conv")) is None
        store.append("conv", [text(0)])
        store.append(_companion("conv"), [MARK])
        assert await aprune(store, timedelta(0), now=later + timedelta(seconds=1)) == ["conv"]
        assert store.info(_companion("conv")) is None


def test_migrate_carries_companions_with_their_conversation(tmp_path: Path) -> None:
    source = MemorySession()
    _fill(source)
    with sessions.SQLiteSession(tmp_path / "target.db") as target:
        report = migrate(source, target)
        assert report.sessions == 2 and report.ok
        assert target.get(_companion("conv")) == [MARK]
        assert migrate(source, target, verify=True).ok
        assert migrate(source, target).messages_written == 0

        changed = {**MARK, "x-state": {"archived": 1}}
        source.replace(_companion("conv"), [changed])
        assert migrate(source, target, verify=True).different == ["conv"]
        migrate(source, target)
        assert target.get(_companion("conv")) == [changed]

        source.delete(_companion("conv"))
        migrate(source, target, session_id="conv")
        assert target.info(_companion("conv")) is None

        # A conversation left different (skipped) keeps the target's companion.
        target.replace(_companion("conv"), [MARK])
        source.append("conv", [text(9)])
        target.append("conv", [text(8)])
        assert migrate(source, target, on_conflict="skip").different == ["conv"]
        assert target.get(_companion("conv")) == [MARK]


async def test_amigrate_carries_companions(tmp_path: Path) -> None:
    source = MemorySession()
    _fill(source)
    target = MemorySession()
    report = await sessions.amigrate(source, target)
    assert report.sessions == 2 and target.get(_companion("conv")) == [MARK]


def test_the_command_line_does_not_show_companions(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path}/cli.db"
    with sessions.connect(url) as store:
        _fill(store)
    listed = run("--url", url, "list", cwd=tmp_path)
    assert listed.returncode == 0, listed.stderr
    assert [line.split(None, 3)[3] for line in listed.stdout.splitlines()] in (["conv", "other"],
                                                                             ["other", "conv"])
    stats = run("--url", url, "stats", cwd=tmp_path)
    assert "sessions: 2" in stats.stdout and "messages: 3" in stats.stdout
    exported = run("--url", url, "export", cwd=tmp_path)
    assert COMPANION_SUFFIXES[0] not in exported.stdout
    deleted = run("--url", url, "delete", "conv", "--yes", cwd=tmp_path)
    assert deleted.returncode == 0, deleted.stderr
    with sessions.connect(url) as store:
        assert store.info(_companion("conv")) is None
