"""Compressed records inflate within a bound: a small hostile record never makes a
reader allocate more than ``max_size`` bytes."""

from __future__ import annotations

import base64
import json
import tracemalloc
import zlib
from typing import Any

import pytest

import sessions
from sessions import MemorySession, with_compression
from sessions.compression import DEFAULT_MAX_SIZE, inflate

MiB = 1 << 20


def _bomb(inflated: int, algorithm: str) -> dict[str, Any]:
    """An envelope of our format whose data inflates to ``inflated`` zero bytes
    (built in 1 MiB steps, so the test itself never holds the inflated bytes)."""
    stream = zlib.compressobj(9, zlib.DEFLATED, 31 if algorithm == "gzip" else 15)
    chunk = bytes(MiB)
    data = b"".join([*(stream.compress(chunk) for _ in range(inflated // MiB)), stream.flush()])
    return {"envelope": {"v": 1, "alg": algorithm, "data": base64.b64encode(data).decode()}}


def _peak_while(action: Any) -> int:
    tracemalloc.start()
    try:
        action()
    except sessions.CorruptRecordError:
        pass
    else:  # pragma: no cover - the assertion below names the failure
        raise AssertionError("the bomb was read without an error")
    finally:
        peak = tracemalloc.get_traced_memory()[1]
        tracemalloc.stop()
    return peak


@pytest.mark.parametrize("algorithm", ["gzip", "zlib"])
async def test_a_decompression_bomb_fails_without_being_inflated(algorithm: str) -> None:
    inner = MemorySession()
    bomb = _bomb(64 * MiB, algorithm)
    assert len(json.dumps(bomb)) < 200_000
    inner.append("s", [{"role": "user", "content": "before"}, bomb])
    store = with_compression(inner, max_size=MiB)
    for read in (lambda: store.get("s"), lambda: store.get("s", limit=1), lambda: store.pop("s")):
        assert _peak_while(read) < 4 * MiB
    with pytest.raises(sessions.CorruptRecordError, match="max_size=1048576") as caught:
        await store.aget("s")
    assert caught.value.session_id == "s" and caught.value.operation == "get"
    assert inner.count("s") == 2  # pop removed nothing it could not read


def test_the_default_bound_is_64_mib() -> None:
    assert 64 * MiB == DEFAULT_MAX_SIZE
    inner = MemorySession()
    inner.append("s", [_bomb(65 * MiB, "gzip")])
    assert _peak_while(lambda: with_compression(inner).get("s")) < DEFAULT_MAX_SIZE + 8 * MiB


@pytest.mark.parametrize("algorithm", ["gzip", "zlib"])
def test_messages_up_to_the_bound_are_compressed_and_larger_ones_stored_plain(algorithm: str) -> None:
    inner = MemorySession()
    store = with_compression(inner, algorithm=algorithm, max_size=4096)
    fits = {"role": "user", "content": "a" * 3000}
    too_big = {"role": "user", "content": "b" * 5000}
    store.append("s", [fits, too_big])
    stored = inner.get("s")
    assert "envelope" in stored[0] and stored[1] == too_big
    assert store.get("s") == [fits, too_big]
    # A reader with a smaller bound refuses what a more generous writer compressed.
    with pytest.raises(sessions.CorruptRecordError):
        with_compression(inner, algorithm=algorithm, max_size=1000).get("s")


def test_inflate_keeps_the_stream_rules() -> None:
    import gzip

    two_members = gzip.compress(b"ab") + gzip.compress(b"cd")
    assert inflate("gzip", two_members, 4) == b"abcd"
    assert inflate("gzip", gzip.compress(b""), 1) == b"" == inflate("zlib", zlib.compress(b""), 1)
    with pytest.raises(ValueError, match="max_size"):
        inflate("gzip", two_members, 3)
    with pytest.raises(ValueError, match="truncated"):
        inflate("gzip", gzip.compress(b"abc" * 100)[:-9], 1000)
    with pytest.raises(zlib.error):
        inflate("gzip", gzip.compress(b"ab") + b"garbage", 100)
    assert inflate("zlib", zlib.compress(b"abc") + b"trailing", 3) == b"abc"


@pytest.mark.parametrize("bad", [0, -1, True, 2.5, "64", 2**41])
def test_bad_bounds_are_refused(bad: object) -> None:
    with pytest.raises(sessions.ConfigurationError, match="max_size"):
        with_compression(MemorySession(), max_size=bad)  # type: ignore[arg-type]


def test_the_bound_in_a_url() -> None:
    store = sessions.connect("memory://?compress=gzip&compress_max_size=2048")
    assert isinstance(store, sessions.CompressedSession) and store.max_size == 2048
    with pytest.raises(sessions.ConfigurationError, match="compress_max_size"):
        sessions.connect("memory://?compress_max_size=2048")
