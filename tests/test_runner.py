"""The native runner against a local Chat Completions server, through the real openai client."""

from __future__ import annotations

import asyncio
import enum
import json
from collections.abc import Iterator
from typing import Any, Literal

import openai
import pydantic
import pytest

import sessions
from adapters.runner import (
    Agent,
    MaxTurnsExceeded,
    ModelCallError,
    RunComplete,
    Runner,
    RunnerError,
    TextDelta,
    ToolCallEvent,
    ToolOutputEvent,
    function_tool,
)
from sessions.view import RESPONSES_ITEMS_KEY, RESPONSES_ONLY_KEY
from tests.chat_server import ChatServer, Reply, calls

INSTRUCTIONS = "You are a helpful assistant who remembers context"




@pytest.fixture
def client(chat_server: ChatServer) -> Iterator[openai.OpenAI]:
    with openai.OpenAI(base_url=chat_server.base_url, api_key="test", max_retries=0) as sync_client:
        yield sync_client


def user(text: str) -> dict[str, Any]:
    return {"role": "user", "content": text}


def assistant(text: str) -> dict[str, Any]:
    return {"role": "assistant", "content": text}


ALICE_1 = "My name is Alice and I like Go programming"
ALICE_2 = "What's my name and what do I like?"
ANSWER_1 = "Nice to meet you, Alice!"
ANSWER_2 = "Your name is Alice and you like Go programming."


def _check_alice(chat_server: ChatServer, store: sessions.Session, first: Any, second: Any) -> None:
    assert first.final_output == ANSWER_1
    assert second.final_output == ANSWER_2
    system = {"role": "system", "content": INSTRUCTIONS}
    assert chat_server.requests[0]["messages"] == [system, user(ALICE_1)]
    # The first turn's history appears exactly once, after the instructions.
    assert chat_server.requests[1]["messages"] == [
        system, user(ALICE_1), assistant(ANSWER_1), user(ALICE_2),
    ]
    assert store.get("user-alice") == [
        user(ALICE_1), assistant(ANSWER_1), user(ALICE_2), assistant(ANSWER_2),
    ]
    assert second.new_messages == [user(ALICE_2), assistant(ANSWER_2)]
    assert second.messages == [system, user(ALICE_1), assistant(ANSWER_1), user(ALICE_2), assistant(ANSWER_2)]


async def test_alice_two_turns_async(chat_server: ChatServer, chat_aclient: openai.AsyncOpenAI,
                                     framework_store: sessions.Session) -> None:
    chat_server.script(Reply(ANSWER_1), Reply(ANSWER_2))
    agent = Agent("Assistant", instructions=INSTRUCTIONS, model="test-model")
    runner = Runner(chat_aclient)
    first = await runner.run(agent, ALICE_1, session=framework_store, session_id="user-alice")
    second = await runner.run(agent, [user(ALICE_2)], session=framework_store, session_id="user-alice")
    _check_alice(chat_server, framework_store, first, second)
    assert chat_server.requests[0]["model"] == "test-model"


@pytest.mark.parametrize("kind", ["framework", "memory"])
def test_alice_two_turns_sync(chat_server: ChatServer, client: openai.OpenAI,
                              framework_store: sessions.Session, kind: str) -> None:
    store = framework_store if kind == "framework" else sessions.MemorySession()
    chat_server.script(Reply(ANSWER_1), Reply(ANSWER_2))
    agent = Agent("Assistant", instructions=lambda a: INSTRUCTIONS)
    runner = Runner(client)
    first = runner.run_sync(agent, ALICE_1, session=store, session_id="user-alice")
    second = runner.run_sync(agent, ALICE_2, session=store, session_id="user-alice")
    _check_alice(chat_server, store, first, second)


async def test_async_run_accepts_a_sync_client(chat_server: ChatServer, client: openai.OpenAI) -> None:
    chat_server.script(Reply("hi"))
    result = await Runner(client).run(Agent("a"), "hello")
    assert result.final_output == "hi"
    assert chat_server.requests[0]["messages"] == [user("hello")]


