"""Writers that keep appending while a test fails a server over, and the audit of what
they were told against what the store holds afterwards.

Shared by the failover tests of Redis Cluster and PostgreSQL and by
``benchmarks/failover.py``. Every writer appends numbered batches to sessions of its
own and records each call: when it started and ended, and whether it was acknowledged
or failed (with the error). :func:`audit` then reads every session back and checks
what a failover may and may not do to acknowledged writes.
"""

from __future__ import annotations

import asyncio
import multiprocessing
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

import sessions

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
