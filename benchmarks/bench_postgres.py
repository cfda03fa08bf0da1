"""Issue 11 storage benchmarks: PostgresStorage used the way a worker uses it, side by side with
procrastinate (a competitor, used here only as a yardstick) on the same database, same run.

``process_1`` / ``process_2`` / ``process_4``: jobs/s for 10,000 queued no-op one-shot jobs
processed by that many worker processes. Each jobify worker claims in batches up to its
capacity, runs a no-op, and completes each job with a result (completions are batched by the
group commit). Jobs are queued before the clock starts (due at a common instant the idle
workers wake for by NOTIFY + their timer). In the same run, procrastinate (default worker
settings, ``run_worker_async(wait=False)``) processes 2,000 queued no-op jobs with the same
number of processes; target: jobify >= 10x procrastinate.
``insert``: durable inserts (``save`` returns after COMMIT): one at a time (rate, latency
p50/p99), and 10,000 gathered; procrastinate's ``defer_async`` one at a time for scale.
``wake``: an idle worker process, a job saved for "now" by another process: p50/p99 of the
delay until the NOTIFY is heard and until the job is claimed (target p99 <= 10 ms).
``query_100k``: inspection queries on 100,000 stored jobs.

Every run uses fresh schemas on the server of ``JOBIFY_TEST_POSTGRES_DSN`` (default: the
local test server) and drops them. Without a server, the script says so and exits 0.
Run: ``.venv/bin/python benchmarks/bench_postgres.py [workload ...]``.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import socket
import statistics
import subprocess
import sys
import time
import uuid
from typing import Any

import asyncpg

import _harness as h
from jobify.storage.base import JobQuery, JobRecord, ResultRecord, SharedListener
from jobify.storage.postgres import PostgresStorage
from jobify.storage.postgres_connection import Target

DSN = os.environ.get("JOBIFY_TEST_POSTGRES_DSN", "postgresql://postgres@127.0.0.1:5432/test")
RUNS = 3
JOBS = 10_000
PROCRASTINATE_JOBS = 2_000
CAPACITY = 500
TASKS = ("noop",)
N_SEQ = 2_000
N_GATHER = 10_000
N_PROCRASTINATE_SEQ = 1_000
N_WAKE = 200


# -- helpers ------------------------------------------------------------------------------------


async def fresh_schema() -> str:
    return f"jobify_bench_{uuid.uuid4().hex[:10]}"


async def drop_schema(name: str) -> None:
    conn = await asyncpg.connect(DSN)
    try:
        await conn.execute(f'DROP SCHEMA IF EXISTS "{name}" CASCADE')
    finally:
        await conn.close()


class Wake(SharedListener):
    def __init__(self) -> None:
        self.event = asyncio.Event()
        self.heard: list[tuple[float, float]] = []  # (exec_at, when heard)

    def on_new_job(self, exec_at: float) -> None:
        self.heard.append((exec_at, time.time()))
        self.event.set()

    def on_job_changed(self, job_id: str) -> None:
        pass

    def on_job_finished(self, job_id: str) -> None:
        pass

    def on_resync(self) -> None:
        self.event.set()


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


def collect(proc: subprocess.Popen[str]) -> dict[str, Any]:
    out, _ = proc.communicate(timeout=300)
    h.expect(proc.returncode == 0, f"a worker exited {proc.returncode}")
    for line in out.splitlines():
        if line.startswith(h.MARKER):
            return dict(json.loads(line[len(h.MARKER) :]))
    raise h.BenchError("a worker printed no result")


# -- jobify worker (hidden workload) --------------------------------------------------------


async def jobify_worker(argv: list[str]) -> dict[str, float]:
    """Claim up to CAPACITY, run no-ops, complete with results; exit when nothing is left."""
    schema = argv[0]
    storage = PostgresStorage(DSN, schema=schema, pool_size=3)
    wake = Wake()
    storage.set_listener(wake)
    await storage.startup()
    running: set[asyncio.Task[None]] = set()
    done = 0
    last = 0.0
    first = 0.0

    async def run(job: JobRecord) -> None:
        nonlocal done, last
        value = b"null"  # the no-op's return value, encoded
        ok = await storage.complete(
            job.job_id, None, ResultRecord(job.job_id, "success", value, None, time.time())
        )
        h.expect(ok, f"completion of {job.job_id} refused")
        done += 1
        last = time.time()
        wake.event.set()

    print("ready", flush=True)
    try:
        while True:
            wake.event.clear()
            free = CAPACITY - len(running)
            claimed = await storage.claim(TASKS, free) if free > 0 else []
            if claimed and not first:
                first = time.time()
            for job in claimed:
                task = asyncio.create_task(run(job))
                running.add(task)
                task.add_done_callback(running.discard)
            if claimed:
                continue
            if running:
                await asyncio.wait_for(wake.event.wait(), timeout=10)
                continue
            at = await storage.next_claimable(TASKS)
            now = time.time()
            if done and (at is None or at > now + 5):
                break
            timeout = None if at is None else max(at - now, 0.01)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(wake.event.wait(), timeout=timeout)
    finally:
        await storage.shutdown()
    return {"done": done, "first": first, "last": last}


# -- procrastinate (hidden workload and helpers) ----------------------------------------------


def procrastinate_app(schema: str) -> tuple[Any, Any]:
    import procrastinate

    connector = procrastinate.PsycopgConnector(
        conninfo=DSN, kwargs={"options": f"-c search_path={schema}"}
    )
    app = procrastinate.App(connector=connector)

    @app.task(name="noop")
    async def noop() -> None:
        return None

    return app, noop


async def procrastinate_schema(schema: str) -> None:
    conn = await asyncpg.connect(DSN)
    try:
        await conn.execute(f'CREATE SCHEMA "{schema}"')
    finally:
        await conn.close()
    app, _ = procrastinate_app(schema)
    async with app.open_async():
        await app.schema_manager.apply_schema_async()


async def procrastinate_worker(argv: list[str]) -> dict[str, float]:
    schema, start_at = argv[0], float(argv[1])
    app, _ = procrastinate_app(schema)
    async with app.open_async():
        print("ready", flush=True)
        await asyncio.sleep(max(0.0, start_at - time.time()))
        await app.run_worker_async(wait=False, install_signal_handlers=False)
    return {"end": time.time()}


# -- workloads ----------------------------------------------------------------------------------


async def procrastinate_rate(workers: int) -> float:
    """Jobs/s of procrastinate (default worker settings) on PROCRASTINATE_JOBS queued no-op
    jobs with ``workers`` processes: the yardstick of the jobify figures."""
    pg_schema = await fresh_schema()
    try:
        await procrastinate_schema(pg_schema)
        app, noop = procrastinate_app(pg_schema)
        async with app.open_async():
            await noop.batch_defer_async(*([{}] * PROCRASTINATE_JOBS))
        start_at = time.time() + 3.0  # worker processes import procrastinate first
        procs = [spawn("procrastinate_worker", pg_schema, str(start_at)) for _ in range(workers)]
        ends = [collect(p)["end"] for p in procs]
        conn = await asyncpg.connect(DSN)
        try:
            left = await conn.fetchval(
                f'SELECT count(*) FROM "{pg_schema}".procrastinate_jobs'
                " WHERE status <> 'succeeded'"
            )
        finally:
            await conn.close()
        h.expect(left == 0, f"procrastinate left {left} jobs")
        procrastinate_seconds = max(ends) - start_at
    finally:
        await drop_schema(pg_schema)
    return PROCRASTINATE_JOBS / procrastinate_seconds


async def _process(workers: int) -> dict[str, float]:
    schema = await fresh_schema()
    try:
        producer = PostgresStorage(DSN, schema=schema, pool_size=2)
        await producer.startup()
        try:
            procs = [spawn("jobify_worker", schema) for _ in range(workers)]
            start_at = time.time() + 1.5
            for first in range(0, JOBS, 2_000):
                await producer.save_many(
                    [
                        JobRecord(f"j{i}", "noop", start_at, b"[]", b"once")
                        for i in range(first, first + 2_000)
                    ]
                )
            h.expect(time.time() < start_at - 0.2, "queueing took too long")
            results = [collect(p) for p in procs]
            h.expect(sum(r["done"] for r in results) == JOBS, "not every job completed")
            h.expect(await producer.load() == [], "jobs left in the table")
            missing = [
                i for i in (0, JOBS // 2, JOBS - 1) if await producer.get_result(f"j{i}") is None
            ]
            h.expect(not missing, f"results missing: {missing}")
        finally:
            await producer.shutdown()
        jobify_seconds = max(r["last"] for r in results) - start_at
        shares = [r["done"] / JOBS for r in results]

    finally:
        await drop_schema(schema)
    jobify_rate = JOBS / jobify_seconds
    procrastinate = await procrastinate_rate(workers)
    return {
        "jobify": jobify_rate,
        "procrastinate": procrastinate,
        "ratio": jobify_rate / procrastinate,
        "min_share": min(shares),
    }


async def process_1(argv: list[str]) -> dict[str, float]:
    return await _process(1)


async def process_2(argv: list[str]) -> dict[str, float]:
    return await _process(2)


async def process_4(argv: list[str]) -> dict[str, float]:
    return await _process(4)


async def insert(argv: list[str]) -> dict[str, float]:
    schema = await fresh_schema()
    pg_schema = await fresh_schema()
    try:
        storage = PostgresStorage(DSN, schema=schema, pool_size=3)
        await storage.startup()
        try:
            latencies = []
            t0 = time.perf_counter()
            for i in range(N_SEQ):
                t1 = time.perf_counter()
                await storage.save(JobRecord(f"s{i}", "noop", time.time() + 3600, b"[]", b"once"))
                latencies.append(time.perf_counter() - t1)
            seq_rate = N_SEQ / (time.perf_counter() - t0)
            t0 = time.perf_counter()
            await asyncio.gather(
                *(
                    storage.save(JobRecord(f"g{i}", "noop", time.time() + 3600, b"[]", b"once"))
                    for i in range(N_GATHER)
                )
            )
            gather_rate = N_GATHER / (time.perf_counter() - t0)
            h.expect(len(await storage.load()) == N_SEQ + N_GATHER, "inserts missing")
        finally:
            await storage.shutdown()

        await procrastinate_schema(pg_schema)
        app, noop = procrastinate_app(pg_schema)
        async with app.open_async():
            t0 = time.perf_counter()
            for _ in range(N_PROCRASTINATE_SEQ):
                await noop.defer_async()
            procrastinate_rate = N_PROCRASTINATE_SEQ / (time.perf_counter() - t0)
    finally:
        await drop_schema(schema)
        await drop_schema(pg_schema)
    return {
        "seq_rate": seq_rate,
        "p50_ms": statistics.median(latencies) * 1000,
        "p99_ms": h.percentile(latencies, 99) * 1000,
        "gather_rate": gather_rate,
        "procrastinate_seq_rate": procrastinate_rate,
    }


async def wake_listener(argv: list[str]) -> dict[str, float]:
    """An idle worker: on NOTIFY, claim; record both delays from the job's exec_at."""
    schema = argv[0]
    storage = PostgresStorage(DSN, schema=schema, pool_size=2)
    wake = Wake()
    storage.set_listener(wake)
    await storage.startup()
    claimed: list[float] = []
    print("ready", flush=True)
    try:
        while len(claimed) < N_WAKE:
            await asyncio.wait_for(wake.event.wait(), timeout=30)  # no poll: NOTIFY only
            wake.event.clear()
            for job in await storage.claim(TASKS, 10):
                claimed.append(time.time() - job.exec_at)
                await storage.complete(job.job_id, None, None)
    finally:
        await storage.shutdown()
    heard = [at_heard - exec_at for exec_at, at_heard in wake.heard[:N_WAKE]]
    return {
        "notify_p50_ms": statistics.median(heard) * 1000,
        "notify_p99_ms": h.percentile(heard, 99) * 1000,
        "claim_p50_ms": statistics.median(claimed) * 1000,
        "claim_p99_ms": h.percentile(claimed, 99) * 1000,
    }


