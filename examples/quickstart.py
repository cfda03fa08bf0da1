"""jobify quickstart: push, delay, at, a declared cron, retries and a timeout.

Runs on the default storage, the SQLite file ``jobify.db`` in the working directory, and ends
by itself in a few seconds. Run it with ``make run``.

Run it a second time to see persistence at work: the declared cron ``heartbeat`` is limited to
three runs, and it made them the first time, so it stays finished (its record in jobify.db
says so). Delete jobify.db to start afresh. If you stop the script half-way (Ctrl-C), the
jobs still waiting are kept and run at the next start.
"""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta

from jobify import INJECT, Cron, CronContext, Jobify, JobStatus, SmartRetry

app = Jobify()  # storage: ./jobify.db; the app's zone (for naive datetimes): UTC

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


@app.task(cron=Cron("* * * * * * *", max_runs=3))  # 7 fields: every second; 3 runs in all
async def heartbeat(cron: CronContext | None = INJECT) -> str:
    stamp = datetime.now(UTC).strftime("%H:%M:%S")
    assert cron is not None
    print(f"  heartbeat {cron.runs + 1}/{cron.cron.max_runs} at {stamp} UTC")
    return stamp


async def main() -> None:
    async with app:
        job = await greet.push("world")
        print("push      ->", await job, job.status)

        job2 = await add.schedule(2, 3).delay(0.3)
        print("delay 0.3 ->", await job2, job2.status)

        at = datetime.now(UTC) + timedelta(milliseconds=200)  # aware: no zone guessing
        job3 = await greet.schedule("at").at(at)
        print("at        ->", await job3, job3.status)

        job4 = await flaky.push()
        await job4.wait()
        print("retry     ->", job4.result(), job4.status)

        job5 = await slow.push()
        await job5.wait()
        print("timeout   ->", job5.status, "-", job5.exception)
        assert job5.status is JobStatus.TIMEOUT

        if app.find_job(heartbeat.name) is None:  # a declared cron: its id is the task name
            print("cron      -> heartbeat made its 3 runs in an earlier run: it stays finished")
            print("             (delete jobify.db to start afresh)")
        else:
            print("cron      -> heartbeat, every second, 3 runs in all:")
        await app.wait_all(timeout=8)
        print("done; active jobs:", app.get_active_jobs())


if __name__ == "__main__":
    asyncio.run(main())
