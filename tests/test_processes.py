"""Several processes sharing one store, and processes killed in the middle of appends.

Runs on every backend in tests/backends.py marked ``shared_between_processes``.
"""

from __future__ import annotations

import multiprocessing
import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest

from tests.backends import BACKENDS, Backend, params

SHARED = tuple(b.name for b in BACKENDS if b.shared_between_processes)
ROOT = Path(__file__).resolve().parent.parent


def _backend(name: str) -> Backend:
    return next(b for b in BACKENDS if b.name == name)


def _writer(name: str, tmp_path: Path, writer: int, appends: int, start: Any) -> None:
    with _backend(name).open(tmp_path) as store:
        start.wait()
        for i in range(appends):
            store.append("shared", [{"role": "user", "content": f"{writer}:{i}"}])


@pytest.mark.parametrize("backend", params(SHARED))
def test_four_processes_lose_nothing(backend: Backend, tmp_path: Path) -> None:
    processes, appends = 4, 250
    with backend.open(tmp_path) as store:
        store.append("warm-up", [{"role": "user", "content": "create the store first"}])
        context = multiprocessing.get_context("spawn")
        start = context.Event()
        pool = [context.Process(target=_writer, args=(backend.name, tmp_path, n, appends, start))
                for n in range(processes)]
        for process in pool:
            process.start()
        start.set()
        for process in pool:
            process.join(120)
        assert [p.exitcode for p in pool] == [0] * processes
        got = [m["content"] for m in store.get("shared")]
        assert len(got) == processes * appends == store.count("shared")
        for n in range(processes):
            assert [c for c in got if c.startswith(f"{n}:")] == [f"{n}:{i}" for i in range(appends)]


# -- killed writers --------------------------------------------------------------------------------

_CHILD = """
import sys
from tests.backends import BACKENDS
from pathlib import Path
name, path, round_ = sys.argv[1], Path(sys.argv[2]), sys.argv[3]
backend = next(b for b in BACKENDS if b.name == name)
with backend.open(path) as store:
    i = 0
    while True:
        batch = [{"role": "user", "content": f"{round_}:{i}"}]
        if i % 5 == 4:  # now and then a batch: it must land whole or not at all
            batch = [{"role": "user", "content": f"{round_}:{i}:{k}"} for k in range(3)]
        store.append("crash", batch)
        sys.stdout.write(f"{i}\\n")
        sys.stdout.flush()
        i += 1
"""


def _run_and_kill(name: str, tmp_path: Path, round_: int, rng: random.Random) -> int:
    """Start a child appending in a loop, SIGKILL it at a random moment; return how many
    appends it acknowledged (printed after the call returned)."""
    child = subprocess.Popen(
        [sys.executable, "-c", _CHILD, name, str(tmp_path), str(round_)],
        stdout=subprocess.PIPE, cwd=ROOT, env={**os.environ, "PYTHONPATH": str(ROOT)},
    )
    assert child.stdout is not None
    first = child.stdout.readline()  # the child is in its loop
    assert first == b"0\n", first
    time.sleep(rng.uniform(0, 0.05))
    child.send_signal(signal.SIGKILL)
    rest = child.stdout.read()
    child.wait()
    assert child.returncode == -signal.SIGKILL
    acknowledged = [first, *rest.splitlines(keepends=True)]
    complete = [line for line in acknowledged if line.endswith(b"\n")]
    return int(complete[-1]) + 1


def _expected(round_: int, i: int) -> list[str]:
    if i % 5 == 4:
        return [f"{round_}:{i}:{k}" for k in range(3)]
    return [f"{round_}:{i}"]


@pytest.mark.parametrize("backend", params(SHARED))
def test_killed_writers_lose_nothing_acknowledged(backend: Backend, tmp_path: Path) -> None:
    rng = random.Random(20)
    kills = 20
    acknowledged = [_run_and_kill(backend.name, tmp_path, r, rng) for r in range(kills)]
    with backend.open(tmp_path) as store:
        stored = [m["content"] for m in store.get("crash")]  # reads cleanly: nothing corrupt
        assert store.count("crash") == len(stored)
        position = 0
        for round_, count in enumerate(acknowledged):
            expected = [c for i in range(count) for c in _expected(round_, i)]
            assert stored[position:position + len(expected)] == expected, round_
            position += len(expected)
            extra = _expected(round_, count)  # at most one unacknowledged append, whole
            if stored[position:position + 1] and stored[position].startswith(f"{round_}:"):
                assert stored[position:position + len(extra)] == extra, round_
                position += len(extra)
        assert position == len(stored)
        assert sum(acknowledged) > kills  # the kills did land in the middle of the loops
        store.append("crash", [{"role": "user", "content": "after"}])  # writable again
        assert store.get("crash", limit=1) == [{"role": "user", "content": "after"}]
        assert store.count("crash") == len(stored) + 1
