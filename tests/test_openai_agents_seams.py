"""The Agents SDK adapter where it meets the other frameworks and the SDK's own rules.

* parity with the SDK's sessions: settings as the SDK passes them, its ``limit``
  semantics, ``close()``, the atomic replace its compaction uses;
* windows: what ``get_items`` hands a model is valid input, for the Responses API and,
  through the SDK's Chat Completions model, for Chat Completions;
* rewrites: a framework writing back what it read keeps the other frameworks' data.
"""

from __future__ import annotations

import asyncio
import copy
import json
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import agents
import openai
import pytest
from agents.memory import OpenAIResponsesCompactionSession, SessionSettings
from agents.models.openai_chatcompletions import OpenAIChatCompletionsModel
from langchain_core.messages import AIMessage, HumanMessage, ToolMessage
from llama_index.core.base.llms.types import (
    ChatMessage,
    DocumentBlock,
    MessageRole,
    TextBlock,
    ThinkingBlock,
)
from openai.types.responses import ResponseOutputMessage, ResponseOutputText

import sessions
from adapters.langchain import SessionChatMessageHistory
from adapters.llamaindex import SessionChatStore
from adapters.openai_agents import AgentsSession, items_to_messages, messages_to_items
from sessions.view import model_view, same_meaning
from tests.agents_sdk import sdk_agent
from tests.chat_server import ChatServer, Reply, calls
from tests.chat_validator import problems

# -- what the Responses API takes ---------------------------------------------------------

_CALLS = {"function_call": "function_call_output", "custom_tool_call": "custom_tool_call_output",
          "computer_call": "computer_call_output", "local_shell_call": "local_shell_call_output"}
_OUTPUTS = {output: call for call, output in _CALLS.items()}
_MODEL_ITEMS = {"message", "reasoning", "web_search_call", "file_search_call", *_CALLS}


def responses_problems(items: list[Any]) -> list[str]:
    """What makes ``items`` an input the Responses API refuses (the rules a window keeps)."""
    found = []
    for index, item in enumerate(items):
        kind = item.get("type", "message")
        if kind in _OUTPUTS and not any(i.get("type") == _OUTPUTS[kind]
                                        and i.get("call_id") == item["call_id"] for i in items[:index]):
            found.append(f"[{index}] {kind} {item['call_id']} answers no call before it")
        if kind in _CALLS and not any(i.get("type") == _CALLS[kind]
                                      and i.get("call_id") == item["call_id"] for i in items[index:]):
            found.append(f"[{index}] {kind} {item['call_id']} has no result after it")
        if kind == "reasoning":
            following = next((i for i in items[index + 1:] if i.get("type") != "reasoning"), None)
            if following is None or following.get("type", "message") not in _MODEL_ITEMS \
                    or following.get("role", "assistant") != "assistant":
                found.append(f"[{index}] reasoning without the item that followed it")
        if kind == "message" and item.get("content") in ("", [], None) and item.get("role") != "assistant":
            found.append(f"[{index}] {item.get('role')} message with nothing in it")
        if kind == "message" and item.get("role") == "assistant" and not item.get("content"):
            found.append(f"[{index}] assistant message with nothing in it")
    return found


# Written through the Agents SDK: reasoning, a hosted tool, parallel calls, a tool
# output with an image, annotations, ids and status on every model item.
ANNOTATED = {"type": "output_text", "text": "Sunny in Paris [1].", "logprobs": [], "annotations": [
    {"type": "url_citation", "url": "https://weather.example/paris", "title": "Paris",
     "start_index": 15, "end_index": 18}]}
AGENT_ITEMS: list[dict[str, Any]] = [
    {"role": "user", "content": "Weather in Paris and Oslo?"},
    {"type": "reasoning", "id": "rs_1", "summary": [{"type": "summary_text", "text": "Two cities."}],
     "encrypted_content": "opaque-1"},
    {"type": "function_call", "id": "fc_1", "call_id": "call_1", "name": "get_weather",
     "arguments": '{"city":"Paris"}', "status": "completed"},
    {"type": "function_call", "id": "fc_2", "call_id": "call_2", "name": "get_weather",
     "arguments": '{"city":"Oslo"}', "status": "completed"},
    {"type": "function_call_output", "call_id": "call_1", "output": "sunny in Paris"},
    {"type": "function_call_output", "call_id": "call_2", "output": [
        {"type": "input_text", "text": "snow in Oslo"},
        {"type": "input_image", "image_url": "https://weather.example/oslo.png"}]},
    {"type": "web_search_call", "id": "ws_1", "status": "completed",
     "action": {"type": "search", "query": "Paris weather"}},
    {"type": "reasoning", "id": "rs_2", "summary": [], "encrypted_content": "opaque-2"},
    {"type": "message", "id": "msg_1", "role": "assistant", "status": "completed", "content": [ANNOTATED]},
    {"role": "user", "content": "Thanks!"},
    {"type": "message", "id": "msg_2", "role": "assistant", "status": "completed",
     "content": [{"type": "output_text", "text": "You're welcome.", "annotations": [], "logprobs": []}]},
]


