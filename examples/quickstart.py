"""A tour of the session layer on the embedded SQLite default. No API key needed.

    python examples/quickstart.py

Writes ``sessions.db`` in the working directory (or uses ``SESSIONS_URL`` if set).
"""

from __future__ import annotations

import asyncio

import sessions


def main() -> None:
    store = sessions.connect()  # SESSIONS_URL, or sqlite:///sessions.db
    print(f"store: {store!r}")
    session_id = "user-alice"
    store.delete(session_id)  # start the tour from scratch

    # History is canonical Chat Completions messages: plain dicts, tool calls included.
    store.append(session_id, [
        {"role": "user", "content": "My name is Alice and I like Python."},
        {"role": "assistant", "content": None, "tool_calls": [
            {"id": "call_1", "type": "function",
             "function": {"name": "remember", "arguments": '{"fact": "likes Python"}'}},
        ]},
        {"role": "tool", "tool_call_id": "call_1", "content": "stored"},
        {"role": "assistant", "content": "Nice to meet you, Alice!"},
    ])
    store.append(session_id, [{"role": "user", "content": "What do I like?"}])

    print(f"\n{store.count(session_id)} messages in {session_id!r}:")
    for message in store.get(session_id):
        shown = message.get("content") or message.get("tool_calls")
        print(f"  {message['role']:>9}: {shown}")

    print("\nthe last two, for a model with a short context:")
    for message in store.get(session_id, limit=2):
        print(f"  {message['role']:>9}: {message['content']}")

    info = store.info(session_id)
    assert info is not None
    print(f"\ninfo: {info.message_count} messages, created {info.created_at:%Y-%m-%d %H:%M:%S} UTC")

    # Bad input is refused before anything is written.
    try:
        store.append(session_id, [{"role": "user", "content": "ok"}, {"role": "robot"}])
    except sessions.InvalidMessageError as error:
        print(f"refused: {error}")
    print(f"still {store.count(session_id)} messages")

    # Every method has an async twin that never blocks the event loop.
    async def in_async_code() -> None:
        await store.aappend(session_id, [{"role": "assistant", "content": "You like Python."}])
        last = await store.aget(session_id, limit=1)
        print(f"\nasync read of the last message: {last[0]['content']}")

    asyncio.run(in_async_code())

    print("sessions in the store:", ", ".join(sorted(store.list_sessions())))
    store.close()


if __name__ == "__main__":
    main()
