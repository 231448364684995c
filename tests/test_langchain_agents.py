"""SessionHistoryMiddleware inside real LangChain 1.x agents (create_agent, LangGraph).

The agents run a scripted chat model that calls tools; the history lives in a store.
"""

from __future__ import annotations

import asyncio
import subprocess
import sys
import textwrap
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import pytest

pytest.importorskip("langchain.agents")

from langchain.agents import create_agent
from langchain.agents.middleware import HumanInTheLoopMiddleware
from langchain_core.messages import AIMessage, BaseMessage, HumanMessage, SystemMessage, ToolMessage
from langchain_core.tools import tool
from langgraph.checkpoint.memory import InMemorySaver
from langgraph.types import Command

import sessions
from adapters.langchain import SessionHistoryMiddleware, to_canonical
from adapters.langchain._view import view_of
from sessions import InvalidArgumentError, InvalidMessageError, MemorySession, Message
from tests.langchain_models import ScriptedChatModel, call

ROOT = Path(__file__).resolve().parents[1]


class CountingSession(MemorySession):
    """A memory store that counts its sync and async reads and writes."""

    def __init__(self) -> None:
        super().__init__()
        self.calls: list[str] = []

    def get(self, session_id: str, limit: int | None = None) -> list[Message]:
        self.calls.append("get")
        return super().get(session_id, limit)

    def append(self, session_id: str, messages: Iterable[Message]) -> None:
        self.calls.append("append")
        super().append(session_id, messages)

    async def aget(self, session_id: str, limit: int | None = None) -> list[Message]:
        self.calls.append("aget")
        return await super().aget(session_id, limit)

    async def aappend(self, session_id: str, messages: Iterable[Message]) -> None:
        self.calls.append("aappend")
        await super().aappend(session_id, messages)


class ToolFailed(Exception):
    pass


failing = {"on": False}


@tool
def add(a: int, b: int) -> int:
    """Add two numbers."""
    if failing["on"]:
        raise ToolFailed("the adder is down")
    return a + b


HISTORY: list[Message] = [
    {"role": "user", "content": "My name is Alice."},
    {"role": "assistant", "content": "Hello Alice."},
]


def config(session_id: str | None = None, thread_id: str | None = None) -> dict[str, Any]:
    configurable = {k: v for k, v in (("session_id", session_id), ("thread_id", thread_id)) if v is not None}
    return {"configurable": configurable}


def addition(call_id: str = "c1") -> list[Any]:
    """A script for one turn: call add(1, 2), then answer from its result."""
    return [call("add", call_id, a=1, b=2), lambda sent: f"It is {sent[-1].content}."]


def kinds(messages: Iterable[BaseMessage]) -> list[tuple[str, Any]]:
    return [(type(m).__name__, m.content) for m in messages]


def stored_kinds(store: sessions.Session, session_id: str) -> list[tuple[str | None, Any]]:
    return [(m["role"], m.get("content")) for m in store.get(session_id)]


TURN = [("user", "What is 1 + 2?"), ("assistant", None), ("tool", "3"), ("assistant", "It is 3.")]


def agent_for(store: sessions.Session, model: ScriptedChatModel, **options: Any) -> Any:
    middleware = [SessionHistoryMiddleware(store, **options.pop("history", {})),
                  *options.pop("middleware", [])]
    return create_agent(model, [add], system_prompt="Be brief.", middleware=middleware, **options)


# -- one turn, every way of running it -------------------------------------------------------


def run_turn(agent: Any, how: str, cfg: dict[str, Any], text: str = "What is 1 + 2?") -> None:
    payload = {"messages": [HumanMessage(text)]}
    if how == "invoke":
        agent.invoke(payload, cfg)
    elif how == "stream":
        for _ in agent.stream(payload, cfg, stream_mode=["updates", "messages"]):
            pass
    elif how == "ainvoke":
        asyncio.run(agent.ainvoke(payload, cfg))
    else:
        async def consume() -> None:
            async for _ in agent.astream(payload, cfg, stream_mode=["updates", "messages"]):
                pass
        asyncio.run(consume())