# -- parity with the SDK's own sessions ---------------------------------------------------


async def test_session_settings_as_the_sdk_passes_them() -> None:
    store = sessions.MemorySession()
    await AgentsSession(store, "s").add_items([{"role": "user", "content": str(n)} for n in range(4)])
    default = AgentsSession(store, "s")
    assert default.session_settings == SessionSettings() and default.session_settings.limit is None
    assert len(await default.get_items()) == 4
    for given in ({"limit": 2}, SessionSettings(limit=2)):
        session = AgentsSession(store, "s", session_settings=given)
        assert session.session_settings == SessionSettings(limit=2)
        assert [i["content"] for i in await session.get_items()] == ["2", "3"]  # type: ignore[typeddict-item]
        assert len(await session.get_items(limit=3)) == 3  # an explicit limit wins
    default.session_settings = {"limit": 1}  # type: ignore[assignment]
    assert default.session_settings == SessionSettings(limit=1)
    default.session_settings = None  # type: ignore[assignment]
    assert default.session_settings.limit is None
    with pytest.raises(sessions.ConfigurationError, match="limt"):
        AgentsSession(store, "s", session_settings={"limt": 1})
    assert store.count("s") == 4


async def test_limit_semantics_are_the_sdks() -> None:
    store = sessions.MemorySession()
    session = AgentsSession(store, "l", session_settings={"limit": 3})
    items = [{"role": "user", "content": "a"}, {"role": "assistant", "content": "b"},
             {"role": "user", "content": "c"}]
    await session.add_items(copy.deepcopy(items))
    assert await session.get_items(limit=2) == items[1:]
    assert await session.get_items(limit=100) == items
    assert await session.get_items(limit=0) == []
    assert await session.get_items(limit=-1) == []  # as the SDK's Redis, MongoDB and Dapr sessions
    with pytest.raises(sessions.InvalidArgumentError):
        await session.get_items(limit=1.5)  # type: ignore[arg-type]
    with pytest.raises(sessions.InvalidArgumentError):
        await session.get_items(limit=True)


@pytest.mark.parametrize("settings", [{"limit": 2}, SessionSettings(limit=2)])
async def test_run_config_session_settings_limit_the_history_sent(
        chat_server: ChatServer, chat_aclient: openai.AsyncOpenAI, settings: Any) -> None:
    store = sessions.MemorySession()
    for n in range(3):
        chat_server.script(Reply(f"answer {n}"))
        await agents.Runner.run(sdk_agent(chat_aclient), f"question {n}", session=AgentsSession(store, "r"))
    chat_server.script(Reply("last"))
    own = AgentsSession(store, "r", session_settings={"limit": 4})
    await agents.Runner.run(sdk_agent(chat_aclient), "question 3", session=own,
                            run_config=agents.RunConfig(session_settings=settings))
    assert chat_server.requests[-1]["messages"] == [
        {"role": "user", "content": "question 2"}, {"role": "assistant", "content": "answer 2"},
        {"role": "user", "content": "question 3"}]
    chat_server.script(Reply("with its own settings"))
    await agents.Runner.run(sdk_agent(chat_aclient), "question 4", session=own)
    assert len(chat_server.requests[-1]["messages"]) == 5


async def test_from_url_owns_its_store_and_close_closes_it(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'owned.db'}"
    async with AgentsSession.from_url("o", url=url, session_settings={"limit": 1}) as session:
        await session.add_items([{"role": "user", "content": "kept"}])
        assert session.session_settings.limit == 1
    for call in (session.get_items(), session.add_items([]), session.pop_item(), session.clear_session()):
        with pytest.raises(sessions.BackendUnavailableError, match="closed"):
            await call
    await session.close()  # again: nothing to do
    with sessions.connect(url) as store:
        assert store.get("o") == [{"role": "user", "content": "kept"}]

    # A store passed in belongs to the caller: close() leaves it, and the session, usable.
    given = sessions.MemorySession()
    session = AgentsSession(given, "g")
    await session.close()
    await session.add_items([{"role": "user", "content": "still open"}])
    assert given.get("g") == [{"role": "user", "content": "still open"}]


class _RecordingStore(sessions.MemorySession):
    """A memory store that records which writes reach it."""

    def __init__(self) -> None:
        super().__init__()
        self.writes: list[str] = []

    async def aappend(self, session_id: str, messages: Any) -> None:
        self.writes.append("append")
        await super().aappend(session_id, messages)

    async def aclear(self, session_id: str) -> None:
        self.writes.append("clear")
        await super().aclear(session_id)

    async def areplace(self, session_id: str, messages: Any) -> None:
        self.writes.append("replace")
        await super().areplace(session_id, messages)


