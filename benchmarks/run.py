"""Run every benchmark and write a Markdown report and a PNG plot.

    python -m benchmarks.run            # the full run (about 15-20 minutes here)
    python -m benchmarks.run --quick    # under a minute: small sizes, what CI runs

Options: ``--only SUBSTRING`` (repeatable) to pick stores, ``--out DIR`` for the report
(default ``benchmarks/results``). Stores whose package is missing or whose server is
unreachable are listed as skipped with the reason.

Two phases. First every store is measured on its own, one after the other (the tables).
Then every target ratio is measured again with its two sides interleaved: rounds of
calls alternate between the store and its reference, so a change in the machine's speed
during the run (other work, a slow disk) weighs on both sides alike (the targets).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import inspect
import multiprocessing
import os
import platform
import statistics
import sys
import tempfile
import threading
import time
import tracemalloc
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from benchmarks.stores import (
    SPECS,
    Spec,
    Store,
    available,
    new_namespace,
    open_store,
    server_settings,
)

SIZES_FULL = (0, 1_000, 10_000, 100_000)
SIZES_QUICK = (0, 1_000)


@dataclass
class Profile:
    sizes: tuple[int, ...]
    samples: int  # max timed calls per cell
    budget: float  # seconds per cell
    full_read: int
    sequential: int
    writers: int
    per_writer: int
    memory_read: int
    pair_budget: float  # seconds per interleaved target measurement
    pair_rounds: int


FULL = Profile(
    SIZES_FULL,
    samples=300,
    budget=3.0,
    full_read=10_000,
    sequential=2_000,
    writers=8,
    per_writer=250,
    memory_read=100_000,
    pair_budget=6.0,
    pair_rounds=20,
)
QUICK = Profile(
    SIZES_QUICK,
    samples=20,
    budget=0.3,
    full_read=1_000,
    sequential=100,
    writers=4,
    per_writer=20,
    memory_read=1_000,
    pair_budget=0.3,
    pair_rounds=4,
)


@dataclass
class Result:
    spec: Spec
    skipped: str | None = None
    append: dict[int, tuple[float, float]] = field(default_factory=dict)  # size -> (median, p99) seconds
    window: dict[int, tuple[float, float]] = field(default_factory=dict)
    full_read: float | None = None
    sequential: float | None = None  # messages per second
    concurrent: float | None = None
    lost: int | None = None
    failed_writers: int = 0
    fidelity: bool | None = None
    peak_memory: int | None = None  # bytes
    errors: list[str] = field(default_factory=list)


# -- running sync and async operations alike --------------------------------------------------


class Runner:
    """Calls a store's operations, sync or async, in one event loop per store."""

    def __init__(self) -> None:
        self.loop = asyncio.new_event_loop()

    def call(self, fn: Callable[..., Any], *args: Any) -> Any:
        if inspect.iscoroutinefunction(fn):
            return self.loop.run_until_complete(fn(*args))
        return fn(*args)

    def timed(
        self, fn: Callable[..., Any], args: tuple[Any, ...], samples: int, budget: float, warmup: int = 0
    ) -> list[float]:
        """Time up to ``samples`` calls (at least ``min(3, samples)``), stopping once
        ``budget`` seconds are spent; ``warmup`` untimed calls first (within a fifth of
        the budget)."""
        least = min(3, samples)
        if inspect.iscoroutinefunction(fn):

            async def run() -> list[float]:
                until = time.perf_counter() + budget / 5
                for _ in range(warmup):
                    await fn(*args)
                    if time.perf_counter() > until:
                        break
                times: list[float] = []
                deadline = time.perf_counter() + budget
                while len(times) < samples and (len(times) < least or time.perf_counter() < deadline):
                    start = time.perf_counter()
                    await fn(*args)
                    times.append(time.perf_counter() - start)
                return times

            result: list[float] = self.loop.run_until_complete(run())
            return result
        until = time.perf_counter() + budget / 5
        for _ in range(warmup):
            fn(*args)
            if time.perf_counter() > until:
                break
        times: list[float] = []
        deadline = time.perf_counter() + budget
        while len(times) < samples and (len(times) < least or time.perf_counter() < deadline):
            start = time.perf_counter()
            fn(*args)
            times.append(time.perf_counter() - start)
        return times

    def close(self) -> None:
        self.loop.close()


