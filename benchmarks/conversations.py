"""ConversationsSession against the local test server, SQLiteSession side by side.

Run from the repository root: ``python benchmarks/conversations.py``. Prints, per
operation on a 1,000-message history, the median wall time and the number of HTTP
requests the Conversations store made. The server is local, so the times show this
library's overhead plus loopback HTTP, not OpenAI's latency: the request counts are
what carries over to the real API.
"""

from __future__ import annotations

import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import openai

import sessions
from tests.conversations_server import ConversationsServer

HISTORY = 1000
REPEAT = 15


def timed(fn: Callable[[], object]) -> float:
    samples = []
    for _ in range(REPEAT):
        start = time.perf_counter()
        fn()
        samples.append((time.perf_counter() - start) * 1000)
    return statistics.median(samples)


def main() -> None:
    server = ConversationsServer()
    client = openai.OpenAI(api_key="bench", base_url=server.base_url, max_retries=0)
    folder = Path(tempfile.mkdtemp())
    conversations = sessions.ConversationsSession(client, id_map=folder / "map.db")
    sqlite = sessions.SQLiteSession(folder / "sqlite.db")
    history = [{"role": "user" if i % 2 else "assistant", "content": f"message {i}"} for i in range(HISTORY)]
    for store in (conversations, sqlite):
        store.append("bench", history)
    operations: list[tuple[str, Callable[[sessions.Session], object]]] = [
        ("append 1 message", lambda s: s.append("bench", [{"role": "user", "content": "more"}])),
        ("get(limit=10)", lambda s: s.get("bench", limit=10)),
        ("get(limit=150)", lambda s: s.get("bench", limit=150)),
        (f"get() of {HISTORY}+", lambda s: s.get("bench")),
        ("count", lambda s: s.count("bench")),
        ("pop", lambda s: s.pop("bench")),
    ]
    print(f"{'operation':<20} {'sqlite ms':>10} {'conversations ms':>17} {'requests/call':>14}")
    for name, operation in operations:
        sqlite_ms = timed(lambda op=operation: op(sqlite))  # type: ignore[misc]
        before = len(server.requests)
        conversations_ms = timed(lambda op=operation: op(conversations))  # type: ignore[misc]
        requests = (len(server.requests) - before) / REPEAT
        print(f"{name:<20} {sqlite_ms:>10.3f} {conversations_ms:>17.3f} {requests:>14.1f}")
    conversations.close()
    sqlite.close()
    client.close()
    server.stop()


if __name__ == "__main__":
    main()
