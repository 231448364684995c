"""Bad input to the read-only sources: missing files, foreign tables, damaged rows, bad URLs.

Every failure is a ``SessionError`` naming the file, table or row; a migration that
meets a damaged session writes nothing of it to the target.
"""

from __future__ import annotations

import json
import sqlite3
import subprocess
import sys
import textwrap
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

import adapters.sources
import sessions
from benchmarks.peers import PEERS, Peer, PeerStore, canonical, history
from tests.test_sources import POSTGRES_URL, REDIS_URL, place, require

ROOT = Path(__file__).resolve().parents[1]


def test_public_names() -> None:
    assert sorted(adapters.sources.__all__) == sorted([
        "UNKNOWN_TIME", "AgentsRedisSource", "AgentsSQLSource", "LangChainPostgresSource",
        "LangChainRedisSource", "LangChainSQLSource", "LlamaIndexFileSource", "LlamaIndexPostgresSource",
        "LlamaIndexRedisSource", "LlamaIndexSQLSource", "PeerSource", "ReadOnlySourceError",
    ])
    for name in adapters.sources.__all__:
        assert getattr(adapters.sources, name) is not None
    assert issubclass(adapters.sources.ReadOnlySourceError, sessions.SessionError)


# -- files that are missing or are not the peer's ---------------------------------------------


@pytest.mark.parametrize("scheme", ["langchain+sqlite", "llamaindex+file", "llamaindex-sql+sqlite",
                                    "agents+sqlite"])
def test_a_missing_file_is_named(scheme: str, tmp_path: Path) -> None:
    missing = tmp_path / "no" / "such.db"
    with pytest.raises(sessions.ConfigurationError, match=str(missing)):
        sessions.connect(f"{scheme}:///{missing}")
    assert not missing.parent.exists()


@pytest.mark.parametrize("scheme", ["langchain+sqlite", "llamaindex-sql+sqlite", "agents+sqlite"])
def test_a_file_that_is_not_a_database_is_named(scheme: str, tmp_path: Path) -> None:
    path = tmp_path / "notes.db"
    path.write_text("these are my notes, not a database\n" * 100)
    with sessions.connect(f"{scheme}:///{path}") as source, \
            pytest.raises(sessions.ConfigurationError, match="not a SQLite database") as caught:
        list(source.list_sessions())
    assert str(path) in str(caught.value)
    assert path.read_text().startswith("these are my notes")


@pytest.mark.parametrize(("content", "reason"), [
    ("{not json", "not JSON"),
    ("[]", "not a SimpleChatStore persist file"),
    (json.dumps({"store": {"alice": {"role": "user"}}}), "key 'alice' holds a dict"),
])
def test_a_simple_chat_store_file_that_is_not_one(content: str, reason: str, tmp_path: Path) -> None:
    path = tmp_path / "chat_store.json"
    path.write_text(content)
    with sessions.connect(f"llamaindex+file:///{path}") as source, \
            pytest.raises(sessions.CorruptRecordError, match=reason) as caught:
        source.get("alice")
    assert str(path) in str(caught.value)


# Tables of the right name whose columns are not the peer's.
FOREIGN_TABLES = {
    "langchain+sqlite": ("CREATE TABLE message_store (id INTEGER PRIMARY KEY, body TEXT)",
                         "not a SQLChatMessageHistory table"),
    "llamaindex-sql+sqlite": ("CREATE TABLE llama_index_memory (id INTEGER PRIMARY KEY, key TEXT,"
                              " data JSON)", "not a SQLAlchemyChatStore table"),
    "agents+sqlite": ("CREATE TABLE agent_sessions (session_id TEXT, created_at TIMESTAMP,"
                      " updated_at TIMESTAMP); CREATE TABLE agent_messages (id INTEGER PRIMARY KEY,"
                      " session_id TEXT, item TEXT)", "not a SQLiteSession/SQLAlchemySession messages table"),
}


@pytest.mark.parametrize("scheme", sorted(FOREIGN_TABLES))
def test_a_table_that_is_not_the_peers_layout(scheme: str, tmp_path: Path) -> None:
    path = tmp_path / "other.db"
    schema, reason = FOREIGN_TABLES[scheme]
    with sqlite3.connect(path) as conn:
        conn.executescript(schema)
    with sessions.connect(f"{scheme}:///{path}") as source:
        for read in (lambda: list(source.list_sessions()), lambda: source.get("alice"),
                     lambda: source.count("alice")):
            with pytest.raises(sessions.ConfigurationError, match=reason):
                read()


