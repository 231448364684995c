"""The stores the benchmark measures: ours, the ones users would pick instead, and the
bare drivers as the physical floor.

Every store is described by a picklable ``Spec`` (so concurrent writers in other
processes can open their own instance of the same store) and opened into a ``Store``
with a uniform face: ``append_one``, ``window``, ``read_all`` and ``prefill``. Each of
these is either a plain function or a coroutine function; the runner times coroutines
inside one event loop so async stores pay no extra loop entry per call.
"""

from __future__ import annotations

import importlib
import json
import os
import sqlite3
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

REDIS_URL = os.environ.get("BENCH_REDIS_URL", "redis://127.0.0.1:6379/0")
POSTGRES_DSN = os.environ.get("BENCH_POSTGRES_DSN", "postgresql://postgres@127.0.0.1:5432/test")

TEXT = (
    "Could you summarise the trade-offs between append-only logs and rewriting a JSON "
    "document on every write, with an eye on crash safety and latency at scale? "
)
USER = {"role": "user", "content": TEXT}
TOOL_EXCHANGE = [
    {"role": "user", "content": "Weather in Oslo?"},
    {
        "role": "assistant",
        "content": None,
        "tool_calls": [
            {
                "id": "call_w1",
                "type": "function",
                "function": {"name": "weather", "arguments": '{"city":"Oslo"}'},
            },
        ],
    },
    {"role": "tool", "tool_call_id": "call_w1", "content": "-3 C, snow"},
    {"role": "assistant", "content": "It is -3 C and snowing in Oslo."},
]


@dataclass(frozen=True)
class Spec:
    """How to open one store; picklable."""

    name: str
    engine: str  # memory | file | sqlite | redis | postgres
    kind: str  # ours | comparison | floor
    durability: str  # shown next to the figures; {redis} / {postgres}: the server's settings
    opener: str  # "module:function" taking (location, **options)
    options: dict[str, Any] = field(default_factory=dict)
    needs: str = ""  # import that must succeed, else the store is "not installed"
    #: What an acknowledged append survives, as a class: stores are compared like with
    #: like only within one level ("memory", "page cache", "fsync", "NORMAL", "FULL",
    #: "server").
    level: str = "server"
    #: True for the setting a user gets without configuring anything.
    default: bool = True
    #: Reads return objects the store keeps in this process (never reading its file, so
    #: never seeing what other processes wrote): not comparable with stores that read
    #: what is stored.
    memory_reads: bool = False


@dataclass
class Store:
    spec: Spec
    append_one: Callable[..., Any]  # (session_id) -> None
    window: Callable[..., Any]  # (session_id, n) -> list
    read_all: Callable[..., Any]  # (session_id) -> list
    prefill: Callable[..., Any]  # (session_id, count) -> None
    append_exchange: Callable[..., Any] | None = None  # (session_id) -> None: TOOL_EXCHANGE
    fidelity: Callable[..., Any] | None = None  # (session_id) -> bool: exchange intact
    close: Callable[[], Any] = lambda: None
    #: (session_id) -> int: how many messages a fresh reader finds (after other processes
    #: wrote); by default ``len(read_all(session_id))``.
    count_fresh: Callable[..., Any] | None = None
    #: Release connections, keep the data: what a concurrent writer calls when done
    #: (``close`` also removes what the benchmark wrote to a shared server).
    disconnect: Callable[[], Any] = lambda: None


def open_store(spec: Spec, location: str, namespace: str) -> Store:
    """Open ``spec`` at ``location`` (a directory private to this run) under
    ``namespace`` (key prefix / table suffix); several instances opened with the same
    arguments, in threads or processes, share one store."""
    module_name, _, function = spec.opener.partition(":")
    module = importlib.import_module(module_name)
    store: Store = getattr(module, function)(spec, location, namespace, **spec.options)
    return store


def available(spec: Spec) -> str | None:
    """None if the store can run here, else why not."""
    if spec.needs:
        try:
            importlib.import_module(spec.needs)
        except ImportError as error:
            return f"not installed ({error.name})"
    return None


def new_namespace() -> str:
    return "b" + uuid.uuid4().hex[:10]


def drop_postgres_tables(prefix: str) -> None:
    """Drop every table of the benchmark whose name starts with ``prefix``."""
    import psycopg
    from psycopg import sql

    with psycopg.connect(POSTGRES_DSN, autocommit=True) as conn:
        names = [row[0] for row in conn.execute(
            "SELECT tablename FROM pg_tables WHERE schemaname = current_schema()"
            " AND starts_with(tablename, %s)", (prefix,))]
        for name in names:
            conn.execute(sql.SQL("DROP TABLE IF EXISTS {} CASCADE").format(sql.Identifier(name)))


