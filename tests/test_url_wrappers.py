"""Wrappers named in store URLs: compress=..., encrypt_key_env=NAME."""

from __future__ import annotations

import base64
from pathlib import Path

import pytest

import sessions
from sessions import CompressedSession, EncryptedSession, SQLiteSession
from tests.backends import TEST_KEY
from tests.conformance.messages import ALL_SHAPES

OTHER_KEY = bytes(range(100, 132))


def test_compress_option_wraps_and_is_hidden_from_the_backend(tmp_path: Path) -> None:
    store = sessions.connect(f"sqlite:///{tmp_path}/a.db?compress=zlib&compress_threshold=0&timeout=3")
    assert isinstance(store, CompressedSession)
    assert store.algorithm == "zlib" and store.threshold == 0
    assert isinstance(store.inner, SQLiteSession) and store.inner.timeout == 3.0
    store.append("s", ALL_SHAPES)
    assert store.get("s") == ALL_SHAPES
    store.close()


@pytest.mark.parametrize(
    "encoded",
    [TEST_KEY.hex(), "hex:" + TEST_KEY.hex(), base64.b64encode(TEST_KEY).decode(),
     "base64:" + base64.b64encode(TEST_KEY).decode(),
     base64.urlsafe_b64encode(b"\xfb\xff" * 16).decode().rstrip("=")],
)
def test_key_from_the_environment(encoded: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TEST_SESSIONS_KEY", encoded)
    store = sessions.connect(f"sqlite:///{tmp_path}/e.db?encrypt_key_env=TEST_SESSIONS_KEY")
    key = b"\xfb\xff" * 16 if "-" in encoded or "_" in encoded else TEST_KEY
    assert isinstance(store, EncryptedSession)
    assert store.key_ids == [sessions.key_id(key)]
    store.append("s", ALL_SHAPES)
    store.close()
    with SQLiteSession(tmp_path / "e.db") as raw:
        assert sessions.with_encryption(raw, key).get("s") == ALL_SHAPES
        assert "envelope" in raw.get("s")[0]


def test_key_ring_and_both_wrappers(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("RING", f"{OTHER_KEY.hex()}, {base64.b64encode(TEST_KEY).decode()}")
    store = sessions.connect("memory://?compress=gzip&encrypt_key_env=RING")
    assert isinstance(store, CompressedSession) and store.algorithm == "gzip"
    assert isinstance(store.inner, EncryptedSession)
    assert store.inner.key_ids == [sessions.key_id(OTHER_KEY), sessions.key_id(TEST_KEY)]
    assert isinstance(store.inner.inner, sessions.MemorySession)


@pytest.mark.parametrize(
    ("url", "env", "needle"),
    [
        ("memory://?encrypt_key_env=NOT_SET_ANYWHERE", None, "not set"),
        ("memory://?encrypt_key_env=K", "00ff", "bytes"),
        ("memory://?encrypt_key_env=K", "not a key!", "neither hex nor base64"),
        ("memory://?encrypt_key=" + TEST_KEY.hex(), None, "unknown option"),
        ("memory://?compress=brotli", None, "algorithm"),
        ("memory://?compress=gzip&compress_level=x", None, "compress_level"),
        ("memory://?compress_threshold=10", None, "need compress"),
    ],
)
def test_bad_wrapper_options(url: str, env: str | None, needle: str,
                             monkeypatch: pytest.MonkeyPatch) -> None:
    if env is not None:
        monkeypatch.setenv("K", env)
    with pytest.raises(sessions.ConfigurationError, match=needle) as caught:
        sessions.connect(url)
    assert TEST_KEY.hex() not in str(caught.value) or "encrypt_key=" in url


def test_a_bad_key_opens_nothing(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("K", "short")
    with pytest.raises(sessions.ConfigurationError):
        sessions.connect(f"sqlite:///{tmp_path}/never.db?encrypt_key_env=K")
    assert not (tmp_path / "never.db").exists()
