"""Exception handlers: lookup level by level and by MRO, recovery values, retries, NoResultError."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from jobhandles import outcome, result_of
from jobify import JobContext, Jobify, JobRouter, JobStatus, RunMode, SmartRetry
from jobify.exceptions import JobFailedError, JobTimeoutError, NoResultError


class SubValueError(ValueError):
    pass


def tag(name: str) -> Any:
    """A sync handler that returns ``name``."""

    def handler(exc: BaseException, context: JobContext) -> str:
        return name

    return handler


def build(
    *,
    app_h: dict[type[BaseException], Any] | None = None,
    outer_h: dict[type[BaseException], Any] | None = None,
    inner_h: dict[type[BaseException], Any] | None = None,
    task_h: dict[type[BaseException], Any] | None = None,
    exc: BaseException,
) -> tuple[Jobify, Any]:
    app = Jobify(storage=False, exception_handlers=app_h)
    outer = JobRouter(prefix="outer", exception_handlers=outer_h)
    inner = JobRouter(prefix="inner", exception_handlers=inner_h)

    @inner.task(exception_handlers=task_h)
    async def work() -> None:
        raise exc

    outer.include_router(inner)
    app.include_router(outer)
    return app, work


@pytest.mark.parametrize(
    ("levels", "expected"),
    [
        (("app", "outer", "inner", "task"), "task"),
        (("app", "outer", "inner"), "inner"),
        (("app", "outer"), "outer"),
        (("app",), "app"),
    ],
)
async def test_precedence_task_then_innermost_router_then_app(
    levels: tuple[str, ...], expected: str
) -> None:
    handlers: dict[str, dict[type[BaseException], Any]] = {
        f"{level}_h": {ValueError: tag(level)} for level in levels
    }
    app, work = build(exc=ValueError("boom"), **handlers)
    async with app:
        job = await work.push()
        await job.wait()
    assert (job.status, job.result()) == (JobStatus.SUCCESS, expected)


async def test_a_broad_handler_at_an_inner_level_beats_an_exact_one_further_out() -> None:
    app, work = build(
        exc=SubValueError("x"),
        task_h={Exception: tag("task-broad")},
        inner_h={SubValueError: tag("inner-exact")},
    )
    async with app:
        assert await (await work.push()) == "task-broad"


async def test_within_a_level_the_most_specific_class_in_the_mro_wins() -> None:
    app, work = build(
        exc=SubValueError("x"),
        inner_h={Exception: tag("exception"), ValueError: tag("value"), KeyError: tag("key")},
    )
    async with app:
        assert await (await work.push()) == "value"


async def test_no_matching_handler_fails_the_job() -> None:
    app, work = build(
        exc=ValueError("unhandled"),
        task_h={KeyError: tag("task")},
        outer_h={TypeError: tag("outer")},
        app_h={LookupError: tag("app")},
    )
    async with app:
        job = await work.push()
        await job.wait()
    assert job.status is JobStatus.FAILED
    assert isinstance(job.exception, ValueError)
    with pytest.raises(JobFailedError):
        job.result()


async def test_sync_and_async_handlers_receive_exc_and_context() -> None:
    received: list[tuple[str, BaseException, JobContext]] = []

    def sync_handler(exc: BaseException, context: JobContext) -> str:
        received.append(("sync", exc, context))
        return "from sync"

    async def async_handler(exc: BaseException, context: JobContext) -> str:
        await asyncio.sleep(0)
        received.append(("async", exc, context))
        return "from async"

    app = Jobify(storage=False, exception_handlers={KeyError: async_handler})
    error = ValueError("v")

    @app.task(exception_handlers={ValueError: sync_handler})
    async def a() -> None:
        raise error

    @app.task
    def b() -> None:  # a THREAD task: its error crosses back to the loop's handler
        raise KeyError("k")

    async with app:
        job_a = await a.push()
        job_b = await b.push()
        assert await outcome(job_a) == "from sync"
        assert await outcome(job_b) == "from async"
    by_kind = {kind: (exc, ctx) for kind, exc, ctx in received}
    assert len(received) == 2
    sync_exc, sync_ctx = by_kind["sync"]
    assert sync_exc is error and sync_ctx.job is job_a and sync_ctx.runnable.name == a.name
    async_exc, async_ctx = by_kind["async"]
    assert isinstance(async_exc, KeyError) and async_ctx.job is job_b
    assert async_ctx.route_options["run_mode"] is RunMode.THREAD


async def test_a_returning_handler_means_success_without_retry() -> None:
    attempts = 0
    app = Jobify(storage=False, exception_handlers={ValueError: lambda e, c: "recovered"})

    @app.task(retry=3)
    async def work() -> None:
        nonlocal attempts
        attempts += 1
        raise ValueError

    async with app:
        job = await work.push()
        await job.wait()
    assert (job.status, result_of(job), job.exception, attempts) == (
        JobStatus.SUCCESS,
        "recovered",
        None,
        1,
    )


async def test_a_handler_that_returns_none_is_success_with_none() -> None:
    app = Jobify(storage=False, exception_handlers={ValueError: lambda e, c: None})

    @app.task
    async def work() -> int:
        raise ValueError

    async with app:
        job = await work.push()
        await job.wait()
    assert (job.status, result_of(job)) == (JobStatus.SUCCESS, None)


async def test_a_raising_handler_is_the_failure_and_retry_applies() -> None:
    attempts = 0
    handled = 0

    def reraise(exc: BaseException, context: JobContext) -> None:
        nonlocal handled
        handled += 1
        raise RuntimeError(f"handler saw {exc}") from exc

    app = Jobify(storage=False)
    router = JobRouter(exception_handlers={ValueError: reraise})

    @router.task(retry=2)
    async def work() -> None:
        nonlocal attempts
        attempts += 1
        raise ValueError(attempts)

    app.include_router(router)
    async with app:
        job = await work.push()
        await job.wait()
    assert (job.status, attempts, handled) == (JobStatus.FAILED, 3, 3)
    assert isinstance(job.exception, RuntimeError)
    assert str(job.exception) == "handler saw 3"
    with pytest.raises(JobFailedError) as info:
        job.result()
    assert info.value.__cause__ is job.exception
    with pytest.raises(RuntimeError, match="handler saw 3"):
        await job


async def test_retry_stops_once_a_later_attempt_is_recovered() -> None:
    attempts = 0

    def recover_second(exc: BaseException, context: JobContext) -> str:
        if attempts < 2:
            raise exc
        return f"recovered after {attempts}"

    app = Jobify(storage=False, exception_handlers={ValueError: recover_second})

    @app.task(retry=SmartRetry(5, initial_delay=0, jitter=False))
    async def work() -> None:
        nonlocal attempts
        attempts += 1
        raise ValueError

    async with app:
        assert await outcome(await work.push()) == "recovered after 2"
    assert attempts == 2


async def test_no_result_error_fails_at_once_without_retry() -> None:
    attempts = 0

    async def give_up(exc: BaseException, context: JobContext) -> None:
        raise NoResultError("give up")

    app = Jobify(storage=False)

    @app.task(retry=3, exception_handlers={ValueError: give_up})
    async def work() -> None:
        nonlocal attempts
        attempts += 1
        raise ValueError("original")

    async with app:
        job = await work.push()
        await job.wait()
    assert (job.status, attempts) == (JobStatus.FAILED, 1)
    # The job's failure is the handler's NoResultError, chained to the task's own error.
    assert isinstance(job.exception, NoResultError) and str(job.exception) == "give up"
    original = job.exception.__cause__
    assert isinstance(original, ValueError) and str(original) == "original"
    with pytest.raises(JobFailedError, match="give up"):
        job.result()


async def test_a_timeout_handler_catches_a_job_timeout() -> None:
    received: list[BaseException] = []

    def on_timeout(exc: BaseException, context: JobContext) -> str:
        received.append(exc)
        return "late but fine"

    app = Jobify(storage=False, exception_handlers={TimeoutError: on_timeout})

    @app.task(timeout=0.02)
    async def slow() -> None:
        await asyncio.Event().wait()

    async with app:
        job = await slow.push()
        assert await outcome(job) == "late but fine"
    [exc] = received
    assert isinstance(exc, JobTimeoutError) and exc.job_id == job.id and exc.timeout == 0.02


async def test_a_timeout_without_handler_is_timeout_status() -> None:
    app = Jobify(storage=False, exception_handlers={KeyError: lambda e, c: "no"})

    @app.task(timeout=0.02)
    async def slow() -> None:
        await asyncio.Event().wait()

    async with app:
        job = await slow.push()
        await job.wait()
    assert job.status is JobStatus.TIMEOUT
    with pytest.raises(JobTimeoutError):
        job.result()


@pytest.mark.parametrize(
    ("handlers", "message"),
    [({"ValueError": tag("x")}, "exception types"), ({ValueError: "nope"}, "not callable")],
)
def test_bad_handler_mappings_are_rejected_at_decoration(
    handlers: dict[Any, Any], message: str
) -> None:
    with pytest.raises(TypeError, match=message):
        Jobify(storage=False, exception_handlers=handlers)
    with pytest.raises(TypeError, match=message):
        JobRouter(exception_handlers=handlers)
    app = Jobify(storage=False)
    with pytest.raises(TypeError, match=message):
        app.task(exception_handlers=handlers)(tag("f"))
