"""Outer middleware: wraps push/at/delay/cron with an OuterContext; rewrite or refuse."""

from __future__ import annotations

import asyncio
import inspect
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from jobify import (
    Cron,
    Job,
    Jobify,
    JobRouter,
    JobStatus,
    OuterContext,
    RequestState,
    Runnable,
    ScheduleBuilder,
)
from jobify.exceptions import DuplicateJobError
from jobify.middleware import BaseOuterMiddleware, CallNextOuter
from jobify.storage import SQLiteStorage


class Recorder(BaseOuterMiddleware):
    """Logs around call_next and keeps every context it saw."""

    def __init__(self, name: str, log: list[str]) -> None:
        self.name = name
        self.log = log
        self.contexts: list[OuterContext] = []

    async def __call__(self, call_next: CallNextOuter, context: OuterContext) -> Job[Any]:
        self.contexts.append(context)
        self.log.append(f"{self.name}:before")
        job = await call_next(context)
        self.log.append(f"{self.name}:after")
        return job


class Rewrite(BaseOuterMiddleware):
    def __init__(self, **changes: Any) -> None:
        self.changes = changes

    async def __call__(self, call_next: CallNextOuter, context: OuterContext) -> Job[Any]:
        context.arguments.update(self.changes)
        return await call_next(context)


class Refuse(BaseOuterMiddleware):
    """Refuses negative amounts; remembers the id of the job it refused."""

    def __init__(self) -> None:
        self.refused: list[str] = []

    async def __call__(self, call_next: CallNextOuter, context: OuterContext) -> Job[Any]:
        if context.arguments["amount"] < 0:
            assert context.job is not None
            self.refused.append(context.job.id)
            raise PermissionError("negative amounts are not scheduled")
        return await call_next(context)


def sqlite(tmp_path: Path) -> SQLiteStorage:
    return SQLiteStorage(tmp_path / "jobs.db")


async def stored_arguments(app: Jobify, job_id: str) -> dict[str, Any] | None:
    storage = app.configs.storage
    assert storage is not None
    record = await storage.get(job_id)
    if record is None:
        return None
    decoded: dict[str, Any] = app.configs.serializer.loadb(record.arguments)
    return decoded


async def test_order_app_then_routers_then_task() -> None:
    log: list[str] = []
    app = Jobify(storage=False, outer_middleware=[Recorder("app", log)])
    outer = JobRouter(prefix="o", outer_middleware=[Recorder("outer", log)])
    inner = JobRouter(prefix="i", outer_middleware=[Recorder("inner", log)])

    @inner.task(outer_middleware=[Recorder("task", log)])
    async def work() -> None:
        log.append("run")

    outer.include_router(inner)
    app.include_router(outer)
    async with app:
        job = await work.push()
        log.append("pushed")
        await job.wait()
    assert log[:9] == [
        "app:before",
        "outer:before",
        "inner:before",
        "task:before",
        "task:after",
        "inner:after",
        "outer:after",
        "app:after",
        "pushed",
    ]
    assert log[9:] == ["run"]


async def test_outer_context_fields_for_push(tmp_path: Path) -> None:
    log: list[str] = []
    rec = Recorder("rec", log)
    app = Jobify(storage=sqlite(tmp_path), outer_middleware=[rec])

    @app.task(metadata={"priority": 3})
    async def work(a: int, b: str = "x") -> str:
        return f"{a}{b}"

    async with app:
        before = datetime.now(UTC)
        job = await work.push(1, b="y")
        assert await job == "1y"
    [ctx] = rec.contexts
    assert ctx.job is job
    assert isinstance(ctx.trigger, datetime)
    assert before - timedelta(seconds=1) <= ctx.trigger <= datetime.now(UTC)
    assert isinstance(ctx.runnable, Runnable)
    assert ctx.runnable.name == work.name
    assert ctx.runnable.func is work.func
    assert ctx.arguments == {"a": 1, "b": "y"}
    assert ctx.func_spec == inspect.signature(work.func)
    assert (ctx.is_force, ctx.is_persist, ctx.is_replace) == (False, True, False)
    assert ctx.state is app.state
    assert ctx.route_options["metadata"] == {"priority": 3}
    assert ctx.route_options["name"] == work.name
    assert ctx.jobify_config is app.configs
    assert isinstance(ctx.request_state, RequestState)
    assert isinstance(ctx.schedule_builder, ScheduleBuilder)


