"""A worker on a shared PostgreSQL store never loses a wake-up: not when a notification
arrives while a claim is reading, not when every notification is lost; it never holds more
claims than its concurrency, and never retries a job whose claim was taken."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Collection
from typing import Any

import pytest

import pgtest
from jobify import Jobify, SmartRetry
from jobify.storage import PostgresStorage, postgres_listen
from jobify.storage.base import SharedListener

pytestmark = pytest.mark.filterwarnings("ignore::ResourceWarning")


@pytest.fixture
async def schema() -> AsyncIterator[str]:
    async with pgtest.fresh_schema() as name:
        store = pgtest.storage(name)  # the tables exist before the apps race to make them
        await store.startup()
        await store.shutdown()
        yield name


def app_on(storage: PostgresStorage, ran: list[Any], **options: Any) -> Jobify:
    app = Jobify(storage=storage, history=False, **options)

    @app.task(name="work")
    async def work(n: int, seconds: float = 0.0) -> int:
        ran.append((n, time.monotonic()))
        if seconds:
            await asyncio.sleep(seconds)
        return n

    return app


class Relay(SharedListener):
    """Forwards to the worker and tells the test that a new job was announced."""

    def __init__(self, inner: SharedListener) -> None:
        self.inner = inner
        self.announced = asyncio.Event()

    def on_new_job(self, exec_at: float) -> None:
        self.inner.on_new_job(exec_at)
        self.announced.set()

    def on_job_changed(self, job_id: str) -> None:
        self.inner.on_job_changed(job_id)

    def on_job_finished(self, job_id: str) -> None:
        self.inner.on_job_finished(job_id)

    def on_resync(self) -> None:
        self.inner.on_resync()


class StaleRead(PostgresStorage):
    """Its first read of the next claimable time returns only once a new job was announced:
    the read's snapshot predates that job, as on a busy host where the NOTIFY of a commit
    overtakes a read that had started just before it."""

    relay: Relay | None = None
    reading: asyncio.Event
    held_back = False

    def set_listener(self, listener: SharedListener | None) -> None:
        self.relay = None if listener is None else Relay(listener)
        super().set_listener(self.relay)

    async def next_claimable(self, task_names: Collection[str]) -> float | None:
        value = await super().next_claimable(task_names)
        if not self.held_back and self.relay is not None:
            self.held_back = True
            self.reading.set()
            await self.relay.announced.wait()
        return value


async def test_a_job_announced_while_a_claim_reads_is_not_lost(schema: str) -> None:
    ran: list[Any] = []
    storage = StaleRead(pgtest.DSN, schema=schema, pool_size=3, lease=30.0)
    storage.reading = asyncio.Event()
    producer = app_on(pgtest.storage(schema), [], worker=False)
    async with producer, app_on(storage, ran):
        await asyncio.wait_for(storage.reading.wait(), 10)  # the worker's first read waits
        job = await producer.tasks["work"].push(1)
        # The read answers "nothing" after the announcement: the worker must claim again
        # (the lease heartbeat, 10 s away, must not be what saves it).
        assert await asyncio.wait_for(job, 5) == 1
    assert [n for n, _ in ran] == [1]


async def test_with_every_notification_lost_a_due_job_starts_within_a_third_of_the_lease(
    schema: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(postgres_listen, "dispatch", lambda listener, payload: None)
    ran: list[Any] = []
    lease = 1.5
    producer = app_on(pgtest.storage(schema), [], worker=False)
    worker = app_on(pgtest.storage(schema, lease=lease), ran)
    async with producer, worker:
        for n in range(3):
            pushed = time.monotonic()
            await producer.tasks["work"].push(n)
            deadline = pushed + lease / 3 + 1.0  # one heartbeat period, and a busy host
            while len(ran) <= n:
                assert time.monotonic() < deadline, f"job {n} did not start in time"
                await asyncio.sleep(0.01)
            assert ran[n][1] - pushed < lease / 3 + 1.0


async def test_a_worker_never_holds_more_claims_than_its_concurrency(schema: str) -> None:
    ran: list[Any] = []
    most = 0
    producer = app_on(pgtest.storage(schema), [], worker=False)
    worker = app_on(pgtest.storage(schema), ran, concurrency=3)

    async def watch() -> None:
        nonlocal most
        # Claimed and not finished here (a finished run's claim may stay in the store a
        # moment longer, until its completion's group commit).
        while True:
            most = max(most, len(worker.get_active_jobs()))
            await asyncio.sleep(0)

    async with producer, worker:
        watcher = asyncio.create_task(watch())
        # All due at once (one group commit): a claim could take every one of them.
        work = producer.tasks["work"]
        jobs = await asyncio.gather(*(work.push(n, 0.02) for n in range(30)))
        assert sorted(await asyncio.wait_for(asyncio.gather(*jobs), 30)) == list(range(30))
        watcher.cancel()
    assert most == 3


async def test_a_retry_is_not_attempted_once_the_claim_was_taken(
    schema: str, caplog: pytest.LogCaptureFixture
) -> None:
    attempts: list[float] = []
    failed = asyncio.Event()
    storage = pgtest.storage(schema, lease=0.6)  # heartbeats every 0.2 s
    worker = Jobify(storage=storage, history=False)

    @worker.task(name="flaky", retry=SmartRetry(retries=1, initial_delay=1.5, jitter=False))
    async def flaky() -> None:
        attempts.append(time.monotonic())
        failed.set()
        raise RuntimeError("the first attempt fails")

    producer = app_on(pgtest.storage(schema), [], worker=False)

    @producer.task(name="flaky")
    async def flaky_remote() -> None: ...

    async with producer, worker:
        job = await producer.tasks["flaky"].push()
        await asyncio.wait_for(failed.wait(), 10)
        # While the attempt waits to be retried, another worker takes the job (its lease
        # had run out, say): the next heartbeat tells this worker so.
        conn = await pgtest.admin()
        try:
            await conn.execute(
                f'UPDATE "{schema}".jobs SET locked_by = $2, locked_until = $3 WHERE job_id = $1',
                job.id,
                "another-worker",
                time.time() + 60,
            )
        finally:
            await conn.close()
        deadline = time.monotonic() + 20
        while "not retried here" not in caplog.text:  # the retry's turn came, and passed
            assert len(attempts) == 1, "retried although the claim was taken"
            assert time.monotonic() < deadline
            await asyncio.sleep(0.01)
    assert len(attempts) == 1  # the retry was left to the worker that holds the job
