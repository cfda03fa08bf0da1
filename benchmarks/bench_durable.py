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
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import _harness as h
from jobify import Jobify, JobStatus
from jobify.storage import SQLiteStorage

N_GATHER = 5_000
N_SEQ = 2_000
SEED_CHUNK = 10_000
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


async def push_sqlite(argv: list[str]) -> dict[str, float]:
    with tempfile.TemporaryDirectory(prefix="jobify-bench-") as tmp:
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
    return {"rate": N_GATHER / elapsed, "seq_us": seq_us}


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
        app, _, _ = make_app(db)
        t0 = time.perf_counter()
        await app.startup()
        elapsed = time.perf_counter() - t0
        try:
            active = app.get_active_jobs()
            h.expect(len(active) == expected, f"restore: {len(active)} of {expected} jobs")
            h.expect(all(j.status is JobStatus.SCHEDULED for j in active), "restore: not SCHEDULED")
            h.expect(
                all(j.exec_at.timestamp() > time.time() + 1800 for j in active),
                "restore: a job lost its exec_at",
            )
        finally:
            t1 = time.perf_counter()
            await app.shutdown()
            shutdown = time.perf_counter() - t1
    return {"seconds": elapsed, "shutdown": shutdown}


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
        for name in wanted:
            path = self.dir / f"{name}.db"
            count = [str(RESTORE_COUNTS[name])]
            proc = subprocess.run(
                [sys.executable, __file__, "--workload", "seed", str(path), *count],
                capture_output=True,
                text=True,
                timeout=300,
                check=False,
            )
            if proc.returncode != 0:
                raise SystemExit(f"seeding {name} failed:\n{proc.stderr[-2000:]}")
            self.paths[name] = path
            line = next(x for x in proc.stdout.splitlines() if x.startswith(h.MARKER))
            self.seconds[name] = float(json.loads(line[len(h.MARKER) :])["seconds"])
            print(
                f"  (seeded {name}: {RESTORE_COUNTS[name]:,} durable jobs in "
                f"{self.seconds[name]:.2f} s)",
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
    "seed": seed,
}

T = h.Target
TARGETS = [
    T("push_sqlite", "rate", "gather 5k durable push + wait_all", "jobs/s", ">=", 12_000),
    T("push_sqlite", "seq_us", "sequential durable push→wait", "µs", "<=", 200),
    T("restore_10k", "seconds", "startup with 10k stored jobs", "s", "<=", 0.2),
    T("restore_10k", "shutdown", "shutdown after restore", "s"),
    T("restore_100k", "seconds", "startup with 100k stored jobs", "s", "<=", 2.0),
    T("restore_100k", "shutdown", "shutdown after restore", "s"),
]


def main() -> int:
    seeds: Seeds | None = None

    def prepare() -> Seeds:
        nonlocal seeds
        seeds = Seeds()
        return seeds

    def extra(workload: str, run: int) -> Sequence[str]:
        return seeds.args(workload, run) if seeds is not None else []

    return h.main(__file__, WORKLOADS, TARGETS, extra_args=extra, prepare=prepare, hidden=("seed",))


if __name__ == "__main__":
    sys.exit(main())
