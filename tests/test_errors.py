"""The error hierarchy: one root, context on every error, driver errors chained."""

from __future__ import annotations

import pickle
import sqlite3
from pathlib import Path

import pytest

import sessions


def test_every_error_derives_from_session_error() -> None:
    for name in sessions.__all__:
        value = getattr(sessions, name)
        if isinstance(value, type) and issubclass(value, Exception):
            assert issubclass(value, sessions.SessionError), name


def test_errors_carry_session_and_operation_and_pickle() -> None:
    error = sessions.InvalidMessageError("missing 'role'", index=3, session_id="s", operation="append")
    assert (error.index, error.session_id, error.operation) == (3, "s", "append")
    assert str(error) == "invalid message at index 3: missing 'role' (operation=append, session_id='s')"
    copy = pickle.loads(pickle.dumps(error))
    assert type(copy) is sessions.InvalidMessageError and str(copy) == str(error)
    assert copy.index == 3


def test_driver_errors_are_chained(tmp_path: Path) -> None:
    store = sessions.SQLiteSession(tmp_path / "s.db")
    store.append("s", [{"role": "user", "content": "x"}])
    conn = sqlite3.connect(tmp_path / "s.db")
    conn.execute("DROP TABLE session_layer_messages")
    conn.commit()
    conn.close()
    with pytest.raises(sessions.BackendUnavailableError) as caught:
        store.get("s")
    assert isinstance(caught.value.__cause__, sqlite3.Error)
    assert caught.value.session_id == "s" and caught.value.operation == "get"


def test_corrupt_record_is_reported_not_skipped(tmp_path: Path) -> None:
    store = sessions.SQLiteSession(tmp_path / "s.db")
    store.append("s", [{"role": "user", "content": "x"}, {"role": "user", "content": "y"}])
    conn = sqlite3.connect(tmp_path / "s.db")
    conn.execute("UPDATE session_layer_messages SET body = '{broken' WHERE seq = 1")
    conn.commit()
    conn.close()
    with pytest.raises(sessions.CorruptRecordError) as caught:
        store.get("s")
    assert caught.value.session_id == "s"
    assert store.get("s", limit=0) == []
