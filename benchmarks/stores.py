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
    durability: str
    opener: str  # "module:function" taking (location, **options)
    options: dict[str, Any] = field(default_factory=dict)
    needs: str = ""  # import that must succeed, else the store is "not installed"


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


# -- ours ---------------------------------------------------------------------------------


def _chunks(count: int, size: int = 5000) -> list[int]:
    return [min(size, count - start) for start in range(0, count, size)]


def session_layer(spec: Spec, location: str, namespace: str, *, url: str, wrap: str = "") -> Store:
    import sessions

    url = url.replace("{dir}", location).replace("{uid}", namespace)
    store: Any = sessions.connect(url)
    if "encrypt" in wrap:
        store = sessions.with_encryption(store, b"k" * 32)  # type: ignore[attr-defined]
    if "compress" in wrap:
        store = sessions.with_compression(store)  # type: ignore[attr-defined]

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
        close=store.close,
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
    import sessions
    from adapters.langchain import SessionChatMessageHistory  # type: ignore[import-not-found]

    store = sessions.connect(url.replace("{dir}", location).replace("{uid}", namespace))
    histories: dict[str, Any] = {}

    def history(session_id: str) -> Any:
        if session_id not in histories:
            histories[session_id] = SessionChatMessageHistory(store, session_id)
        return histories[session_id]

    result = _langchain_history(spec, history, store.close)
    window = lambda session_id, n: SessionChatMessageHistory(store, session_id, limit=n).messages  # noqa: E731
    result.window = window
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
    import sessions
    from adapters.llamaindex import SessionChatStore  # type: ignore[import-not-found]

    store = sessions.connect(url.replace("{dir}", location).replace("{uid}", namespace))
    chat_store = SessionChatStore(store)
    result = _llama_chat_store(spec, chat_store, close=store.close)

    def prefill(session_id: str, count: int) -> None:
        # The same stored state as add_message() count times, in large batches.
        for size in _chunks(count):
            store.append(session_id, [USER] * size)

    result.prefill = prefill
    result.window = lambda session_id, n: SessionChatStore(store, window=n).get_messages(session_id)
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


def lc_sql_sqlite(spec: Spec, location: str, namespace: str) -> Store:
    from langchain_community.chat_message_histories import SQLChatMessageHistory

    url = f"sqlite:///{location}/lc_sql.db"
    engines: dict[str, Any] = {}

    def history(session_id: str) -> Any:
        if session_id not in engines:
            engines[session_id] = SQLChatMessageHistory(session_id, connection=url)
        return engines[session_id]

    return _langchain_history(spec, history, lambda: None)


def lc_postgres(spec: Spec, location: str, namespace: str) -> Store:
    import psycopg
    from langchain_postgres import PostgresChatMessageHistory

    table = f"bench_lcpg_{namespace}"
    conn = psycopg.connect(POSTGRES_DSN, autocommit=True)
    PostgresChatMessageHistory.create_tables(conn, table)

    def history(session_id: str) -> Any:
        return PostgresChatMessageHistory(table, session_id, sync_connection=conn)

    def close() -> None:
        PostgresChatMessageHistory.drop_table(conn, table)
        conn.close()

    return _langchain_history(spec, history, close)


def li_simple(spec: Spec, location: str, namespace: str) -> Store:
    from llama_index.core.storage.chat_store import SimpleChatStore

    path = str(Path(location) / "simple_chat_store.json")
    chat_store = SimpleChatStore()
    return _llama_chat_store(spec, chat_store, after_write=lambda: chat_store.persist(path))


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
        import redis

        client = redis.Redis.from_url(REDIS_URL)
        for key in client.scan_iter(match=prefix + "*", count=1000):
            client.delete(key)
        client.close()

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
        import psycopg

        with psycopg.connect(POSTGRES_DSN, autocommit=True) as conn:
            for name in (table, f"data_{table}"):
                conn.execute(f'DROP TABLE IF EXISTS "{name}"')

    return _llama_chat_store(spec, chat_store, close=close)


def li_sqlalchemy(spec: Spec, location: str, namespace: str) -> Store:
    from llama_index.core.llms import ChatMessage
    from llama_index.core.storage.chat_store.sql import SQLAlchemyChatStore

    chat_store = SQLAlchemyChatStore(
        table_name="chat", async_database_uri=f"sqlite+aiosqlite:///{location}/li_sql.db"
    )
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


def agents_sqlite(spec: Spec, location: str, namespace: str) -> Store:
    from agents import SQLiteSession

    return _agents_store(spec, lambda session_id: SQLiteSession(session_id, f"{location}/agents.db"))


