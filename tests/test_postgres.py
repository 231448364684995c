"""PostgresSession beyond the conformance suite: construction, schema, plans, pools."""

from __future__ import annotations

import asyncio
import contextlib
import socket
import subprocess
import sys
import textwrap
import threading
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

import sessions
from tests.backends import POSTGRES_URL, drop_postgres_tables, params

pytestmark = pytest.mark.postgres

ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture(params=params(("postgres",)))
def pg(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[sessions.PostgresSession]:
    """A PostgresSession on the shared server with its own table prefix."""
    with request.param.open(tmp_path) as store:
        assert isinstance(store, sessions.PostgresSession)
        yield store


@pytest.fixture
def prefix() -> Iterator[str]:
    name = f"t{uuid.uuid4().hex[:12]}_"
    yield name
    drop_postgres_tables(POSTGRES_URL, name)


def user(i: int) -> sessions.Message:
    return {"role": "user", "content": f"m{i}"}


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


# -- construction ---------------------------------------------------------------------------


@pytest.mark.parametrize("bad", ["", "Upper_", "1abc", "a-b", "a b", 'x"; drop', "x" * 41, None])
def test_bad_table_prefix_is_refused(bad: object) -> None:
    with pytest.raises(sessions.ConfigurationError, match="table_prefix"):
        sessions.PostgresSession(POSTGRES_URL, table_prefix=bad)  # type: ignore[arg-type]


def test_bad_options_are_refused() -> None:
    with pytest.raises(sessions.ConfigurationError, match="connect_timeout"):
        sessions.PostgresSession(POSTGRES_URL, connect_timeout=0)
    with pytest.raises(sessions.ConfigurationError, match="min_size"):
        sessions.PostgresSession(POSTGRES_URL, min_size=3, max_size=2)
    with pytest.raises(sessions.ConfigurationError, match="unknown option"):
        sessions.connect("postgresql://127.0.0.1/test?tablePrefix=x_")
    with pytest.raises(sessions.ConfigurationError, match="bad value"):
        sessions.connect("postgresql://127.0.0.1/test?max_size=many")


def test_connect_by_url_with_options(prefix: str) -> None:
    for scheme in ("postgresql", "postgres"):
        url = (f"{scheme}://postgres@127.0.0.1:5432/test?table_prefix={prefix}"
               "&connect_timeout=3&min_size=0&max_size=2&prepare=false&application_name=t")
        with sessions.connect(url) as store:
            assert isinstance(store, sessions.PostgresSession)
            assert (store.table_prefix, store.connect_timeout, store.max_size, store.prepare) == (
                prefix, 3.0, 2, False)
            store.append(scheme, [user(0)])
            assert store.get(scheme) == [user(0)]


async def test_several_servers_by_url_and_by_dsn(prefix: str) -> None:
    """libpq multi-host: the first server is down, the store uses the next one."""
    down = free_port()
    for opened in (
        sessions.connect(f"postgresql://postgres@/test?host=127.0.0.1,127.0.0.1&port={down},5432"
                         f"&target_session_attrs=read-write&table_prefix={prefix}"),
        sessions.connect(f"postgresql://postgres@127.0.0.1:{down}/test?port=5432&table_prefix={prefix}"),
        sessions.PostgresSession(f"host=127.0.0.1,127.0.0.1 port={down},5432 user=postgres dbname=test "
                                 "target_session_attrs=read-write", table_prefix=prefix),
    ):
        async with opened as store:
            assert isinstance(store, sessions.PostgresSession)
            store.append("s", [user(0)])
            await store.aappend("s", [user(1)])
    with sessions.PostgresSession(POSTGRES_URL, table_prefix=prefix) as store:
        assert store.get("s") == [user(0), user(1)] * 3


def test_settings_like_the_seed(prefix: str) -> None:
    with sessions.PostgresSession(host="127.0.0.1", port=5432, user="postgres", database="test",
                                  table_prefix=prefix) as store:
        store.append("s", [user(0)])
        assert store.count("s") == 1


def test_existing_pools_are_used_and_left_open(prefix: str) -> None:
    from psycopg_pool import AsyncConnectionPool, ConnectionPool

    pool = ConnectionPool(POSTGRES_URL, min_size=1, max_size=2, open=True)
    try:
        store = sessions.PostgresSession(pool=pool, table_prefix=prefix)
        store.append("s", [user(0), user(1)])
        assert store.get("s") == [user(0), user(1)]  # transactional connections work too
        store.close()
        assert not pool.closed
        with pool.connection() as conn:
            assert conn.execute("SELECT 1").fetchone() == (1,)
    finally:
        pool.close()

    async def run() -> None:
        async with AsyncConnectionPool(POSTGRES_URL, min_size=1, max_size=2,
                                       kwargs={"autocommit": True}) as apool:
            store = sessions.PostgresSession(async_pool=apool, table_prefix=prefix)
            await store.aappend("s", [user(2)])
            assert await store.aget("s") == [user(0), user(1), user(2)]
            await store.aclose()
            assert not apool.closed

    asyncio.run(run())
    with pytest.raises(sessions.ConfigurationError, match="either"):
        sessions.PostgresSession(POSTGRES_URL, pool=pool)


def test_unreachable_server_fails_promptly_with_cause() -> None:
    store = sessions.PostgresSession(f"postgresql://postgres@127.0.0.1:{free_port()}/test",
                                     connect_timeout=1)
    started = time.monotonic()
    with pytest.raises(sessions.BackendUnavailableError) as caught:
        store.append("s", [user(0)])
    assert time.monotonic() - started < 5
    assert caught.value.operation == "append" and caught.value.session_id == "s"
    assert caught.value.__cause__ is not None

    async def run() -> None:
        with pytest.raises(sessions.BackendUnavailableError):
            await store.aget("s")
        await store.aclose()

    asyncio.run(run())


# -- schema --------------------------------------------------------------------------------------


def test_schema_is_versioned_and_migrated_once_under_concurrency(prefix: str) -> None:
    stores = [sessions.PostgresSession(POSTGRES_URL, table_prefix=prefix) for _ in range(6)]
    errors: list[BaseException] = []

    def first_use(store: sessions.PostgresSession, i: int) -> None:
        try:
            store.append(f"s{i}", [user(i)])
        except BaseException as error:  # pragma: no cover - reported below
            errors.append(error)

    threads = [threading.Thread(target=first_use, args=(s, i)) for i, s in enumerate(stores)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    assert stores[0].schema_version == 1
    assert sorted(stores[0].list_sessions()) == [f"s{i}" for i in range(6)]
    for store in stores:
        store.close()


def test_the_messages_table_may_be_hash_partitioned_by_session(prefix: str) -> None:
    """docs/scaling.md: tables made beforehand, partitioned, are used as they are, every
    operation works, and a windowed read scans one partition."""
    import psycopg
    from psycopg import sql

    messages = sql.Identifier(prefix + "messages")
    with psycopg.connect(POSTGRES_URL, autocommit=True) as conn:
        conn.execute(sql.SQL(
            "CREATE TABLE {} (session_ref bigint NOT NULL, seq bigint NOT NULL, body json NOT NULL,"
            " PRIMARY KEY (session_ref, seq)) PARTITION BY HASH (session_ref)").format(messages))
        for n in range(4):
            conn.execute(sql.SQL("CREATE TABLE {} PARTITION OF {} FOR VALUES WITH (MODULUS 4, REMAINDER {})")
                         .format(sql.Identifier(f"{prefix}messages_{n}"), messages, sql.Literal(n)))
    with sessions.PostgresSession(POSTGRES_URL, table_prefix=prefix) as store:
        for n in range(12):
            store.append(f"s{n}", [user(i) for i in range(5)])
        assert store.pop("s0") == user(4)
        store.replace("s1", [user(9)])
        store.clear("s2")
        store.delete("s3")
        assert [store.count(f"s{n}") for n in range(5)] == [4, 1, 0, 0, 5]
        assert store.get("s4", limit=2) == [user(3), user(4)]
        assert sorted(store.list_sessions()) == sorted(f"s{n}" for n in range(12) if n != 3)
        assert store.schema_version == 1
        with psycopg.connect(POSTGRES_URL) as conn:
            spread = [conn.execute(sql.SQL("SELECT count(*) FROM {}").format(
                sql.Identifier(f"{prefix}messages_{n}"))).fetchone() for n in range(4)]
            assert all(row is not None and row[0] > 0 for row in spread), spread
            plan = "\n".join(row[0] for row in conn.execute(
                "EXPLAIN (ANALYZE, COSTS OFF, TIMING OFF, SUMMARY OFF) " + store._statements.sql["get_last"],
                ("s4", 2)))
        scanned = [line for line in plan.splitlines()
                   if f"{prefix}messages_" in line and "never executed" not in line]
        assert len(scanned) == 1, plan


def test_newer_schema_is_refused(prefix: str) -> None:
    import psycopg
    from psycopg import sql

    with sessions.PostgresSession(POSTGRES_URL, table_prefix=prefix) as store:
        store.append("s", [user(0)])
    with psycopg.connect(POSTGRES_URL, autocommit=True) as conn:
        conn.execute(sql.SQL("UPDATE {} SET version = 99").format(sql.Identifier(prefix + "schema")))
    with sessions.PostgresSession(POSTGRES_URL, table_prefix=prefix) as store, \
            pytest.raises(sessions.ConfigurationError, match="newer"):
        store.get("s")


def test_windowed_read_is_an_index_scan(pg: sessions.PostgresSession) -> None:
    import psycopg

    for batch in range(20):
        pg.append("long", [user(batch * 100 + i) for i in range(100)])
    with psycopg.connect(POSTGRES_URL, autocommit=True) as conn:
        conn.execute(f"ANALYZE {pg.table_prefix}messages")
        plan = "\n".join(row[0] for row in conn.execute(
            "EXPLAIN " + pg._statements.sql["get_last"], ("long", 50)))
    assert "Index Scan Backward" in plan, plan
    assert "Sort" not in plan, plan
    assert pg.get("long", limit=50) == [user(i) for i in range(1950, 2000)]


def test_bodies_are_stored_exactly_as_encoded(pg: sessions.PostgresSession) -> None:
    import psycopg

    message = {"role": "user", "zeta": 1, "alpha": {"b": 2, "a": 1}, "content": "nul \x00 🦜"}
    pg.append("exact", [message])
    with psycopg.connect(POSTGRES_URL) as conn:
        row = conn.execute(f"SELECT body::text FROM {pg.table_prefix}messages").fetchone()
    assert row is not None
    assert row[0] == '{"role":"user","zeta":1,"alpha":{"b":2,"a":1},"content":"nul \\u0000 🦜"}'
    assert list(pg.get("exact")[0]) == ["role", "zeta", "alpha", "content"]


# -- concurrency ------------------------------------------------------------------------------


def test_pop_replace_and_clear_race_with_appends(pg: sessions.PostgresSession) -> None:
    """Appends racing with pops never duplicate or lose a sequence: what was appended
    is exactly what is left plus what was popped; count always matches."""
    popped: list[sessions.Message] = []
    stop = threading.Event()

    def writer(n: int) -> None:
        for i in range(60):
            pg.append("race", [{"role": "user", "content": f"{n}:{i}"}])

    def popper() -> None:
        while not stop.is_set():
            message = pg.pop("race")
            if message is not None:
                popped.append(message)

    threads = [threading.Thread(target=writer, args=(n,)) for n in range(3)]
    pop_thread = threading.Thread(target=popper)
    pop_thread.start()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    stop.set()
    pop_thread.join()
    left = pg.get("race")
    contents = sorted(m["content"] for m in left + popped)
    assert contents == sorted(f"{n}:{i}" for n in range(3) for i in range(60))
    assert pg.count("race") == len(left)

    def replacer() -> None:
        for _ in range(20):
            pg.replace("race", [{"role": "system", "content": "reset"}])
            pg.clear("race")

    threads = [threading.Thread(target=writer, args=(n,)) for n in range(2)]
    threads.append(threading.Thread(target=replacer))
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    left = pg.get("race")
    assert pg.count("race") == len(left)
    assert [m for m in left if m["role"] == "system"] in ([], [{"role": "system", "content": "reset"}])


async def test_list_sessions_streams_in_pages(pg: sessions.PostgresSession) -> None:
    pg.list_page_size = 7
    ids = sorted(f"id-{i}" for i in range(30))
    for session_id in ids:
        pg.append(session_id, [user(0)])
    iterator = pg.list_sessions()
    first = next(iterator)  # one page fetched, nothing held between pages
    pg.delete(ids[-1])  # changes between pages are seen
    pg.append("late", [user(0)])
    assert sorted([first, *iterator]) == sorted([*ids[:-1], "late"])
    assert sorted([s async for s in pg.alist_sessions()]) == sorted([*ids[:-1], "late"])


# -- the optional dependency -----------------------------------------------------------------------


def test_missing_psycopg_names_the_extra() -> None:
    script = textwrap.dedent("""
        import sys

        class Block:
            def find_spec(self, name, path=None, target=None):
                if name.split(".")[0] in ("psycopg", "psycopg_pool", "psycopg_binary", "psycopg_c"):
                    raise ImportError(f"No module named {name!r}", name=name)
                return None

        sys.meta_path.insert(0, Block())
        import sessions
        assert "psycopg" not in sys.modules and "sessions.postgres" not in sys.modules
        for attempt in (lambda: sessions.PostgresSession,
                        lambda: sessions.connect("postgresql://127.0.0.1/test")):
            try:
                attempt()
            except sessions.MissingDependencyError as error:
                assert error.extra == "postgres", error.extra
                assert "session-layer[postgres]" in str(error), str(error)
                assert isinstance(error, ImportError)
            else:
                raise AssertionError("no MissingDependencyError")
        try:
            from sessions import PostgresSession  # noqa: F401
        except sessions.MissingDependencyError as error:
            print("OK", error.package)
    """)
    result = subprocess.run([sys.executable, "-c", script], cwd=ROOT, capture_output=True,
                            text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "OK psycopg"


def test_importing_sessions_does_not_import_psycopg() -> None:
    result = subprocess.run(
        [sys.executable, "-c", "import sys, sessions; print('psycopg' in sys.modules)"],
        cwd=ROOT, capture_output=True, text=True, timeout=60,
    )
    assert result.stdout.strip() == "False", result.stderr


# -- pools, event loops, cancellation, prepared statements ------------------------------------


def _backends_named(application_name: str) -> int:
    import psycopg

    with psycopg.connect(POSTGRES_URL) as conn:
        row = conn.execute("SELECT count(*) FROM pg_stat_activity WHERE application_name = %s",
                           (application_name,)).fetchone()
    return 0 if row is None else int(row[0])


def test_new_event_loops_get_their_own_pool_and_nothing_leaks(prefix: str) -> None:
    name = f"sl-test-{uuid.uuid4().hex[:8]}"
    store = sessions.PostgresSession(POSTGRES_URL, table_prefix=prefix,
                                     connect_options={"application_name": name})
    for i in range(3):  # three event loops, one after another, one store
        asyncio.run(store.aappend("s", [user(i)]))
    assert asyncio.run(store.aget("s")) == [user(0), user(1), user(2)]
    store.append("s", [user(3)])
    assert _backends_named(name) >= 1
    store.close()
    deadline = time.monotonic() + 5
    while _backends_named(name) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert _backends_named(name) == 0


async def test_cancelled_append_is_all_or_nothing(pg: sessions.PostgresSession) -> None:
    batch = [user(i) for i in range(5_000)]
    for delay in (0.0, 0.01, 0.03, 0.5):
        task = asyncio.create_task(pg.aappend(f"c{delay}", batch))
        await asyncio.sleep(delay)
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
        assert await pg.acount(f"c{delay}") in (0, len(batch))
        assert len(await pg.aget(f"c{delay}")) in (0, len(batch))
    await pg.aappend("after", [user(0)])  # the pool is still healthy
    assert await pg.aget("after") == [user(0)]
    await pg.aclose()


@pytest.mark.parametrize("prepare", [True, False])
def test_prepare_false_sends_no_prepared_statements(prefix: str, prepare: bool) -> None:
    with sessions.PostgresSession(POSTGRES_URL, table_prefix=prefix, prepare=prepare,
                                  max_size=1) as store:
        for i in range(10):
            store.append("s", [user(i)])
            store.get("s", limit=2)
        pool = store._pools.sync()
        with pool.connection() as conn:
            row = conn.execute("SELECT count(*) FROM pg_prepared_statements").fetchone()
    assert row is not None
    assert (row[0] > 0) is prepare


def test_event_loops_in_threads_share_one_store(prefix: str) -> None:
    """Each thread's event loop gets its own pool; none disturbs another's."""
    store = sessions.PostgresSession(POSTGRES_URL, table_prefix=prefix, max_size=2)

    async def work(n: int) -> None:
        for i in range(15):
            await store.aappend("shared", [{"role": "user", "content": f"{n}:{i}"}])
            await store.aget("shared", limit=3)

    threads = [threading.Thread(target=asyncio.run, args=(work(n),)) for n in range(3)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    got = [m["content"] for m in store.get("shared")]
    assert sorted(got) == sorted(f"{n}:{i}" for n in range(3) for i in range(15))
    store.close()


def _append_in_child(store: sessions.PostgresSession, start: object) -> None:
    start.wait()  # type: ignore[attr-defined]
    for i in range(100, 130):
        store.append("s", [user(i)])
    asyncio.run(store.aappend("s", [user(130)]))
    store.close()  # closes the child's connections only


def test_a_forked_child_never_uses_the_given_pools(prefix: str) -> None:
    """Given pools hold the parent's connections and worker threads: a forked child
    opens its own with the pool's settings, while the parent keeps using the pool."""
    import multiprocessing

    from psycopg_pool import ConnectionPool

    with ConnectionPool(POSTGRES_URL, min_size=2, max_size=2, kwargs={"autocommit": True}) as pool:
        store = sessions.PostgresSession(pool=pool, table_prefix=prefix)
        store.append("s", [user(0)])  # the pool's connections are in use and idle
        context = multiprocessing.get_context("fork")
        start = context.Event()
        children = [context.Process(target=_append_in_child, args=(store, start)) for _ in range(2)]
        for child in children:
            child.start()
        start.set()
        for i in range(1, 31):  # at the same time: one socket in two processes crosses replies
            store.append("s", [user(i)])
        for child in children:
            child.join(60)
        assert [child.exitcode for child in children] == [0, 0]
        got = [m["content"] for m in store.get("s")]
        assert [c for c in got if int(c[1:]) < 100] == [f"m{i}" for i in range(31)]
        assert sorted(c for c in got if int(c[1:]) >= 100) == sorted(
            [f"m{i}" for i in range(100, 131)] * 2)
        with pool.connection() as conn:  # the parent's connections were never closed
            assert conn.execute("SELECT 1").fetchone() == (1,)
        store.close()


async def test_a_given_async_pool_serves_its_loop_and_other_loops_get_their_own(prefix: str) -> None:
    from psycopg_pool import AsyncConnectionPool

    async with AsyncConnectionPool(POSTGRES_URL, min_size=1, max_size=2,
                                   kwargs={"autocommit": True}) as apool:
        store = sessions.PostgresSession(async_pool=apool, table_prefix=prefix)
        await store.aappend("s", [user(0)])
        # Another event loop, in a thread, while this one is still running.
        await asyncio.to_thread(asyncio.run, store.aappend("s", [user(1)]))
        await asyncio.to_thread(asyncio.run, store.aappend("s", [user(2)]))
        await store.aappend("s", [user(3)])
        assert await store.aget("s") == [user(i) for i in range(4)]
        assert store.get("s") == [user(i) for i in range(4)]  # sync: its own pool too
        await store.aclose()
        assert not apool.closed
