"""Raw SQLiteStorage figures, file-backed in a temporary directory, medians of 5.

(a) a gather of 5,000 ``save`` then a gather of 5,000 ``delete``: write ops per second;
(b) sequential ``await save()``: microseconds per write;
(c) ``load()`` of 10,000 and of 100,000 records: seconds.

The app-level targets (issue 4) are 12,000 durable push+completion per second, 200 µs per
sequential durable push and a 2 s restore of 100,000 jobs; the storage aims below leave the
core most of that budget. Prints a markdown table; exits 1 when an aim is missed.
Run: ``python benchmarks/bench_storage.py``.
"""

from __future__ import annotations

import asyncio
import statistics
import sys
import tempfile
import time
import uuid
from collections.abc import Awaitable, Callable
from pathlib import Path

from jobify.storage import JobRecord, SQLiteStorage

RUNS = 5
ARGUMENTS = b'{"args": [42, "report.pdf"], "kwargs": {"user_id": 1234, "notify": true}}'
TRIGGER = b'{"type": "at", "at": 1767225600.0}'


def records(n: int) -> list[JobRecord]:
    now = time.time()
    return [
        JobRecord(uuid.uuid4().hex, "reports:weekly", now + i, ARGUMENTS, TRIGGER) for i in range(n)
    ]


async def with_storage(directory: Path, work: Callable[[SQLiteStorage], Awaitable[float]]) -> float:
    storage = SQLiteStorage(directory / f"{uuid.uuid4().hex}.db")
    await storage.startup()
    try:
        return await work(storage)
    finally:
        await storage.shutdown()


async def save_then_delete(storage: SQLiteStorage, n: int = 5000) -> float:
    batch = records(n)
    started = time.perf_counter()
    await asyncio.gather(*(storage.save(r) for r in batch))
    await asyncio.gather(*(storage.delete(r.job_id) for r in batch))
    return 2 * n / (time.perf_counter() - started)


async def sequential_save(storage: SQLiteStorage, n: int = 2000) -> float:
    batch = records(n)
    await storage.save(batch[0])  # warm up the statement cache and the thread
    started = time.perf_counter()
    for r in batch:
        await storage.save(r)
    return (time.perf_counter() - started) / n * 1e6


async def load_times(directory: Path, n: int) -> list[float]:
    db = directory / f"load-{n}.db"
    storage = SQLiteStorage(db)
    await storage.startup()
    await storage.save_many(records(n))
    await storage.shutdown()
    times = []
    for _ in range(RUNS):
        storage = SQLiteStorage(db)
        await storage.startup()
        started = time.perf_counter()
        loaded = await storage.load()
        times.append(time.perf_counter() - started)
        await storage.shutdown()
        assert len(loaded) == n
        del loaded
    return times


async def main() -> int:
    rows: list[tuple[str, str, str, bool]] = []
    with tempfile.TemporaryDirectory(prefix="jobify-bench-") as tmp:
        directory = Path(tmp)
        ops = [await with_storage(directory, save_then_delete) for _ in range(RUNS)]
        rows.append(
            (
                "(a) gather 5,000 save + 5,000 delete",
                f"{statistics.median(ops):,.0f} ops/s",
                ">= 50,000 ops/s",
                statistics.median(ops) >= 50_000,
            )
        )
        seq = [await with_storage(directory, sequential_save) for _ in range(RUNS)]
        rows.append(
            (
                "(b) sequential await save()",
                f"{statistics.median(seq):.0f} µs",
                "<= 100 µs",
                statistics.median(seq) <= 100,
            )
        )
        for n, aim in ((10_000, None), (100_000, 0.3)):
            median = statistics.median(await load_times(directory, n))
            rows.append(
                (
                    f"(c) load() of {n:,} records",
                    f"{median:.3f} s",
                    f"<= {aim} s" if aim else "-",
                    aim is None or median <= aim,
                )
            )
        full = SQLiteStorage(directory / "full.db", synchronous="full")
        await full.startup()
        full_ops = [await save_then_delete(full) for _ in range(RUNS)]
        full_seq = [await sequential_save(full, 300) for _ in range(RUNS)]
        await full.shutdown()
        rows.append(
            ('(a) with synchronous="full"', f"{statistics.median(full_ops):,.0f} ops/s", "-", True)
        )
        rows.append(
            ('(b) with synchronous="full"', f"{statistics.median(full_seq):.0f} µs", "-", True)
        )

    print("| storage benchmark (SQLite file, median of 5) | result | aim | met |")
    print("|---|---:|---:|:---:|")
    for name, value, aim, met in rows:
        print(f"| {name} | {value} | {aim} | {'yes' if met else '**no**'} |")
    return 0 if all(met for *_, met in rows) else 1


if __name__ == "__main__":
    sys.exit(asyncio.run(main()))
