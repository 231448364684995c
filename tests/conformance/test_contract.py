"""The Session contract, run against every backend and wrapper stack (tests/backends.py)."""

from __future__ import annotations

import copy
import math
import threading
import time
from collections.abc import Iterator
from datetime import datetime
from typing import Any

import pytest

import sessions
from sessions import Session
from tests.backends import Backend
from tests.conformance.messages import ALL_SHAPES, ASSISTANT_TOOL_CALLS, EXTRAS, USER, text


def needs(backend: Backend, feature: str) -> None:
    if feature in backend.lacks:
        pytest.skip(f"{backend.name} does not offer {feature!r} (documented)")


# -- a missing session ------------------------------------------------------------------


def test_missing_session_reads_as_empty(store: Session) -> None:
    assert store.get("nobody") == []
    assert store.get("nobody", limit=5) == []
    assert store.count("nobody") == 0
    assert store.pop("nobody") is None
    assert store.info("nobody") is None
    assert "nobody" not in set(store.list_sessions())


def test_clear_and_delete_of_missing_session_are_noops(store: Session) -> None:
    store.clear("nobody")
    store.delete("nobody")
    assert store.get("nobody") == []
    assert store.info("nobody") is None


# -- order and content -------------------------------------------------------------------


def test_append_then_get_in_append_order(store: Session) -> None:
    store.append("s", [text(0), text(1)])
    store.append("s", [text(2)])
    store.append("s", [text(3), text(4), text(5)])
    assert store.get("s") == [text(i) for i in range(6)]


def test_every_message_shape_round_trips_exactly(store: Session, backend: Backend) -> None:
    needs(backend, "unknown_keys")
    store.append("shapes", ALL_SHAPES)
    assert store.get("shapes") == ALL_SHAPES
    for message in ALL_SHAPES:
        store.append("one-by-one", [message])
    assert store.get("one-by-one") == ALL_SHAPES


def test_unknown_keys_are_preserved(store: Session, backend: Backend) -> None:
    needs(backend, "unknown_keys")
    store.append("s", [EXTRAS])
    got = store.get("s")[0]
    assert got == EXTRAS
    assert got["metadata"]["big"] == 2**62 and type(got["metadata"]["big"]) is int
    assert type(got["metadata"]["nested"]["list"][1]) is float


def test_returned_messages_are_copies(store: Session) -> None:
    message = {"role": "user", "content": [{"type": "text", "text": "original"}]}
    store.append("s", [message])
    message["content"][0]["text"] = "mutated after append"
    got = store.get("s")
    got[0]["content"][0]["text"] = "mutated after get"
    assert store.get("s") == [{"role": "user", "content": [{"type": "text", "text": "original"}]}]


def test_large_message_round_trips(store: Session) -> None:
    big = {"role": "user", "content": "x" * 1_000_000 + "é"}
    store.append("s", [big, USER])
    assert store.get("s") == [big, USER]
    assert store.get("s", limit=1) == [USER]


def test_many_appends_keep_order(store: Session) -> None:
    for i in range(300):
        store.append("s", [text(i)])
    assert store.get("s") == [text(i) for i in range(300)]
    assert store.count("s") == 300


# -- limit ---------------------------------------------------------------------------------


def test_limit_returns_the_last_n_oldest_first(store: Session) -> None:
    store.append("s", [text(i) for i in range(20)])
    assert store.get("s", limit=3) == [text(17), text(18), text(19)]
    assert store.get("s", limit=1) == [text(19)]
    assert store.get("s", limit=20) == [text(i) for i in range(20)]
    assert store.get("s", limit=1000) == [text(i) for i in range(20)]
    assert store.get("s", limit=0) == []
    assert store.get("s", limit=None) == [text(i) for i in range(20)]


@pytest.mark.parametrize("bad", [-1, 1.5, "3", True])
def test_bad_limit_is_refused(store: Session, bad: Any) -> None:
    store.append("s", [USER])
    with pytest.raises(sessions.InvalidArgumentError) as caught:
        store.get("s", limit=bad)
    assert caught.value.session_id == "s" and caught.value.operation == "get"


# -- validation: bad batches store nothing ------------------------------------------------------


class _Opaque:
    pass


