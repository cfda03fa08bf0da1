"""Retries (int and SmartRetry), timeouts and task-level exception handlers."""

from __future__ import annotations

import asyncio
import time
from typing import Any

import pytest

from jobhandles import outcome
from jobify import Jobify, JobStatus, SmartRetry
from jobify.exceptions import JobFailedError, JobTimeoutError, NoResultError


class Flaky(Exception):
    pass


class Fatal(Exception):
    pass


async def test_int_retry_runs_extra_attempts_then_fails(app: Jobify) -> None:
    attempts: list[int] = []

    @app.task(retry=2)
    async def always() -> None:
        attempts.append(1)
        raise Flaky(f"attempt {len(attempts)}")

    async with app:
        job = await always.push()
        await job.wait()
        assert len(attempts) == 3
        assert job.status is JobStatus.FAILED
        assert str(job.exception) == "attempt 3"  # the last attempt's error is kept


async def test_retry_succeeds_in_place_with_the_same_job(app: Jobify) -> None:
    attempts: list[int] = []

    @app.task(retry=5)
    async def flaky() -> int:
        attempts.append(1)
        if len(attempts) < 3:
            raise Flaky
        return len(attempts)

    async with app:
        job = await flaky.push()
        assert await job == 3
        assert job.status is JobStatus.SUCCESS
        assert len(attempts) == 3


async def test_smart_retry_backs_off_and_status_stays_running(app: Jobify) -> None:
    stamps: list[float] = []
    first_failed = asyncio.Event()
    policy = SmartRetry(2, initial_delay=0.03, backoff_factor=2, jitter=False)

    @app.task(retry=policy)
    async def flaky() -> str:
        stamps.append(time.monotonic())
        first_failed.set()
        if len(stamps) < 3:
            raise Flaky
        return "ok"

    async with app:
        job = await flaky.push()
        await first_failed.wait()
        await asyncio.sleep(0.01)  # inside the first back-off wait
        assert job.status is JobStatus.RUNNING
        assert await job == "ok"
    first, second = stamps[1] - stamps[0], stamps[2] - stamps[1]
    assert first >= 0.03 - 0.002
    assert second >= 0.06 - 0.002
    assert second < 1


async def test_smart_retry_respects_include_and_exclude(app: Jobify) -> None:
    calls: dict[str, int] = {"excluded": 0, "not_included": 0}

    @app.task(retry=SmartRetry(3, initial_delay=0, exclude_exceptions=(Fatal,)))
    async def excluded() -> None:
        calls["excluded"] += 1
        raise Fatal

    @app.task(retry=SmartRetry(3, initial_delay=0, include_exceptions=(Flaky,)))
    async def not_included() -> None:
        calls["not_included"] += 1
        raise KeyError("no retry for me")

    async with app:
        a = await excluded.push()
        b = await not_included.push()
        await a.wait()
        await b.wait()
    assert calls == {"excluded": 1, "not_included": 1}
    assert a.status is JobStatus.FAILED
    assert b.status is JobStatus.FAILED


def test_smart_retry_delay_math() -> None:
    plain = SmartRetry(5, initial_delay=1, max_delay=5, backoff_factor=3, jitter=False)
    assert [plain.delay(n) for n in (1, 2, 3)] == [1, 3, 5]  # capped at max_delay
    jittered = SmartRetry(5, initial_delay=2, backoff_factor=2, jitter=True)
    samples = [jittered.delay(2) for _ in range(200)]
    assert all(2.0 <= d <= 4.0 for d in samples)  # 4 s scaled into [0.5, 1]
    assert len(set(samples)) > 1
    assert SmartRetry(1, initial_delay=0).delay(3) == 0
    assert SmartRetry(1).should_retry(ValueError())
    assert not SmartRetry(1, exclude_exceptions=(ValueError,)).should_retry(ValueError())