@pytest.mark.parametrize("how", ["invoke", "stream", "ainvoke", "astream"])
def test_a_turn_reads_the_history_and_appends_the_run_in_one_batch(how: str) -> None:
    store = CountingSession()
    store.append("alice", HISTORY)
    store.calls.clear()
    model = ScriptedChatModel(*addition())
    run_turn(agent_for(store, model), how, config("alice"))

    # The model saw the system prompt, the stored history, then the input (and the tool exchange).
    assert kinds(model.sent[0]) == [("SystemMessage", "Be brief."), ("HumanMessage", "My name is Alice."),
                                    ("AIMessage", "Hello Alice."), ("HumanMessage", "What is 1 + 2?")]
    assert kinds(model.sent[1])[4:] == [("AIMessage", ""), ("ToolMessage", "3")]
    # One read and one append; the async forms call the store's async methods.
    assert store.calls == (["get", "append"] if how in ("invoke", "stream") else ["aget", "aappend"])
    assert stored_kinds(store, "alice") == [(m["role"], m["content"]) for m in HISTORY] + TURN
    stored = store.get("alice")
    assert stored[3]["tool_calls"][0]["id"] == "c1" and stored[4]["tool_call_id"] == "c1"


@pytest.mark.parametrize("how", ["invoke", "astream"])
def test_turns_on_every_framework_backend(framework_store: sessions.Session, how: str) -> None:
    store = framework_store
    store.append("alice", HISTORY)
    model = ScriptedChatModel(*addition("c1"), *addition("c2"))
    agent = agent_for(store, model, checkpointer=InMemorySaver())
    run_turn(agent, how, config("alice", thread_id="t"))
    run_turn(agent_for(store, model), how, config("alice"))  # another agent, no checkpoint
    assert stored_kinds(store, "alice") == [(m["role"], m["content"]) for m in HISTORY] + TURN + TURN
    assert kinds(model.sent[2][1:]) == [("HumanMessage", "My name is Alice."), ("AIMessage", "Hello Alice."),
                                        *[(k, c) for k, c in kinds(model.sent[1][3:])],
                                        ("AIMessage", "It is 3."), ("HumanMessage", "What is 1 + 2?")]


def test_the_stored_run_is_the_run_as_langchain_converts_it() -> None:
    """Names, ids, usage metadata and content blocks are stored as to_canonical keeps them."""
    store = MemorySession()
    answer = AIMessage([{"type": "text", "text": "Done."}, {"type": "reasoning", "reasoning": "easy"}],
                       name="helper", id="run-2", usage_metadata={"input_tokens": 5, "output_tokens": 2,
                                                                  "total_tokens": 7},
                       response_metadata={"model_name": "scripted"})
    question = HumanMessage([{"type": "text", "text": "Add these"},
                             {"type": "image", "url": "https://example.invalid/sum.png"}],
                            name="alice", id="q-1")
    model = ScriptedChatModel(call("add", "c9", a=2, b=2), answer)
    result = agent_for(store, model).invoke({"messages": [question]}, config("alice"))
    assert store.get("alice") == [to_canonical(m) for m in result["messages"]]
    assert result["messages"][0] == question and result["messages"][-1] == answer
    assert set(result) == {"messages"}  # the bookkeeping is private


EXCHANGE: list[Message] = [
    {"role": "user", "content": "old question"},
    {"role": "assistant", "content": None, "tool_calls": [
        {"id": "c0", "type": "function", "function": {"name": "add", "arguments": '{"a": 0, "b": 0}'}}]},
    {"role": "tool", "tool_call_id": "c0", "content": "0"},
    {"role": "assistant", "content": "It is 0."},
    {"role": "assistant", "content": "", "x_responses_only": True, "x_responses_items": []},
]


