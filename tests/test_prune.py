"""prune / aprune and durations."""

from __future__ import annotations

import threading
import time
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest

import sessions
from sessions import MemorySession, aprune, prune
from sessions.companions import companions
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


# -- prune never deletes what was written after it looked --------------------------------


def _settle() -> None:
    """Let the clock move past the last write, so that a cutoff taken now is after it."""
    time.sleep(0.02)


@pytest.mark.parametrize("mode", ["sync", "async"])
async def test_an_append_between_the_read_and_the_delete_keeps_the_session(
        store: sessions.Session, mode: str, monkeypatch: pytest.MonkeyPatch) -> None:
    """Another writer appends to a session right after prune read its (old) metadata:
    the append is acknowledged, so the session must survive with it."""
    store.append("busy", [text(0)])
    store.append("idle", [text(1)])
    _settle()
    name = "info" if mode == "sync" else "ainfo"
    read = getattr(store, name)

    def append_after_reading(session_id: str) -> object:
        info = read(session_id)
        if session_id == "busy":
            store.append("busy", [text(2)])  # acknowledged before prune goes on
        return info

    async def aappend_after_reading(session_id: str) -> object:
        info = await read(session_id)
        if session_id == "busy":
            await store.aappend("busy", [text(2)])
        return info

    monkeypatch.setattr(store, name, append_after_reading if mode == "sync" else aappend_after_reading)
    pruned = prune(store, "0s") if mode == "sync" else await aprune(store, "0s")
    assert pruned == ["idle"]
    assert store.get("busy") == [text(0), text(2)]
    assert store.get("idle") == [] and store.info("idle") is None


@pytest.mark.parametrize("mode", ["sync", "async"])
async def test_delete_if_idle_is_conditional(store: sessions.Session, mode: str) -> None:
    assert isinstance(store, sessions.SupportsDeleteIfIdle)
    store.append("s", [text(0)])
    info = store.info("s")
    assert info is not None

    async def delete_if_idle(cutoff: datetime) -> bool:
        if mode == "sync":
            return store.delete_if_idle("s", cutoff)  # type: ignore[attr-defined, no-any-return]
        return await store.adelete_if_idle("s", cutoff)  # type: ignore[attr-defined, no-any-return]

    assert await delete_if_idle(info.updated_at - timedelta(seconds=1)) is False
    assert await delete_if_idle(info.updated_at) is False  # updated at the cutoff: not before it
    assert store.get("s") == [text(0)]
    assert await delete_if_idle(info.updated_at + timedelta(seconds=1)) is True
    assert store.info("s") is None and store.get("s") == []
    assert await delete_if_idle(info.updated_at + timedelta(seconds=1)) is False  # missing: no-op
    with pytest.raises(sessions.InvalidArgumentError):
        await delete_if_idle(datetime.now())  # naive: refused
    with pytest.raises(sessions.InvalidSessionIdError):
        store.delete_if_idle("", info.updated_at)  # type: ignore[attr-defined]


def _prune_until(store: sessions.Session, cutoff_time: datetime, start: threading.Barrier,
                 stop: threading.Event, errors: list[BaseException]) -> None:
    try:
        start.wait()
        while not stop.is_set():
            prune(store, "0s", now=cutoff_time)
    except BaseException as error:  # pragma: no cover - reported by the test
        errors.append(error)


def test_prune_racing_appends_loses_nothing_acknowledged(store: sessions.Session) -> None:
    """A pruner with a fixed cutoff races a writer: the session may go only while no
    append has landed (every append makes it newer than the cutoff), so every
    acknowledged append must be there at the end."""
    rounds, appends = 6, 8
    for round_ in range(rounds):
        session_id = f"race-{round_}"
        store.append(session_id, [text(0)])
        _settle()
        start, stop = threading.Barrier(2), threading.Event()
        errors: list[BaseException] = []
        thread = threading.Thread(target=_prune_until, args=(
            store, datetime.now(timezone.utc), start, stop, errors))
        thread.start()
        start.wait()
        for number in range(1, appends + 1):
            store.append(session_id, [text(number)])
        stop.set()
        thread.join()
        assert not errors, errors
        got = store.get(session_id)
        written = [text(n) for n in range(1, appends + 1)]
        assert got in ([text(0), *written], written), (round_, got)