def delete_redis_keys(prefix: str) -> None:
    """Delete every key of the benchmark that starts with ``prefix``."""
    import redis

    from sessions.redis import _glob_escape

    with redis.Redis.from_url(REDIS_URL) as client:
        for key in client.scan_iter(match=_glob_escape(prefix) + "*", count=1000):
            client.unlink(key)


# -- ours ---------------------------------------------------------------------------------


def _chunks(count: int, size: int = 5000) -> list[int]:
    return [min(size, count - start) for start in range(0, count, size)]


def _connect(url: str, location: str, namespace: str) -> tuple[Any, Callable[[], None]]:
    """Our store at ``url``, and how to close it and remove what the benchmark wrote."""
    import sessions

    store: Any = sessions.connect(url.replace("{dir}", location).replace("{uid}", namespace))

    def close() -> None:
        store.close()
        if url.startswith("postgres"):
            drop_postgres_tables(f"bench_{namespace}_")
        elif url.startswith("redis"):
            delete_redis_keys(f"bench:{namespace}:")

    return store, close


def session_layer(spec: Spec, location: str, namespace: str, *, url: str, wrap: str = "") -> Store:
    import sessions

    store, close = _connect(url, location, namespace)
    disconnect = store.close
    if "encrypt" in wrap:
        store = sessions.with_encryption(store, b"k" * 32)
    if "compress" in wrap:
        store = sessions.with_compression(store)

    def prefill(session_id: str, count: int) -> None:
        for size in _chunks(count):
            store.append(session_id, [USER] * size)

    def fidelity(session_id: str) -> bool:
        return bool(store.get(session_id)[-4:] == TOOL_EXCHANGE)

    return Store(
        spec,
        append_one=lambda session_id: store.append(session_id, [USER]),
        window=lambda session_id, n: store.get(session_id, limit=n),
        read_all=lambda session_id: store.get(session_id),
        prefill=prefill,
        append_exchange=lambda session_id: store.append(session_id, TOOL_EXCHANGE),
        fidelity=fidelity,
        close=close,
        disconnect=disconnect,
    )


def _lc_exchange() -> list[Any]:
    from langchain_core.messages import AIMessage, HumanMessage, ToolMessage

    return [
        HumanMessage("Weather in Oslo?"),
        AIMessage("", tool_calls=[{"id": "call_w1", "name": "weather", "args": {"city": "Oslo"}}]),
        ToolMessage("-3 C, snow", tool_call_id="call_w1"),
        AIMessage("It is -3 C and snowing in Oslo."),
    ]


def _lc_intact(messages: list[Any]) -> bool:
    last = messages[-4:]
    return (
        len(last) == 4
        and [m.type for m in last] == ["human", "ai", "tool", "ai"]
        and bool(getattr(last[1], "tool_calls", None))
        and last[1].tool_calls[0]["id"] == "call_w1"
        and getattr(last[2], "tool_call_id", None) == "call_w1"
    )


def _langchain_history(spec: Spec, history_factory: Callable[[str], Any], close: Callable[[], Any]) -> Store:
    from langchain_core.messages import HumanMessage

    human = HumanMessage(TEXT)

    def prefill(session_id: str, count: int) -> None:
        history = history_factory(session_id)
        for size in _chunks(count):
            history.add_messages([human] * size)

    return Store(
        spec,
        append_one=lambda session_id: history_factory(session_id).add_messages([human]),
        window=lambda session_id, n: history_factory(session_id).messages[-n:],
        read_all=lambda session_id: history_factory(session_id).messages,
        prefill=prefill,
        append_exchange=lambda session_id: history_factory(session_id).add_messages(_lc_exchange()),
        fidelity=lambda session_id: _lc_intact(history_factory(session_id).messages),
        close=close,
    )


def session_layer_langchain(
    spec: Spec, location: str, namespace: str, *, url: str, limit: int | None = None
) -> Store:
    from adapters.langchain import SessionChatMessageHistory

    store, close = _connect(url, location, namespace)
    histories: dict[str, Any] = {}

    def history(session_id: str) -> Any:
        if session_id not in histories:
            histories[session_id] = SessionChatMessageHistory(store, session_id)
        return histories[session_id]

    result = _langchain_history(spec, history, close)
    window = lambda session_id, n: SessionChatMessageHistory(store, session_id, limit=n).messages  # noqa: E731
    result.window = window
    result.disconnect = store.close
    return result


