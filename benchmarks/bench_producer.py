"""Issue 22, the producer and control surface: bulk push and cancelling a running job.

``pg_push_many``: 20,000 one-shot jobs written by ``task.push_many`` from a producer-only app
(``worker=False``) on PostgreSQL, against procrastinate's ``batch_defer_async`` of 20,000 jobs
(a competitor, a yardstick only) on the same database, alternating A B A B in one run; and
jobify's own durable ``push`` one at a time. Targets: push_many >= 5x procrastinate's batch,
and >= 10x the one-at-a-time push.
``sqlite_push_many``: 5,000 jobs by ``push_many`` against 5,000 gathered ``push`` calls on one
SQLite file (both durable, both group-committed), A B A B; target: push_many >= 2x.
``pg_cancel``: a ``jobify worker``-like app process runs a ``MAIN`` job that sleeps; the
producer cancels it; the time from the ``cancel()`` call until the body sees
``CancelledError``, p50/p99 of 100 cancels (target p99 <= 50 ms).

Run: ``.venv/bin/python benchmarks/bench_producer.py [workload ...]``.
"""

from __future__ import annotations

import asyncio
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import _harness as h
import bench_postgres as pg
from jobify import Jobify
from jobify.storage import PostgresStorage, SQLiteStorage

ROUNDS = 2  # A B A B inside each run
N_BULK = 20_000
N_SEQ = 1_000
N_SQLITE = 5_000
N_CANCEL = 100


def producer(schema: str) -> tuple[Jobify, Any]:
    app = Jobify(
        storage=PostgresStorage(pg.DSN, schema=schema, pool_size=3), worker=False, history=False
    )

    @app.task(name="noop")
    async def noop(n: int) -> None:
        return None

    return app, noop


async def _count(schema: str) -> int:
    conn = await pg.asyncpg.connect(pg.DSN)
    try:
        count: int = await conn.fetchval(f'SELECT count(*) FROM "{schema}".jobs')
    finally:
        await conn.close()
    return count


async def pg_push_many(argv: list[str]) -> dict[str, float]:
    schema = await pg.fresh_schema()
    pschema = await pg.fresh_schema()
    bulk: list[float] = []
    theirs: list[float] = []
    try:
        await pg.procrastinate_schema(pschema)
        papp, pnoop = pg.procrastinate_app(pschema)
        app, noop = producer(schema)
        async with app, papp.open_async():
            items = [(n,) for n in range(N_BULK)]
            for _ in range(ROUNDS):
                t0 = time.perf_counter()
                jobs = await noop.push_many(items)
                bulk.append(N_BULK / (time.perf_counter() - t0))
                h.expect(len(jobs) == N_BULK, "handles missing")
                t0 = time.perf_counter()
                await pnoop.batch_defer_async(*([{}] * N_BULK))
                theirs.append(N_BULK / (time.perf_counter() - t0))
            t0 = time.perf_counter()
            for n in range(N_SEQ):
                await noop.push(n)
            seq = N_SEQ / (time.perf_counter() - t0)
        h.expect(await _count(schema) == ROUNDS * N_BULK + N_SEQ, "pushed jobs missing")
    finally:
        await pg.drop_schema(schema)
        await pg.drop_schema(pschema)
    best, their_best = statistics.median(bulk), statistics.median(theirs)
    return {
        "push_many": best,
        "procrastinate": their_best,
        "ratio_procrastinate": best / their_best,
        "seq": seq,
        "ratio_seq": best / seq,
    }


async def sqlite_push_many(argv: list[str]) -> dict[str, float]:
    bulk: list[float] = []
    gathered: list[float] = []
    with tempfile.TemporaryDirectory() as tmp:
        app = Jobify(storage=SQLiteStorage(Path(tmp) / "jobs.db"), history=False)
        done = {"count": 0}
        finished = asyncio.Event()
        target = {"count": 0}

        @app.task(name="noop")
        async def noop(n: int) -> None:
            done["count"] += 1
            if done["count"] >= target["count"]:
                finished.set()

        async def settle(total: int) -> None:
            # Every job of the round has run before the next round is timed.
            target["count"] = total
            if done["count"] < total:
                finished.clear()
                await finished.wait()

        async with app:
            items = [(n,) for n in range(N_SQLITE)]
            total = 0
            for _ in range(ROUNDS):
                t0 = time.perf_counter()
                await noop.push_many(items)
                bulk.append(N_SQLITE / (time.perf_counter() - t0))
                total += N_SQLITE
                await settle(total)
                t0 = time.perf_counter()
                await asyncio.gather(*(noop.push(n) for n in range(N_SQLITE)))
                gathered.append(N_SQLITE / (time.perf_counter() - t0))
                total += N_SQLITE
                await settle(total)
    best, theirs = statistics.median(bulk), statistics.median(gathered)
    return {"push_many": best, "gathered": theirs, "ratio": best / theirs}