def summary(times: list[float]) -> tuple[float, float]:
    ordered = sorted(times)
    p99 = ordered[min(len(ordered) - 1, round(0.99 * (len(ordered) - 1)))]
    return statistics.median(ordered), p99


@dataclass
class Opened:
    """A store kept open between the two phases, with its prefilled sessions."""

    store: Store
    runner: Runner
    location: str
    namespace: str

    @classmethod
    def new(cls, spec: Spec, runner: Runner, workdir: str) -> Opened:
        """A new instance of ``spec``'s store, empty, in a directory and namespace of its own."""
        location, namespace = tempfile.mkdtemp(prefix="store-", dir=workdir), new_namespace()
        return cls(open_store(spec, location, namespace), runner, location, namespace)


# -- concurrent writers ------------------------------------------------------------------------


def _writer(spec: Spec, location: str, namespace: str, session_id: str, count: int, start: Any) -> None:
    runner = Runner()
    try:
        store = open_store(spec, location, namespace)
        # First use (imports, connections, statement caches) happens before the clock
        # starts, on a session of this writer's own.
        runner.call(store.append_one, f"warm-up-{os.getpid()}-{threading.get_ident()}")
    except BaseException:
        start.abort()  # the others stop waiting; this writer counts as crashed
        raise
    start.wait(timeout=600)
    try:
        for _ in range(count):
            runner.call(store.append_one, session_id)
    finally:
        try:
            runner.call(store.disconnect)
        finally:
            runner.close()


def _writer_process(*args: Any, finished: Any) -> None:
    try:
        _writer(*args)
    except Exception as error:  # counted by the parent through the exit code
        print(f"writer failed: {type(error).__name__}: {error}"[:200], file=sys.stderr)
        sys.exit(1)
    finally:
        # The clock stops when the last writer is done, not when its interpreter has
        # shut down (with some frameworks loaded that takes seconds).
        finished.put(os.getpid())


def concurrent_writers(
    opened: Opened, session_id: str, writers: int, per_writer: int
) -> tuple[float, int]:
    """Wall time of ``writers`` writers each appending ``per_writer`` messages to one id,
    from the moment all of them have opened the store, and how many writers crashed.

    Processes for embedded stores (as separate application workers would be), threads
    for servers; the memory store's threads share one store object.
    """
    spec = opened.store.spec
    failed = 0
    if spec.engine in ("file", "sqlite"):
        context = multiprocessing.get_context("spawn")
        start = context.Barrier(writers + 1)
        finished = context.Queue()
        processes = [
            context.Process(
                target=_writer_process,
                args=(spec, opened.location, opened.namespace, session_id, per_writer, start),
                kwargs={"finished": finished},
            )
            for _ in range(writers)
        ]
        for process in processes:
            process.start()
        began = _released(start)
        for _ in processes:
            finished.get(timeout=900)
        elapsed = time.perf_counter() - began
        for process in processes:
            process.join()
            failed += process.exitcode != 0
        return elapsed, failed

    errors: list[BaseException] = []
    barrier = threading.Barrier(writers + 1)

    def target() -> None:
        try:
            if spec.engine == "memory":
                barrier.wait(timeout=600)
                for _ in range(per_writer):
                    opened.store.append_one(session_id)
            else:
                _writer(spec, opened.location, opened.namespace, session_id, per_writer, barrier)
        except Exception as error:
            errors.append(error)

    threads = [threading.Thread(target=target) for _ in range(writers)]
    for thread in threads:
        thread.start()
    began = _released(barrier)
    for thread in threads:
        thread.join()
    return time.perf_counter() - began, len(errors)


def _released(barrier: Any) -> float:
    # A broken barrier: a writer could not open the store, and the others give up too.
    with contextlib.suppress(threading.BrokenBarrierError):
        barrier.wait(timeout=600)
    return time.perf_counter()


# -- phase one: each store on its own --------------------------------------------------------------


def measure(
    spec: Spec, profile: Profile, workdir: str, log: Callable[[str], None]
) -> tuple[Result, Opened | None]:
    result = Result(spec)
    why = available(spec)
    if why is not None:
        result.skipped = why
        return result, None
    runner = Runner()
    try:
        opened = Opened.new(spec, runner, workdir)
    except Exception as error:  # a missing server, a missing feature
        result.skipped = f"could not open: {type(error).__name__}: {error}"[:200]
        runner.close()
        return result, None
    _measure(opened, result, profile, workdir, log)
    return result, opened