# -- tools --------------------------------------------------------------------------------


def _tool_agent(started: list[str], both_running: asyncio.Event | None) -> Agent:
    @function_tool
    async def weather(city: str) -> dict[str, Any]:
        """Current weather.

        Args:
            city: Name of the city.
        """
        started.append(city)
        if both_running is not None:
            if len(started) == 2:
                both_running.set()
            await asyncio.wait_for(both_running.wait(), 5)  # only ends if both run at once
        return {"city": city, "sky": "sunny"}

    @function_tool
    def add(a: int, b: int) -> int:
        """Add two numbers."""
        return a + b

    @function_tool
    def boom() -> str:
        """Always fails."""
        raise ValueError("the tool broke")

    return Agent("tools", instructions="Use tools.", tools=[weather, add, boom])


TOOL_REPLY = calls(
    ("c1", "weather", {"city": "Paris"}),
    ("c2", "weather", {"city": "Rome"}),
    ("c3", "boom", {}),
    ("c4", "add", {"a": 2, "b": 3}),
    ("c5", "missing", {}),
    ("c6", "add", {"a": "two", "b": 3}),
    usage=(20, 7),
)


def _check_tool_turn(chat_server: ChatServer, new: list[dict[str, Any]]) -> None:
    second = chat_server.requests[1]["messages"]
    assert second[:2] == [{"role": "system", "content": "Use tools."}, user("go")]
    assert second[2] == TOOL_REPLY.message()
    results = second[3:]
    assert [m["tool_call_id"] for m in results] == ["c1", "c2", "c3", "c4", "c5", "c6"]
    assert json.loads(results[0]["content"]) == {"city": "Paris", "sky": "sunny"}
    assert json.loads(results[1]["content"]) == {"city": "Rome", "sky": "sunny"}
    assert results[2]["content"] == "Error: ValueError: the tool broke"
    assert results[3]["content"] == "5"
    assert "no tool named 'missing'" in results[4]["content"]
    assert results[5]["content"].startswith("Error: invalid arguments")
    assert new == [user("go"), TOOL_REPLY.message(), *results, assistant("done")]
    tools = {t["function"]["name"]: t["function"] for t in chat_server.requests[0]["tools"]}
    assert tools["weather"]["description"] == "Current weather."
    assert tools["weather"]["parameters"]["properties"]["city"] == {
        "type": "string", "description": "Name of the city."}


async def test_parallel_tools_errors_and_usage(chat_server: ChatServer, chat_aclient: openai.AsyncOpenAI,
                                               framework_store: sessions.Session) -> None:
    started: list[str] = []
    agent = _tool_agent(started, asyncio.Event())
    chat_server.script(TOOL_REPLY, Reply("done", usage=(30, 2)))
    result = await Runner(chat_aclient).run(agent, "go", session=framework_store, session_id="t")
    assert sorted(started) == ["Paris", "Rome"]
    _check_tool_turn(chat_server, result.new_messages)
    assert framework_store.get("t") == result.new_messages
    assert (result.usage.requests, result.usage.input_tokens, result.usage.output_tokens,
            result.usage.total_tokens) == (2, 50, 9, 59)
    assert result.turns == 2


def test_sync_run_with_async_tools(chat_server: ChatServer, client: openai.OpenAI,
                                   framework_store: sessions.Session) -> None:
    started: list[str] = []
    chat_server.script(TOOL_REPLY, Reply("done"))
    # No barrier here: the event would belong to another loop; order and results are checked.
    result = Runner(client).run_sync(_tool_agent(started, None), "go",
                                     session=framework_store, session_id="t")
    _check_tool_turn(chat_server, result.new_messages)
    assert framework_store.get("t") == result.new_messages


