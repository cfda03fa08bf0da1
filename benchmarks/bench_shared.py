"""Issue 11 through the full app: ``Jobify(storage=PostgresStorage(...))`` workers, side by side
with procrastinate (a competitor, a yardstick only) on the same database, in the same run.

``app_process_1`` / ``_2`` / ``_4``: jobs/s for 10,000 queued no-op one-shot jobs processed by
that many app worker processes (``Jobify(concurrency=500)``, the task an ``async def`` that
returns None): claims, execution through the app's pipeline, batched completions with
results. Jobs are queued before the clock starts, due at one instant the idle workers wake
for. procrastinate processes 2,000 queued no-op jobs with the same number of processes
(default worker settings); target: jobify >= 10x procrastinate.
``app_push``: durable ``push()`` from a producer-only app (``worker=False``): one at a time
(rate, latency p50/p99) and 10,000 gathered.
``app_wake``: an idle app worker process; a job pushed for "now" from another process: the
delay until the task starts, p50/p99 (target p99 <= 10 ms).

Fresh schemas per run on ``JOBIFY_TEST_POSTGRES_DSN`` (default: the local test server), dropped
afterwards; without a server the script says so and exits 0.
Run: ``.venv/bin/python benchmarks/bench_shared.py [workload ...]``.
"""

from __future__ import annotations

import asyncio
import statistics
import subprocess
import sys
import time
from typing import Any

import asyncpg

import _harness as h
import bench_postgres as pg
from jobify import Jobify
from jobify._triggerdoc import AT_TRIGGER
from jobify.storage.base import JobRecord
from jobify.storage.postgres import PostgresStorage

DSN = pg.DSN
RUNS = 3
JOBS = 10_000
CONCURRENCY = 500
N_SEQ = 2_000
N_GATHER = 10_000
N_WAKE = 200


def app(schema: str, *, worker: bool = True) -> tuple[Jobify, dict[str, Any]]:
    progress = asyncio.Event()
    stats: dict[str, Any] = {"done": 0, "last": 0.0, "late": [], "progress": progress}
    application = Jobify(
        storage=PostgresStorage(DSN, schema=schema, pool_size=3),
        concurrency=CONCURRENCY,
        worker=worker,
        history=False,
    )

    @application.task
    async def noop() -> None:
        stats["done"] += 1
        stats["last"] = time.time()
        progress.set()

    @application.task
    async def wake(pushed: float) -> None:
        stats["late"].append(time.time() - pushed)
        if len(stats["late"]) >= N_WAKE:
            progress.set()

    return application, stats


def spawn(workload: str, *args: str) -> subprocess.Popen[str]:
    proc = subprocess.Popen(
        [sys.executable, __file__, "--workload", workload, *args],
        stdout=subprocess.PIPE,
        text=True,
    )
    assert proc.stdout is not None
    line = proc.stdout.readline().strip()
    h.expect(line == "ready", f"{workload} did not start: {line!r}")
    return proc


# -- app worker processes (hidden workloads) ---------------------------------------------------


async def app_worker(argv: list[str]) -> dict[str, float]:
    """Run the app until it has been idle for a second after running jobs; report how many
    it ran and when the last one ended."""
    application, stats = app(argv[0])
    progress: asyncio.Event = stats["progress"]
    async with application:
        print("ready", flush=True)
        while True:
            try:
                await asyncio.wait_for(progress.wait(), 1.0)
            except TimeoutError:
                if stats["done"] and not application.get_active_jobs():
                    break
            progress.clear()
    return {"done": stats["done"], "last": stats["last"]}


async def app_wake_worker(argv: list[str]) -> dict[str, float]:
    application, stats = app(argv[0])
    async with application:
        print("ready", flush=True)
        await stats["progress"].wait()
    late = stats["late"]
    return {
        "p50_ms": statistics.median(late) * 1000,
        "p99_ms": h.percentile(late, 99) * 1000,
    }


# -- workloads ---------------------------------------------------------------------------------


async def _count(schema: str) -> int:
    conn = await asyncpg.connect(DSN)
    try:
        return int(await conn.fetchval(f'SELECT count(*) FROM "{schema}".jobs'))
    finally:
        await conn.close()


async def _app_process(workers: int) -> dict[str, float]:
    schema = await pg.fresh_schema()
    try:
        producer = PostgresStorage(DSN, schema=schema, pool_size=2)
        await producer.startup()
        try:
            procs = [spawn("app_worker", schema) for _ in range(workers)]
            start_at = time.time() + 1.5
            for first in range(0, JOBS, 2_000):
                await producer.save_many(
                    [
                        JobRecord(f"j{i}", "noop", start_at, b"{}", AT_TRIGGER)
                        for i in range(first, first + 2_000)
                    ]
                )
            h.expect(time.time() < start_at - 0.2, "queueing took too long")
            results = [pg.collect(p) for p in procs]
        finally:
            await producer.shutdown()
        h.expect(sum(r["done"] for r in results) == JOBS, "not every job ran exactly once")
        h.expect(await _count(schema) == 0, "jobs left in the table")
        seconds = max(r["last"] for r in results) - start_at
        shares = [r["done"] / JOBS for r in results]
    finally:
        await pg.drop_schema(schema)
    procrastinate = await pg.procrastinate_rate(workers)
    rate = JOBS / seconds
    return {
        "jobify": rate,
        "procrastinate": procrastinate,
        "ratio": rate / procrastinate,
        "min_share": min(shares),
    }


