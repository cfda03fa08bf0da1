"""Routers: full names, nesting, duplicates, detached routers, phase errors, route classes."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import pytest

from jobify import Jobify, JobRouter, JobStatus
from jobify.exceptions import ApplicationStateError, RouteAlreadyRegisteredError
from jobify.router import NodeRoute, RootRoute, Route


async def noop() -> None:
    return None


def test_constructor_arguments_are_kept() -> None:
    @asynccontextmanager
    async def lifespan(router: JobRouter) -> AsyncIterator[None]:
        yield  # pragma: no cover - never entered here

    handler = lambda exc, ctx: None  # noqa: E731
    router = JobRouter(
        prefix="p",
        state={"db": 1},
        lifespan=lifespan,
        middleware=[],
        outer_middleware=[],
        exception_handlers={ValueError: handler},
    )
    assert router.prefix == "p"
    assert router.state.db == 1 and router.state["db"] == 1
    assert router.lifespan is lifespan
    assert dict(router.exception_handlers) == {ValueError: handler}
    assert JobRouter().prefix is None
    assert len(JobRouter().state) == 0


@pytest.mark.parametrize("prefix", ["", "a:b", 3, "x\udc80"])
def test_bad_prefix_is_rejected(prefix: Any) -> None:
    with pytest.raises((ValueError, TypeError), match="prefix"):
        JobRouter(prefix=prefix)


def test_full_names() -> None:
    app = Jobify(storage=False)
    top = app.task(noop)
    plain = JobRouter()
    reports = JobRouter(prefix="reports")
    analytics = JobRouter(prefix="analytics")
    users = JobRouter(prefix="users")
    unnamed = JobRouter()
    deep = JobRouter(prefix="deep")

    t_plain = plain.task(name="plain_task")(noop)
    t_reports = reports.task(name="weekly")(noop)
    t_users = users.task(name="track_logins")(noop)
    t_analytics = analytics.task(name="daily")(noop)
    t_deep = deep.task(name="x")(noop)

    analytics.include_router(users)
    analytics.include_router(unnamed)
    unnamed.include_router(deep)
    app.include_routers(plain, reports, analytics)

    assert top.name == f"{__name__}:noop"  # the default: module:qualname
    assert t_plain.name == "plain_task"
    assert t_reports.name == "reports:weekly"
    assert t_analytics.name == "analytics:daily"
    assert t_users.name == "analytics.users:track_logins"
    # A router without a prefix adds nothing to the path.
    assert t_deep.name == "analytics.deep:x"
    assert set(app.tasks) == {
        f"{__name__}:noop",
        "plain_task",
        "reports:weekly",
        "analytics:daily",
        "analytics.users:track_logins",
        "analytics.deep:x",
    }


def test_default_name_is_module_and_qualname_without_the_prefix() -> None:
    router = JobRouter(prefix="r")

    @router.task
    async def compute() -> None:
        pass

    here = "test_default_name_is_module_and_qualname_without_the_prefix.<locals>.compute"
    assert compute.name == f"{__name__}:{here}"  # a router's prefix applies to given names
    assert compute.local_name == compute.name
    assert router.task(name="compute")(compute.func).name == "r:compute"


def test_duplicate_in_one_router() -> None:
    router = JobRouter(prefix="r")
    router.task(name="x")(noop)
    with pytest.raises(RouteAlreadyRegisteredError) as info:
        router.task(name="x")(noop)
    assert info.value.name == "r:x"


def test_duplicate_on_the_app() -> None:
    app = Jobify(storage=False)
    app.task(name="x")(noop)
    with pytest.raises(RouteAlreadyRegisteredError):
        app.task(name="x")(noop)


def test_including_a_router_whose_names_clash_fails_and_changes_nothing() -> None:
    app = Jobify(storage=False)
    app.task(name="x")(noop)
    router = JobRouter()  # no prefix: its "x" is the app's "x"
    router.task(name="fresh")(noop)
    router.task(name="x")(noop)
    with pytest.raises(RouteAlreadyRegisteredError) as info:
        app.include_router(router)
    assert info.value.name == "x"
    assert set(app.tasks) == {"x"}
    app.include_router(JobRouter())  # the app is still open for routers
    router.routes.pop()  # drop the clashing task: now the router can be included once
    app.include_router(router)
    assert set(app.tasks) == {"x", "fresh"}


def test_clash_between_nested_routers_with_the_same_path() -> None:
    app = Jobify(storage=False)
    parent = JobRouter(prefix="a")
    first = JobRouter(prefix="b")
    second = JobRouter(prefix="b")
    first.task(name="t")(noop)
    second.task(name="t")(noop)
    parent.include_routers(first, second)
    with pytest.raises(RouteAlreadyRegisteredError, match=r"a\.b:t"):
        app.include_router(parent)


def test_registering_on_an_included_router_checks_the_app() -> None:
    app = Jobify(storage=False)
    app.task(name="x")(noop)
    router = JobRouter()
    app.include_router(router)
    with pytest.raises(RouteAlreadyRegisteredError):
        router.task(name="x")(noop)
    later = JobRouter()
    later.task(name="x")(noop)
    with pytest.raises(RouteAlreadyRegisteredError):
        router.include_router(later)
    assert later.parent is None


def test_a_router_is_included_once() -> None:
    app = Jobify(storage=False)
    router = JobRouter(prefix="r")
    app.include_router(router)
    with pytest.raises(RuntimeError, match="already included"):
        app.include_router(router)
    loner = JobRouter(prefix="l")
    with pytest.raises(RuntimeError, match="itself"):
        loner.include_router(loner)
    child = JobRouter(prefix="c")
    loner.include_router(child)
    with pytest.raises(RuntimeError, match="parents"):
        child.include_router(loner)
    with pytest.raises(TypeError):
        app.include_router(object())  # type: ignore[arg-type]


async def test_scheduling_a_task_of_a_detached_router_is_a_runtime_error() -> None:
    parent = JobRouter(prefix="p")
    child = JobRouter(prefix="c")

    @child.task
    async def work() -> int:
        return 1

    parent.include_router(child)  # still detached: parent is in no app
    with pytest.raises(RuntimeError, match="include_router"):
        await work.push()
    with pytest.raises(RuntimeError, match="not included"):
        work.schedule()
    assert await work() == 1  # a direct call still works

    app = Jobify(storage=False)
    app.include_router(parent)
    async with app:
        job = await work.push()
        assert await job == 1
        assert job.status is JobStatus.SUCCESS


async def test_include_or_register_after_startup_is_an_application_state_error() -> None:
    app = Jobify(storage=False)
    attached = JobRouter(prefix="a")
    app.include_router(attached)
    async with app:
        with pytest.raises(ApplicationStateError, match="before startup"):
            app.include_router(JobRouter(prefix="late"))
        late = JobRouter(prefix="late")
        with pytest.raises(ApplicationStateError):
            attached.include_router(late)
        assert late.parent is None and attached.routers == []
        with pytest.raises(ApplicationStateError):
            app.task(noop)
        with pytest.raises(ApplicationStateError):
            attached.task(noop)
    assert "late:noop" not in app.tasks


class CustomRoute(NodeRoute[Any, Any]):
    pass


class OtherRoute(RootRoute[Any, Any]):
    pass


async def test_route_class_is_honoured() -> None:
    app = Jobify(storage=False, route_class=OtherRoute)
    router = JobRouter(prefix="r", route_class=CustomRoute)
    default_router = JobRouter(prefix="d")

    on_router = router.task(name="a")(noop)
    overridden = router.task(name="b", route_class=OtherRoute)(noop)
    on_app = app.task(name="c")(noop)
    on_default = default_router.task(name="d")(noop)

    assert type(on_router) is CustomRoute
    assert type(overridden) is OtherRoute
    assert type(on_app) is OtherRoute
    assert type(on_default) is NodeRoute
    assert type(Jobify(storage=False).task(noop)) is RootRoute
    app.include_routers(router, default_router)
    async with app:
        job = await on_router.push()
        await job.wait()
        assert job.status is JobStatus.SUCCESS


async def test_nested_router_tasks_run_and_are_found() -> None:
    app = Jobify(storage=False)
    outer = JobRouter(prefix="outer")
    inner = JobRouter(prefix="inner")

    @inner.task
    async def add(a: int, b: int) -> int:
        return a + b

    outer.include_router(inner)
    app.include_router(outer)
    async with app:
        job = await add.push(2, 3)
        assert app.find_job(job.id) is job
        assert await job == 5
    assert isinstance(add, Route)
