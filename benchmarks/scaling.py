"""Figures for sizing a deployment past one machine: bytes per stored message (in
memory, on disk, in the write-ahead log) and appends per second per core, for Redis
Cluster and PostgreSQL, then the arithmetic for 10 million sessions x 200 messages;
prints Markdown tables.

    python -m benchmarks.scaling [--sessions 2000] [--messages 200] [--seconds 10] [--writers 4]

Starts its own servers (tests/redis_servers.py, tests/postgres_servers.py) so that the
figures are theirs alone: a Redis Cluster of 3 primaries (no persistence, no replicas)
and a PostgreSQL cluster (``fsync=on``, ``synchronous_commit=on``). The messages are
a conversation's usual mix: a user question, an assistant tool call, the tool's
result and the assistant's answer, repeated, each with text of its own drawn from
English words at their natural frequencies (so that compression behaves as on real
text); their mean encoded size is shown.

CPU per append is measured from the processes' own accounting (``/proc/<pid>/stat``
for the servers, ``getrusage`` for the writer processes), so it holds on a shared
machine where wall-clock throughput does not: "appends per core-second" is how many
one-message appends one core of the server (or of the application, in this library
and its driver) carries.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import multiprocessing
import os
import random
import re
import resource
import sys
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import sessions
from tests.postgres_servers import PostgresServer, bindir
from tests.redis_servers import RedisCluster

TICKS = os.sysconf("SC_CLK_TCK")
TARGET_SESSIONS, TARGET_MESSAGES = 10_000_000, 200
#: Words in their natural frequencies (this project's README): message text made of them
#: compresses like prose, not like one sentence repeated.
WORDS = re.findall(r"[a-z]+", (Path(__file__).resolve().parents[1] / "README.md").read_text().lower())


def messages(count: int, seed: int = 0) -> list[dict[str, Any]]:
    """A conversation of ``count`` messages: a user question, an assistant tool call,
    the tool's result and the assistant's answer, repeated, each with text of its own."""
    rng = random.Random(seed)

    def text(words: int) -> str:
        return " ".join(rng.choices(WORDS, k=words)).capitalize() + "."

    out: list[dict[str, Any]] = []
    while len(out) < count:
        call = f"call_{rng.getrandbits(48):012x}"
        out += [
            {"role": "user", "content": text(30)},
            {"role": "assistant", "content": None, "tool_calls": [{
                "id": call, "type": "function",
                "function": {"name": "search", "arguments": json.dumps({"query": text(6)})}}]},
            {"role": "tool", "tool_call_id": call, "content": text(40)},
            {"role": "assistant", "content": text(60)},
        ]
    return out[:count]


def encoded_size(batch: list[dict[str, Any]]) -> float:
    sizes = [len(json.dumps(m, separators=(",", ":"), ensure_ascii=False).encode()) for m in batch]
    return sum(sizes) / len(sizes)


def cpu_seconds(pids: list[int]) -> dict[int, float]:
    """User + system CPU seconds of each running process."""
    found = {}
    for pid in pids:
        try:
            fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        found[pid] = (int(fields[11]) + int(fields[12])) / TICKS
    return found


def _writer(url: str, writer: int, seconds: float, ready: Any, go: Any, done: Any,
            finish: Any, results: Any) -> None:
    store = sessions.connect(url)
    message = messages(1, seed=writer)
    store.append(f"warm-{writer}", message)
    ready.release()
    go.wait()
    usage = resource.getrusage(resource.RUSAGE_SELF)
    started_cpu = usage.ru_utime + usage.ru_stime
    count, deadline = 0, time.monotonic() + seconds
    while time.monotonic() < deadline:
        store.append(f"w{writer}-{count % 50}", message)
        count += 1
    usage = resource.getrusage(resource.RUSAGE_SELF)
    results.put((count, usage.ru_utime + usage.ru_stime - started_cpu))
    done.release()
    finish.wait()  # keep the connections (and PostgreSQL's backends) until measured
    store.close()


def throughput(url: str, server_pids: Any, writers: int, seconds: float) -> dict[str, float]:
    """Appends/s, and appends per CPU-second of the server and of the writers.
    ``server_pids()`` lists the server's processes (called before and after)."""
    context = multiprocessing.get_context("spawn")
    ready, done = context.Semaphore(0), context.Semaphore(0)
    go, finish, results = context.Event(), context.Event(), context.Queue()
    workers = [context.Process(target=_writer, args=(url, n, seconds, ready, go, done, finish, results))
               for n in range(writers)]
    for worker in workers:
        worker.start()
    for _ in workers:
        ready.acquire(timeout=120)
    before = cpu_seconds(server_pids())
    started = time.monotonic()
    go.set()
    for _ in workers:
        done.acquire(timeout=seconds + 120)
    wall = time.monotonic() - started
    after = cpu_seconds(server_pids())
    finish.set()
    counts = [results.get(timeout=60) for _ in workers]
    for worker in workers:
        worker.join(60)
    appends = sum(count for count, _ in counts)
    server_cpu = sum(after[pid] - before.get(pid, 0.0) for pid in after)
    client_cpu = sum(cpu for _, cpu in counts)
    return {"appends": appends, "per_second": appends / wall,
            "per_server_core": appends / server_cpu, "per_client_core": appends / client_cpu}


def fill(store: sessions.Session, count: int, per_session: int) -> None:
    for n in range(count):
        store.append(f"s{n}", messages(per_session, seed=n))