class _ProtocolOnly:
    """A store of someone else's: the Session protocol, without delete_if_idle."""

    def __init__(self) -> None:
        self._inner = MemorySession()
        self.deleted: list[str] = []

    def delete(self, session_id: str) -> None:
        self.deleted.append(session_id)
        self._inner.delete(session_id)


for _name in ("get", "append", "clear", "pop", "replace", "count", "list_sessions", "info", "close",
              "aget", "aappend", "aclear", "adelete", "apop", "areplace", "acount", "alist_sessions",
              "ainfo", "aclose"):
    setattr(_ProtocolOnly, _name,
            lambda self, *args, _name=_name: getattr(self._inner, _name)(*args))


def test_a_protocol_only_store_is_pruned_by_info_then_delete() -> None:
    store = _ProtocolOnly()
    store.append("old", [text(0)])  # type: ignore[attr-defined]
    assert isinstance(store, sessions.Session)
    assert not isinstance(store, sessions.SupportsDeleteIfIdle)
    later = datetime.now(timezone.utc) + timedelta(days=2)
    assert prune(store, "1d", now=later) == ["old"]  # type: ignore[arg-type]
    assert store.deleted == ["old", *companions("old")]  # the conversation, then its companions


@pytest.mark.parametrize("older_than", ["3000000w", timedelta.max])
def test_ages_beyond_the_calendar_prune_nothing(older_than: object) -> None:
    store = _store()
    assert prune(store, older_than) == []  # type: ignore[arg-type]
    assert sorted(store.list_sessions()) == ["a", "b", "c"]


@pytest.mark.parametrize("older_than", ["99999999999d", "9" * 400 + "s"])
def test_durations_longer_than_a_timedelta_are_refused(older_than: str) -> None:
    with pytest.raises(sessions.InvalidArgumentError, match="too long"):
        prune(_store(), older_than)


@pytest.mark.parametrize(
    ("kwargs", "needle"),
    [({"now": datetime(2030, 1, 1)}, "timezone-aware"), ({"now": "2030-01-01"}, "datetime"),
     ({"dry_run": "no"}, "dry_run"), ({"older_than": 30}, "older_than"),
     ({"older_than": "1e5d"}, "bad duration")],
)
def test_bad_prune_arguments_raise_invalid_argument(kwargs: dict[str, object], needle: str) -> None:
    arguments: dict[str, object] = {"older_than": "1d", **kwargs}
    with pytest.raises(sessions.InvalidArgumentError, match=needle):
        prune(_store(), **arguments)  # type: ignore[arg-type]


def test_conversations_append_racing_a_prune_elsewhere_is_not_acknowledged(tmp_path: Path) -> None:
    """Two processes share a Conversations id map: one prunes a session while the
    other is writing items into its conversation. The append must not report success
    for messages that went into a conversation the session no longer names."""
    import openai

    from tests.backends import conversations_server

    client = openai.OpenAI(api_key="test-key", base_url=conversations_server().base_url, max_retries=0)
    id_map = tmp_path / "map.db"
    with sessions.ConversationsSession(client, id_map=id_map) as writer, \
            sessions.ConversationsSession(client, id_map=id_map) as pruner:
        writer.append("s", [text(0)])
        _settle()
        record = writer.map.add_messages

        def pruned_meanwhile(*args: object) -> bool:
            assert prune(pruner, "0s") == ["s"]
            return record(*args)  # type: ignore[arg-type]

        writer.map.add_messages = pruned_meanwhile  # type: ignore[method-assign]
        with pytest.raises(sessions.BackendUnavailableError, match="deleted or replaced"):
            writer.append("s", [text(1)])
        writer.map.add_messages = record  # type: ignore[method-assign]
        assert writer.get("s") == [] and pruner.info("s") is None
        writer.append("s", [text(1)])  # a retry starts the session again
        assert pruner.get("s") == [text(1)]
    client.close()