def _li_exchange() -> list[Any]:
    from llama_index.core.llms import ChatMessage

    return [
        ChatMessage(role="user", content="Weather in Oslo?"),
        ChatMessage(
            role="assistant",
            content="",
            additional_kwargs={
                "tool_calls": [
                    {
                        "id": "call_w1",
                        "type": "function",
                        "function": {"name": "weather", "arguments": '{"city":"Oslo"}'},
                    },
                ]
            },
        ),
        ChatMessage(role="tool", content="-3 C, snow", additional_kwargs={"tool_call_id": "call_w1"}),
        ChatMessage(role="assistant", content="It is -3 C and snowing in Oslo."),
    ]


def _li_intact(messages: list[Any]) -> bool:
    last = messages[-4:]
    if len(last) != 4 or [str(m.role.value) for m in last] != ["user", "assistant", "tool", "assistant"]:
        return False
    calls = last[1].additional_kwargs.get("tool_calls") or []
    if not calls:
        calls = [b for b in getattr(last[1], "blocks", []) if type(b).__name__ == "ToolCallBlock"]
    return bool(calls) and last[2].additional_kwargs.get("tool_call_id") == "call_w1"


def _llama_chat_store(
    spec: Spec,
    chat_store: Any,
    after_write: Callable[[], Any] = lambda: None,
    close: Callable[[], Any] = lambda: None,
) -> Store:
    from llama_index.core.llms import ChatMessage

    message = ChatMessage(role="user", content=TEXT)

    def append_one(session_id: str) -> None:
        chat_store.add_message(session_id, message)
        after_write()

    def prefill(session_id: str, count: int) -> None:
        existing = chat_store.get_messages(session_id)
        chat_store.set_messages(session_id, existing + [message] * count)
        after_write()

    def append_exchange(session_id: str) -> None:
        for item in _li_exchange():
            chat_store.add_message(session_id, item)
        after_write()

    return Store(
        spec,
        append_one=append_one,
        window=lambda session_id, n: chat_store.get_messages(session_id)[-n:],
        read_all=lambda session_id: chat_store.get_messages(session_id),
        prefill=prefill,
        append_exchange=append_exchange,
        fidelity=lambda session_id: _li_intact(chat_store.get_messages(session_id)),
        close=close,
    )


def session_layer_llamaindex(spec: Spec, location: str, namespace: str, *, url: str) -> Store:
    from adapters.llamaindex import SessionChatStore

    store, close = _connect(url, location, namespace)
    chat_store = SessionChatStore(store)
    result = _llama_chat_store(spec, chat_store, close=close)

    def prefill(session_id: str, count: int) -> None:
        # The same stored state as add_message() count times, in large batches.
        for size in _chunks(count):
            store.append(session_id, [USER] * size)

    result.prefill = prefill
    result.window = lambda session_id, n: SessionChatStore(store, window=n).get_messages(session_id)
    result.disconnect = store.close
    return result


# -- comparison stores ----------------------------------------------------------------------


def lc_file(spec: Spec, location: str, namespace: str) -> Store:
    from langchain_community.chat_message_histories import FileChatMessageHistory
    from langchain_core.messages import HumanMessage, messages_to_dict

    def history(session_id: str) -> Any:
        return FileChatMessageHistory(str(Path(location) / f"{session_id}.json"))

    result = _langchain_history(spec, history, lambda: None)

    def prefill(session_id: str, count: int) -> None:
        # Same end state as add_message() count times, without the O(n^2) build-up.
        path = Path(location) / f"{session_id}.json"
        current = json.loads(path.read_text()) if path.exists() else []
        current.extend(messages_to_dict([HumanMessage(TEXT)]) * count)
        path.write_text(json.dumps(current))

    result.prefill = prefill
    return result


def _sqlite_wal_normal(engine: Any) -> None:
    """Give every connection of a SQLAlchemy engine WAL and synchronous=NORMAL (our
    SQLite default), through SQLAlchemy's public connect event."""
    from sqlalchemy import event

    def pragmas(dbapi_connection: Any, _record: Any) -> None:
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute("PRAGMA synchronous=NORMAL")
        cursor.close()

    event.listen(engine, "connect", pragmas)