CANCEL_APP = """
import asyncio, os, sys, time
from jobify import Jobify
from jobify.storage import PostgresStorage

app = Jobify(
    storage=PostgresStorage(os.environ["BENCH_DSN"], schema=os.environ["BENCH_SCHEMA"],
                            pool_size=2),
    history=False,
)

@app.task(name="long")
async def long(n: int) -> None:
    print("start", n, flush=True)
    try:
        await asyncio.sleep(60)
    except asyncio.CancelledError:
        print("cancelled", n, time.time(), flush=True)
        raise

async def main() -> None:
    async with app:
        print("ready", flush=True)
        await asyncio.sleep(3600)

asyncio.run(main())
"""


async def pg_cancel(argv: list[str]) -> dict[str, float]:
    schema = await pg.fresh_schema()
    latencies: list[float] = []
    with tempfile.TemporaryDirectory() as tmp:
        script = Path(tmp) / "cancel_worker.py"
        script.write_text(CANCEL_APP)
        store = PostgresStorage(pg.DSN, schema=schema, pool_size=1)
        await store.startup()  # tables first: the worker and the producer must not race
        await store.shutdown()
        env = {**os.environ, "BENCH_DSN": pg.DSN, "BENCH_SCHEMA": schema}
        worker = await asyncio.create_subprocess_exec(
            sys.executable, str(script), env=env, stdout=asyncio.subprocess.PIPE
        )
        assert worker.stdout is not None
        try:
            line = await asyncio.wait_for(worker.stdout.readline(), 30)
            h.expect(line.strip() == b"ready", f"worker did not start: {line!r}")
            app = Jobify(
                storage=PostgresStorage(pg.DSN, schema=schema, pool_size=2),
                worker=False,
                history=False,
            )

            @app.task(name="long")
            async def long(n: int) -> None:
                return None

            async with app:
                for n in range(N_CANCEL):
                    job = await long.push(n)
                    started = await asyncio.wait_for(worker.stdout.readline(), 30)
                    h.expect(started.split() == [b"start", str(n).encode()], repr(started))
                    t0 = time.time()
                    await job.cancel()
                    seen = await asyncio.wait_for(worker.stdout.readline(), 30)
                    parts = seen.split()
                    h.expect(parts[:2] == [b"cancelled", str(n).encode()], repr(seen))
                    latencies.append(float(parts[2]) - t0)
        finally:
            worker.terminate()
            await worker.wait()
            await pg.drop_schema(schema)
    return {
        "p50_ms": statistics.median(latencies) * 1000,
        "p99_ms": h.percentile(latencies, 99) * 1000,
    }


WORKLOADS: dict[str, h.Workload] = {
    "pg_push_many": pg_push_many,
    "sqlite_push_many": sqlite_push_many,
    "pg_cancel": pg_cancel,
}

T = h.Target
TARGETS = [
    T("pg_push_many", "push_many", f"push_many of {N_BULK:,} (PostgreSQL)", "jobs/s"),
    T("pg_push_many", "procrastinate", f"procrastinate batch_defer_async of {N_BULK:,}", "jobs/s"),
    T("pg_push_many", "ratio_procrastinate", "push_many / procrastinate batch", "x", ">=", 5),
    T("pg_push_many", "seq", "durable push, one at a time", "jobs/s"),
    T("pg_push_many", "ratio_seq", "push_many / one-at-a-time push", "x", ">=", 10),
    T("sqlite_push_many", "push_many", f"push_many of {N_SQLITE:,} (SQLite)", "jobs/s"),
    T("sqlite_push_many", "gathered", f"{N_SQLITE:,} gathered push (SQLite)", "jobs/s"),
    T("sqlite_push_many", "ratio", "push_many / gathered push", "x", ">=", 2),
    T("pg_cancel", "p50_ms", "cancel() -> CancelledError on another worker, p50", "ms"),
    T("pg_cancel", "p99_ms", "cancel() -> CancelledError on another worker, p99", "ms", "<=", 50),
]


def main() -> int:
    argv = sys.argv[1:]
    if argv[:1] != ["--workload"]:
        reason = pg._server_reason()
        if reason is not None:
            print(f"skipped: {reason}; set JOBIFY_TEST_POSTGRES_DSN to run these benchmarks")
            return 0
    return h.main(
        __file__,
        WORKLOADS,
        TARGETS,
        notes=[
            f"Medians of {h.RUNS} runs in fresh processes; inside each run the two sides "
            f"alternate A B A B ({ROUNDS} rounds each) and the median round counts."
        ],
    )


if __name__ == "__main__":
    raise SystemExit(main())
