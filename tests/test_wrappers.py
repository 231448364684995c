"""Compression and encryption wrappers: what the conformance suite cannot see.

Round trips through every stack and order, envelopes that cannot be confused with
messages, compression that really shrinks, tampering (each case raising
DecryptionError with the stored records unchanged), key rotation.
"""

from __future__ import annotations

import base64
import random
import sqlite3
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

import sessions
from sessions import DecryptionError, MemorySession, Session, with_compression, with_encryption
from tests.backends import TEST_KEY
from tests.conformance.messages import ALL_SHAPES, text

OTHER_KEY = bytes(range(100, 132))
KEY_16 = b"0123456789abcdef"
KEY_24 = b"0123456789abcdef01234567"

STACKS: dict[str, Callable[[Session], Session]] = {
    "gzip": lambda s: with_compression(s),
    "gzip-always": lambda s: with_compression(s, threshold=0),
    "zlib": lambda s: with_compression(s, algorithm="zlib", threshold=0, level=9),
    "aes128": lambda s: with_encryption(s, KEY_16),
    "aes192": lambda s: with_encryption(s, KEY_24),
    "aes256": lambda s: with_encryption(s, TEST_KEY),
    "gzip(aes)": lambda s: with_compression(with_encryption(s, TEST_KEY), threshold=0),
    "aes(gzip)": lambda s: with_encryption(with_compression(s, threshold=0), TEST_KEY),
    "gzip(gzip)": lambda s: with_compression(with_compression(s, threshold=0), threshold=0),
    "aes(aes)": lambda s: with_encryption(with_encryption(s, OTHER_KEY), TEST_KEY),
}

LONG = {"role": "assistant", "content": "The quick brown fox jumps over the lazy dog. " * 40}


@pytest.fixture(params=["memory", "sqlite"])
def inner(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Session]:
    store: Session = MemorySession() if request.param == "memory" else sessions.SQLiteSession(
        tmp_path / "inner.db")
    yield store
    store.close()


@pytest.mark.parametrize("stack", list(STACKS))
async def test_every_shape_round_trips_through_every_stack(stack: str, inner: Session) -> None:
    store = STACKS[stack](inner)
    batch = [*ALL_SHAPES, LONG]
    store.append("s", batch)
    await store.aappend("s", batch)
    assert store.get("s") == batch + batch
    assert await store.aget("s", limit=3) == batch[-3:]
    assert store.pop("s") == LONG
    assert await store.apop("s") == ALL_SHAPES[-1]
    store.replace("t", ALL_SHAPES)
    assert store.get("t") == ALL_SHAPES
    assert inner.count("s") == 2 * len(batch) - 2


def test_caller_envelopes_and_lookalikes_round_trip_exactly() -> None:
    looks_compressed = {"envelope": {"v": 1, "alg": "gzip", "data": "bm90IGd6aXA="}}
    looks_encrypted = {"envelope": {"v": 1, "alg": "A256GCM", "kid": "x", "nonce": "", "data": ""}}
    seed_style = {"role": "system", "content": "__COMPRESSED__:H4sIAAAAAAAA"}
    batch = [looks_compressed, looks_encrypted, seed_style, text(1)]
    for stack in STACKS.values():
        store = stack(MemorySession())
        store.append("s", batch)
        assert store.get("s") == batch


def test_small_messages_stay_plain_and_mix_with_envelopes() -> None:
    inner = MemorySession()
    store = with_compression(inner, threshold=256)
    store.append("s", [text(0), LONG, text(1)])
    raw = inner.get("s")
    assert raw[0] == text(0) and raw[2] == text(1)
    assert set(raw[1]) == {"envelope"} and raw[1]["envelope"]["alg"] == "gzip"
    assert raw[1]["envelope"]["v"] == 1
    assert store.get("s") == [text(0), LONG, text(1)]
    # An incompressible large message is kept as it is rather than grown.
    noise = {"role": "user", "content": base64.b64encode(random.Random(1).randbytes(1024)).decode()}
    store.append("s", [noise])
    assert inner.get("s", limit=1) == [noise]


TEXT = ("the report shows revenue growth across every region while costs stayed flat "
        "because the team renegotiated supplier contracts and moved storage to cheaper tiers "
        "customers asked about delivery dates pricing refunds and the new dashboard which "
        "summarises weekly usage per account with charts tables and exports")
WORDS = TEXT.split()