def lc_sql_sqlite(spec: Spec, location: str, namespace: str, *, wal: bool = False) -> Store:
    from langchain_community.chat_message_histories import SQLChatMessageHistory
    from sqlalchemy import create_engine

    engine = create_engine(f"sqlite:///{location}/lc_sql.db")
    if wal:
        _sqlite_wal_normal(engine)
    histories: dict[str, Any] = {}

    def history(session_id: str) -> Any:
        if session_id not in histories:
            histories[session_id] = SQLChatMessageHistory(session_id, connection=engine)
        return histories[session_id]

    result = _langchain_history(spec, history, engine.dispose)
    result.disconnect = engine.dispose
    return result


def lc_postgres(spec: Spec, location: str, namespace: str) -> Store:
    import psycopg
    from langchain_postgres import PostgresChatMessageHistory

    table = f"bench_lcpg_{namespace}"
    conn = psycopg.connect(POSTGRES_DSN, autocommit=True)
    PostgresChatMessageHistory.create_tables(conn, table)

    def history(session_id: str) -> Any:
        # It accepts only UUIDs as session ids: the same name always maps to the same one.
        key = str(uuid.uuid5(uuid.NAMESPACE_URL, session_id))
        return PostgresChatMessageHistory(table, key, sync_connection=conn)

    def close() -> None:
        PostgresChatMessageHistory.drop_table(conn, table)
        conn.close()

    result = _langchain_history(spec, history, close)
    result.disconnect = conn.close
    return result


def _simple_store_writer(chat_store: Any, path: Path) -> Callable[[], None]:
    """How to persist a SimpleChatStore after each add.

    ``persist()`` writes ``model_dump_json()`` of the whole store. Where that fails
    (llama-index-core's serializer of ``ChatMessage`` under pydantic 2.14 raises
    ``PydanticSerializationError``), the benchmark writes the same document itself:
    every message's ``model_dump_json()``, the whole file each time.
    """
    from llama_index.core.llms import ChatMessage
    from llama_index.core.storage.chat_store import SimpleChatStore

    probe = SimpleChatStore()
    probe.add_message("probe", ChatMessage(role="user", content="probe"))
    try:
        probe.model_dump_json()
    except Exception:
        pass
    else:
        return lambda: chat_store.persist(str(path))

    def write() -> None:
        keys = ",".join(
            json.dumps(key) + ":[" + ",".join(m.model_dump_json() for m in messages) + "]"
            for key, messages in chat_store.store.items()
        )
        path.write_text('{"store":{' + keys + '},"class_name":"SimpleChatStore"}', encoding="utf-8")

    return write


def _load_simple_store(path: Path) -> Any:
    from llama_index.core.storage.chat_store import SimpleChatStore

    return SimpleChatStore.from_persist_path(str(path)) if path.exists() else SimpleChatStore()


def li_simple(spec: Spec, location: str, namespace: str) -> Store:
    # Like an application worker: load what is persisted, keep it in memory, persist
    # the whole store after every add.
    path = Path(location) / "simple_chat_store.json"
    chat_store = _load_simple_store(path)
    result = _llama_chat_store(spec, chat_store, after_write=_simple_store_writer(chat_store, path))
    result.count_fresh = lambda session_id: len(_load_simple_store(path).get_messages(session_id))
    return result


def li_redis(spec: Spec, location: str, namespace: str) -> Store:
    from llama_index.storage.chat_store.redis import RedisChatStore

    prefix = f"bench:lir:{namespace}:"
    chat_store = RedisChatStore(redis_url=REDIS_URL)
    result = _llama_chat_store(spec, chat_store)
    inner_add, inner_window, inner_all = result.append_one, result.window, result.read_all
    result.append_one = lambda session_id: inner_add(prefix + session_id)
    result.window = lambda session_id, n: inner_window(prefix + session_id, n)
    result.read_all = lambda session_id: inner_all(prefix + session_id)
    inner_prefill, inner_exchange, inner_fidelity = result.prefill, result.append_exchange, result.fidelity
    result.prefill = lambda session_id, count: inner_prefill(prefix + session_id, count)
    result.append_exchange = lambda session_id: inner_exchange(prefix + session_id)  # type: ignore[misc]
    result.fidelity = lambda session_id: inner_fidelity(prefix + session_id)  # type: ignore[misc]

    def close() -> None:
        delete_redis_keys(prefix)

    result.close = close
    return result