async def test_max_turns_raises_and_stores_nothing(chat_server: ChatServer, chat_aclient: openai.AsyncOpenAI,
                                                   framework_store: sessions.Session) -> None:
    framework_store.append("s", [user("before"), assistant("kept")])
    agent = Agent("loop", tools=[function_tool(lambda: "again", name="again")])
    chat_server.script(*(calls((f"c{i}", "again", {})) for i in range(3)))
    with pytest.raises(MaxTurnsExceeded) as raised:
        await Runner(chat_aclient).run(agent, "loop", session=framework_store, session_id="s", max_turns=2)
    assert isinstance(raised.value, RunnerError)
    assert isinstance(raised.value, sessions.SessionError)
    assert raised.value.max_turns == 2
    assert len(chat_server.requests) == 2
    assert framework_store.get("s") == [user("before"), assistant("kept")]


def test_failed_model_call_stores_nothing(chat_server: ChatServer, client: openai.OpenAI,
                                          framework_store: sessions.Session) -> None:
    framework_store.append("s", [user("before")])
    agent = Agent("x", tools=[function_tool(lambda: "ok", name="ok")])
    chat_server.script(calls(("c1", "ok", {})), Reply("overloaded", status=500))
    with pytest.raises(ModelCallError) as raised:
        Runner(client).run_sync(agent, "hi", session=framework_store, session_id="s")
    assert isinstance(raised.value.__cause__, openai.InternalServerError)
    assert framework_store.get("s") == [user("before")]


async def test_streamed_run(chat_server: ChatServer, chat_aclient: openai.AsyncOpenAI,
                            framework_store: sessions.Session) -> None:
    @function_tool
    def lookup(key: str) -> str:
        """Look a key up."""
        return f"value-of-{key}"

    agent = Agent("s", tools=[lookup])
    chat_server.script(calls(("c1", "lookup", {"key": "abc"}), usage=(3, 4)),
                  Reply("The value is value-of-abc.", usage=(5, 6)))
    events = [e async for e in Runner(chat_aclient).run_streamed(
        agent, "find abc", session=framework_store, session_id="st")]
    deltas = [e.text for e in events if isinstance(e, TextDelta)]
    assert len(deltas) > 1
    assert "".join(deltas) == "The value is value-of-abc."
    assert [e for e in events if isinstance(e, ToolCallEvent)] == [
        ToolCallEvent("c1", "lookup", '{"key": "abc"}')]
    assert [e for e in events if isinstance(e, ToolOutputEvent)] == [
        ToolOutputEvent("c1", "lookup", "value-of-abc", False)]
    kinds = [type(e).__name__ for e in events]
    assert kinds.index("ToolOutputEvent") < kinds.index("TextDelta")
    assert isinstance(events[-1], RunComplete)
    result = events[-1].result
    assert result.final_output == "The value is value-of-abc."
    assert (result.usage.requests, result.usage.total_tokens) == (2, 18)
    assert framework_store.get("st") == [
        user("find abc"),
        {"role": "assistant", "content": None, "tool_calls": [
            {"id": "c1", "type": "function", "function": {"name": "lookup", "arguments": '{"key": "abc"}'}}]},
        {"role": "tool", "tool_call_id": "c1", "content": "value-of-abc"},
        assistant("The value is value-of-abc."),
    ]
    assert all(r.get("stream") for r in chat_server.requests)


async def test_failed_stream_stores_nothing(chat_server: ChatServer,
                                            chat_aclient: openai.AsyncOpenAI) -> None:
    store = sessions.MemorySession()
    chat_server.script(Reply("down", status=503))
    with pytest.raises(ModelCallError):
        async for _ in Runner(chat_aclient).run_streamed(Agent("s"), "x", session=store, session_id="f"):
            pass
    assert store.get("f") == []


async def test_history_window(chat_server: ChatServer, chat_aclient: openai.AsyncOpenAI,
                              framework_store: sessions.Session) -> None:
    old = [user(f"m{i}") if i % 2 == 0 else assistant(f"m{i}") for i in range(10)]
    framework_store.append("w", old)
    chat_server.script(Reply("ok"))
    await Runner(chat_aclient).run(Agent("w", instructions="sys"), "new", session=framework_store,
                              session_id="w", history_limit=3)
    assert chat_server.requests[0]["messages"] == [
        {"role": "system", "content": "sys"}, *old[-3:], user("new")]
    assert framework_store.get("w") == [*old, user("new"), assistant("ok")]


