"""PostgresSession under faults, on real servers.

* Many processes appending to one session lose nothing (the shared server).
* A PostgreSQL started by this module is stopped in the middle of a run: calls fail
  promptly with BackendUnavailableError, no batch is half written, and after a restart
  the same store object works again and holds every acknowledged append.
"""

from __future__ import annotations

import asyncio
import multiprocessing
import threading
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest

import sessions
from tests.backends import POSTGRES_URL, drop_postgres_tables, params, server_unavailable
from tests.postgres_servers import PostgresServer, bindir

pytestmark = [pytest.mark.postgres, pytest.mark.slow]

BATCH = 3  # messages per batch in the outage runs
OUTAGE_CALL_LIMIT = 4.0  # seconds a call may take while the server is down (timeout 1 s)


# -- (a) 8 processes x 250 appends to one session ---------------------------------------------


def _append_many(url: str, prefix: str, writer: int, count: int) -> None:
    with sessions.PostgresSession(url, table_prefix=prefix, max_size=1) as store:
        for i in range(count):
            store.append("shared", [{"role": "user", "content": f"{writer}:{i}"}])


@pytest.mark.parametrize("backend", params(("postgres",)))
def test_processes_appending_to_one_session_lose_nothing(backend: object, tmp_path: Path) -> None:
    processes, appends = 8, 250
    with backend.open(tmp_path) as store:  # type: ignore[attr-defined]
        assert isinstance(store, sessions.PostgresSession)
        context = multiprocessing.get_context("spawn")
        workers = [
            context.Process(target=_append_many, args=(POSTGRES_URL, store.table_prefix, n, appends))
            for n in range(processes)
        ]
        for worker in workers:
            worker.start()
        for worker in workers:
            worker.join(timeout=120)
            assert worker.exitcode == 0
        got = [m["content"] for m in store.get("shared")]
        assert len(got) == processes * appends == store.count("shared")
        assert len(set(got)) == len(got)
        for n in range(processes):
            assert [c for c in got if c.startswith(f"{n}:")] == [f"{n}:{i}" for i in range(appends)]


# -- (b) a throwaway server stopped mid-run ------------------------------------------------------


@pytest.fixture(scope="module")
def server() -> Iterator[PostgresServer]:
    """A PostgreSQL of this module alone, on a free loopback port."""
    programs = bindir()
    if programs is None:
        server_unavailable("PostgreSQL binaries", "no initdb found")
    started = PostgresServer(programs)
    try:
        yield started.initdb().start()
    finally:
        started.remove()


@dataclass
class Run:
    """What a writer saw: acknowledged batches, failed batches, slow failures."""

    acked: list[int] = field(default_factory=list)
    failed: list[int] = field(default_factory=list)
    slowest_failure: float = 0.0
    causes: list[BaseException | None] = field(default_factory=list)
    recovered_after_restart: bool = False
    phase: str = "before"

    def record(self, n: int, started: float, error: sessions.BackendUnavailableError | None) -> None:
        if error is None:
            self.acked.append(n)
            self.recovered_after_restart |= self.phase == "restarted"
        else:
            self.causes.append(error.__cause__)
            self.failed.append(n)
            self.slowest_failure = max(self.slowest_failure, time.monotonic() - started)


def batch(n: int) -> list[sessions.Message]:
    return [{"role": "user", "content": f"{n}.{part}"} for part in range(BATCH)]


def check_history(store: sessions.PostgresSession, run: Run) -> None:
    """Every acknowledged batch is there, whole, in order; a failed one whole or absent."""
    got = [m["content"] for m in store.get("outage")]
    assert len(got) % BATCH == 0
    seen = []
    for start in range(0, len(got), BATCH):
        n = int(got[start].split(".")[0])
        assert got[start:start + BATCH] == [f"{n}.{part}" for part in range(BATCH)], got[start:]
        seen.append(n)
    assert seen == sorted(seen)
    assert set(run.acked) <= set(seen)
    assert set(seen) <= set(run.acked) | set(run.failed)
    assert store.count("outage") == len(got)


