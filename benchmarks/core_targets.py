"""The embedded backends' performance targets, measured side by side in one run.

    python benchmarks/core_targets.py [--appends 2000] [--history 100000]

Prints a Markdown table:

* append of one message to a File and a SQLite session holding 0 vs 100,000 messages
  (median and p99; target: the ratio of medians within 1.5x);
* ``get(limit=50)`` on a 100,000-message session (target: under 2 ms);
* SQLite append of one message vs a bare ``sqlite3`` INSERT + COMMIT in WAL mode at the
  same ``synchronous`` setting (target: within 3x).

The big histories are built with a few large batched appends. Measurements of the
things compared are interleaved, so machine noise hits both sides alike.
"""

from __future__ import annotations

import argparse
import json
import os
import sqlite3
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import sessions


def message(i: int) -> dict[str, str]:
    return {"role": "user", "content": f"message {i}: what is the weather like in Lisbon today?"}


def micros(samples: list[float]) -> tuple[float, float]:
    """(median, p99) in microseconds of samples in seconds."""
    ordered = sorted(samples)
    p99 = ordered[min(len(ordered) - 1, round(0.99 * (len(ordered) - 1)))]
    return statistics.median(ordered) * 1e6, p99 * 1e6


def interleaved(count: int, *calls: Callable[[int], object]) -> list[list[float]]:
    """Time each call ``count`` times, alternating between them."""
    timings: list[list[float]] = [[] for _ in calls]
    clock = time.perf_counter
    for i in range(count):
        for position, call in enumerate(calls):
            started = clock()
            call(i)
            timings[position].append(clock() - started)
    return timings


def fill(store: sessions.Session, session_id: str, total: int, batch: int = 10_000) -> None:
    for start in range(0, total, batch):
        store.append(session_id, [message(i) for i in range(start, min(total, start + batch))])


def appender(store: sessions.Session, session_id: str) -> Callable[[int], object]:
    return lambda i: store.append(session_id, [message(i)])


def window_reader(store: sessions.Session) -> Callable[[int], object]:
    return lambda i: store.get("long", limit=50)


def bare_sqlite(path: str, synchronous: str, count: int) -> Callable[[int], object]:
    conn = sqlite3.connect(path, isolation_level=None)
    conn.execute("PRAGMA journal_mode=WAL")
    conn.execute(f"PRAGMA synchronous={synchronous}")
    conn.execute("CREATE TABLE messages (id INTEGER PRIMARY KEY, body TEXT NOT NULL)")

    def insert(i: int) -> None:
        # The same JSON text our store writes, serialised outside the timed call.
        conn.execute("BEGIN")
        conn.execute("INSERT INTO messages (body) VALUES (?)", (bodies[i],))
        conn.execute("COMMIT")

    bodies = [json.dumps(message(i), separators=(",", ":")) for i in range(count)]

    return insert


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--appends", type=int, default=2000, help="timed appends per case")
    parser.add_argument("--reads", type=int, default=500, help="timed get(limit=50) calls per store")
    parser.add_argument("--history", type=int, default=100_000, help="messages in the long session")
    args = parser.parse_args()

    rows: list[tuple[str, str, str, str]] = []
    with tempfile.TemporaryDirectory() as workdir:
        stores: dict[str, sessions.Session] = {
            "File": sessions.FileSession(os.path.join(workdir, "files")),
            "SQLite": sessions.SQLiteSession(os.path.join(workdir, "sessions.db")),
        }
        for store in stores.values():
            fill(store, "long", args.history)
            store.append("short", [message(0)])
            store.pop("short")  # exists, holds 0 messages

        for name, store in stores.items():
            short, long = interleaved(
                args.appends,
                appender(store, "short"),
                appender(store, "long"),
            )
            (short_median, short_p99), (long_median, long_p99) = micros(short), micros(long)
            ratio = long_median / short_median
            rows.append((f"{name} append, session from 0 messages", f"{short_median:.1f}",
                         f"{short_p99:.1f}", ""))
            rows.append((f"{name} append, session from {args.history:,} messages", f"{long_median:.1f}",
                         f"{long_p99:.1f}",
                         f"{ratio:.2f}x of the empty session (target <= 1.5x): "
                         f"{'met' if ratio <= 1.5 else 'MISSED'}"))

        reads = interleaved(args.reads, *(window_reader(store) for store in stores.values()))
        for (name, store), samples in zip(stores.items(), reads, strict=True):
            assert len(store.get("long", limit=50)) == 50
            median, p99 = micros(samples)
            rows.append((f"{name} get(limit=50) at {store.count('long'):,} messages", f"{median:.1f}",
                         f"{p99:.1f}", f"target < 2000 µs: {'met' if median < 2000 else 'MISSED'}"))

        sqlite_store = stores["SQLite"]
        assert isinstance(sqlite_store, sessions.SQLiteSession)
        bare = bare_sqlite(os.path.join(workdir, "bare.db"), sqlite_store.synchronous, args.appends)
        ours, theirs = interleaved(args.appends,
                                   appender(sqlite_store, "bench"), bare)
        (ours_median, ours_p99), (bare_median, bare_p99) = micros(ours), micros(theirs)
        ratio = ours_median / bare_median
        rows.append((f"bare sqlite3 INSERT + COMMIT (WAL, synchronous={sqlite_store.synchronous})",
                     f"{bare_median:.1f}", f"{bare_p99:.1f}", ""))
        rows.append((f"SQLiteSession.append of one message (synchronous={sqlite_store.synchronous})",
                     f"{ours_median:.1f}", f"{ours_p99:.1f}",
                     f"{ratio:.2f}x of bare sqlite3 (target <= 3x): {'met' if ratio <= 3 else 'MISSED'}"))
        for store in stores.values():
            store.close()

    print(f"Python {sys.version.split()[0]}, {args.appends} appends and {args.reads} reads per case, "
          f"load average {os.getloadavg()[0]:.1f} on {os.cpu_count()} CPUs. Times are wall clock: "
          "on a busy machine the p99 mostly shows the process waiting for a CPU.\n")
    print("| measurement | median µs | p99 µs | target |")
    print("|---|---:|---:|---|")
    for row in rows:
        print("| " + " | ".join(row) + " |")


if __name__ == "__main__":
    main()