def _history(count: int) -> list[dict[str, Any]]:
    """A chat of short questions, long answers and tool calls (a typical agent history)."""
    rng = random.Random(7)

    def prose(words: int) -> str:
        return " ".join(rng.choice(WORDS) for _ in range(words)).capitalize() + "."

    history: list[dict[str, Any]] = []
    while len(history) < count:
        n = len(history)
        history.append({"role": "user", "content": prose(25)})
        history.append({"role": "assistant", "content": None, "tool_calls": [{
            "id": f"call_{n}", "type": "function",
            "function": {"name": "search_reports", "arguments": f'{{"query": "{prose(6)}"}}'}}]})
        history.append({"role": "tool", "tool_call_id": f"call_{n}", "content": prose(120)})
        history.append({"role": "assistant", "content": prose(180), "id": f"msg_{n}"})
    return history[:count]


def _sqlite_bytes(path: Path) -> int:
    conn = sqlite3.connect(path)
    try:
        return int(conn.execute("SELECT sum(length(CAST(body AS BLOB))) FROM session_layer_messages")
                   .fetchone()[0])
    finally:
        conn.close()


def test_compression_shrinks_a_long_history_on_disk(tmp_path: Path) -> None:
    history = _history(2000)
    sizes = {}
    for name, wrap in [("plain", lambda s: s), ("gzip", lambda s: with_compression(s, threshold=0)),
                       ("gzip(aes)", STACKS["gzip(aes)"])]:
        path = tmp_path / f"{name}.db"
        with sessions.SQLiteSession(path) as base:
            store = wrap(base)
            for start in range(0, len(history), 100):
                store.append("long", history[start:start + 100])
            assert store.get("long") == history
        sizes[name] = _sqlite_bytes(path)
    assert sizes["gzip"] < sizes["plain"] * 0.75
    assert sizes["gzip(aes)"] < sizes["plain"]


@pytest.mark.parametrize(
    ("kwargs", "needle"),
    [({"algorithm": "brotli"}, "algorithm"), ({"level": 10}, "level"), ({"level": "6"}, "level"),
     ({"threshold": -1}, "threshold")],
)
def test_bad_compression_options_are_refused(kwargs: dict[str, Any], needle: str) -> None:
    with pytest.raises(sessions.ConfigurationError, match=needle):
        with_compression(MemorySession(), **kwargs)


def test_wrapping_something_that_is_not_a_session_is_refused() -> None:
    with pytest.raises(sessions.ConfigurationError):
        with_compression(object())  # type: ignore[arg-type]


@pytest.mark.parametrize(
    "key",
    [b"short", b"x" * 31, b"x" * 33, b"", "0" * 32, 42, [], [TEST_KEY, b"bad"], [TEST_KEY, TEST_KEY],
     {"": TEST_KEY}, {"k": "not bytes"}],
    ids=repr,
)
def test_bad_keys_are_refused_at_construction(key: Any) -> None:
    with pytest.raises(sessions.ConfigurationError):
        with_encryption(MemorySession(), key)


def test_missing_cryptography_names_the_extra(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "cryptography.hazmat.primitives.ciphers.aead", None)
    with pytest.raises(sessions.MissingDependencyError) as caught:
        with_encryption(MemorySession(), TEST_KEY)
    assert "pip install 'session-layer[crypto]'" in str(caught.value)


def test_encryption_stores_no_plaintext_and_a_fresh_nonce_per_message() -> None:
    inner = MemorySession()
    store = with_encryption(inner, TEST_KEY)
    store.append("s", [USER_SECRET, USER_SECRET])
    raw = inner.get("s")
    assert "hunter2" not in repr(raw)
    first, second = raw[0]["envelope"], raw[1]["envelope"]
    assert first["nonce"] != second["nonce"] and first["data"] != second["data"]
    assert first["kid"] == sessions.key_id(TEST_KEY) and first["alg"] == "A256GCM"


USER_SECRET = {"role": "user", "content": "my password is hunter2"}


# -- tampering: each case raises DecryptionError naming the session, changes nothing ------


def _flip(b64: str, position: int = 0) -> str:
    data = bytearray(base64.b64decode(b64))
    data[position] ^= 0x01
    return base64.b64encode(bytes(data)).decode()


def _edit(field: str, change: Callable[[Any], Any]) -> Callable[[dict[str, Any]], dict[str, Any]]:
    def edit(envelope: dict[str, Any]) -> dict[str, Any]:
        body = dict(envelope["envelope"])
        if change is _drop:
            del body[field]
        else:
            body[field] = change(body[field])
        return {"envelope": body}
    return edit


def _drop(value: Any) -> Any:
    return value


TAMPERINGS: dict[str, Callable[[dict[str, Any]], dict[str, Any]]] = {
    "flip a ciphertext byte": _edit("data", _flip),
    "flip the last tag byte": _edit("data", lambda d: _flip(d, -1)),
    "flip a nonce byte": _edit("nonce", _flip),
    "truncated data": _edit("data", lambda d: d[:8]),
    "data cut to nothing": _edit("data", lambda d: ""),
    "no nonce": _edit("nonce", _drop),
    "no data": _edit("data", _drop),
    "not base64": _edit("data", lambda d: "%%%" + d),
    "other key id": _edit("kid", lambda k: "k00000000"),
    "other algorithm": _edit("alg", lambda a: "A128GCM"),
    "newer version": _edit("v", lambda v: 2),
    "plain message instead": lambda e: {"role": "user", "content": "injected"},
    "compression envelope instead": lambda e: {"envelope": {"v": 1, "alg": "gzip", "data": ""}},
}