class _CompactServer:
    """A local ``POST /responses/compact``: keeps the input's user messages and adds one
    opaque compaction item, as the API describes its output."""

    def __init__(self) -> None:
        self.requests: list[dict[str, Any]] = []
        owner = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, format: str, *args: Any) -> None:
                pass

            def do_POST(self) -> None:
                body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
                owner.requests.append(body)
                users = [{"type": "message", "role": "user", "id": f"msg_u{n}", "status": "completed",
                          "content": [{"type": "input_text", "text": item["content"]}]
                          if isinstance(item["content"], str) else item["content"]}
                         for n, item in enumerate(body.get("input", ())) if item.get("role") == "user"]
                reply = json.dumps({
                    "id": "cmp_1", "object": "response.compaction", "created_at": 0,
                    "output": [*users, {"type": "compaction", "id": "cmp_item",
                                        "encrypted_content": "summary"}],
                    "usage": {"input_tokens": 10, "output_tokens": 2, "total_tokens": 12,
                              "input_tokens_details": {"cached_tokens": 0},
                              "output_tokens_details": {"reasoning_tokens": 0}},
                }).encode()
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(reply)))
                self.end_headers()
                self.wfile.write(reply)

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()
        self.base_url = f"http://127.0.0.1:{self.server.server_address[1]}/v1"

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()
        self.thread.join()


@pytest.fixture
def compact_server() -> Iterator[_CompactServer]:
    server = _CompactServer()
    yield server
    server.close()


async def test_compaction_replaces_a_shared_history_in_one_atomic_write(
        compact_server: _CompactServer) -> None:
    store = _RecordingStore()
    SessionChatMessageHistory(store, "c").add_messages(
        [HumanMessage("Hi, I'm Alice."), AIMessage("Hello Alice.", id="run-1")])
    session = AgentsSession(store, "c")
    await session.add_items(copy.deepcopy(AGENT_ITEMS))
    store.writes.clear()
    client = openai.AsyncOpenAI(base_url=compact_server.base_url, api_key="test", max_retries=0)
    compacting = OpenAIResponsesCompactionSession("c", session, client=client)
    await compacting.run_compaction({"force": True})
    await client.close()

    # One atomic replace: never a clear followed by an append.
    assert store.writes == ["replace"]
    [request] = compact_server.requests
    assert request["input"][0] == {"role": "user", "content": "Hi, I'm Alice."}
    # The SDK keeps the user messages and one opaque item: other frameworks now see only
    # the user messages, the Agents SDK the compacted history.
    stored = store.get("c")
    users = ["Hi, I'm Alice.", "Weather in Paris and Oslo?", "Thanks!"]
    assert model_view(stored) == [{"role": "user", "content": [{"type": "text", "text": t}]} for t in users]
    items = await session.get_items()
    assert [i.get("type") for i in items] == ["message"] * 3 + ["compaction"]
    assert items[-1] == {"type": "compaction", "id": "cmp_item", "encrypted_content": "summary"}
    lc = SessionChatMessageHistory(store, "c").messages
    assert [m.content for m in lc[:3]] == [[{"type": "text", "text": t}] for t in users]


async def test_compaction_keeps_a_call_still_waiting_for_its_result(compact_server: _CompactServer) -> None:
    store = _RecordingStore()
    session = AgentsSession(store, "p")
    pending = {"type": "function_call", "id": "fc_9", "call_id": "call_9", "name": "get_weather",
               "arguments": "{}"}
    await session.add_items([{"role": "user", "content": "Weather?"},
                             {"type": "message", "role": "assistant", "id": "msg_9", "status": "completed",
                              "content": [{"type": "output_text", "text": "Checking.", "annotations": []}]},
                             pending])
    client = openai.AsyncOpenAI(base_url=compact_server.base_url, api_key="test", max_retries=0)
    await OpenAIResponsesCompactionSession("p", session, client=client).run_compaction({"force": True})
    await client.close()
    # The call was not model input, so it was not compacted: it stays, after the summary,
    # ready for its result.
    assert messages_to_items(store.get("p"))[-2:] == [
        {"type": "compaction", "id": "cmp_item", "encrypted_content": "summary"}, pending]
    await session.add_items([{"type": "function_call_output", "call_id": "call_9", "output": "sunny"}])
    assert (await session.get_items())[-2:] == [
        pending, {"type": "function_call_output", "call_id": "call_9", "output": "sunny"}]


async def test_a_refused_replacement_changes_nothing() -> None:
    store = sessions.MemorySession()
    session = AgentsSession(store, "x")
    await session.add_items([{"role": "user", "content": "kept"}])
    with pytest.raises(sessions.InvalidMessageError):
        await session._atomic_replace_items([{"role": "user", "content": "new"}, object()])  # type: ignore[list-item]
    with pytest.raises(sessions.InvalidMessageError):
        await session._atomic_replace_items([{"role": "user", "content": float("nan")}])
    assert store.get("x") == [{"role": "user", "content": "kept"}]


# -- windows --------------------------------------------------------------------------------


