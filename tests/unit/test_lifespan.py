"""Lifespans: app and router lifespans, order, state merging, failure half-way through startup."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from typing import Any

import pytest

from jobify import INJECT, Jobify, JobRouter, State
from jobify.exceptions import ApplicationStateError


def recording_lifespan(
    name: str, log: list[str], received: list[Any], yielded: Any = None
) -> Callable[[Any], Any]:
    @asynccontextmanager
    async def lifespan(owner: Any) -> AsyncIterator[Any]:
        received.append(owner)
        log.append(f"enter {name}")
        try:
            yield yielded
        finally:
            log.append(f"exit {name}")

    return lifespan


def failing_lifespan(name: str, log: list[str], error: BaseException) -> Callable[[Any], Any]:
    @asynccontextmanager
    async def lifespan(owner: Any) -> AsyncIterator[None]:
        log.append(f"enter {name}")
        raise error
        yield  # pragma: no cover

    return lifespan


async def test_enter_in_include_order_exit_in_reverse_with_the_right_owner() -> None:
    log: list[str] = []
    received: list[Any] = []
    app = Jobify(storage=False, lifespan=recording_lifespan("app", log, received))
    first = JobRouter(prefix="first", lifespan=recording_lifespan("first", log, received))
    child = JobRouter(prefix="child", lifespan=recording_lifespan("child", log, received))
    plain = JobRouter(prefix="plain")  # no lifespan: skipped
    second = JobRouter(prefix="second", lifespan=recording_lifespan("second", log, received))
    first.include_router(child)
    app.include_routers(first, plain, second)

    async with app:
        assert log == ["enter app", "enter first", "enter child", "enter second"]
        log.append("running")
    assert log == [
        *("enter app", "enter first", "enter child", "enter second"),
        "running",
        *("exit second", "exit child", "exit first", "exit app"),
    ]
    assert received == [app, first, child, second]


async def test_yielded_dicts_merge_into_app_and_router_state() -> None:
    app = Jobify(
        storage=False,
        lifespan=recording_lifespan("app", [], [], {"db": "pool", "n": 1}),
    )
    app.state.existing = "kept"
    router = JobRouter(
        prefix="r",
        state={"static": True},
        lifespan=recording_lifespan("r", [], [], {"client": "http"}),
    )
    bare = JobRouter(prefix="bare", lifespan=recording_lifespan("bare", [], [], None))
    seen: list[Any] = []

    @router.task
    async def work(state: State = INJECT) -> None:
        seen.append((state.db, state["n"], state.existing))

    app.include_routers(router, bare)
    async with app:
        assert dict(app.state) == {"existing": "kept", "db": "pool", "n": 1}
        assert dict(router.state) == {"static": True, "client": "http"}
        assert router.state.client == "http"
        assert len(bare.state) == 0
        await (await work.push()).wait()
    assert seen == [("pool", 1, "kept")]


async def test_router_lifespan_can_use_its_router() -> None:
    prefixes: list[str | None] = []

    @asynccontextmanager
    async def lifespan(router: JobRouter) -> AsyncIterator[dict[str, Any]]:
        prefixes.append(router.prefix)
        router.state.set_inside = True
        yield {"from_yield": router.state.static}

    router = JobRouter(prefix="reports", state={"static": 5}, lifespan=lifespan)
    app = Jobify(storage=False)
    app.include_router(router)
    async with app:
        assert prefixes == ["reports"]
        assert dict(router.state) == {"static": 5, "set_inside": True, "from_yield": 5}


async def test_an_error_in_the_body_still_exits_every_lifespan() -> None:
    log: list[str] = []
    app = Jobify(storage=False, lifespan=recording_lifespan("app", log, []))
    router = JobRouter(lifespan=recording_lifespan("router", log, []))
    app.include_router(router)
    with pytest.raises(ZeroDivisionError):
        async with app:
            1 / 0  # noqa: B018
    assert log == ["enter app", "enter router", "exit router", "exit app"]


async def test_a_failing_lifespan_aborts_startup_cleanly() -> None:
    log: list[str] = []
    error = ConnectionError("database unreachable")
    app = Jobify(storage=False, lifespan=recording_lifespan("app", log, []))
    first = JobRouter(prefix="first", lifespan=recording_lifespan("first", log, []))
    broken = JobRouter(prefix="broken", lifespan=failing_lifespan("broken", log, error))
    never = JobRouter(prefix="never", lifespan=recording_lifespan("never", log, []))
    ran: list[str] = []

    @app.task(cron="* * * * * * *")  # would fire every second if anything started
    async def tick() -> None:
        ran.append("tick")

    app.include_routers(first, broken, never)
    tasks_before = asyncio.all_tasks()

    with pytest.raises(ConnectionError) as info:
        async with app:
            raise AssertionError("the body must not run")  # pragma: no cover
    assert info.value is error
    assert log == ["enter app", "enter first", "enter broken", "exit first", "exit app"]
    await asyncio.sleep(0)
    assert asyncio.all_tasks() == tasks_before
    assert app.get_active_jobs() == []
    assert ran == []
    with pytest.raises(ApplicationStateError):
        await tick.push()
    with pytest.raises(ApplicationStateError, match="create a new Jobify"):
        await app.startup()
    await app.shutdown()  # harmless after a failed startup
    assert log[-1] == "exit app"


async def test_a_failing_app_lifespan_enters_no_router_lifespan() -> None:
    log: list[str] = []
    app = Jobify(storage=False, lifespan=failing_lifespan("app", log, KeyError("cfg")))
    app.include_router(JobRouter(lifespan=recording_lifespan("router", log, [])))
    with pytest.raises(KeyError, match="cfg"):
        await app.startup()
    assert log == ["enter app"]
