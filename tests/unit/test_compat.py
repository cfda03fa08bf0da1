"""Behaviour existing Jobify code relies on (names, state, handles, refusals, registration)."""

from __future__ import annotations

import asyncio
import logging
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest

from jobhandles import outcome, status
from jobify import (
    INJECT,
    Cron,
    JobContext,
    Jobify,
    JobRouter,
    JobStatus,
    SmartRetry,
    State,
)
from jobify._retry import as_retry
from jobify.exceptions import ApplicationStateError, JobFailedError
from jobify.middleware import BaseMiddleware, BaseOuterMiddleware, CallNext, CallNextOuter
from jobify.storage import SQLiteStorage


async def test_task_names_may_contain_colons_and_dots_through_a_restart(tmp_path: Path) -> None:
    db = tmp_path / "jobs.db"
    seen: list[tuple[str, int]] = []
    when = datetime.now(UTC) + timedelta(hours=1)

    def build() -> Jobify:
        app = Jobify(storage=SQLiteStorage(db))

        @app.task(name="billing:charge_card")
        async def charge(n: int) -> int:
            seen.append(("charge", n))
            return n

        @app.task(name="orders.shipping:ship", cron=Cron("0 0 1 1 * 2099"))
        async def ship() -> None:
            pass

        return app

    async with build() as app:
        assert sorted(app.tasks) == ["billing:charge_card", "orders.shipping:ship"]
        charge = app.tasks["billing:charge_card"]
        assert await (await charge.push(1)) == 1
        await charge.schedule(2).at(when, job_id="later:1")
        await charge.schedule(3).cron("0 0 1 1 *", job_id="yearly.charge")
        assert app.find_job("orders.shipping:ship") is not None  # the declared cron
    async with build() as app2:
        later = app2.find_job("later:1")
        assert later is not None and later.exec_at == when
        yearly = app2.find_job("yearly.charge")
        assert yearly is not None and yearly.cron_expression == "0 0 1 1 *"
        ship = app2.find_job("orders.shipping:ship")
        assert ship is not None and ship.status is JobStatus.SCHEDULED
    assert seen == [("charge", 1)]


async def test_router_state_reaches_router_tasks_before_the_app_state() -> None:
    seen: dict[str, Any] = {}

    @asynccontextmanager
    async def router_life(router: JobRouter) -> AsyncIterator[dict[str, str]]:
        router.state.pool = f"pool of {router.prefix}"
        yield {"from_lifespan": "yes"}

    app = Jobify(storage=False, state={"db": "app db", "shared": "app"})
    outer = JobRouter(prefix="outer", state={"shared": "outer", "color": "blue"})
    inner = JobRouter(prefix="inner", state={"shared": "inner"}, lifespan=router_life)

    @inner.task
    async def deep(state: State = INJECT, context: JobContext = INJECT) -> None:
        seen["deep"] = (
            state.shared,  # its own router first
            state.color,  # then the parent router
            state.db,  # then the app
            state.pool,  # what its router's lifespan put there
            state["from_lifespan"],  # and what that lifespan yielded
            context.state is state,
        )

    @outer.task
    async def mid(state: State = INJECT) -> None:
        seen["mid"] = (state.shared, state.color, state.db, "pool" in state)
        state.written = 1  # writes go to the task's own router

    @app.task
    async def top(state: State = INJECT) -> None:
        seen["top"] = (state.shared, "color" in state)

    outer.include_router(inner)
    app.include_router(outer)
    async with app:
        for task in (deep, mid, top):
            await (await task.push()).wait()
    assert seen["deep"] == ("inner", "blue", "app db", "pool of inner", "yes", True)
    assert seen["mid"] == ("outer", "blue", "app db", False)
    assert seen["top"] == ("app", False)
    assert outer.state.written == 1 and "written" not in app.state


async def test_initial_state_and_uuid_generator() -> None:
    made: list[uuid.UUID] = []

    def ids() -> uuid.UUID:
        made.append(uuid.uuid5(uuid.NAMESPACE_DNS, f"job-{len(made)}"))
        return made[-1]

    app = Jobify(storage=False, state={"answer": 42}, uuid_generator=ids)
    assert app.state.answer == 42

    @app.task
    async def noop() -> None:
        pass

    async with app:
        job = await noop.push()
        later = await noop.schedule().delay(60)
    assert job.id == made[0].hex and later.id == made[1].hex


async def test_default_ids_are_uuid4_hex() -> None:
    app = Jobify(storage=False)

    @app.task
    async def noop() -> None:
        pass

    async with app:
        ids = [(await noop.push()).id for _ in range(50)]
    for job_id in ids:
        value = uuid.UUID(hex=job_id)
        assert value.version == 4 and value.hex == job_id
    assert len(set(ids)) == 50