async def test_every_window_is_valid_responses_input() -> None:
    store = sessions.MemorySession()
    session = AgentsSession(store, "w")
    await session.add_items(copy.deepcopy(AGENT_ITEMS))
    await session.add_items([{"role": "user", "content": "And tomorrow?"},
                             {"type": "function_call", "call_id": "call_3", "name": "get_weather",
                              "arguments": '{"city": "Paris"}'}])  # still waiting for its result
    stored = messages_to_items(store.get("w"))
    for limit in range(1, len(stored) + 2):
        window = await session.get_items(limit=limit)
        assert responses_problems(window) == [], limit
        assert len(window) <= limit
        # A window is the end of the history, minus what it must leave out.
        without_ids = [{k: v for k, v in i.items() if k != "id"} for i in stored]
        assert all(i in stored or i in without_ids for i in window)
    tomorrow = stored[-2]
    assert await session.get_items(limit=3) == [AGENT_ITEMS[10], tomorrow]
    # The window of 6 starts with a reasoning item and the message it produced; the
    # window of 5 cuts the reasoning off, and the message goes without its id.
    assert await session.get_items(limit=6) == [*AGENT_ITEMS[7:11], tomorrow]
    assert await session.get_items(limit=5) == [
        {k: v for k, v in AGENT_ITEMS[8].items() if k != "id"}, *AGENT_ITEMS[9:11], tomorrow]
    # A window starting between the parallel calls keeps the call it holds, with its
    # result, and leaves out the result whose call it cut off.
    assert await session.get_items(limit=10) == [AGENT_ITEMS[3], AGENT_ITEMS[5], *AGENT_ITEMS[6:11], tomorrow]
    # The whole history is left as it was stored.
    assert stored[:11] == AGENT_ITEMS


async def test_responses_only_tool_items_keep_their_pairs() -> None:
    store = sessions.MemorySession()
    session = AgentsSession(store, "h")
    computer = {"type": "computer_call", "id": "cu_1", "call_id": "cc_1", "status": "completed",
                "action": {"type": "click", "x": 1, "y": 2, "button": "left"}, "pending_safety_checks": []}
    screenshot = {"type": "computer_call_output", "call_id": "cc_1",
                  "output": {"type": "computer_screenshot", "image_url": "data:image/png;base64,AA"}}
    approval = {"type": "mcp_approval_response", "approval_request_id": "mcpr_0", "approve": True}
    await session.add_items([approval, {"role": "user", "content": "click"}, computer, screenshot,
                             {"role": "user", "content": "again"},
                             {**computer, "id": "cu_2", "call_id": "cc_2"}])
    assert await session.get_items() == [{"role": "user", "content": "click"}, computer, screenshot,
                                         {"role": "user", "content": "again"}]
    assert await session.get_items(limit=4) == [computer, screenshot, {"role": "user", "content": "again"}]
    assert await session.get_items(limit=3) == [{"role": "user", "content": "again"}]


async def test_a_window_handed_to_a_chat_model_never_starts_inside_a_tool_exchange(
        chat_server: ChatServer, chat_aclient: openai.AsyncOpenAI) -> None:
    store = sessions.MemorySession()
    # LangChain writes a tool exchange with two results, LlamaIndex and the runner more.
    SessionChatMessageHistory(store, "t").add_messages([
        HumanMessage("Weather in Paris and Oslo?"),
        AIMessage("", tool_calls=[{"id": "lc_1", "name": "get_weather", "args": {"city": "Paris"}},
                                  {"id": "lc_2", "name": "get_weather", "args": {"city": "Oslo"}}]),
        ToolMessage("sunny", tool_call_id="lc_1"), ToolMessage("snow", tool_call_id="lc_2"),
        AIMessage("Sunny and snowy."),
    ])
    session = AgentsSession(store, "t")
    # A session_input_callback hands the window to the model as the session gives it.
    config = agents.RunConfig(session_settings={"limit": 3},
                              session_input_callback=lambda history, new: history + new)
    chat_server.script(Reply("Noted."))
    await agents.Runner.run(sdk_agent(chat_aclient), "Thanks", session=session, run_config=config)
    assert chat_server.invalid == []
    sent = chat_server.requests[-1]["messages"]
    assert problems(sent) == []
    assert sent == [{"role": "assistant", "content": "Sunny and snowy."},
                    {"role": "user", "content": "Thanks"}]
    # A window starting between the two calls sends the call it holds and its result.
    for limit, roles in ((6, ["assistant", "tool", "assistant", "user", "assistant", "user"]),
                         (7, ["assistant", "tool", "tool", "assistant", "user", "assistant", "user"])):
        chat_server.script(Reply("Again."))
        config = agents.RunConfig(session_settings={"limit": limit},
                                  session_input_callback=lambda history, new: history + new)
        await agents.Runner.run(sdk_agent(chat_aclient), "Once more", session=session, run_config=config)
        sent = chat_server.requests[-1]["messages"]
        assert problems(sent) == [] and [m["role"] for m in sent] == roles
        store.pop("t")
        store.pop("t")
    assert chat_server.requests[-2]["messages"][0]["tool_calls"][0]["id"] == "lc_2"


