"""Peer stores written by the peer libraries themselves, for the source tests and the
migration benchmark.

Each :class:`Peer` names one store layout a source reads (``adapters/sources``): how to
write histories into it with the peer library's own API, how the peer reads them back
(its own read, the reference), and the ``sessions.connect`` URL of the source. The
histories are realistic for each framework: a system prompt, user turns in several
scripts, tool calls and their results, images, and long sessions.
"""

from __future__ import annotations

import asyncio
import contextlib
import importlib.metadata
import json
import uuid
from collections.abc import AsyncIterator, Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

__all__ = [
    "PEERS",
    "Peer",
    "PeerStore",
    "Place",
    "agents_items",
    "canonical",
    "history",
    "langchain_messages",
    "llamaindex_messages",
    "session_ids",
]

PNG = "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mNk+M9QDwADhgGAWjR9awAAAABJRU5ErkJggg=="
CITIES = ("Zürich", "東京", "São Paulo", "Kraków", "Αθήνα", "القاهرة")


@dataclass(frozen=True)
class Place:
    """Where a test or benchmark may create peer stores: a scratch directory, the
    PostgreSQL and Redis servers, and a name unique to this run (tables, key prefixes)."""

    directory: Path
    postgres: str  # postgresql://user@host:port/db
    redis: str  # redis://host:port/db
    unique: str  # lowercase letters and digits


def _city(turn: int) -> str:
    return CITIES[turn % len(CITIES)]


# -- histories, in each framework's own message type ---------------------------------------


def langchain_messages(count: int, seed: int = 0) -> list[Any]:
    """About ``count`` LangChain messages: turns of question, tool call, tool result and
    answer; every fifth question carries an image (a Chat Completions part or a LangChain
    1.x content block)."""
    from langchain_core.messages import AIMessage, HumanMessage, SystemMessage, ToolMessage

    messages: list[Any] = [SystemMessage("You are a travel assistant. Réponds brièvement.")]
    turn = seed
    while len(messages) < count:
        city, call = _city(turn), f"call_{seed}_{turn}"
        if turn % 10 == 0:
            messages.append(HumanMessage(content=[
                {"type": "text", "text": f"Where is this? ({turn}) 📷"},
                {"type": "image_url", "image_url": {"url": f"data:image/png;base64,{PNG}"}},
            ]))
        elif turn % 5 == 0:  # LangChain 1.x standard content blocks
            blocks: list[Any] = [{"type": "text", "text": f"And this one? ({turn}) 🖼"},
                                 {"type": "image", "base64": PNG, "mime_type": "image/png"}]
            messages.append(HumanMessage(content_blocks=blocks))
        else:
            messages.append(HumanMessage(f"Weather in {city}? ({turn}) 🌦", id=f"human-{seed}-{turn}"))
        messages.append(AIMessage(
            "", id=f"ai-{seed}-{turn}", tool_calls=[{"id": call, "name": "weather",
                                                     "args": {"city": city, "unit": "°C"}}],
            response_metadata={"model_name": "gpt-4o-mini", "finish_reason": "tool_calls"},
            usage_metadata={"input_tokens": 40 + turn, "output_tokens": 12, "total_tokens": 52 + turn},
        ))
        messages.append(ToolMessage(json.dumps({"city": city, "temp": turn % 30}, ensure_ascii=False),
                                    tool_call_id=call, name="weather"))
        messages.append(AIMessage(f"It is {turn % 30} °C in {city} — 晴れ.", id=f"answer-{seed}-{turn}"))
        turn += 1
    return _whole_turns(messages[:count], count, lambda m: m.type == "ai" and not m.tool_calls,
                        lambda n: HumanMessage(f"Thanks! ({n})"), lambda n: AIMessage("You're welcome."))