async def test_main_timeout_cancels_the_coroutine(app: Jobify) -> None:
    cancelled = asyncio.Event()

    @app.task(timeout=0.03)
    async def slow() -> None:
        try:
            await asyncio.sleep(5)
        except asyncio.CancelledError:
            cancelled.set()
            raise

    async with app:
        t0 = time.monotonic()
        job = await slow.push()
        await job.wait()
        assert time.monotonic() - t0 < 1
        assert job.status is JobStatus.TIMEOUT
        assert cancelled.is_set()
        with pytest.raises(JobTimeoutError) as info:
            job.result()
        assert info.value.timeout == 0.03


async def test_a_timeout_is_retried(app: Jobify) -> None:
    attempts: list[int] = []

    @app.task(timeout=0.03, retry=1)
    async def slow_then_fast() -> int:
        attempts.append(1)
        if len(attempts) == 1:
            await asyncio.sleep(5)
        return len(attempts)

    async with app:
        assert await (await slow_then_fast.push()) == 2


async def test_a_timeout_inside_the_task_is_not_a_job_timeout(app: Jobify) -> None:
    @app.task(timeout=5)
    async def own_timeout() -> None:
        async with asyncio.timeout(0.001):
            await asyncio.sleep(1)

    async with app:
        job = await own_timeout.push()
        await job.wait()
        assert job.status is JobStatus.FAILED  # the task's own TimeoutError, not the job's
        assert not isinstance(job.exception, JobTimeoutError)
        assert isinstance(job.exception, TimeoutError)


async def test_handler_that_returns_makes_success_without_retry(app: Jobify) -> None:
    attempts: list[int] = []
    seen: list[Any] = []

    def handle(exc: BaseException, context: Any) -> str:
        seen.append((type(exc), context.job.id))
        return "recovered"

    @app.task(retry=3, exception_handlers={LookupError: handle})  # found via the MRO
    async def fails() -> None:
        attempts.append(1)
        raise KeyError("k")

    async with app:
        job = await fails.push()
        assert await outcome(job) == "recovered"
        assert job.status is JobStatus.SUCCESS
    assert attempts == [1]
    assert seen == [(KeyError, job.id)]


async def test_async_handler_that_raises_is_the_failure_and_retried(app: Jobify) -> None:
    attempts: list[int] = []

    async def handle(exc: BaseException, context: Any) -> None:
        raise Fatal(f"handled {exc}") from exc

    @app.task(retry=1, exception_handlers={Flaky: handle})
    async def fails() -> None:
        attempts.append(1)
        raise Flaky("x")

    async with app:
        job = await fails.push()
        await job.wait()
        assert job.status is JobStatus.FAILED
        assert isinstance(job.exception, Fatal)
        with pytest.raises(JobFailedError, match="handled x"):
            job.result()
    assert len(attempts) == 2


async def test_no_result_error_fails_at_once_without_retry(app: Jobify) -> None:
    attempts: list[int] = []

    def handle(exc: BaseException, context: Any) -> None:
        raise NoResultError

    @app.task(retry=3, exception_handlers={Flaky: handle})
    async def fails() -> None:
        attempts.append(1)
        raise Flaky("original")

    async with app:
        job = await fails.push()
        await job.wait()
        assert job.status is JobStatus.FAILED
    assert attempts == [1]
    assert isinstance(job.exception, NoResultError)  # the handler's verdict is the failure
    assert isinstance(job.exception.__cause__, Flaky)  # chained to the task's own error


async def test_timeout_error_handler_catches_a_job_timeout(app: Jobify) -> None:
    def on_timeout(exc: BaseException, context: Any) -> str:
        assert isinstance(exc, JobTimeoutError)
        return "gave up politely"

    @app.task(timeout=0.02, exception_handlers={TimeoutError: on_timeout})
    async def slow() -> None:
        await asyncio.sleep(5)

    async with app:
        job = await slow.push()
        assert await outcome(job) == "gave up politely"
        assert job.status is JobStatus.SUCCESS
