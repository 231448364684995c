from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest
from hypothesis import settings

import sessions
from tests.backends import FRAMEWORK_BACKENDS, Backend, params
from tests.redis_servers import stop_cluster

# Property tests explore new examples on every local run; under CI=true they run a fixed
# set (the same examples every time), so a run is reproducible and a new finding shows
# up on a developer's machine rather than as a flaky CI job.
settings.register_profile("ci", derandomize=True, print_blob=True)
if os.environ.get("CI", "").lower() == "true":
    settings.load_profile("ci")


@pytest.fixture(scope="session", autouse=True)
def _servers_started_by_tests() -> Iterator[None]:
    """Stop, at the end of the run, the servers the tests started on first use."""
    yield
    stop_cluster()

# The local Chat Completions server and its client (fixtures `chat_server`, `chat_aclient`).
pytest_plugins = ["tests.chat_server"]


@pytest.fixture(params=params())
def backend(request: pytest.FixtureRequest) -> Backend:
    return request.param  # type: ignore[no-any-return]


@pytest.fixture
def store(backend: Backend, tmp_path: Path) -> Iterator[sessions.Session]:
    """A fresh, empty store of every backend and wrapper stack in tests/backends.py."""
    with backend.open(tmp_path) as opened:
        yield opened


@pytest.fixture(params=params(FRAMEWORK_BACKENDS))
def framework_store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[sessions.Session]:
    """A fresh store on SQLite and on each server backend, for framework adapter tests."""
    backend: Backend = request.param
    with backend.open(tmp_path) as opened:
        yield opened
