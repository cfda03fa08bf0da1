"""A worker process that drives ``PostgresStorage`` the way the core will, for the
multi-process tests. Not a test module: run as ``python tests/pg_worker.py MODE ...``.

``worker DSN SCHEMA LOG [--capacity N] [--lease S] [--job-time S]``: claims jobs of task
``t`` up to its free capacity, "runs" each (a sleep), completes it with a result, and waits
for the next one on notifications and one timer at ``next_claimable`` (no poll interval).
Every step is appended to LOG as it happens (unbuffered, so a SIGKILL loses nothing already
written): ``start <id>``, ``done <id> <applied>``, ``claimed <id> <seconds after exec_at>``.
Prints ``ready`` once listening; on SIGTERM stops claiming, finishes running jobs, shuts
down (which releases what it still holds) and exits 0.

``produce DSN SCHEMA COUNT [--batch N]``: inserts COUNT one-shot jobs of task ``t``, due now,
in ``save_many`` batches, and exits.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import signal
import sys
import time

from jobify.storage.base import JobRecord, ResultRecord, SharedListener
from jobify.storage.postgres import PostgresStorage

TASKS = ("t",)


class Wake(SharedListener):
    """Sets an event on every notification that may make a claim succeed."""

    def __init__(self) -> None:
        self.event = asyncio.Event()

    def on_new_job(self, exec_at: float) -> None:
        self.event.set()

    def on_job_changed(self, job_id: str) -> None:
        pass

    def on_job_finished(self, job_id: str) -> None:
        pass

    def on_resync(self) -> None:
        self.event.set()


class Log:
    def __init__(self, path: str) -> None:
        self.fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)

    def write(self, line: str) -> None:
        os.write(self.fd, (line + "\n").encode())


async def worker(args: argparse.Namespace) -> None:
    storage = PostgresStorage(args.dsn, schema=args.schema, lease=args.lease, pool_size=2)
    wake = Wake()
    storage.set_listener(wake)
    await storage.startup()
    log = Log(args.log)
    stopping = asyncio.Event()
    loop = asyncio.get_running_loop()
    loop.add_signal_handler(signal.SIGTERM, stopping.set)
    running: set[asyncio.Task[None]] = set()

    async def run(job: JobRecord) -> None:
        log.write(f"start {job.job_id}")
        await asyncio.sleep(args.job_time)
        result = ResultRecord(job.job_id, "success", job.arguments, None, time.time())
        applied = await storage.complete(job.job_id, None, result)
        log.write(f"done {job.job_id} {applied}")
        wake.event.set()  # capacity freed

    print("ready", flush=True)
    try:
        while not stopping.is_set():
            wake.event.clear()
            free = args.capacity - len(running)
            claimed: list[JobRecord] = []
            if free > 0:
                claimed = await storage.claim(TASKS, free)
                now = time.time()
                for job in claimed:
                    log.write(f"claimed {job.job_id} {now - job.exec_at:.6f}")
                    task = asyncio.create_task(run(job))
                    running.add(task)
                    task.add_done_callback(running.discard)
                if len(claimed) == free:
                    continue  # there may be more right now
            timeout: float | None = None
            if free > 0:
                at = await storage.next_claimable(TASKS)
                if at is not None:
                    # A due row that the claim skipped is locked by a concurrent claim: look
                    # again shortly rather than spin.
                    timeout = max(at - time.time(), 0.0 if claimed else 0.02)
            waits = [
                asyncio.ensure_future(wake.event.wait()),
                asyncio.ensure_future(stopping.wait()),
            ]
            await asyncio.wait(waits, timeout=timeout, return_when=asyncio.FIRST_COMPLETED)
            for waiting in waits:
                waiting.cancel()
        if running:
            await asyncio.wait(running)
    finally:
        await storage.shutdown()


async def produce(args: argparse.Namespace) -> None:
    storage = PostgresStorage(args.dsn, schema=args.schema, pool_size=2)
    await storage.startup()
    try:
        for start in range(0, args.count, args.batch):
            now = time.time()
            await storage.save_many(
                [
                    JobRecord(f"job-{i}", "t", now, str(i).encode(), b"once")
                    for i in range(start, min(args.count, start + args.batch))
                ]
            )
            await asyncio.sleep(0.005)
    finally:
        await storage.shutdown()


def main() -> None:
    parser = argparse.ArgumentParser()
    sub = parser.add_subparsers(dest="mode", required=True)
    w = sub.add_parser("worker")
    w.add_argument("dsn")
    w.add_argument("schema")
    w.add_argument("log")
    w.add_argument("--capacity", type=int, default=10)
    w.add_argument("--lease", type=float, default=30.0)
    w.add_argument("--job-time", type=float, default=0.002)
    p = sub.add_parser("produce")
    p.add_argument("dsn")
    p.add_argument("schema")
    p.add_argument("count", type=int)
    p.add_argument("--batch", type=int, default=100)
    args = parser.parse_args()
    asyncio.run(worker(args) if args.mode == "worker" else produce(args))
    sys.exit(0)


if __name__ == "__main__":
    main()
