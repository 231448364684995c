"""SessionHistoryMiddleware's own cost per agent turn, measured side by side (a Markdown table).

    python -m benchmarks.langchain_agent [--history 1000] [--rounds 200]

A real ``create_agent`` runs one turn with one tool call (model, tool, model) on an
instant scripted chat model. Each round runs every row once, in turn, so a change in the
machine's speed weighs on all rows alike; the tables give medians over the rounds, of
wall-clock time and of the process's CPU time (on a busy machine the CPU time is the
steadier figure: it leaves out the time spent waiting for a core).

* **with the middleware**: the history (``--history`` messages written by LangChain: ids,
  usage metadata, tool exchanges) is read from a SQLite file, the turn is appended. The
  appended messages are popped again after each round (untimed), so every turn sees the
  same history; the middleware's cache therefore finds the history as it last read it.
  In use, the next read also finds the 4 messages the last turn appended: the reference
  row "cached read after a turn" gives what that read costs.
* **without**: the same agent with no middleware, given the same history as LangChain
  messages built beforehand together with the input: what running an agent over that
  conversation costs anyway.
* **a no-op middleware**: the same agent given the same history, with a middleware of
  the same hooks (``before_agent``, ``after_agent``, ``wrap_model_call``) that does
  nothing: what LangGraph charges for running any such middleware.

The middleware's own cost is the difference. "Beyond the store read" also subtracts the
time spent in ``store.get`` during the turn (timed inside it; freeing the records it
returned is not in it). The reference rows time the bare reads on their own, the legacy
read (``SessionChatMessageHistory.messages``) and the history read afresh, with no cache
(``store.get``, the model view, building the LangChain messages). Targets: under 1 ms
beyond the store read with the whole history, and under 1 ms in all with ``limit=50``.
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import tempfile
import time
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any

from langchain.agents import create_agent
from langchain.agents.middleware import AgentMiddleware
from langchain_core.language_models import BaseChatModel
from langchain_core.messages import AIMessage, BaseMessage, HumanMessage, ToolMessage
from langchain_core.outputs import ChatGeneration, ChatResult
from langchain_core.tools import tool

import sessions
from adapters.langchain import SessionChatMessageHistory, SessionHistoryMiddleware, to_canonical
from adapters.langchain._cache import HistoryCache, read_history
from benchmarks.langchain_targets import history
from sessions import Message

SESSION = "bench-agent"
WHOLE_WITH, WHOLE_WITHOUT = "agent with middleware, whole history", "agent without middleware, given it"
WINDOW_WITH, WINDOW_WITHOUT = "agent with middleware, limit=50", "agent without middleware, 50 given"
ASYNC_WITH, ASYNC_WITHOUT = "async: with middleware, whole history", "async: without middleware, given it"
HOOKS = "agent with a no-op middleware of the same hooks, given it"
FRESH_READ = "reference: the history read afresh (store.get, view, messages)"
CACHED_READ = "reference: the middleware's cached read after a turn (1,000 known + 4 new)"
GROWN = "bench-agent-grown"


class NoOpHooks(AgentMiddleware[Any, Any, Any]):
    """A middleware with the hooks SessionHistoryMiddleware has, doing nothing: what
    LangGraph charges for running any such middleware."""

    def before_agent(self, state: Any, runtime: Any) -> None:
        return None

    def after_agent(self, state: Any, runtime: Any) -> None:
        return None

    def wrap_model_call(self, request: Any, handler: Callable[[Any], Any]) -> Any:
        return handler(request)


class Replies(BaseChatModel):
    """An instant chat model: a tool call, then an answer, again and again."""

    @property
    def _llm_type(self) -> str:
        return "bench-replies"

    def _generate(self, messages: list[BaseMessage], stop: list[str] | None = None,
                  run_manager: Any = None, **kwargs: Any) -> ChatResult:
        if isinstance(messages[-1], HumanMessage):
            reply = AIMessage("", tool_calls=[{"id": "call_1", "name": "lookup", "args": {"key": "k"}}])
        else:
            reply = AIMessage("The answer.", usage_metadata={
                "input_tokens": 1000, "output_tokens": 3, "total_tokens": 1003})
        return ChatResult(generations=[ChatGeneration(message=reply)])

    def bind_tools(self, tools: Sequence[Any], **kwargs: Any) -> Replies:
        return self


@tool
def lookup(key: str) -> str:
    """Look a key up."""
    return f"value of {key}"


class Clocks:
    """Wall-clock and CPU seconds, added up over ``with clocks:`` blocks."""

    def __init__(self) -> None:
        self.wall = self.cpu = 0.0
        self._started = (0.0, 0.0)

    def __enter__(self) -> None:
        self._started = (time.perf_counter(), time.process_time())

    def __exit__(self, *exc_info: object) -> None:
        self.wall += time.perf_counter() - self._started[0]
        self.cpu += time.process_time() - self._started[1]


class TimedStore:
    """Passes the middleware's store calls through, timing reads and writes apart."""

    def __init__(self, store: sessions.Session) -> None:
        self.store = store
        self.reads = Clocks()
        self.writes = Clocks()

    def get(self, session_id: str, limit: int | None = None) -> list[Message]:
        with self.reads:
            return self.store.get(session_id, limit)

    def append(self, session_id: str, messages: list[Message]) -> None:
        with self.writes:
            self.store.append(session_id, messages)

    async def aget(self, session_id: str, limit: int | None = None) -> list[Message]:
        with self.reads:
            return await self.store.aget(session_id, limit)

    async def aappend(self, session_id: str, messages: list[Message]) -> None:
        with self.writes:
            await self.store.aappend(session_id, messages)


