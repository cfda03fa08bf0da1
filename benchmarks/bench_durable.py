"""Issue 4 app-level benchmarks: durable jobs on a file-backed SQLite in a temp dir.

``push_sqlite``: concurrent and sequential durable pushes (each returns only once committed).
``restore_10k`` / ``restore_100k``: ``await app.startup()`` in a fresh process with that many
durable future jobs in the file. The seed files are written once by a separate process (the
hidden ``seed`` workload) and copied for every measured run, so each run restores from the
same untouched file. Only the public API is used; every run verifies its jobs.
Run: ``.venv/bin/python benchmarks/bench_durable.py [workload ...]``.
"""

from __future__ import annotations

import asyncio
import json
import shutil
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import _harness as h
import _reference
from jobify import Jobify, JobStatus
from jobify.storage import SQLiteStorage

N_GATHER = 5_000
N_SEQ = 2_000
SEED_CHUNK = 10_000
HISTORY_ROUNDS = 40
HISTORY_BATCH = 50
RESTORE_COUNTS = {"restore_10k": 10_000, "restore_100k": 100_000}


def make_app(db: Path) -> tuple[Jobify, Any, Any]:
    """The app of every phase: the same task names, so the seeded records restore."""
    app = Jobify(storage=SQLiteStorage(db))

    @app.task
    async def double(i: int) -> int:
        return i * 2

    @app.task
    async def later(i: int, label: str) -> str:
        return f"{label}{i}"

    return app, double, later


# -- floors: bare sqlite3 in one worker thread, the same journal settings as both systems ------


def _bare_connection(path: Path) -> sqlite3.Connection:
    conn = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
    conn.execute("PRAGMA journal_mode=WAL")
    conn.execute("PRAGMA synchronous=NORMAL")
    conn.execute("CREATE TABLE jobs (id TEXT PRIMARY KEY, body BLOB)")
    return conn


BODY = b'{"name": "double", "args": [12345], "kwargs": {}}'


async def floor_durable(tmp: Path) -> tuple[float, float]:
    """(jobs/s, µs): a durable job's bare shape, insert+commit then delete+commit of one row.

    Gathered: all rows in one transaction, then all deleted in one (the best a group commit
    can do). Sequential: one row's insert, commit, delete, commit per job, each step a hop to
    the same worker thread and back, as a durable push and its completion are.
    """
    loop = asyncio.get_running_loop()
    pool = ThreadPoolExecutor(max_workers=1)
    conn = _bare_connection(tmp / "floor.db")

    def insert_many(n: int) -> None:
        conn.execute("BEGIN")
        conn.executemany("INSERT INTO jobs VALUES (?, ?)", ((str(i), BODY) for i in range(n)))
        conn.execute("COMMIT")

    def delete_many(n: int) -> None:
        conn.execute("BEGIN")
        conn.executemany("DELETE FROM jobs WHERE id = ?", ((str(i),) for i in range(n)))
        conn.execute("COMMIT")

    def insert_one(i: int) -> None:
        conn.execute("INSERT INTO jobs VALUES (?, ?)", (str(i), BODY))

    def delete_one(i: int) -> None:
        conn.execute("DELETE FROM jobs WHERE id = ?", (str(i),))

    try:
        t0 = time.perf_counter()
        await loop.run_in_executor(pool, insert_many, N_GATHER)
        await loop.run_in_executor(pool, delete_many, N_GATHER)
        rate = N_GATHER / (time.perf_counter() - t0)
        t0 = time.perf_counter()
        for i in range(N_SEQ):
            await loop.run_in_executor(pool, insert_one, i)  # autocommit: one commit each
            await loop.run_in_executor(pool, delete_one, i)
        seq_us = (time.perf_counter() - t0) / N_SEQ * 1e6
        left = conn.execute("SELECT count(*) FROM jobs").fetchone()[0]
        h.expect(left == 0, f"durable floor: {left} rows left")
    finally:
        pool.shutdown()
        conn.close()
    return rate, seq_us


async def push_sqlite(argv: list[str]) -> dict[str, float]:
    with tempfile.TemporaryDirectory(prefix="jobify-bench-") as tmp:
        floor_rate, floor_us = await floor_durable(Path(tmp))
        app, double, _ = make_app(Path(tmp) / "jobs.db")
        async with app:
            t0 = time.perf_counter()
            jobs = await asyncio.gather(*(double.push(i) for i in range(N_GATHER)))
            await app.wait_all()
            elapsed = time.perf_counter() - t0
            for i, job in enumerate(jobs):
                h.expect(job.status is JobStatus.SUCCESS, f"push_sqlite job {i}: {job.status}")
                h.expect(job.result() == i * 2, f"push_sqlite job {i}: wrong result")

            t0 = time.perf_counter()
            for i in range(N_SEQ):
                job = await double.push(i)
                await job.wait()
                h.expect(job.result() == i * 2, f"push_sqlite sequential {i}: wrong result")
            seq_us = (time.perf_counter() - t0) / N_SEQ * 1e6
            h.expect(not app.get_active_jobs(), "push_sqlite: jobs left active")
    return {
        "rate": N_GATHER / elapsed,
        "seq_us": seq_us,
        "floor_rate": floor_rate,
        "floor_us": floor_us,
    }