@pytest.mark.parametrize("scheme", sorted(FOREIGN_TABLES))
def test_a_missing_table_is_named(scheme: str, tmp_path: Path) -> None:
    path = tmp_path / "empty.db"
    sqlite3.connect(path).close()
    with sessions.connect(f"{scheme}:///{path}?{_table_option(scheme)}=custom_name") as source, \
            pytest.raises(sessions.ConfigurationError, match="has no table 'custom_name'"):
        list(source.list_sessions())


def _table_option(scheme: str) -> str:
    return "sessions_table" if scheme.startswith("agents") else "table"


def test_postgres_tables_that_are_not_the_peers_layout() -> None:
    require("postgres")
    import psycopg

    name = f"foreign_{uuid.uuid4().hex[:10]}"
    with psycopg.connect(POSTGRES_URL, autocommit=True) as conn:
        conn.execute(f"CREATE TABLE {name} (id serial PRIMARY KEY, key varchar, session_id text,"
                     " value text, message jsonb, created_at timestamptz)")
    base = POSTGRES_URL.partition("://")[2]
    try:
        for url, reason in [
            (f"langchain-postgres+postgresql://{base}?table={name}", "not a PostgresChatMessageHistory"),
            (f"llamaindex+postgresql://{base}?table={name}", "not a PostgresChatStore"),
            (f"llamaindex-sql+postgresql://{base}?table={name}", "not a SQLAlchemyChatStore"),
            (f"langchain+postgresql://{base}?table=no_such_{name}", "has no table"),
        ]:
            with sessions.connect(url) as source, pytest.raises(sessions.ConfigurationError, match=reason):
                list(source.list_sessions())
    finally:
        with psycopg.connect(POSTGRES_URL, autocommit=True) as conn:
            conn.execute(f"DROP TABLE {name}")


# -- damaged rows -------------------------------------------------------------------------


def _sqlite(path: Path, statement: str, *params: Any) -> None:
    with sqlite3.connect(path) as conn:
        conn.execute(statement, params)


def _postgres(statement: str, *params: Any) -> None:
    import psycopg
    from psycopg import sql

    with psycopg.connect(POSTGRES_URL, autocommit=True) as conn:
        conn.execute(sql.SQL(statement), params)  # type: ignore[arg-type]


def _redis(command: str, *args: Any) -> None:
    import redis

    with redis.Redis.from_url(REDIS_URL) as client:
        client.execute_command(command, *args)


# How to damage one session of each layout, as a stray writer or a disk fault would,
# and what the error then names. Each gets (peer store, session id).
Damage = Callable[[Any, str], str]


def _lc_sqlite(store: Any, sid: str) -> str:
    _sqlite(Path(store.engine.url.database), "INSERT INTO message_store (session_id, message) VALUES (?, ?)",
            sid, '{"type": "human", "data": {"content": ')
    return "row id="


def _lc_postgres(store: Any, sid: str) -> str:
    _postgres(f'INSERT INTO "{store.table}" (session_id, message) VALUES (%s, %s)',
              sid, json.dumps({"type": "robot", "data": {}}))
    return "row id="


def _lc_postgres_uuid(store: Any, sid: str) -> str:
    _postgres(f'INSERT INTO "{store.table}" (session_id, message) VALUES (%s, %s)', sid, '{"data": 1}')
    return "row id="


def _lc_redis(store: Any, sid: str) -> str:
    _redis("LPUSH", store.prefix + sid, "\xff not json")
    return "element 0 of list"


def _li_file(store: Any, sid: str) -> str:
    document = json.loads(store.path.read_text())
    document["store"][sid].append({"role": "wizard", "content": "?"})
    store.path.write_text(json.dumps(document))
    return f"message {len(document['store'][sid]) - 1} of key"


def _li_redis(store: Any, sid: str) -> str:
    _redis("RPUSH", store.prefix + sid, '{"role": 7}')
    return "element"


def _li_postgres(store: Any, sid: str) -> str:
    _postgres(f'UPDATE "{store.table}" SET value = array_append(value, %s::jsonb) WHERE key = %s',
              '{"role": "wizard"}', sid)
    return "element"


def _li_sql(store: Any, sid: str) -> str:
    statement = (f'INSERT INTO "{store.table}" (key, timestamp, role, status, data)'
                 " VALUES (?, 9000000000000000000, 'user', 'active', ?)")
    if store.postgres:
        _postgres(statement.replace("?", "%s"), sid, '{"role": ["no"]}')
    else:
        _sqlite(Path(store.url.partition(":///")[2]), statement, sid, '{"role": ["no"]}')
    return "row id="


def _agents_sql(store: Any, sid: str) -> str:
    if hasattr(store, "path"):
        _sqlite(store.path, "INSERT INTO agent_messages (session_id, message_data) VALUES (?, ?)",
                sid, "[1, 2, 3]")
    else:
        _postgres(f'INSERT INTO "{store.messages_table}" (session_id, message_data) VALUES (%s, %s)',
                  sid, "{truncated")
    return "row id="