def test_bad_uuid_generator_is_a_clear_error() -> None:
    with pytest.raises(TypeError, match="uuid_generator"):
        Jobify(storage=False, uuid_generator="uuid4")  # type: ignore[arg-type]


async def test_uuid_generator_returning_garbage_fails_the_call() -> None:
    app = Jobify(storage=False, uuid_generator=lambda: 5)  # type: ignore[arg-type,return-value]

    @app.task
    async def noop() -> None:
        pass

    async with app:
        with pytest.raises(TypeError, match=r"uuid_generator must return a uuid\.UUID"):
            await noop.push()


def test_cron_accepts_a_zone_name() -> None:
    cron = Cron("0 9 * * *", tz="America/New_York")
    assert cron.tz == ZoneInfo("America/New_York")
    with pytest.raises(ValueError, match="unknown time zone 'Mars/Olympus'"):
        Cron("0 9 * * *", tz="Mars/Olympus")
    with pytest.raises(TypeError, match="IANA zone name"):
        Cron("0 9 * * *", tz=5)  # type: ignore[arg-type]


async def test_a_cron_in_a_named_zone_fires_in_that_zone() -> None:
    app = Jobify(storage=False)

    @app.task
    async def morning() -> None:
        pass

    async with app:
        job = await morning.schedule().cron(Cron("0 9 * * *", tz="America/New_York"), job_id="m")
        assert job.exec_at.tzinfo == ZoneInfo("America/New_York")
        assert (job.exec_at.hour, job.exec_at.minute) == (9, 0)


async def test_a_recurring_job_reads_running_then_scheduled_with_its_next_fire() -> None:
    app = Jobify(storage=False)
    running = asyncio.Event()
    release = asyncio.Event()

    @app.task
    async def beat() -> int:
        running.set()
        await release.wait()
        return 1

    async with app:
        job = await beat.schedule().cron("* * * * * * *", job_id="b")
        assert status(job) is JobStatus.SCHEDULED
        first = job.exec_at
        await running.wait()
        assert status(job) is JobStatus.RUNNING
        release.set()
        await job.wait()
        assert status(job) is JobStatus.SCHEDULED
        assert job.exec_at == first + timedelta(seconds=1)
        assert job.result() == 1 and not job.is_done()
        await job.cancel()
        assert status(job) is JobStatus.CANCELLED and job.is_done()


class Refuse(BaseOuterMiddleware):
    async def __call__(self, call_next: CallNextOuter, context: Any) -> Any:
        return None  # refuses quietly: does not call call_next


async def test_outer_middleware_that_refuses_still_returns_a_cancelled_handle(
    tmp_path: Path,
) -> None:
    app = Jobify(storage=SQLiteStorage(tmp_path / "jobs.db"), outer_middleware=[Refuse()])
    ran: list[int] = []

    @app.task
    async def work(n: int) -> None:
        ran.append(n)

    async with app:
        jobs = [
            await work.push(1),
            await work.schedule(2).at(datetime.now(UTC), job_id="at"),
            await work.schedule(3).delay(0, job_id="delay"),
            await work.schedule(4).cron("* * * * * * *", job_id="cron"),
        ]
        for job in jobs:
            assert job is not None and job.status is JobStatus.CANCELLED
            await asyncio.wait_for(job.wait(), 0.5)  # returns at once
            assert app.find_job(job.id) is None
        assert app.get_active_jobs() == []
        assert app.configs.storage is not None
        assert [await app.configs.storage.get(j.id) for j in jobs] == [None] * 4
        await asyncio.sleep(1.1)
    assert ran == []


async def test_identical_replace_is_a_noop_before_outer_middleware() -> None:
    calls: list[str] = []

    class Count(BaseOuterMiddleware):
        async def __call__(self, call_next: CallNextOuter, context: Any) -> Any:
            calls.append(context.job.id)
            return await call_next(context)

    app = Jobify(storage=False, outer_middleware=[Count()])

    @app.task
    async def work(n: int) -> None:
        pass

    async with app:
        when = datetime.now(UTC) + timedelta(hours=1)
        first = await work.schedule(1).at(when, job_id="j")
        same = await work.schedule(1).at(when, job_id="j", replace=True)
        assert same is first and calls == ["j"]  # identical: no-op, middleware not run
        # A replacement (forced or changed) goes through middleware and updates the same
        # handle in place.
        forced = await work.schedule(1).at(when, job_id="j", replace=True, force=True)
        assert forced is first and calls == ["j", "j"]
        changed = await work.schedule(2).at(when, job_id="j", replace=True)
        assert changed is first and calls == ["j", "j", "j"]
        moved = await work.schedule(2).at(when + timedelta(1), job_id="j", replace=True)
        assert moved is first and len(calls) == 4
        assert first.exec_at == when + timedelta(1)
        c1 = await work.schedule(5).cron("0 0 1 1 *", job_id="c")
        assert await work.schedule(5).cron("0 0 1 1 *", job_id="c", replace=True) is c1
        assert len(calls) == 5