def llamaindex_messages(count: int, seed: int = 0) -> list[Any]:
    """About ``count`` LlamaIndex ``ChatMessage`` objects: tool calls as an OpenAI LLM
    records them (``additional_kwargs``) and as ``ToolCallBlock`` blocks, tool results,
    images as bytes and as URLs."""
    from llama_index.core.base.llms.types import (
        ChatMessage,
        ImageBlock,
        MessageRole,
        TextBlock,
        ToolCallBlock,
    )

    messages: list[Any] = [ChatMessage(role=MessageRole.SYSTEM, content="You are a travel assistant.")]
    turn = seed
    while len(messages) < count:
        city, call = _city(turn), f"call_{seed}_{turn}"
        if turn % 5 == 0:
            image = (ImageBlock(image=PNG.encode(), image_mimetype="image/png") if turn % 10 == 0
                     else ImageBlock(url=f"https://example.com/{turn}.png"))
            messages.append(ChatMessage(role=MessageRole.USER,
                                        blocks=[TextBlock(text=f"Where is this? ({turn}) 📷"), image]))
        else:
            messages.append(ChatMessage(role=MessageRole.USER, content=f"Weather in {city}? ({turn}) 🌦"))
        arguments = {"city": city}
        if turn % 2:
            messages.append(ChatMessage(role=MessageRole.ASSISTANT, blocks=[
                ToolCallBlock(tool_call_id=call, tool_name="weather", tool_kwargs=arguments)]))
        else:
            messages.append(ChatMessage(role=MessageRole.ASSISTANT, content="", additional_kwargs={
                "tool_calls": [{"id": call, "type": "function", "function": {
                    "name": "weather", "arguments": json.dumps(arguments, ensure_ascii=False)}}]}))
        messages.append(ChatMessage(role=MessageRole.TOOL, content=f"{turn % 30} °C",
                                    additional_kwargs={"tool_call_id": call, "name": "weather"}))
        messages.append(ChatMessage(role=MessageRole.ASSISTANT, content=f"It is {turn % 30} °C in {city}."))
        turn += 1
    return _whole_turns(
        messages[:count], count,
        lambda m: m.role == MessageRole.ASSISTANT and not m.additional_kwargs
        and not any(isinstance(b, ToolCallBlock) for b in m.blocks),
        lambda n: ChatMessage(role=MessageRole.USER, content=f"Thanks! ({n})"),
        lambda n: ChatMessage(role=MessageRole.ASSISTANT, content="You're welcome."))


def agents_items(count: int, seed: int = 0) -> list[dict[str, Any]]:
    """About ``count`` Responses input items as ``agents.Runner`` stores them: user
    input, function calls and outputs, output messages, reasoning, images."""
    items: list[dict[str, Any]] = []
    turn = seed
    while len(items) < count:
        city, call = _city(turn), f"call_{seed}_{turn}"
        if turn % 5 == 0:
            items.append({"role": "user", "content": [
                {"type": "input_text", "text": f"Where is this? ({turn}) 📷"},
                {"type": "input_image", "image_url": f"data:image/png;base64,{PNG}", "detail": "auto"},
            ]})
        else:
            items.append({"role": "user", "content": f"Weather in {city}? ({turn}) 🌦"})
        if turn % 7 == 3:
            items.append({"type": "reasoning", "id": f"rs_{seed}_{turn}", "summary": [
                {"type": "summary_text", "text": "The user wants the weather."}]})
        items.append({"type": "function_call", "id": f"fc_{seed}_{turn}", "call_id": call,
                      "name": "weather", "arguments": json.dumps({"city": city}, ensure_ascii=False),
                      "status": "completed"})
        items.append({"type": "function_call_output", "call_id": call, "output": f"{turn % 30} °C"})
        items.append({"type": "message", "role": "assistant", "id": f"msg_{seed}_{turn}",
                      "status": "completed", "content": [
                          {"type": "output_text", "text": f"It is {turn % 30} °C in {city} — 晴れ.",
                           "annotations": [], "logprobs": []}]})
        turn += 1
    return _whole_turns(
        items[:count], count, lambda i: i.get("type") == "message" and i["role"] == "assistant",
        lambda n: {"role": "user", "content": f"Thanks! ({n})"},
        lambda n: {"type": "message", "role": "assistant", "id": f"msg_{seed}_end_{n}",
                   "status": "completed", "content": [{"type": "output_text", "text": "You're welcome.",
                                                       "annotations": [], "logprobs": []}]})


