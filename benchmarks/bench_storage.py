"""Raw SQLiteStorage figures, file-backed in a temporary directory, medians of 5.

(a) a gather of 5,000 ``save`` then a gather of 5,000 ``delete``: write ops per second;
(b) sequential ``await save()``: microseconds per write;
(c) ``load()`` of 10,000 and of 100,000 records: seconds;
(d) inspection reads on 100,000 records: ``query_jobs`` first page and page 500 (of 100),
    unfiltered and filtered by task or status, and ``job_counts``: milliseconds per call;
(e) the cost of run history: a gather of 5,000 ``save`` each with a ``record_run_soon``
    (as the core records a finished run), against (a).

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
from functools import partial
from pathlib import Path

from jobify.storage import JobRecord, SQLiteStorage
from jobify.storage.base import JobQuery, RunRecord

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


async def save_with_runs_then_delete(storage: SQLiteStorage, n: int = 5000) -> float:
    batch = records(n)
    now = time.time()
    started = time.perf_counter()

    async def save_and_record(record: JobRecord) -> None:
        await storage.save(record)
        storage.record_run_soon(
            RunRecord(record.job_id, record.task_name, now, now, now, "success", worker="h:1")
        )

    await asyncio.gather(*(save_and_record(r) for r in batch))
    await asyncio.gather(*(storage.delete(r.job_id) for r in batch))
    return 2 * n / (time.perf_counter() - started)


INSPECTION_QUERIES = {
    "query_jobs page 1": JobQuery(),
    "query_jobs page 500": JobQuery(offset=49_900),
    "query_jobs page 1, by task": JobQuery(task_name="reports:weekly"),
    "query_jobs page 500, by task": JobQuery(task_name="reports:weekly", offset=49_900),
    "query_jobs page 1, by a rare task": JobQuery(task_name="rare"),
    "query_jobs page 500, status scheduled": JobQuery(status="scheduled", offset=49_900),
    "query_jobs page 1, status paused": JobQuery(status="paused"),
}
# Worst cases: a rare task's page walks the whole covering index (no task index: it would
# cost every write), and counting walks it too.
INSPECTION_AIMS = {
    "query_jobs page 500, by task": 15.0,
    "query_jobs page 1, by a rare task": 15.0,
    "job_counts": 60.0,
}


def task_of(i: int) -> str:
    return "rare" if i % 10_000 == 5 else ("reports:weekly", "mail:send")[i % 2]


async def inspection_times(directory: Path, n: int = 100_000) -> dict[str, float]:
    """Milliseconds per call (median of 20) of each inspection read on ``n`` records."""
    storage = SQLiteStorage(directory / "inspect.db")
    await storage.startup()
    now = time.time()
    await storage.save_many(
        [
            JobRecord(
                uuid.uuid4().hex,
                task_of(i),
                now + i // 3,  # ties in exec_at, broken by job id
                ARGUMENTS,
                TRIGGER,
                "paused" if i % 100 == 0 else "scheduled",
            )
            for i in range(n)
        ]
    )
    calls = {name: partial(storage.query_jobs, query) for name, query in INSPECTION_QUERIES.items()}
    calls["job_counts"] = storage.job_counts
    times = {}
    for name, call in calls.items():
        result = await call()
        assert result, name
        samples = []
        for _ in range(20):
            started = time.perf_counter()
            await call()
            samples.append(time.perf_counter() - started)
        times[name] = statistics.median(samples) * 1e3
    await storage.shutdown()
    return times


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
        with_runs = [await with_storage(directory, save_with_runs_then_delete) for _ in range(RUNS)]
        rows.append(
            (
                "(e) (a) with a run record per save",
                f"{statistics.median(with_runs):,.0f} ops/s",
                ">= 50% of (a)",  # a run is one more row: about the cost of a job write
                statistics.median(with_runs) >= 0.5 * statistics.median(ops),
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
        for name, ms in (await inspection_times(directory)).items():
            aim = INSPECTION_AIMS.get(name, 5.0)
            rows.append(
                (f"(d) {name} (100,000 records)", f"{ms:.2f} ms", f"<= {aim:g} ms", ms <= aim)
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