@pytest.mark.parametrize(("limit", "seen"), [
    (None, [("HumanMessage", "old question"), ("AIMessage", ""), ("ToolMessage", "0"),
            ("AIMessage", "It is 0.")]),
    (4, [("AIMessage", ""), ("ToolMessage", "0"), ("AIMessage", "It is 0.")]),
    (3, [("AIMessage", "It is 0.")]),  # the window starts at a tool result: it is left out
    (0, []),
])
def test_the_history_reaches_the_agent_as_the_model_view_of_a_window(
        limit: int | None, seen: list[tuple[str, Any]]) -> None:
    store = MemorySession()
    store.append("alice", EXCHANGE)
    model = ScriptedChatModel("Fine.")
    agent = agent_for(store, model, history={"limit": limit})
    agent.invoke({"messages": [HumanMessage("Hi")]}, config("alice"))
    # The Responses-only message is never shown to the model.
    assert kinds(model.sent[0][1:]) == [*seen, ("HumanMessage", "Hi")]
    # Everything stays stored; the run is appended after it.
    assert store.get("alice")[:5] == EXCHANGE
    assert stored_kinds(store, "alice")[5:] == [("user", "Hi"), ("assistant", "Fine.")]


# -- which session --------------------------------------------------------------------------


def test_the_session_comes_from_session_id_then_thread_id_or_is_fixed() -> None:
    store = MemorySession()
    agent_for(store, ScriptedChatModel("a")).invoke({"messages": [HumanMessage("1")]},
                                                    config(session_id="s1", thread_id="t1"))
    agent_for(store, ScriptedChatModel("b")).invoke({"messages": [HumanMessage("2")]}, config(thread_id="t1"))
    agent_for(store, ScriptedChatModel("c"), history={"session_id": "fixed"}).invoke(
        {"messages": [HumanMessage("3")]}, config(thread_id="t1"))
    assert stored_kinds(store, "s1") == [("user", "1"), ("assistant", "a")]
    assert stored_kinds(store, "t1") == [("user", "2"), ("assistant", "b")]
    assert stored_kinds(store, "fixed") == [("user", "3"), ("assistant", "c")]


@pytest.mark.parametrize("cfg", [config(), {}, config(session_id="bob")])
def test_a_run_without_its_session_is_refused_before_the_model_is_called(cfg: dict[str, Any]) -> None:
    store = MemorySession()
    model = ScriptedChatModel("never")
    history = {"session_id": "alice"} if cfg.get("configurable", {}).get("session_id") else {}
    with pytest.raises(InvalidArgumentError, match="session"):
        agent_for(store, model, history=history).invoke({"messages": [HumanMessage("Hi")]}, cfg)
    assert model.sent == [] and list(store.list_sessions()) == []


@pytest.mark.parametrize("bad", ["", "a\x00b", 3.5])
def test_an_invalid_session_id_is_refused(bad: Any) -> None:
    model = ScriptedChatModel("never")
    with pytest.raises(sessions.SessionError):
        agent_for(MemorySession(), model).invoke({"messages": [HumanMessage("Hi")]}, config(session_id=bad))
    assert model.sent == []
    with pytest.raises(sessions.InvalidSessionIdError):
        SessionHistoryMiddleware(MemorySession(), session_id=bad if bad != 3.5 else "")
    with pytest.raises(InvalidArgumentError):
        SessionHistoryMiddleware(MemorySession(), limit=-1)


def test_input_the_store_would_refuse_is_refused_before_the_model_is_called() -> None:
    store = MemorySession()
    model = ScriptedChatModel("never")
    bad = ToolMessage("x", tool_call_id="c", artifact=object())  # not JSON
    with pytest.raises(InvalidMessageError) as caught:
        agent_for(store, model).invoke({"messages": [HumanMessage("Hi"), bad]}, config("alice"))
    assert caught.value.index == 1 and caught.value.session_id == "alice"
    assert model.sent == [] and store.get("alice") == []


