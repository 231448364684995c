"""sessions.connect: URLs, the SESSIONS_URL default and the registry."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

import sessions
from sessions._registry import StoreURL


def test_memory_url() -> None:
    assert isinstance(sessions.connect("memory://"), sessions.MemorySession)


def test_sqlite_in_memory_url() -> None:
    store = sessions.connect("sqlite://")
    assert isinstance(store, sessions.SQLiteSession) and store.path == ":memory:"


def test_sqlite_relative_and_absolute(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    relative = sessions.connect("sqlite:///rel.db")
    assert isinstance(relative, sessions.SQLiteSession) and relative.path == "rel.db"
    relative.append("s", [{"role": "user", "content": "x"}])
    relative.close()
    assert (tmp_path / "rel.db").exists()
    absolute = sessions.connect(f"sqlite:///{tmp_path}/abs.db?synchronous=full&timeout=2")
    assert isinstance(absolute, sessions.SQLiteSession)
    assert absolute.path == f"{tmp_path}/abs.db"
    assert absolute.synchronous == "FULL" and absolute.timeout == 2.0
    absolute.close()


def test_default_is_sessions_url_then_local_sqlite(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("SESSIONS_URL", raising=False)
    store = sessions.connect()
    assert isinstance(store, sessions.SQLiteSession)
    assert os.path.abspath(store.path) == str(tmp_path / "sessions.db")
    store.close()
    monkeypatch.setenv("SESSIONS_URL", "memory://")
    assert isinstance(sessions.connect(), sessions.MemorySession)


@pytest.mark.parametrize(
    "url",
    ["nowhere://x", "no-scheme", "sqlite:///x.db?colour=blue", "sqlite:///x.db?synchronous=sometimes",
     "sqlite://host/x.db", "memory://?a=1", "sqlite:///x.db?timeout=abc", 42],
)
def test_bad_urls_raise_configuration_error(url: object, tmp_path: Path,
                                            monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    with pytest.raises(sessions.ConfigurationError):
        sessions.connect(url)  # type: ignore[arg-type]


def test_register_scheme_refuses_silent_overwrite() -> None:
    with pytest.raises(sessions.ConfigurationError):
        sessions.register_scheme("memory", "somewhere.else:Store")
    sessions.register_scheme("memory", "sessions.memory:MemorySession")  # same target: fine


def test_missing_dependency_names_the_extra() -> None:
    sessions.register_scheme("needs-extra", "not_installed_pkg_xyz:Store", extra="redis",
                             package="not-installed-pkg-xyz")
    with pytest.raises(sessions.MissingDependencyError) as caught:
        sessions.connect("needs-extra://")
    message = str(caught.value)
    assert "pip install 'session-layer[redis]'" in message and "not-installed-pkg-xyz" in message
    assert isinstance(caught.value, ImportError)


def test_store_url_parsing() -> None:
    url = StoreURL.parse("redis://user:p%40ss@localhost:6380/2?ttl=60")
    assert (url.scheme, url.username, url.password, url.host, url.port, url.path) == (
        "redis", "user", "p@ss", "localhost", 6380, "/2")
    assert url.query == {"ttl": "60"}
    with pytest.raises(sessions.ConfigurationError):
        StoreURL.parse("redis://h/0?ttl=1&ttl=2")
