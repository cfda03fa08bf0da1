"""Scheduling: push, at, delay, cron, ids, duplicates, replace, force, time zones."""

from __future__ import annotations

import asyncio
import re
import time
from datetime import UTC, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import pytest

from jobify import Cron, Jobify, JobStatus, RunMode, ScheduleBuilder, SmartRetry
from jobify.middleware import BaseOuterMiddleware

BERLIN = ZoneInfo("Europe/Berlin")


async def test_task_decorator_forms_and_direct_call(app: Jobify) -> None:
    @app.task
    async def plain(x: int) -> int:
        return x + 1

    @app.task(
        name="custom",
        retry=SmartRetry(1, initial_delay=0.001),
        timeout=5,
        durable=False,
        run_mode=RunMode.THREAD,
        metadata={"priority": 3},
        exception_handlers={KeyError: lambda exc, ctx: None},
    )
    def configured(x: int) -> int:
        """Docs survive."""
        return x * 10

    assert plain.name == f"{__name__}:test_task_decorator_forms_and_direct_call.<locals>.plain"
    assert configured.name == "custom"
    assert configured.__doc__ == "Docs survive."
    assert configured.route_options["metadata"] == {"priority": 3}
    assert configured.route_options["run_mode"] is RunMode.THREAD
    assert configured.route_options["timeout"] == 5.0
    assert configured.route_options["durable"] is False
    assert plain.route_options["metadata"] == {}
    assert plain.route_options["run_mode"] is RunMode.MAIN
    # A direct call runs the plain function; nothing is scheduled (the app is not even up).
    assert await plain(1) == 2
    assert configured(2) == 20
    async with app:
        assert await (await configured.push(3)) == 30


async def test_push_runs_now_with_generated_hex_id(app: Jobify) -> None:
    @app.task
    async def echo(value: Any, *, suffix: str = "") -> str:
        return f"{value}{suffix}"

    async with app:
        a = await echo.push(1, suffix="!")
        b = await echo.push(2)
        assert re.fullmatch(r"[0-9a-f]{32}", a.id)
        assert a.id != b.id
        assert await a == "1!"
        assert await b == "2"


async def test_delay_runs_after_the_delay(app: Jobify) -> None:
    ran_at: list[float] = []

    @app.task
    async def stamp() -> None:
        ran_at.append(time.monotonic())

    async with app:
        t0 = time.monotonic()
        job = await stamp.schedule().delay(0.05)
        assert isinstance(stamp.schedule(), ScheduleBuilder)
        await asyncio.sleep(0.02)
        assert ran_at == []
        await job.wait()
        assert 0.045 <= ran_at[0] - t0 < 0.5
        assert job.status is JobStatus.SUCCESS


async def test_at_runs_at_the_time(app: Jobify) -> None:
    ran_at: list[datetime] = []

    @app.task
    async def stamp() -> None:
        ran_at.append(datetime.now(UTC))

    async with app:
        when = datetime.now(UTC) + timedelta(milliseconds=50)
        job = await stamp.schedule().at(when, job_id="at-job")
        assert job.id == "at-job"
        await job.wait()
        assert ran_at[0] >= when - timedelta(milliseconds=1)
        assert ran_at[0] - when < timedelta(milliseconds=500)


async def test_past_time_and_negative_delay_run_now(app: Jobify) -> None:
    @app.task
    async def noop() -> str:
        return "ran"

    async with app:
        t0 = time.monotonic()
        past = await noop.schedule().at(datetime.now(UTC) - timedelta(days=3))
        negative = await noop.schedule().delay(-100)
        assert await past == "ran"
        assert await negative == "ran"
        assert time.monotonic() - t0 < 0.5


async def test_naive_datetimes_are_in_the_app_tz() -> None:
    app = Jobify(tz=BERLIN, storage=False)

    @app.task
    async def noop() -> None:
        pass

    async with app:
        naive = datetime(2099, 6, 1, 12, 0)  # 12:00 in Berlin is 10:00 UTC in summer
        job = await noop.schedule().at(naive)
        assert job.exec_at == datetime(2099, 6, 1, 10, 0, tzinfo=UTC)
        assert job.exec_at.utcoffset() == timedelta(hours=2)  # reported in the app's zone
        base = datetime(2099, 1, 1, 12, 0)  # winter: UTC+1
        delayed = await noop.schedule().delay(30, now=base)
        assert delayed.exec_at == datetime(2099, 1, 1, 11, 0, 30, tzinfo=UTC)
        aware = await noop.schedule().at(datetime(2099, 6, 1, 12, 0, tzinfo=UTC))
        assert aware.exec_at == datetime(2099, 6, 1, 12, 0, tzinfo=UTC)
        await app.shutdown()


