"""Property tests: arbitrary bad values at every public entry point.

Non-finite numbers, huge ints, bools where numbers go, bad UTF-8, lone surrogates, NUL
and other control characters, deep nesting, odd URLs and wrong types are thrown at the
constructors, ``connect()``, the contract methods, ``prune``, ``migrate`` and the CLI.
Each call must either work or raise a :class:`sessions.SessionError` (the CLI: exit 1
with one line ``sessions: error: ...``, or 2 with the usage), leave the stored data as
it was, and never show a password in a message, a traceback or a ``repr``.
"""

from __future__ import annotations

import asyncio
import contextlib
import io
import math
import os
import tempfile
import traceback
from collections.abc import Callable, Iterator
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import quote

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import sessions
from sessions import cli
from tests.backends import Backend, params
from tests.conformance.messages import text

PROPERTY = settings(max_examples=80, deadline=None, suppress_health_check=list(HealthCheck))
SERVER_PROPERTY = settings(max_examples=25, deadline=None, suppress_health_check=list(HealthCheck))


def _deep(depth: int) -> Any:
    value: Any = 0
    for _ in range(depth):
        value = [value]
    return value


BAD_NUMBERS = st.sampled_from([
    math.nan, math.inf, -math.inf, -1, 0, -0.0, True, False, 10**5000, -(10**5000), 1e308, 2**64,
    -(2**63), 1.5, 1e-300,
])
BAD_TEXT = st.sampled_from([
    "", "\x00", "a\x00b", "\ud800", "\x1b[2J", "\x1b]0;title\x07", "\u202e", "x" * 5000, " ", "nan",
    "../../etc/passwd", "%00", "{}", "\n",
])
WRONG_TYPES = st.sampled_from([None, b"bytes", bytearray(b"x"), [], {}, set(), object(), (1,), Path("p")])
BAD_VALUES = st.one_of(BAD_NUMBERS, BAD_TEXT, WRONG_TYPES, st.integers(), st.floats(), st.text(max_size=20))


def _markers_absent(text: str) -> bool:
    return "Zq9" not in text and "Wk7" not in text


def _assert_no_secret(error: BaseException | None, *objects: object) -> None:
    """Neither the formatted traceback of ``error`` (every message a log would show)
    nor the repr of ``objects`` holds a password marker."""
    if error is not None:
        shown = "".join(traceback.format_exception(error))
        assert _markers_absent(shown), shown
        assert _markers_absent(repr(error))
    for value in objects:
        assert _markers_absent(repr(value)), repr(value)


@contextlib.contextmanager
def _scratch_directory() -> Iterator[Path]:
    """A working directory for stores that create files (relative paths land here)."""
    previous = os.getcwd()
    with tempfile.TemporaryDirectory() as directory:
        os.chdir(directory)
        try:
            yield Path(directory)
        finally:
            os.chdir(previous)


def _close(store: object) -> None:
    with contextlib.suppress(sessions.SessionError):
        store.close()  # type: ignore[attr-defined]


# -- constructors -------------------------------------------------------------------------


def _constructors() -> dict[str, tuple[Callable[..., Any], dict[str, Any], bool]]:
    """name -> (factory, valid keyword arguments, whether calls stay on this machine)."""
    return {
        "SQLiteSession": (sessions.SQLiteSession, {"path": "a.db", "synchronous": "NORMAL",
                                                   "timeout": 5.0}, True),
        "FileSession": (sessions.FileSession, {"directory": "files", "fsync": False}, True),
        "RedisSession": (sessions.RedisSession, {"host": "127.0.0.1", "port": 1, "db": 0,
                                                 "username": None, "password": "Zq9pw#/?@Wk7",
                                                 "ssl": False, "cluster": False, "prefix": "p:",
                                                 "ttl": 60, "socket_timeout": 1.0}, False),
        "PostgresSession": (sessions.PostgresSession, {"host": "127.0.0.1", "port": 1, "user": "u",
                                                       "password": "Zq9pw#/?@Wk7", "database": "d",
                                                       "table_prefix": "p_", "min_size": 0,
                                                       "max_size": 2, "connect_timeout": 1.0,
                                                       "prepare": True, "connect_options": {}},
                            False),
        "ConversationsSession": (sessions.ConversationsSession, {
            "id_map": "map.db", "api_key": "Zq9key#Wk7", "base_url": "http://127.0.0.1:1/v1",
            "timeout": 1.0, "max_retries": 0, "map_timeout": 5.0}, False),
        "with_compression": (lambda **kw: sessions.with_compression(sessions.MemorySession(), **kw),
                             {"algorithm": "gzip", "level": 6, "threshold": 0, "max_size": 4096},
                             True),
        "with_encryption": (lambda **kw: sessions.with_encryption(sessions.MemorySession(), **kw),
                            {"key": bytes(32)}, True),
    }