def _whole_turns(history: list[Any], count: int, is_answer: Callable[[Any], bool],
                 question: Callable[[int], Any], answer: Callable[[int], Any]) -> list[Any]:
    """``history`` cut back to its last answer, then topped up to ``count`` with short
    exchanges: a stored session ends after a turn, not with a call or reasoning left
    waiting for what follows (an interrupted run), which frameworks leave out of a read."""
    while history and not is_answer(history[-1]):
        history.pop()
    while len(history) < count:
        history.append(answer(len(history)) if history and not is_answer(history[-1])
                       else question(len(history)))
    return history


def canonical(family: str, stored: list[Any]) -> list[dict[str, Any]]:
    """What the adapter converters make of a peer's own read."""
    if family == "langchain":
        from adapters.langchain import to_canonical as langchain_to_canonical

        return [langchain_to_canonical(m) for m in stored]
    if family == "llamaindex":
        from adapters.llamaindex import to_canonical as llamaindex_to_canonical

        return [llamaindex_to_canonical(m) for m in stored]
    from adapters.openai_agents import items_to_messages

    return items_to_messages(stored)


def history(family: str, count: int, seed: int) -> list[Any]:
    make: Callable[[int, int], list[Any]] = {
        "langchain": langchain_messages, "llamaindex": llamaindex_messages, "agents": agents_items,
    }[family]
    return make(count, seed)


# -- the peer stores ---------------------------------------------------------------------------


class PeerStore:
    """One peer store: write histories with the peer's API, read them as the peer does."""

    url: str

    def write(self, histories: dict[str, list[Any]]) -> None:
        raise NotImplementedError

    def read_all(self, session_ids: list[str]) -> dict[str, list[Any]]:
        """The peer's own read of each session, one setup (client, engine) for all."""
        raise NotImplementedError

    def read(self, session_id: str) -> list[Any]:
        return self.read_all([session_id])[session_id]

    def remove(self) -> None:
        """Delete what this store created on a server (tables, keys); files stay."""


@dataclass(frozen=True)
class Peer:
    """A peer store layout: its URL scheme, framework family and how to open it."""

    scheme: str
    family: str
    #: The peer class that writes it, for reports: "langchain-community SQLChatMessageHistory".
    writer: str
    #: The distribution whose version is reported.
    distribution: str
    #: What it needs: "sqlite", "file", "postgres" or "redis".
    server: str
    open: Callable[[Place], PeerStore]

    @property
    def version(self) -> str:
        try:
            return importlib.metadata.version(self.distribution)
        except importlib.metadata.PackageNotFoundError:
            return "not installed"

    @property
    def name(self) -> str:
        return f"{self.scheme} ({self.writer})"


def session_ids(peer: Peer, count: int) -> list[str]:
    """Session ids the peer accepts: UUIDs where it requires them, else readable ones."""
    if peer.scheme.startswith("langchain-postgres"):
        return [str(uuid.UUID(int=i + 1)) for i in range(count)]
    names = ["alice", "bøb:42", "客户-7"]
    return [names[i] if i < len(names) else f"user-{i:05d}" for i in range(count)]


def _postgres_sqlalchemy(place: Place, driver: str) -> str:
    return place.postgres.replace("postgresql://", f"postgresql+{driver}://", 1)


def _drop_tables(place: Place, *tables: str) -> None:
    import psycopg
    from psycopg import sql

    with psycopg.connect(place.postgres, autocommit=True) as conn:
        conn.execute(sql.SQL("DROP TABLE IF EXISTS {} CASCADE").format(
            sql.SQL(", ").join(sql.Identifier(t) for t in tables)))


def _delete_keys(place: Place, prefix: str) -> None:
    import redis

    from adapters.sources._drivers import glob_escape

    with redis.Redis.from_url(place.redis) as client:
        for key in client.scan_iter(match=glob_escape(prefix) + "*", count=1000):
            client.unlink(key)