async def test_delay_with_explicit_now(app: Jobify) -> None:
    @app.task
    async def noop() -> str:
        return "ok"

    async with app:
        now = datetime.now(UTC)
        far = await noop.schedule().delay(10, now=now + timedelta(hours=1))
        assert far.exec_at == now + timedelta(hours=1, seconds=10)
        # now in the past + delay still in the past = run now
        soon = await noop.schedule().delay(1, now=now - timedelta(hours=1))
        assert await soon == "ok"
        assert far.status is JobStatus.SCHEDULED


async def test_cron_builder_needs_a_job_id_and_runs(app: Jobify) -> None:
    @app.task
    async def tick(label: str) -> str:
        return label

    async with app:
        job = await tick.schedule("a").cron(Cron("* * * * * * *", max_runs=1), job_id="ticker")
        assert job.id == "ticker"
        assert job.cron_expression == "* * * * * * *"
        assert job.exec_at > datetime.now(UTC)
        assert await job == "a"
        assert app.find_job("ticker") is None  # max_runs reached


async def test_duplicate_job_id(app: Jobify) -> None:
    from jobify.exceptions import DuplicateJobError

    @app.task
    async def noop(x: int) -> int:
        return x

    async with app:
        first = await noop.schedule(1).delay(60, job_id="same")
        with pytest.raises(DuplicateJobError, match="replace=True") as info:
            await noop.schedule(2).delay(60, job_id="same")
        assert info.value.job_id == "same"
        with pytest.raises(DuplicateJobError):
            await noop.schedule(1).delay(120, job_id="same")  # other time = not identical
        with pytest.raises(DuplicateJobError):
            await noop.schedule(1).cron("* * * * *", job_id="same")
        assert app.find_job("same") is first
        assert first.status is JobStatus.SCHEDULED


async def test_replace_updates_the_old_job_in_place(app: Jobify) -> None:
    ran: list[int] = []

    @app.task
    async def record(x: int) -> None:
        ran.append(x)

    async with app:
        old = await record.schedule(1).delay(0.02, job_id="r")
        new = await record.schedule(2).delay(0.02, job_id="r", replace=True)
        assert new is old  # the same handle, now for the new job
        assert old.status is JobStatus.SCHEDULED
        assert app.find_job("r") is new
        await new.wait()
        await asyncio.sleep(0.02)
        assert ran == [2]


async def test_identical_reschedule_is_a_noop_unless_forced() -> None:
    calls: list[str] = []

    class CountOuter(BaseOuterMiddleware):
        async def __call__(self, call_next: Any, context: Any) -> Any:
            calls.append(context.job.id)
            return await call_next(context)

    app = Jobify(storage=False, outer_middleware=[CountOuter()])

    @app.task
    async def noop(x: int) -> int:
        return x

    async with app:
        when = datetime.now(UTC) + timedelta(hours=1)
        first = await noop.schedule(1).at(when, job_id="i")
        again = await noop.schedule(1).at(when, job_id="i")
        assert again is first
        assert calls == ["i"]  # the no-op did not run outer middleware
        forced = await noop.schedule(1).at(when, job_id="i", force=True)
        assert calls == ["i", "i"]
        assert forced is first  # forced: scheduled again, through the same handle
        assert first.status is JobStatus.SCHEDULED
        assert app.find_job("i") is forced
        cron1 = await noop.schedule(5).cron("0 0 1 1 *", job_id="c")
        assert await noop.schedule(5).cron("0 0 1 1 *", job_id="c") is cron1


async def test_wrong_arguments_fail_at_scheduling_time(app: Jobify) -> None:
    ran: list[int] = []

    @app.task
    async def needs_two(a: int, b: int) -> None:
        ran.append(a + b)

    async with app:
        with pytest.raises(TypeError, match="needs_two"):
            await needs_two.push(1)  # type: ignore[call-arg]
        with pytest.raises(TypeError, match="needs_two"):
            needs_two.schedule(1, 2, 3)  # type: ignore[call-arg]
        with pytest.raises(TypeError, match="needs_two"):
            needs_two.schedule(1, c=2)  # type: ignore[call-arg]
        assert app.get_active_jobs() == []
        await (await needs_two.push(1, b=2)).wait()
        assert ran == [3]


async def test_positional_only_and_var_args_are_passed_right(app: Jobify) -> None:
    @app.task
    def collect(a: int, /, *rest: int, flag: bool = False, **extra: int) -> tuple[Any, ...]:
        return a, rest, flag, extra

    async with app:
        assert await (await collect.push(1, 2, 3, flag=True, z=9)) == (1, (2, 3), True, {"z": 9})