def li_postgres(spec: Spec, location: str, namespace: str) -> Store:
    from llama_index.storage.chat_store.postgres import PostgresChatStore

    table = f"bench_lipg_{namespace}"
    base = POSTGRES_DSN.split("://", 1)[1]
    chat_store = PostgresChatStore.from_params(
        connection_string=f"postgresql+psycopg://{base}",
        async_connection_string=f"postgresql+asyncpg://{base}",
        table_name=table,
        use_jsonb=True,
    )

    def close() -> None:
        drop_postgres_tables(table)
        drop_postgres_tables(f"data_{table}")

    return _llama_chat_store(spec, chat_store, close=close)


def li_sqlalchemy(spec: Spec, location: str, namespace: str, *, wal: bool = False) -> Store:
    from llama_index.core.llms import ChatMessage
    from llama_index.core.storage.chat_store.sql import SQLAlchemyChatStore
    from sqlalchemy.ext.asyncio import create_async_engine

    engine = create_async_engine(f"sqlite+aiosqlite:///{location}/li_sql.db")
    if wal:
        _sqlite_wal_normal(engine.sync_engine)
    chat_store = SQLAlchemyChatStore(table_name="chat", async_engine=engine)
    message = ChatMessage(role="user", content=TEXT)

    async def append_one(session_id: str) -> None:
        await chat_store.add_message(session_id, message)

    async def window(session_id: str, n: int) -> list[Any]:
        total = await chat_store.count_messages(session_id)
        return await chat_store.get_messages(session_id, offset=max(0, total - n), limit=n)

    async def read_all(session_id: str) -> list[Any]:
        return await chat_store.get_messages(session_id)

    async def prefill(session_id: str, count: int) -> None:
        for size in _chunks(count):
            await chat_store.add_messages(session_id, [message] * size)

    async def append_exchange(session_id: str) -> None:
        await chat_store.add_messages(session_id, _li_exchange())

    async def fidelity(session_id: str) -> bool:
        return _li_intact(await chat_store.get_messages(session_id))

    return Store(spec, append_one, window, read_all, prefill, append_exchange, fidelity)


def _agents_store(
    spec: Spec, factory: Callable[[str], Any], close: Callable[[], Any] = lambda: None
) -> Store:
    item = {"role": "user", "content": TEXT}
    exchange = [
        {"role": "user", "content": "Weather in Oslo?"},
        {"type": "function_call", "call_id": "call_w1", "name": "weather", "arguments": '{"city":"Oslo"}'},
        {"type": "function_call_output", "call_id": "call_w1", "output": "-3 C, snow"},
        {"role": "assistant", "content": "It is -3 C and snowing in Oslo."},
    ]
    sessions_by_id: dict[str, Any] = {}

    def session(session_id: str) -> Any:
        if session_id not in sessions_by_id:
            sessions_by_id[session_id] = factory(session_id)
        return sessions_by_id[session_id]

    async def append_one(session_id: str) -> None:
        await session(session_id).add_items([item])

    async def window(session_id: str, n: int) -> list[Any]:
        return list(await session(session_id).get_items(limit=n))

    async def read_all(session_id: str) -> list[Any]:
        return list(await session(session_id).get_items())

    async def prefill(session_id: str, count: int) -> None:
        for size in _chunks(count):
            await session(session_id).add_items([item] * size)

    async def append_exchange(session_id: str) -> None:
        await session(session_id).add_items(exchange)

    async def fidelity(session_id: str) -> bool:
        return list(await session(session_id).get_items())[-4:] == exchange

    return Store(spec, append_one, window, read_all, prefill, append_exchange, fidelity, close)


def agents_sqlite(spec: Spec, location: str, namespace: str, *, synchronous: str = "") -> Store:
    from agents import SQLiteSession

    session_class: type[Any] = SQLiteSession
    if synchronous:
        # The SDK has no setting for it; its per-connection setup hook is extended.
        if not callable(getattr(SQLiteSession, "_configure_connection", None)):
            raise RuntimeError("this openai-agents version has no connection setup hook to extend")

        class Configured(SQLiteSession):
            @staticmethod
            def _configure_connection(conn: sqlite3.Connection) -> None:
                SQLiteSession._configure_connection(conn)
                conn.execute(f"PRAGMA synchronous={synchronous}")

        session_class = Configured
    return _agents_store(spec, lambda session_id: session_class(session_id, f"{location}/agents.db"))