# LangChain ----------------------------------------------------------------------------------


class _LangChainSQL(PeerStore):
    def __init__(self, place: Place, postgres: bool) -> None:
        from sqlalchemy import create_engine

        self.place, self.postgres = place, postgres
        if postgres:
            self.table = f"lc_{place.unique}"
            self.engine = create_engine(_postgres_sqlalchemy(place, "psycopg"))
            self.url = place.postgres.replace("postgresql://", "langchain+postgresql://", 1) + \
                f"?table={self.table}"
        else:
            self.table = "message_store"  # the peer's default, as most users have it
            path = place.directory / "langchain.db"
            self.engine = create_engine(f"sqlite:///{path}")
            self.url = f"langchain+sqlite:///{path}"

    def _history(self, session_id: str) -> Any:
        from langchain_community.chat_message_histories import SQLChatMessageHistory

        return SQLChatMessageHistory(session_id, table_name=self.table, connection=self.engine)

    def write(self, histories: dict[str, list[Any]]) -> None:
        for session_id, messages in histories.items():
            self._history(session_id).add_messages(messages)

    def read_all(self, session_ids: list[str]) -> dict[str, list[Any]]:
        return {sid: list(self._history(sid).messages) for sid in session_ids}

    def remove(self) -> None:
        self.engine.dispose()
        if self.postgres:
            _drop_tables(self.place, self.table)


class _LangChainPostgres(PeerStore):
    def __init__(self, place: Place) -> None:
        import psycopg

        self.place, self.table = place, f"lcpg_{place.unique}"
        self.conn = psycopg.connect(place.postgres)
        self.url = place.postgres.replace("postgresql://", "langchain-postgres+postgresql://", 1) + \
            f"?table={self.table}"

    def write(self, histories: dict[str, list[Any]]) -> None:
        from langchain_postgres import PostgresChatMessageHistory

        PostgresChatMessageHistory.create_tables(self.conn, self.table)
        for session_id, messages in histories.items():
            history = PostgresChatMessageHistory(self.table, session_id, sync_connection=self.conn)
            history.add_messages(messages)

    def read_all(self, session_ids: list[str]) -> dict[str, list[Any]]:
        from langchain_postgres import PostgresChatMessageHistory

        return {sid: PostgresChatMessageHistory(self.table, sid, sync_connection=self.conn).get_messages()
                for sid in session_ids}

    def remove(self) -> None:
        self.conn.close()
        _drop_tables(self.place, self.table)


class _LangChainRedis(PeerStore):
    def __init__(self, place: Place) -> None:
        self.place, self.prefix = place, f"lc:{place.unique}:"
        self.url = place.redis.replace("redis://", "langchain+redis://", 1) + f"?key_prefix={self.prefix}"

    def _history(self, session_id: str) -> Any:
        from langchain_community.chat_message_histories import RedisChatMessageHistory

        return RedisChatMessageHistory(session_id, url=self.place.redis, key_prefix=self.prefix)

    def write(self, histories: dict[str, list[Any]]) -> None:
        for session_id, messages in histories.items():
            history = self._history(session_id)
            history.add_messages(messages)
            history.redis_client.close()

    def read_all(self, session_ids: list[str]) -> dict[str, list[Any]]:
        result = {}
        for session_id in session_ids:
            history = self._history(session_id)
            try:
                result[session_id] = list(history.messages)
            finally:
                history.redis_client.close()
        return result

    def remove(self) -> None:
        _delete_keys(self.place, self.prefix)


# LlamaIndex ---------------------------------------------------------------------------------