async def test_a_window_never_starts_inside_a_tool_exchange(
        chat_server: ChatServer, chat_aclient: openai.AsyncOpenAI, framework_store: sessions.Session) -> None:
    asks = {"role": "assistant", "content": None, "tool_calls": [
        {"id": "c1", "type": "function", "function": {"name": "f", "arguments": "{}"}},
        {"id": "c2", "type": "function", "function": {"name": "g", "arguments": "{}"}}]}
    results = [{"role": "tool", "tool_call_id": "c1", "content": "1"},
               {"role": "tool", "tool_call_id": "c2", "content": "2"}]
    stored = [user("q"), asks, *results, assistant("both done"), user("thanks"), assistant("welcome")]
    framework_store.append("cut", stored)
    chat_server.script(Reply("ok"), Reply("ok"))
    runner = Runner(chat_aclient)
    # The last 4 stored messages start with a tool result whose call lies outside.
    await runner.run(Agent("w"), "again", session=framework_store, session_id="cut", history_limit=5)
    assert chat_server.requests[0]["messages"] == [
        assistant("both done"), user("thanks"), assistant("welcome"), user("again")]
    # Calls whose results were never stored (an interrupted run) are not sent either.
    framework_store.append("cut", [asks])
    await runner.run(Agent("w"), "once more", session=framework_store, session_id="cut", history_limit=3)
    assert chat_server.requests[1]["messages"] == [user("again"), assistant("ok"), user("once more")]
    assert not chat_server.invalid
    assert framework_store.get("cut")[: len(stored)] == stored


# Messages other frameworks store that have no valid Chat Completions form as they are.
FOREIGN = [
    {"role": "user", "content": None, "llamaindex": {"blocks": [{"block_type": "document",
                                                                 "url": "https://x.invalid/a.pdf"}]}},
    {"role": "assistant", "content": None, "llamaindex": {"blocks": [{"block_type": "thinking",
                                                                      "content": "hmm"}]}},
    {"role": "user", "content": []},
    {"role": "assistant", "content": [], "langchain": {"content": [{"block": {"type": "tool_use",
                                                                            "id": "t", "name": "f",
                                                                            "input": {}}}]}},
    {"role": "user", "content": [{"type": "input_image", "file_id": "file_1"}]},
    {"role": "assistant", "content": None, "tool_calls": [
        {"id": "c9", "type": "function", "function": {"name": "shot", "arguments": "{}"}}]},
    {"role": "tool", "tool_call_id": "c9", "content": [
        {"type": "image_url", "image_url": {"url": "https://x.invalid/p.png"}}]},
    {"role": "function", "content": "42"},
    {"role": "user", "content": "and now?", "name": "Alice Smith"},
]


async def test_requests_built_from_foreign_messages_are_valid(
        chat_server: ChatServer, chat_aclient: openai.AsyncOpenAI) -> None:
    store = sessions.MemorySession()
    store.append("f", FOREIGN)
    chat_server.script(Reply("ok"))
    await Runner(chat_aclient).run(Agent("f"), "hi", session=store, session_id="f")
    assert not chat_server.invalid
    assert chat_server.requests[0]["messages"] == [
        {"role": "assistant", "content": None, "tool_calls": FOREIGN[5]["tool_calls"]},
        {"role": "tool", "tool_call_id": "c9", "content": ""},
        user("and now?"), user("hi")]
    assert store.get("f")[: len(FOREIGN)] == FOREIGN


