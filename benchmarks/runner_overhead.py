"""The native runner's own overhead per run, excluding the model call.

    python -m benchmarks.runner_overhead [--history 1000] [--runs 300]

A real ``openai`` client answers from an in-process transport (``httpx2.MockTransport``)
with canned completions, and the time spent inside ``chat.completions.create`` (request
building, the transport, response parsing) is measured and subtracted from each run.
What remains is the runner's share: loading the history from a SQLite file, building
the messages, dispatching tools and appending the new messages. The bare store calls
are timed beside it for reference. Each run's appended messages are popped again
(untimed), so every run sees the same history length.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx2
import openai

import sessions
from adapters.runner import Agent, Runner, function_tool

SESSION = "bench-user"


def completion(message: dict[str, Any]) -> bytes:
    return json.dumps({
        "id": "chatcmpl-bench", "object": "chat.completion", "created": 0, "model": "bench",
        "choices": [{"index": 0, "message": message, "finish_reason": "stop"}],
        "usage": {"prompt_tokens": 1000, "completion_tokens": 10, "total_tokens": 1010},
    }).encode()


ANSWER = completion({"role": "assistant", "content": "The answer."})
TOOL_CALL = completion({"role": "assistant", "content": None, "tool_calls": [
    {"id": "call_1", "type": "function", "function": {"name": "lookup", "arguments": '{"key": "k"}'}}]})


class Stopwatch:
    """Adds up the time spent inside ``with stopwatch:`` blocks."""

    def __init__(self) -> None:
        self.seconds = 0.0
        self._start = 0.0

    def __enter__(self) -> None:
        self._start = time.perf_counter()

    def __exit__(self, *exc_info: object) -> None:
        self.seconds += time.perf_counter() - self._start


class Script:
    """Canned replies in order, and the time the client spent per model call."""

    def __init__(self) -> None:
        self.replies: list[bytes] = []
        self.clock = Stopwatch()

    def handler(self, request: httpx2.Request) -> httpx2.Response:
        return httpx2.Response(200, content=self.replies.pop(0), headers={"content-type": "application/json"})

    def timed(self, create: Callable[..., Any]) -> Callable[..., Any]:
        def call(*args: Any, **kwargs: Any) -> Any:
            with self.clock:
                return create(*args, **kwargs)
        return call

    def atimed(self, create: Callable[..., Any]) -> Callable[..., Any]:
        async def call(*args: Any, **kwargs: Any) -> Any:
            with self.clock:
                return await create(*args, **kwargs)
        return call


class TimedStore:
    """Passes the runner's store calls through, timing them."""

    def __init__(self, store: sessions.Session) -> None:
        self.store = store
        self.clock = Stopwatch()

    def get(self, session_id: str, limit: int | None = None) -> list[dict[str, Any]]:
        with self.clock:
            return self.store.get(session_id, limit)

    def append(self, session_id: str, messages: list[dict[str, Any]]) -> None:
        with self.clock:
            self.store.append(session_id, messages)

    async def aget(self, session_id: str, limit: int | None = None) -> list[dict[str, Any]]:
        with self.clock:
            return await self.store.aget(session_id, limit)

    async def aappend(self, session_id: str, messages: list[dict[str, Any]]) -> None:
        with self.clock:
            await self.store.aappend(session_id, messages)


@function_tool
def lookup(key: str) -> str:
    """Look a key up."""
    return f"value of {key}"


@function_tool(name="lookup")
async def alookup(key: str) -> str:
    """Look a key up (on the event loop)."""
    return f"value of {key}"


def history(size: int) -> list[dict[str, Any]]:
    text = "A message of ordinary length, about the size of a chat turn in a real conversation. " * 2
    return [{"role": "user" if i % 2 == 0 else "assistant", "content": f"{i}: {text}"} for i in range(size)]


Sample = tuple[float, float]  # (overhead, of which store I/O), seconds


