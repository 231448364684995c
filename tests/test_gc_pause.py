"""Long reads convert with the cyclic collector paused, and leave it as they found it."""

from __future__ import annotations

import contextlib
import gc
from collections.abc import Iterator

import pytest

import sessions
from adapters import _gc
from adapters._gc import PAUSE_FROM, collector_paused


def test_the_collector_is_paused_only_for_long_conversions() -> None:
    assert gc.isenabled()
    with collector_paused(PAUSE_FROM - 1):
        assert gc.isenabled()
    with collector_paused(PAUSE_FROM):
        assert not gc.isenabled()
    assert gc.isenabled()
    with pytest.raises(KeyError), collector_paused(PAUSE_FROM):
        raise KeyError("conversion failed")
    assert gc.isenabled()


def test_a_collector_the_caller_disabled_stays_disabled() -> None:
    gc.disable()
    try:
        with collector_paused(PAUSE_FROM):
            assert not gc.isenabled()
        assert not gc.isenabled()
    finally:
        gc.enable()


@pytest.fixture
def pauses(monkeypatch: pytest.MonkeyPatch) -> list[tuple[int, bool]]:
    """(count, whether the collector was off inside) of every conversion of an adapter."""
    seen: list[tuple[int, bool]] = []

    @contextlib.contextmanager
    def recording(count: int) -> Iterator[None]:
        with _gc.collector_paused(count):
            seen.append((count, not gc.isenabled()))
            yield

    import adapters.langchain._cache
    import adapters.llamaindex._convert

    monkeypatch.setattr(adapters.langchain._cache, "collector_paused", recording)
    monkeypatch.setattr(adapters.llamaindex._convert, "collector_paused", recording)
    return seen


def test_both_adapters_pause_for_long_reads(pauses: list[tuple[int, bool]]) -> None:
    from adapters.langchain import SessionChatMessageHistory
    from adapters.llamaindex import SessionChatStore

    store = sessions.MemorySession()
    store.append("long", [{"role": "user", "content": f"m{i}"} for i in range(PAUSE_FROM)])
    assert len(SessionChatMessageHistory(store, "long").messages) == PAUSE_FROM
    assert len(SessionChatStore(store).get_messages("long")) == PAUSE_FROM
    assert len(SessionChatStore(store, window=10).get_messages("long")) == 10
    assert pauses == [(PAUSE_FROM, True), (PAUSE_FROM, True), (10, False)]
    assert gc.isenabled()