async def wake(argv: list[str]) -> dict[str, float]:
    schema = await fresh_schema()
    try:
        producer = PostgresStorage(DSN, schema=schema, pool_size=2)
        await producer.startup()
        try:
            listener = spawn("wake_listener", schema)
            for i in range(N_WAKE):
                await producer.save(JobRecord(f"w{i}", "noop", time.time(), b"[]", b"once"))
                await asyncio.sleep(0.01)  # the worker goes idle again between jobs
            result = collect(listener)
        finally:
            await producer.shutdown()
    finally:
        await drop_schema(schema)
    return {k: float(v) for k, v in result.items()}


async def query_100k(argv: list[str]) -> dict[str, float]:
    schema = await fresh_schema()
    try:
        storage = PostgresStorage(DSN, schema=schema, pool_size=2)
        await storage.startup()
        try:
            base = time.time()
            for first in range(0, 100_000, 10_000):
                await storage.save_many(
                    [
                        JobRecord(
                            f"q{i}", f"task{i % 20}", base + i, b"[1, 2]", b"once", "scheduled"
                        )
                        for i in range(first, first + 10_000)
                    ]
                )
            conn = await asyncpg.connect(DSN)
            try:
                await conn.execute(f'ANALYZE "{schema}".jobs')
            finally:
                await conn.close()
            queries = [
                JobQuery(),
                JobQuery(task_name="task7", limit=50, offset=1000),
                JobQuery(status="paused"),
                JobQuery(due_after=base + 50_000, due_before=base + 50_100),
            ]
            times = []
            for query in queries * 5:
                t0 = time.perf_counter()
                await storage.query_jobs(query)
                times.append(time.perf_counter() - t0)
            t0 = time.perf_counter()
            counts = await storage.job_counts()
            counts_ms = (time.perf_counter() - t0) * 1000
            h.expect(sum(counts.values()) == 100_000, "job_counts is wrong")
            t0 = time.perf_counter()
            await storage.next_claimable(["task3"])
            next_ms = (time.perf_counter() - t0) * 1000
        finally:
            await storage.shutdown()
    finally:
        await drop_schema(schema)
    return {"query_max_ms": max(times) * 1000, "counts_ms": counts_ms, "next_ms": next_ms}


