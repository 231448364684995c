"""Migration throughput from each peer library's store into SQLite, against the peer's own read.

    python -m benchmarks.peer_migration              # 100,000 messages per peer store
    python -m benchmarks.peer_migration --quick      # 2,000 messages: what CI runs
    python -m benchmarks.peer_migration --only redis # peers whose URL scheme contains it

For each store layout in :data:`benchmarks.peers.PEERS`, a store of ``--messages``
messages (sessions of ``--per-session``) is written with the peer library itself. Then,
in interleaved rounds (so a change in the machine's speed weighs on all alike):

* **peer read** - the peer's own full read of every session (its API, its objects): the
  floor, since a migration must at least read everything;
* **source read** - every session read through ``sessions.connect(url)``, converted to
  canonical messages by the adapter converters;
* **migrate** - ``sessions.migrate(source, target)`` into a fresh SQLite file: read,
  convert, compare with the (empty) target, write, commit.

One session is read both ways first, untimed, to warm imports and connections.

Each is reported in messages per second (median of the rounds) with the ratio of the
migration to the peer's read. Peers whose server is not reachable are skipped.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import platform
import statistics
import sys
import tempfile
import time
import uuid
import warnings
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import sessions
from benchmarks.peers import PEERS, Peer, PeerStore, Place, history, session_ids
from benchmarks.stores import POSTGRES_DSN, REDIS_URL

__all__ = ["HEADER", "Result", "main", "measure", "row"]


@dataclass
class Result:
    peer: Peer
    messages: int
    sessions: int
    #: Seconds of each round, per side.
    rounds: dict[str, list[float]] = field(default_factory=dict)
    skipped: str = ""

    def rate(self, side: str) -> float:
        return self.messages / statistics.median(self.rounds[side])


def _reachable(server: str) -> str:
    """Why ``server`` cannot be used, or "" if it can."""
    try:
        if server == "postgres":
            import psycopg

            psycopg.connect(POSTGRES_DSN, connect_timeout=3).close()
        elif server == "redis":
            import redis

            with redis.Redis.from_url(REDIS_URL, socket_timeout=3) as client:
                client.ping()
    except Exception as error:
        return f"{server} unreachable ({type(error).__name__})"
    return ""


@contextlib.contextmanager
def _peer_store(peer: Peer, directory: Path, messages: int, per_session: int) -> Iterator[
        tuple[PeerStore, list[str]]]:
    store = peer.open(Place(directory, POSTGRES_DSN, REDIS_URL, "b" + uuid.uuid4().hex[:12]))
    try:
        count = max(1, messages // per_session)
        ids = session_ids(peer, count)
        # Written in slices so that a 100k store never needs all its objects at once.
        for start in range(0, count, 10):
            store.write({sid: history(peer.family, per_session, (start + n) * per_session)
                         for n, sid in enumerate(ids[start:start + 10])})
        yield store, ids
    finally:
        store.remove()


def _timed(work: Callable[[], object]) -> float:
    started = time.perf_counter()
    work()
    return time.perf_counter() - started


def measure(peer: Peer, messages: int, per_session: int, rounds: int, directory: Path) -> Result:
    """Write a peer store of ``messages`` and time the three sides, interleaved."""
    result = Result(peer, 0, 0)
    reason = _reachable(peer.server)
    if reason:
        result.skipped = reason
        return result
    with _peer_store(peer, directory, messages, per_session) as (store, ids):
        result.sessions = len(ids)
        result.messages = sum(len(m) for m in store.read_all(ids).values())

        def source_read() -> None:
            with contextlib.closing(sessions.connect(store.url)) as source:
                for sid in source.list_sessions():
                    source.get(sid)

        def migrate() -> None:
            target_path = directory / f"target-{uuid.uuid4().hex}.db"
            with contextlib.closing(sessions.connect(store.url)) as source, \
                    sessions.SQLiteSession(target_path) as target:
                report = sessions.migrate(source, target)
            assert report.messages_written == result.messages, report
            for suffix in ("", "-wal", "-shm"):
                with contextlib.suppress(FileNotFoundError):
                    os.unlink(f"{target_path}{suffix}")

        sides: dict[str, Callable[[], object]] = {
            "peer read": lambda: store.read_all(ids), "source read": source_read, "migrate": migrate,
        }
        # Warm-up: the source's imports and the peer's first connection, on one session.
        with contextlib.closing(sessions.connect(store.url)) as warm:
            warm.get(ids[0])
        store.read_all(ids[:1])
        for _ in range(rounds):
            for name, work in sides.items():
                result.rounds.setdefault(name, []).append(_timed(work))
    return result


HEADER = (
    "| peer store (URL scheme) | written by | messages | peer read msg/s | source read msg/s "
    "| migrate into SQLite msg/s | migrate / peer read |\n"
    "|---|---|---:|---:|---:|---:|---:|"
)


def row(result: Result) -> str:
    """The table row of one peer store."""
    writer = f"{result.peer.writer} ({result.peer.distribution} {result.peer.version})"
    if result.skipped:
        return f"| `{result.peer.scheme}` | {writer} | skipped: {result.skipped} | | | | |"
    peer, source = result.rate("peer read"), result.rate("source read")
    migrate = result.rate("migrate")
    return (f"| `{result.peer.scheme}` | {writer} | {result.messages:,} in {result.sessions} "
            f"| {peer:,.0f} | {source:,.0f} | {migrate:,.0f} | {migrate / peer:.2f} |")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.peer_migration", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--messages", type=int, default=100_000, help="messages per peer store")
    parser.add_argument("--per-session", type=int, default=1_000, help="messages per session")
    parser.add_argument("--rounds", type=int, default=3, help="interleaved rounds per peer")
    parser.add_argument("--quick", action="store_true", help="2,000 messages, 1 round")
    parser.add_argument("--only", action="append", default=[], help="URL scheme substring (repeatable)")
    args = parser.parse_args(argv)
    if args.quick:
        args.messages, args.per_session, args.rounds = 2_000, 500, 1
    chosen = [p for p in PEERS if not args.only or any(o in p.scheme for o in args.only)]
    print(f"# Migration from peer stores into SQLite: {args.messages:,} messages per store, "
          f"sessions of {args.per_session:,}, median of {args.rounds} interleaved round(s)")
    print(f"# {platform.python_implementation()} {platform.python_version()}, {os.cpu_count()} cores "
          "(a shared machine: other work may run alongside)\n")
    print(HEADER, flush=True)  # each row as soon as its peer is measured
    with tempfile.TemporaryDirectory(prefix="peer-migration-") as scratch:
        for number, peer in enumerate(chosen):
            print(f"  {peer.name}...", file=sys.stderr, flush=True)
            directory = Path(scratch) / str(number)
            directory.mkdir()
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", DeprecationWarning)
                result = measure(peer, args.messages, args.per_session, args.rounds, directory)
            print(row(result), flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