def agents_redis(spec: Spec, location: str, namespace: str) -> Store:
    from agents.extensions.memory import RedisSession

    prefix = f"bench:ar:{namespace}"
    return _agents_store(
        spec,
        lambda session_id: RedisSession.from_url(session_id, url=REDIS_URL, key_prefix=prefix),
        lambda: delete_redis_keys(prefix),
    )


def agents_sqlalchemy(spec: Spec, location: str, namespace: str) -> Store:
    from agents.extensions.memory import SQLAlchemySession
    from sqlalchemy.ext.asyncio import create_async_engine

    base = POSTGRES_DSN.split("://", 1)[1]
    suffix = namespace
    engine = create_async_engine(f"postgresql+asyncpg://{base}")

    async def close() -> None:
        await engine.dispose()
        drop_postgres_tables(f"bench_am_{suffix}")
        drop_postgres_tables(f"bench_as_{suffix}")

    result = _agents_store(
        spec,
        lambda session_id: SQLAlchemySession(
            session_id,
            engine=engine,
            create_tables=True,
            sessions_table=f"bench_as_{suffix}",
            messages_table=f"bench_am_{suffix}",
        ),
        close,
    )
    result.disconnect = engine.dispose
    return result


# -- the physical floor: bare drivers --------------------------------------------------------

_RECORD = json.dumps(USER, separators=(",", ":"))


def bare_sqlite(spec: Spec, location: str, namespace: str, *, synchronous: str = "NORMAL") -> Store:
    conn = sqlite3.connect(f"{location}/bare.db", isolation_level=None, check_same_thread=False)
    conn.execute("PRAGMA journal_mode=WAL")
    conn.execute(f"PRAGMA synchronous={synchronous}")
    conn.execute("CREATE TABLE IF NOT EXISTS m (sid TEXT, seq INTEGER PRIMARY KEY AUTOINCREMENT, body TEXT)")
    conn.execute("CREATE INDEX IF NOT EXISTS m_sid ON m (sid, seq)")

    def append_one(session_id: str) -> None:
        conn.execute("BEGIN")
        conn.execute("INSERT INTO m (sid, body) VALUES (?, ?)", (session_id, _RECORD))
        conn.execute("COMMIT")

    def window(session_id: str, n: int) -> list[Any]:
        rows = conn.execute(
            "SELECT body FROM m WHERE sid = ? ORDER BY seq DESC LIMIT ?", (session_id, n)
        ).fetchall()
        return [json.loads(r[0]) for r in reversed(rows)]

    def read_all(session_id: str) -> list[Any]:
        return [
            json.loads(r[0])
            for r in conn.execute("SELECT body FROM m WHERE sid = ? ORDER BY seq", (session_id,))
        ]

    def prefill(session_id: str, count: int) -> None:
        conn.execute("BEGIN")
        conn.executemany("INSERT INTO m (sid, body) VALUES (?, ?)", [(session_id, _RECORD)] * count)
        conn.execute("COMMIT")

    return Store(spec, append_one, window, read_all, prefill, close=conn.close)


def bare_redis(spec: Spec, location: str, namespace: str) -> Store:
    import redis

    client = redis.Redis.from_url(REDIS_URL)
    prefix = f"bench:bare:{namespace}:"

    def prefill(session_id: str, count: int) -> None:
        for size in _chunks(count):
            client.rpush(prefix + session_id, *([_RECORD] * size))

    def close() -> None:
        delete_redis_keys(prefix)
        client.close()

    return Store(
        spec,
        append_one=lambda session_id: client.rpush(prefix + session_id, _RECORD),
        window=lambda session_id, n: [json.loads(r) for r in client.lrange(prefix + session_id, -n, -1)],
        read_all=lambda session_id: [json.loads(r) for r in client.lrange(prefix + session_id, 0, -1)],
        prefill=prefill,
        close=close,
        disconnect=client.close,
    )