def test_two_sessions_interleaved_keep_their_own_histories() -> None:
    store = MemorySession()
    model = ScriptedChatModel(*addition("a1"), "Bob here.", *addition("a2"), "Bob again.")
    agent = agent_for(store, model)
    agent.invoke({"messages": [HumanMessage("What is 1 + 2?")]}, config("alice"))
    agent.invoke({"messages": [HumanMessage("I am Bob.")]}, config("bob"))
    agent.invoke({"messages": [HumanMessage("What is 1 + 2?")]}, config("alice"))
    agent.invoke({"messages": [HumanMessage("Still Bob.")]}, config("bob"))
    assert stored_kinds(store, "alice") == TURN + TURN
    assert stored_kinds(store, "bob") == [("user", "I am Bob."), ("assistant", "Bob here."),
                                          ("user", "Still Bob."), ("assistant", "Bob again.")]
    # Bob's model calls never saw Alice's messages.
    assert all("1 + 2" not in str(m.content) for m in model.sent[2] + model.sent[5])


async def test_concurrent_runs_of_two_sessions() -> None:
    store = MemorySession()

    def echo(sent: list[BaseMessage]) -> str:
        return f"echo {sent[-1].content}"

    agent = agent_for(store, ScriptedChatModel(*[echo] * 8))
    await asyncio.gather(*(agent.ainvoke({"messages": [HumanMessage(f"{who} {n}")]}, config(who))
                           for n in range(2) for who in ("alice", "bob")))
    for who in ("alice", "bob"):
        said = [m["content"] for m in store.get(who)]
        assert len(said) == 4 and all(who in text for text in said)


# -- with a LangGraph checkpointer -----------------------------------------------------------


@pytest.mark.parametrize("how", ["invoke", "stream", "ainvoke", "astream"])
def test_with_a_checkpointer_nothing_is_prepended_or_stored_twice(how: str) -> None:
    store = MemorySession()
    store.append("t", HISTORY)
    model = ScriptedChatModel(*addition("c1"), *addition("c2"))
    agent = agent_for(store, model, checkpointer=InMemorySaver())
    run_turn(agent, how, config(thread_id="t"))
    run_turn(agent, how, config(thread_id="t"), "And again?")
    turn2 = [("user", "And again?"), *TURN[1:]]
    assert stored_kinds(store, "t") == [(m["role"], m["content"]) for m in HISTORY] + TURN + turn2
    # The second run's model saw each message once.
    assert kinds(model.sent[2][1:]) == [(k, c) for k, c in kinds(model.sent[1][1:])] + [
        ("AIMessage", "It is 3."), ("HumanMessage", "And again?")]
    # The thread's state holds each stored message once: the first run's as read back
    # through LangChain's model view (a tool result keeps its tool's name), the second
    # run's as it made them.
    state = [to_canonical(m) for m in agent.get_state(config(thread_id="t")).values["messages"]]
    stored = store.get("t")
    assert [{k: v for k, v in m.items() if k != "id"} for m in state[:2]] == HISTORY
    assert state[2:6] == view_of(stored[2:6]).messages and state[6:] == stored[6:]


def test_with_a_checkpointer_the_store_is_the_source_of_truth() -> None:
    store = MemorySession()
    model = ScriptedChatModel("one", "two", "three", "four")
    agent = agent_for(store, model, checkpointer=InMemorySaver())
    cfg = config(session_id="alice", thread_id="thread-1")
    agent.invoke({"messages": [HumanMessage("first")]}, cfg)

    # Another framework continues the conversation: the next run sees it.
    store.append("alice", [{"role": "user", "content": "from the runner"},
                           {"role": "assistant", "content": "runner answer"}])
    agent.invoke({"messages": [HumanMessage("second")]}, cfg)
    assert kinds(model.sent[1][1:]) == [("HumanMessage", "first"), ("AIMessage", "one"),
                                        ("HumanMessage", "from the runner"), ("AIMessage", "runner answer"),
                                        ("HumanMessage", "second")]

    # Cleared elsewhere: the checkpoint does not bring the old messages back.
    store.clear("alice")
    agent.invoke({"messages": [HumanMessage("third")]}, cfg)
    assert kinds(model.sent[2][1:]) == [("HumanMessage", "third")]
    assert stored_kinds(store, "alice") == [("user", "third"), ("assistant", "three")]

    # Rewritten elsewhere: the rewrite is what the next run sees.
    store.replace("alice", [{"role": "user", "content": "rewritten"}])
    result = agent.invoke({"messages": [HumanMessage("fourth")]}, cfg)
    assert kinds(result["messages"]) == [("HumanMessage", "rewritten"), ("HumanMessage", "fourth"),
                                         ("AIMessage", "four")]
    assert stored_kinds(store, "alice") == [("user", "rewritten"), ("user", "fourth"), ("assistant", "four")]