def measure(runs: int, one: Callable[[], Sample], reset: Callable[[], None]) -> list[Sample]:
    for _ in range(min(20, runs)):  # warm up caches and the client's connection setup
        one()
        reset()
    samples = []
    for _ in range(runs):
        samples.append(one())
        reset()
    return samples


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--history", type=int, default=1000)
    parser.add_argument("--runs", type=int, default=300)
    args = parser.parse_args()

    with tempfile.TemporaryDirectory() as tmp:
        store = sessions.SQLiteSession(Path(tmp) / "bench.db")
        store.append(SESSION, history(args.history))
        script = Script()
        sync_client = openai.OpenAI(api_key="bench", base_url="http://bench.invalid/v1", max_retries=0,
                                    http_client=httpx2.Client(transport=httpx2.MockTransport(script.handler)))
        async_client = openai.AsyncOpenAI(
            api_key="bench", base_url="http://bench.invalid/v1", max_retries=0,
            http_client=httpx2.AsyncClient(transport=httpx2.MockTransport(script.handler)))
        sync_client.chat.completions.create = script.timed(  # type: ignore[method-assign]
            sync_client.chat.completions.create)
        async_client.chat.completions.create = script.atimed(  # type: ignore[method-assign]
            async_client.chat.completions.create)
        plain = Agent("bench", instructions="Be brief.", model="bench")
        tooled = Agent("bench", instructions="Be brief.", model="bench", tools=[lookup])
        atooled = Agent("bench", instructions="Be brief.", model="bench", tools=[alookup])
        loop = asyncio.new_event_loop()

        def reset() -> None:
            while store.count(SESSION) > args.history:
                store.pop(SESSION)

        timed = TimedStore(store)

        def sync_run(agent: Agent, replies: list[bytes], limit: int | None) -> Callable[[], Sample]:
            def one() -> Sample:
                script.replies = list(replies)
                script.clock.seconds = timed.clock.seconds = 0.0
                start = time.perf_counter()
                Runner(sync_client).run_sync(agent, "question", session=timed,  # type: ignore[arg-type]
                                             session_id=SESSION, history_limit=limit)
                return time.perf_counter() - start - script.clock.seconds, timed.clock.seconds
            return one

        def async_run(agent: Agent, replies: list[bytes], limit: int | None) -> Callable[[], Sample]:
            def one() -> Sample:
                script.replies = list(replies)
                script.clock.seconds = timed.clock.seconds = 0.0
                start = time.perf_counter()
                loop.run_until_complete(Runner(async_client).run(
                    agent, "question", session=timed,  # type: ignore[arg-type]
                    session_id=SESSION, history_limit=limit))
                return time.perf_counter() - start - script.clock.seconds, timed.clock.seconds
            return one

        def bare(fn: Callable[[], object]) -> Callable[[], Sample]:
            def one() -> Sample:
                start = time.perf_counter()
                fn()
                elapsed = time.perf_counter() - start
                return elapsed, elapsed
            return one

        rows: list[tuple[str, int, Callable[[], Sample]]] = [
            ("reference: store.get (whole history)", 0, bare(lambda: store.get(SESSION))),
            ("reference: store.append (2 messages)", 0, bare(
                lambda: store.append(SESSION, [{"role": "user", "content": "q"},
                                               {"role": "assistant", "content": "a"}]))),
            ("run_sync, 1 turn, no tools", 1, sync_run(plain, [ANSWER], None)),
            ("run_sync, 2 turns, 1 tool call", 2, sync_run(tooled, [TOOL_CALL, ANSWER], None)),
            ("run_sync, 1 turn, history_limit=50", 1, sync_run(plain, [ANSWER], 50)),
            ("run (async), 1 turn, no tools", 1, async_run(plain, [ANSWER], None)),
            ("run (async), 2 turns, 1 tool call", 2, async_run(tooled, [TOOL_CALL, ANSWER], None)),
            ("run (async), 2 turns, 1 async tool call", 2, async_run(atooled, [TOOL_CALL, ANSWER], None)),
        ]
        print(f"history: {args.history} messages in SQLite (file, WAL); {args.runs} runs per row; "
              "model-call time subtracted\n")
        print(f"| {'measured':<40} | median ms/run | p90 ms/run | median ms/turn "
              "| of which store I/O | runner code |")
        print("|" + "|".join("-" * (width + 2) for width in (40, 13, 10, 14, 18, 11)) + "|")
        for name, turns, one in rows:
            samples = measure(args.runs, one, reset)
            totals = sorted(t for t, _ in samples)
            median = statistics.median(totals) * 1000
            p90 = totals[int(len(totals) * 0.9)] * 1000
            store_io = statistics.median(s for _, s in samples) * 1000
            code = statistics.median(t - s for t, s in samples) * 1000
            per_turn = f"{median / turns:14.3f}" if turns else f"{'':>14}"
            print(f"| {name:<40} | {median:13.3f} | {p90:10.3f} | {per_turn} "
                  f"| {store_io:18.3f} | {code:11.3f} |")
        loop.run_until_complete(async_client.close())
        loop.close()
        sync_client.close()
        store.close()


if __name__ == "__main__":
    main()