async def test_outer_context_trigger_and_flags_for_at_delay_and_cron() -> None:
    log: list[str] = []
    rec = Recorder("rec", log)
    app = Jobify(storage=False, outer_middleware=[rec])

    @app.task
    async def work() -> None:
        pass

    @app.task(durable=False)
    async def volatile() -> None:
        pass

    async with app:
        when = datetime.now(UTC) + timedelta(hours=1)
        at_job = await work.schedule().at(when, job_id="at")
        delay_job = await work.schedule().delay(3600, job_id="delay")
        cron_job = await work.schedule().cron("0 0 * * *", job_id="cron")
        await volatile.schedule().delay(3600)
        at_ctx, delay_ctx, cron_ctx, volatile_ctx = rec.contexts
        assert at_ctx.job is at_job and at_ctx.trigger == when
        assert delay_ctx.job is delay_job and isinstance(delay_ctx.trigger, datetime)
        assert delay_ctx.trigger == delay_job.exec_at
        assert cron_ctx.job is cron_job
        assert isinstance(cron_ctx.trigger, Cron) and cron_ctx.trigger.expression == "0 0 * * *"
        # Nothing is persisted without a storage, nor for a non-durable task.
        assert not any(c.is_persist for c in rec.contexts)
        assert volatile_ctx.route_options["durable"] is False
        # A fresh scratch state per scheduling call.
        assert len({id(c.request_state) for c in rec.contexts}) == 4


async def test_outer_context_is_persist_false_for_non_durable_task(tmp_path: Path) -> None:
    rec = Recorder("rec", [])
    app = Jobify(storage=sqlite(tmp_path), outer_middleware=[rec])

    @app.task(durable=False)
    async def work() -> None:
        pass

    async with app:
        job = await work.schedule().delay(3600)
        assert await stored_arguments(app, job.id) is None
    assert [c.is_persist for c in rec.contexts] == [False]


async def test_rewritten_arguments_are_what_runs_and_what_is_stored(tmp_path: Path) -> None:
    app = Jobify(storage=sqlite(tmp_path), outer_middleware=[Rewrite(amount=99)])
    seen: list[int] = []

    @app.task
    async def pay(amount: int, note: str) -> int:
        seen.append(amount)
        return amount

    async with app:
        later = await pay.schedule(1, "later").delay(3600)
        assert await stored_arguments(app, later.id) == {"amount": 99, "note": "later"}
        now = await pay.push(5, "now")
        assert await now == 99
    assert seen == [99]


async def test_refusal_schedules_and_stores_nothing(tmp_path: Path) -> None:
    refuse = Refuse()
    app = Jobify(storage=sqlite(tmp_path))
    router = JobRouter(prefix="bank", outer_middleware=[refuse])
    ran: list[int] = []

    @router.task
    async def pay(amount: int) -> None:
        ran.append(amount)

    app.include_router(router)
    async with app:
        with pytest.raises(PermissionError, match="negative"):
            await pay.push(-1)
        with pytest.raises(PermissionError):
            await pay.schedule(-2).delay(3600, job_id="later")
        with pytest.raises(PermissionError):
            await pay.schedule(-3).cron("* * * * *", job_id="recurring")
        assert len(refuse.refused) == 3
        assert refuse.refused[1:] == ["later", "recurring"]
        for job_id in refuse.refused:
            assert app.find_job(job_id) is None
            assert await stored_arguments(app, job_id) is None
        assert app.get_active_jobs() == []
        # The refused ids are free: nothing half-registered blocks them.
        ok = await pay.schedule(4).delay(3600, job_id="later")
        assert app.find_job("later") is ok
        assert await stored_arguments(app, "later") == {"amount": 4}
    assert ran == []


