"""The Agents SDK Session adapter, inside a real agents.Runner over the local Chat Completions server."""

from __future__ import annotations

import asyncio
import copy
from typing import Any

import agents
import openai
import pytest

import sessions
from adapters.openai_agents import AgentsSession, items_to_messages, messages_to_items
from adapters.runner import Agent, Runner
from sessions.view import RESPONSES_ITEMS_KEY, RESPONSES_ONLY_KEY, model_view
from tests import agents_sdk
from tests.chat_server import ChatServer, Reply, calls


def sdk_agent(client: openai.AsyncOpenAI) -> agents.Agent[Any]:
    return agents_sdk.sdk_agent(client, instructions="Be helpful.")


TOOL_CALL = {"id": "call_1", "type": "function",
             "function": {"name": "get_weather", "arguments": '{"city": "Paris"}'}}
FIRST_TURN = [
    {"role": "user", "content": "Weather in Paris? I'm Alice."},
    {"role": "assistant", "content": None, "tool_calls": [TOOL_CALL]},
    {"role": "tool", "tool_call_id": "call_1", "content": "sunny in Paris"},
    {"role": "assistant", "content": "It is sunny in Paris, Alice."},
]


async def test_agents_runner_two_turns_with_a_tool(chat_server: ChatServer, chat_aclient: openai.AsyncOpenAI,
                                                   framework_store: sessions.Session) -> None:
    session = AgentsSession(framework_store, "alice")
    chat_server.script(calls(("call_1", "get_weather", {"city": "Paris"})),
                       Reply("It is sunny in Paris, Alice."))
    first = await agents.Runner.run(sdk_agent(chat_aclient), "Weather in Paris? I'm Alice.", session=session)
    assert first.final_output == "It is sunny in Paris, Alice."
    first_items = await session.get_items()

    # Every framework reads the same canonical history.
    stored = framework_store.get("alice")
    assert model_view(stored) == FIRST_TURN

    chat_server.script(Reply("Your name is Alice."))
    second = await agents.Runner.run(sdk_agent(chat_aclient), "What is my name?", session=session)
    assert second.final_output == "Your name is Alice."
    sent = chat_server.requests[2]["messages"]
    assert sent[0] == {"role": "system", "content": "Be helpful."}
    assert [m for m in sent[1:]] == [*FIRST_TURN, {"role": "user", "content": "What is my name?"}]

    # The SDK gets back exactly the items it stored, ids and status included.
    items = await session.get_items()
    assert items[: len(first_items)] == first_items
    assert items[-1]["type"] == "message" and items[-1]["id"] == "__fake_id__"  # type: ignore[typeddict-item]
    assert await session.get_items(limit=2) == items[-2:]
    assert await session.get_items(limit=100) == items

    # Our runner continues the same conversation and sees all of it once.
    chat_server.script(Reply("Still Alice."))
    await Runner(chat_aclient).run(Agent("native"), "And now?", session=framework_store, session_id="alice")
    assert chat_server.requests[3]["messages"] == [
        *FIRST_TURN, {"role": "user", "content": "What is my name?"},
        {"role": "assistant", "content": "Your name is Alice."}, {"role": "user", "content": "And now?"},
    ]
    # ... and what it stored reads back as items for the SDK.
    assert (await session.get_items(limit=2)) == [
        {"role": "user", "content": "And now?"}, {"role": "assistant", "content": "Still Alice."}]


CONVERTIBLE: list[dict[str, Any]] = [
    {"role": "system", "content": "sys"},
    {"role": "developer", "content": "dev"},
    {"role": "user", "content": "plain"},
    {"role": "user", "content": [
        {"type": "input_text", "text": "look"},
        {"type": "input_image", "image_url": "https://example.invalid/cat.png", "detail": "low"},
        {"type": "input_file", "file_id": "file_1", "filename": "a.pdf"},
    ]},
    {"type": "message", "role": "user", "content": [{"type": "input_text", "text": "typed"}]},
    {"id": "msg_1", "type": "message", "role": "assistant", "status": "completed",
     "content": [{"type": "output_text", "text": "calling", "annotations": [], "logprobs": []}]},
    {"type": "function_call", "call_id": "c1", "name": "f", "arguments": "{}", "id": "fc_1"},
    {"type": "function_call", "call_id": "c2", "name": "g", "arguments": '{"x": 1}'},
    {"type": "function_call_output", "call_id": "c1", "output": "one"},
    {"type": "function_call_output", "call_id": "c2",
     "output": [{"type": "input_text", "text": "two"},
                {"type": "input_image", "file_id": "file_img"}]},
    {"role": "assistant", "content": "plain answer"},
    {"type": "message", "role": "assistant", "id": "msg_2", "status": "completed",
     "content": [{"type": "refusal", "refusal": "no"}]},
]
FOREIGN: list[dict[str, Any]] = [
    {"type": "reasoning", "id": "rs_1", "summary": [{"type": "summary_text", "text": "thinking"}],
     "encrypted_content": "opaque"},
    {"type": "web_search_call", "id": "ws_1", "status": "completed",
     "action": {"type": "search", "query": "q"}},
    {"type": "item_reference", "id": "msg_0"},
]


