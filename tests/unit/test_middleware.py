"""Execution middleware: order across levels, short-circuit, place in the pipeline, built once."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from jobhandles import result_of
from jobify import JobContext, Jobify, JobRouter, JobStatus
from jobify.middleware import BaseMiddleware, CallNext
from jobify.middleware._base import compose


class Recorder(BaseMiddleware):
    """Appends ``name:before`` / ``name:after`` around ``call_next`` to a shared log."""

    def __init__(self, name: str, log: list[str]) -> None:
        self.name = name
        self.log = log

    async def __call__(self, call_next: CallNext, context: JobContext) -> Any:
        self.log.append(f"{self.name}:before")
        result = await call_next(context)
        self.log.append(f"{self.name}:after")
        return result


class ShortCircuit(BaseMiddleware):
    def __init__(self, value: Any, log: list[str]) -> None:
        self.value = value
        self.log = log

    async def __call__(self, call_next: CallNext, context: JobContext) -> Any:
        self.log.append("short")
        return self.value


class ShortCircuitRaise(BaseMiddleware):
    async def __call__(self, call_next: CallNext, context: JobContext) -> Any:
        raise KeyError("mw")


async def test_order_across_app_router_nested_router_and_task() -> None:
    log: list[str] = []
    app = Jobify(storage=False, middleware=[Recorder("app1", log), Recorder("app2", log)])
    outer = JobRouter(prefix="outer", middleware=[Recorder("outer", log)])
    inner = JobRouter(prefix="inner", middleware=[Recorder("inner1", log), Recorder("inner2", log)])

    @inner.task(middleware=[Recorder("task", log)])
    async def work(x: int) -> int:
        log.append("run")
        return x * 2

    outer.include_router(inner)
    app.include_router(outer)
    async with app:
        job = await work.push(21)
        assert await job == 42
    assert log == [
        "app1:before",
        "app2:before",
        "outer:before",
        "inner1:before",
        "inner2:before",
        "task:before",
        "run",
        "task:after",
        "inner2:after",
        "inner1:after",
        "outer:after",
        "app2:after",
        "app1:after",
    ]


async def test_router_middleware_applies_only_to_its_own_subtree() -> None:
    log: list[str] = []
    app = Jobify(storage=False, middleware=[Recorder("app", log)])
    a = JobRouter(prefix="a", middleware=[Recorder("a", log)])
    b = JobRouter(prefix="b", middleware=[Recorder("b", log)])

    @a.task
    async def in_a() -> None:
        log.append("run-a")

    @b.task
    async def in_b() -> None:
        log.append("run-b")

    @app.task
    async def top() -> None:
        log.append("run-top")

    app.include_routers(a, b)
    async with app:
        await (await in_b.push()).wait()
        await (await top.push()).wait()
    assert log == [
        *("app:before", "b:before", "run-b", "b:after", "app:after"),
        *("app:before", "run-top", "app:after"),
    ]


async def test_middleware_not_calling_call_next_skips_the_job_and_sets_the_result() -> None:
    log: list[str] = []
    app = Jobify(storage=False, middleware=[Recorder("app", log), ShortCircuit("skipped", log)])
    router = JobRouter(middleware=[Recorder("router", log)])

    @router.task
    async def work() -> str:
        log.append("run")
        return "ran"

    app.include_router(router)
    async with app:
        job = await work.push()
        await job.wait()
    assert job.status is JobStatus.SUCCESS
    assert job.result() == "skipped"
    # Everything below the short-circuit, the task included, never ran.
    assert log == ["app:before", "short", "app:after"]


async def test_short_circuit_with_none_result_is_success() -> None:
    log: list[str] = []
    app = Jobify(storage=False)

    @app.task(middleware=[ShortCircuit(None, log)])
    def work() -> int:
        raise AssertionError("must not run")

    async with app:
        job = await work.push()
        await job.wait()
    assert (job.status, result_of(job), log) == (JobStatus.SUCCESS, None, ["short"])


async def test_middleware_sees_the_job_context() -> None:
    seen: list[Any] = []

    class Inspect(BaseMiddleware):
        async def __call__(self, call_next: CallNext, context: JobContext) -> Any:
            seen.append(
                (
                    context.job.id,
                    context.job.status,
                    context.runnable.name,
                    context.runnable.kwargs,
                    context.route_options["metadata"],
                    context.state["team"] == "from the app",
                    context.jobify_config is app.configs,
                )
            )
            return await call_next(context)

    app = Jobify(storage=False, middleware=[Inspect()], state={"team": "from the app"})
    router = JobRouter(prefix="r")

    @router.task(metadata={"team": "x"})
    async def work(n: int) -> int:
        return n

    app.include_router(router)
    async with app:
        job = await work.push(5)
        await job.wait()
    assert work.name.endswith("<locals>.work")  # a default name: the prefix does not apply
    assert seen == [(job.id, JobStatus.RUNNING, work.name, {"n": 5}, {"team": "x"}, True, True)]


async def test_middleware_can_change_the_call() -> None:
    class Double(BaseMiddleware):
        async def __call__(self, call_next: CallNext, context: JobContext) -> Any:
            context.runnable.kwargs = {"n": context.runnable.kwargs["n"] * 2}
            return await call_next(context)

    app = Jobify(storage=False, middleware=[Double()])

    @app.task
    async def work(n: int) -> int:
        return n

    async with app:
        assert await (await work.push(4)) == 8


async def test_middleware_error_fails_the_job() -> None:
    class Boom(BaseMiddleware):
        async def __call__(self, call_next: CallNext, context: JobContext) -> Any:
            raise LookupError("from middleware")

    app = Jobify(storage=False, middleware=[Boom()])
    ran: list[int] = []

    @app.task
    async def work() -> None:
        ran.append(1)

    async with app:
        job = await work.push()
        await job.wait()
    assert job.status is JobStatus.FAILED
    assert isinstance(job.exception, LookupError)
    assert ran == []


async def test_retry_handlers_and_timeout_wrap_the_middleware() -> None:
    """Retry re-runs the middleware, a handler sees a middleware error, timeout covers it."""
    log: list[str] = []
    attempts = 0

    class FailTwice(BaseMiddleware):
        async def __call__(self, call_next: CallNext, context: JobContext) -> Any:
            nonlocal attempts
            attempts += 1
            log.append(f"mw{attempts}")
            if attempts < 3:
                raise ValueError(attempts)
            return await call_next(context)

    class Hang(BaseMiddleware):
        async def __call__(self, call_next: CallNext, context: JobContext) -> Any:
            await asyncio.Event().wait()

    app = Jobify(storage=False)

    @app.task(retry=2, middleware=[FailTwice()])
    async def retried() -> str:
        return "ok"

    @app.task(
        middleware=[ShortCircuitRaise()],
        exception_handlers={KeyError: lambda exc, ctx: f"handled {exc.args[0]}"},
    )
    async def handled() -> str:
        return "unreached"

    @app.task(timeout=0.05, middleware=[Hang()])
    async def timed() -> None:
        return None

    async with app:
        job = await retried.push()
        assert await job == "ok"
        assert log == ["mw1", "mw2", "mw3"]
        assert await (await handled.push()) == "handled mw"
        timed_job = await timed.push()
        await timed_job.wait()
        assert timed_job.status is JobStatus.TIMEOUT


async def test_pipeline_is_composed_once_per_route_at_startup(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    composed: list[int] = []

    def counting_compose(middleware: Any, inner: Any) -> Any:
        composed.append(len(middleware))
        return compose(middleware, inner)

    # The name the execution pipeline calls (it imported it from jobify.middleware._base).
    monkeypatch.setattr("jobify._execution.compose", counting_compose)
    log: list[str] = []
    app = Jobify(storage=False, middleware=[Recorder("app", log)])
    router = JobRouter(middleware=[Recorder("router", log)])

    @router.task(middleware=[Recorder("task", log)])
    async def a() -> None:
        pass

    @app.task
    async def b() -> None:
        pass

    app.include_router(router)
    assert composed == []
    async with app:
        assert sorted(composed) == [1, 3]  # one chain per route, app+router+task for `a`
        for _ in range(5):
            await (await a.push()).wait()
            await (await b.push()).wait()
        assert sorted(composed) == [1, 3]  # no rebuild per job
    assert log.count("task:before") == 5


async def test_middleware_shutdown_is_called_once_per_instance_at_app_shutdown() -> None:
    calls: list[str] = []

    class WithShutdown(BaseMiddleware):
        def __init__(self, name: str) -> None:
            self.name = name

        async def __call__(self, call_next: CallNext, context: JobContext) -> Any:
            return await call_next(context)

        async def shutdown(self) -> None:
            calls.append(self.name)

    class SyncShutdown(BaseMiddleware):
        async def __call__(self, call_next: CallNext, context: JobContext) -> Any:
            return await call_next(context)

        def shutdown(self) -> None:  # not a coroutine function: not ours to call
            calls.append("sync")

    shared = WithShutdown("shared")
    app = Jobify(storage=False, middleware=[shared, SyncShutdown()])
    router = JobRouter(middleware=[shared, WithShutdown("router")])

    @router.task(middleware=[WithShutdown("task"), shared])
    async def work() -> None:
        pass

    app.include_router(router)
    async with app:
        await (await work.push()).wait()
        assert calls == []
    assert sorted(calls) == ["router", "shared", "task"]