async def test_messages_no_model_can_read_give_no_items(chat_server: ChatServer,
                                                        chat_aclient: openai.AsyncOpenAI) -> None:
    store = sessions.MemorySession()
    chat = SessionChatStore(store)
    chat.set_messages("u", [
        ChatMessage(role=MessageRole.USER, blocks=[DocumentBlock(url="https://example.invalid/a.pdf")]),
        ChatMessage(role=MessageRole.ASSISTANT, blocks=[ThinkingBlock(content="hmm")]),
        ChatMessage(role=MessageRole.USER, blocks=[TextBlock(text="Hello")]),
    ])
    store.append("u", [{"role": "assistant", "content": []},
                       {"role": "tool", "tool_call_id": "gone", "content": "an orphan"},
                       {"role": "user", "content": [{"type": "image_url", "image_url": {}}]}])
    session = AgentsSession(store, "u")
    assert await session.get_items() == [{"role": "user", "content": "Hello"}]
    chat_server.script(Reply("Hi."))
    await agents.Runner.run(sdk_agent(chat_aclient), "Anyone?", session=session)
    assert chat_server.invalid == []
    assert chat_server.requests[-1]["messages"] == [
        {"role": "user", "content": "Hello"}, {"role": "user", "content": "Anyone?"}]
    assert len(store.get("u")) == 8  # nothing the others wrote was touched


# -- rewrites keep what still applies -------------------------------------------------------


def _langchain_rewrite(store: sessions.Session, session_id: str) -> None:
    history = SessionChatMessageHistory(store, session_id)
    history.messages = history.messages


def _llamaindex_rewrite(store: sessions.Session, session_id: str) -> None:
    chat = SessionChatStore(store)
    chat.set_messages(session_id, chat.get_messages(session_id))


@pytest.mark.parametrize("rewrites", [
    [_langchain_rewrite], [_llamaindex_rewrite], [_langchain_rewrite, _llamaindex_rewrite],
    [_llamaindex_rewrite, _langchain_rewrite],
], ids=["langchain", "llamaindex", "langchain-llamaindex", "llamaindex-langchain"])
async def test_agents_items_survive_other_frameworks_rewrites(rewrites: list[Any]) -> None:
    store = sessions.MemorySession()
    session = AgentsSession(store, "a")
    await session.add_items(copy.deepcopy(AGENT_ITEMS))
    visible = model_view(store.get("a"))
    for rewrite in rewrites:
        rewrite(store, "a")
    # Ids, status, annotations, the tool output's image, reasoning and the hosted tool
    # come back exactly: the rewritten messages still say the same thing.
    assert await session.get_items() == AGENT_ITEMS
    # ... and no other framework's model is sent what only the Agents SDK can use.
    seen = model_view(store.get("a"))
    assert len(seen) == len(visible) and all(map(same_meaning, seen, visible))
    assert problems(seen) == []
    assert [m["role"] for m in visible] == [
        "user", "assistant", "tool", "tool", "assistant", "user", "assistant"]


async def test_a_rewrite_that_changes_the_meaning_drops_the_kept_items() -> None:
    store = sessions.MemorySession()
    session = AgentsSession(store, "m")
    await session.add_items(copy.deepcopy(AGENT_ITEMS[8:9]))
    history = SessionChatMessageHistory(store, "m")
    history.messages = [AIMessage("Rain in Paris.")]
    assert await session.get_items() == [{"role": "assistant", "content": "Rain in Paris."}]


async def test_pop_item_keeps_other_frameworks_keys() -> None:
    store = sessions.MemorySession()
    usage = {"input_tokens": 12, "output_tokens": 7, "total_tokens": 19}
    answer = AIMessage("Checking both.", id="run-7", usage_metadata=usage,  # type: ignore[arg-type]
                       response_metadata={"model_name": "gpt-x", "finish_reason": "tool_calls"},
                       tool_calls=[{"id": "lc_1", "name": "get_weather", "args": {"city": "Paris"}},
                                   {"id": "lc_2", "name": "get_weather", "args": {"city": "Oslo"}}])
    SessionChatMessageHistory(store, "k").add_messages([HumanMessage("Weather?"), answer])
    store.append("k", [])
    stored = store.get("k")
    stored[-1]["metadata"] = {"source": "crm"}  # another framework's extra key
    store.replace("k", stored)

    popped = await AgentsSession(store, "k").pop_item()
    assert popped == {"type": "function_call", "call_id": "lc_2", "name": "get_weather",
                      "arguments": '{"city": "Oslo"}'}
    # The message written back is the same message with one call less.
    rest = store.get("k")[-1]
    assert rest["id"] == "run-7" and rest["metadata"] == {"source": "crm"}
    assert rest["langchain"] == stored[-1]["langchain"]
    # LangChain reads it for a model: the call left without a result is not shown.
    [message] = SessionChatMessageHistory(store, "k").messages[1:]
    assert message == AIMessage("Checking both.", id="run-7", usage_metadata=usage,  # type: ignore[arg-type]
                                response_metadata={"model_name": "gpt-x", "finish_reason": "tool_calls"},
                                additional_kwargs={"canonical_extras": {"metadata": {"source": "crm"}}})
    # LlamaIndex reads it too.
    [_, read] = SessionChatStore(store).get_messages("k")
    assert read.content == "Checking both."


async def test_pop_item_of_text_after_calls_keeps_the_calls_and_the_ids() -> None:
    store = sessions.MemorySession()
    session = AgentsSession(store, "s")
    streamed = [AGENT_ITEMS[2], AGENT_ITEMS[8]]  # a streamed turn lists its call before its text
    await session.add_items(copy.deepcopy(streamed))
    assert await session.pop_item() == AGENT_ITEMS[8]
    assert messages_to_items(store.get("s")) == [AGENT_ITEMS[2]]


