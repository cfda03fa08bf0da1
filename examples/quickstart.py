"""jobify quickstart: push, delay, at, cron with max_runs, retries and a timeout.

Runs on the default storage (a SQLite file, here in a temporary directory so every run starts
clean) and ends by itself in a few seconds. Run it with ``make run``.
"""

from __future__ import annotations

import asyncio
import tempfile
from datetime import datetime, timedelta
from pathlib import Path

from jobify import Cron, Jobify, JobStatus, SmartRetry
from jobify.storage import SQLiteStorage

workdir = Path(tempfile.mkdtemp(prefix="jobify-quickstart-"))
app = Jobify(storage=SQLiteStorage(workdir / "jobify.db"))

attempts = {"flaky": 0}


@app.task
async def greet(name: str) -> str:
    return f"hello, {name}"


@app.task
def add(a: int, b: int) -> int:
    """A plain def runs in the thread pool."""
    return a + b


@app.task(retry=SmartRetry(retries=2, initial_delay=0.05, jitter=False))
async def flaky() -> str:
    attempts["flaky"] += 1
    if attempts["flaky"] < 3:
        raise ConnectionError(f"attempt {attempts['flaky']} failed")
    return f"succeeded on attempt {attempts['flaky']}"


@app.task(timeout=0.2)
async def slow() -> None:
    await asyncio.sleep(5)


@app.task(cron=Cron("* * * * * * *", max_runs=3))
async def heartbeat() -> str:
    stamp = datetime.now().strftime("%H:%M:%S")
    print(f"  heartbeat at {stamp}")
    return stamp


async def main() -> None:
    async with app:
        job = await greet.push("world")
        print("push      ->", await job, job.status)

        job2 = await add.schedule(2, 3).delay(0.3)
        print("delay 0.3 ->", await job2, job2.status)

        at = datetime.now(app.configs.tz) + timedelta(milliseconds=200)
        job3 = await greet.schedule("at").at(at)
        print("at        ->", await job3, job3.status)

        job4 = await flaky.push()
        await job4.wait()
        print("retry     ->", job4.result(), job4.status)

        job5 = await slow.push()
        await job5.wait()
        print("timeout   ->", job5.status, "-", job5.exception)
        assert job5.status is JobStatus.TIMEOUT

        print("cron      -> every second, max_runs=3:")
        await app.wait_all(timeout=8)
        print("done; active jobs:", app.get_active_jobs())


if __name__ == "__main__":
    asyncio.run(main())
