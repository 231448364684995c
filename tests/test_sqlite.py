"""SQLiteSession beyond the conformance suite: many openers of a new file, lock waits."""

from __future__ import annotations

import multiprocessing
import re
import sqlite3
import threading
import time
from pathlib import Path

import pytest

import sessions


def _open_and_append(path: str, n: int, start: threading.Barrier | None = None,
                     at: float = 0.0) -> None:
    if start is not None:
        start.wait()
    while time.monotonic() < at:  # openers in processes start within microseconds
        pass
    with sessions.SQLiteSession(path) as store:
        store.append("s", [{"role": "user", "content": f"opener {n}"}])


def test_threads_opening_a_new_database_at_once_all_succeed(tmp_path: Path) -> None:
    """Switching a new file to WAL and creating its schema wait for each other like
    every other write, instead of failing at once."""
    errors: list[BaseException] = []

    def opener(path: str, n: int, start: threading.Barrier) -> None:
        try:
            _open_and_append(path, n, start)
        except BaseException as error:
            errors.append(error)

    for round_ in range(40):
        path = str(tmp_path / f"new-{round_}.db")
        start = threading.Barrier(8)
        threads = [threading.Thread(target=opener, args=(path, n, start)) for n in range(8)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(60)
        assert errors == [], round_
        with sessions.SQLiteSession(path) as store:
            assert store.count("s") == 8


def test_processes_opening_a_new_database_at_once_all_succeed(tmp_path: Path) -> None:
    context = multiprocessing.get_context("fork")
    for round_ in range(30):
        path = str(tmp_path / f"new-{round_}.db")
        at = time.monotonic() + 0.05
        openers = [context.Process(target=_open_and_append, args=(path, n, None, at)) for n in range(3)]
        for opener in openers:
            opener.start()
        for opener in openers:
            opener.join(60)
        assert [opener.exitcode for opener in openers] == [0] * 3, round_
        with sessions.SQLiteSession(path) as store:
            assert store.count("s") == 3


def test_a_lock_error_names_the_time_actually_waited(tmp_path: Path) -> None:
    path = tmp_path / "busy.db"
    store = sessions.SQLiteSession(path, timeout=0.3)
    holder = sqlite3.connect(path, isolation_level=None)
    holder.execute("BEGIN IMMEDIATE")  # another connection holds the write lock
    try:
        started = time.monotonic()
        with pytest.raises(sessions.BackendUnavailableError) as caught:
            store.append("s", [{"role": "user", "content": "x"}])
        elapsed = time.monotonic() - started
    finally:
        holder.execute("ROLLBACK")
        holder.close()
    found = re.search(r"stayed locked by another connection for ([0-9.]+)s", str(caught.value))
    assert found is not None, str(caught.value)
    assert 0.3 <= float(found.group(1)) <= elapsed + 0.01
    store.append("s", [{"role": "user", "content": "y"}])  # free again
    assert store.count("s") == 1
    store.close()