WORKLOADS: dict[str, h.Workload] = {
    "process_1": process_1,
    "process_2": process_2,
    "process_4": process_4,
    "insert": insert,
    "wake": wake,
    "query_100k": query_100k,
    "jobify_worker": jobify_worker,
    "procrastinate_worker": procrastinate_worker,
    "wake_listener": wake_listener,
}
HIDDEN = ("jobify_worker", "procrastinate_worker", "wake_listener")

T = h.Target
TARGETS = [
    *(
        row
        for n in (1, 2, 4)
        for row in (
            T(f"process_{n}", "jobify", f"jobify, {n} worker process(es)", "jobs/s"),
            T(f"process_{n}", "procrastinate", f"procrastinate, {n} process(es)", "jobs/s"),
            T(f"process_{n}", "ratio", "jobify / procrastinate", "x", ">=", 10),
            T(f"process_{n}", "min_share", "smallest worker share (jobify)", ""),
        )
    ),
    T("insert", "seq_rate", "durable save, one at a time", "jobs/s"),
    T("insert", "p50_ms", "save latency p50", "ms"),
    T("insert", "p99_ms", "save latency p99", "ms"),
    T("insert", "gather_rate", "durable save, 10k gathered", "jobs/s"),
    T("insert", "procrastinate_seq_rate", "procrastinate defer, one at a time", "jobs/s"),
    T("wake", "notify_p50_ms", "save 'now' -> NOTIFY heard, p50", "ms"),
    T("wake", "notify_p99_ms", "save 'now' -> NOTIFY heard, p99", "ms"),
    T("wake", "claim_p50_ms", "save 'now' -> claimed by idle worker, p50", "ms"),
    T("wake", "claim_p99_ms", "save 'now' -> claimed by idle worker, p99", "ms", "<=", 10),
    T("query_100k", "query_max_ms", "query_jobs on 100k (slowest of 4 kinds)", "ms", "<=", 50),
    T("query_100k", "counts_ms", "job_counts on 100k", "ms"),
    T("query_100k", "next_ms", "next_claimable on 100k", "ms"),
]


