"""The LangChain adapter's targets, measured side by side in one run (a Markdown table).

    python benchmarks/langchain_targets.py                      # our SQLite store
    python benchmarks/langchain_targets.py --url postgresql://postgres@127.0.0.1:5432/test

1. Reading a 10,000-message history through ``SessionChatMessageHistory.messages`` on
   the store at ``--url`` (the model view of the history, as LangChain messages), next
   to the same read converted without the view, langchain-core building the same
   messages from ``message_to_dict`` dicts (``messages_from_dict``, no I/O at all: the
   cost of construction alone) and, when ``langchain-postgres`` is installed, its
   ``PostgresChatMessageHistory`` reading the same messages from PostgreSQL
   (``--postgres``, a table of its own, dropped afterwards). Target: at least 2x faster
   than ``PostgresChatMessageHistory``. The reads are timed in ``--repeat`` interleaved
   rounds (each round times every row once, in an order that alternates) and each row
   shows the median and the best.
2. Appending a turn (a human and an AI message) through ``add_messages`` next to the
   bare store ``append`` of the same canonical messages. Target: within 1.2x; each
   figure is the best of ``--repeat`` runs.

The machine may be shared: compare the rows of one run, and run it again when in doubt.
"""

from __future__ import annotations

import argparse
import contextlib
import statistics
import sys
import tempfile
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from langchain_core.messages import (
    AIMessage,
    BaseMessage,
    HumanMessage,
    ToolMessage,
    message_to_dict,
    messages_from_dict,
)

import sessions
from adapters._gc import collector_paused
from adapters.langchain import SessionChatMessageHistory, from_canonical, to_canonical


def history(n: int) -> list[BaseMessage]:
    """A realistic mix: questions, answers with model metadata, some tool exchanges."""
    out: list[BaseMessage] = []
    i = 0
    while len(out) < n:
        out.append(HumanMessage(f"Question {i}: what about item {i * 7 % 101}?", id=f"h-{i}"))
        if i % 10 == 9:
            call_id = f"call_{i}"
            out.append(AIMessage("", id=f"run-{i}a", tool_calls=[
                {"name": "lookup", "args": {"item": i * 7 % 101}, "id": call_id}]))
            out.append(ToolMessage(f"item {i}: in stock", tool_call_id=call_id, name="lookup"))
        out.append(AIMessage(
            f"Answer {i}: item {i * 7 % 101} is available in three colours.",
            id=f"run-{i}",
            response_metadata={"model_name": "gpt-4o-mini", "finish_reason": "stop"},
            usage_metadata={"input_tokens": 100 + i % 50, "output_tokens": 20, "total_tokens": 120 + i % 50},
        ))
        i += 1
    return out[:n]


def best_ms(fn: Callable[[], Any], repeat: int) -> float:
    """The fastest of ``repeat`` runs: the least disturbed by other work on the machine."""
    times = []
    for _ in range(repeat):
        started = time.perf_counter()
        fn()
        times.append(time.perf_counter() - started)
    return min(times) * 1000


def per_call_us(fn: Callable[[int], Any], calls: int, repeat: int) -> float:
    def run() -> None:
        for i in range(calls):
            fn(i)
    return best_ms(run, repeat) * 1000 / calls


def converted(stored: list[Any]) -> list[BaseMessage]:
    """Stored messages as LangChain messages without the model view (as the history
    converts them: the cyclic collector paused)."""
    with collector_paused(len(stored)):
        return [from_canonical(m) for m in stored]


def interleaved_ms(fns: dict[str, Callable[[], Any]], rounds: int) -> dict[str, tuple[float, float]]:
    """(median, best) milliseconds of each function, timed in rounds: every round calls
    each once, the order reversed from one round to the next."""
    names = list(fns)
    for name in names:  # first calls (connections, caches) are not timed
        fns[name]()
    times: dict[str, list[float]] = {name: [] for name in names}
    for number in range(rounds):
        for name in names if number % 2 == 0 else reversed(names):
            started = time.perf_counter()
            fns[name]()
            times[name].append(time.perf_counter() - started)
    return {name: (statistics.median(t) * 1000, min(t) * 1000) for name, t in times.items()}