def redis_figures(args: argparse.Namespace) -> dict[str, float]:
    cluster = RedisCluster(masters=3).start()
    try:
        url = f"redis+cluster://127.0.0.1:{cluster.port}?prefix=size:"

        def used() -> int:
            return sum(int(server.info("memory")["used_memory"]) for server in cluster.servers)  # type: ignore[call-overload]

        before = used()
        with contextlib.closing(sessions.connect(url)) as store:
            fill(store, args.sessions, args.messages)
        stored = args.sessions * args.messages
        memory = (used() - before) / stored
        rdb = 0
        for server in cluster.servers:
            server.command("SAVE")
            rdb += (server.directory / "dump.rdb").stat().st_size
        figures = {"memory": memory, "rdb": rdb / stored}
        pids = [server.process.pid for server in cluster.servers if server.process]
        figures.update(throughput(f"redis+cluster://127.0.0.1:{cluster.port}?prefix=rate:",
                                  lambda: pids, args.writers, args.seconds))
        return figures
    finally:
        cluster.remove()


def postgres_figures(args: argparse.Namespace) -> dict[str, float]:
    import psycopg

    programs = bindir()
    if programs is None:
        raise SystemExit("PostgreSQL binaries not found")
    server = PostgresServer(programs).initdb().start("fsync=on", "synchronous_commit=on")
    try:
        url = f"{server.url}?table_prefix=size_"
        with psycopg.connect(server.url, autocommit=True) as conn:
            with contextlib.closing(sessions.connect(url)) as store:
                store.count("create the tables")
                wal_before = conn.execute("SELECT pg_current_wal_lsn()").fetchone()[0]  # type: ignore[index]
                fill(store, args.sessions, args.messages)
            wal = conn.execute("SELECT pg_current_wal_lsn() - %s::pg_lsn", (wal_before,)).fetchone()[0]  # type: ignore[index]
            conn.execute("VACUUM ANALYZE size_messages")
            conn.execute("VACUUM ANALYZE size_sessions")
            heap, total, indexes, sessions_total = conn.execute(
                "SELECT pg_relation_size('size_messages'), pg_total_relation_size('size_messages'),"
                " pg_indexes_size('size_messages'), pg_total_relation_size('size_sessions')"
            ).fetchone()  # type: ignore[misc]
        stored = args.sessions * args.messages
        figures = {
            "heap": heap / stored, "index": indexes / stored, "toast": (total - heap - indexes) / stored,
            "disk": (total + sessions_total) / stored, "session_row": sessions_total / args.sessions,
            "wal": float(wal) / stored,
        }

        rate_url = f"{server.url}?table_prefix=rate_"
        figures.update(throughput(rate_url, server.pids, args.writers, args.seconds))
        return figures
    finally:
        server.remove()


def gigabytes(count: float) -> str:
    return f"{count / 1e9:,.0f} GB"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sessions", type=int, default=2000)
    parser.add_argument("--messages", type=int, default=TARGET_MESSAGES)
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--writers", type=int, default=4)
    args = parser.parse_args()

    size = encoded_size(messages(args.messages))
    redis_ = redis_figures(args)
    postgres = postgres_figures(args)
    stored = args.sessions * args.messages
    total = TARGET_SESSIONS * TARGET_MESSAGES
    print(f"{args.sessions:,} sessions x {args.messages} messages ({stored:,} messages, mean "
          f"{size:.0f} bytes of JSON each); {args.writers} writer processes for {args.seconds:g} s "
          f"of one-message appends; one shared machine ({os.cpu_count()} cores), loopback.\n")
    print("| backend | where | bytes per message |")
    print("|---|---|---|")
    print(f"| Redis Cluster | memory (`used_memory`, 3 primaries) | {redis_['memory']:.0f} |")
    print(f"| Redis Cluster | RDB snapshot on disk | {redis_['rdb']:.0f} |")
    print(f"| PostgreSQL | messages heap | {postgres['heap']:.0f} |")
    print(f"| PostgreSQL | messages primary key index | {postgres['index']:.0f} |")
    print(f"| PostgreSQL | TOAST | {postgres['toast']:.0f} |")
    print(f"| PostgreSQL | all tables and indexes on disk | {postgres['disk']:.0f} |")
    print(f"| PostgreSQL | write-ahead log written by the appends | {postgres['wal']:.0f} |")
    print(f"\nPostgreSQL sessions row and its indexes: {postgres['session_row']:.0f} bytes per session.\n")
    print("| backend | appends/s (wall, all writers) | appends per server core-second "
          "| appends per client core-second |")
    print("|---|---|---|---|")
    for name, figures in (("Redis Cluster", redis_), ("PostgreSQL", postgres)):
        print(f"| {name} | {figures['per_second']:,.0f} | {figures['per_server_core']:,.0f} "
              f"| {figures['per_client_core']:,.0f} |")
    print(f"\n{TARGET_SESSIONS:,} sessions x {TARGET_MESSAGES} messages = {total:,} messages:")
    print(f"- Redis: {gigabytes(total * redis_['memory'])} of memory per copy of the data "
          f"(primaries; each replica holds as much again), {gigabytes(total * redis_['rdb'])} per RDB "
          "snapshot.")
    print(f"- PostgreSQL: {gigabytes(total * postgres['disk'] + TARGET_SESSIONS * postgres['session_row'])} "
          f"on disk per copy (of which {gigabytes(total * postgres['index'])} of primary key index), "
          f"{gigabytes(total * postgres['wal'])} of WAL written to load it.")
    print(f"- 10,000 appends/s take {10_000 / redis_['per_server_core']:.1f} Redis cores or "
          f"{10_000 / postgres['per_server_core']:.1f} PostgreSQL cores, plus "
          f"{10_000 / redis_['per_client_core']:.1f} / {10_000 / postgres['per_client_core']:.1f} "
          f"application cores.")


if __name__ == "__main__":
    main()
