"""The application object: constructor, life cycle, queries, state and phase errors."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import asynccontextmanager
from typing import Any
from zoneinfo import ZoneInfo

import pytest

from jobify import Jobify, JobifyConfiguration, JobStatus, State
from jobify.crontab import create_crontab
from jobify.exceptions import ApplicationStateError
from jobify.middleware import BaseMiddleware, BaseOuterMiddleware
from jobify.router import RootRoute
from jobify.serializers import JSONSerializer
from jobify.storage import SQLiteStorage


class Recorder:
    """Collects what the hooks under test saw."""

    def __init__(self) -> None:
        self.events: list[str] = []


async def test_every_constructor_argument_is_accepted_and_used() -> None:
    rec = Recorder()
    berlin = ZoneInfo("Europe/Berlin")
    pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="mine")

    @asynccontextmanager
    async def lifespan(app: Jobify) -> AsyncIterator[dict[str, Any]]:
        rec.events.append("lifespan-start")
        yield {"db": "connected"}
        rec.events.append("lifespan-stop")

    class Inner(BaseMiddleware):
        async def __call__(self, call_next: Any, context: Any) -> Any:
            rec.events.append("middleware")
            return await call_next(context)

    class Outer(BaseOuterMiddleware):
        async def __call__(self, call_next: Any, context: Any) -> Any:
            rec.events.append("outer")
            return await call_next(context)

    def on_key_error(exc: BaseException, context: Any) -> str:
        return "handled"

    def cron_factory(expression: str) -> Any:
        rec.events.append(f"cron:{expression}")
        return create_crontab(expression)

    def loop_factory() -> asyncio.AbstractEventLoop:
        rec.events.append("loop")
        return asyncio.get_running_loop()

    class Plugin:
        async def startup(self, app: Jobify) -> None:
            rec.events.append("plugin-start")

        async def shutdown(self) -> None:
            rec.events.append("plugin-stop")

    class MyRoute(RootRoute[Any, Any]):
        pass

    serializer = JSONSerializer()
    app = Jobify(
        tz=berlin,
        storage=False,
        serializer=serializer,
        dumper=None,
        loader=None,
        lifespan=lifespan,
        middleware=[Inner()],
        outer_middleware=[Outer()],
        exception_handlers={KeyError: on_key_error},
        cron_factory=cron_factory,
        loop_factory=loop_factory,
        threadpool_executor=pool,
        processpool_executor=None,
        route_class=MyRoute,
        plugins=[Plugin()],
    )

    @app.task
    def broken() -> str:
        raise KeyError("x")

    @app.task(cron="0 0 1 1 * 2099")
    async def yearly() -> None:
        pass

    assert isinstance(broken, MyRoute)
    assert app.configs.tz is berlin
    assert app.configs.serializer is serializer
    assert app.configs.storage is None
    assert app.configs.threadpool_executor is pool
    assert "cron:0 0 1 1 * 2099" in rec.events
    try:
        async with app:
            assert app.state.db == "connected"
            job = await broken.push()
            assert await job == "handled"  # app-level handler, via the custom thread pool
            assert app.find_job(yearly.name) is not None
    finally:
        pool.shutdown()
    assert rec.events[1:] == [
        "loop",
        "lifespan-start",
        "plugin-start",
        "outer",  # the declared cron, new at startup
        "outer",  # the push
        "middleware",
        "plugin-stop",
        "lifespan-stop",
    ]


def test_defaults() -> None:
    app = Jobify()
    assert isinstance(app.configs, JobifyConfiguration)
    assert app.configs.tz == ZoneInfo("UTC")
    assert isinstance(app.configs.storage, SQLiteStorage)  # not opened until startup
    assert Jobify(storage=False).configs.storage is None


async def test_async_with_starts_and_shuts_down(app: Jobify) -> None:
    started = asyncio.Event()

    @app.task
    async def wait_forever() -> None:
        started.set()
        await asyncio.Event().wait()

    async with app as entered:
        assert entered is app
        job = await wait_forever.push()
        await started.wait()
        assert job.status is JobStatus.RUNNING
    # Shutdown cancels the running job cleanly and forgets every job.
    assert job.is_done()
    assert app.get_active_jobs() == []
    with pytest.raises(ApplicationStateError, match="shut down"):
        await wait_forever.push()


async def test_explicit_startup_and_shutdown(app: Jobify) -> None:
    @app.task
    async def one() -> int:
        return 1

    await app.startup()
    assert await (await one.push()) == 1
    with pytest.raises(ApplicationStateError, match="already started"):
        await app.startup()
    await app.shutdown()
    await app.shutdown()  # idempotent
    with pytest.raises(ApplicationStateError, match="create a new Jobify"):
        await app.startup()


async def test_find_job_and_get_active_jobs(app: Jobify) -> None:
    @app.task
    async def noop() -> None:
        pass

    assert app.find_job("nope") is None
    assert app.get_active_jobs() == []
    async with app:
        later = await noop.schedule().delay(60, job_id="later")
        other = await noop.schedule().delay(60)
        assert app.find_job("later") is later
        assert app.find_job(other.id) is other
        assert app.find_job("missing") is None
        assert {j.id for j in app.get_active_jobs()} == {"later", other.id}
        now = await noop.push()
        await now.wait()
        assert app.find_job(now.id) is None  # finished one-shot jobs are forgotten
        await later.cancel()
        assert app.find_job("later") is None
        assert app.get_active_jobs() == [other]


async def test_wait_all_waits_for_every_job(app: Jobify) -> None:
    done: list[int] = []

    @app.task
    async def work(n: int) -> None:
        await asyncio.sleep(0.01 * n)
        done.append(n)

    async with app:
        for n in range(3):
            await work.push(n)
        await work.schedule(3).delay(0.03)
        await app.wait_all()
        assert sorted(done) == [0, 1, 2, 3]
        assert app.get_active_jobs() == []
        await app.wait_all()  # nothing to wait for: returns at once


async def test_wait_all_timeout_raises_with_jobs_pending(app: Jobify) -> None:
    @app.task
    async def noop() -> None:
        pass

    async with app:
        await app.wait_all(timeout=0)  # nothing pending: returns at once
        job = await noop.schedule().delay(60)
        t0 = time.perf_counter()
        with pytest.raises(TimeoutError, match="1 job"):
            await app.wait_all(timeout=0.05)
        assert 0.04 <= time.perf_counter() - t0 < 1
        assert job.status is JobStatus.SCHEDULED
        with pytest.raises(TimeoutError):
            await app.wait_all(timeout=0)
        assert job.status is JobStatus.SCHEDULED
        await job.cancel()
        await app.wait_all(timeout=0.05)  # nothing left


async def test_state_attribute_and_item_access(app: Jobify) -> None:
    assert isinstance(app.state, State)
    app.state.counter = 1
    assert app.state["counter"] == 1
    app.state["name"] = "x"
    assert app.state.name == "x"
    del app.state.counter
    with pytest.raises(AttributeError, match="counter"):
        _ = app.state.counter
    assert dict(app.state) == {"name": "x"}


def test_configs_tz_accepts_zoneinfo() -> None:
    app = Jobify(tz=ZoneInfo("Asia/Tokyo"), storage=False)
    assert app.configs.tz == ZoneInfo("Asia/Tokyo")


async def test_registering_a_task_after_startup_is_an_error(app: Jobify) -> None:
    async with app:
        with pytest.raises(
            ApplicationStateError, match="cannot register a task: the app has already started"
        ):

            @app.task
            async def late() -> None:
                pass


async def test_scheduling_before_startup_is_an_error(app: Jobify) -> None:
    @app.task
    async def noop() -> None:
        pass

    with pytest.raises(ApplicationStateError, match="async with app"):
        await noop.push()
    with pytest.raises(ApplicationStateError, match="has not started"):
        await noop.schedule().delay(1)
    with pytest.raises(ApplicationStateError, match="has not started"):
        await noop.schedule().cron("* * * * *", job_id="c")


async def test_scheduling_after_shutdown_is_an_error(app: Jobify) -> None:
    @app.task
    async def noop() -> None:
        pass

    async with app:
        pass
    with pytest.raises(ApplicationStateError, match="after shutdown"):
        await noop.push()
    with pytest.raises(ApplicationStateError, match="after shutdown"):
        await noop.schedule().delay(1)


async def test_tasks_lists_every_registered_task_by_full_name() -> None:
    from jobify import JobRouter

    app = Jobify(storage=False)
    router = JobRouter(prefix="reports")

    @app.task
    async def top() -> None: ...

    @router.task(name="weekly")
    async def weekly() -> None: ...

    app.include_router(router)
    assert sorted(app.tasks) == sorted(["reports:weekly", top.name])
    assert top.name.endswith(":test_tasks_lists_every_registered_task_by_full_name.<locals>.top")
    assert app.tasks[top.name] is top
    with pytest.raises(TypeError):
        app.tasks["x"] = top  # type: ignore[index]


async def test_shutdown_with_grace_lets_a_running_job_finish() -> None:
    app = Jobify(storage=False)
    started = asyncio.Event()

    @app.task
    async def slow() -> str:
        started.set()
        await asyncio.sleep(0.05)
        return "done"

    await app.startup()
    job = await slow.push()
    await started.wait()
    await app.shutdown(grace=5)
    assert job.status is JobStatus.SUCCESS
    assert job.result() == "done"


async def test_shutdown_grace_is_bounded_then_cancels() -> None:
    app = Jobify(storage=False)
    started = asyncio.Event()

    @app.task
    async def stuck() -> None:
        started.set()
        await asyncio.sleep(60)

    await app.startup()
    job = await stuck.push()
    await started.wait()
    await asyncio.wait_for(app.shutdown(grace=0.02), 5)
    assert job.status is JobStatus.CANCELLED


@pytest.mark.parametrize("grace", [-1, float("nan"), float("inf"), "1", True])
async def test_shutdown_rejects_a_bad_grace(grace: object) -> None:
    app = Jobify(storage=False)
    with pytest.raises((TypeError, ValueError)):
        await app.shutdown(grace=grace)  # type: ignore[arg-type]
