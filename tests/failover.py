"""Failovers under load: writers that keep appending while a server is killed and
replaced, and the audit of what they were told against what the store holds afterwards.

Shared by the failover tests of Redis Cluster and PostgreSQL and by
``benchmarks/failover.py``. Every writer appends numbered batches to sessions of its
own and records each call: when it started and ended, and whether it was acknowledged
or failed (with the error). :func:`audit` then reads every session back and checks
what a failover may and may not do to acknowledged writes.

Both scenarios make the replica lag before the kill. On loopback a replica copies a
write well within a millisecond, so a plain kill of the primary loses nothing even
without a replicated acknowledgement and would prove nothing. The replica is paused
(SIGSTOP) and its link cut on the primary shortly before the kill: without a
replicated acknowledgement the primary keeps acknowledging writes its replica never
sees, and these are lost when the replica takes over; with one, those writes wait
and are refused, and every acknowledged append survives.
"""

from __future__ import annotations

import asyncio
import contextlib
import multiprocessing
import threading
import time
import uuid
from collections import Counter
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from typing import Any

import sessions
from tests.postgres_servers import PostgresServer
from tests.redis_servers import RedisCluster, RedisServer, wait_until

BATCH = 3  # messages per append: a half-written batch would show


@dataclass(frozen=True)
class Attempt:
    """One append as its writer saw it (times from ``time.monotonic()``, which every
    process on the machine shares)."""

    session: str
    number: int
    started: float
    ended: float
    error: str | None = None  # None: acknowledged; else "ClassName: message"
    expected: bool = True  # False: an error other than BackendUnavailableError


def batch(writer: int, number: int) -> list[sessions.Message]:
    return [{"role": "user", "content": f"{writer}:{number}:{part}"} for part in range(BATCH)]


def sessions_of(writer: int, count: int) -> list[str]:
    return [f"w{writer}-{k}" for k in range(count)]


def _record(session: str, number: int, started: float, error: BaseException | None) -> Attempt:
    ended = time.monotonic()
    if error is None:
        return Attempt(session, number, started, ended)
    text = f"{type(error).__name__}: {error}"
    return Attempt(session, number, started, ended, text,
                   isinstance(error, sessions.BackendUnavailableError))


def write(store: sessions.Session, writer: int, session_ids: list[str], stop: Any,
          report: Callable[[Attempt], object], pause_after_failure: float = 0.02) -> None:
    """Append batch after batch (round robin over ``session_ids``) until ``stop`` (an
    event) is set, reporting every attempt."""
    number = 0
    while not stop.is_set():
        session = session_ids[number % len(session_ids)]
        started, error = time.monotonic(), None
        try:
            store.append(session, batch(writer, number))
        except Exception as caught:
            error = caught
        report(_record(session, number, started, error))
        if error is not None:
            time.sleep(pause_after_failure)
        number += 1


async def awrite(store: sessions.Session, writer: int, session_ids: list[str], stop: Any,
                 report: Callable[[Attempt], object], pause_after_failure: float = 0.02) -> None:
    """:func:`write` through the async API."""
    number = 0
    while not stop.is_set():
        session = session_ids[number % len(session_ids)]
        started, error = time.monotonic(), None
        try:
            await store.aappend(session, batch(writer, number))
        except Exception as caught:
            error = caught
        report(_record(session, number, started, error))
        await asyncio.sleep(pause_after_failure if error is not None else 0)
        number += 1