async def test_a_conversation_through_three_frameworks(chat_server: ChatServer,
                                                       chat_aclient: openai.AsyncOpenAI) -> None:
    store = sessions.MemorySession()
    # The Agents SDK writes, LlamaIndex reads and writes back (re-serialising the call's
    # arguments), LangChain adds a message, and the Agents SDK continues.
    chat_server.script(calls(("call_1", "get_weather", {"city": "Paris"})), Reply("Sunny in Paris."))
    await agents.Runner.run(sdk_agent(chat_aclient), "Weather in Paris?", session=AgentsSession(store, "x"))
    written = await AgentsSession(store, "x").get_items()
    _llamaindex_rewrite(store, "x")
    SessionChatMessageHistory(store, "x").add_messages([HumanMessage("And tomorrow?")])
    chat_server.script(Reply("Sunny too."))
    await agents.Runner.run(sdk_agent(chat_aclient), "Please answer.", session=AgentsSession(store, "x"))
    sent = chat_server.requests[-1]["messages"]
    assert problems(sent) == [] and chat_server.invalid == []
    assert [m["role"] for m in sent] == ["user", "assistant", "tool", "assistant", "user", "user"]
    items = await AgentsSession(store, "x").get_items()
    assert items[:4] == written  # ids and provider data kept through LlamaIndex's rewrite
    assert [m.content for m in SessionChatMessageHistory(store, "x").messages][-3:] == [
        "And tomorrow?", "Please answer.", "Sunny too."]


def test_items_round_trip_still_exact() -> None:
    messages = items_to_messages(copy.deepcopy(AGENT_ITEMS))
    assert messages_to_items(messages) == AGENT_ITEMS
    assert asyncio.iscoroutinefunction(AgentsSession.close)


# -- the SDK's session expectations, against AgentsSession ----------------------------------


async def _run(method: str, server: ChatServer, question: str, **options: Any) -> Any:
    """One run through ``Runner.run``, ``run_sync`` (in a thread, on the loop it makes)
    or ``run_streamed``, with a client of its own event loop."""

    async def run_async() -> Any:
        async with openai.AsyncOpenAI(base_url=server.base_url, api_key="test", max_retries=0) as client:
            if method == "run":
                return await agents.Runner.run(sdk_agent(client), question, **options)
            streamed = agents.Runner.run_streamed(sdk_agent(client), question, **options)
            async for _ in streamed.stream_events():
                pass
            return streamed

    if method != "run_sync":
        return await run_async()

    def run_sync() -> Any:
        client = openai.AsyncOpenAI(base_url=server.base_url, api_key="test", max_retries=0)
        try:
            return agents.Runner.run_sync(sdk_agent(client), question, **options)
        finally:
            asyncio.run(client.close())

    return await asyncio.to_thread(run_sync)


@pytest.mark.parametrize("method", ["run", "run_sync", "run_streamed"])
async def test_runner_methods_remember_and_limit_the_history(
        method: str, chat_server: ChatServer, tmp_path: Path) -> None:
    store = sessions.SQLiteSession(tmp_path / "runs.db")
    alice, bob = AgentsSession(store, "alice"), AgentsSession(store, "bob")
    for session, name in ((alice, "Alice"), (bob, "Bob")):
        chat_server.script(Reply(f"Hello {name}."))
        await _run(method, chat_server, f"I am {name}.", session=session)
    chat_server.script(Reply("You are Alice."))
    result = await _run(method, chat_server, "Who am I?", session=alice)
    assert result.final_output == "You are Alice."
    assert [m["content"] for m in chat_server.requests[-1]["messages"]] == [
        "I am Alice.", "Hello Alice.", "Who am I?"]  # only this session's history
    for limit, sent in ((0, 1), (None, 5), (100, 5), (2, 3)):
        chat_server.script(Reply("ok"))
        await _run(method, chat_server, "Again?", session=alice,
                   run_config=agents.RunConfig(session_settings=SessionSettings(limit=limit)))
        assert len(chat_server.requests[-1]["messages"]) == sent, limit
        await alice.pop_item()
        await alice.pop_item()
    assert model_view(store.get("bob")) == [{"role": "user", "content": "I am Bob."},
                                            {"role": "assistant", "content": "Hello Bob."}]
    store.close()


async def test_pop_clear_and_add_like_the_sdks_sessions() -> None:
    store = sessions.MemorySession()
    first, second = AgentsSession(store, "one"), AgentsSession(store, "two")
    await first.add_items([])  # nothing to add: nothing written
    assert store.info("one") is None
    texts = ["a", "b", "c"]
    await first.add_items([{"role": "user", "content": t} for t in texts])
    await second.add_items([{"role": "user", "content": "other"}])
    for expected in reversed(texts):
        assert await first.pop_item() == {"role": "user", "content": expected}
    assert await first.pop_item() is None
    assert await second.get_items() == [{"role": "user", "content": "other"}]
    await second.clear_session()
    assert await second.get_items() == [] and await second.pop_item() is None