@contextlib.contextmanager
def postgres_history(dsn: str, messages: list[BaseMessage]) -> Iterator[Any]:
    """langchain-postgres's history holding ``messages`` in a table of its own (dropped
    afterwards), or a str saying why there is none."""
    try:
        import psycopg
        from langchain_postgres import PostgresChatMessageHistory
    except ImportError as error:
        yield f"langchain-postgres is not installed ({error.name})"
        return
    table = f"bench_lc_{uuid.uuid4().hex[:12]}"
    try:
        connection = psycopg.connect(dsn)
    except psycopg.Error as error:
        yield f"PostgreSQL is not reachable: {error}"
        return
    with connection:
        PostgresChatMessageHistory.create_tables(connection, table)
        try:
            hist = PostgresChatMessageHistory(table, str(uuid.uuid4()), sync_connection=connection)
            hist.add_messages(messages)
            assert hist.messages == messages
            yield hist
        finally:
            PostgresChatMessageHistory.drop_table(connection, table)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--url", help="our store (default: a fresh SQLite file)")
    parser.add_argument("--postgres", default="postgresql://postgres@127.0.0.1:5432/test",
                        help="PostgreSQL for langchain-postgres (default: %(default)s)")
    parser.add_argument("--messages", type=int, default=10_000)
    parser.add_argument("--turns", type=int, default=300, help="appends measured")
    parser.add_argument("--repeat", type=int, default=7)
    args = parser.parse_args()

    with tempfile.TemporaryDirectory() as tmp:
        url = args.url or f"sqlite:///{tmp}/bench.db"
        store = sessions.connect(url)
        session_id = f"bench-lc-{uuid.uuid4().hex}"
        turn_session = f"{session_id}-turns"
        messages = history(args.messages)
        turns = [[HumanMessage(f"q{i}"), AIMessage(f"a{i}", id=f"run-{i}")] for i in range(args.turns)]
        canonical_turns = [[to_canonical(m) for m in turn] for turn in turns]
        try:
            chat = SessionChatMessageHistory(store, session_id)
            chat.add_messages(messages)
            assert chat.messages == messages
            dicts = [message_to_dict(m) for m in messages]
            with postgres_history(args.postgres, messages) as pg:
                reads: dict[str, Callable[[], Any]] = {
                    f"`SessionChatMessageHistory.messages` ({url.split(':')[0]})": lambda: chat.messages,
                    "the same read without the model view (`from_canonical` of each stored message)":
                        lambda: converted(store.get(session_id)),
                    "bare `store.get` (records to dicts, no LangChain)": lambda: store.get(session_id),
                    "langchain-core `messages_from_dict`, no I/O": lambda: messages_from_dict(dicts),
                }
                if not isinstance(pg, str):
                    reads["langchain-postgres `PostgresChatMessageHistory.messages`"] = lambda: pg.messages
                timed = interleaved_ms(reads, args.repeat)
                if not isinstance(pg, str):
                    pg_append = per_call_us(lambda i: pg.add_messages(turns[i]), len(turns), 1)

            ours = timed[next(iter(reads))][0]
            print(f"## Reading {args.messages:,} messages ({args.repeat} interleaved rounds)\n")
            print("| what | median ms | best ms |  |\n|---|---:|---:|---|")
            for name, (median, best) in timed.items():
                note = ""
                if name.startswith("langchain-postgres"):
                    note = f"ours is {median / ours:.1f}x faster (target >= 2x)"
                print(f"| {name} | {median:.1f} | {best:.1f} | {note} |")
            if isinstance(pg, str):
                print(f"\nlangchain-postgres not measured: {pg}")

            adapter = SessionChatMessageHistory(store, turn_session)
            half = len(turns) // 2
            ours_append = per_call_us(lambda i: adapter.add_messages(turns[i % half]), half, args.repeat)
            bare_append = per_call_us(lambda i: store.append(turn_session, canonical_turns[i % half]),
                                      half, args.repeat)
            print(f"\n## Appending a turn (2 messages; best of {args.repeat} x {half} appends)\n")
            print("| what | µs per append |  |\n|---|---:|---|")
            print(f"| `SessionChatMessageHistory.add_messages` | {ours_append:.0f} | "
                  f"{ours_append / bare_append:.2f}x the bare append (target <= 1.2x) |")
            print(f"| bare `store.append` of the canonical messages | {bare_append:.0f} | |")
            if not isinstance(pg, str):
                print(f"| langchain-postgres `add_messages` | {pg_append:.0f} | |")
        finally:
            store.delete(session_id)
            store.delete(turn_session)
            store.close()


if __name__ == "__main__":
    main()