BAD_MESSAGES: list[tuple[str, Any]] = [
    ("not a dict", "hello"),
    ("a list", [{"role": "user", "content": "x"}]),
    ("no role", {"content": "x"}),
    ("unknown role", {"role": "robot", "content": "x"}),
    ("role not a str", {"role": 1, "content": "x"}),
    ("unhashable role", {"role": ["user"], "content": "x"}),
    ("set value", {"role": "user", "content": "x", "tags": {1, 2}}),
    ("object value", {"role": "user", "content": "x", "obj": _Opaque()}),
    ("NaN", {"role": "user", "content": "x", "score": math.nan}),
    ("infinity", {"role": "user", "content": "x", "score": math.inf}),
    ("bytes", {"role": "user", "content": b"raw"}),
    ("int key", {"role": "user", "content": "x", "meta": {1: "a"}}),
    ("content not str or list", {"role": "user", "content": 12}),
    ("content part without type", {"role": "user", "content": [{"text": "x"}]}),
    ("tool without tool_call_id", {"role": "tool", "content": "x"}),
    ("tool_calls not a list", {"role": "assistant", "content": None, "tool_calls": "f()"}),
    ("lone surrogate", {"role": "user", "content": "bad \ud800"}),
    ("envelope with other keys", {"envelope": {"v": 1}, "content": "x"}),
    ("malformed envelope", {"envelope": "not a dict"}),
]


@pytest.mark.parametrize(("reason", "bad"), BAD_MESSAGES, ids=[r for r, _ in BAD_MESSAGES])
def test_invalid_message_raises_and_stores_nothing(store: Session, reason: str, bad: Any) -> None:
    store.append("s", [text(0)])
    with pytest.raises(sessions.InvalidMessageError) as caught:
        store.append("s", [text(1), text(2), bad, text(3)])
    error = caught.value
    assert error.index == 2, reason
    assert error.session_id == "s" and error.operation == "append"
    assert "index 2" in str(error)
    assert store.get("s") == [text(0)]
    assert store.count("s") == 1
    with pytest.raises(sessions.InvalidMessageError):
        store.replace("s", [text(9), bad])
    assert store.get("s") == [text(0)]


@pytest.mark.parametrize("batch", [{"role": "user", "content": "x"}, "text", b"bytes", 42, None])
def test_batch_that_is_not_a_list_is_refused(store: Session, batch: Any) -> None:
    with pytest.raises(sessions.InvalidMessageError):
        store.append("s", batch)
    assert store.info("s") is None


def test_empty_batch_is_a_noop(store: Session) -> None:
    store.append("s", [])
    assert store.info("s") is None
    store.append("s", [USER])
    store.append("s", [])
    assert store.get("s") == [USER]


def test_batch_may_be_any_iterable(store: Session) -> None:
    store.append("s", (text(i) for i in range(3)))
    store.append("s", (text(3),))
    assert store.get("s") == [text(i) for i in range(4)]


# -- pop, replace, clear, delete -------------------------------------------------------------


def test_pop_removes_and_returns_the_last_message(store: Session) -> None:
    store.append("s", [text(0), ASSISTANT_TOOL_CALLS])
    assert store.pop("s") == ASSISTANT_TOOL_CALLS
    assert store.get("s") == [text(0)]
    assert store.count("s") == 1
    assert store.pop("s") == text(0)
    assert store.pop("s") is None
    assert store.count("s") == 0
    store.append("s", [text(5)])
    assert store.get("s") == [text(5)]


def test_replace_swaps_the_whole_history(store: Session) -> None:
    store.append("s", [text(i) for i in range(5)])
    store.replace("s", [text(10), text(11)])
    assert store.get("s") == [text(10), text(11)]
    assert store.count("s") == 2
    store.append("s", [text(12)])
    assert store.get("s") == [text(10), text(11), text(12)]
    assert store.get("s", limit=2) == [text(11), text(12)]


def test_replace_creates_a_missing_session_and_accepts_empty(store: Session) -> None:
    store.replace("new", [text(1)])
    assert store.get("new") == [text(1)]
    store.replace("new", [])
    assert store.get("new") == []
    assert store.count("new") == 0


def test_clear_keeps_the_session(store: Session) -> None:
    store.append("s", [text(0), text(1)])
    before = store.info("s")
    assert before is not None
    store.clear("s")
    assert store.get("s") == []
    assert store.count("s") == 0
    after = store.info("s")
    assert after is not None and after.message_count == 0
    assert after.created_at == before.created_at
    assert "s" in set(store.list_sessions())
    store.append("s", [text(2)])
    assert store.get("s") == [text(2)]


def test_delete_removes_the_session(store: Session) -> None:
    store.append("s", [text(0)])
    store.append("other", [text(1)])
    store.delete("s")
    assert store.get("s") == []
    assert store.info("s") is None
    assert "s" not in set(store.list_sessions())
    assert store.get("other") == [text(1)]
    store.append("s", [text(2)])
    assert store.get("s") == [text(2)]


# -- count, info, list_sessions ----------------------------------------------------------------


def test_info_tracks_count_and_times(store: Session) -> None:
    store.append("s", [text(0), text(1)])
    first = store.info("s")
    assert first is not None
    assert first.session_id == "s"
    assert first.message_count == 2
    assert isinstance(first.created_at, datetime) and first.created_at.tzinfo is not None
    assert first.created_at <= first.updated_at
    time.sleep(0.01)
    store.append("s", [text(2)])
    second = store.info("s")
    assert second is not None
    assert second.message_count == 3 == store.count("s")
    assert second.created_at == first.created_at
    assert second.updated_at > first.updated_at


