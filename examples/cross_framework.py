"""One conversation, four frameworks, one stored history.

    python examples/cross_framework.py

A LangChain chain starts the conversation, a LlamaIndex chat memory continues it, the
native runner answers next, and an OpenAI Agents SDK run asks the last question. Each
turn sees everything said before, because all four read and write the same session.

Where the model comes from:

* ``OPENAI_API_KEY`` unset: the local stub (``examples/_stub_server.py``) on 127.0.0.1;
  nothing leaves the machine. It only recalls facts it finds in the history it is
  sent, so the later answers show the shared history at work.
* ``OPENAI_API_KEY`` set: OpenAI, or ``OPENAI_BASE_URL`` if set; ``OPENAI_MODEL`` picks
  the model (default ``gpt-4o-mini``).

The history lives in ``SESSIONS_URL`` if set, else in a temporary SQLite file.
Needs the extras ``langchain``, ``llamaindex``, ``openai`` and ``agents``.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import tempfile
import warnings
from collections.abc import Iterator
from typing import Any

import agents
import openai
from langchain_core.messages import AIMessage, BaseMessage, convert_to_openai_messages
from langchain_core.prompts import ChatPromptTemplate, MessagesPlaceholder
from langchain_core.runnables import RunnableLambda
from langchain_core.runnables.history import RunnableWithMessageHistory
from llama_index.core.llms import ChatMessage
from llama_index.core.memory import ChatMemoryBuffer

import sessions
from adapters.langchain import SessionChatMessageHistory, session_history_factory
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


def langchain_turn(store: sessions.Session, client: openai.OpenAI, question: str) -> str:
    def model(prompt: Any) -> AIMessage:
        messages: list[BaseMessage] = prompt.to_messages()
        return AIMessage(complete(client, convert_to_openai_messages(messages)))  # type: ignore[arg-type]

    prompt = ChatPromptTemplate.from_messages(
        [("system", "You are a helpful assistant."), MessagesPlaceholder("history"), ("human", "{question}")]
    )
    with warnings.catch_warnings():  # RunnableWithMessageHistory is marked beta
        warnings.simplefilter("ignore")
        chain = RunnableWithMessageHistory(
            prompt | RunnableLambda(model), session_history_factory(store),
            input_messages_key="question", history_messages_key="history",
        )
    answer = chain.invoke({"question": question}, config={"configurable": {"session_id": SESSION_ID}})
    return str(answer.content)


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
            print("LangChain  >", langchain_turn(store, client, "My name is Alice."))
            print("LlamaIndex >", llamaindex_turn(store, client, "I like Python."))
            print("runner     >", runner_turn(store, client, "What's my name?"))
            print("Agents SDK >", agents_sdk_turn(store, base_url, api_key, "What do I like?"))
            client.close()
        print(f"\n{store.count(SESSION_ID)} messages stored once, read back by LangChain:")
        for message in SessionChatMessageHistory(store, SESSION_ID).messages:
            print(f"  {message.type:>6}: {message.content}")
        store.close()


if __name__ == "__main__":
    main()