@agents.function_tool(needs_approval=True)
def delete_file(path: str) -> str:
    """Delete a file."""
    return f"deleted {path}"


async def test_a_call_waiting_for_approval_is_stored_and_read_once_answered(
        chat_server: ChatServer, chat_aclient: openai.AsyncOpenAI) -> None:
    store = sessions.MemorySession()
    session = AgentsSession(store, "hitl")
    agent = agents.Agent(name="Assistant", tools=[delete_file],
                         model=OpenAIChatCompletionsModel(model="test-model", openai_client=chat_aclient))
    chat_server.script(calls(("call_1", "delete_file", {"path": "a.txt"})), Reply("Deleted."))
    interrupted = await agents.Runner.run(agent, "Delete a.txt", session=session)
    assert len(interrupted.interruptions) == 1
    # The call is stored, but it is no model input until its result is there.
    assert store.get("hitl")[-1]["tool_calls"][0]["id"] == "call_1"
    assert await session.get_items() == [{"role": "user", "content": "Delete a.txt"}]
    state = interrupted.to_state()
    state.approve(interrupted.interruptions[0])
    resumed = await agents.Runner.run(agent, state, session=session)
    assert resumed.final_output == "Deleted."
    assert chat_server.invalid == [] and problems(chat_server.requests[-1]["messages"]) == []
    items = await session.get_items()
    assert [i.get("type", "message") for i in items] == [
        "message", "function_call", "function_call_output", "message"]
    assert len(store.get("hitl")) == 4  # the call once, its result, the answer


class _ScriptedResponsesModel(agents.Model):
    """A model answering from a script with Responses output items and a response id,
    as a Responses API model does (so the SDK compacts automatically after a turn)."""

    def __init__(self, *replies: str) -> None:
        self.replies = list(replies)
        self.inputs: list[Any] = []

    async def get_response(self, system_instructions: str | None, input: Any, *args: Any,
                           **kwargs: Any) -> agents.ModelResponse:
        self.inputs.append(copy.deepcopy(input))
        number = len(self.inputs)
        message = ResponseOutputMessage(
            id=f"msg_r{number}", type="message", role="assistant", status="completed",
            content=[ResponseOutputText(type="output_text", text=self.replies.pop(0), annotations=[])])
        return agents.ModelResponse(output=[message], usage=agents.Usage(), response_id=f"resp_{number}")

    def stream_response(self, *args: Any, **kwargs: Any) -> Any:
        raise NotImplementedError("the scripted model answers without streaming")


async def test_automatic_compaction_of_a_window_never_replaces_the_history_before_it(
        compact_server: _CompactServer) -> None:
    store = sessions.MemorySession()
    session = AgentsSession(store, "auto")
    # The window of the next turn (limit 2) starts with a result whose call it cuts off.
    earlier = [{"role": "user", "content": "first"},
               {"type": "function_call", "call_id": "c1", "name": "get_weather", "arguments": "{}"},
               {"type": "function_call_output", "call_id": "c1", "output": "sunny"},
               {"role": "assistant", "content": "It is sunny."}]
    await session.add_items(copy.deepcopy(earlier))
    client = openai.AsyncOpenAI(base_url=compact_server.base_url, api_key="test", max_retries=0)
    compacting = OpenAIResponsesCompactionSession("auto", session, client=client,
                                                  should_trigger_compaction=lambda context: True)
    model = _ScriptedResponsesModel("Noted.")
    await agents.Runner.run(agents.Agent(name="Assistant", model=model), "second", session=compacting,
                            run_config=agents.RunConfig(session_settings={"limit": 2}))
    await client.close()
    assert model.inputs[0] == [earlier[3], {"content": "second", "role": "user"}]
    # Only the turn's window was seen: a summary of it must not replace what came before.
    assert compact_server.requests == []
    assert messages_to_items(store.get("auto"))[:4] == earlier


async def test_automatic_compaction_of_the_whole_history_is_one_replace(
        compact_server: _CompactServer) -> None:
    store = _RecordingStore()
    session = AgentsSession(store, "whole")
    await session.add_items([{"role": "user", "content": "first"}, {"role": "assistant", "content": "Hi."}])
    client = openai.AsyncOpenAI(base_url=compact_server.base_url, api_key="test", max_retries=0)
    compacting = OpenAIResponsesCompactionSession("whole", session, client=client,
                                                  should_trigger_compaction=lambda context: True)
    store.writes.clear()
    await agents.Runner.run(agents.Agent(name="Assistant", model=_ScriptedResponsesModel("Noted.")), "second",
                            session=compacting)
    await client.close()
    assert [r.get("previous_response_id") for r in compact_server.requests] == ["resp_1"]
    # The turn's appends, then the compacted history in one replace.
    assert store.writes[:-1] == ["append"] * (len(store.writes) - 1) and store.writes[-1] == "replace"
    assert await session.get_items() == [
        {"type": "compaction", "id": "cmp_item", "encrypted_content": "summary"}]