def test_audio_and_annotations_of_a_completion_are_kept(chat_server: ChatServer,
                                                        client: openai.OpenAI) -> None:
    store = sessions.MemorySession()
    audio = {"id": "audio_1", "data": "UklGRg==", "expires_at": 1, "transcript": "Hello, Alice."}
    note = {"type": "url_citation", "url_citation": {"url": "https://x.invalid", "title": "X",
                                                     "start_index": 0, "end_index": 5}}
    chat_server.script(Reply(None, audio=audio), Reply("See X.", annotations=[note]), Reply("ok"))
    runner = Runner(client)
    for text in ("hi", "source?", "thanks"):
        runner.run_sync(Agent("a"), text, session=store, session_id="audio")
    stored = store.get("audio")
    assert stored[1] == {"role": "assistant", "content": None, "audio": audio}
    assert stored[3] == {"role": "assistant", "content": "See X.", "annotations": [note]}
    # The next turns send the transcript (audio ids expire) and no annotations.
    assert chat_server.requests[2]["messages"] == [
        user("hi"), assistant("Hello, Alice."), user("source?"), assistant("See X."), user("thanks")]
    assert not chat_server.invalid


async def test_responses_only_messages_and_extra_keys_are_not_sent(
        chat_server: ChatServer, chat_aclient: openai.AsyncOpenAI) -> None:
    store = sessions.MemorySession()
    opaque = {"role": "assistant", "content": "", RESPONSES_ONLY_KEY: True,
              RESPONSES_ITEMS_KEY: [{"type": "reasoning", "id": "rs_1", "summary": []}]}
    tagged = {"role": "user", "content": "hi", "id": "lc-1", "additional_kwargs": {}}
    store.append("o", [tagged, opaque, assistant("hello")])
    chat_server.script(Reply("ok"))
    await Runner(chat_aclient).run(Agent("o"), "again", session=store, session_id="o")
    assert chat_server.requests[0]["messages"] == [user("hi"), assistant("hello"), user("again")]
    assert store.get("o")[:3] == [tagged, opaque, assistant("hello")]


async def test_bad_arguments_fail_before_any_call(chat_server: ChatServer,
                                                  chat_aclient: openai.AsyncOpenAI) -> None:
    store = sessions.MemorySession()
    runner = Runner(chat_aclient)
    agent = Agent("b")
    with pytest.raises(sessions.InvalidMessageError):
        await runner.run(agent, [{"content": "no role"}], session=store, session_id="b")
    with pytest.raises(sessions.InvalidArgumentError):
        await runner.run(agent, "x", session=store)
    with pytest.raises(sessions.InvalidArgumentError):
        await runner.run(agent, "x", max_turns=0)
    with pytest.raises(sessions.InvalidArgumentError):
        await runner.run(agent, "x", session=store, session_id="b", history_limit=-1)
    with pytest.raises(sessions.InvalidSessionIdError):
        await runner.run(agent, "x", session=store, session_id="")
    with pytest.raises(sessions.InvalidArgumentError):
        runner.run_sync(agent, "x")
    with pytest.raises(sessions.InvalidArgumentError):
        Runner("not a client")  # type: ignore[arg-type]
    with pytest.raises(sessions.InvalidArgumentError):
        Agent("dup", tools=[function_tool(lambda: 1, name="t"), function_tool(lambda: 2, name="t")])
    with pytest.raises(sessions.InvalidArgumentError):
        Agent("m", model_settings={"messages": []})
    assert chat_server.requests == []
    assert store.get("b") == []


async def test_model_settings_are_sent(chat_server: ChatServer, chat_aclient: openai.AsyncOpenAI) -> None:
    chat_server.script(Reply("ok"))
    await Runner(chat_aclient).run(Agent("m", model_settings={"temperature": 0.25, "max_tokens": 9}), "x")
    assert chat_server.requests[0]["temperature"] == 0.25
    assert chat_server.requests[0]["max_tokens"] == 9
    assert "tools" not in chat_server.requests[0]


# -- function_tool ------------------------------------------------------------------------


class Color(enum.Enum):
    RED = "red"
    BLUE = "blue"


class Point(pydantic.BaseModel):
    x: int
    y: int