@st.composite
def constructor_calls(draw: st.DrawFn) -> tuple[str, dict[str, Any]]:
    name = draw(st.sampled_from(sorted(_constructors())))
    valid = dict(_constructors()[name][1])
    for option in draw(st.lists(st.sampled_from(sorted(valid)), min_size=1, max_size=2, unique=True)):
        valid[option] = draw(BAD_VALUES)
    return name, valid


@PROPERTY
@given(call=constructor_calls())
def test_constructors_refuse_bad_options_with_a_session_error(call: tuple[str, dict[str, Any]]) -> None:
    name, kwargs = call
    factory, _, local = _constructors()[name]
    with _scratch_directory():
        try:
            store = factory(**kwargs)
        except sessions.SessionError as error:
            _assert_no_secret(error)
            return
        try:
            _assert_no_secret(None, store)
            if local:  # a store that was accepted works, or fails with our errors
                try:
                    store.append("s", [text(0)])
                    assert store.get("s") == [text(0)]
                except sessions.SessionError as error:
                    _assert_no_secret(error)
        finally:
            _close(store)


# -- connect() and URLs -------------------------------------------------------------------

OPTION_NAMES = sorted({
    "prefix", "ttl", "socket_timeout", "timeout", "synchronous", "fsync", "table_prefix",
    "connect_timeout", "min_size", "max_size", "prepare", "sslmode", "base_url", "max_retries",
    "compress", "compress_level", "compress_threshold", "compress_max_size", "encrypt_key_env",
    "colour",
})
OPTION_VALUES = ["nan", "inf", "-inf", "-1", "0", "1e309", "9" * 30, "9" * 5000, "", "true", "x",
                 "%00", "1.5", "100000000", "gzip", "NORMAL", "%1b[2J"]
PASSWORD_CHARS = st.sampled_from([*"ab12#@%/?:[]!$&'()*+,;= \t", "\x00", "\u202e", "é"])


@st.composite
def store_urls(draw: st.DrawFn, reachable: bool = True) -> str:
    """Store URLs, odd and valid, with a marked password. With ``reachable=False`` no
    URL can name a live server (only loopback port 1, or a port that is refused):
    what the CLI is given must never write to the shared test servers."""
    scheme = draw(st.sampled_from(["redis", "rediss", "redis+cluster", "postgresql", "postgres",
                                   "sqlite", "file", "memory", "openai+conversations", "nowhere"]))
    password = "Zq9" + "".join(draw(st.lists(PASSWORD_CHARS, max_size=6))) + "Wk7"
    if draw(st.booleans()):
        password = quote(password, safe="")
    userinfo = draw(st.sampled_from(["", "user:{}@", ":{}@", "u@"])).format(password)
    if reachable:
        host = draw(st.sampled_from(["127.0.0.1", "localhost", "[::1]", "[::1", "", "db.internal", "h st"]))
        port = draw(st.sampled_from(["", ":6379", ":99999", ":-1", ":abc", ":", ":0", ":" + "9" * 30]))
    else:
        host = draw(st.sampled_from(["127.0.0.1", "[::1]", "[::1", ""]))
        port = draw(st.sampled_from([":1", ":99999", ":-1", ":abc", ":" + "9" * 30]))
    # Relative paths only: the stores that create files do so in a scratch directory.
    path = draw(st.sampled_from(["", "/", "/0", "/db", "/x.db", "/a#b", "/a%23b", "/%zz", "/0/1",
                                 "/..", "/sub/x.db", "/\x1b"]))
    pairs = draw(st.lists(st.tuples(st.sampled_from(OPTION_NAMES), st.sampled_from(OPTION_VALUES)),
                          max_size=3))
    query = "&".join(f"{k}={v}" for k, v in pairs)
    tail = draw(st.sampled_from(["", "#", "#frag"]))
    if scheme in ("sqlite", "file", "openai+conversations") and not (userinfo or host or port):
        return f"{scheme}:{path.lstrip('/') or 'x'}" + (f"?{query}" if query else "") + tail
    return f"{scheme}://{userinfo}{host}{port}{path}" + (f"?{query}" if query else "") + tail


