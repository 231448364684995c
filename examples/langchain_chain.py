"""A LangChain chain whose memory lives in the session layer (embedded SQLite).

    python examples/langchain_chain.py

Without ``OPENAI_API_KEY`` the chain runs offline on langchain-core's fake chat model.
With it, the chain uses ``langchain-openai``'s ``ChatOpenAI`` (``pip install
langchain-openai``); ``OPENAI_BASE_URL`` points it at any compatible server and
``OPENAI_MODEL`` picks the model (default ``gpt-4o-mini``). The history is written to
``sessions.db`` in the working directory (or to ``SESSIONS_URL``), as canonical Chat
Completions messages that every other framework adapter reads.
"""

from __future__ import annotations

import os
import sys
import warnings
from typing import Any

from langchain_core.language_models.fake_chat_models import GenericFakeChatModel
from langchain_core.prompts import ChatPromptTemplate, MessagesPlaceholder
from langchain_core.runnables.history import RunnableWithMessageHistory

import sessions
from adapters.langchain import SessionChatMessageHistory, session_history_factory

QUESTIONS = [
    "Hi, I'm Alice and I like Python.",
    "What's my name?",
    "And which language do I like?",
]


def chat_model() -> Any:
    """ChatOpenAI when a key is set, else a scripted fake model that needs no network."""
    if not os.environ.get("OPENAI_API_KEY"):
        print("OPENAI_API_KEY is not set: using langchain-core's fake chat model (offline).\n")
        return GenericFakeChatModel(messages=iter([
            "Nice to meet you, Alice!",
            "Your name is Alice.",
            "You like Python.",
        ]))
    try:
        from langchain_openai import ChatOpenAI
    except ImportError:
        sys.exit("OPENAI_API_KEY is set but langchain-openai is not installed: "
                 "pip install langchain-openai (or unset OPENAI_API_KEY to run offline).")
    model = os.environ.get("OPENAI_MODEL", "gpt-4o-mini")
    where = os.environ.get("OPENAI_BASE_URL", "the OpenAI API")
    print(f"Using ChatOpenAI ({model}) at {where}.\n")
    return ChatOpenAI(model=model)  # reads OPENAI_API_KEY and OPENAI_BASE_URL itself


def main() -> None:
    store = sessions.connect()  # SESSIONS_URL, or sqlite:///sessions.db
    session_id = "langchain-example-alice"
    store.delete(session_id)  # start the example from scratch

    prompt = ChatPromptTemplate.from_messages([
        ("system", "You are a friendly assistant. Answer in one short sentence."),
        MessagesPlaceholder("history"),
        ("human", "{question}"),
    ])
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # LangChain marks RunnableWithMessageHistory deprecated
        chain = RunnableWithMessageHistory(
            prompt | chat_model(),
            session_history_factory(store, limit=20),  # the model sees the last 20 messages
            input_messages_key="question",
            history_messages_key="history",
        )

    config: Any = {"configurable": {"session_id": session_id}}
    for question in QUESTIONS:
        answer = chain.invoke({"question": question}, config=config)
        print(f"user:      {question}\nassistant: {answer.content}\n")

    print("Stored as canonical messages (what LlamaIndex or the OpenAI runner would read):")
    for message in store.get(session_id):
        print(f"  {message['role']:>9}: {message['content']}")
    history = SessionChatMessageHistory(store, session_id)
    print(f"\nRead back through LangChain: {len(history.messages)} messages.")
    store.close()


if __name__ == "__main__":
    main()
