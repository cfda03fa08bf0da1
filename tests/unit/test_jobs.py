"""The ``Job`` handle: statuses, waiting, results, cancellation and attributes."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta

import pytest

from jobhandles import status
from jobify import Cron, Jobify, JobStatus
from jobify.exceptions import (
    BaseJobifyError,
    JobCancelledError,
    JobFailedError,
    JobNotCompletedError,
    JobTimeoutError,
)


class Boom(Exception):
    pass


async def test_scheduled_running_success(app: Jobify) -> None:
    started = asyncio.Event()
    release = asyncio.Event()

    @app.task
    async def gated(x: int) -> int:
        started.set()
        await release.wait()
        return x * 2

    async with app:
        job = await gated.schedule(21).delay(0.02)
        assert status(job) is JobStatus.SCHEDULED
        assert not job.is_done()
        with pytest.raises(JobNotCompletedError) as info:
            job.result()
        assert info.value.job_id == job.id
        await started.wait()
        assert status(job) is JobStatus.RUNNING
        assert not job.is_done()
        with pytest.raises(JobNotCompletedError):
            job.result()
        release.set()
        await job.wait()
        assert status(job) is JobStatus.SUCCESS
        assert job.is_done()
        assert job.result() == 42
        assert job.exception is None
        assert await job == 42  # awaiting a finished job returns at once


async def test_failed_job(app: Jobify) -> None:
    @app.task
    async def fails() -> None:
        raise Boom("it broke")

    async with app:
        job = await fails.push()
        await job.wait()  # never raises for a failed job
        assert job.status is JobStatus.FAILED
        assert job.is_done()
        assert isinstance(job.exception, Boom)
        with pytest.raises(JobFailedError) as info:
            job.result()
        err = info.value
        assert isinstance(err, BaseJobifyError)
        assert err.job_id == job.id
        assert "Boom" in err.reason and "it broke" in err.reason
        assert err.__cause__ is job.exception
        with pytest.raises(Boom, match="it broke"):
            await job  # the task's own exception


async def test_sync_failed_job_reraises_own_exception(app: Jobify) -> None:
    @app.task
    def fails_in_thread() -> None:
        raise KeyError("k")

    async with app:
        job = await fails_in_thread.push()
        with pytest.raises(KeyError):
            await job
        assert job.status is JobStatus.FAILED


async def test_timeout_job(app: Jobify) -> None:
    @app.task(timeout=0.02)
    async def slow() -> None:
        await asyncio.sleep(5)

    async with app:
        job = await slow.push()
        await job.wait()
        assert job.status is JobStatus.TIMEOUT
        assert job.is_done()
        assert isinstance(job.exception, JobTimeoutError)
        with pytest.raises(JobTimeoutError) as info:
            job.result()
        assert info.value.job_id == job.id
        assert info.value.timeout == 0.02
        with pytest.raises(TimeoutError):  # also a plain TimeoutError
            job.result()
        with pytest.raises(TimeoutError):
            await job


async def test_cancel_before_run(app: Jobify) -> None:
    ran: list[int] = []

    @app.task
    async def record() -> None:
        ran.append(1)

    async with app:
        job = await record.schedule().delay(0.03)
        other = await record.schedule().delay(0.03)
        await job.cancel()
        assert job.status is JobStatus.CANCELLED
        assert job.is_done()
        assert app.find_job(job.id) is None
        await job.wait()  # resolves at once
        with pytest.raises(JobCancelledError, match="cancelled"):
            job.result()
        with pytest.raises(JobCancelledError):
            await job
        await other.wait()
        await asyncio.sleep(0.03)  # past the cancelled job's time: it must not have run
        assert ran == [1]
        assert job.status is JobStatus.CANCELLED


async def test_cancel_when_done_has_no_effect(app: Jobify) -> None:
    # (Cancelling a running job stops it: see test_cancel_running.py.)
    @app.task
    async def quick() -> str:
        return "finished"

    async with app:
        job = await quick.push()
        assert await job == "finished"
        await job.cancel()
        assert status(job) is JobStatus.SUCCESS
        assert job.result() == "finished"


async def test_wait_has_many_independent_waiters(app: Jobify) -> None:
    release = asyncio.Event()

    @app.task
    async def gated() -> int:
        await release.wait()
        return 7

    async with app:
        job = await gated.push()
        waiters = [asyncio.create_task(job.wait()) for _ in range(3)]
        await asyncio.sleep(0)
        waiters[0].cancel()  # one impatient waiter must not disturb the others
        release.set()
        await asyncio.gather(*waiters[1:])
        assert waiters[0].cancelled()
        assert job.result() == 7


async def test_exec_at_is_aware_and_matches_the_request(app: Jobify) -> None:
    @app.task
    async def noop() -> None:
        pass

    async with app:
        when = datetime.now(UTC) + timedelta(hours=1)
        job = await noop.schedule().at(when)
        assert job.exec_at.tzinfo is not None
        assert job.exec_at == when
        pushed = await noop.push()
        assert pushed.exec_at.tzinfo is not None
        assert abs(pushed.exec_at - datetime.now(UTC)) < timedelta(seconds=1)
        assert job.cron_expression is None
        assert pushed.cron_expression is None
        assert job.id in repr(job)


async def test_cron_expression_and_permanently_failed(app: Jobify) -> None:
    @app.task
    async def always_fails() -> None:
        raise Boom("again")

    async with app:
        job = await always_fails.schedule().cron(Cron("* * * * * * *", max_failures=1), job_id="cj")
        assert job.cron_expression == "* * * * * * *"
        assert status(job) is JobStatus.SCHEDULED
        await job.wait()
        assert status(job) is JobStatus.PERMANENTLY_FAILED
        assert job.is_done()
        assert isinstance(job.exception, Boom)
        with pytest.raises(JobFailedError) as info:
            job.result()
        assert info.value.__cause__ is job.exception
        assert app.find_job("cj") is None
        await job.wait()  # a job ended for good resolves waits at once


async def test_cancel_right_after_push_before_it_starts(app: Jobify) -> None:
    ran: list[int] = []

    @app.task
    async def record() -> None:
        ran.append(1)

    async with app:
        job = await record.push()
        assert status(job) is JobStatus.SCHEDULED  # due, but has not started yet
        await job.cancel()
        assert status(job) is JobStatus.CANCELLED
        await job.wait()
        await app.wait_all(timeout=1)
        await asyncio.sleep(0.01)
        assert status(job) is JobStatus.CANCELLED
        assert app.find_job(job.id) is None
    assert ran == []