def _agents_redis(store: Any, sid: str) -> str:
    _redis("RPUSH", f"{store.prefix}:{sid}:messages", "not json")
    return "element"


DAMAGE: dict[tuple[str, str], Damage] = {
    ("langchain+sqlite", "SQLChatMessageHistory"): _lc_sqlite,
    ("langchain+postgresql", "SQLChatMessageHistory"): _lc_postgres,
    ("langchain-postgres+postgresql", "PostgresChatMessageHistory"): _lc_postgres_uuid,
    ("langchain+redis", "RedisChatMessageHistory"): _lc_redis,
    ("llamaindex+file", "SimpleChatStore"): _li_file,
    ("llamaindex+redis", "RedisChatStore"): _li_redis,
    ("llamaindex+postgresql", "PostgresChatStore"): _li_postgres,
    ("llamaindex-sql+sqlite", "SQLAlchemyChatStore"): _li_sql,
    ("llamaindex-sql+postgresql", "SQLAlchemyChatStore"): _li_sql,
    ("agents+sqlite", "SQLiteSession"): _agents_sql,
    ("agents+sqlite", "SQLAlchemySession"): _agents_sql,
    ("agents+postgresql", "SQLAlchemySession"): _agents_sql,
    ("agents+redis", "RedisSession"): _agents_redis,
}


def test_every_layout_has_a_damage_case() -> None:
    assert set(DAMAGE) == {(peer.scheme, peer.writer) for peer in PEERS}


