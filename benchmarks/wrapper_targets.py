"""Wrapper and migration figures, side by side with the unwrapped store, in one run.

    python benchmarks/wrapper_targets.py
    python benchmarks/wrapper_targets.py --target "postgresql://postgres@127.0.0.1:5432/test?table_prefix=bench_"

Prints a Markdown table:

* encryption overhead per message of about 1 kB (append and read), against the same
  store unwrapped (target: under 30 us per message);
* bytes stored for a 10,000-message history, plain against compress-then-encrypt
  (target: fewer bytes), plus the other stacks for reference;
* migrating 1,000 sessions x 100 messages from SQLite to ``--target`` (default: a new
  SQLite file; target: under 30 s), and the idempotent second run.

Sessions written to ``--target`` carry a unique prefix and are deleted afterwards.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import sqlite3
import sys
import tempfile
import time
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import sessions

KEY = bytes(range(32))
TEXT = (
    "the report shows revenue growth across every region while costs stayed flat because "
    "the team renegotiated supplier contracts and moved storage to cheaper tiers customers "
    "asked about delivery dates pricing refunds and the new dashboard which summarises "
    "weekly usage per account with charts tables exports alerts budgets forecasts risks "
    "owners deadlines meetings decisions follow up items engineering support marketing"
)
VOCABULARY = TEXT.split()


def prose(rng: random.Random, words: int) -> str:
    return " ".join(rng.choice(VOCABULARY) for _ in range(words)).capitalize() + "."


def agent_history(count: int, seed: int = 7) -> list[dict[str, Any]]:
    """A typical agent chat: a question, a tool call, a tool result, a long answer."""
    rng = random.Random(seed)
    history: list[dict[str, Any]] = []
    while len(history) < count:
        n = len(history)
        history.append({"role": "user", "content": prose(rng, 25)})
        history.append({"role": "assistant", "content": None, "tool_calls": [{
            "id": f"call_{n}", "type": "function",
            "function": {"name": "search_reports", "arguments": json.dumps({"query": prose(rng, 6)})}}]})
        history.append({"role": "tool", "tool_call_id": f"call_{n}", "content": prose(rng, 120)})
        history.append({"role": "assistant", "content": prose(rng, 180), "id": f"msg_{n}"})
    return history[:count]


def kilobyte_messages(count: int) -> list[dict[str, Any]]:
    rng = random.Random(1)
    messages = []
    for _ in range(count):
        message = {"role": "assistant", "content": prose(rng, 150)}
        while len(json.dumps(message)) < 1000:
            message["content"] += " " + rng.choice(VOCABULARY)
        message["content"] = message["content"][: 1000 - 30]
        messages.append(message)
    return messages


def encryption_overhead(rows: list[tuple[str, str, str]], count: int = 5000, rounds: int = 7) -> None:
    """Plain and encrypted stores timed in alternating rounds (best of each), so load
    from other processes affects both sides alike."""
    messages = kilobyte_messages(count)
    size = sum(len(json.dumps(m)) for m in messages) / count
    batches = [messages[i:i + 50] for i in range(0, count, 50)]
    with tempfile.TemporaryDirectory() as directory:
        def sqlite() -> sessions.Session:
            return sessions.SQLiteSession(Path(directory) / f"{uuid.uuid4()}.db")

        for label, make_base in [("memory", sessions.MemorySession), ("sqlite", sqlite)]:
            bases = {"plain": make_base(), "encrypted": make_base()}
            stores = {"plain": bases["plain"],
                      "encrypted": sessions.with_encryption(bases["encrypted"], KEY)}
            best = {(name, phase): float("inf") for name in stores for phase in ("append", "get")}
            for _ in range(rounds):
                for name, store in stores.items():
                    store.delete("bench")
                    start = time.perf_counter()
                    for batch in batches:
                        store.append("bench", batch)
                    middle = time.perf_counter()
                    store.get("bench")
                    end = time.perf_counter()
                    best[name, "append"] = min(best[name, "append"], middle - start)
                    best[name, "get"] = min(best[name, "get"], end - middle)
            for base in bases.values():
                base.close()
            for phase in ("append", "get"):
                plain = best["plain", phase] / count * 1e6
                encrypted = best["encrypted", phase] / count * 1e6
                rows.append((
                    f"encryption overhead per ~{size:.0f} B message, {phase}, {label}",
                    f"{encrypted - plain:.1f} us (plain {plain:.1f} us, encrypted {encrypted:.1f} us)",
                    "< 30 us",
                ))


def stored_bytes(rows: list[tuple[str, str, str]], count: int = 10_000) -> None:
    history = agent_history(count)
    stacks: list[tuple[str, Callable[[sessions.Session], sessions.Session]]] = [
        ("plain", lambda s: s),
        ("compressed (gzip)", lambda s: sessions.with_compression(s)),
        ("compress-then-encrypt", lambda s: sessions.with_compression(sessions.with_encryption(s, KEY))),
        ("encrypted only", lambda s: sessions.with_encryption(s, KEY)),
    ]
    results = {}
    with tempfile.TemporaryDirectory() as directory:
        for name, wrap in stacks:
            path = Path(directory) / f"{uuid.uuid4()}.db"
            with sessions.SQLiteSession(path) as base:
                store = wrap(base)
                for start in range(0, count, 500):
                    store.append("history", history[start:start + 500])
                assert store.get("history") == history
            conn = sqlite3.connect(path)
            body = conn.execute(
                "SELECT sum(length(CAST(body AS BLOB))) FROM session_layer_messages").fetchone()[0]
            conn.execute("VACUUM")
            conn.close()
            results[name] = (body, os.path.getsize(path))
    plain_body, plain_file = results["plain"]
    for name, (body, file_size) in results.items():
        rows.append((
            f"bytes stored, {count:,}-message agent history, {name}",
            f"{body:,} B of records ({body / plain_body:.0%}), file {file_size:,} B "
            f"({file_size / plain_file:.0%})",
            "fewer than plain" if name == "compress-then-encrypt" else "reference",
        ))


def migration(rows: list[tuple[str, str, str]], target_url: str | None,
              sessions_count: int = 1000, per_session: int = 100) -> None:
    prefix = f"bench-{uuid.uuid4().hex[:8]}-"
    rng = random.Random(3)
    with tempfile.TemporaryDirectory() as directory:
        source = sessions.SQLiteSession(Path(directory) / "source.db")
        for i in range(sessions_count):
            source.append(f"{prefix}{i:05d}", [
                {"role": "user" if k % 2 == 0 else "assistant", "content": prose(rng, 30)}
                for k in range(per_session)
            ])
        url = target_url or f"sqlite:///{directory}/target.db"
        target = sessions.connect(url)
        try:
            start = time.perf_counter()
            report = sessions.migrate(source, target)
            first = time.perf_counter() - start
            start = time.perf_counter()
            again = sessions.migrate(source, target)
            second = time.perf_counter() - start
            assert report.copied == sessions_count, report
            assert again.unchanged == sessions_count and again.messages_written == 0, again
            shown = url if target_url is None else url.split("?")[0]
            kind = shown.split(":")[0]
            rows.append((
                f"migrate {sessions_count:,} sessions x {per_session} messages, SQLite -> {kind}",
                f"{first:.2f} s ({report.messages_written:,} messages)", "< 30 s"))
            rows.append((f"same migration again (idempotent: nothing written), SQLite -> {kind}",
                         f"{second:.2f} s", "reference"))
        finally:
            for i in range(sessions_count):
                target.delete(f"{prefix}{i:05d}")
            target.close()
            source.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--target", help="migration target URL (default: a new SQLite file)")
    parser.add_argument("--skip-migration", action="store_true")
    args = parser.parse_args()
    rows: list[tuple[str, str, str]] = []
    encryption_overhead(rows)
    stored_bytes(rows)
    if not args.skip_migration:
        migration(rows, args.target)
    print("| measurement | result | target |")
    print("|---|---|---|")
    for row in rows:
        print("| " + " | ".join(row) + " |")


if __name__ == "__main__":
    main()
