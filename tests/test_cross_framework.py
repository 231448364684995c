"""One conversation through every framework: a LangChain chain, LlamaIndex, our runner,
the Agents SDK and a LangChain agent. Each reads the whole history back intact and in
order."""

from __future__ import annotations

import warnings
from typing import Any

import openai
from langchain.agents import create_agent
from langchain_core.language_models.fake_chat_models import GenericFakeChatModel
from langchain_core.messages import AIMessage, HumanMessage, ToolMessage
from langchain_core.prompts import ChatPromptTemplate, MessagesPlaceholder
from langchain_core.runnables.history import RunnableWithMessageHistory
from langchain_core.tools import tool
from llama_index.core.chat_engine import SimpleChatEngine
from llama_index.core.llms import MockLLM
from llama_index.core.memory import ChatMemoryBuffer

import sessions
from adapters.langchain import SessionChatMessageHistory, SessionHistoryMiddleware, session_history_factory
from adapters.llamaindex import SessionChatStore
from adapters.openai_agents import AgentsSession
from adapters.runner import Agent, Runner, function_tool
from tests.chat_server import ChatServer, Reply, calls
from tests.langchain_models import ScriptedChatModel, call

SID = "cross-framework"
IMAGE = {"role": "user", "content": [
    {"type": "text", "text": "What is in this picture?"},
    {"type": "image_url", "image_url": {"url": "data:image/png;base64,iVBORw0KGgo="}},
]}


def _langchain_turn(store: sessions.Session) -> None:
    prompt = ChatPromptTemplate.from_messages([
        ("system", "You are helpful."), MessagesPlaceholder("history"), ("human", "{question}"),
    ])
    model = GenericFakeChatModel(messages=iter(["Hello Alice, noted."]))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        chain = RunnableWithMessageHistory(
            prompt | model, session_history_factory(store),
            input_messages_key="question", history_messages_key="history",
        )
    chain.invoke({"question": "My name is Alice."}, config={"configurable": {"session_id": SID}})
    # A tool-call exchange and an image, written through the LangChain history.
    SessionChatMessageHistory(store, SID).add_messages([
        AIMessage("", tool_calls=[{"id": "call_lc", "name": "lookup", "args": {"q": "Alice"}}]),
        ToolMessage("Alice likes Python", tool_call_id="call_lc"),
    ])
    store.append(SID, [IMAGE, {"role": "assistant", "content": "A cat."}])