def agents_redis(spec: Spec, location: str, namespace: str) -> Store:
    from agents.extensions.memory import RedisSession

    prefix = f"bench:ar:{namespace}"
    return _agents_store(
        spec, lambda session_id: RedisSession.from_url(session_id, url=REDIS_URL, key_prefix=prefix)
    )


def agents_sqlalchemy(spec: Spec, location: str, namespace: str) -> Store:
    from agents.extensions.memory import SQLAlchemySession
    from sqlalchemy.ext.asyncio import create_async_engine

    base = POSTGRES_DSN.split("://", 1)[1]
    suffix = namespace
    engine = create_async_engine(f"postgresql+asyncpg://{base}")
    return _agents_store(
        spec,
        lambda session_id: SQLAlchemySession(
            session_id,
            engine=engine,
            create_tables=True,
            sessions_table=f"bench_as_{suffix}",
            messages_table=f"bench_am_{suffix}",
        ),
    )


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
        for key in client.scan_iter(match=prefix + "*", count=1000):
            client.delete(key)
        client.close()

    return Store(
        spec,
        append_one=lambda session_id: client.rpush(prefix + session_id, _RECORD),
        window=lambda session_id, n: [json.loads(r) for r in client.lrange(prefix + session_id, -n, -1)],
        read_all=lambda session_id: [json.loads(r) for r in client.lrange(prefix + session_id, 0, -1)],
        prefill=prefill,
        close=close,
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
    )


# -- the catalogue -----------------------------------------------------------------------------

_HERE = "benchmarks.stores"
PG_URL = POSTGRES_DSN + "?table_prefix=bench_{uid}_"
REDIS_STORE_URL = REDIS_URL + "?prefix=bench:{uid}:"