async def test_pop_item_skips_responses_only_messages_without_items() -> None:
    store = sessions.MemorySession()
    store.append("e", [{"role": "user", "content": "kept"},
                       {"role": "assistant", "content": "", "x_responses_only": True,
                        "x_responses_items": "?"}])
    session = AgentsSession(store, "e")
    assert await session.get_items() == [{"role": "user", "content": "kept"}]
    assert await session.pop_item() == {"role": "user", "content": "kept"}
    assert store.get("e") == [] and await session.pop_item() is None


# -- other frameworks' assistant turns as the SDK's chat model sends them ----------------------

_TEXT_AND_CALLS = [
    {"role": "user", "content": "Weather in Paris?"},
    {"role": "assistant", "content": "Checking.", "tool_calls": [
        {"id": "call_p", "type": "function", "function": {"name": "get_weather", "arguments": "{}"}}]},
    {"role": "tool", "tool_call_id": "call_p", "content": "sunny"},
    {"role": "assistant", "content": "Sunny."},
]


async def test_text_and_calls_of_one_message_reach_a_chat_model_as_one_message(
        chat_server: ChatServer) -> None:
    store = sessions.MemorySession()
    store.append("t", copy.deepcopy(_TEXT_AND_CALLS))
    chat_server.script(Reply("ok"))
    client = openai.AsyncOpenAI(base_url=chat_server.base_url, api_key="test", max_retries=0)
    await agents.Runner.run(sdk_agent(client), "And Rome?", session=AgentsSession(store, "t"))
    sent = chat_server.requests[-1]["messages"]
    assert not problems(sent)
    assert sent[-5:-1] == _TEXT_AND_CALLS  # the history, then the new question
    await client.close()


async def test_custom_tool_calls_are_custom_items_both_ways() -> None:
    custom = {"id": "call_c", "type": "custom", "custom": {"name": "grep", "input": "weather *"}}
    history = [{"role": "user", "content": "Find it"},
               {"role": "assistant", "content": None, "tool_calls": [custom]},
               {"role": "tool", "tool_call_id": "call_c", "content": "found"}]
    items = messages_to_items(history)
    assert items[1:] == [
        {"type": "custom_tool_call", "call_id": "call_c", "name": "grep", "input": "weather *"},
        {"type": "custom_tool_call_output", "call_id": "call_c", "output": "found"}]
    # Written by the SDK, other frameworks read them as custom calls, not Responses-only.
    assert items_to_messages(items) == history
    store = sessions.MemorySession()
    await AgentsSession(store, "c").add_items(items)  # type: ignore[arg-type]
    assert model_view(store.get("c")) == history
    assert await AgentsSession(store, "c").get_items() == items


def test_an_audio_reply_is_its_transcript_for_the_sdk() -> None:
    spoken = {"role": "assistant", "content": None,
              "audio": {"id": "audio_1", "data": "UklG", "expires_at": 1, "transcript": "Hi there"}}
    assert messages_to_items([spoken]) == [{"role": "assistant", "content": "Hi there"}]


async def test_parallel_calls_stored_apart_by_reasoning_read_as_one_exchange() -> None:
    """The SDK stores parallel function calls as separate items, with reasoning items
    between them; every framework must read both calls and both results."""
    store = sessions.MemorySession()
    items: list[Any] = [
        {"role": "user", "content": "Send the email and open a ticket."},
        {"type": "reasoning", "id": "rs_before", "summary": []},
        {"type": "function_call", "id": "fc_email", "call_id": "email", "name": "send_email",
         "arguments": "{}"},
        {"type": "reasoning", "id": "rs_ticket", "summary": []},
        {"type": "function_call", "id": "fc_ticket", "call_id": "ticket", "name": "create_ticket",
         "arguments": "{}"},
        {"type": "function_call_output", "call_id": "email", "output": "email sent"},
        {"type": "function_call_output", "call_id": "ticket", "output": "ticket T-1"},
    ]
    session = AgentsSession(store, "x")
    await session.add_items(copy.deepcopy(items))
    assert await session.get_items() == items
    assert await session.get_items(limit=6) == items[1:]  # the window starts at a reasoning item
    stored = store.get("x")
    # A Chat Completions model sees one assistant message with both calls, then both results.
    viewed = model_view(stored)
    assert problems([*viewed, {"role": "user", "content": "next"}]) == []
    assert [(m["role"], [c["id"] for c in m.get("tool_calls") or ()]) for m in viewed] == [
        ("user", []), ("assistant", ["email", "ticket"]), ("tool", []), ("tool", [])]
    langchain = SessionChatMessageHistory(store, "x").messages
    assert [c["id"] for c in langchain[1].tool_calls] == ["email", "ticket"]  # type: ignore[attr-defined]
    assert [m.content for m in langchain[2:]] == ["email sent", "ticket T-1"]
    # Writing back what was read changes nothing, in LangChain and LlamaIndex.
    history = SessionChatMessageHistory(store, "x")
    history.messages = history.messages
    chat_store = SessionChatStore(store)
    chat_store.set_messages("x", chat_store.get_messages("x"))
    assert store.get("x") == stored and await session.get_items() == items