@pytest.fixture(params=PEERS, ids=lambda peer: f"{peer.scheme}-{peer.writer}")
def small_peer(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[tuple[Peer, PeerStore, list[str]]]:
    peer: Peer = request.param
    require(peer.server)
    store = peer.open(place(tmp_path))
    ids = ([str(uuid.UUID(int=i + 1)) for i in range(3)] if peer.scheme.startswith("langchain-postgres")
           else ["a", "b", "c"])
    try:
        store.write({sid: history(peer.family, 6, n * 100) for n, sid in enumerate(ids)})
        yield peer, store, ids
    finally:
        store.remove()


def test_a_damaged_row_is_named_and_its_session_not_migrated(
        small_peer: tuple[Peer, PeerStore, list[str]], tmp_path: Path) -> None:
    peer, store, ids = small_peer
    damaged = ids[1]
    where = DAMAGE[(peer.scheme, peer.writer)](store, damaged)
    with sessions.connect(store.url) as source:
        with pytest.raises(sessions.CorruptRecordError, match=where) as caught:
            source.get(damaged)
        assert caught.value.session_id == damaged and caught.value.operation == "get"
        assert source.get(ids[0]) and source.get(ids[2])  # the others still read

        with sessions.SQLiteSession(tmp_path / "target.db") as target:
            with pytest.raises(sessions.CorruptRecordError):
                sessions.migrate(source, target)
            assert target.info(damaged) is None and target.get(damaged) == []
            for sid in target.list_sessions():
                assert target.get(sid) == source.get(sid)


# -- URLs and options -------------------------------------------------------------------------


@pytest.fixture
def database_file(tmp_path: Path) -> Path:
    path = tmp_path / "peer.db"
    sqlite3.connect(path).close()
    return path


@pytest.mark.parametrize("url", [
    "langchain+sqlite:///{db}?table=a;drop table x",
    "langchain+sqlite:///{db}?table=1abc",
    "langchain+sqlite:///{db}?session_id_field=a%22b",
    "langchain+sqlite:///{db}?colour=blue",
    "langchain+sqlite://somehost/{db}",
    "agents+sqlite:///{db}?sessions_table=a b",
    "agents+sqlite:///{db}?messages_table=",
    "llamaindex-sql+sqlite:///{db}?schema=public",
    "llamaindex-sql+sqlite:///{db}?timeout=-1",
    "llamaindex+file://host/chat_store.json",
    "llamaindex+file:///{db}?table=x",
    "agents+sqlite://",
    "langchain-postgres+postgresql://postgres@127.0.0.1:5432/test",
    "llamaindex+postgresql://postgres@127.0.0.1:5432/test?schema=bad-name",
    "langchain+postgresql://postgres@127.0.0.1:5432/test?connect_timeout=0",
    "langchain+redis://127.0.0.1:6379/zero",
    "agents+redis://127.0.0.1:6379/0?socket_timeout=nan",
    "llamaindex+redis://127.0.0.1:6379/0?prefix=x",
])
def test_bad_urls_are_configuration_errors(url: str, database_file: Path) -> None:
    with pytest.raises(sessions.ConfigurationError):
        sessions.connect(url.format(db=database_file))


def _run(code: str, blocked: str) -> str:
    block = textwrap.dedent(f"""
        import sys

        class Block:
            def find_spec(self, name, path=None, target=None):
                if name == {blocked!r} or name.startswith({blocked!r} + "."):
                    raise ModuleNotFoundError(f"No module named {{name!r}}", name=name)
                return None

        sys.meta_path.insert(0, Block())
    """)
    done = subprocess.run([sys.executable, "-c", block + textwrap.dedent(code)], cwd=ROOT,
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    return done.stdout


@pytest.mark.parametrize(("blocked", "url", "extra"), [
    ("langchain_core", "langchain+sqlite:///{db}", "langchain"),
    ("llama_index", "llamaindex+file:///{db}", "llamaindex"),
    ("agents", "agents+sqlite:///{db}", "agents"),
    ("psycopg", "agents+postgresql://postgres@127.0.0.1:5432/test", "postgres"),
    ("redis", "langchain+redis://127.0.0.1:6379/0", "redis"),
])
def test_a_missing_package_names_the_extra(blocked: str, url: str, extra: str, database_file: Path) -> None:
    out = _run(f"""
        import sessions
        try:
            sessions.connect({url.format(db=database_file)!r})
        except sessions.MissingDependencyError as error:
            print(error.extra)
            print(error)
    """, blocked)
    first, message = out.splitlines()
    assert first == extra and f"pip install 'session-layer[{extra}]'" in message


# -- older layouts and live reads -------------------------------------------------------------


def test_an_older_simple_chat_store_file_holding_its_document_as_a_string(tmp_path: Path) -> None:
    from adapters.llamaindex import to_canonical
    from benchmarks.peers import llamaindex_messages

    messages = llamaindex_messages(9)
    path = tmp_path / "chat_store.json"
    document = {"store": {"alice": [m.model_dump(mode="json") for m in messages]},
                "class_name": "SimpleChatStore"}
    path.write_text(json.dumps(json.dumps(document)))  # json.dump(self.json()) in older versions
    with sessions.connect(f"llamaindex+file:///{path}") as source:
        assert source.get("alice") == [to_canonical(m) for m in messages]


def test_a_legacy_postgres_chat_store_table_is_found() -> None:
    require("postgres")
    from llama_index.storage.chat_store.postgres import PostgresChatStore
    from llama_index.storage.chat_store.postgres.base import get_data_model
    from sqlalchemy import create_engine
    from sqlalchemy.ext.asyncio import async_sessionmaker, create_async_engine
    from sqlalchemy.orm import declarative_base, sessionmaker

    from adapters.llamaindex import to_canonical
    from benchmarks.peers import llamaindex_messages

    name = f"legacy_{uuid.uuid4().hex[:10]}"
    engine = create_engine(POSTGRES_URL.replace("postgresql://", "postgresql+psycopg://"))
    async_engine = create_async_engine(POSTGRES_URL.replace("postgresql://", "postgresql+asyncpg://"))
    base = declarative_base()
    get_data_model(base, name, "public", use_legacy_table_name=True)  # as older versions named it
    base.metadata.create_all(engine)
    try:
        store = PostgresChatStore(session=sessionmaker(engine),
                                  async_session=async_sessionmaker(async_engine), table_name=name)
        messages = llamaindex_messages(12)
        store.set_messages("alice", messages)
        base_url = POSTGRES_URL.partition("://")[2]
        with sessions.connect(f"llamaindex+postgresql://{base_url}?table={name}") as source:
            assert list(source.list_sessions()) == ["alice"]
            assert source.get("alice") == [to_canonical(m) for m in store.get_messages("alice")]
    finally:
        engine.dispose()
        _postgres(f'DROP TABLE IF EXISTS "data_{name}"')


@pytest.mark.parametrize("scheme", ["langchain+sqlite", "llamaindex+file", "agents+sqlite"])
def test_a_source_reads_what_the_peer_writes_after_it_was_opened(scheme: str, tmp_path: Path) -> None:
    peer = next(p for p in PEERS if p.scheme == scheme)
    store = peer.open(place(tmp_path))
    store.write({"alice": history(peer.family, 8, 0)})
    with sessions.connect(store.url) as source:
        before = source.get("alice")
        store.write({"alice": history(peer.family, 12, 0), "bob": history(peer.family, 3, 50)})
        after = source.get("alice")
        assert len(after) > len(before) and sorted(source.list_sessions()) == ["alice", "bob"]
        assert source.get("bob") == canonical(peer.family, store.read("bob"))