def test_function_tool_schema_from_hints_and_docstring() -> None:
    @function_tool(name="paint")
    def paint(color: Color, where: Point, mode: Literal["fast", "slow"] = "fast",
              tags: list[str] | None = None, weights: dict[str, float] | None = None,
              dry_run: bool = False) -> str:
        """Paint a point.

        Longer explanation.

        Args:
            color: The colour
                to use.
            where (Point): Where to paint.
            mode: How fast.
        """
        return f"{color.value} {where.x},{where.y} {mode} {tags} {weights} {dry_run}"

    assert paint.name == "paint"
    assert paint.description == "Paint a point.\n\nLonger explanation."
    schema = paint.parameters
    assert schema["type"] == "object"
    assert schema["required"] == ["color", "where"]
    props = schema["properties"]
    assert props["mode"]["enum"] == ["fast", "slow"]
    assert props["mode"]["description"] == "How fast."
    assert props["where"]["description"] == "Where to paint."
    assert props["color"]["description"] == "The colour to use."
    assert props["dry_run"]["type"] == "boolean"
    assert "$defs" in schema and {"Color", "Point"} <= set(schema["$defs"])
    kwargs = paint.parse_arguments('{"color": "red", "where": {"x": 1, "y": 2}, "tags": ["a"]}')
    assert paint(**kwargs) == "red 1,2 fast ['a'] None False"
    assert paint.definition()["function"]["name"] == "paint"


def test_function_tool_sphinx_docstring_and_errors() -> None:
    @function_tool
    async def fetch(url: str, retries: int = 2) -> str:
        """Fetch a page.

        :param url: Address to fetch.
        :param int retries: How often to retry.
        """
        return url

    assert fetch.is_async
    assert fetch.parameters["properties"]["url"]["description"] == "Address to fetch."
    assert fetch.parameters["properties"]["retries"]["description"] == "How often to retry."
    assert fetch.parameters["properties"]["retries"]["default"] == 2
    with pytest.raises(sessions.InvalidArgumentError):
        fetch.parse_arguments("not json")
    with pytest.raises(sessions.InvalidArgumentError):
        fetch.parse_arguments("[1]")
    with pytest.raises(sessions.InvalidArgumentError):
        function_tool(lambda *args: None, name="star")
    with pytest.raises(sessions.InvalidArgumentError):
        function_tool(lambda: None)  # "<lambda>" is not a valid tool name


async def test_cancelled_run_stores_nothing(chat_server: ChatServer,
                                            chat_aclient: openai.AsyncOpenAI) -> None:
    store = sessions.MemorySession()
    entered = asyncio.Event()

    @function_tool
    async def slow() -> str:
        """Never finishes on its own."""
        entered.set()
        await asyncio.sleep(60)
        return "late"

    chat_server.script(calls(("c1", "slow", {})))
    task = asyncio.ensure_future(Runner(chat_aclient).run(
        Agent("c", tools=[slow]), "go", session=store, session_id="c"))
    await asyncio.wait_for(entered.wait(), 10)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert store.get("c") == []


async def test_run_sync_with_async_tools_inside_a_running_loop(chat_server: ChatServer,
                                                               client: openai.OpenAI) -> None:
    @function_tool
    async def ping() -> str:
        """Answer pong."""
        return "pong"

    chat_server.script(calls(("c1", "ping", {})), Reply("done"))
    result = Runner(client).run_sync(Agent("p", tools=[ping]), "go")
    assert result.new_messages[2] == {"role": "tool", "tool_call_id": "c1", "content": "pong"}


def test_missing_openai_names_the_extra(monkeypatch: pytest.MonkeyPatch) -> None:
    import importlib
    import sys

    monkeypatch.setitem(sys.modules, "openai", None)  # what an absent package looks like
    monkeypatch.delitem(sys.modules, "adapters.runner")
    with pytest.raises(sessions.MissingDependencyError, match=r"session-layer\[openai\]"):
        importlib.import_module("adapters.runner")
