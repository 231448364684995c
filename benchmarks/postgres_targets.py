"""PostgresSession against bare psycopg, side by side on one server, in one run.

    python benchmarks/postgres_targets.py [postgresql://postgres@127.0.0.1:5432/test]

Prints a Markdown table (median and p99 of each side, the ratio and the target).
Measurements alternate between the two sides call by call, so load from other
processes hits both alike. Creates tables with a unique prefix and drops them after.
"""

from __future__ import annotations

import json
import statistics
import sys
import time
import uuid
from collections.abc import Callable
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import psycopg
from psycopg import sql

import sessions
from tests.backends import drop_postgres_tables

URL = sys.argv[1] if len(sys.argv) > 1 else "postgresql://postgres@127.0.0.1:5432/test"
MESSAGE = {
    "role": "assistant",
    "content": "Here is the summary you asked for: the meeting moved to Thursday at 10:00.",
    "name": "planner",
    "metadata": {"run_id": "run_0123456789abcdef", "tokens": 42},
}


def timed(fn: Callable[[], object]) -> float:
    started = time.perf_counter()
    fn()
    return (time.perf_counter() - started) * 1000.0


def paired(ours: Callable[[], object], reference: Callable[[], object], rounds: int,
           warmup: int = 20) -> tuple[list[float], list[float]]:
    for _ in range(warmup):
        ours()
        reference()
    a, b = [], []
    for i in range(rounds):
        if i % 2:
            a.append(timed(ours))
            b.append(timed(reference))
        else:
            b.append(timed(reference))
            a.append(timed(ours))
    return a, b


def p99(values: list[float]) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(len(ordered) * 0.99))]


def row(what: str, ours: list[float], reference: list[float] | None, target: str,
        met: bool, ref_name: str = "") -> str:
    med = statistics.median(ours)
    if reference is None:
        ref_text, ratio = "–", "–"
    else:
        rmed = statistics.median(reference)
        ref_text = f"{ref_name} {rmed:.3f} / {p99(reference):.3f}"
        ratio = f"{med / rmed:.2f}×"
    return (f"| {what} | {med:.3f} / {p99(ours):.3f} | {ref_text} | {ratio} | {target} | "
            f"{'yes' if met else 'NO'} |")


def load(store: sessions.PostgresSession, session_id: str, count: int) -> None:
    for start in range(0, count, 1000):
        store.append(session_id, [MESSAGE] * min(1000, count - start))


def main() -> None:
    prefix = f"bench{uuid.uuid4().hex[:8]}_"
    bare = sql.Identifier(prefix + "bare")
    lines = []
    store = sessions.PostgresSession(URL, table_prefix=prefix, max_size=2)
    conn = psycopg.connect(URL, autocommit=True)
    try:
        conn.execute(sql.SQL(
            "CREATE TABLE {} (id bigserial PRIMARY KEY, session_id text NOT NULL, body json NOT NULL)"
        ).format(bare))
        insert = sql.SQL("INSERT INTO {} (session_id, body) VALUES (%s, %s)").format(bare).as_string(conn)

        # 1. one-message append vs a bare autocommit INSERT of the same JSON (which the
        # bare client serialises too, as any caller holding a message dict must)
        store.append("append", [MESSAGE])
        ours, ref = paired(lambda: store.append("append", [MESSAGE]),
                           lambda: conn.execute(insert, ("append", json.dumps(MESSAGE))), 2000)
        ratio = statistics.median(ours) / statistics.median(ref)
        lines.append(row("append 1 message (ms)", ours, ref, "≤ 1.3× bare INSERT", ratio <= 1.3,
                         "INSERT"))

        # 2. append at 0 vs 100,000 messages of history
        load(store, "deep", 100_000)
        store.append("shallow", [MESSAGE])
        store.delete("shallow")
        fresh = iter(range(10**9))
        shallow, deep = paired(lambda: store.append(f"empty-{next(fresh)}", [MESSAGE]),
                               lambda: store.append("deep", [MESSAGE]), 1000)
        ratio = statistics.median(deep) / statistics.median(shallow)
        lines.append(row("append at 100,000 messages (ms)", deep, shallow, "≤ 1.5× at 0",
                         ratio <= 1.5, "at 0:"))

        # 3. get(limit=50) at 100,000 messages
        window, _ = paired(lambda: store.get("deep", limit=50), lambda: None, 1000)
        lines.append(row("get(limit=50) at 100,000 (ms)", window, None, "< 3 ms",
                         statistics.median(window) < 3.0))

        # 4. full read of 10,000 messages vs bare SELECT + json.loads
        load(store, "full", 10_000)
        select = sql.SQL(
            "SELECT body::text FROM {} WHERE session_ref = (SELECT id FROM {} WHERE session_id = %s)"
            " ORDER BY seq"
        ).format(sql.Identifier(prefix + "messages"), sql.Identifier(prefix + "sessions")).as_string(conn)

        def bare_read() -> list[object]:
            return [json.loads(r[0]) for r in conn.execute(select, ("full",)).fetchall()]

        assert bare_read() == store.get("full")
        ours, ref = paired(lambda: store.get("full"), bare_read, 60, warmup=5)
        ratio = statistics.median(ours) / statistics.median(ref)
        lines.append(row("full read of 10,000 (ms)", ours, ref, "≤ 1.5× bare", ratio <= 1.5,
                         "SELECT+loads"))
    finally:
        store.close()
        conn.execute(sql.SQL("DROP TABLE IF EXISTS {}").format(bare))
        conn.close()
        drop_postgres_tables(URL, prefix)

    print(f"PostgreSQL {URL.rsplit('@', 1)[-1]}, psycopg {psycopg.__version__}; "
          "times in ms, median / p99")
    print()
    print("| measurement | session-layer | reference | ratio | target | met |")
    print("|---|---|---|---|---|---|")
    for line in lines:
        print(line)


if __name__ == "__main__":
    main()
