"""Bad input: each mistake is a clear exception naming the problem, and disturbs nothing else."""

from __future__ import annotations

import asyncio
import threading
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from jobify import Cron, Jobify, JobRouter, JobStatus, RunMode, SmartRetry
from jobify.exceptions import ApplicationStateError, CronParseError, SerializationError


async def test_a_task_of_a_router_not_included_is_a_runtime_error() -> None:
    router = JobRouter(prefix="reports")

    @router.task(name="weekly")
    async def weekly() -> None:
        pass

    assert weekly.name == "reports:weekly"
    with pytest.raises(RuntimeError, match=r"include_router"):
        await weekly.push()
    with pytest.raises(RuntimeError, match=r"'reports:weekly'.*not included"):
        weekly.schedule()
    assert await weekly() is None  # still callable directly


async def test_scheduling_errors_leave_other_jobs_alone(app: Jobify) -> None:
    ran: list[str] = []

    @app.task
    async def good(x: int) -> None:
        ran.append(f"good{x}")

    @app.task(run_mode=RunMode.PROCESS)
    def in_process(value: Any) -> None:  # nested: cannot be sent to another process
        ran.append("never")

    async with app:
        survivor = await good.schedule(1).delay(0.05, job_id="survivor")
        with pytest.raises(TypeError, match="good"):
            await good.push("too", "many")  # type: ignore[call-arg, arg-type]
        with pytest.raises(ValueError, match="job_id"):
            await good.schedule(1).delay(1, job_id="")
        with pytest.raises(TypeError, match="job_id must be a str"):
            await good.schedule(1).delay(1, job_id=5)  # type: ignore[arg-type]
        with pytest.raises(TypeError, match="module level"):
            await in_process.push(1)
        with pytest.raises(CronParseError):
            await good.schedule(1).cron("not a cron", job_id="c")
        with pytest.raises(ValueError, match="finite"):
            await good.schedule(1).delay(float("nan"))
        assert app.get_active_jobs() == [survivor]
        await survivor.wait()
        assert survivor.status is JobStatus.SUCCESS
        second = await good.push(2)
        await second
        assert second.result() is None
    assert ran == ["good1", "good2"]


async def test_process_mode_rejects_lambdas_and_nested_functions(app: Jobify) -> None:
    lam = app.task(name="lam", run_mode=RunMode.PROCESS)(lambda: 1)

    def nested() -> int:
        return 2

    nest = app.task(run_mode=RunMode.PROCESS)(nested)
    async with app:
        with pytest.raises(TypeError, match=r"'lam'.*<lambda>.*module level"):
            await lam.push()
        with pytest.raises(TypeError, match=r"<locals>\.nested'.*RunMode.THREAD"):
            await nest.schedule().delay(1)
        with pytest.raises(TypeError, match="module level"):
            await nest.schedule().at(datetime.now(UTC))
        assert app.get_active_jobs() == []


async def test_unpicklable_argument_with_process_mode(app: Jobify) -> None:
    import process_tasks

    echo = app.task(run_mode=RunMode.PROCESS)(process_tasks.echo)
    async with app:
        with pytest.raises(SerializationError, match=r"argument 'value' \(lock\).*pickled"):
            await echo.push(threading.Lock())
        with pytest.raises(TypeError):  # a SerializationError is also a TypeError
            await echo.schedule(lambda: 1).delay(1)
        assert app.get_active_jobs() == []
        assert await (await echo.push([1, 2])) == "[1, 2]"


@pytest.mark.parametrize(
    ("timeout", "error"),
    [(0, ValueError), (-1, ValueError), (float("nan"), ValueError), (float("inf"), ValueError)],
)
def test_bad_timeout(app: Jobify, timeout: float, error: type[Exception]) -> None:
    with pytest.raises(error, match="timeout"):
        app.task(timeout=timeout)(lambda: None)


def test_bad_timeout_type(app: Jobify) -> None:
    with pytest.raises(TypeError, match="timeout"):
        app.task(timeout="5")(lambda: None)  # type: ignore[call-overload]


def test_bad_retry(app: Jobify) -> None:
    with pytest.raises(ValueError, match="retry must be >= 0"):
        app.task(retry=-1)(lambda: None)
    with pytest.raises(TypeError, match="retry"):
        app.task(retry="3")(lambda: None)  # type: ignore[call-overload]
    with pytest.raises(ValueError, match="retries"):
        SmartRetry(-1)
    with pytest.raises(ValueError, match="initial_delay"):
        SmartRetry(1, initial_delay=-0.5)


def test_bad_cron_limits() -> None:
    with pytest.raises(ValueError, match="max_failures must be >= 1"):
        Cron("* * * * *", max_failures=0)
    with pytest.raises(ValueError, match="max_runs"):
        Cron("* * * * *", max_runs=0)
    with pytest.raises(TypeError, match="max_runs"):
        Cron("* * * * *", max_runs=1.5)  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="start_date"):
        Cron("* * * * *", start_date="2030-01-01")  # type: ignore[arg-type]