def bare_postgres(spec: Spec, location: str, namespace: str) -> Store:
    import psycopg

    table = f"bench_bare_{namespace}"
    conn = psycopg.connect(POSTGRES_DSN, autocommit=True)
    conn.execute(
        f"CREATE TABLE IF NOT EXISTS {table}"
        " (sid text NOT NULL, seq bigserial, body text NOT NULL, PRIMARY KEY (sid, seq))"
    )
    insert = f"INSERT INTO {table} (sid, body) VALUES (%s, %s)"

    def window(session_id: str, n: int) -> list[Any]:
        rows = conn.execute(
            f"SELECT body FROM {table} WHERE sid = %s ORDER BY seq DESC LIMIT %s", (session_id, n)
        ).fetchall()
        return [json.loads(r[0]) for r in reversed(rows)]

    def read_all(session_id: str) -> list[Any]:
        rows = conn.execute(f"SELECT body FROM {table} WHERE sid = %s ORDER BY seq", (session_id,)).fetchall()
        return [json.loads(r[0]) for r in rows]

    def prefill(session_id: str, count: int) -> None:
        with conn.cursor() as cur, cur.copy(f"COPY {table} (sid, body) FROM STDIN") as copy:
            for _ in range(count):
                copy.write_row((session_id, _RECORD))

    def close() -> None:
        conn.execute(f"DROP TABLE IF EXISTS {table}")
        conn.close()

    return Store(
        spec,
        lambda session_id: conn.execute(insert, (session_id, _RECORD)),
        window,
        read_all,
        prefill,
        close=close,
        disconnect=conn.close,
    )


# -- the catalogue -----------------------------------------------------------------------------

_HERE = "benchmarks.stores"
PG_URL = POSTGRES_DSN + "?table_prefix=bench_{uid}_"
REDIS_STORE_URL = REDIS_URL + "?prefix=bench:{uid}:"

_NORMAL = "WAL, synchronous=NORMAL"
_REDIS = "server: {redis}"
_POSTGRES = "server: {postgres}"


def _ours(name: str, engine: str, durability: str, level: str, url: str, *, opener: str = "session_layer",
          wrap: str = "", needs: str = "", default: bool = True) -> Spec:
    options: dict[str, Any] = {"url": url}
    if wrap:
        options["wrap"] = wrap
    return Spec(name, engine, "ours", durability, f"{_HERE}:{opener}", options, needs, level, default)


def _rival(name: str, engine: str, durability: str, level: str, opener: str, needs: str,
           default: bool = True, memory_reads: bool = False, **options: Any) -> Spec:
    return Spec(name, engine, "comparison", durability, f"{_HERE}:{opener}", options, needs, level, default,
                memory_reads)


def _floor(name: str, engine: str, durability: str, level: str, opener: str, needs: str = "",
           **options: Any) -> Spec:
    return Spec(name, engine, "floor", durability, f"{_HERE}:{opener}", options, needs, level)