def test_server_stopped_mid_run_sync(server: PostgresServer) -> None:
    store = sessions.PostgresSession(server.url, table_prefix=f"t{uuid.uuid4().hex[:8]}_",
                                     connect_timeout=1, max_size=2)
    run = Run()
    stop = threading.Event()

    def writer() -> None:
        n = 0
        while not stop.is_set():
            started, failure = time.monotonic(), None
            try:
                store.append("outage", batch(n))
            except sessions.BackendUnavailableError as error:
                failure = error
            run.record(n, started, failure)
            n += 1
            time.sleep(0.002)

    thread = threading.Thread(target=writer)
    thread.start()
    try:
        _wait_for(lambda: len(run.acked) >= 30, "appends before the outage")
        server.kill()  # every server process at once, as in a crash
        run.phase = "down"
        failed_before = len(run.failed)
        _wait_for(lambda: len(run.failed) >= failed_before + 2, "failures during the outage")
        for call in (lambda: store.get("outage"), lambda: store.pop("outage"),
                     lambda: store.replace("outage", [])):
            started = time.monotonic()
            with pytest.raises(sessions.BackendUnavailableError):
                call()
            assert time.monotonic() - started < OUTAGE_CALL_LIMIT
        server.start()
        run.phase = "restarted"
        _wait_for(lambda: run.recovered_after_restart, "an append after the restart", 15)
        acked_after = len(run.acked)
        _wait_for(lambda: len(run.acked) >= acked_after + 20, "steady appends after the restart")
    finally:
        stop.set()
        thread.join()
    assert run.failed, "the outage was not noticed"
    assert all(cause is not None for cause in run.causes)
    assert run.slowest_failure < OUTAGE_CALL_LIMIT
    check_history(store, run)
    store.close()


async def test_server_stopped_mid_run_async(server: PostgresServer) -> None:
    store = sessions.PostgresSession(server.url, table_prefix=f"t{uuid.uuid4().hex[:8]}_",
                                     connect_timeout=1, max_size=2)
    run = Run()
    stop = asyncio.Event()

    async def writer() -> None:
        n = 0
        while not stop.is_set():
            started, failure = time.monotonic(), None
            try:
                await store.aappend("outage", batch(n))
            except sessions.BackendUnavailableError as error:
                failure = error
            run.record(n, started, failure)
            n += 1
            await asyncio.sleep(0.002)

    task = asyncio.create_task(writer())
    try:
        await _await_for(lambda: len(run.acked) >= 30, "appends before the outage")
        await asyncio.to_thread(server.kill)
        run.phase = "down"
        failed_before = len(run.failed)
        await _await_for(lambda: len(run.failed) >= failed_before + 2, "failures during the outage")
        started = time.monotonic()
        with pytest.raises(sessions.BackendUnavailableError):
            await store.aget("outage")
        assert time.monotonic() - started < OUTAGE_CALL_LIMIT
        await asyncio.to_thread(server.start)
        run.phase = "restarted"
        await _await_for(lambda: run.recovered_after_restart, "an append after the restart", 15)
        acked_after = len(run.acked)
        await _await_for(lambda: len(run.acked) >= acked_after + 20, "steady appends after restart")
    finally:
        stop.set()
        await task
    assert run.failed, "the outage was not noticed"
    assert all(cause is not None for cause in run.causes)
    assert run.slowest_failure < OUTAGE_CALL_LIMIT
    assert await store.acount("outage") == len(await store.aget("outage"))
    await asyncio.to_thread(check_history, store, run)
    await store.aclose()


def _wait_for(condition: object, what: str, timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():  # type: ignore[operator]
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.01)


async def _await_for(condition: object, what: str, timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():  # type: ignore[operator]
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        await asyncio.sleep(0.01)


def test_drop_helper_only_touches_its_prefix() -> None:
    """The cleanup used by every PostgreSQL test drops its own three tables only."""
    import psycopg

    prefix, other = f"t{uuid.uuid4().hex[:12]}_", f"t{uuid.uuid4().hex[:12]}_"
    for name in (prefix, other):
        with sessions.PostgresSession(POSTGRES_URL, table_prefix=name) as store:
            store.append("s", [{"role": "user", "content": "x"}])
    drop_postgres_tables(POSTGRES_URL, prefix)
    with psycopg.connect(POSTGRES_URL) as conn:
        names = {row[0] for row in conn.execute(
            "SELECT tablename FROM pg_tables WHERE tablename LIKE %s OR tablename LIKE %s",
            (prefix + "%", other + "%"))}
    drop_postgres_tables(POSTGRES_URL, other)
    assert names == {other + "schema", other + "sessions", other + "messages"}