@PROPERTY
@given(url=store_urls())
def test_connect_gives_a_store_or_a_session_error_and_never_shows_a_password(url: str) -> None:
    with _scratch_directory():
        try:
            store = sessions.connect(url)
        except sessions.SessionError as error:
            _assert_no_secret(error)
            return
        try:
            _assert_no_secret(None, store)
        finally:
            _close(store)


@pytest.mark.parametrize(
    ("url", "secret"),
    [
        ("redis://:hunter2@db.internal:99999/0", "hunter2"),
        ("redis://:hun#ter2@db.internal:99999/0", "hun#ter2"),
        ("redis://user:hun/ter2@db.internal/0", "ter2"),
        ("postgresql://u:hunter2@h:99999/db", "hunter2"),
        ("openai+conversations://key:hunter2@host/map.db", "hunter2"),
        ("sqlite://u:hunter2@/x.db", "hunter2"),
        ("file://u:hunter2@/dir", "hunter2"),
        ("memory://u:hunter2@", "hunter2"),
        ("redis://:hunter2@[::1/0", "hunter2"),
        ("redis://:hunter2@h/0\n", "hunter2"),
        ("redis://user:hun][ter2@127.0.0.1:1", "ter2"),  # urlsplit's error quotes the text after ']'
        ("postgresql://u:hun[ter2@h/db", "ter2"),
    ],
)
def test_url_errors_never_show_the_password(url: str, secret: str) -> None:
    with _scratch_directory(), pytest.raises(sessions.ConfigurationError) as caught:
        sessions.connect(url)
    shown = "".join(traceback.format_exception(caught.value))
    assert secret not in shown and quote(secret, safe="") not in shown, shown


def test_passwords_with_special_characters_and_fragments() -> None:
    parsed = sessions.StoreURL.parse("redis://:pa#ss@h:6380/2")
    assert (parsed.password, parsed.host, parsed.port, parsed.path) == ("pa#ss", "h", 6380, "/2")
    assert sessions.StoreURL.parse("redis://:p%23%40%2F%3Fs@h/0").password == "p#@/?s"
    assert sessions.StoreURL.parse("redis://u:p@ss@h/0").password == "p@ss"
    for url in (parsed, sessions.StoreURL.parse("redis://u:p%40ss@h/0")):
        assert "ss" not in repr(url) and "***" in url.redacted
    store = sessions.RedisSession("redis://:pa#ss@127.0.0.1:6379/0")
    assert store._clients.settings.password == "pa#ss" and "pa#ss" not in repr(store)
    with pytest.raises(sessions.ConfigurationError, match="fragment"):
        sessions.connect("sqlite:///chats#2024.db")
    with _scratch_directory() as directory:
        sessions.connect("sqlite:///chats%232024.db").close()
        assert (directory / "chats#2024.db").exists() and not (directory / "chats").exists()


# -- the contract methods -----------------------------------------------------------------


class _Unserialisable:
    pass


BAD_JSON = st.sampled_from([
    math.nan, math.inf, 10**5000, -(10**5000), _deep(65), _deep(100_000), {1: "x"}, {"k": {2}},
    b"bytes", _Unserialisable(), "\ud800", {"\udfff": 1}, (1, {2, 3}),
])
BAD_MESSAGES = st.one_of(
    st.builds(lambda v: {"role": "user", "content": "x", "extra": v}, BAD_JSON),
    st.builds(lambda v: {"role": "user", "content": v}, BAD_JSON | st.sampled_from([1, [1], [{}]])),
    st.builds(lambda v: {"role": v, "content": "x"}, BAD_VALUES),
    st.sampled_from([{"role": "tool", "content": "x"}, {"role": "assistant", "tool_calls": "x"},
                     {"role": "assistant", "tool_calls": [1]}, {"role": "user", "name": 1},
                     {"content": "no role"}, {"envelope": {"v": "1"}}, {"envelope": 1, "x": 2}]),
    WRONG_TYPES, BAD_TEXT,
)
BAD_BATCHES = st.one_of(
    st.builds(lambda m: [text(0), m], BAD_MESSAGES),
    st.builds(lambda m: (text(0), m), BAD_MESSAGES),
    WRONG_TYPES, BAD_TEXT, st.just(text(0)),
)
BAD_IDS = st.one_of(BAD_TEXT, WRONG_TYPES, BAD_NUMBERS, st.just("x" * 1025),
                    st.just("é" * 513), st.text(max_size=8))