def _server_reason() -> str | None:
    target = Target.parse(DSN)
    try:
        with socket.create_connection((target.host, int(target.port)), timeout=2):
            return None
    except OSError as exc:
        return f"no PostgreSQL server at {target.host}:{target.port} ({exc})"


def main() -> int:
    argv = sys.argv[1:]
    if argv[:1] == ["--workload"]:
        return h.main(__file__, WORKLOADS, TARGETS, hidden=HIDDEN)
    reason = _server_reason()
    if reason is not None:
        print(f"skipped: {reason}; set JOBIFY_TEST_POSTGRES_DSN to run the PostgreSQL benchmarks")
        return 0
    chosen = [w for w in WORKLOADS if w not in HIDDEN and (not argv or w in argv)]
    results, errors = h.run_workloads(__file__, chosen, runs=RUNS, timeout=600)
    text, ok = h.table(results, [t for t in TARGETS if t.workload in chosen])
    print(text)
    print(
        f"\nMedians of {RUNS} runs, each in fresh processes; jobify processes {JOBS:,} jobs "
        f"per run, procrastinate {PROCRASTINATE_JOBS:,} (its rate is the yardstick)."
    )
    for err in errors:
        print(f"\nERROR {err}")
    ok = ok and not errors
    print("\nall targets met" if ok else "\nTARGETS MISSED")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
