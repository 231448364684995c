"""The async half of the contract sees exactly what the sync half sees."""

from __future__ import annotations

import asyncio

import pytest

import sessions
from sessions import Session
from tests.conformance.messages import ALL_SHAPES, ASSISTANT_TOOL_CALLS, USER, text


async def test_async_and_sync_see_the_same_data(store: Session) -> None:
    await store.aappend("s", [text(0), text(1)])
    store.append("s", [text(2)])
    assert await store.aget("s") == store.get("s") == [text(0), text(1), text(2)]
    assert await store.aget("s", limit=2) == [text(1), text(2)]
    assert await store.acount("s") == 3
    info = await store.ainfo("s")
    assert info is not None and info.message_count == 3
    assert await store.apop("s") == text(2)
    await store.areplace("s", [ASSISTANT_TOOL_CALLS])
    assert store.get("s") == [ASSISTANT_TOOL_CALLS]
    await store.aclear("s")
    assert store.get("s") == [] and store.info("s") is not None
    await store.adelete("s")
    assert store.info("s") is None and await store.ainfo("s") is None


async def test_async_missing_session_reads_as_empty(store: Session) -> None:
    assert await store.aget("nobody") == []
    assert await store.acount("nobody") == 0
    assert await store.apop("nobody") is None
    assert await store.ainfo("nobody") is None


async def test_async_list_sessions(store: Session) -> None:
    ids = [f"u{i:03d}" for i in range(300)]
    for session_id in ids:
        await store.aappend(session_id, [USER])
    assert sorted([s async for s in store.alist_sessions()]) == ids


async def test_async_validation_matches_sync(store: Session) -> None:
    await store.aappend("s", [text(0)])
    with pytest.raises(sessions.InvalidMessageError) as caught:
        await store.aappend("s", [text(1), {"role": "nobody"}])
    assert caught.value.index == 1
    with pytest.raises(sessions.InvalidSessionIdError):
        await store.aget("")
    with pytest.raises(sessions.InvalidArgumentError):
        await store.aget("s", limit=-1)
    assert await store.aget("s") == [text(0)]


async def test_async_shapes_round_trip(store: Session, backend: object) -> None:
    lacks = getattr(backend, "lacks", frozenset())
    shapes = ALL_SHAPES if "unknown_keys" not in lacks else ALL_SHAPES[:4]
    await store.aappend("s", shapes)
    assert await store.aget("s") == shapes


async def test_concurrent_async_appends_lose_nothing(store: Session) -> None:
    async def writer(n: int) -> None:
        for i in range(20):
            await store.aappend("shared", [{"role": "user", "content": f"{n}:{i}"}])

    await asyncio.gather(*(writer(n) for n in range(6)))
    got = [m["content"] for m in await store.aget("shared")]
    assert len(got) == 120
    for n in range(6):
        assert [c for c in got if c.startswith(f"{n}:")] == [f"{n}:{i}" for i in range(20)]


async def test_async_calls_do_not_block_the_event_loop(store: Session) -> None:
    """While a large write and read are in flight, the loop keeps ticking."""
    ticks = 0
    done = asyncio.Event()

    async def ticker() -> None:
        nonlocal ticks
        while not done.is_set():
            ticks += 1
            await asyncio.sleep(0)

    task = asyncio.create_task(ticker())
    await store.aappend("big", [text(i) for i in range(3000)])
    assert len(await store.aget("big")) == 3000
    done.set()
    await task
    assert ticks > 1