BAD_LIMITS = st.one_of(BAD_NUMBERS, WRONG_TYPES, st.just("3"), st.integers(min_value=-(2**70)))
BAD_TIMES = st.one_of(st.just(datetime(2030, 1, 1)), st.just("2030-01-01"), BAD_NUMBERS, WRONG_TYPES)


@st.composite
def contract_calls(draw: st.DrawFn) -> tuple[str, tuple[Any, ...]]:
    operation = draw(st.sampled_from(["get", "append", "replace", "pop", "clear", "delete",
                                      "count", "info", "delete_if_idle"]))
    session_id = draw(BAD_IDS) if operation not in ("append", "replace") or draw(st.booleans()) \
        else "s"
    if operation == "get":
        return operation, (session_id, draw(BAD_LIMITS) if session_id == "s" else None)
    if operation in ("append", "replace"):
        return operation, (session_id, draw(BAD_BATCHES) if session_id == "s" else [text(1)])
    if operation == "delete_if_idle":
        return operation, (session_id, draw(BAD_TIMES))
    return operation, (session_id,)


def _snapshot(store: sessions.Session) -> dict[str, list[dict[str, Any]]]:
    return {sid: store.get(sid) for sid in store.list_sessions()}


def _contract_property(store: sessions.Session, configured: settings) -> None:
    store.append("s", [text(0)])
    store.append("other", [text(1)])
    loop = asyncio.new_event_loop()  # one loop: using several is another test's subject

    @configured
    @given(call=contract_calls(), asynchronous=st.booleans())
    def check(call: tuple[str, tuple[Any, ...]], asynchronous: bool) -> None:
        operation, args = call
        before = _snapshot(store)
        try:
            if asynchronous:
                loop.run_until_complete(getattr(store, "a" + operation)(*args))
            else:
                getattr(store, operation)(*args)
        except sessions.SessionError as error:
            _assert_no_secret(error)
            assert _snapshot(store) == before, (operation, args)

    try:
        check()
    finally:
        loop.run_until_complete(store.aclose())
        loop.close()


LOCAL = ("memory", "sqlite", "file", "gzip+aes+sqlite", "conversations")
SERVERS = ("redis", "postgres", "aes+redis", "gzip+postgres")


@pytest.mark.parametrize("chosen", params(LOCAL + SERVERS))
def test_contract_methods_refuse_bad_arguments_and_write_nothing(chosen: Backend, tmp_path: Path) -> None:
    with chosen.open(tmp_path) as store:
        _contract_property(store, PROPERTY if chosen.name in LOCAL else SERVER_PROPERTY)


def test_the_reported_cases() -> None:
    store = sessions.MemorySession()
    with pytest.raises(sessions.InvalidMessageError, match="index 0"):
        store.append("s", [{"role": "user", "content": "x", "n": 10**5000}])
    with pytest.raises(sessions.ConfigurationError, match="connect_timeout"):
        sessions.PostgresSession("postgresql://127.0.0.1/x", connect_timeout=math.inf)
    with pytest.raises(sessions.ConfigurationError, match="timeout"):
        sessions.SQLiteSession(":memory:", timeout=math.nan)
    with pytest.raises(sessions.InvalidArgumentError):
        sessions.prune(store, "99999999999d")
    assert sessions.prune(store, "3000000w") == []
    assert store.get("s", limit=10**100) == []