async def test_one_conversation_through_every_framework(
    framework_store: sessions.Session, chat_server: ChatServer
) -> None:
    from agents import Agent as SDKAgent
    from agents import OpenAIChatCompletionsModel
    from agents import Runner as SDKRunner
    from agents import function_tool as sdk_tool

    store = framework_store
    _langchain_turn(store)
    after_langchain = store.get(SID)
    assert len(after_langchain) == 6

    # LlamaIndex continues the same conversation and sees all of it.
    memory = ChatMemoryBuffer.from_defaults(chat_store=SessionChatStore(store), chat_store_key=SID,
                                            token_limit=100_000)
    seen = memory.get_all()
    roles = ["user", "assistant", "assistant", "tool", "user", "assistant"]
    assert [str(m.role.value) for m in seen] == roles
    engine = SimpleChatEngine.from_defaults(llm=MockLLM(max_tokens=3), memory=memory)
    engine.chat("What do I like?")
    after_llamaindex = store.get(SID)
    assert after_llamaindex[:6] == after_langchain and len(after_llamaindex) == 8

    # Our runner, with a tool call, reads everything and appends only the new messages.
    @function_tool
    def favourite(topic: str) -> str:
        """Look up a favourite.

        Args:
            topic: what to look up.
        """
        return f"{topic}: Python"

    client = openai.AsyncOpenAI(base_url=chat_server.base_url, api_key="test", max_retries=0)
    chat_server.script(calls(("call_rn", "favourite", {"topic": "language"})), Reply("You like Python."))
    result = await Runner(client).run(Agent("helper", instructions="Be brief.", tools=[favourite]),
                                      "Remind me what I like.", session=store, session_id=SID)
    assert result.final_output == "You like Python."
    first_request = chat_server.requests[-2]["messages"]
    assert first_request[0]["role"] == "system"
    # The model sees every earlier message (keys Chat Completions does not know are not sent).
    assert [(m["role"], m.get("content")) for m in first_request[1:9]] == [
        (m["role"], m.get("content")) for m in after_llamaindex]
    after_runner = store.get(SID)
    assert after_runner[:8] == after_llamaindex
    assert [m["role"] for m in after_runner[8:]] == ["user", "assistant", "tool", "assistant"]

    # The Agents SDK continues with its own tool call.
    @sdk_tool
    def weather(city: str) -> str:
        """The weather in a city."""
        return f"{city}: snow"

    chat_server.script(calls(("call_sdk", "weather", {"city": "Oslo"})), Reply("Snow in Oslo."))
    sdk_agent = SDKAgent(name="sdk", instructions="Be brief.", tools=[weather],
                         model=OpenAIChatCompletionsModel(model="test", openai_client=client))
    run = await SDKRunner.run(sdk_agent, "Weather in Oslo?", session=AgentsSession(store, SID))
    assert run.final_output == "Snow in Oslo."
    final = store.get(SID)
    assert final[:12] == after_runner
    assert [m["role"] for m in final[12:]] == ["user", "assistant", "tool", "assistant"]
    assert final[13]["tool_calls"][0]["id"] == "call_sdk" and final[14]["tool_call_id"] == "call_sdk"

    # A LangChain agent (create_agent with the middleware) sees all of it and adds a tool call.
    @tool
    def editor(person: str) -> str:
        """The editor a person uses."""
        return f"{person} uses Vim"

    model = ScriptedChatModel(call("editor", "call_agent", person="Alice"), "You use Vim.")
    agent = create_agent(model, [editor], system_prompt="Be brief.",
                         middleware=[SessionHistoryMiddleware(store)])
    await agent.ainvoke({"messages": [HumanMessage("Which editor do I use?")]},
                        {"configurable": {"session_id": SID}})
    seen = model.sent[0][1:]  # after the system prompt
    assert [m.type for m in seen] == [m["role"].replace("user", "human").replace("assistant", "ai")
                                      for m in final] + ["human"]
    assert seen[0].content == "My name is Alice." and seen[4].content == IMAGE["content"]
    assert [c["id"] for m in seen if isinstance(m, AIMessage) for c in m.tool_calls] == [
        "call_lc", "call_rn", "call_sdk"]
    with_agent = store.get(SID)
    assert with_agent[:16] == final
    assert [m["role"] for m in with_agent[16:]] == ["user", "assistant", "tool", "assistant"]
    assert with_agent[17]["tool_calls"][0]["id"] == "call_agent"
    assert with_agent[18]["content"] == "Alice uses Vim"

    # The runner's next model request carries the agent's turn.
    chat_server.script(Reply("Noted."))
    await Runner(client).run(Agent("helper", instructions="Be brief."), "Thanks.",
                             session=store, session_id=SID)
    sent = chat_server.requests[-1]["messages"]
    assert [m["role"] for m in sent[17:21]] == ["user", "assistant", "tool", "assistant"]
    assert sent[18]["tool_calls"][0]["id"] == "call_agent" and sent[19]["content"] == "Alice uses Vim"
    final = store.get(SID)
    await client.close()

    # Every framework reads the whole conversation back, in order.
    lc = SessionChatMessageHistory(store, SID).messages
    assert len(lc) == len(final)
    assert isinstance(lc[0], HumanMessage) and lc[0].content == "My name is Alice."
    assert lc[2].tool_calls[0]["id"] == "call_lc" and lc[13].tool_calls[0]["id"] == "call_sdk"
    assert lc[4].content == IMAGE["content"]
    li = SessionChatStore(store).get_messages(SID)
    assert len(li) == len(final)
    assert [str(m.role.value) for m in li] == [m["role"] for m in final]
    items: list[Any] = await AgentsSession(store, SID).get_items()
    assert any(i.get("type") == "function_call" and i.get("call_id") == "call_lc" for i in items)
    assert any(i.get("type") == "function_call_output" and i.get("call_id") == "call_rn" for i in items)
    assert any(i.get("type") == "function_call" and i.get("call_id") == "call_agent" for i in items)