def _history_app(db: Path, *, history: bool) -> tuple[Jobify, Any]:
    app = Jobify(storage=SQLiteStorage(db), history=history)

    @app.task
    async def double(i: int) -> int:
        return i * 2

    return app, double


async def _sequential_us(task: Any, start: int, n: int) -> float:
    t0 = time.perf_counter()
    for i in range(start, start + n):
        job = await task.push(i)
        await job.wait()
        h.expect(job.result() == i * 2, f"history_cost {i}: wrong result")
    return (time.perf_counter() - t0) / n * 1e6


async def history_cost(argv: list[str]) -> dict[str, float]:
    """What the run history adds to a sequential durable push→wait (ours only: the reference
    has no run history). Two apps open side by side, history on and off, each on its own
    file; short rounds alternate between them (on, off, on, off, ...) so that both see the
    same drift of the machine's load; medians of the rounds."""
    on: list[float] = []
    off: list[float] = []
    with tempfile.TemporaryDirectory(prefix="jobify-bench-") as tmp:
        app_on, task_on = _history_app(Path(tmp) / "on.db", history=True)
        app_off, task_off = _history_app(Path(tmp) / "off.db", history=False)
        async with app_on, app_off:
            for r in range(HISTORY_ROUNDS):
                on.append(await _sequential_us(task_on, r * HISTORY_BATCH, HISTORY_BATCH))
                off.append(await _sequential_us(task_off, r * HISTORY_BATCH, HISTORY_BATCH))
    on_us, off_us = statistics.median(on), statistics.median(off)
    return {"on_us": on_us, "off_us": off_us, "cost_pct": (on_us / off_us - 1) * 100}


async def seed(argv: list[str]) -> dict[str, float]:
    """Write ``count`` durable jobs one hour ahead into ``db`` and shut down (hidden)."""
    db, count = Path(argv[0]), int(argv[1])
    app, _, later = make_app(db)
    async with app:
        t0 = time.perf_counter()
        for start in range(0, count, SEED_CHUNK):
            stop = min(count, start + SEED_CHUNK)
            await asyncio.gather(
                *(later.schedule(i, label="j").delay(3600) for i in range(start, stop))
            )
        elapsed = time.perf_counter() - t0
        h.expect(len(app.get_active_jobs()) == count, "seed: not every job scheduled")
    return {"seconds": elapsed, "rate": count / elapsed}


async def _restore(argv: list[str], expected: int) -> dict[str, float]:
    seed_db = Path(argv[0])
    with tempfile.TemporaryDirectory(prefix="jobify-bench-") as tmp:
        db = Path(tmp) / "jobs.db"
        # A pristine copy per run: a restore may rewrite records, and every run must start
        # from the same file. The WAL is copied too in case the seeder left one.
        for suffix in ("", "-wal"):
            src = seed_db.with_name(seed_db.name + suffix)
            if src.exists():
                shutil.copyfile(src, db.with_name(db.name + suffix))
        floor = _floor_read(db, expected)
        app, _, _ = make_app(db)
        t0 = time.perf_counter()
        await app.startup()
        elapsed = time.perf_counter() - t0
        try:
            active = app.get_active_jobs()
            h.expect(len(active) == expected, f"restore: {len(active)} of {expected} jobs")
            # The reference leaves a restored job PENDING until it is due.
            waiting = {JobStatus.SCHEDULED, JobStatus.PENDING} if h.ON_REFERENCE else set()
            waiting.add(JobStatus.SCHEDULED)
            h.expect(all(j.status in waiting for j in active), "restore: not SCHEDULED")
            h.expect(
                all(j.exec_at.timestamp() > time.time() + 1800 for j in active),
                "restore: a job lost its exec_at",
            )
        finally:
            t1 = time.perf_counter()
            await app.shutdown()
            shutdown = time.perf_counter() - t1
    return {"seconds": elapsed, "shutdown": shutdown, "floor": floor}