@pytest.mark.parametrize(
    ("call", "error"),
    [
        (lambda: sessions.key_id(10**5000), sessions.ConfigurationError),  # type: ignore[arg-type]
        (lambda: sessions.key_id("k"), sessions.ConfigurationError),  # type: ignore[arg-type]
        (lambda: sessions.register_scheme(None, "a:B"), sessions.ConfigurationError),  # type: ignore[arg-type]
        (lambda: sessions.register_scheme("x y", "a:B"), sessions.ConfigurationError),
        (lambda: sessions.register_scheme("ok", 5), sessions.ConfigurationError),  # type: ignore[arg-type]
        (lambda: sessions.with_encryption(sessions.MemorySession(), bytes(32)).reencrypt(""),
         sessions.InvalidSessionIdError),
        # A path no file system encoding can write (a lone surrogate outside surrogateescape).
        (lambda: sessions.SQLiteSession("chats-\ud800.db"), sessions.ConfigurationError),
        (lambda: sessions.FileSession("dir-\ud800"), sessions.ConfigurationError),
    ],
)
def test_other_entry_points(call: Callable[[], object], error: type[Exception]) -> None:
    with pytest.raises(error):
        call()


# -- prune and migrate ----------------------------------------------------------------------


@PROPERTY
@given(store=st.one_of(st.just("memory"), WRONG_TYPES), older_than=BAD_VALUES | st.just("1d"),
       now=st.none() | BAD_TIMES, dry_run=BAD_VALUES | st.booleans(), asynchronous=st.booleans())
def test_prune_takes_only_good_arguments(store: Any, older_than: Any, now: Any, dry_run: Any,
                                         asynchronous: bool) -> None:
    if store == "memory":
        store = sessions.MemorySession()
        store.append("s", [text(0)])
    before = _snapshot(store) if isinstance(store, sessions.MemorySession) else None
    try:
        if asynchronous:
            asyncio.run(sessions.aprune(store, older_than, now=now, dry_run=dry_run))
        else:
            sessions.prune(store, older_than, now=now, dry_run=dry_run)
    except sessions.SessionError:
        if before is not None:
            assert _snapshot(store) == before


@PROPERTY
@given(source=st.one_of(st.just("memory"), WRONG_TYPES), target=st.one_of(st.just("memory"), WRONG_TYPES),
       session_id=st.sampled_from([None, "s"]) | BAD_IDS,
       on_conflict=st.sampled_from(["error", "replace", "skip"]) | BAD_VALUES,
       verify=st.booleans() | BAD_VALUES, progress=st.none() | WRONG_TYPES, asynchronous=st.booleans())
def test_migrate_takes_only_good_arguments(source: Any, target: Any, session_id: Any, on_conflict: Any,
                                           verify: Any, progress: Any, asynchronous: bool) -> None:
    if source == "memory":
        source = sessions.MemorySession()
        source.append("s", [text(0)])
    if target == "memory":
        target = sessions.MemorySession()
    before = _snapshot(target) if isinstance(target, sessions.MemorySession) else None
    kwargs = {"on_conflict": on_conflict, "verify": verify, "progress": progress}
    try:
        if asynchronous:
            asyncio.run(sessions.amigrate(source, target, session_id, **kwargs))
        else:
            sessions.migrate(source, target, session_id, **kwargs)
    except sessions.SessionError:
        if before is not None:
            assert _snapshot(target) == before


def test_a_stored_record_nested_too_deeply_is_a_corrupt_record(tmp_path: Path) -> None:
    import sqlite3

    with sessions.SQLiteSession(tmp_path / "s.db") as store:
        store.append("s", [text(0)])
        with contextlib.closing(sqlite3.connect(tmp_path / "s.db")) as conn:
            conn.execute("UPDATE session_layer_messages SET body = ?", ("[" * 100_000 + "]" * 100_000,))
            conn.commit()
        with pytest.raises(sessions.CorruptRecordError, match="nested too deeply"):
            store.get("s")
        with pytest.raises(sessions.CorruptRecordError):
            store.pop("s")


def test_damaged_metadata_is_a_corrupt_record(tmp_path: Path) -> None:
    import sqlite3

    with sessions.SQLiteSession(tmp_path / "s.db") as store:
        store.append("s", [text(0)])
        with contextlib.closing(sqlite3.connect(tmp_path / "s.db")) as conn:
            conn.execute("UPDATE session_layer_sessions SET updated_at = 1e300")
            conn.commit()
        with pytest.raises(sessions.CorruptRecordError, match="metadata"):
            store.info("s")
        with pytest.raises(sessions.CorruptRecordError):
            sessions.prune(store, "1d")


# -- Redis: keys this store did not write ---------------------------------------------------


