"""RedisSession against bare redis-py, side by side in one run; prints a Markdown table.

    python benchmarks/redis_targets.py [--url redis://127.0.0.1:6379/0] [--rounds 5]

Targets: append of one message within 1.3x of a bare ``RPUSH`` of the same JSON;
append at 100,000 messages within 1.5x of append to an empty session;
``get(limit=50)`` at 100,000 messages under 3 ms; a full read of 10,000 messages
within 1.5x of a bare ``LRANGE 0 -1`` plus ``json.loads`` of every item.
Both sides use one connection to the same server; the two sides of a comparison
alternate call by call, so that noise from other processes hits both alike. Only keys under a fresh
``bench:<uuid>:`` prefix are written, and they are removed at the end.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
import uuid
from collections.abc import Callable
from pathlib import Path

import redis

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from sessions import RedisSession
from sessions.redis import _glob_escape

MESSAGE = {"role": "user", "content": "What is the weather like in Paris today?"}
JSON = json.dumps(MESSAGE, separators=(",", ":"), ensure_ascii=False)


def timings(call: Callable[[int], object], count: int) -> list[float]:
    """Seconds per call of ``call(i)`` for i in range(count)."""
    return paired(call, None, count)[0]


def paired(first: Callable[[int], object], second: Callable[[int], object] | None,
           count: int) -> tuple[list[float], list[float]]:
    """Seconds per call of each, alternating call by call so both meet the same noise."""
    one: list[float] = []
    two: list[float] = []
    clock = time.perf_counter
    for i in range(count):
        started = clock()
        first(i)
        one.append(clock() - started)
        if second is not None:
            started = clock()
            second(i)
            two.append(clock() - started)
    return one, two


def summary(samples: list[float]) -> tuple[float, float]:
    ordered = sorted(samples)
    return statistics.median(ordered), ordered[min(len(ordered) - 1, int(len(ordered) * 0.99))]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--url", default="redis://127.0.0.1:6379/0")
    parser.add_argument("--rounds", type=int, default=5)
    args = parser.parse_args()

    prefix = f"bench:{uuid.uuid4().hex}:"
    store = RedisSession(args.url, prefix=prefix)
    bare = redis.Redis(host=store.host, port=store.port, db=store.db, protocol=2)
    bare_key = prefix + "bare-list"
    results: dict[str, tuple[list[float], list[float]]] = {
        name: ([], []) for name in ("append", "append+dumps", "history", "window", "full")
    }
    try:
        big = "history-100k"
        for _ in range(50):
            store.append(big, [MESSAGE] * 2_000)
        full_id = "history-10k"
        store.append(full_id, [MESSAGE] * 10_000)
        bare_full = prefix + "bare-10k"
        bare.rpush(bare_full, *[JSON] * 10_000)
        store.append("warm-up", [MESSAGE])
        bare.rpush(bare_key, JSON)

        for round_number in range(args.rounds):
            theirs, ours = paired(lambda i: bare.rpush(bare_key, JSON),
                                  lambda i: store.append("one", [MESSAGE]), 1000)
            results["append"][0].extend(ours)
            results["append"][1].extend(theirs)
            theirs, ours = paired(lambda i: bare.rpush(bare_key, json.dumps(MESSAGE)),
                                  lambda i: store.append("one", [MESSAGE]), 1000)
            results["append+dumps"][0].extend(ours)
            results["append+dumps"][1].extend(theirs)

            def append_to_new(i: int, r: int = round_number) -> None:
                store.append(f"new-{r}-{i}", [MESSAGE])

            empty, full = paired(append_to_new, lambda i: store.append(big, [MESSAGE]), 400)
            results["history"][0].extend(full)
            results["history"][1].extend(empty)

            results["window"][0].extend(timings(lambda i: store.get(big, limit=50), 400))

            theirs, ours = paired(lambda i: [json.loads(r) for r in bare.lrange(bare_full, 0, -1)],
                                  lambda i: store.get(full_id), 10)
            results["full"][0].extend(ours)
            results["full"][1].extend(theirs)
    finally:
        for key in bare.scan_iter(match=_glob_escape(prefix) + "*", count=1000):
            bare.unlink(key)
        store.close()
        bare.close()

    def ms(seconds: float) -> str:
        return f"{seconds * 1000:.3f}"

    rows = []
    for name, what, reference, target in (
        ("append", "append 1 message", "bare RPUSH of the same JSON, encoded beforehand", 1.3),
        ("append+dumps", "append 1 message", "bare RPUSH of json.dumps(message)", 1.3),
        ("history", "append at 100,000 messages", "append to an empty session", 1.5),
        ("full", "get() of 10,000 messages", "bare LRANGE 0 -1 + json.loads", 1.5),
    ):
        ours, theirs = results[name]
        (om, op), (tm, tp) = summary(ours), summary(theirs)
        ratio = om / tm
        rows.append((what, ms(om), ms(op), reference, ms(tm), ms(tp), f"{ratio:.2f}x",
                     f"<= {target}x", "yes" if ratio <= target else "NO"))
    wm, wp = summary(results["window"][0])
    rows.append(("get(limit=50) at 100,000 messages", ms(wm), ms(wp), "-", "-", "-", "-",
                 "< 3 ms", "yes" if wm < 0.003 else "NO"))

    print(f"RedisSession vs redis-py {redis.__version__} on {args.url}, {args.rounds} rounds\n")
    print("| measurement | median ms | p99 ms | reference | ref. median ms | ref. p99 ms "
          "| ratio (medians) | target | met |")
    print("|---|---|---|---|---|---|---|---|---|")
    for row in rows:
        print("| " + " | ".join(row) + " |")


if __name__ == "__main__":
    main()