def _destructive_calls(store: sessions.EncryptedSession) -> list[tuple[str, Callable[[], Any]]]:
    return [
        ("get", lambda: store.get("alice")),
        ("get", lambda: store.get("alice", limit=1)),
        ("pop", lambda: store.pop("alice")),
        ("clear", lambda: store.clear("alice")),
        ("replace", lambda: store.replace("alice", [text(9)])),
        ("reencrypt", lambda: store.reencrypt("alice")),
    ]


def _async_calls(store: sessions.EncryptedSession) -> list[tuple[str, Callable[[], Any]]]:
    return [
        ("get", lambda: store.aget("alice")),
        ("pop", lambda: store.apop("alice")),
        ("clear", lambda: store.aclear("alice")),
        ("replace", lambda: store.areplace("alice", [text(9)])),
        ("reencrypt", lambda: store.areencrypt("alice")),
    ]


@pytest.mark.parametrize("tampering", list(TAMPERINGS))
async def test_tampered_record_raises_and_changes_nothing(tampering: str, inner: Session) -> None:
    store = with_encryption(inner, TEST_KEY)
    store.append("alice", [text(0), text(1), text(2)])
    raw = inner.get("alice")
    inner.replace("alice", [raw[0], raw[1], TAMPERINGS[tampering](raw[2])])
    before = inner.get("alice")
    for operation, call in _destructive_calls(store):
        with pytest.raises(DecryptionError) as caught:
            call()
        assert caught.value.session_id == "alice" and "alice" in str(caught.value)
        assert caught.value.operation == operation
        assert inner.get("alice") == before, operation
    for operation, acall in _async_calls(store):
        with pytest.raises(DecryptionError) as caught:
            await acall()
        assert caught.value.operation == operation
        assert inner.get("alice") == before, operation
    # The readable part is still readable, and deleting stays possible.
    assert store.get("alice", limit=0) == []
    store.delete("alice")
    assert inner.get("alice") == [] and store.info("alice") is None


def test_flipped_byte_in_the_database_file(tmp_path: Path) -> None:
    path = tmp_path / "s.db"
    with sessions.SQLiteSession(path) as base:
        store = with_encryption(base, TEST_KEY)
        store.append("alice", [text(0), text(1)])
        conn = sqlite3.connect(path)
        body = conn.execute("SELECT body FROM session_layer_messages ORDER BY seq LIMIT 1").fetchone()[0]
        start = body.index('"data":"') + len('"data":"') + 5
        flipped = body[:start] + ("A" if body[start] != "A" else "B") + body[start + 1:]
        with conn:
            conn.execute("UPDATE session_layer_messages SET body = ? WHERE seq = 0", (flipped,))
        conn.close()
        before = base.get("alice")
        with pytest.raises(DecryptionError, match="alice"):
            store.get("alice")
        with pytest.raises(DecryptionError):
            store.clear("alice")
        assert store.pop("alice") == text(1)  # the last record is intact: pop works
        assert base.get("alice") == before[:1]


def test_record_moved_to_another_session_fails(inner: Session) -> None:
    store = with_encryption(inner, TEST_KEY)
    store.append("alice", [USER_SECRET])
    store.append("bob", [text(0)])
    inner.append("bob", inner.get("alice"))
    before = inner.get("bob")
    with pytest.raises(DecryptionError) as caught:
        store.get("bob")
    assert caught.value.session_id == "bob"
    with pytest.raises(DecryptionError):
        store.pop("bob")
    assert inner.get("bob") == before
    assert store.get("alice") == [USER_SECRET]


def test_wrong_key_raises_and_deletes_nothing(inner: Session) -> None:
    with_encryption(inner, TEST_KEY).append("alice", [text(0), text(1)])
    before = inner.get("alice")
    wrong = with_encryption(inner, OTHER_KEY)
    for operation, call in _destructive_calls(wrong):
        with pytest.raises(DecryptionError, match="wrong key") as caught:
            call()
        assert caught.value.session_id == "alice", operation
        assert inner.get("alice") == before, operation
    # Same key material under another id is still refused (the id is authenticated).
    renamed = with_encryption(inner, {"renamed": TEST_KEY})
    with pytest.raises(DecryptionError):
        renamed.get("alice")