async def app_process_1(argv: list[str]) -> dict[str, float]:
    return await _app_process(1)


async def app_process_2(argv: list[str]) -> dict[str, float]:
    return await _app_process(2)


async def app_process_4(argv: list[str]) -> dict[str, float]:
    return await _app_process(4)


async def app_push(argv: list[str]) -> dict[str, float]:
    schema = await pg.fresh_schema()
    try:
        producer, _ = app(schema, worker=False)
        async with producer:
            noop = producer.tasks["noop"]
            latencies = []
            t0 = time.perf_counter()
            for _ in range(N_SEQ):
                t1 = time.perf_counter()
                await noop.push()
                latencies.append(time.perf_counter() - t1)
            seq_rate = N_SEQ / (time.perf_counter() - t0)
            t0 = time.perf_counter()
            await asyncio.gather(*(noop.push() for _ in range(N_GATHER)))
            gather_rate = N_GATHER / (time.perf_counter() - t0)
        h.expect(await _count(schema) == N_SEQ + N_GATHER, "pushes missing")
    finally:
        await pg.drop_schema(schema)
    return {
        "seq_rate": seq_rate,
        "p50_ms": statistics.median(latencies) * 1000,
        "p99_ms": h.percentile(latencies, 99) * 1000,
        "gather_rate": gather_rate,
    }


async def app_wake(argv: list[str]) -> dict[str, float]:
    schema = await pg.fresh_schema()
    try:
        store = PostgresStorage(DSN, schema=schema, pool_size=1)
        await store.startup()  # the tables exist before the worker and producer start
        await store.shutdown()
        listener = spawn("app_wake_worker", schema)
        producer, _ = app(schema, worker=False)
        async with producer:
            await asyncio.sleep(0.5)
            wake = producer.tasks["wake"]
            for _ in range(N_WAKE):
                await wake.push(time.time())
                await asyncio.sleep(0.01)  # the worker goes idle again between jobs
        result = pg.collect(listener)
    finally:
        await pg.drop_schema(schema)
    return {k: float(v) for k, v in result.items()}


WORKLOADS: dict[str, h.Workload] = {
    "app_process_1": app_process_1,
    "app_process_2": app_process_2,
    "app_process_4": app_process_4,
    "app_push": app_push,
    "app_wake": app_wake,
    "app_worker": app_worker,
    "app_wake_worker": app_wake_worker,
}
HIDDEN = ("app_worker", "app_wake_worker")

T = h.Target
TARGETS = [
    *(
        row
        for n in (1, 2, 4)
        for row in (
            T(f"app_process_{n}", "jobify", f"jobify app, {n} worker process(es)", "jobs/s"),
            T(f"app_process_{n}", "procrastinate", f"procrastinate, {n} process(es)", "jobs/s"),
            T(f"app_process_{n}", "ratio", "jobify / procrastinate", "x", ">=", 10),
            T(f"app_process_{n}", "min_share", "smallest worker share (jobify)", ""),
        )
    ),
    T("app_push", "seq_rate", "durable push, one at a time", "jobs/s"),
    T("app_push", "p50_ms", "push latency p50", "ms"),
    T("app_push", "p99_ms", "push latency p99", "ms"),
    T("app_push", "gather_rate", "durable push, 10k gathered", "jobs/s"),
    T("app_wake", "p50_ms", "push 'now' -> task started on an idle worker, p50", "ms"),
    T("app_wake", "p99_ms", "push 'now' -> task started on an idle worker, p99", "ms", "<=", 10),
]


def main() -> int:
    argv = sys.argv[1:]
    if argv[:1] == ["--workload"]:
        return h.main(__file__, WORKLOADS, TARGETS, hidden=HIDDEN)
    reason = pg._server_reason()
    if reason is not None:
        print(f"skipped: {reason}; set JOBIFY_TEST_POSTGRES_DSN to run the PostgreSQL benchmarks")
        return 0
    chosen = [w for w in WORKLOADS if w not in HIDDEN and (not argv or w in argv)]
    results, errors = h.run_workloads(__file__, chosen, runs=RUNS, timeout=600)
    text, ok = h.table(results, [t for t in TARGETS if t.workload in chosen])
    print(text)
    print(
        f"\nMedians of {RUNS} runs, each in fresh processes; jobify processes {JOBS:,} jobs "
        f"per run, procrastinate {pg.PROCRASTINATE_JOBS:,} (its rate is the yardstick)."
    )
    for err in errors:
        print(f"\nERROR {err}")
    ok = ok and not errors
    print("\nall targets met" if ok else "\nTARGETS MISSED")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