SPECS: list[Spec] = [
    # ours
    _ours("session-layer memory", "memory", "none (process memory)", "memory", "memory://"),
    _ours("session-layer file", "file", "OS page cache (fsync off, the default)", "page cache",
          "file://{dir}/files"),
    _ours("session-layer file fsync", "file", "fsync per append", "fsync",
          "file://{dir}/files-fsync?fsync=true", default=False),
    _ours("session-layer sqlite", "sqlite", _NORMAL + " (default)", "NORMAL", "sqlite:///{dir}/ours.db"),
    _ours("session-layer sqlite FULL", "sqlite", "WAL, synchronous=FULL", "FULL",
          "sqlite:///{dir}/ours-full.db?synchronous=FULL", default=False),
    _ours("session-layer sqlite +encrypt", "sqlite", _NORMAL, "NORMAL", "sqlite:///{dir}/ours-enc.db",
          wrap="encrypt", needs="cryptography"),
    _ours("session-layer sqlite +compress", "sqlite", _NORMAL, "NORMAL", "sqlite:///{dir}/ours-gz.db",
          wrap="compress"),
    _ours("session-layer redis", "redis", _REDIS, "server", REDIS_STORE_URL, needs="redis"),
    _ours("session-layer postgres", "postgres", _POSTGRES, "server", PG_URL, needs="psycopg"),
    _ours("session-layer postgres +encrypt", "postgres", _POSTGRES, "server", PG_URL, wrap="encrypt",
          needs="cryptography"),
    _ours("session-layer postgres +compress", "postgres", _POSTGRES, "server", PG_URL, wrap="compress",
          needs="psycopg"),
    # the adapters over each durable engine
    *(
        _ours(f"{framework} adapter / {engine}", engine, durability, level, url.replace("{tag}", tag),
              opener=opener, needs=needs)
        for framework, tag, opener, needs in (
            ("LangChain", "lc", "session_layer_langchain", "langchain_core"),
            ("LlamaIndex", "li", "session_layer_llamaindex", "llama_index.core"),
        )
        for engine, durability, level, url in (
            ("sqlite", _NORMAL, "NORMAL", "sqlite:///{dir}/ours-{tag}.db"),
            ("redis", _REDIS, "server", REDIS_STORE_URL),
            ("postgres", _POSTGRES, "server", PG_URL),
        )
    ),
    # what users would pick instead
    _rival("langchain FileChatMessageHistory", "file", "OS page cache, whole-file rewrite per add",
           "page cache", "lc_file", "langchain_community"),
    _rival("langchain SQLChatMessageHistory", "sqlite", "rollback journal, synchronous=FULL (default)",
           "FULL", "lc_sql_sqlite", "langchain_community"),
    _rival("langchain SQLChatMessageHistory (WAL, NORMAL)", "sqlite", _NORMAL + " (set on the engine)",
           "NORMAL", "lc_sql_sqlite", "langchain_community", default=False, wal=True),
    _rival("langchain-postgres PostgresChatMessageHistory", "postgres", _POSTGRES, "server", "lc_postgres",
           "langchain_postgres"),
    _rival("llama-index SimpleChatStore (persist per add)", "file",
           "OS page cache, whole-file rewrite per add", "page cache", "li_simple", "llama_index.core",
           memory_reads=True),
    _rival("llama-index RedisChatStore", "redis", _REDIS, "server", "li_redis",
           "llama_index.storage.chat_store.redis"),
    _rival("llama-index PostgresChatStore", "postgres", _POSTGRES, "server", "li_postgres",
           "llama_index.storage.chat_store.postgres"),
    _rival("llama-index SQLAlchemyChatStore (aiosqlite)", "sqlite",
           "rollback journal, synchronous=FULL (default)", "FULL", "li_sqlalchemy", "aiosqlite"),
    _rival("llama-index SQLAlchemyChatStore (aiosqlite, WAL, NORMAL)", "sqlite",
           _NORMAL + " (set on the engine)", "NORMAL", "li_sqlalchemy", "aiosqlite", default=False, wal=True),
    _rival("openai-agents SQLiteSession", "sqlite", "WAL, synchronous=FULL (default)", "FULL",
           "agents_sqlite", "agents"),
    _rival("openai-agents SQLiteSession (NORMAL)", "sqlite", _NORMAL + " (set per connection)", "NORMAL",
           "agents_sqlite", "agents", default=False, synchronous="NORMAL"),
    _rival("openai-agents RedisSession", "redis", _REDIS, "server", "agents_redis",
           "agents.extensions.memory.redis_session"),
    _rival("openai-agents SQLAlchemySession (asyncpg)", "postgres", _POSTGRES, "server",
           "agents_sqlalchemy", "asyncpg"),
    # the floor
    _floor("bare sqlite3 INSERT (WAL, NORMAL)", "sqlite", _NORMAL, "NORMAL", "bare_sqlite"),
    _floor("bare sqlite3 INSERT (WAL, FULL)", "sqlite", "WAL, synchronous=FULL", "FULL", "bare_sqlite",
           synchronous="FULL"),
    _floor("bare redis-py RPUSH/LRANGE", "redis", _REDIS, "server", "bare_redis", "redis"),
    _floor("bare psycopg INSERT/SELECT", "postgres", _POSTGRES, "server", "bare_postgres", "psycopg"),
]


def server_settings() -> dict[str, str]:
    """The durability settings of the servers, read from them now."""
    settings = {"redis": "unreachable", "postgres": "unreachable"}
    try:
        import redis

        with redis.Redis.from_url(REDIS_URL, socket_timeout=2) as client:
            config = {
                **client.config_get("appendonly"), **client.config_get("appendfsync"),
                **client.config_get("save"),
            }
            version = client.info("server").get("redis_version", "?")
        settings["redis"] = (
            f"Redis {version}, appendonly={config.get('appendonly')}"
            f" (appendfsync={config.get('appendfsync')}), save='{config.get('save', '')}'"
        )
    except Exception as error:
        settings["redis"] = f"unreachable ({type(error).__name__})"
    try:
        import psycopg

        with psycopg.connect(POSTGRES_DSN, connect_timeout=2) as conn:
            values = [
                conn.execute(f"SHOW {name}").fetchone()[0]  # type: ignore[index]
                for name in ("server_version", "synchronous_commit", "fsync")
            ]
        settings["postgres"] = (
            f"PostgreSQL {values[0].split()[0]}, synchronous_commit={values[1]}, fsync={values[2]}"
        )
    except Exception as error:
        settings["postgres"] = f"unreachable ({type(error).__name__})"
    return settings
