"""INJECT: every injectable type, in MAIN and THREAD modes; errors at decoration; not stored."""

from __future__ import annotations

import threading
from pathlib import Path
from typing import Any

import pytest

from jobify import (
    INJECT,
    Cron,
    CronContext,
    Job,
    JobContext,
    Jobify,
    JobifyConfiguration,
    JobRouter,
    JobStatus,
    RequestState,
    RunMode,
    Runnable,
    ScheduleBuilder,
    State,
)
from jobify._context import injections_for
from jobify.middleware import BaseMiddleware, CallNext
from jobify.storage import SQLiteStorage


class Marker(BaseMiddleware):
    """Puts a per-execution token in request_state and remembers it."""

    def __init__(self) -> None:
        self.tokens: list[object] = []

    async def __call__(self, call_next: CallNext, context: JobContext) -> Any:
        token = object()
        context.request_state.token = token
        self.tokens.append(token)
        return await call_next(context)


async def test_every_injectable_type_in_main_mode() -> None:
    app = Jobify(storage=False)
    app.state.shared = "app-state"
    seen: dict[str, Any] = {}

    @app.task
    async def work(
        n: int,
        ctx: JobContext = INJECT,
        job: Job[int] = INJECT,
        state: State = INJECT,
        request_state: RequestState = INJECT,
        config: JobifyConfiguration = INJECT,
        builder: ScheduleBuilder[int] = INJECT,
        runnable: Runnable[int] = INJECT,
        cron: CronContext | None = INJECT,
    ) -> int:
        seen.update(
            ctx=ctx,
            job=job,
            state=state,
            request_state=request_state,
            config=config,
            builder=builder,
            runnable=runnable,
            cron=cron,
        )
        return n

    async with app:
        pushed = await work.push(3)
        assert await pushed == 3
        ctx = seen["ctx"]
        assert isinstance(ctx, JobContext)
        assert seen["job"] is pushed is ctx.job
        assert seen["state"] is app.state and seen["state"].shared == "app-state"
        assert isinstance(seen["request_state"], RequestState)
        assert seen["request_state"] is ctx.request_state
        assert seen["config"] is app.configs
        assert seen["runnable"] is ctx.runnable and seen["runnable"].name == work.name
        assert seen["cron"] is None  # not a cron job
        # The injected builder re-schedules the same task with the same arguments.
        builder = seen["builder"]
        assert isinstance(builder, ScheduleBuilder)
        again = await builder.delay(3600, job_id="again")
        assert app.find_job("again") is again
        assert again.status is JobStatus.SCHEDULED


async def test_injection_in_thread_mode_sync_and_async() -> None:
    app = Jobify(storage=False)
    seen: list[tuple[str, Any, Any, Any, str]] = []

    @app.task(run_mode=RunMode.THREAD)
    def sync_work(
        n: int, job: Job[Any] = INJECT, state: State = INJECT, rs: RequestState = INJECT
    ) -> int:
        seen.append(("sync", job, state, rs, threading.current_thread().name))
        return n + 1

    @app.task(run_mode=RunMode.THREAD)
    async def async_work(
        n: int, job: Job[Any] = INJECT, state: State = INJECT, rs: RequestState = INJECT
    ) -> int:
        seen.append(("async", job, state, rs, threading.current_thread().name))
        return n + 2

    @app.task(run_mode=RunMode.MAIN)
    def inline_work(n: int, config: JobifyConfiguration = INJECT) -> int:
        seen.append(("inline", None, config, None, threading.current_thread().name))
        return n + 3

    async with app:
        j1 = await sync_work.push(1)
        j2 = await async_work.push(1)
        j3 = await inline_work.push(1)
        assert (await j1, await j2, await j3) == (2, 3, 4)
    by_kind = {kind: rest for kind, *rest in seen}
    main = threading.current_thread().name
    assert by_kind["sync"][0] is j1 and by_kind["sync"][1] is app.state
    assert isinstance(by_kind["sync"][2], RequestState)
    assert by_kind["sync"][3] != main
    assert by_kind["async"][0] is j2 and by_kind["async"][3] != main
    assert by_kind["inline"][1] is app.configs and by_kind["inline"][3] == main