class _LlamaIndexFile(PeerStore):
    def __init__(self, place: Place) -> None:
        self.path = place.directory / "chat_store.json"
        self.url = f"llamaindex+file:///{self.path}"

    def write(self, histories: dict[str, list[Any]]) -> None:
        from llama_index.core.storage.chat_store import SimpleChatStore
        from pydantic_core import PydanticSerializationError

        store = SimpleChatStore.from_persist_path(str(self.path))
        for key, messages in histories.items():
            store.set_messages(key, messages)
        try:
            store.persist(str(self.path))
        except PydanticSerializationError:
            # llama-index-core 0.14's persist fails under pydantic >= 2.12 (its wrap
            # serializer passes SerializationInfo where pydantic now takes an index key):
            # write the document persist writes, each message as ChatMessage dumps it.
            document = {"store": {key: [m.model_dump(mode="json") for m in messages]
                                  for key, messages in store.store.items()},
                        "class_name": "SimpleChatStore"}
            self.path.write_text(json.dumps(document, ensure_ascii=False), encoding="utf-8")

    def read_all(self, session_ids: list[str]) -> dict[str, list[Any]]:
        from llama_index.core.storage.chat_store import SimpleChatStore

        store = SimpleChatStore.from_persist_path(str(self.path))
        return {sid: list(store.get_messages(sid)) for sid in session_ids}


class _LlamaIndexRedis(PeerStore):
    def __init__(self, place: Place) -> None:
        self.place, self.prefix = place, f"li:{place.unique}:"
        self.url = place.redis.replace("redis://", "llamaindex+redis://", 1) + f"?key_prefix={self.prefix}"

    @contextlib.contextmanager
    def _store(self) -> Iterator[Any]:
        import redis
        import redis.asyncio
        from llama_index.storage.chat_store.redis import RedisChatStore

        client = redis.Redis.from_url(self.place.redis)
        async_client = redis.asyncio.Redis.from_url(self.place.redis)
        try:
            yield RedisChatStore(redis_client=client, aredis_client=async_client)
        finally:
            client.close()

    def write(self, histories: dict[str, list[Any]]) -> None:
        with self._store() as store:
            for key, messages in histories.items():
                store.set_messages(self.prefix + key, messages[:-1])
                store.add_message(self.prefix + key, messages[-1])

    def read_all(self, session_ids: list[str]) -> dict[str, list[Any]]:
        with self._store() as store:
            return {sid: list(store.get_messages(self.prefix + sid)) for sid in session_ids}

    def remove(self) -> None:
        _delete_keys(self.place, self.prefix)


class _LlamaIndexPostgres(PeerStore):
    def __init__(self, place: Place) -> None:
        self.place, self.table = place, f"li_{place.unique}"
        self.url = place.postgres.replace("postgresql://", "llamaindex+postgresql://", 1) + \
            f"?table={self.table}"
        self._engines: list[Any] = []
        self._opened: Any = None

    def _store(self) -> Any:
        from llama_index.storage.chat_store.postgres import PostgresChatStore
        from sqlalchemy import create_engine
        from sqlalchemy.ext.asyncio import async_sessionmaker, create_async_engine
        from sqlalchemy.orm import sessionmaker

        if self._opened is None:
            engine = create_engine(_postgres_sqlalchemy(self.place, "psycopg"))
            async_engine = create_async_engine(_postgres_sqlalchemy(self.place, "asyncpg"))
            self._engines = [engine, async_engine]
            self._opened = PostgresChatStore(
                session=sessionmaker(engine),
                async_session=async_sessionmaker(async_engine),  # type: ignore[arg-type]  # typed too narrowly
                table_name=self.table, use_jsonb=True,
            )
        return self._opened

    def write(self, histories: dict[str, list[Any]]) -> None:
        store = self._store()
        for key, messages in histories.items():
            store.set_messages(key, messages[:-2])
            for message in messages[-2:]:  # the peer's append path (array_cat) too
                store.add_message(key, message)

    def read_all(self, session_ids: list[str]) -> dict[str, list[Any]]:
        store = self._store()
        return {sid: list(store.get_messages(sid)) for sid in session_ids}

    def remove(self) -> None:
        if self._engines:
            self._engines[0].dispose()
            self._engines[1].sync_engine.dispose()
        _drop_tables(self.place, self.table)