# (wall, cpu) in all, (wall, cpu) in store reads, (wall, cpu) in store writes; seconds
Sample = tuple[tuple[float, float], tuple[float, float], tuple[float, float]]
Row = tuple[str, Callable[[], Sample]]


def rows(store: sessions.Session, loop: asyncio.AbstractEventLoop) -> Iterator[Row]:
    timed = TimedStore(store)
    config = {"configurable": {"session_id": SESSION}}
    plain = create_agent(Replies(), [lookup], system_prompt="Be brief.")
    full = create_agent(Replies(), [lookup], system_prompt="Be brief.",
                        middleware=[SessionHistoryMiddleware(timed)])  # type: ignore[arg-type]
    hooks = create_agent(Replies(), [lookup], system_prompt="Be brief.", middleware=[NoOpHooks()])
    window = create_agent(Replies(), [lookup], system_prompt="Be brief.",
                          middleware=[SessionHistoryMiddleware(timed, limit=50)])  # type: ignore[arg-type]
    # What the agent without middleware is given: the same conversation, already built.
    whole = read_history(store.get(SESSION), session_id=SESSION, operation="get")
    last = read_history(store.get(SESSION, limit=50), session_id=SESSION, operation="get")

    def turn(agent: Any, given: list[BaseMessage], asynchronous: bool = False) -> Callable[[], Sample]:
        def one() -> Sample:
            payload = {"messages": [*given, HumanMessage("What is the value of k?")]}
            timed.reads, timed.writes, clocks = Clocks(), Clocks(), Clocks()
            with clocks:
                if asynchronous:
                    loop.run_until_complete(agent.ainvoke(payload, config))
                else:
                    agent.invoke(payload, config)
            return ((clocks.wall, clocks.cpu), (timed.reads.wall, timed.reads.cpu),
                    (timed.writes.wall, timed.writes.cpu))
        return one

    def bare(fn: Callable[[], object]) -> Callable[[], Sample]:
        def one() -> Sample:
            clocks = Clocks()
            with clocks:
                fn()
            return (clocks.wall, clocks.cpu), (0.0, 0.0), (0.0, 0.0)
        return one

    def cached_read_after_a_turn() -> Sample:
        # What the next turn's read costs in use: the history the cache holds plus the
        # 4 messages the last turn appended (read from the store untimed).
        cache = HistoryCache()
        read_history(store.get(SESSION), session_id=SESSION, operation="run", cache=cache)
        grown = store.get(GROWN)
        clocks = Clocks()
        with clocks:
            read_history(grown, session_id=SESSION, operation="run", cache=cache)
        return (clocks.wall, clocks.cpu), (0.0, 0.0), (0.0, 0.0)

    legacy = SessionChatMessageHistory(store, SESSION)
    yield "reference: store.get, whole history", bare(lambda: store.get(SESSION))
    yield "reference: store.get(limit=50)", bare(lambda: store.get(SESSION, limit=50))
    yield "reference: SessionChatMessageHistory.messages", bare(lambda: legacy.messages)
    yield "reference: the history read afresh (store.get, view, messages)", bare(
        lambda: read_history(store.get(SESSION), session_id=SESSION, operation="get"))
    yield CACHED_READ, cached_read_after_a_turn
    yield HOOKS, turn(hooks, whole)
    yield WHOLE_WITHOUT, turn(plain, whole)
    yield WHOLE_WITH, turn(full, [])
    yield WINDOW_WITHOUT, turn(plain, last)
    yield WINDOW_WITH, turn(window, [])
    yield ASYNC_WITHOUT, turn(plain, whole, True)
    yield ASYNC_WITH, turn(full, [], True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--history", type=int, default=1000)
    parser.add_argument("--rounds", type=int, default=200)
    args = parser.parse_args()

    with tempfile.TemporaryDirectory() as tmp:
        store = sessions.SQLiteSession(Path(tmp) / "bench.db")
        stored = [to_canonical(m) for m in history(args.history)]
        store.append(SESSION, stored)
        store.append(GROWN, [*stored, *(to_canonical(m) for m in [
            HumanMessage("What is the value of k?"),
            AIMessage("", tool_calls=[{"id": "call_1", "name": "lookup", "args": {"key": "k"}}]),
            ToolMessage("value of k", tool_call_id="call_1", name="lookup"),
            AIMessage("The answer.")])])
        loop = asyncio.new_event_loop()
        measured = list(rows(store, loop))
        samples: dict[str, list[Sample]] = {name: [] for name, _ in measured}
        for number in range(args.rounds + 5):  # the first rounds warm up
            shift = number % len(measured)
            for name, one in measured[shift:] + measured[:shift]:
                sample = one()
                while store.count(SESSION) > args.history:  # untimed: the same history every turn
                    store.pop(SESSION)
                if number >= 5:
                    samples[name].append(sample)
        loop.close()
        store.close()

    def median(name: str, part: int, clock: int) -> float:
        return statistics.median(sample[part][clock] for sample in samples[name]) * 1000

    print(f"history: {args.history} messages in SQLite (file, WAL); one turn = model, tool, model; "
          f"medians of {args.rounds} interleaved rounds; ms of wall-clock time / of CPU time\n")
    print("| measured | in all | of which store.get | of which store.append |\n|---|---:|---:|---:|")
    for name in samples:
        cells = " | ".join(f"{median(name, part, 0):.3f} / {median(name, part, 1):.3f}" for part in range(3))
        print(f"| {name} | {cells} |")

    def cost(with_: str, without: str, clock: int, *, beyond: str = "") -> float:
        spent = median(with_, 0, clock) - median(without, 0, clock)
        if beyond == "store read":
            spent -= median(with_, 1, clock)
        elif beyond == "history read":
            spent -= median(FRESH_READ, 0, clock)
        elif beyond == "store read and hooks":
            spent -= median(with_, 1, clock) + median(HOOKS, 0, clock) - median(without, 0, clock)
        return spent

    print("\n| the middleware's own cost per turn | wall ms | CPU ms | target |\n|---|---:|---:|---|")
    for label, with_, without, beyond, target in [
        ("whole history, beyond the store read", WHOLE_WITH, WHOLE_WITHOUT, "store read", "< 1 ms"),
        ("whole history, beyond the store read (async)", ASYNC_WITH, ASYNC_WITHOUT, "store read", ""),
        ("whole history, beyond the store read and LangGraph's cost of the hooks", WHOLE_WITH,
         WHOLE_WITHOUT, "store read and hooks", ""),
        ("whole history, beyond a fresh history read (store, view, messages)", WHOLE_WITH, WHOLE_WITHOUT,
         "history read", ""),
        ("limit=50, in all", WINDOW_WITH, WINDOW_WITHOUT, "", "< 1 ms"),
    ]:
        print(f"| {label} | {cost(with_, without, 0, beyond=beyond):.3f} "
              f"| {cost(with_, without, 1, beyond=beyond):.3f} | {target} |")


if __name__ == "__main__":
    main()