class Writers:
    """``count`` writers, each appending to ``sessions_each`` sessions of its own: as
    threads sharing one store, as processes with a store each, or as tasks of one event
    loop (run in a thread) sharing one store. Stores are opened with
    ``sessions.connect(url)``. :attr:`attempts` fills up as they go."""

    def __init__(self, kind: str, url: str, count: int = 8, sessions_each: int = 6) -> None:
        if kind not in ("threads", "processes", "tasks"):
            raise ValueError(kind)
        self.kind, self.url, self.count, self.sessions_each = kind, url, count, sessions_each
        self.attempts: list[Attempt] = []
        self._workers: list[Any] = []
        self._store: sessions.Session | None = None
        self._done = 0  # writer processes that have reported their last attempt
        if kind == "processes":
            context = multiprocessing.get_context("spawn")
            self._stop: Any = context.Event()
            self._queue: Any = context.Queue()
            self._context: Any = context
        else:
            self._stop = threading.Event()

    @property
    def session_ids(self) -> list[str]:
        return [s for writer in range(self.count) for s in sessions_of(writer, self.sessions_each)]

    def start(self) -> Writers:
        if self.kind == "threads":
            self._store = store = sessions.connect(self.url)
            self._workers = [
                threading.Thread(target=write, args=(
                    store, n, sessions_of(n, self.sessions_each), self._stop, self.attempts.append))
                for n in range(self.count)
            ]
        elif self.kind == "tasks":
            self._workers = [threading.Thread(target=asyncio.run, args=(self._tasks(),))]
        else:
            self._workers = [
                self._context.Process(target=_process_writer, args=(
                    self.url, n, sessions_of(n, self.sessions_each), self._stop, self._queue))
                for n in range(self.count)
            ]
        for worker in self._workers:
            worker.start()
        return self

    async def _tasks(self) -> None:
        store = sessions.connect(self.url)
        try:
            await asyncio.gather(*(
                awrite(store, n, sessions_of(n, self.sessions_each), self._stop, self.attempts.append)
                for n in range(self.count)
            ))
        finally:
            await store.aclose()

    def _drain(self) -> None:
        if self.kind != "processes":
            return
        while True:
            try:
                item = self._queue.get_nowait()
            except Exception:  # queue.Empty
                return
            if item is None:
                self._done += 1
            else:
                self.attempts.append(item)

    def wait(self, condition: Callable[[list[Attempt]], bool], what: str, timeout: float) -> float:
        """Wait until ``condition(attempts so far)`` holds; the seconds it took."""
        started = time.monotonic()
        while True:
            self._drain()
            if condition(list(self.attempts)):
                return time.monotonic() - started
            if time.monotonic() - started > timeout:
                raise AssertionError(f"timed out after {timeout:g}s waiting for {what}")
            time.sleep(0.02)

    def stop(self, timeout: float = 60.0) -> list[Attempt]:
        """Stop every writer and return all attempts."""
        self._stop.set()
        deadline = time.monotonic() + timeout
        if self.kind == "processes":
            while self._done < self.count and time.monotonic() < deadline:
                self._drain()
                time.sleep(0.01)
            self._drain()
        for worker in self._workers:
            worker.join(max(0.1, deadline - time.monotonic()))
        assert not any(worker.is_alive() for worker in self._workers), "a writer did not stop"
        if self.kind == "processes":
            assert all(worker.exitcode == 0 for worker in self._workers), "a writer process failed"
        if self._store is not None:
            self._store.close()
        return list(self.attempts)


def _process_writer(url: str, writer: int, session_ids: list[str], stop: Any, queue: Any) -> None:
    store = sessions.connect(url)
    try:
        write(store, writer, session_ids, stop, queue.put)
    finally:
        queue.put(None)
        store.close()


def acknowledged(attempts: list[Attempt], after: float = 0.0, among: set[str] | None = None) -> int:
    """Acknowledged appends that started after ``after``, to sessions in ``among``."""
    return sum(1 for a in attempts
               if a.error is None and a.started >= after and (among is None or a.session in among))


@dataclass
class Outcome:
    """What the audit found."""

    acknowledged: int = 0
    failed: int = 0
    lost: list[tuple[str, int]] = field(default_factory=list)
    slowest_failure: float = 0.0
    errors: Counter[str] = field(default_factory=Counter)
    unexpected: list[str] = field(default_factory=list)
    #: Seconds from the kill to the end of the first acknowledged append started after it.
    first_ack_after: float | None = None
    #: What else happened, in seconds after the kill (the promotion, a restart).
    milestones: dict[str, float] = field(default_factory=dict)

    def summary(self) -> str:
        first = "never" if self.first_ack_after is None else f"{self.first_ack_after:.2f}s"
        events = "".join(f"; {what} after {seconds:.2f}s" for what, seconds in self.milestones.items())
        return (f"{self.acknowledged} acknowledged, {self.failed} failed, {len(self.lost)} "
                f"acknowledged appends lost; slowest failure {self.slowest_failure:.2f}s{events}; "
                f"first append acknowledged after {first}; errors {dict(self.errors)}")