def test_list_sessions_streams_each_id_once(store: Session) -> None:
    ids = [f"user-{i:04d}" for i in range(620)]
    for session_id in ids:
        store.append(session_id, [text(0)])
    listed = store.list_sessions()
    assert isinstance(listed, Iterator)
    seen = list(listed)
    assert sorted(seen) == ids


def test_sessions_are_isolated(store: Session) -> None:
    ids = ["a", "A", "a:b", "ab", "a b", "a/b", "a\\b", "{a}", "a*", "session:a", "a" * 3]
    for i, session_id in enumerate(ids):
        store.append(session_id, [text(i)])
    for i, session_id in enumerate(ids):
        assert store.get(session_id) == [text(i)], session_id
    store.delete("a")
    assert store.get("A") == [text(1)] and store.get("a:b") == [text(2)]
    assert sorted(store.list_sessions()) == sorted(ids[1:])


# -- adversarial session ids ------------------------------------------------------------------

STORABLE_IDS = [
    "../../x",
    "/etc/passwd",
    "C:\\Windows\\system32",
    "..",
    ".",
    "~",
    "CON",
    "🦜💬 chat",
    "é" * 512,  # exactly 1024 UTF-8 bytes
    "x" * 1024,
    " leading and trailing ",
    "new\nline\ttab",
    "%2e%2e%2f",
    "'; DROP TABLE messages; --",
    "*",
    "{slot}",
]
REFUSED_IDS: list[Any] = ["", "a\x00b", "x" * 10_000, "é" * 513, "\ud800", None, 42, b"bytes"]


def test_adversarial_ids_are_stored_under_exactly_that_id(store: Session) -> None:
    for i, session_id in enumerate(STORABLE_IDS):
        store.append(session_id, [text(i)])
    for i, session_id in enumerate(STORABLE_IDS):
        assert store.get(session_id) == [text(i)], session_id
        info = store.info(session_id)
        assert info is not None and info.session_id == session_id
    assert sorted(store.list_sessions()) == sorted(STORABLE_IDS)
    assert store.get("x") == [] and store.get("etc/passwd") == [] and store.get("passwd") == []


@pytest.mark.parametrize("session_id", REFUSED_IDS, ids=repr)
def test_unacceptable_ids_are_refused_everywhere(store: Session, session_id: Any) -> None:
    calls = [
        lambda: store.get(session_id),
        lambda: store.append(session_id, [USER]),
        lambda: store.pop(session_id),
        lambda: store.replace(session_id, [USER]),
        lambda: store.clear(session_id),
        lambda: store.delete(session_id),
        lambda: store.count(session_id),
        lambda: store.info(session_id),
    ]
    for call in calls:
        with pytest.raises(sessions.InvalidSessionIdError):
            call()
    assert list(store.list_sessions()) == []


# -- concurrency ----------------------------------------------------------------------------


def test_concurrent_appends_from_threads_lose_nothing(store: Session) -> None:
    threads, per_thread = 8, 40
    errors: list[BaseException] = []

    def worker(n: int) -> None:
        try:
            for i in range(per_thread):
                store.append("shared", [{"role": "user", "content": f"{n}:{i}"}])
        except BaseException as error:  # pragma: no cover - reported below
            errors.append(error)

    pool = [threading.Thread(target=worker, args=(n,)) for n in range(threads)]
    for thread in pool:
        thread.start()
    for thread in pool:
        thread.join()
    assert not errors
    got = [m["content"] for m in store.get("shared")]
    assert len(got) == threads * per_thread == store.count("shared")
    for n in range(threads):
        mine = [int(c.split(":")[1]) for c in got if c.startswith(f"{n}:")]
        assert mine == list(range(per_thread))


def test_batches_are_never_interleaved(store: Session) -> None:
    def worker(n: int) -> None:
        for i in range(10):
            store.append("shared", [{"role": "user", "content": f"{n}:{i}:{k}"} for k in range(5)])

    pool = [threading.Thread(target=worker, args=(n,)) for n in range(4)]
    for thread in pool:
        thread.start()
    for thread in pool:
        thread.join()
    got = [m["content"] for m in store.get("shared")]
    assert len(got) == 200
    for start in range(0, 200, 5):
        batch = got[start:start + 5]
        prefix = batch[0].rsplit(":", 1)[0]
        assert batch == [f"{prefix}:{k}" for k in range(5)]


def test_store_is_unchanged_by_deepcopy_of_input(store: Session) -> None:
    batch = [copy.deepcopy(m) for m in ALL_SHAPES[:4]]
    store.append("s", batch)
    assert batch == ALL_SHAPES[:4]