def test_retry_int_backs_off_like_smart_retry() -> None:
    assert as_retry(3) == SmartRetry(retries=3)
    policy = as_retry(3)
    assert policy is not None
    assert (policy.initial_delay, policy.backoff_factor, policy.max_delay) == (0.5, 2.0, 60.0)
    assert policy.jitter
    delays = [policy.delay(n) for n in (1, 2, 3)]
    assert 0.25 <= delays[0] <= 0.5 and 0.5 <= delays[1] <= 1.0 and 1.0 <= delays[2] <= 2.0
    assert SmartRetry(retries=3, initial_delay=0).delay(2) == 0.0


async def test_retry_int_waits_between_attempts() -> None:
    app = Jobify(storage=False)
    times: list[float] = []

    @app.task(retry=1)
    async def flaky() -> None:
        times.append(asyncio.get_running_loop().time())
        raise ConnectionError("remote down")

    async with app:
        job = await flaky.push()
        await job.wait()
    assert job.status is JobStatus.FAILED and len(times) == 2
    assert times[1] - times[0] >= 0.25  # not hammered at once


async def test_add_middleware_handlers_before_startup_only() -> None:
    log: list[str] = []

    class Mark(BaseMiddleware):
        def __init__(self, name: str) -> None:
            self.name = name

        async def __call__(self, call_next: CallNext, context: JobContext) -> Any:
            log.append(self.name)
            return await call_next(context)

    class Outer(BaseOuterMiddleware):
        async def __call__(self, call_next: CallNextOuter, context: Any) -> Any:
            log.append("outer")
            return await call_next(context)

    app = Jobify(storage=False)
    router = JobRouter(prefix="r")

    @router.task
    async def fails() -> None:
        raise KeyError("k")

    app.add_middleware(Mark("app"))
    app.add_outer_middleware(Outer())
    app.add_exception_handler(KeyError, lambda exc, ctx: "handled")
    router.add_middleware(Mark("router"))
    router.add_outer_middleware(Outer())
    app.include_router(router)
    async with app:
        assert await outcome(await fails.push()) == "handled"
        assert log == ["outer", "outer", "app", "router"]
        with pytest.raises(ApplicationStateError):
            app.add_middleware(Mark("late"))
        with pytest.raises(ApplicationStateError):
            app.add_outer_middleware(Outer())
        with pytest.raises(ApplicationStateError):
            app.add_exception_handler(ValueError, lambda exc, ctx: None)
        with pytest.raises(ApplicationStateError):
            router.add_middleware(Mark("late"))
        with pytest.raises(ApplicationStateError):
            router.add_outer_middleware(Outer())
    with pytest.raises(TypeError, match="exception types"):
        Jobify(storage=False).add_exception_handler("KeyError", print)  # type: ignore[arg-type]


async def test_a_failed_job_is_logged_with_its_traceback_and_ids(
    caplog: pytest.LogCaptureFixture,
) -> None:
    app = Jobify(storage=False)

    def helper(n: int) -> int:
        return n // 0  # the failing line

    @app.task(retry=SmartRetry(retries=1, initial_delay=0))
    async def divide(n: int) -> int:
        return helper(n)

    with caplog.at_level(logging.WARNING, logger="jobify"):
        async with app:
            job = await divide.push(1)
            await job.wait()
    with pytest.raises(JobFailedError):
        job.result()
    retry = next(r for r in caplog.records if r.levelno == logging.WARNING)
    assert "attempt 1" in retry.getMessage()
    assert (retry.job_id, retry.task_name, retry.attempt) == (job.id, divide.name, 1)  # type: ignore[attr-defined]
    failure = next(r for r in caplog.records if r.levelno == logging.ERROR)
    message = failure.getMessage()
    assert job.id in message and f"'{divide.name}'" in message
    assert (failure.job_id, failure.task_name) == (job.id, divide.name)  # type: ignore[attr-defined]
    assert failure.exc_info is not None
    text = caplog.text
    assert "ZeroDivisionError" in text
    assert "return n // 0  # the failing line" in text  # down to the helper's line