def audit(histories: dict[str, list[sessions.Message]], attempts: Iterable[Attempt],
          since: float, watched: set[str] | None = None) -> Outcome:
    """Check every session's history against what its writer was told.

    Raises AssertionError if a batch is half there, out of order or there twice, or if
    something is stored that no writer sent. Returns the counts, the acknowledged
    appends that are missing (``lost``: what a failover may lose without a replicated
    acknowledgement) and how long after ``since`` the first append to a session in
    ``watched`` (default: any) was acknowledged.
    """
    outcome = Outcome()
    attempts = list(attempts)
    sent = {(a.session, a.number) for a in attempts}
    for attempt in attempts:
        if attempt.error is None:
            outcome.acknowledged += 1
            if attempt.started >= since and (watched is None or attempt.session in watched):
                after = attempt.ended - since
                if outcome.first_ack_after is None or after < outcome.first_ack_after:
                    outcome.first_ack_after = after
        else:
            outcome.failed += 1
            outcome.errors[attempt.error.split(":", 1)[0]] += 1
            outcome.slowest_failure = max(outcome.slowest_failure, attempt.ended - attempt.started)
            if not attempt.expected:
                outcome.unexpected.append(attempt.error)
    present: set[tuple[str, int]] = set()
    for session, messages in histories.items():
        contents = [m["content"] for m in messages]
        assert len(contents) % BATCH == 0, f"{session}: a batch is half written"
        numbers = []
        for start in range(0, len(contents), BATCH):
            writer, number, _ = str(contents[start]).split(":")
            expected = [f"{writer}:{number}:{part}" for part in range(BATCH)]
            assert contents[start:start + BATCH] == expected, f"{session}: a batch is torn at {start}"
            assert (session, int(number)) in sent, f"{session}: batch {number} was never sent"
            numbers.append(int(number))
        assert numbers == sorted(numbers), f"{session}: batches out of order"
        assert len(set(numbers)) == len(numbers), f"{session}: a batch is stored twice"
        present.update((session, n) for n in numbers)
    outcome.lost = sorted((a.session, a.number) for a in attempts
                          if a.error is None and (a.session, a.number) not in present)
    return outcome


# -- the scenarios -----------------------------------------------------------------------------

#: Seconds the primary runs with its replica cut off before it is killed.
LAG = 0.5
#: Acknowledged appends before the kill, and in the whole run.
BEFORE_KILL, AT_LEAST = 1500, 2000


@dataclass(frozen=True)
class RedisSettings:
    socket_timeout: float = 2.0
    replica_timeout: float = 0.5


def redis_cluster_url(cluster: RedisCluster, prefix: str, min_replicas: int = 1,
                      avoid: RedisServer | None = None, replica_timeout: float | None = None,
                      settings: RedisSettings = RedisSettings()) -> str:
    """A store URL naming a running node other than ``avoid`` (one about to be killed)."""
    node = next(s for s in cluster.servers if s is not avoid and s.running)
    wait = replica_timeout or settings.replica_timeout
    replicas = f"&min_replicas={min_replicas}&replica_timeout={wait}" if min_replicas else ""
    return (f"redis+cluster://127.0.0.1:{node.port}?prefix={prefix}"
            f"&socket_timeout={settings.socket_timeout}{replicas}")


def redis_cluster_failover(cluster: RedisCluster, kind: str, min_replicas: int,
                           settings: RedisSettings = RedisSettings()) -> Outcome:
    """Kill a primary whose replica lags, under 8 writers; the replica takes over, the
    killed node is restarted and rejoins as its replica (with one replica per primary,
    ``min_replicas=1`` writes to those slots need it back). Returns the audit, with the
    appends to the killed primary's sessions watched."""
    wait_until(cluster.healthy, "a healthy cluster", 60)
    victim = cluster.primaries()[0]
    prefix = f"test:{uuid.uuid4().hex}:"
    url = redis_cluster_url(cluster, prefix, min_replicas, avoid=victim, settings=settings)
    writers = Writers(kind, url).start()
    with sessions.RedisSession(url) as keys:
        on_victim = {s for s in writers.session_ids if cluster.primary_for(keys._keys(s)[0]) is victim}
    assert on_victim, "no session lives on the primary to be killed"
    try:
        writers.wait(lambda a: acknowledged(a) >= BEFORE_KILL and acknowledged(a, among=on_victim) >= 100,
                     "appends before the kill", 60)
        replica = cluster.replica_of(victim)
        replica.pause()
        try:
            victim.command("CLIENT", "KILL", "TYPE", "replica")
            time.sleep(LAG)
            victim.stop()
            killed_at = time.monotonic()
        finally:
            replica.resume()
        wait_until(lambda: replica.command("ROLE")[0] == b"master",  # type: ignore[index]
                   "the replica to take over", 30)
        promoted = time.monotonic() - killed_at
        victim.start()  # rejoins as a replica of the node that replaced it
        restarted = time.monotonic() - killed_at
        wait_until(cluster.healthy, "the cluster to heal", 60)
        writers.wait(lambda a: acknowledged(a, after=killed_at, among=on_victim) >= 50
                     and acknowledged(a) >= AT_LEAST, "appends to the failed-over slots", 60)
    finally:
        attempts = writers.stop()
    with sessions.RedisSession(redis_cluster_url(cluster, prefix, 0, settings=settings)) as reader:
        histories = {s: reader.get(s) for s in writers.session_ids}
    outcome = audit(histories, attempts, since=killed_at, watched=on_victim)
    outcome.milestones = {"replica promoted": promoted, "killed node restarted": restarted}
    return outcome