def test_items_round_trip_and_canonical_form() -> None:
    items = [*CONVERTIBLE[:5], FOREIGN[0], *CONVERTIBLE[5:], FOREIGN[1], FOREIGN[2]]
    messages = items_to_messages(copy.deepcopy(items))
    assert messages_to_items(messages) == items
    visible = model_view(messages)
    assert visible == [
        {"role": "system", "content": "sys"},
        {"role": "developer", "content": "dev"},
        {"role": "user", "content": "plain"},
        {"role": "user", "content": [
            {"type": "text", "text": "look"},
            {"type": "image_url", "image_url": {"url": "https://example.invalid/cat.png", "detail": "low"}},
            {"type": "file", "file": {"file_id": "file_1", "filename": "a.pdf"}},
        ]},
        {"role": "user", "content": [{"type": "text", "text": "typed"}]},
        {"role": "assistant", "content": "calling", "tool_calls": [
            {"id": "c1", "type": "function", "function": {"name": "f", "arguments": "{}"}},
            {"id": "c2", "type": "function", "function": {"name": "g", "arguments": '{"x": 1}'}}]},
        {"role": "tool", "tool_call_id": "c1", "content": "one"},
        {"role": "tool", "tool_call_id": "c2", "content": [{"type": "text", "text": "two"}]},
        {"role": "assistant", "content": "plain answer"},
        {"role": "assistant", "content": None, "refusal": "no"},
    ]
    # Plain items are stored without a copy; items the message cannot reproduce keep one.
    assert RESPONSES_ITEMS_KEY not in messages[0]
    assert messages[6][RESPONSES_ITEMS_KEY] == CONVERTIBLE[5:8]
    foreign = [m for m in messages if m.get(RESPONSES_ONLY_KEY)]
    assert [m[RESPONSES_ITEMS_KEY] for m in foreign] == [[f] for f in FOREIGN]
    assert all(m["role"] == "assistant" and m["content"] == "" for m in foreign)


def test_messages_round_trip_through_items() -> None:
    canonical = [*FIRST_TURN, {"role": "user", "content": [
        {"type": "text", "text": "see"},
        {"type": "image_url", "image_url": {"url": "data:image/png;base64,AA"}},
        {"type": "input_audio", "input_audio": {"data": "AAA", "format": "wav"}}]},
        {"role": "assistant", "content": "two calls", "tool_calls": [
            TOOL_CALL, {**TOOL_CALL, "id": "call_2"}]}]
    assert items_to_messages(messages_to_items(canonical)) == canonical


def test_calls_listed_before_their_text_make_one_assistant_message() -> None:
    items = [CONVERTIBLE[6], CONVERTIBLE[5], CONVERTIBLE[8]]
    messages = items_to_messages(copy.deepcopy(items))
    assert model_view(messages) == [
        {"role": "assistant", "content": "calling", "tool_calls": [
            {"id": "c1", "type": "function", "function": {"name": "f", "arguments": "{}"}}]},
        {"role": "tool", "tool_call_id": "c1", "content": "one"},
    ]
    assert messages_to_items(messages) == items


def test_kept_items_are_ignored_once_the_message_is_rewritten() -> None:
    [message] = items_to_messages([CONVERTIBLE[5]])
    assert messages_to_items([message]) == [CONVERTIBLE[5]]
    message["content"] = "edited elsewhere"
    assert messages_to_items([message]) == [{"role": "assistant", "content": "edited elsewhere"}]