async def test_cron_context_is_injected_into_cron_jobs() -> None:
    app = Jobify(storage=False)
    seen: list[tuple[str, int, int]] = []

    @app.task(cron=Cron("* * * * * * *", max_runs=1))  # every second, once
    async def tick(cron: CronContext = INJECT) -> None:
        seen.append((cron.cron.expression, cron.runs, cron.failures))

    async with app:
        job = app.find_job(tick.name)
        assert job is not None
        await job.wait()
    assert seen == [("* * * * * * *", 0, 0)]


async def test_request_state_is_fresh_per_execution_and_shared_with_middleware() -> None:
    marker = Marker()
    app = Jobify(storage=False, middleware=[marker])
    router = JobRouter()
    tokens: list[object] = []
    states: list[RequestState] = []

    @router.task
    async def work(rs: RequestState = INJECT) -> None:
        assert "leftover" not in rs
        rs.leftover = True
        tokens.append(rs.token)
        states.append(rs)

    app.include_router(router)
    async with app:
        for _ in range(3):
            await (await work.push()).wait()
    assert tokens == marker.tokens and len(set(map(id, tokens))) == 3
    assert len({id(s) for s in states}) == 3


async def test_injected_parameters_are_not_arguments() -> None:
    app = Jobify(storage=False)

    @app.task
    async def work(n: int, job: Job[Any] = INJECT) -> int:
        return n

    assert "job" not in work.bind_signature.parameters
    async with app:
        with pytest.raises(TypeError, match="wrong arguments"):
            await work.push(1, job=None)  # type: ignore[arg-type]
        with pytest.raises(TypeError):
            work.schedule(1, None)  # type: ignore[arg-type]
        job = await work.push(n=5)
        assert await job == 5


async def test_durable_task_with_injection_on_sqlite(tmp_path: Path) -> None:
    db = tmp_path / "jobs.db"
    app = Jobify(storage=SQLiteStorage(db))

    @app.task(name="work")
    async def work(n: int, job: Job[Any] = INJECT, state: State = INJECT) -> str:
        return f"{n}:{job.id}"

    async with app:
        later = await work.schedule(2).delay(3600)
        storage = app.configs.storage
        assert storage is not None
        record = await storage.get(later.id)
        assert record is not None
        assert app.configs.serializer.loadb(record.arguments) == {"n": 2}
        now = await work.push(1)
        assert await now == f"1:{now.id}"

    # Restored after a restart: the record decodes without any injected parameter.
    app2 = Jobify(storage=SQLiteStorage(db))

    @app2.task(name="work")
    async def work2(n: int, job: Job[Any] = INJECT) -> str:
        return f"{n}:{job.id}"

    async with app2:
        restored = app2.find_job(later.id)
        assert restored is not None and restored.status is JobStatus.SCHEDULED
        assert app2.configs.serializer.loadb(record.arguments) == {"n": 2}


def test_unknown_or_missing_injectable_type_is_an_error_at_decoration() -> None:
    app = Jobify(storage=False)

    with pytest.raises(TypeError, match=r"'db'.*cannot be injected"):

        @app.task
        async def work(db: dict[str, Any] = INJECT) -> None:
            pass

    # No annotation at all: a ValueError (as in the reference), naming the parameter.
    with pytest.raises(ValueError, match="'missing' = INJECT has no type annotation"):

        @app.task
        async def no_hint(missing=INJECT) -> None:  # type: ignore[no-untyped-def]
            pass

    with pytest.raises(TypeError, match="'either'"):

        @app.task
        async def ambiguous(either: Job[Any] | State = INJECT) -> None:
            pass

    assert dict(app.tasks) == {}


def test_process_task_asking_for_injection_is_an_error_at_decoration() -> None:
    app = Jobify(storage=False)
    with pytest.raises(TypeError, match=r"PROCESS.*\['job'\]"):
        app.task(run_mode=RunMode.PROCESS)(process_task_with_injection)
    # Without injection a module-level function is a fine PROCESS task.
    route = app.task(run_mode=RunMode.PROCESS)(process_task_plain)
    assert route.options.run_mode is RunMode.PROCESS


def test_injections_for_lists_only_inject_parameters() -> None:
    table = injections_for(process_task_with_injection, "t")
    assert list(table) == ["job"]


def process_task_with_injection(n: int, job: Job[Any] = INJECT) -> int:
    return n


def process_task_plain(n: int) -> int:
    return n