@contextlib.contextmanager
def replicated_postgres(programs: Any, synchronous: bool) -> Iterator[tuple[PostgresServer, PostgresServer]]:
    """A primary and its streaming standby, synchronous or asynchronous, removed after."""
    primary = PostgresServer(programs)
    standby: PostgresServer | None = None
    try:
        primary.initdb().start(*(("synchronous_standby_names=standby", "synchronous_commit=on")
                                 if synchronous else ()))
        # A standby whose WAL stream just broke waits wal_retrieve_retry_interval (5 s by
        # default) before it acts on a promotion: shortened, the runs are shorter.
        standby = primary.standby("standby", "wal_retrieve_retry_interval=100ms")
        expected = [("standby", "streaming", "sync" if synchronous else "async")]
        wait_until(lambda: _replication(primary) == expected, "the standby to stream", 60)
        yield primary, standby
    finally:
        primary.remove()
        if standby is not None:
            standby.remove()


def _replication(primary: PostgresServer) -> list[tuple[str, str, str]]:
    import psycopg

    try:
        with psycopg.connect(primary.url, connect_timeout=5) as conn:
            return [(str(a), str(b), str(c)) for a, b, c in conn.execute(
                "SELECT application_name, state, sync_state FROM pg_stat_replication")]
    except psycopg.Error:
        return []


def postgres_failover(primary: PostgresServer, standby: PostgresServer, kind: str,
                      connect_timeout: float = 2) -> Outcome:
    """Kill the primary under 8 writers after cutting its standby off, promote the
    standby, and audit what the writers were told against what it holds. The store is
    given both servers (libpq multi-host, ``target_session_attrs=read-write``)."""
    import psycopg

    prefix = f"t{uuid.uuid4().hex[:12]}_"
    url = (f"postgresql://postgres@/postgres?host=127.0.0.1,127.0.0.1"
           f"&port={primary.port},{standby.port}&target_session_attrs=read-write"
           f"&table_prefix={prefix}&connect_timeout={connect_timeout:g}")
    first = sessions.connect(url)
    first.count("create the tables")
    first.close()
    writers = Writers(kind, url).start()
    try:
        writers.wait(lambda a: acknowledged(a) >= BEFORE_KILL, "appends before the kill", 120)
        standby.pause()
        try:
            with psycopg.connect(primary.url, autocommit=True) as conn:
                conn.execute("SELECT pg_terminate_backend(pid) FROM pg_stat_replication")
            time.sleep(LAG)
            primary.kill()
            killed_at = time.monotonic()
        finally:
            standby.resume()
        standby.promote()
        promoted = time.monotonic() - killed_at
        writers.wait(lambda a: acknowledged(a, after=killed_at) >= 50 and acknowledged(a) >= AT_LEAST,
                     "appends on the promoted standby", 60)
    finally:
        attempts = writers.stop()
    # The key=value form of a multi-host DSN, as users write it for libpq.
    dsn = (f"host=127.0.0.1,127.0.0.1 port={primary.port},{standby.port} user=postgres "
           f"dbname=postgres target_session_attrs=read-write")
    with sessions.PostgresSession(dsn, table_prefix=prefix) as reader:
        histories = {s: reader.get(s) for s in writers.session_ids}
    outcome = audit(histories, attempts, since=killed_at)
    outcome.milestones = {"standby promoted": promoted}
    return outcome