def test_a_thread_moved_to_another_session_carries_nothing_over() -> None:
    store = MemorySession()
    model = ScriptedChatModel("Hi Alice.", "Hi Bob.")
    agent = agent_for(store, model, checkpointer=InMemorySaver())
    agent.invoke({"messages": [HumanMessage("I am Alice.")]}, config("alice", thread_id="shared"))
    result = agent.invoke({"messages": [HumanMessage("I am Bob.")]}, config("bob", thread_id="shared"))
    assert kinds(model.sent[1][1:]) == [("HumanMessage", "I am Bob.")]
    assert kinds(result["messages"]) == [("HumanMessage", "I am Bob."), ("AIMessage", "Hi Bob.")]
    assert stored_kinds(store, "bob") == [("user", "I am Bob."), ("assistant", "Hi Bob.")]
    assert stored_kinds(store, "alice") == [("user", "I am Alice."), ("assistant", "Hi Alice.")]


def test_a_thread_checkpointed_before_the_middleware_moves_into_the_store() -> None:
    saver = InMemorySaver()
    cfg = config(thread_id="t")
    before = create_agent(ScriptedChatModel("Hello."), [add], checkpointer=saver)
    before.invoke({"messages": [HumanMessage("Hi")]}, cfg)
    store = MemorySession()
    model = ScriptedChatModel("Again.")
    agent_for(store, model, checkpointer=saver).invoke({"messages": [HumanMessage("Me again")]}, cfg)
    assert kinds(model.sent[0][1:]) == [("HumanMessage", "Hi"), ("AIMessage", "Hello."),
                                        ("HumanMessage", "Me again")]
    assert stored_kinds(store, "t") == [("user", "Hi"), ("assistant", "Hello."), ("user", "Me again"),
                                        ("assistant", "Again.")]


def test_a_resent_message_object_is_stored_as_said_again() -> None:
    """add_messages gives a message object an id; sending it again is a new turn."""
    store = MemorySession()
    hello = HumanMessage("Hello")
    agent = agent_for(store, ScriptedChatModel("Hi.", "Hi again."))
    agent.invoke({"messages": [hello]}, config("alice"))
    agent.invoke({"messages": [hello]}, config("alice"))
    assert stored_kinds(store, "alice") == [("user", "Hello"), ("assistant", "Hi."),
                                            ("user", "Hello"), ("assistant", "Hi again.")]


# -- runs that do not complete ---------------------------------------------------------------


@pytest.fixture
def adder_down() -> Iterable[None]:
    failing["on"] = True
    yield
    failing["on"] = False


@pytest.mark.parametrize("how", ["invoke", "ainvoke"])
@pytest.mark.usefixtures("adder_down")
def test_a_failing_tool_stores_nothing(how: str) -> None:
    store = MemorySession()
    store.append("alice", HISTORY)
    with pytest.raises(ToolFailed):
        run_turn(agent_for(store, ScriptedChatModel(*addition())), how, config("alice"))
    assert store.get("alice") == HISTORY


@pytest.mark.parametrize("how", ["invoke", "ainvoke"])
def test_a_failing_model_stores_nothing(how: str) -> None:
    store = MemorySession()
    model = ScriptedChatModel(call("add", "c1", a=1, b=2), ConnectionError("model unreachable"))
    with pytest.raises(ConnectionError):
        run_turn(agent_for(store, model), how, config("alice"))
    assert store.get("alice") == []