def _throughput(fresh: Opened, result: Result, profile: Profile) -> None:
    store, runner = fresh.store, fresh.runner
    try:
        start = time.perf_counter()
        for _ in range(profile.sequential):
            runner.call(store.append_one, "sequential")
        result.sequential = profile.sequential / (time.perf_counter() - start)
    except Exception as error:
        result.errors.append(f"sequential: {type(error).__name__}: {error}"[:300])
    try:
        elapsed, result.failed_writers = concurrent_writers(
            fresh, "concurrent", profile.writers, profile.per_writer
        )
        total = profile.writers * profile.per_writer
        if result.failed_writers == 0:
            result.concurrent = total / elapsed
        if store.count_fresh is not None:
            present = runner.call(store.count_fresh, "concurrent")
        else:
            present = len(runner.call(store.read_all, "concurrent"))
        result.lost = total - present
    except Exception as error:
        result.errors.append(f"concurrent: {type(error).__name__}: {error}"[:300])
    finally:
        try:
            runner.call(store.close)
        except Exception as error:
            result.errors.append(f"close: {error}")


def _measure(
    opened: Opened, result: Result, profile: Profile, workdir: str, log: Callable[[str], None]
) -> None:
    store, runner = opened.store, opened.runner
    spec = store.spec
    for size in profile.sizes:
        session_id = f"size-{size}"
        try:
            runner.call(store.prefill, session_id, size) if size else None
            times = runner.timed(store.append_one, (session_id,), profile.samples, profile.budget, warmup=5)
            result.append[size] = summary(times)
            times = runner.timed(store.window, (session_id, 50), profile.samples, profile.budget, warmup=3)
            result.window[size] = summary(times)
            log(
                f"  {spec.name}: size {size:>7,}: append {result.append[size][0] * 1e3:.3f} ms,"
                f" window {result.window[size][0] * 1e3:.3f} ms"
            )
        except Exception as error:
            result.errors.append(f"size {size}: {type(error).__name__}: {error}"[:300])
            break
    try:
        runner.call(store.prefill, "full-read", profile.full_read)
        times = runner.timed(store.read_all, ("full-read",), 7, profile.budget * 2, warmup=1)
        result.full_read = statistics.median(times)
        got = len(runner.call(store.read_all, "full-read"))
        if got != profile.full_read:
            raise AssertionError(f"read {got} of {profile.full_read} messages")
    except Exception as error:
        result.errors.append(f"full read: {type(error).__name__}: {error}"[:300])
    # Throughput on a store of its own, new and empty: stores that rewrite everything they
    # hold on every append would otherwise pay for the histories written above.
    try:
        fresh = Opened.new(spec, runner, workdir)
    except Exception as error:
        result.errors.append(f"throughput: {type(error).__name__}: {error}"[:300])
    else:
        _throughput(fresh, result, profile)
    if store.append_exchange is not None and store.fidelity is not None:
        try:
            runner.call(store.append_one, "fidelity")
            runner.call(store.append_exchange, "fidelity")
            result.fidelity = bool(runner.call(store.fidelity, "fidelity"))
        except Exception as error:
            result.fidelity = False
            result.errors.append(f"fidelity: {type(error).__name__}: {error}"[:300])
    try:
        session_id = f"size-{profile.memory_read}"
        if profile.memory_read not in result.append:
            runner.call(store.prefill, session_id, profile.memory_read)
        tracemalloc.start()
        runner.call(store.read_all, session_id)
        result.peak_memory = tracemalloc.get_traced_memory()[1]
    except Exception as error:
        result.errors.append(f"memory: {type(error).__name__}: {error}"[:300])
    finally:
        tracemalloc.stop()


# -- phase two: the target ratios, both sides interleaved ------------------------------------------


@dataclass
class Side:
    name: str
    opened: Opened
    fn: Callable[..., Any]
    args: tuple[Any, ...]
    fresh: bool = False  # a store instance of its own, closed after the measurement

    def time(self, calls: int) -> list[float]:
        return self.opened.runner.timed(self.fn, self.args, calls, 0.0)

    def close(self) -> None:
        if self.fresh:
            self.opened.runner.call(self.opened.store.close)