def test_invalid_static_cron_fails_at_decoration(app: Jobify) -> None:
    with pytest.raises(CronParseError, match="61") as info:

        @app.task(cron="61 * * * *")
        async def bad() -> None:
            pass

    assert isinstance(info.value, ValueError)
    assert "bad" not in app.tasks  # nothing half-registered
    with pytest.raises(CronParseError):
        app.task(cron=Cron("* * * *"))(lambda: None)


async def test_invalid_dynamic_cron_fails_at_scheduling(app: Jobify) -> None:
    @app.task
    async def noop() -> None:
        pass

    async with app:
        with pytest.raises(CronParseError, match="MOONDAY"):
            await noop.schedule().cron("0 0 * * MOONDAY", job_id="x")
        with pytest.raises(TypeError, match="str or a Cron"):
            await noop.schedule().cron(5, job_id="x")  # type: ignore[arg-type]
        with pytest.raises(TypeError, match="job_id"):
            await noop.schedule().cron("* * * * *", job_id=None)  # type: ignore[arg-type]
        assert app.find_job("x") is None


async def test_bad_at_and_delay_values(app: Jobify) -> None:
    @app.task
    async def noop() -> None:
        pass

    async with app:
        with pytest.raises(TypeError, match="at\\(\\) takes a datetime"):
            await noop.schedule().at("2030-01-01T00:00")  # type: ignore[arg-type]
        with pytest.raises(TypeError, match="delay\\(\\)"):
            await noop.schedule().at(5.0)  # type: ignore[arg-type]
        with pytest.raises(TypeError, match="datetime"):
            await noop.schedule().at(datetime.now(UTC).date())  # type: ignore[arg-type]
        for bad in (float("nan"), float("inf"), float("-inf")):
            with pytest.raises(ValueError, match="finite"):
                await noop.schedule().delay(bad)
        with pytest.raises(TypeError, match="number of seconds"):
            await noop.schedule().delay("5")  # type: ignore[arg-type]
        with pytest.raises(TypeError, match="number of seconds"):
            await noop.schedule().delay(timedelta(seconds=5))  # type: ignore[arg-type]
        with pytest.raises(TypeError, match="now must be a datetime"):
            await noop.schedule().delay(1, now=0)  # type: ignore[arg-type]
        # An int too large for a float is a ValueError saying so, not a bare OverflowError.
        for huge in (10**400, 10**5000):
            with pytest.raises(ValueError, match="delay is too large"):
                await noop.schedule().delay(huge)
        assert app.get_active_jobs() == []
        now = await noop.schedule().delay(-(10**400))  # negative, however large: now
        await now


async def test_bad_wait_all_timeout(app: Jobify) -> None:
    @app.task
    async def noop() -> None:
        pass

    async with app:
        job = await noop.schedule().delay(0.02)
        with pytest.raises(ValueError, match=">= 0"):
            await app.wait_all(timeout=-1)
        with pytest.raises(ValueError, match=">= 0"):
            await app.wait_all(timeout=float("nan"))
        with pytest.raises(TypeError, match="number"):
            await app.wait_all(timeout="1")  # type: ignore[arg-type]
        await asyncio.wait_for(app.wait_all(), 1)
        assert job.status is JobStatus.SUCCESS


async def test_scheduling_after_shutdown(app: Jobify) -> None:
    @app.task
    async def noop() -> None:
        pass

    async with app:
        pending = await noop.schedule().delay(60)
    with pytest.raises(ApplicationStateError, match="shut down"):
        await noop.push()
    with pytest.raises(ApplicationStateError, match="shut down"):
        await noop.schedule().cron("* * * * *", job_id="late")
    assert pending.status is JobStatus.CANCELLED  # in memory only: it cannot survive


def test_bad_task_options(app: Jobify) -> None:
    with pytest.raises(TypeError, match="run_mode"):
        app.task(run_mode="thread")(lambda: None)  # type: ignore[call-overload]
    with pytest.raises(TypeError, match="metadata"):
        app.task(metadata=[1])(lambda: None)  # type: ignore[call-overload]
    with pytest.raises(TypeError, match="cron"):
        app.task(cron=5)(lambda: None)  # type: ignore[call-overload]
    with pytest.raises(ValueError, match="task name"):
        app.task(name="")(lambda: None)
    with pytest.raises(ValueError, match="lone surrogate"):
        app.task(name="bad\ud800name")(lambda: None)
    with pytest.raises(TypeError, match="task name must be a str"):
        app.task(name=b"bytes")(lambda: None)  # type: ignore[call-overload]
    with pytest.raises(TypeError, match="exception types"):
        app.task(exception_handlers={"KeyError": print})(lambda: None)  # type: ignore[dict-item]
    assert dict(app.tasks) == {}
