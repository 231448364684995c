"""Run every benchmark and write a Markdown report and a PNG plot.

    python -m benchmarks.run            # the full run (about 15-25 minutes here)
    python -m benchmarks.run --quick    # under a minute: small sizes, what CI runs

Options: ``--only SUBSTRING`` (repeatable) to pick stores, ``--out DIR`` for the report
(default ``benchmarks/results``). Stores whose package is missing or whose server is
unreachable are listed as skipped with the reason.
"""

from __future__ import annotations

import argparse
import asyncio
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
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from benchmarks.stores import (
    POSTGRES_DSN,
    REDIS_URL,
    SPECS,
    Spec,
    Store,
    available,
    new_namespace,
    open_store,
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


FULL = Profile(
    SIZES_FULL,
    samples=300,
    budget=3.0,
    full_read=10_000,
    sequential=2_000,
    writers=8,
    per_writer=250,
    memory_read=100_000,
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
        self, fn: Callable[..., Any], args: tuple[Any, ...], samples: int, budget: float
    ) -> list[float]:
        """Time up to ``samples`` calls (at least 3), stopping once ``budget`` is spent."""
        if inspect.iscoroutinefunction(fn):

            async def run() -> list[float]:
                times: list[float] = []
                deadline = time.perf_counter() + budget
                while len(times) < samples and (len(times) < 3 or time.perf_counter() < deadline):
                    start = time.perf_counter()
                    await fn(*args)
                    times.append(time.perf_counter() - start)
                return times

            result: list[float] = self.loop.run_until_complete(run())
            return result
        times = []
        deadline = time.perf_counter() + budget
        while len(times) < samples and (len(times) < 3 or time.perf_counter() < deadline):
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


# -- concurrent writers ------------------------------------------------------------------------


def _writer(spec: Spec, location: str, namespace: str, session_id: str, count: int, tag: int) -> None:
    runner = Runner()
    store = open_store(spec, location, namespace)
    for _ in range(count):
        runner.call(store.append_one, session_id)
    runner.close()


def _writer_process(*args: Any) -> None:
    try:
        _writer(*args)
    except Exception as error:  # counted by the parent through the exit code
        print(f"writer failed: {type(error).__name__}: {error}"[:200], file=sys.stderr)
        sys.exit(1)


def concurrent_writers(
    spec: Spec, location: str, namespace: str, session_id: str, writers: int, per_writer: int
) -> tuple[float, int]:
    """Wall time of ``writers`` writers each appending ``per_writer`` messages to one id,
    and how many writers crashed: processes for embedded stores (as separate app
    workers would be), threads for servers."""
    args = [(spec, location, namespace, session_id, per_writer, n) for n in range(writers)]
    start = time.perf_counter()
    failed = 0
    if spec.engine in ("file", "sqlite"):
        context = multiprocessing.get_context("spawn")
        processes = [context.Process(target=_writer_process, args=a) for a in args]
        for process in processes:
            process.start()
        for process in processes:
            process.join()
            failed += process.exitcode != 0
    else:
        errors: list[BaseException] = []

        def target(*a: Any) -> None:
            try:
                _writer(*a)
            except Exception as error:
                errors.append(error)

        threads = [threading.Thread(target=target, args=a) for a in args]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        failed = len(errors)
    return time.perf_counter() - start, failed


# -- one store ------------------------------------------------------------------------------------


def measure(spec: Spec, profile: Profile, workdir: str, log: Callable[[str], None]) -> Result:
    result = Result(spec)
    why = available(spec)
    if why is not None:
        result.skipped = why
        return result
    location = tempfile.mkdtemp(prefix="store-", dir=workdir)
    namespace = new_namespace()
    runner = Runner()
    try:
        store = open_store(spec, location, namespace)
    except Exception as error:  # a missing server, a missing feature
        result.skipped = f"could not open: {type(error).__name__}: {error}"[:200]
        runner.close()
        return result
    try:
        _measure(store, runner, result, profile, location, namespace, log)
    finally:
        try:
            runner.call(store.close)
        except Exception as error:
            result.errors.append(f"close: {error}")
        runner.close()
    return result


def _measure(
    store: Store,
    runner: Runner,
    result: Result,
    profile: Profile,
    location: str,
    namespace: str,
    log: Callable[[str], None],
) -> None:
    spec = store.spec
    for size in profile.sizes:
        session_id = f"size-{size}"
        try:
            runner.call(store.prefill, session_id, size) if size else None
            times = runner.timed(store.append_one, (session_id,), profile.samples, profile.budget)
            result.append[size] = summary(times)
            times = runner.timed(store.window, (session_id, 50), profile.samples, profile.budget)
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
        times = runner.timed(store.read_all, ("full-read",), 7, profile.budget * 2)
        result.full_read = statistics.median(times)
        assert len(runner.call(store.read_all, "full-read")) == profile.full_read
    except Exception as error:
        result.errors.append(f"full read: {type(error).__name__}: {error}"[:300])
    try:
        start = time.perf_counter()
        for _ in range(profile.sequential):
            runner.call(store.append_one, "sequential")
        result.sequential = profile.sequential / (time.perf_counter() - start)
    except Exception as error:
        result.errors.append(f"sequential: {type(error).__name__}: {error}"[:300])
    if spec.engine != "memory":
        try:
            elapsed, result.failed_writers = concurrent_writers(
                spec, location, namespace, "concurrent", profile.writers, profile.per_writer
            )
            total = profile.writers * profile.per_writer
            result.concurrent = total / elapsed
            result.lost = total - len(runner.call(store.read_all, "concurrent"))
        except Exception as error:
            result.errors.append(f"concurrent: {type(error).__name__}: {error}"[:300])
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


def targets(results: list[Result], profile: Profile) -> list[str]:
    """The ratios the report must show, each measured in this run."""
    ran = [r for r in results if r.skipped is None and r.append]
    big, zero = max(profile.sizes), 0
    lines = ["| target | store | measured | reference | ratio | met |", "|---|---|---|---|---|---|"]

    def row(
        target: str,
        store: str,
        measured: float | None,
        reference: float | None,
        limit: float,
        reference_name: str = "",
        unit: str = "ms",
    ) -> None:
        ratio = _ratio(measured, reference)
        met = "–" if ratio is None else ("yes" if ratio <= limit else f"**no** (limit {limit}x)")
        shown = "–" if ratio is None else f"{ratio:.2f}x"
        lines.append(
            f"| {target} | {store} | {_ms(measured)} {unit} | {reference_name} {_ms(reference)} {unit}"
            f" | {shown} | {met} |"
        )

    for r in ran:
        if r.spec.kind == "ours" and big in r.append and zero in r.append:
            row(f"flat append ({big:,} vs 0)", r.spec.name, r.append[big][0], r.append[zero][0], 1.5, "at 0:")
    for r in ran:
        if r.spec.kind == "ours" and r.lost is not None:
            lines.append(
                f"| no lost writes | {r.spec.name} | {r.lost} lost | 0 | – "
                f"| {'yes' if r.lost == 0 else '**no**'} |"
            )
    floors = {
        "redis": ("bare redis-py", 1.3),
        "postgres": ("bare psycopg", 1.3),
        "sqlite": ("bare sqlite3 INSERT (WAL, NORMAL)", 3.0),
    }
    for r in ran:
        if (
            r.spec.kind != "ours"
            or r.spec.name.endswith(("+encrypt", "+compress"))
            or "adapter" in r.spec.name
        ):
            continue
        floor_name, limit = floors.get(r.spec.engine, ("", 0))
        if "FULL" in r.spec.name:
            floor_name = "bare sqlite3 INSERT (WAL, FULL)"
        floor = next((f for f in ran if f.spec.kind == "floor" and f.spec.name.startswith(floor_name)), None)
        if floor_name and floor is not None and zero in floor.append:
            row(
                "append vs bare driver",
                r.spec.name,
                r.append[zero][0],
                floor.append[zero][0],
                limit,
                "floor:",
            )
    for r in ran:
        if r.spec.kind != "ours" or "adapter" in r.spec.name or "+" in r.spec.name:
            continue
        rivals = [
            c
            for c in ran
            if c.spec.kind == "comparison" and c.spec.engine == r.spec.engine and zero in c.append
        ]
        if not rivals:
            continue
        fastest = min(rivals, key=lambda c: c.append[zero][0])
        row(
            "append vs fastest rival",
            r.spec.name,
            r.append[zero][0],
            fastest.append[zero][0],
            1.0,
            fastest.spec.name + ":",
        )
        size = max(s for s in profile.sizes if s in r.window)
        rivals_w = [c for c in rivals if size in c.window]
        if rivals_w:
            fastest_w = min(rivals_w, key=lambda c: c.window[size][0])
            row(
                f"window(50) at {size:,} vs fastest rival",
                r.spec.name,
                r.window[size][0],
                fastest_w.window[size][0],
                1.0,
                fastest_w.spec.name + ":",
            )
    for r in ran:
        if "adapter" not in r.spec.name or r.full_read is None:
            continue
        framework = "langchain" if "LangChain" in r.spec.name else "llama-index"
        rivals = [
            c
            for c in ran
            if c.spec.kind == "comparison" and c.spec.name.startswith(framework) and c.full_read
        ]
        for c in rivals:
            row(
                f"full read {profile.full_read:,} vs rival",
                r.spec.name,
                r.full_read,
                c.full_read,
                1.0,
                c.spec.name + ":",
            )
    return lines


def report(results: list[Result], profile: Profile, elapsed: float, quick: bool) -> str:
    sizes = profile.sizes
    out = [
        "# Benchmark report",
        "",
        f"Mode: {'quick' if quick else 'full'}; run took {elapsed:,.0f} s. Machine: {platform.platform()}, "
        f"Python {platform.python_version()}, {os.cpu_count()} cores. Redis {REDIS_URL}, PostgreSQL "
        f"{POSTGRES_DSN} (both on loopback). Times in milliseconds (median / p99); "
        "message ≈ 220 bytes of JSON.",
        "",
        "## Stores and durability",
        "",
        "| store | engine | kind | durability setting |",
        "|---|---|---|---|",
    ]
    for r in results:
        state = f" (skipped: {r.skipped})" if r.skipped else ""
        out.append(f"| {r.spec.name}{state} | {r.spec.engine} | {r.spec.kind} | {r.spec.durability} |")
    ran = [r for r in results if r.skipped is None]
    out += [
        "",
        "## Append latency of one message, by history length (ms, median / p99)",
        "",
        "| store | " + " | ".join(f"{s:,}" for s in sizes) + " | last / 0 |",
        "|---|" + "---|" * (len(sizes) + 1),
    ]
    for r in ran:
        ratio = _ratio(r.append.get(sizes[-1], (None,))[0], r.append.get(0, (None,))[0])
        out.append(
            f"| {r.spec.name} | "
            + " | ".join(_pair(r.append, s) for s in sizes)
            + f" | {'–' if ratio is None else f'{ratio:.2f}x'} |"
        )
    out += [
        "",
        "## Last 50 messages (`get(limit=50)` or the store's nearest equivalent), by history length (ms)",
        "",
        "| store | " + " | ".join(f"{s:,}" for s in sizes) + " |",
        "|---|" + "---|" * len(sizes),
    ]
    for r in ran:
        out.append(f"| {r.spec.name} | " + " | ".join(_pair(r.window, s) for s in sizes) + " |")
    out += [
        "",
        "## Full read, throughput, lost writes, fidelity, memory",
        "",
        f"| store | full read of {profile.full_read:,} (ms) "
        f"| {profile.sequential:,} sequential appends (msg/s) "
        f"| {profile.writers} concurrent writers (msg/s) | lost of {profile.writers * profile.per_writer:,} "
        f"| tool calls + order intact | peak memory, full read of {profile.memory_read:,} (MiB) |",
        "|---|---|---|---|---|---|---|",
    ]
    for r in ran:
        out.append(
            f"| {r.spec.name} | {_ms(r.full_read)} "
            f"| {'–' if r.sequential is None else f'{r.sequential:,.0f}'} | "
            f"{'–' if r.concurrent is None else f'{r.concurrent:,.0f}'} | {'–' if r.lost is None else r.lost}"
            f"{f' ({r.failed_writers} writers crashed)' if r.failed_writers else ''} | "
            f"{'–' if r.fidelity is None else ('yes' if r.fidelity else '**no**')} | "
            f"{'–' if r.peak_memory is None else f'{r.peak_memory / 2**20:,.1f}'} |"
        )
    out += ["", "## Targets (ratios from this run)", "", *targets(results, profile)]
    problems = [(r.spec.name, e) for r in results for e in r.errors]
    if problems:
        out += ["", "## Errors", ""] + [f"- {name}: {error}" for name, error in problems]
    return "\n".join(out) + "\n"


def plot(results: list[Result], path: Path) -> bool:
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return False
    figure, axes = plt.subplots(figsize=(10, 6.5))
    for r in results:
        points = sorted((max(size, 1), median) for size, (median, _) in r.append.items())
        if len(points) < 2:
            continue
        style = "-" if r.spec.kind == "ours" else (":" if r.spec.kind == "floor" else "--")
        axes.plot([p[0] for p in points], [p[1] * 1e3 for p in points], style, marker="o", label=r.spec.name)
    axes.set_xscale("log")
    axes.set_yscale("log")
    axes.set_xlabel("messages already in the session (0 plotted at 1)")
    axes.set_ylabel("append of one message, median (ms)")
    axes.set_title(
        "Append latency against history length (solid: session-layer, dashed: others, dotted: bare driver)"
    )
    axes.grid(True, which="both", alpha=0.3)
    axes.legend(fontsize=6.5, loc="upper left", ncol=2)
    figure.tight_layout()
    figure.savefig(path, dpi=110)
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
    started = time.perf_counter()
    results = []
    with tempfile.TemporaryDirectory(prefix="session-layer-bench-") as workdir:
        for spec in specs:
            print(f"{spec.name} ...", file=sys.stderr, flush=True)
            results.append(
                measure(spec, profile, workdir, lambda line: print(line, file=sys.stderr, flush=True))
            )
            if results[-1].skipped:
                print(f"  skipped: {results[-1].skipped}", file=sys.stderr)
    text = report(results, profile, time.perf_counter() - started, args.quick)
    if plot(results, out / "append.png"):
        text += "\n![append latency against history length](append.png)\n"
    (out / "report.md").write_text(text)
    print(text)
    print(f"wrote {out / 'report.md'}", file=sys.stderr)
    errors = [e for r in results for e in r.errors if r.spec.kind == "ours"]
    return 1 if errors else 0


if __name__ == "__main__":
    sys.exit(main())
