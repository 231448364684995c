"""What ``min_replicas=1`` costs an append: RedisSession with and without it, side by side
in one run, interleaved call by call; prints a Markdown table.

    python -m benchmarks.replica_wait [--rounds 10] [--calls 300]

Starts its own servers with ``redis-server`` (tests/redis_servers.py), on loopback: a
standalone primary with one replica, and a Redis Cluster of 3 primaries with a replica
each. Each round times ``--calls`` appends of one message per side, the sides
alternating call by call (sync), or task by task in one event loop (async), with a
bare ``PING`` round trip between them as the unit.

Expected: the wait adds one replication round trip (the primary sends the write on to
its replica, the replica acknowledges it), about one loopback round trip, not two; the
write and its ``WAIT`` travel in one pipeline.
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import sys
import time
import uuid
from collections.abc import Awaitable, Callable
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from sessions import RedisSession
from tests.redis_servers import RedisCluster, ReplicatedServer

MESSAGE = {"role": "user", "content": "What is the weather like in Paris today?"}
SIDES = ("append", "append, min_replicas=1", "PING")


def interleaved(calls: list[Callable[[], object]], count: int) -> list[list[float]]:
    """Seconds per call of each of ``calls``, taking turns call by call."""
    samples: list[list[float]] = [[] for _ in calls]
    clock = time.perf_counter
    for _ in range(count):
        for call, times in zip(calls, samples, strict=True):
            started = clock()
            call()
            times.append(clock() - started)
    return samples


async def ainterleaved(calls: list[Callable[[], Awaitable[object]]], count: int) -> list[list[float]]:
    samples: list[list[float]] = [[] for _ in calls]
    clock = time.perf_counter
    for _ in range(count):
        for call, times in zip(calls, samples, strict=True):
            started = clock()
            await call()
            times.append(clock() - started)
    return samples


def measure(url: str, port: int, rounds: int, calls: int) -> dict[str, list[list[float]]]:
    """Sync and async samples of the three sides (``PING`` to the node at ``port``)."""
    import redis
    import redis.asyncio

    ping_client = redis.Redis(host="127.0.0.1", port=port)
    ping = ping_client.ping
    prefix = f"bench:{uuid.uuid4().hex}:"
    plain = RedisSession(f"{url}prefix={prefix}")
    waiting = RedisSession(f"{url}prefix={prefix}&min_replicas=1&replica_timeout=2")
    results: dict[str, list[list[float]]] = {"sync": [[], [], []], "async": [[], [], []]}
    sync_calls: list[Callable[[], object]] = [
        lambda: plain.append("plain", [MESSAGE]), lambda: waiting.append("waiting", [MESSAGE]), ping]
    interleaved(sync_calls, 50)  # warm up: connections, scripts
    for _ in range(rounds):
        for side, times in zip(results["sync"], interleaved(sync_calls, calls), strict=True):
            side.extend(times)

    async def run_async() -> None:
        aping_client = redis.asyncio.Redis(host="127.0.0.1", port=port)
        aping = aping_client.ping
        async_calls: list[Callable[[], Awaitable[object]]] = [
            lambda: plain.aappend("aplain", [MESSAGE]), lambda: waiting.aappend("awaiting", [MESSAGE]),
            aping]
        await ainterleaved(async_calls, 50)
        for _ in range(rounds):
            samples = await ainterleaved(async_calls, calls)
            for side, times in zip(results["async"], samples, strict=True):
                side.extend(times)
        await aping_client.aclose()

    asyncio.run(run_async())
    ping_client.close()
    for store in (plain, waiting):
        for session_id in ("plain", "waiting", "aplain", "awaiting"):
            store.delete(session_id)
        store.close()
    return results


def ms(seconds: float) -> str:
    return f"{seconds * 1000:.3f}"


def rows(topology: str, results: dict[str, list[list[float]]]) -> list[str]:
    out = []
    for mode, samples in results.items():
        if not samples[0]:
            continue
        median = [statistics.median(s) for s in samples]
        p99 = [sorted(s)[int(len(s) * 0.99)] for s in samples]
        extra = median[1] - median[0]
        out.append(
            f"| {topology} | {mode} | {ms(median[0])} / {ms(p99[0])} | {ms(median[1])} / {ms(p99[1])} "
            f"| {ms(extra)} | {ms(median[2])} | {extra / median[2]:.2f} |"
        )
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=10)
    parser.add_argument("--calls", type=int, default=300)
    args = parser.parse_args()

    table = [
        "| topology | API | append: median / p99 ms | min_replicas=1: median / p99 ms "
        "| extra per append, ms | PING round trip, ms | extra in round trips |",
        "|---|---|---|---|---|---|---|",
    ]
    pair = ReplicatedServer().start()
    try:
        port = pair.primary.port
        table += rows("primary + 1 replica",
                      measure(f"redis://127.0.0.1:{port}/0?", port, args.rounds, args.calls))
    finally:
        pair.remove()
    cluster = RedisCluster(replicas=1).start()
    try:
        table += rows("cluster, 3 x (primary + 1 replica)",
                      measure(f"redis+cluster://127.0.0.1:{cluster.port}?", cluster.port,
                              args.rounds, args.calls))
    finally:
        cluster.remove()
    print(f"{args.rounds} rounds x {args.calls} appends of one message per side, interleaved; "
          f"loopback, one machine.\n")
    print("\n".join(table))


if __name__ == "__main__":
    main()
