"""LlamaIndex adapter targets, side by side with llama-index's RedisChatStore, in one run.

    python benchmarks/llamaindex_targets.py [--url STORE_URL] [--redis REDIS_URL]
                                            [--messages 10000] [--repeat 5] [--window 100]

Prints a Markdown table:

* a full read of a ``--messages`` history through ``SessionChatStore.get_messages``
  against ``RedisChatStore.get_messages`` (target: at most 1.1x its time);
* one chat turn of a ``ChatMemoryBuffer``-backed ``SimpleChatEngine`` (``MockLLM``) over
  that history, ours with ``window`` against ``RedisChatStore`` (target: 10x faster);
* ``SessionChatStore.add_message`` against the bare ``Session.append`` of the same
  message (target: within 1.2x).

``--url`` is our store (default: a fresh SQLite file in a temporary directory; any
``sessions.connect`` URL works, e.g. ``redis://127.0.0.1:6379/0`` once that backend is
installed). RedisChatStore needs ``pip install llama-index-storage-chat-store-redis``
and a Redis server (default ``redis://127.0.0.1:6379/0``); the benchmark writes only
under its own random keys and deletes them afterwards. Figures are best-of-``repeat``
wall times; the machine may be shared, so compare the columns of one run.
"""

from __future__ import annotations

import argparse
import gc
import os
import sys
import tempfile
import time
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from llama_index.core.base.llms.types import ChatMessage
from llama_index.core.chat_engine import SimpleChatEngine
from llama_index.core.llms import MockLLM
from llama_index.core.memory import ChatMemoryBuffer
from llama_index.core.storage.chat_store import BaseChatStore

import sessions
from adapters.llamaindex import SessionChatStore, to_canonical


def history(size: int) -> list[ChatMessage]:
    """A plausible conversation: alternating questions and longer answers."""
    messages = []
    for i in range(size):
        if i % 2 == 0:
            messages.append(ChatMessage(role="user", content=f"Question {i}: how does step {i} work?"))
        else:
            messages.append(ChatMessage(
                role="assistant",
                content=f"Answer {i}: " + "it works by doing the next sensible thing. " * 4,
            ))
    return messages


def best(fn: Callable[[], Any], repeat: int) -> float:
    """Best wall time of ``repeat`` runs. The garbage collector stays on, but each run
    starts from a collected heap: otherwise a full collection owed to one side's
    objects lands at random in the other side's timing."""
    times = []
    for _ in range(repeat):
        gc.collect()
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return min(times)


def side_by_side(ours: Callable[[], Any], theirs: Callable[[], Any] | None,
                 repeat: int) -> tuple[float, float | None]:
    """Best times of both, measured alternately (and in alternating order) so that
    load on the machine and periodic work of the store hit both sides alike."""
    mine: list[float] = []
    other: list[float] = []
    for round_ in range(repeat):
        if theirs is not None and round_ % 2:
            other.append(best(theirs, 1))
            mine.append(best(ours, 1))
            continue
        mine.append(best(ours, 1))
        if theirs is not None:
            other.append(best(theirs, 1))
    return min(mine), (min(other) if other else None)


def chat_turn(chat_store: BaseChatStore, key: str, token_limit: int) -> Callable[[], Any]:
    def turn() -> None:
        memory = ChatMemoryBuffer.from_defaults(chat_store=chat_store, chat_store_key=key,
                                                token_limit=token_limit)
        engine = SimpleChatEngine.from_defaults(llm=MockLLM(max_tokens=8), memory=memory)
        engine.chat("And the next step?")
        # Keep the history at its size for the next repetition.
        chat_store.delete_last_message(key)
        chat_store.delete_last_message(key)
    return turn


def open_redis_store(url: str) -> Any:
    try:
        import redis
        from llama_index.storage.chat_store.redis import RedisChatStore
    except ImportError as error:
        print(f"RedisChatStore unavailable ({error}); "
              "pip install llama-index-storage-chat-store-redis", file=sys.stderr)
        return None
    client = redis.Redis.from_url(url)
    try:
        client.ping()
    except redis.RedisError as error:
        print(f"Redis at {url} unavailable: {error}", file=sys.stderr)
        return None
    return RedisChatStore(redis_client=client), client