def test_force_destroys_what_cannot_be_read(inner: Session) -> None:
    with_encryption(inner, TEST_KEY).append("alice", [text(0)])
    wrong = with_encryption(inner, OTHER_KEY)
    wrong.replace("alice", [text(5)], force=True)
    assert wrong.get("alice") == [text(5)]
    stacked = with_compression(with_encryption(inner, TEST_KEY))
    with pytest.raises(DecryptionError):
        stacked.clear("alice")
    stacked.clear("alice", force=True)
    assert inner.get("alice") == [] and inner.info("alice") is not None


def test_pop_puts_back_a_record_it_cannot_read_after_a_race() -> None:
    """Another writer appends an unreadable record between pop's read and its removal."""
    bad = {"envelope": {"v": 1, "alg": "A256GCM", "kid": sessions.key_id(TEST_KEY),
                        "nonce": "AAAAAAAAAAAAAAAA", "data": "AAAAAAAAAAAAAAAAAAAAAA=="}}

    class Racing(MemorySession):
        def pop(self, session_id: str) -> dict[str, Any] | None:
            self.append(session_id, [bad])
            return super().pop(session_id)

    inner = Racing()
    store = with_encryption(inner, TEST_KEY)
    store.append("alice", [text(0)])
    with pytest.raises(DecryptionError):
        store.pop("alice")
    assert inner.get("alice")[-1] == bad and inner.count("alice") == 2


# -- key rotation ---------------------------------------------------------------------------


async def test_rotation_reads_old_records_and_reencrypts(inner: Session) -> None:
    old = with_encryption(inner, TEST_KEY)
    old.append("alice", [text(0), text(1)])
    old.append("bob", [text(7)])
    ring = with_encryption(inner, [OTHER_KEY, TEST_KEY])
    assert ring.key_ids == [sessions.key_id(OTHER_KEY), sessions.key_id(TEST_KEY)]
    ring.append("alice", [text(2)])
    assert ring.get("alice") == [text(0), text(1), text(2)]
    kids = [r["envelope"]["kid"] for r in inner.get("alice")]
    assert kids == [sessions.key_id(TEST_KEY)] * 2 + [sessions.key_id(OTHER_KEY)]

    assert ring.reencrypt("alice") == 3
    assert {r["envelope"]["kid"] for r in inner.get("alice")} == {sessions.key_id(OTHER_KEY)}
    stamp = inner.info("alice")
    assert ring.reencrypt("alice") == 0  # already under the newest key: nothing written
    assert inner.info("alice") == stamp
    assert await ring.areencrypt("bob") == 1
    assert ring.reencrypt("nobody") == 0

    new_only = with_encryption(inner, OTHER_KEY)
    assert new_only.get("alice") == [text(0), text(1), text(2)]
    assert new_only.get("bob") == [text(7)]
    with pytest.raises(DecryptionError):
        old.get("alice")


def test_named_key_ids_and_rotation_through_a_compressed_stack() -> None:
    inner = MemorySession()
    v1 = with_compression(with_encryption(inner, {"2024-01": TEST_KEY}), threshold=0)
    v1.append("s", [LONG, text(0)])
    ring = with_encryption(inner, {"2025-06": OTHER_KEY, "2024-01": TEST_KEY})
    v2 = with_compression(ring, threshold=0)
    assert v2.get("s") == [LONG, text(0)]
    assert ring.reencrypt("s") == 2
    assert [r["envelope"]["kid"] for r in inner.get("s")] == ["2025-06", "2025-06"]
    assert with_compression(with_encryption(inner, {"2025-06": OTHER_KEY})).get("s") == [LONG, text(0)]


def test_corrupt_compressed_record_raises_corrupt_record_error() -> None:
    inner = MemorySession()
    store = with_compression(inner, threshold=0)
    store.append("s", [LONG])
    inner.append("s", [{"envelope": {"v": 1, "alg": "gzip", "data": "bm90IGd6aXA="}}])
    before = inner.get("s")
    with pytest.raises(sessions.CorruptRecordError, match="decompress"):
        store.get("s")
    with pytest.raises(sessions.CorruptRecordError):
        store.pop("s")
    assert inner.get("s") == before
    inner.replace("s", [{"envelope": {"v": 9, "alg": "gzip", "data": ""}}])
    with pytest.raises(sessions.CorruptRecordError, match="version"):
        store.get("s")


def test_wrappers_satisfy_the_protocol_and_validate_first() -> None:
    inner = MemorySession()
    for stack in STACKS.values():
        store = stack(inner)
        assert isinstance(store, Session)
        with pytest.raises(sessions.InvalidMessageError) as caught:
            store.append("s", [text(0), {"role": "robot"}])
        assert caught.value.index == 1 and caught.value.session_id == "s"
        with pytest.raises(sessions.InvalidSessionIdError):
            store.append("", [text(0)])
        with pytest.raises(sessions.InvalidSessionIdError):
            store.pop("a\x00b")
    assert inner.info("s") is None