class _LlamaIndexSQL(PeerStore):
    """``SQLAlchemyChatStore`` as ``Memory`` uses it: active messages, the oldest archived."""

    def __init__(self, place: Place, postgres: bool) -> None:
        self.place, self.postgres = place, postgres
        if postgres:
            self.table = f"lisql_{place.unique}"
            self.database = _postgres_sqlalchemy(place, "asyncpg")
            self.url = place.postgres.replace("postgresql://", "llamaindex-sql+postgresql://", 1) + \
                f"?table={self.table}"
        else:
            self.table = "llama_index_memory"
            path = place.directory / "memory.db"
            self.database = f"sqlite+aiosqlite:///{path}"
            self.url = f"llamaindex-sql+sqlite:///{path}"

    def _run(self, work: Callable[[Any], Any]) -> Any:
        from llama_index.core.storage.chat_store.sql import SQLAlchemyChatStore
        from sqlalchemy.ext.asyncio import create_async_engine

        async def main() -> Any:
            engine = create_async_engine(self.database)
            try:
                return await work(SQLAlchemyChatStore(table_name=self.table, async_engine=engine))
            finally:
                await engine.dispose()

        return asyncio.run(main())

    def write(self, histories: dict[str, list[Any]]) -> None:
        async def work(store: Any) -> None:
            for key, messages in histories.items():
                await store.add_messages(key, messages)
                await store.archive_oldest_messages(key, len(messages) // 3)

        self._run(work)

    def read_all(self, session_ids: list[str]) -> dict[str, list[Any]]:
        async def work(store: Any) -> dict[str, list[Any]]:
            return {sid: list(await store.get_messages(sid, status=None)) for sid in session_ids}

        result: dict[str, list[Any]] = self._run(work)
        return result

    def remove(self) -> None:
        if self.postgres:
            _drop_tables(self.place, self.table)


# Agents SDK ---------------------------------------------------------------------------------


class _AgentsStore(PeerStore):
    """An Agents SDK session store: sessions opened inside one event loop per call."""

    def _sessions(self) -> contextlib.AbstractAsyncContextManager[Callable[[str], Any]]:
        raise NotImplementedError

    def _run(self, work: Callable[[Callable[[str], Any]], Any]) -> Any:
        async def main() -> Any:
            async with self._sessions() as session:
                return await work(session)

        return asyncio.run(main())

    def write(self, histories: dict[str, list[Any]]) -> None:
        async def work(session: Callable[[str], Any]) -> None:
            for session_id, items in histories.items():
                await session(session_id).add_items(items)

        self._run(work)

    def read_all(self, session_ids: list[str]) -> dict[str, list[Any]]:
        async def work(session: Callable[[str], Any]) -> dict[str, list[Any]]:
            return {sid: list(await session(sid).get_items()) for sid in session_ids}

        result: dict[str, list[Any]] = self._run(work)
        return result


class _AgentsSQLite(_AgentsStore):
    """``SQLiteSession``, or ``SQLAlchemySession`` over aiosqlite: the same two tables."""

    def __init__(self, place: Place, sqlalchemy: bool) -> None:
        self.sqlalchemy = sqlalchemy
        self.path = place.directory / ("agents-sqlalchemy.db" if sqlalchemy else "agents.db")
        self.url = f"agents+sqlite:///{self.path}"

    @contextlib.asynccontextmanager
    async def _sessions(self) -> AsyncIterator[Callable[[str], Any]]:
        from agents import SQLiteSession
        from agents.extensions.memory import SQLAlchemySession
        from sqlalchemy.ext.asyncio import create_async_engine

        if self.sqlalchemy:
            engine = create_async_engine(f"sqlite+aiosqlite:///{self.path}")
            try:
                yield lambda session_id: SQLAlchemySession(session_id, engine=engine, create_tables=True)
            finally:
                await engine.dispose()
            return
        opened: list[Any] = []

        def session(session_id: str) -> Any:
            opened.append(SQLiteSession(session_id, self.path))
            return opened[-1]

        try:
            yield session
        finally:
            for each in opened:
                each.close()


class _AgentsPostgres(_AgentsStore):
    def __init__(self, place: Place) -> None:
        self.place = place
        self.sessions_table, self.messages_table = f"as_{place.unique}", f"am_{place.unique}"
        self.url = place.postgres.replace("postgresql://", "agents+postgresql://", 1) + \
            f"?sessions_table={self.sessions_table}&messages_table={self.messages_table}"

    @contextlib.asynccontextmanager
    async def _sessions(self) -> AsyncIterator[Callable[[str], Any]]:
        from agents.extensions.memory import SQLAlchemySession
        from sqlalchemy.ext.asyncio import create_async_engine

        engine = create_async_engine(_postgres_sqlalchemy(self.place, "asyncpg"))
        try:
            yield lambda session_id: SQLAlchemySession(
                session_id, engine=engine, create_tables=True, sessions_table=self.sessions_table,
                messages_table=self.messages_table)
        finally:
            await engine.dispose()

    def remove(self) -> None:
        _drop_tables(self.place, self.messages_table, self.sessions_table)


class _AgentsRedis(_AgentsStore):
    def __init__(self, place: Place) -> None:
        self.place, self.prefix = place, f"ag:{place.unique}"
        self.url = place.redis.replace("redis://", "agents+redis://", 1) + f"?key_prefix={self.prefix}"

    @contextlib.asynccontextmanager
    async def _sessions(self) -> AsyncIterator[Callable[[str], Any]]:
        from agents.extensions.memory import RedisSession

        opened: list[Any] = []

        def session(session_id: str) -> Any:
            opened.append(RedisSession.from_url(session_id, url=self.place.redis, key_prefix=self.prefix))
            return opened[-1]

        try:
            yield session
        finally:
            for each in opened:
                await each.close()

    def remove(self) -> None:
        _delete_keys(self.place, self.prefix + ":")


PEERS: tuple[Peer, ...] = (
    Peer("langchain+sqlite", "langchain", "SQLChatMessageHistory", "langchain-community", "sqlite",
         lambda place: _LangChainSQL(place, postgres=False)),
    Peer("langchain+postgresql", "langchain", "SQLChatMessageHistory", "langchain-community", "postgres",
         lambda place: _LangChainSQL(place, postgres=True)),
    Peer("langchain-postgres+postgresql", "langchain", "PostgresChatMessageHistory", "langchain-postgres",
         "postgres", _LangChainPostgres),
    Peer("langchain+redis", "langchain", "RedisChatMessageHistory", "langchain-community", "redis",
         _LangChainRedis),
    Peer("llamaindex+file", "llamaindex", "SimpleChatStore", "llama-index-core", "file", _LlamaIndexFile),
    Peer("llamaindex+redis", "llamaindex", "RedisChatStore", "llama-index-storage-chat-store-redis",
         "redis", _LlamaIndexRedis),
    Peer("llamaindex+postgresql", "llamaindex", "PostgresChatStore",
         "llama-index-storage-chat-store-postgres", "postgres", _LlamaIndexPostgres),
    Peer("llamaindex-sql+sqlite", "llamaindex", "SQLAlchemyChatStore", "llama-index-core", "sqlite",
         lambda place: _LlamaIndexSQL(place, postgres=False)),
    Peer("llamaindex-sql+postgresql", "llamaindex", "SQLAlchemyChatStore", "llama-index-core", "postgres",
         lambda place: _LlamaIndexSQL(place, postgres=True)),
    Peer("agents+sqlite", "agents", "SQLiteSession", "openai-agents", "sqlite",
         lambda place: _AgentsSQLite(place, sqlalchemy=False)),
    Peer("agents+sqlite", "agents", "SQLAlchemySession", "openai-agents", "sqlite",
         lambda place: _AgentsSQLite(place, sqlalchemy=True)),
    Peer("agents+postgresql", "agents", "SQLAlchemySession", "openai-agents", "postgres", _AgentsPostgres),
    Peer("agents+redis", "agents", "RedisSession", "openai-agents", "redis", _AgentsRedis),
)