def test_a_run_whose_messages_the_store_refuses_stores_nothing() -> None:
    @tool(response_format="content_and_artifact")
    def fetch(key: str) -> tuple[str, object]:
        """Fetch a value and the object it came from."""
        return f"value of {key}", object()  # an artifact that is not JSON

    store = MemorySession()
    model = ScriptedChatModel(call("fetch", "c1", key="k"), "Done.")
    agent = create_agent(model, [fetch], middleware=[SessionHistoryMiddleware(store)])
    with pytest.raises(InvalidMessageError) as caught:
        agent.invoke({"messages": [HumanMessage("Fetch k")]}, config("alice"))
    assert caught.value.index == 2 and caught.value.operation == "append"
    assert store.get("alice") == []


def test_a_failed_run_resumed_from_its_checkpoint_is_stored_once_complete(adder_down: None) -> None:
    store = MemorySession()
    agent = agent_for(store, ScriptedChatModel(*addition()), checkpointer=InMemorySaver())
    cfg = config(thread_id="t")
    with pytest.raises(ToolFailed):
        agent.invoke({"messages": [HumanMessage("What is 1 + 2?")]}, cfg)
    assert store.get("t") == []
    failing["on"] = False
    agent.invoke(None, cfg)  # LangGraph retries the failed step
    assert stored_kinds(store, "t") == TURN


@pytest.mark.parametrize("failure", ["tool", "model"])
def test_new_input_after_a_failed_run_leaves_the_failed_run_out(failure: str, adder_down: None) -> None:
    """The failed run stored nothing, so the thread does not carry its half turn on."""
    failing["on"] = failure == "tool"
    store = MemorySession()
    first = [call("add", "c1", a=1, b=2)] + ([] if failure == "tool" else [ConnectionError("down")])
    model = ScriptedChatModel(*first, "Hello again.")
    agent = agent_for(store, model, checkpointer=InMemorySaver())
    cfg = config(thread_id="t")
    with pytest.raises((ToolFailed, ConnectionError)):
        agent.invoke({"messages": [HumanMessage("What is 1 + 2?")]}, cfg)
    failing["on"] = False
    result = agent.invoke({"messages": [HumanMessage("Never mind. Hello!")]}, cfg)
    assert kinds(model.sent[-1][1:]) == [("HumanMessage", "Never mind. Hello!")]
    assert kinds(result["messages"]) == [("HumanMessage", "Never mind. Hello!"),
                                         ("AIMessage", "Hello again.")]
    assert stored_kinds(store, "t") == [("user", "Never mind. Hello!"), ("assistant", "Hello again.")]


def hitl_agent(store: sessions.Session, model: ScriptedChatModel) -> Any:
    return agent_for(store, model, checkpointer=InMemorySaver(),
                     middleware=[HumanInTheLoopMiddleware(interrupt_on={"add": True})])


@pytest.mark.parametrize("asynchronous", [False, True])
def test_an_interrupted_run_stores_nothing_until_it_completes(asynchronous: bool) -> None:
    store = MemorySession()
    store.append("t", HISTORY)
    agent = hitl_agent(store, ScriptedChatModel(*addition()))
    cfg = config(thread_id="t")
    approve = Command(resume={"decisions": [{"type": "approve"}]})

    async def run(payload: Any) -> Any:
        return await agent.ainvoke(payload, cfg) if asynchronous else agent.invoke(payload, cfg)

    paused = asyncio.run(run({"messages": [HumanMessage("What is 1 + 2?")]}))
    assert paused["__interrupt__"]
    assert store.get("t") == HISTORY  # waiting for review: nothing stored
    asyncio.run(run(approve))
    assert stored_kinds(store, "t") == [(m["role"], m["content"]) for m in HISTORY] + TURN


def test_an_interrupted_run_that_is_not_resumed_stays_out() -> None:
    store = MemorySession()
    model = ScriptedChatModel(*addition()[:1], "Sure.")
    agent = hitl_agent(store, model)
    cfg = config(thread_id="t")
    assert agent.invoke({"messages": [HumanMessage("What is 1 + 2?")]}, cfg)["__interrupt__"]
    result = agent.invoke({"messages": [HumanMessage("Forget it, say hi.")]}, cfg)
    assert kinds(result["messages"]) == [("HumanMessage", "Forget it, say hi."), ("AIMessage", "Sure.")]
    assert stored_kinds(store, "t") == [("user", "Forget it, say hi."), ("assistant", "Sure.")]


