"""A LlamaIndex chat engine whose memory lives in the session layer (SQLite).

    python examples/llamaindex_chat_engine.py

Without ``OPENAI_API_KEY`` it runs offline with LlamaIndex's ``MockLLM``. With the key
set it talks to OpenAI through ``llama-index-llms-openai`` (``pip install
llama-index-llms-openai``); ``OPENAI_BASE_URL`` points it at any compatible server and
``OPENAI_MODEL`` picks the model (``gpt-4o-mini`` by default; LlamaIndex's ``OpenAI``
class knows OpenAI's model names only; for other names on a compatible server use
``llama_index.llms.openai_like.OpenAILike``).

History is kept in ``SESSIONS_URL`` (default ``sqlite:///llamaindex_example.db``) under
the session id ``llamaindex-example``: run the script twice and the second run
remembers the first.
"""

from __future__ import annotations

import os
import sys

from llama_index.core.chat_engine import SimpleChatEngine
from llama_index.core.llms import LLM, MockLLM
from llama_index.core.memory import ChatMemoryBuffer

from adapters.llamaindex import SessionChatStore

SESSION_ID = "llamaindex-example"


def make_llm() -> LLM:
    """OpenAI when a key is set, else an offline mock that answers 'text text ...'."""
    if not os.environ.get("OPENAI_API_KEY"):
        print("OPENAI_API_KEY is not set: answering offline with MockLLM.\n")
        return MockLLM(max_tokens=8)
    try:
        from llama_index.llms.openai import OpenAI
    except ImportError:
        sys.exit(
            "OPENAI_API_KEY is set, but the OpenAI LLM for LlamaIndex is not installed: "
            "pip install llama-index-llms-openai (or unset OPENAI_API_KEY to run offline)."
        )
    model = os.environ.get("OPENAI_MODEL", "gpt-4o-mini")
    base_url = os.environ.get("OPENAI_BASE_URL")  # None: api.openai.com
    print(f"Using {model} at {base_url or 'https://api.openai.com/v1'}.\n")
    llm: LLM = OpenAI(model=model, api_base=base_url)
    return llm


def main() -> None:
    url = os.environ.get("SESSIONS_URL", "sqlite:///llamaindex_example.db")
    # window=50: each turn reads only the last 50 messages, however long the history.
    chat_store = SessionChatStore.from_url(url, window=50)
    memory = ChatMemoryBuffer.from_defaults(
        chat_store=chat_store, chat_store_key=SESSION_ID, token_limit=3000
    )
    engine = SimpleChatEngine.from_defaults(
        llm=make_llm(), memory=memory, system_prompt="You are a concise assistant."
    )
    earlier = chat_store.session.count(SESSION_ID)
    if earlier:
        print(f"Continuing a conversation of {earlier} stored messages.\n")

    for question in ("Hi, I'm Alice. I like Python.", "What do I like?"):
        print(f"user: {question}")
        print(f"assistant: {engine.chat(question)}\n")

    # The same history, as canonical messages any other adapter can read.
    print(f"Stored in {url} under {SESSION_ID!r} (last 4 messages):")
    for message in chat_store.session.get(SESSION_ID, limit=4):
        print(f"  {message}")
    chat_store.session.close()


if __name__ == "__main__":
    main()