async def test_session_protocol_operations() -> None:
    store = sessions.MemorySession()
    session = AgentsSession(store, "p")
    assert isinstance(session, agents.memory.session.Session)
    assert await session.get_items() == []
    assert await session.pop_item() is None
    items = [CONVERTIBLE[2], FOREIGN[0], *CONVERTIBLE[5:11]]
    await session.add_items(copy.deepcopy(items))
    assert store.count("p") == 6
    assert await session.get_items() == items
    assert await session.get_items(limit=5) == items[-5:]
    # A window never starts with results whose calls it cut off: it drops them.
    assert await session.get_items(limit=3) == items[-1:]
    assert await session.get_items(limit=0) == []
    assert await session.pop_item() == CONVERTIBLE[10]
    assert await session.pop_item() == CONVERTIBLE[9]
    assert await session.pop_item() == CONVERTIBLE[8]
    # The last message holds three items: popping one puts the other two back.
    assert await session.pop_item() == CONVERTIBLE[7]
    assert messages_to_items(store.get("p")) == items[:4]
    assert store.get("p")[-1]["tool_calls"] == [
        {"id": "c1", "type": "function", "function": {"name": "f", "arguments": "{}"}}]
    # Reads are model input: the call still waiting for its result is not in them.
    assert await session.get_items() == items[:3]
    await session.add_items([CONVERTIBLE[8]])
    limited = AgentsSession(store, "p", session_settings=agents.SessionSettings(limit=1))
    assert await limited.get_items() == []  # the result alone would answer no call
    # The window cut the reasoning item off the message it produced: the message goes
    # without its id, which the Responses API would tie to that reasoning.
    without_id = {k: v for k, v in CONVERTIBLE[5].items() if k != "id"}
    assert await limited.get_items(limit=3) == [without_id, CONVERTIBLE[6], CONVERTIBLE[8]]
    await session.clear_session()
    assert await session.get_items() == []
    assert store.info("p") is not None


async def test_bad_items_store_nothing() -> None:
    store = sessions.MemorySession()
    session = AgentsSession(store, "b")
    await session.add_items([{"role": "user", "content": "kept"}])
    with pytest.raises(sessions.InvalidMessageError):
        await session.add_items([{"role": "user", "content": "x"}, object()])  # type: ignore[list-item]
    with pytest.raises(sessions.InvalidMessageError):
        await session.add_items([{"role": "user", "content": float("nan")}])
    assert store.get("b") == [{"role": "user", "content": "kept"}]
    with pytest.raises(sessions.InvalidSessionIdError):
        AgentsSession(store, "")


async def test_cancelled_pop_item_completes() -> None:
    store = sessions.MemorySession()
    session = AgentsSession(store, "c")
    await session.add_items(copy.deepcopy(CONVERTIBLE[5:8]))
    task = asyncio.ensure_future(session.pop_item())
    await asyncio.sleep(0)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    for _ in range(50):
        if len(messages_to_items(store.get("c"))) == 2:
            break
        await asyncio.sleep(0.01)
    assert messages_to_items(store.get("c")) == CONVERTIBLE[5:7]


async def test_streamed_agents_run_keeps_the_same_history(chat_server: ChatServer,
                                                          chat_aclient: openai.AsyncOpenAI) -> None:
    store = sessions.MemorySession()
    session = AgentsSession(store, "streamed")
    chat_server.script(calls(("call_1", "get_weather", {"city": "Paris"})),
                       Reply("It is sunny in Paris, Alice."))
    result = agents.Runner.run_streamed(sdk_agent(chat_aclient), "Weather in Paris? I'm Alice.",
                                        session=session)
    async for _ in result.stream_events():
        pass
    assert result.final_output == "It is sunny in Paris, Alice."
    assert model_view(store.get("streamed")) == FIRST_TURN
    assert all(r.get("stream") for r in chat_server.requests)


def test_missing_agents_names_the_extra(monkeypatch: pytest.MonkeyPatch) -> None:
    import importlib
    import sys

    monkeypatch.setitem(sys.modules, "agents", None)  # what an absent package looks like
    monkeypatch.delitem(sys.modules, "adapters.openai_agents")
    with pytest.raises(sessions.MissingDependencyError, match=r"session-layer\[agents\]"):
        importlib.import_module("adapters.openai_agents")
