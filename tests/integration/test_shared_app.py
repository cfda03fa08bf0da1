"""The same app on a shared PostgreSQL store: jobs written by one app run on any worker, and
their handles follow them (results, cancel, pause, replace), in one process."""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

import pgtest
from jobhandles import status
from jobify import Cron, Jobify, JobStatus
from jobify.exceptions import DuplicateJobError, JobFailedError, SerializationError

pytestmark = pytest.mark.filterwarnings("ignore::ResourceWarning")


@pytest.fixture
async def schema() -> AsyncIterator[str]:
    async with pgtest.fresh_schema() as name:
        yield name


def build(schema: str, log: list[Any], *, worker: bool = True, **options: Any) -> Jobify:
    app = Jobify(storage=pgtest.storage(schema), worker=worker, **options)

    @app.task(name="double")
    async def double(n: int) -> int:
        log.append(("double", n))
        return 2 * n

    @app.task(name="slow")
    async def slow(n: int) -> int:
        await asyncio.sleep(0.2)
        log.append(("slow", n))
        return n

    @app.task(name="opaque")
    async def opaque() -> object:
        return object()  # a value that cannot be sent to a waiter elsewhere

    @app.task(name="tick")
    async def tick(tag: str) -> str:
        log.append(("tick", tag))
        return tag

    return app


async def test_push_runs_on_the_store_and_await_returns_the_value(schema: str) -> None:
    log: list[Any] = []
    async with build(schema, log) as app:
        job = await app.tasks["double"].push(21)
        assert status(job) is JobStatus.SCHEDULED
        assert await asyncio.wait_for(job, 5) == 42
        assert status(job) is JobStatus.SUCCESS
        await app.wait_all(timeout=5)
        assert await app.configs.storage.get(job.id) is None  # type: ignore[union-attr]
    assert log == [("double", 21)]


async def test_a_producer_only_app_hands_jobs_to_a_worker(schema: str) -> None:
    produced: list[Any] = []
    ran: list[Any] = []
    async with build(schema, produced, worker=False) as producer, build(schema, ran) as worker:
        jobs = [await producer.tasks["double"].push(n) for n in range(20)]
        results = await asyncio.wait_for(asyncio.gather(*jobs), 10)
        assert results == [2 * n for n in range(20)]
        await producer.wait_all(timeout=5)
        assert worker.get_active_jobs() == []
    assert produced == []  # the producer ran nothing
    assert sorted(ran) == [("double", n) for n in range(20)]


async def test_a_value_that_cannot_reach_its_waiter_fails_the_job(schema: str) -> None:
    async with build(schema, []) as app:
        job = await app.tasks["opaque"].push()
        await asyncio.wait_for(job.wait(), 5)
        assert job.status is JobStatus.FAILED
        with pytest.raises(JobFailedError, match="cannot be sent to its waiters"):
            job.result()


async def test_cancel_pause_resume_and_replace_through_the_store(schema: str) -> None:
    log: list[Any] = []
    later = datetime.now(UTC) + timedelta(hours=1)
    async with build(schema, log, worker=False) as producer, build(schema, log) as worker:
        storage = producer.configs.storage
        assert storage is not None
        job = await producer.tasks["double"].schedule(1).at(later, job_id="j")
        with pytest.raises(DuplicateJobError):
            await producer.tasks["double"].schedule(2).at(later, job_id="j")
        same = await producer.tasks["double"].schedule(1).at(later, job_id="j")
        assert same is job  # identical: a no-op
        await job.pause()
        assert job.status is JobStatus.PAUSED
        assert (await storage.get("j")).status == "paused"  # type: ignore[union-attr]
        await job.resume()
        assert (await storage.get("j")).status == "scheduled"  # type: ignore[union-attr]
        moved = await producer.tasks["double"].schedule(3).delay(0, job_id="j", replace=True)
        assert await asyncio.wait_for(moved, 5) == 6  # runs with its new arguments, now
        gone = await producer.tasks["double"].schedule(4).at(later, job_id="k")
        await gone.cancel()
        assert gone.status is JobStatus.CANCELLED
        assert await storage.get("k") is None
        await asyncio.sleep(0.1)
        assert worker.find_job("k") is None
    assert log == [("double", 3)]


async def test_a_cron_runs_once_per_fire_across_two_workers(schema: str) -> None:
    log: list[Any] = []
    async with build(schema, log) as a, build(schema, log) as b:
        job = await a.tasks["tick"].schedule("x").cron("* * * * * * *", job_id="every-second")
        for _ in range(3):
            await asyncio.wait_for(job.wait(), 5)
        assert job.status is JobStatus.SCHEDULED and job.result() == "x"
        await job.cancel()
        assert b.find_job("every-second") is None
    ticks = [entry for entry in log if entry[0] == "tick"]
    assert 3 <= len(ticks) <= 5


async def test_declared_crons_are_declared_once_for_the_cluster(schema: str) -> None:
    log: list[Any] = []

    def with_cron() -> Jobify:
        app = build(schema, log)

        @app.task(name="yearly", cron=Cron("0 0 1 1 *"))
        async def yearly() -> None:
            pass

        return app

    async with with_cron() as a, with_cron() as b:
        storage = a.configs.storage
        assert storage is not None
        record = await storage.get("yearly")
        assert record is not None
        assert json.loads(record.trigger)["declared"] is True
        assert b.configs.storage is not None
    without = build(schema, log)

    @without.task(name="yearly")  # the cron= was removed from the task
    async def yearly_now() -> None:
        pass

    async with without as c:
        assert c.configs.storage is not None
        assert await c.configs.storage.get("yearly") is None


async def test_graceful_stop_lets_a_running_job_finish(schema: str) -> None:
    log: list[Any] = []
    async with build(schema, log, worker=False) as producer:
        worker = build(schema, log)
        await worker.startup()
        job = await producer.tasks["slow"].push(7)
        for _ in range(100):
            if worker.get_active_jobs():
                break
            await asyncio.sleep(0.01)
        await worker.shutdown(grace=5)
        assert await asyncio.wait_for(job, 5) == 7
    assert log == [("slow", 7)]


async def test_a_run_is_recorded_in_the_history(
    schema: str, caplog: pytest.LogCaptureFixture
) -> None:
    from jobify.storage.base import HistoryQuery

    caplog.set_level(logging.ERROR, logger="jobify")
    async with build(schema, []) as app:
        job = await app.tasks["double"].push(5)
        await asyncio.wait_for(job, 5)
        storage = app.configs.storage
        assert storage is not None
        # Runs are gathered for a fraction of a second, then written with a group commit.
        deadline = asyncio.get_running_loop().time() + 3
        while not (runs := await storage.query_history(HistoryQuery(job_id=job.id))):
            assert asyncio.get_running_loop().time() < deadline, "the run was not recorded"
            await asyncio.sleep(0.02)
        assert [r.outcome for r in runs] == ["success"]


def test_serialization_error_is_a_jobify_error() -> None:
    assert issubclass(SerializationError, TypeError)