async def test_not_run_when_restoring_from_storage(tmp_path: Path) -> None:
    started = asyncio.Event()

    first_outer = Recorder("first", [])
    app1 = Jobify(storage=sqlite(tmp_path), outer_middleware=[first_outer, Rewrite(n=7)])

    @app1.task(name="work")
    async def work1(n: int) -> None:
        started.set()
        await asyncio.Event().wait()  # runs until shutdown cancels it

    @app1.task(name="later")
    async def later1(n: int) -> None:
        raise AssertionError("not due")

    async with app1:
        running = await work1.push(1)
        waiting = await later1.schedule(2).delay(3600)
        await started.wait()
    assert len(first_outer.contexts) == 2

    second_outer = Recorder("second", [])
    app2 = Jobify(storage=sqlite(tmp_path), outer_middleware=[second_outer, Rewrite(n=-1)])
    results: list[int] = []

    @app2.task(name="work")
    async def work2(n: int) -> int:
        results.append(n)
        return n

    @app2.task(name="later")
    async def later2(n: int) -> None:
        raise AssertionError("not due")

    async with app2:
        restored = app2.find_job(running.id)
        assert restored is not None
        assert await restored == 7  # rewritten by app1's middleware, not again by app2's
        assert app2.find_job(waiting.id) is not None
        assert await stored_arguments(app2, waiting.id) == {"n": 7}
    assert second_outer.contexts == []
    assert results == [7]


async def test_identical_reschedule_skips_outer_middleware_unless_forced() -> None:
    rec = Recorder("rec", [])
    app = Jobify(storage=False, outer_middleware=[rec])

    @app.task
    async def work(n: int) -> None:
        pass

    async with app:
        when = datetime.now(UTC) + timedelta(hours=1)
        first = await work.schedule(1).at(when, job_id="j")
        again = await work.schedule(1).at(when, job_id="j")
        assert again is first
        assert len(rec.contexts) == 1

        with pytest.raises(DuplicateJobError):
            await work.schedule(2).at(when, job_id="j")
        assert len(rec.contexts) == 1

        forced = await work.schedule(1).at(when, job_id="j", force=True)
        assert len(rec.contexts) == 2
        ctx = rec.contexts[-1]
        assert (ctx.is_force, ctx.is_replace) == (True, True)
        assert forced is first and ctx.job is first  # replaced in place
        assert first.status is JobStatus.SCHEDULED
        assert app.find_job("j") is forced

        replaced = await work.schedule(3).at(when, job_id="j", replace=True)
        ctx = rec.contexts[-1]
        assert len(rec.contexts) == 3
        assert (ctx.is_force, ctx.is_replace, ctx.arguments) == (False, True, {"n": 3})
        assert app.find_job("j") is replaced

        cron = await work.schedule(1).cron("0 * * * *", job_id="c")
        assert await work.schedule(1).cron("0 * * * *", job_id="c") is cron
        assert len(rec.contexts) == 4


async def test_identical_reschedule_is_judged_by_the_callers_arguments_not_the_rewritten() -> None:
    calls: list[dict[str, object]] = []

    class Double(BaseOuterMiddleware):
        async def __call__(self, call_next: CallNextOuter, context: OuterContext) -> Job[Any]:
            calls.append(dict(context.arguments))
            context.arguments["n"] = context.arguments["n"] * 2
            return await call_next(context)

    app = Jobify(storage=False, outer_middleware=[Double()])

    @app.task
    async def work(n: int) -> int:
        return n

    async with app:
        when = datetime.now(UTC) + timedelta(hours=1)
        first = await work.schedule(5).at(when, job_id="d")
        again = await work.schedule(5).at(when, job_id="d")
        assert again is first  # the same request: a no-op, not a DuplicateJobError
        assert calls == [{"n": 5}]
        with pytest.raises(DuplicateJobError):
            await work.schedule(10).at(when, job_id="d")  # equals the stored, not the asked