def _floor_read(db: Path, expected: int) -> float:
    """Seconds to read every row of every table of the file with bare sqlite3 (a copy of it,
    so that the measured restore starts from an untouched file): the least a restore does."""
    copy = db.with_name("floor-" + db.name)
    for suffix in ("", "-wal"):
        src = db.with_name(db.name + suffix)
        if src.exists():
            shutil.copyfile(src, copy.with_name(copy.name + suffix))
    t0 = time.perf_counter()
    conn = sqlite3.connect(copy)
    try:
        tables = [r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type='table'")]
        rows = sum(len(conn.execute(f'SELECT * FROM "{t}"').fetchall()) for t in tables)
    finally:
        conn.close()
    elapsed = time.perf_counter() - t0
    h.expect(rows >= expected, f"restore floor: {rows} rows, expected {expected}")
    return elapsed


async def restore_10k(argv: list[str]) -> dict[str, float]:
    return await _restore(argv, RESTORE_COUNTS["restore_10k"])


async def restore_100k(argv: list[str]) -> dict[str, float]:
    return await _restore(argv, RESTORE_COUNTS["restore_100k"])


class Seeds:
    """Seed databases written by fresh processes before the restore runs; removed after."""

    def __init__(self) -> None:
        self.dir = Path(tempfile.mkdtemp(prefix="jobify-bench-seed-"))
        self.paths: dict[str, Path] = {}
        self.seconds: dict[str, float] = {}
        wanted = [w for w in RESTORE_COUNTS if not sys.argv[1:] or w in sys.argv[1:]]
        # The reference restores only a file it wrote itself, so it seeds its own.
        ref_python = _reference.python()[0]
        sides = [(sys.executable, "", None)]
        if ref_python is not None:
            sides.append((ref_python, h.REF, _reference.child_env()))
        for name in wanted:
            for python, suffix, env in sides:
                if suffix and name not in REFERENCE:
                    continue  # only the rows compared with the reference need its seed
                key = name + suffix
                path = self.dir / f"{name}{'-reference' if suffix else ''}.db"
                count = [str(RESTORE_COUNTS[name])]
                proc = subprocess.run(
                    [python, __file__, "--workload", "seed", str(path), *count],
                    capture_output=True,
                    text=True,
                    timeout=300,
                    check=False,
                    env=env,
                )
                if proc.returncode != 0:
                    raise SystemExit(f"seeding {key} failed:\n{proc.stderr[-2000:]}")
                self.paths[key] = path
                line = next(x for x in proc.stdout.splitlines() if x.startswith(h.MARKER))
                self.seconds[key] = float(json.loads(line[len(h.MARKER) :])["seconds"])
                print(
                    f"  (seeded {key}: {RESTORE_COUNTS[name]:,} durable jobs in "
                    f"{self.seconds[key]:.2f} s)",
                    file=sys.stderr,
                )

    def args(self, workload: str, run: int) -> Sequence[str]:
        return [str(self.paths[workload])] if workload in self.paths else []

    def cleanup(self) -> None:
        shutil.rmtree(self.dir, ignore_errors=True)


WORKLOADS: dict[str, h.Workload] = {
    "push_sqlite": push_sqlite,
    "restore_10k": restore_10k,
    "restore_100k": restore_100k,
    "history_cost": history_cost,
    "seed": seed,
}

T = h.Target
# Ratio targets (ref_op/ref_value) are ours / the reference system's median of the same run.
TARGETS = [
    T(
        "push_sqlite",
        "rate",
        "gather 5k durable push + wait_all",
        "jobs/s",
        ">=",
        12_000,
        floor_key="floor_rate",
        ref_op=">=",
        ref_value=10,
    ),
    T(
        "push_sqlite",
        "seq_us",
        "sequential durable push→wait",
        "µs",
        "<=",
        200,
        floor_key="floor_us",
        ref_op="<=",
        ref_value=0.2,
    ),
    T(
        "history_cost",
        "on_us",
        "sequential durable push→wait, history on",
        "µs",
        floor_key="off_us",
    ),
    T("history_cost", "cost_pct", "run history's cost (on vs off, same run)", "%", "<=", 5),
    T(
        "restore_10k",
        "seconds",
        "startup with 10k stored jobs",
        "s",
        "<=",
        0.2,
        floor_key="floor",
        ref_op="<=",
        ref_value=0.2,
    ),
    T("restore_10k", "shutdown", "shutdown after restore", "s"),
    T(
        "restore_100k",
        "seconds",
        "startup with 100k stored jobs",
        "s",
        "<=",
        2.0,
        floor_key="floor",
    ),
    T("restore_100k", "shutdown", "shutdown after restore", "s"),
]
REFERENCE = ("push_sqlite", "restore_10k")
NOTES = [
    "floors: bare sqlite3 (WAL, synchronous=NORMAL, as both systems use) in one worker "
    "thread. push_sqlite: gathered = all rows inserted in one transaction and deleted in "
    "one; sequential = per job one autocommitted insert and one delete, each a hop to the "
    "thread and back. restore: reading every row of the seeded file.",
    "history_cost runs ours only (the reference keeps no run history): sequential durable "
    "push→wait with the history on and off, alternating in one process, medians.",
]


def main() -> int:
    seeds: Seeds | None = None

    def prepare() -> Seeds:
        nonlocal seeds
        seeds = Seeds()
        return seeds

    def extra(workload: str, run: int) -> Sequence[str]:
        return seeds.args(workload, run) if seeds is not None else []

    return h.main(
        __file__,
        WORKLOADS,
        TARGETS,
        extra_args=extra,
        prepare=prepare,
        hidden=("seed",),
        reference=REFERENCE,
        notes=NOTES,
    )


if __name__ == "__main__":
    sys.exit(main())
