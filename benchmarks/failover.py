"""What a failover does to acknowledged appends: the failover tests' scenarios run
several times, with and without a replicated acknowledgement; prints a Markdown table.

    python -m benchmarks.failover [--runs 3] [--kind threads] [--only redis|postgres]

Each run kills a primary under 8 writers after its replica was cut off and paused
for half a second (see tests/failover.py for why), lets the replica take over and
audits every session: acknowledged appends lost, failed calls, the slowest failure,
and the seconds from the kill to the promotion and to the first acknowledged append
to the failed-over sessions. Starts its own servers: a Redis Cluster of 3 primaries
with a replica each (``cluster-node-timeout`` 2 s), and per run a PostgreSQL primary
with a streaming standby.
"""

from __future__ import annotations

import argparse
import logging
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from tests.failover import Outcome, postgres_failover, redis_cluster_failover, replicated_postgres
from tests.postgres_servers import bindir
from tests.redis_servers import RedisCluster


def row(backend: str, setting: str, run: int, outcome: Outcome) -> str:
    milestones = list(outcome.milestones.values())
    first = "never" if outcome.first_ack_after is None else f"{outcome.first_ack_after:.2f}"
    return (f"| {backend} | {setting} | {run} | {outcome.acknowledged} | {outcome.failed} "
            f"| **{len(outcome.lost)}** | {outcome.slowest_failure:.2f} | {milestones[0]:.2f} | {first} |")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--kind", default="threads", choices=("threads", "processes", "tasks"))
    parser.add_argument("--only", choices=("redis", "postgres"))
    args = parser.parse_args()
    # psycopg_pool logs every failed reconnection while no server accepts writes.
    logging.getLogger("psycopg.pool").setLevel(logging.ERROR)

    table = [
        "| backend | setting | run | acknowledged | failed | **lost** | slowest failure, s "
        "| promoted after, s | first append after, s |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    if args.only in (None, "redis"):
        cluster = RedisCluster(replicas=1, node_timeout_ms=2000).start()
        try:
            for setting, min_replicas in (("min_replicas=1", 1), ("no min_replicas", 0)):
                for run in range(1, args.runs + 1):
                    outcome = redis_cluster_failover(cluster, args.kind, min_replicas)
                    table.append(row("Redis Cluster", setting, run, outcome))
                    print(table[-1], file=sys.stderr)
        finally:
            cluster.remove()
    if args.only in (None, "postgres"):
        programs = bindir()
        if programs is None:
            raise SystemExit("PostgreSQL binaries not found")
        for setting, synchronous in (("synchronous standby", True), ("asynchronous standby", False)):
            for run in range(1, args.runs + 1):
                with replicated_postgres(programs, synchronous) as servers:
                    outcome = postgres_failover(*servers, args.kind)
                table.append(row("PostgreSQL", setting, run, outcome))
                print(table[-1], file=sys.stderr)
    print(f"8 writers ({args.kind}), batches of 3 messages; the replica cut off and paused 0.5 s "
          f"before the primary's SIGKILL; times from the kill. 'first append' is the first "
          f"acknowledged append to a session of the killed primary (Redis: after the killed node "
          f"rejoined as the new primary's replica, which min_replicas=1 needs with one replica "
          f"per primary).\n")
    print("\n".join(table))


if __name__ == "__main__":
    main()