SPECS: list[Spec] = [
    # ours
    Spec(
        "session-layer memory",
        "memory",
        "ours",
        "none (process memory)",
        f"{_HERE}:session_layer",
        {"url": "memory://"},
    ),
    Spec(
        "session-layer file",
        "file",
        "ours",
        "OS page cache (fsync=False)",
        f"{_HERE}:session_layer",
        {"url": "file://{dir}/files"},
    ),
    Spec(
        "session-layer file fsync",
        "file",
        "ours",
        "fsync per append",
        f"{_HERE}:session_layer",
        {"url": "file://{dir}/files-fsync?fsync=true"},
    ),
    Spec(
        "session-layer sqlite",
        "sqlite",
        "ours",
        "WAL, synchronous=NORMAL",
        f"{_HERE}:session_layer",
        {"url": "sqlite:///{dir}/ours.db"},
    ),
    Spec(
        "session-layer sqlite FULL",
        "sqlite",
        "ours",
        "WAL, synchronous=FULL",
        f"{_HERE}:session_layer",
        {"url": "sqlite:///{dir}/ours-full.db?synchronous=FULL"},
    ),
    Spec(
        "session-layer sqlite +encrypt",
        "sqlite",
        "ours",
        "WAL, synchronous=NORMAL",
        f"{_HERE}:session_layer",
        {"url": "sqlite:///{dir}/ours-enc.db", "wrap": "encrypt"},
        needs="cryptography",
    ),
    Spec(
        "session-layer sqlite +compress",
        "sqlite",
        "ours",
        "WAL, synchronous=NORMAL",
        f"{_HERE}:session_layer",
        {"url": "sqlite:///{dir}/ours-gz.db", "wrap": "compress"},
    ),
    Spec(
        "session-layer redis",
        "redis",
        "ours",
        "server: no persistence (as configured here)",
        f"{_HERE}:session_layer",
        {"url": REDIS_STORE_URL},
        needs="redis",
    ),
    Spec(
        "session-layer postgres",
        "postgres",
        "ours",
        "server: synchronous_commit=on",
        f"{_HERE}:session_layer",
        {"url": PG_URL},
        needs="psycopg",
    ),
    Spec(
        "session-layer postgres +encrypt",
        "postgres",
        "ours",
        "server: synchronous_commit=on",
        f"{_HERE}:session_layer",
        {"url": PG_URL, "wrap": "encrypt"},
        needs="psycopg",
    ),
    Spec(
        "session-layer postgres +compress",
        "postgres",
        "ours",
        "server: synchronous_commit=on",
        f"{_HERE}:session_layer",
        {"url": PG_URL, "wrap": "compress"},
        needs="psycopg",
    ),
    Spec(
        "LangChain adapter / sqlite",
        "sqlite",
        "ours",
        "WAL, synchronous=NORMAL",
        f"{_HERE}:session_layer_langchain",
        {"url": "sqlite:///{dir}/ours-lc.db"},
        needs="langchain_core",
    ),
    Spec(
        "LangChain adapter / redis",
        "redis",
        "ours",
        "server: no persistence",
        f"{_HERE}:session_layer_langchain",
        {"url": REDIS_STORE_URL},
        needs="langchain_core",
    ),
    Spec(
        "LangChain adapter / postgres",
        "postgres",
        "ours",
        "server: synchronous_commit=on",
        f"{_HERE}:session_layer_langchain",
        {"url": PG_URL},
        needs="langchain_core",
    ),
    Spec(
        "LlamaIndex adapter / sqlite",
        "sqlite",
        "ours",
        "WAL, synchronous=NORMAL",
        f"{_HERE}:session_layer_llamaindex",
        {"url": "sqlite:///{dir}/ours-li.db"},
        needs="llama_index.core",
    ),
    Spec(
        "LlamaIndex adapter / redis",
        "redis",
        "ours",
        "server: no persistence",
        f"{_HERE}:session_layer_llamaindex",
        {"url": REDIS_STORE_URL},
        needs="llama_index.core",
    ),
    Spec(
        "LlamaIndex adapter / postgres",
        "postgres",
        "ours",
        "server: synchronous_commit=on",
        f"{_HERE}:session_layer_llamaindex",
        {"url": PG_URL},
        needs="llama_index.core",
    ),
    # what users would pick instead
    Spec(
        "langchain FileChatMessageHistory",
        "file",
        "comparison",
        "OS page cache, whole-file rewrite",
        f"{_HERE}:lc_file",
        needs="langchain_community",
    ),
    Spec(
        "langchain SQLChatMessageHistory",
        "sqlite",
        "comparison",
        "rollback journal, synchronous=FULL (default)",
        f"{_HERE}:lc_sql_sqlite",
        needs="langchain_community",
    ),
    Spec(
        "langchain-postgres PostgresChatMessageHistory",
        "postgres",
        "comparison",
        "server: synchronous_commit=on",
        f"{_HERE}:lc_postgres",
        needs="langchain_postgres",
    ),
    Spec(
        "llama-index SimpleChatStore (persist per add)",
        "file",
        "comparison",
        "OS page cache, whole-file rewrite",
        f"{_HERE}:li_simple",
        needs="llama_index.core",
    ),
    Spec(
        "llama-index RedisChatStore",
        "redis",
        "comparison",
        "server: no persistence",
        f"{_HERE}:li_redis",
        needs="llama_index.storage.chat_store.redis",
    ),
    Spec(
        "llama-index PostgresChatStore",
        "postgres",
        "comparison",
        "server: synchronous_commit=on",
        f"{_HERE}:li_postgres",
        needs="llama_index.storage.chat_store.postgres",
    ),
    Spec(
        "llama-index SQLAlchemyChatStore (aiosqlite)",
        "sqlite",
        "comparison",
        "rollback journal, synchronous=FULL",
        f"{_HERE}:li_sqlalchemy",
        needs="aiosqlite",
    ),
    Spec(
        "openai-agents SQLiteSession",
        "sqlite",
        "comparison",
        "rollback journal, synchronous=FULL (default)",
        f"{_HERE}:agents_sqlite",
        needs="agents",
    ),
    Spec(
        "openai-agents RedisSession",
        "redis",
        "comparison",
        "server: no persistence",
        f"{_HERE}:agents_redis",
        needs="agents.extensions.memory.redis_session",
    ),
    Spec(
        "openai-agents SQLAlchemySession (asyncpg)",
        "postgres",
        "comparison",
        "server: synchronous_commit=on",
        f"{_HERE}:agents_sqlalchemy",
        needs="asyncpg",
    ),
    # the floor
    Spec(
        "bare sqlite3 INSERT (WAL, NORMAL)",
        "sqlite",
        "floor",
        "WAL, synchronous=NORMAL",
        f"{_HERE}:bare_sqlite",
    ),
    Spec(
        "bare sqlite3 INSERT (WAL, FULL)",
        "sqlite",
        "floor",
        "WAL, synchronous=FULL",
        f"{_HERE}:bare_sqlite",
        {"synchronous": "FULL"},
    ),
    Spec(
        "bare redis-py RPUSH/LRANGE",
        "redis",
        "floor",
        "server: no persistence",
        f"{_HERE}:bare_redis",
        needs="redis",
    ),
    Spec(
        "bare psycopg INSERT/SELECT",
        "postgres",
        "floor",
        "server: synchronous_commit=on",
        f"{_HERE}:bare_postgres",
        needs="psycopg",
    ),
]
