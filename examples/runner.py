"""The native runner remembers a conversation through a session (the Alice example).

    python examples/runner.py

Where the model comes from:

* ``OPENAI_API_KEY`` unset: a small local stub (``examples/_stub_server.py``) on
  127.0.0.1 answers; nothing leaves the machine. The stub only recalls facts it finds
  in the history it is sent, so the second answer shows the session at work.
* ``OPENAI_API_KEY`` set: OpenAI itself, or ``OPENAI_BASE_URL`` if that is set too
  (any Chat Completions compatible server); ``OPENAI_MODEL`` picks the model
  (default ``gpt-4o-mini``).

The history lives in ``SESSIONS_URL`` if set, else in memory for this run.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
from collections.abc import AsyncIterator

import openai

import sessions
from adapters.runner import Agent, Runner


@contextlib.asynccontextmanager
async def model_client() -> AsyncIterator[tuple[openai.AsyncOpenAI, str]]:
    if os.environ.get("OPENAI_API_KEY"):
        async with openai.AsyncOpenAI() as client:
            yield client, f"model: {os.environ.get('OPENAI_MODEL', 'gpt-4o-mini')} at {client.base_url}"
        return
    from _stub_server import StubServer

    with StubServer() as stub:
        async with openai.AsyncOpenAI(base_url=stub.base_url, api_key="offline-stub") as client:
            yield client, f"model: the offline stub at {stub.base_url} (set OPENAI_API_KEY for OpenAI)"


async def main() -> None:
    url = os.environ.get("SESSIONS_URL")
    store = sessions.connect(url) if url else sessions.MemorySession()
    session_id = "user-alice"
    await store.adelete(session_id)  # start from scratch

    agent = Agent(
        "Assistant",
        instructions="You are a helpful assistant who remembers context",
        model=os.environ.get("OPENAI_MODEL", "gpt-4o-mini"),
    )
    async with model_client() as (client, where):
        print(where)
        runner = Runner(client)

        # First interaction.
        result1 = await runner.run(
            agent, [{"role": "user", "content": "My name is Alice and I like Go programming"}],
            session=store, session_id=session_id,
        )
        print("Response 1:", result1.final_output)

        # Second interaction: the runner loads the first one from the session.
        result2 = await runner.run(
            agent, [{"role": "user", "content": "What's my name and what do I like?"}],
            session=store, session_id=session_id,
        )
        print("Response 2:", result2.final_output)

    print(f"\nstored in {session_id!r} (no system instructions):")
    for message in await store.aget(session_id):
        print(f"  {message['role']:>9}: {message['content']}")
    print(f"tokens used: {result1.usage.total_tokens + result2.usage.total_tokens}")
    await store.aclose()


if __name__ == "__main__":
    asyncio.run(main())