def interleaved(a: Side, b: Side, profile: Profile) -> tuple[float, float]:
    """Median seconds of a call of ``a`` and of ``b``, timed in alternating rounds
    (a then b, b then a, ...) within about ``profile.pair_budget`` seconds (at least
    three rounds)."""
    for side in (a, b):  # first calls (connections, prepared statements, caches) are not timed
        side.opened.runner.timed(side.fn, side.args, 10, profile.pair_budget / 20)
    probe = max(statistics.median(a.time(3)), statistics.median(b.time(3)), 1e-6)
    per_round = max(1, min(50, int(profile.pair_budget / (2 * profile.pair_rounds) / probe)))
    times: dict[str, list[float]] = {"a": [], "b": []}
    deadline = time.perf_counter() + profile.pair_budget
    for number in range(profile.pair_rounds):
        order = (("a", a), ("b", b)) if number % 2 == 0 else (("b", b), ("a", a))
        for key, side in order:
            times[key] += side.time(per_round)
        if number >= 2 and time.perf_counter() > deadline:
            break
    return statistics.median(times["a"]), statistics.median(times["b"])


@dataclass
class Target:
    target: str
    store: str
    reference: str
    limit: float  # the ratio measured / reference must be at most this (strictly below for "faster")
    strict: bool = False
    count: bool = False  # ``measured`` is a count that must be 0, not a time
    note: str = ""
    measured: float | None = None
    reference_value: float | None = None
    error: str | None = None

    @property
    def ratio(self) -> float | None:
        if self.measured is None or not self.reference_value:
            return None
        return self.measured / self.reference_value

    @property
    def met(self) -> bool | None:
        if self.count:
            return None if self.measured is None else self.measured == 0
        ratio = self.ratio
        if ratio is None:
            return None
        return ratio < self.limit if self.strict else ratio <= self.limit


_MEMORY_READS = "the rival reads from objects it keeps in process memory"


def _is_core(spec: Spec) -> bool:
    """One of our backends as such: no wrapper, no adapter."""
    return spec.kind == "ours" and "+" not in spec.name and "adapter" not in spec.name


def plan_targets(
    results: list[Result], opened: dict[str, Opened], profile: Profile, workdir: str
) -> Iterator[tuple[Target, Callable[[], Side], Callable[[], Side]]]:
    """Every target of the report, with how to set up the two sides to interleave.

    Appends compared between stores go to new, empty store instances on both sides
    (a store that rewrites everything it holds would otherwise pay for the histories
    the first phase left in it); reads use the sessions the first phase filled.
    """
    ran = {r.spec.name: r for r in results if r.skipped is None and r.spec.name in opened}
    big, zero = max(profile.sizes), 0

    def side(name: str, operation: str, *args: Any) -> Callable[[], Side]:
        store = opened[name].store
        return lambda: Side(name, opened[name], getattr(store, operation), args)

    def fresh(name: str) -> Callable[[], Side]:
        def make() -> Side:
            instance = Opened.new(opened[name].store.spec, opened[name].runner, workdir)
            return Side(name, instance, instance.store.append_one, ("pair",), fresh=True)

        return make

    for r in ran.values():
        if r.spec.kind == "ours" and big in r.append and zero in r.append:
            yield (
                Target(f"flat append ({big:,} vs 0 messages)", r.spec.name, "same store at 0", 1.5),
                side(r.spec.name, "append_one", f"size-{big}"),
                side(r.spec.name, "append_one", "pair-empty"),
            )
    floors = {"redis": 1.3, "postgres": 1.3, "sqlite": 3.0}
    for r in ran.values():
        if not _is_core(r.spec) or r.spec.engine not in floors or zero not in r.append:
            continue
        floor = next(
            (f for f in ran.values() if f.spec.kind == "floor" and f.spec.engine == r.spec.engine
             and f.spec.level == r.spec.level and zero in f.append),
            None,
        )
        if floor is not None:
            yield (
                Target("append vs bare driver", r.spec.name, floor.spec.name, floors[r.spec.engine]),
                fresh(r.spec.name),
                fresh(floor.spec.name),
            )
    for r in ran.values():
        if not _is_core(r.spec):
            continue
        rivals = [c for c in ran.values() if c.spec.kind == "comparison" and c.spec.engine == r.spec.engine]
        like = [c for c in rivals if c.spec.level == r.spec.level]
        groups = [(like, "")]
        defaults = [c for c in rivals if c.spec.default]
        if r.spec.default and defaults and {c.spec.level for c in defaults} != {r.spec.level}:
            groups.append((defaults, "defaults differ: ours at its default, each rival at its own"))
        for group, note in groups:
            with_append = [c for c in group if zero in c.append]
            if with_append:
                fastest = min(with_append, key=lambda c: c.append[zero][0])
                yield (
                    Target("append vs fastest rival", r.spec.name, fastest.spec.name, 1.0, note=note),
                    fresh(r.spec.name),
                    fresh(fastest.spec.name),
                )
            size = max((s for s in profile.sizes if s in r.window), default=None)
            with_window = [c for c in group if size in c.window]
            readers = [c for c in with_window if not c.spec.memory_reads]
            if size is None or not with_window:
                continue
            rows = []
            if readers:
                rows.append((min(readers, key=lambda c: c.window[size][0]), note))
            fastest = min(with_window, key=lambda c: c.window[size][0])
            if fastest.spec.memory_reads:  # shown beside the counted row, not counted
                rows.append((fastest, _MEMORY_READS))
            for rival, why in rows:
                yield (
                    Target(f"window(50) at {size:,} vs fastest rival", r.spec.name, rival.spec.name, 1.0,
                           note=why),
                    side(r.spec.name, "window", f"size-{size}", 50),
                    side(rival.spec.name, "window", f"size-{size}", 50),
                )
    for r in ran.values():
        if "adapter" not in r.spec.name or r.full_read is None:
            continue
        framework = "langchain" if "LangChain" in r.spec.name else "llama-index"
        for c in ran.values():
            if c.spec.kind == "comparison" and c.spec.name.startswith(framework) and c.full_read:
                yield (
                    Target(f"full read of {profile.full_read:,} vs rival", r.spec.name, c.spec.name, 1.0,
                           strict=True, note=_MEMORY_READS if c.spec.memory_reads else ""),
                    side(r.spec.name, "read_all", "full-read"),
                    side(c.spec.name, "read_all", "full-read"),
                )