def test_a_rejected_tool_call_is_stored_with_the_reviewers_answer() -> None:
    store = MemorySession()
    agent = hitl_agent(store, ScriptedChatModel(call("add", "c1", a=1, b=2), "I will not add."))
    cfg = config(thread_id="t")
    agent.invoke({"messages": [HumanMessage("What is 1 + 2?")]}, cfg)
    agent.invoke(Command(resume={"decisions": [{"type": "reject", "message": "no adding"}]}), cfg)
    stored = store.get("t")
    assert [m["role"] for m in stored] == ["user", "assistant", "tool", "assistant"]
    assert stored[2]["tool_call_id"] == "c1" and "no adding" in stored[2]["content"]


# -- what is stored, and what other frameworks see -------------------------------------------


def test_other_frameworks_messages_reach_the_agent_and_the_agents_turn_reaches_them() -> None:
    store = MemorySession()
    # Written as the native runner and the Agents SDK adapter write: tool calls, a
    # Responses-only item, metadata keys LangChain has no field for.
    store.append("alice", [
        {"role": "system", "content": "ignored by nobody"},
        {"role": "user", "content": "Weather in Oslo?", "metadata": {"source": "runner"}},
        {"role": "assistant", "content": None, "tool_calls": [
            {"id": "call_w", "type": "function",
             "function": {"name": "weather", "arguments": '{"city":"Oslo"}'}}]},
        {"role": "tool", "tool_call_id": "call_w", "content": "snow"},
        {"role": "assistant", "content": "Snow in Oslo."},
        {"role": "assistant", "content": None, "x_responses_only": True,
         "x_responses_items": [{"type": "reasoning"}]},
    ])
    model = ScriptedChatModel(*addition())
    agent_for(store, model).invoke({"messages": [HumanMessage("What is 1 + 2?")]}, config("alice"))
    seen = model.sent[0][1:]
    assert kinds(seen) == [("SystemMessage", "ignored by nobody"), ("HumanMessage", "Weather in Oslo?"),
                           ("AIMessage", ""), ("ToolMessage", "snow"), ("AIMessage", "Snow in Oslo."),
                           ("HumanMessage", "What is 1 + 2?")]
    assert isinstance(seen[0], SystemMessage) and seen[2].tool_calls[0]["args"] == {"city": "Oslo"}
    stored = store.get("alice")
    assert stored[1]["metadata"] == {"source": "runner"}  # never rewritten
    assert [m["role"] for m in stored[6:]] == ["user", "assistant", "tool", "assistant"]
    assert "langchain" not in stored[6]  # the agent's turn is plain Chat Completions where it can be


# -- without the langchain package ------------------------------------------------------------


def test_without_langchain_the_adapter_imports_and_the_middleware_names_the_extra() -> None:
    code = textwrap.dedent("""
        import sys

        class NoLangChain:
            def find_spec(self, name, path=None, target=None):
                if name == "langchain" or name.startswith("langchain."):
                    raise ModuleNotFoundError(f"No module named {name!r}", name=name)
                return None

        sys.meta_path.insert(0, NoLangChain())
        import sessions
        import adapters.langchain as lc
        history = lc.SessionChatMessageHistory(sessions.MemorySession(), "s")
        history.add_messages([lc.from_canonical({"role": "user", "content": "hi"})])
        print(len(history.messages), "langgraph" in sys.modules)
        try:
            from adapters.langchain import SessionHistoryMiddleware
        except sessions.MissingDependencyError as error:
            print(error.extra, isinstance(error, ImportError))
            print(error)
    """)
    done = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    first, second, message = done.stdout.splitlines()
    assert first == "1 False"
    assert second == "langchain True"
    assert "SessionHistoryMiddleware" in message and "pip install 'session-layer[langchain]'" in message
