"""One conversation, four frameworks, one stored history.

    python examples/cross_framework.py

A LangChain agent starts the conversation, a LlamaIndex chat memory continues it, the
native runner answers next, an OpenAI Agents SDK run asks a question, and the LangChain
agent ends it with a tool call. Each turn sees everything said before, because all four
read and write the same session.

Where the model comes from:

* ``OPENAI_API_KEY`` unset: nothing leaves the machine. The LangChain agent runs on a
  bundled offline chat model (``examples/_offline_chat_model.py``), the others on a
  local stub (``examples/_stub_server.py``) on 127.0.0.1. Both only recall facts they
  find in the history they are sent, so the later answers show the shared history at
  work.
* ``OPENAI_API_KEY`` set: OpenAI, or ``OPENAI_BASE_URL`` if set; ``OPENAI_MODEL`` picks
  the model (default ``gpt-4o-mini``). The LangChain agent then uses ``ChatOpenAI``
  from ``langchain-openai``, which no extra installs: ``pip install langchain-openai``.

The history lives in ``SESSIONS_URL`` if set, else in a temporary SQLite file.
Needs the extras ``langchain``, ``llamaindex``, ``openai`` and ``agents``.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import tempfile
from collections.abc import Iterator
from typing import Any

import agents
import openai
from langchain.agents import create_agent
from langchain_core.language_models import BaseChatModel
from langchain_core.tools import tool
from llama_index.core.llms import ChatMessage
from llama_index.core.memory import ChatMemoryBuffer

import sessions
from adapters.langchain import SessionChatMessageHistory, SessionHistoryMiddleware
from adapters.llamaindex import SessionChatStore
from adapters.openai_agents import AgentsSession
from adapters.runner import Agent, Runner

MODEL = os.environ.get("OPENAI_MODEL", "gpt-4o-mini")
SESSION_ID = "user-alice"


@contextlib.contextmanager
def model_endpoint() -> Iterator[tuple[str | None, str]]:
    """(base_url, api_key) of the model: the stub, or OpenAI / OPENAI_BASE_URL."""
    if os.environ.get("OPENAI_API_KEY"):
        yield os.environ.get("OPENAI_BASE_URL"), os.environ["OPENAI_API_KEY"]
        return
    from _stub_server import StubServer

    with StubServer() as stub:
        yield stub.base_url, "offline-stub"


def complete(client: openai.OpenAI, messages: list[dict[str, Any]]) -> str:
    response = client.chat.completions.create(model=MODEL, messages=messages)  # type: ignore[arg-type]
    return response.choices[0].message.content or ""


@tool
def recommend_book(topic: str) -> str:
    """Recommend a book about a topic."""
    books = {"python": "Fluent Python by Luciano Ramalho"}
    return books.get(topic.strip().lower(), f"the most recent book about {topic}")


def langchain_model(base_url: str | None, api_key: str) -> BaseChatModel:
    if not os.environ.get("OPENAI_API_KEY"):
        from _offline_chat_model import OfflineChatModel

        return OfflineChatModel()
    try:
        from langchain_openai import ChatOpenAI
    except ImportError:
        raise SystemExit("With OPENAI_API_KEY set, the LangChain agent needs langchain-openai:"
                         " pip install langchain-openai") from None
    return ChatOpenAI(model=MODEL, base_url=base_url, api_key=api_key)  # type: ignore[arg-type]


def langchain_turn(store: sessions.Session, model: BaseChatModel, question: str) -> str:
    agent = create_agent(model, [recommend_book], system_prompt="You are a helpful assistant.",
                         middleware=[SessionHistoryMiddleware(store)])
    result = agent.invoke({"messages": [{"role": "user", "content": question}]},
                          {"configurable": {"session_id": SESSION_ID}})
    return str(result["messages"][-1].text)


def llamaindex_turn(store: sessions.Session, client: openai.OpenAI, question: str) -> str:
    memory = ChatMemoryBuffer.from_defaults(chat_store=SessionChatStore(store), chat_store_key=SESSION_ID)
    memory.put(ChatMessage(role="user", content=question))
    history = [{"role": str(m.role.value), "content": m.content or ""} for m in memory.get()]
    answer = complete(client, history)
    memory.put(ChatMessage(role="assistant", content=answer))
    return answer


def runner_turn(store: sessions.Session, client: openai.OpenAI, question: str) -> str:
    agent = Agent("Assistant", instructions="You are a helpful assistant.", model=MODEL)
    result = Runner(client).run_sync(agent, question, session=store, session_id=SESSION_ID)
    return str(result.final_output)


def agents_sdk_turn(store: sessions.Session, base_url: str | None, api_key: str, question: str) -> str:
    async def run() -> str:
        async with openai.AsyncOpenAI(base_url=base_url, api_key=api_key) as client:
            agent = agents.Agent(
                name="Assistant", instructions="You are a helpful assistant.",
                model=agents.OpenAIChatCompletionsModel(model=MODEL, openai_client=client),
            )
            result = await agents.Runner.run(agent, question, session=AgentsSession(store, SESSION_ID))
            return str(result.final_output)

    return asyncio.run(run())


def main() -> None:
    agents.set_tracing_disabled(True)  # traces would otherwise be sent to OpenAI
    with tempfile.TemporaryDirectory() as scratch:
        url = os.environ.get("SESSIONS_URL") or f"sqlite:///{scratch}/history.db"
        store = sessions.connect(url)
        store.delete(SESSION_ID)
        with model_endpoint() as (base_url, api_key):
            client = openai.OpenAI(base_url=base_url, api_key=api_key)
            model = langchain_model(base_url, api_key)
            print("LangChain  >", langchain_turn(store, model, "My name is Alice."))
            print("LlamaIndex >", llamaindex_turn(store, client, "I like Python."))
            print("runner     >", runner_turn(store, client, "What's my name?"))
            print("Agents SDK >", agents_sdk_turn(store, base_url, api_key, "What do I like?"))
            print("LangChain  >", langchain_turn(store, model, "Can you recommend me a book?"))
            client.close()
        print(f"\n{store.count(SESSION_ID)} messages stored once, read back by LangChain:")
        for message in SessionChatMessageHistory(store, SESSION_ID).messages:
            calls = "".join(f"{call['name']}({call['args']})" for call in getattr(message, "tool_calls", ()))
            print(f"  {message.type:>6}: {message.content or calls}")
        store.close()


if __name__ == "__main__":
    main()