def measure_targets(
    results: list[Result], opened: dict[str, Opened], profile: Profile, workdir: str,
    log: Callable[[str], None],
) -> list[Target]:
    done = []
    for target, make_ours, make_reference in plan_targets(results, opened, profile, workdir):
        sides: list[Side] = []
        try:
            sides = [make_ours()]
            sides.append(make_reference())
            target.measured, target.reference_value = interleaved(sides[0], sides[1], profile)
        except Exception as error:
            target.error = f"{type(error).__name__}: {error}"[:300]
        finally:
            for side in sides:
                try:
                    side.close()
                except Exception as error:
                    log(f"  closing {side.name}: {error}")
        ratio = target.ratio
        log(f"  {target.target}: {target.store} / {target.reference}: "
            + ("error" if ratio is None else f"{ratio:.2f}x"))
        done.append(target)
    for r in results:
        if r.spec.kind == "ours" and r.lost is not None:
            lost = Target("no lost writes", r.spec.name, "", 0.0, count=True)
            lost.measured, lost.reference_value = float(r.lost), None
            done.append(lost)
    return done


# -- the report --------------------------------------------------------------------------------------


def _ms(value: float | None) -> str:
    if value is None:
        return "–"
    return f"{value * 1e3:.3f}" if value < 0.1 else f"{value * 1e3:,.0f}"


def _pair(values: dict[int, tuple[float, float]], size: int) -> str:
    if size not in values:
        return "–"
    median, p99 = values[size]
    return f"{_ms(median)} / {_ms(p99)}"


def _ratio(a: float | None, b: float | None) -> float | None:
    return None if a is None or b is None or b == 0 else a / b