@pytest.mark.redis
def test_foreign_keys_under_the_prefix_are_skipped_by_every_listing(tmp_path: Path) -> None:
    import redis

    from tests.backends import _redis

    with _redis(tmp_path) as store:
        assert isinstance(store, sessions.RedisSession)
        store.append("mine", [text(0)])
        raw = redis.Redis(host=store.host, port=store.port)
        prefix = store.prefix.encode()
        for foreign in (b"{\xff\xfe}:meta", b"{}:meta", b"{a%zz}:meta", b"{a\x00b}:meta",
                        b"{" + b"x" * 2000 + b"}:meta", b"{a%7b}:meta"):
            raw.hset(prefix + foreign, "created_at", "1")
        raw.hset(prefix + b"{bad-times}:meta", mapping={"created_at": "soon", "updated_at": "\xff"})
        raw.close()
        assert sorted(store.list_sessions()) == ["bad-times", "mine"]

        async def listed() -> list[str]:
            return sorted([sid async for sid in store.alist_sessions()])

        assert asyncio.run(listed()) == ["bad-times", "mine"]
        with pytest.raises(sessions.CorruptRecordError):
            store.info("bad-times")
        assert store.delete_if_idle("bad-times", datetime.now().astimezone() + timedelta(days=1)) is False
        target = sessions.MemorySession()
        report = sessions.migrate(store, target, "mine")
        assert report.copied == 1


# -- the command line -------------------------------------------------------------------------


@st.composite
def cli_calls(draw: st.DrawFn) -> tuple[list[str], bytes]:
    url = draw(store_urls(reachable=False) | st.sampled_from(["memory://", "sqlite:///cli.db"]))
    command = draw(st.sampled_from(["list", "show", "export", "import", "migrate", "delete", "prune",
                                    "stats"]))
    word = draw(BAD_TEXT.filter(lambda t: "\x00" not in t and "\ud800" not in t) | st.text(max_size=10))
    number = draw(st.sampled_from(["-1", "0", "1e9", "9" * 40, "nan", "x", "3"]))
    argv = {
        "list": ["list", "--limit", number, "--skip", number],
        "show": ["show", word, *draw(st.sampled_from([[], ["--json"], ["--limit", number]]))],
        "export": ["export", word],
        "import": ["import", "-", *draw(st.sampled_from([[], ["--replace"]]))],
        "migrate": ["migrate", url, draw(st.sampled_from(["memory://", "sqlite:///cli.db"])), "-q",
                    "--session", word],
        "delete": ["delete", word, "--yes"],
        "prune": ["prune", "--older-than", draw(st.sampled_from([number, word, "99999999999d", "1d"]))],
        "stats": ["stats"],
    }[command]
    stdin = draw(st.sampled_from([
        b"", b"[" * 100_000, b"\xff\xfe\n", b'{"session_id": "a", "message": {"role": "user"}}\n',
        b'{"session_id": "a", "message": {"role": "user", "n": ' + b"9" * 5000 + b"}}\n",
        b'{"session_id": "\\ud800", "message": {"role": "user"}}\n', b"null\n", b"\x00\n",
    ]))
    return ["--url", url, *argv], stdin


@PROPERTY
@given(call=cli_calls())
def test_the_cli_answers_in_one_line_and_never_shows_a_traceback_or_a_password(
        call: tuple[list[str], bytes]) -> None:
    argv, stdin = call
    out, err = io.StringIO(), io.StringIO()
    with _scratch_directory(), contextlib.redirect_stdout(out), contextlib.redirect_stderr(err), \
            _stdin(stdin):
        try:
            status = cli.main(argv)
        except SystemExit as exit_:  # argparse: a bad argument
            status = exit_.code  # type: ignore[assignment]
    error = err.getvalue()
    assert "Traceback" not in error and _markers_absent(error + out.getvalue())
    if status == 1:
        lines = error.strip().splitlines()
        assert len(lines) == 1 and lines[0].startswith("sessions: error: "), error
        assert "unexpected" not in lines[0], error  # every failure is one of ours
    else:
        assert status in (0, 2), (status, error)


@contextlib.contextmanager
def _stdin(data: bytes) -> Iterator[None]:
    import sys

    previous = sys.stdin
    sys.stdin = io.TextIOWrapper(io.BytesIO(data))
    try:
        yield
    finally:
        sys.stdin = previous