def fmt(seconds: float | None) -> str:
    return "–" if seconds is None else f"{seconds * 1000:.1f} ms"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--url", help="our store URL (default: a temporary SQLite file)")
    parser.add_argument("--redis", default="redis://127.0.0.1:6379/0")
    parser.add_argument("--messages", type=int, default=10_000)
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--window", type=int, default=100)
    args = parser.parse_args()

    with tempfile.TemporaryDirectory() as tmp:
        url = args.url or f"sqlite:///{os.path.join(tmp, 'bench.db')}"
        store = sessions.connect(url)
        key = f"bench-llamaindex-{uuid.uuid4().hex}"
        messages = history(args.messages)
        canonical = [to_canonical(m) for m in messages]
        for start in range(0, len(canonical), 1000):
            store.append(key, canonical[start:start + 1000])
        ours = SessionChatStore(store)
        ours_window = SessionChatStore(store, window=args.window)
        assert ours.get_messages(key) == messages

        opened = open_redis_store(args.redis)
        redis_key = f"bench-llamaindex-redis-{uuid.uuid4().hex}"
        try:
            theirs = None
            if opened is not None:
                theirs, client = opened
                pipe = client.pipeline(transaction=False)
                for message in messages:
                    pipe.rpush(redis_key, message.model_dump_json())
                pipe.execute()
                assert theirs.get_messages(redis_key) == messages

            rows = []
            read_ours, read_theirs = side_by_side(
                lambda: ours.get_messages(key),
                (lambda: theirs.get_messages(redis_key)) if theirs else None, args.repeat)
            rows.append((f"full read of {args.messages:,} messages (get_messages)",
                         read_ours, read_theirs, "≤ 1.1× RedisChatStore"))

            # A token limit the whole history fits in: ChatMemoryBuffer trims a longer
            # history one message at a time, re-counting the tokens of what remains at
            # every step (quadratic), which would take minutes over 10,000 messages.
            limit = 10**8
            turn_ours = best(chat_turn(ours_window, key, limit), args.repeat)
            turn_full, turn_theirs = side_by_side(
                chat_turn(ours, key, limit),
                chat_turn(theirs, redis_key, limit) if theirs else None, args.repeat)
            rows.append((f"chat turn, ChatMemoryBuffer + SimpleChatEngine (MockLLM), window={args.window}",
                         turn_ours, turn_theirs, "≥ 10× faster"))
            rows.append(("chat turn, same, no window (reads the whole history)",
                         turn_full, turn_theirs, "for reference"))

            probe = ChatMessage(role="user", content="A new question about the next step?")
            probe_canonical = to_canonical(probe)
            append_key = f"{key}-append"

            def adapter_append() -> None:
                for _ in range(20):
                    ours.add_message(append_key, probe)

            def bare_append() -> None:
                for _ in range(20):
                    store.append(append_key, [probe_canonical])

            # Many short interleaved samples, best of each: disk stalls on a shared
            # machine otherwise swamp the few microseconds of conversion.
            add_ours, add_bare = side_by_side(adapter_append, bare_append, 30 * args.repeat)
            add_ours /= 20
            add_bare = (add_bare or 0.0) / 20
            store.delete(append_key)
        finally:
            if opened is not None:
                opened[1].delete(redis_key)
            store.delete(key)
            store.close()

    print(f"Our store: {url.split('?')[0]}; RedisChatStore: {args.redis if theirs else 'unavailable'}; "
          f"best of {args.repeat}.\n")
    print("| measurement | SessionChatStore | RedisChatStore | ratio (ours / theirs) | target |")
    print("|---|---|---|---|---|")
    for name, mine, other, target in rows:
        ratio = f"{mine / other:.2f}× ({other / mine:.1f}× faster)" if other else "–"
        print(f"| {name} | {fmt(mine)} | {fmt(other)} | {ratio} | {target} |")
    print(f"| append one message: add_message vs bare Session.append (best) | "
          f"{add_ours * 1e6:.0f} µs | bare: {add_bare * 1e6:.0f} µs | {add_ours / add_bare:.2f}× | ≤ 1.2× |")


if __name__ == "__main__":
    main()