def _target_rows(targets: list[Target]) -> list[str]:
    lines = [
        "| target | store | measured (ms) | reference | reference (ms) | ratio | limit | met |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for t in targets:
        if t.count:
            lost = int(t.measured or 0)
            lines.append(f"| {t.target} | {t.store} | {lost} lost | – | – | – | 0 | "
                         f"{'yes' if lost == 0 else '**no**'} |")
            continue
        ratio = t.ratio
        limit = f"{'< ' if t.strict else '≤ '}{t.limit}x"
        met = "–" if t.met is None else ("yes" if t.met else "**no**")
        if t.note:
            met += f" ({t.note})"
        if t.error:
            met = f"error: {t.error}"
        lines.append(
            f"| {t.target} | {t.store} | {_ms(t.measured)} | {t.reference} | {_ms(t.reference_value)} "
            f"| {'–' if ratio is None else f'{ratio:.2f}x'} | {limit} | {met} |"
        )
    return lines


def _missed(t: Target) -> str:
    if t.ratio is None:
        return f"{t.target}, {t.store} ({t.measured:.0f})"
    return f"{t.target}, {t.store} ({t.ratio:.2f}x, limit {t.limit}x)"


def _machine() -> str:
    cpu = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
        memory = next(
            int(line.split()[1]) for line in Path("/proc/meminfo").read_text().splitlines()
            if line.startswith("MemTotal")
        )
        ram = f", {memory / 2**20:.0f} GiB RAM"
    except (OSError, StopIteration, ValueError):
        ram = ""
    return f"{cpu}, {os.cpu_count()} cores{ram}; {platform.platform()}; Python {platform.python_version()}"


def _load() -> str:
    try:
        return ", ".join(f"{v:.1f}" for v in os.getloadavg())
    except OSError:
        return "?"


def report(
    results: list[Result], targets: list[Target], profile: Profile, elapsed: float, quick: bool,
    servers: dict[str, str], load_before: str,
) -> str:
    sizes = profile.sizes

    def durability(spec: Spec) -> str:
        return spec.durability.format(**servers)

    met = [t for t in targets if t.met is not None and not t.note]
    missed = [t for t in met if not t.met]
    out = [
        "# Benchmark report",
        "",
        f"Mode: {'quick' if quick else 'full'}; run took {elapsed:,.0f} s. Machine: {_machine()}. "
        f"Load average (1, 5, 15 min) before: {load_before}; after: {_load()}. "
        f"Servers on loopback: {servers['redis']}; {servers['postgres']}. "
        "Times in milliseconds; a message is about 220 bytes of JSON.",
        "",
        f"Targets met: {len(met) - len(missed)} of {len(met)} "
        "(like-for-like rows; rows with a note in parentheses compare unlike stores and are shown,"
        " not counted)."
        + ("" if not missed else " Missed: " + "; ".join(_missed(t) for t in missed) + "."),
        "",
        "## Targets (each ratio measured with its two sides interleaved)",
        "",
        *_target_rows(targets),
        "",
        "## Append latency of one message, by history length (ms, median / p99)",
        "",
        "| store | durability | " + " | ".join(f"{s:,}" for s in sizes) + " | last / 0 |",
        "|---|---|" + "---|" * (len(sizes) + 1),
    ]
    ran = [r for r in results if r.skipped is None]
    for r in ran:
        ratio = _ratio(r.append.get(sizes[-1], (None,))[0], r.append.get(0, (None,))[0])
        out.append(
            f"| {r.spec.name} | {durability(r.spec)} | "
            + " | ".join(_pair(r.append, s) for s in sizes)
            + f" | {'–' if ratio is None else f'{ratio:.2f}x'} |"
        )
    out += [
        "",
        "## Last 50 messages (`get(limit=50)` or the store's nearest equivalent), by history length"
        " (ms, median / p99)",
        "",
        "| store | " + " | ".join(f"{s:,}" for s in sizes) + " |",
        "|---|" + "---|" * len(sizes),
    ]
    for r in ran:
        out.append(f"| {r.spec.name} | " + " | ".join(_pair(r.window, s) for s in sizes) + " |")
    total = profile.writers * profile.per_writer
    out += [
        "",
        "## Full read, throughput, lost writes, fidelity, memory",
        "",
        f"| store | durability | full read of {profile.full_read:,} (ms) "
        f"| {profile.sequential:,} sequential appends (msg/s) "
        f"| {profile.writers} concurrent writers (msg/s) | lost of {total:,} "
        f"| tool calls + order intact | peak memory, full read of {profile.memory_read:,} (MiB) |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for r in ran:
        crashed = f" ({r.failed_writers} of {profile.writers} writers crashed)" if r.failed_writers else ""
        out.append(
            f"| {r.spec.name} | {durability(r.spec)} | {_ms(r.full_read)} "
            f"| {'–' if r.sequential is None else f'{r.sequential:,.0f}'} | "
            f"{'–' if r.concurrent is None else f'{r.concurrent:,.0f}'} | "
            f"{'–' if r.lost is None else r.lost}{crashed} | "
            f"{'–' if r.fidelity is None else ('yes' if r.fidelity else '**no**')} | "
            f"{'–' if r.peak_memory is None else f'{r.peak_memory / 2**20:,.1f}'} |"
        )
    skipped = [r for r in results if r.skipped]
    if skipped:
        out += ["", "## Skipped", ""] + [f"- {r.spec.name}: {r.skipped}" for r in skipped]
    problems = [(r.spec.name, e) for r in results for e in r.errors]
    if problems:
        out += ["", "## Errors", ""] + [f"- {name}: {error}" for name, error in problems]
    return "\n".join(out) + "\n"


_PANELS = (("memory", "file"), ("sqlite",), ("redis",), ("postgres",))
_TITLES = ("memory and file", "SQLite", "Redis", "PostgreSQL")


def plot(results: list[Result], path: Path) -> bool:
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return False
    figure, grid = plt.subplots(2, 2, figsize=(15, 10.5), sharex=True, sharey=True)
    for axes, engines, title in zip(grid.flat, _PANELS, _TITLES, strict=True):
        lines = [r for r in results if r.spec.engine in engines and len(r.append) >= 2]
        # Ten distinct hues first, then their lighter shades.
        colours = plt.get_cmap("tab20")([*range(0, 20, 2), *range(1, 20, 2)])
        for number, r in enumerate(lines):
            points = sorted((max(size, 1), median) for size, (median, _) in r.append.items())
            style, marker = {"ours": ("-", "o"), "floor": (":", "^")}.get(r.spec.kind, ("--", "s"))
            axes.plot(
                [p[0] for p in points], [p[1] * 1e3 for p in points], style, marker=marker,
                color=colours[number % 20], label=r.spec.name, linewidth=2 if r.spec.kind == "ours" else 1.3,
            )
        axes.set_xscale("log")
        axes.set_yscale("log")
        axes.set_title(title)
        axes.grid(True, which="both", alpha=0.3)
        axes.legend(fontsize=7, loc="upper left")
    for axes in grid[1]:
        axes.set_xlabel("messages already in the session (0 plotted at 1)")
    for axes in grid[:, 0]:
        axes.set_ylabel("append of one message, median (ms)")
    figure.suptitle(
        "Append latency against history length"
        " (solid: session-layer, dashed: other stores, dotted: bare driver)"
    )
    figure.tight_layout()
    figure.savefig(path, dpi=100)
    plt.close(figure)
    return True


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.run", description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="small sizes, under a minute (what CI runs)")
    parser.add_argument(
        "--only", action="append", default=[], help="run only stores whose name contains this"
    )
    parser.add_argument("--out", default="benchmarks/results", help="directory for report.md and append.png")
    args = parser.parse_args(argv)
    profile = QUICK if args.quick else FULL
    specs = [s for s in SPECS if not args.only or any(o.lower() in s.name.lower() for o in args.only)]
    if args.quick:
        specs = [
            s
            for s in specs
            if s.kind != "comparison"
            or s.name in ("langchain FileChatMessageHistory", "openai-agents SQLiteSession")
        ]
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    load_before = _load()
    servers = server_settings()
    started = time.perf_counter()
    results: list[Result] = []
    opened: dict[str, Opened] = {}

    def log(line: str) -> None:
        print(line, file=sys.stderr, flush=True)

    with tempfile.TemporaryDirectory(prefix="session-layer-bench-") as workdir:
        try:
            for spec in specs:
                log(f"{spec.name} ...")
                result, store = measure(spec, profile, workdir, log)
                results.append(result)
                if store is not None:
                    opened[spec.name] = store
                if result.skipped:
                    log(f"  skipped: {result.skipped}")
            log("targets, interleaved ...")
            targets = measure_targets(results, opened, profile, workdir, log)
        finally:
            for name, store in opened.items():
                try:
                    store.runner.call(store.store.close)
                except Exception as error:
                    next(r for r in results if r.spec.name == name).errors.append(f"close: {error}")
                store.runner.close()
    text = report(results, targets, profile, time.perf_counter() - started, args.quick, servers, load_before)
    if plot(results, out / "append.png"):
        text += "\n![append latency against history length](append.png)\n"
    (out / "report.md").write_text(text)
    print(text)
    log(f"wrote {out / 'report.md'}")
    errors = [e for r in results for e in r.errors if r.spec.kind == "ours"]
    errors += [t.error for t in targets if t.error]
    return 1 if errors else 0


if __name__ == "__main__":
    sys.exit(main())
