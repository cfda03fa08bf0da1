"""Every documented call shape, written as user code, for ``mypy --strict`` to check.

Not a test module (pytest does not collect it: its name does not start with ``test_``);
``test_call_shapes.py`` runs mypy on it. It is also a valid program: ``python call_shapes.py``
runs it on an in-memory app, so the shapes checked here are shapes that work.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from typing import Any, assert_type
from zoneinfo import ZoneInfo

from jobify import (
    INJECT,
    Cron,
    CronContext,
    GracePolicy,
    Job,
    JobContext,
    Jobify,
    JobifyConfiguration,
    JobRouter,
    JobStatus,
    MisfirePolicy,
    OuterContext,
    RequestState,
    RunHistory,
    RunMode,
    ScheduleBuilder,
    SmartRetry,
    State,
)
from jobify.exceptions import (
    BaseJobifyError,
    JobCancelledError,
    JobFailedError,
    JobTimeoutError,
    NoResultError,
)
from jobify.middleware import (
    BaseMiddleware,
    BaseOuterMiddleware,
    CallNext,
    CallNextOuter,
    QueueMiddleware,
)
from jobify.router import NodeRoute, RootRoute, Route
from jobify.serializers import ExtendedJSONSerializer
from jobify.storage import SQLiteStorage

# -- middleware, outer middleware, exception handlers --------------------------------------


class Timing(BaseMiddleware):
    async def __call__(self, call_next: CallNext, context: JobContext) -> Any:
        context.request_state.started = datetime.now(UTC)
        return await call_next(context)


class Tagging(BaseOuterMiddleware):
    async def __call__(self, call_next: CallNextOuter, context: OuterContext) -> Job[Any]:
        if "word" in context.arguments:
            context.arguments["word"] = str(context.arguments["word"]).strip()
        job = await call_next(context)
        assert_type(job, Job[Any])
        return job


class Refuse(BaseOuterMiddleware):
    async def __call__(self, call_next: CallNextOuter, context: OuterContext) -> Job[Any]:
        assert context.job is not None
        return context.job  # never calls call_next: the job is CANCELLED, nothing stored


def on_value_error(exc: ValueError, context: JobContext) -> str:
    return f"handled {exc}"


async def on_key_error(exc: KeyError, context: JobContext) -> None:
    raise NoResultError("give up") from exc


@contextlib.asynccontextmanager
async def app_lifespan(app: Jobify) -> AsyncIterator[dict[str, Any]]:
    yield {"greeting": "hello"}


@contextlib.asynccontextmanager
async def router_lifespan(router: JobRouter) -> AsyncIterator[None]:
    router.state.pool = "router-pool"
    yield


class Plugin:
    async def startup(self, app: Jobify) -> None:
        pass

    async def shutdown(self) -> None:
        pass


# -- the app -------------------------------------------------------------------------------

queue = QueueMiddleware()
app = Jobify(
    tz=ZoneInfo("Europe/Berlin"),
    storage=False,
    serializer=ExtendedJSONSerializer(),
    lifespan=app_lifespan,
    middleware=[queue],
    outer_middleware=[Tagging()],
    exception_handlers={ValueError: on_value_error},
    state={"db": "app-db"},
    handle_signals=False,
    concurrency=10,
    plugins=[Plugin()],
)
other = Jobify(tz="UTC", storage=SQLiteStorage("unused.db", synchronous="full"), history=False)
third = Jobify(middleware=[QueueMiddleware(queue=asyncio.Queue(), workers=2)], history=True)
fourth = Jobify(storage=False, history=RunHistory(max_age=timedelta(days=1), max_rows=100))
app.add_middleware(Timing())
app.add_outer_middleware(Tagging())
app.add_exception_handler(KeyError, on_key_error)
configs: JobifyConfiguration = app.configs
assert_type(app.state, State)


# -- tasks: bare and with options ------------------------------------------------------------


@app.task
async def shout(word: str) -> str:
    return word.upper()


@app.task
def add(a: int, b: int = 1) -> int:
    return a + b


@app.task(
    name="billing:charge_card",
    retry=3,
    timeout=5.0,
    durable=False,
    run_mode=RunMode.THREAD,
    metadata={"priority": 5},
    exception_handlers={ValueError: on_value_error},
    middleware=[Timing()],
    outer_middleware=[Tagging()],
)
async def charge(amount: float) -> bool:
    return amount > 0


@app.task(retry=SmartRetry(retries=2, initial_delay=0, include_exceptions=(ConnectionError,)))
async def flaky() -> None:
    pass


@app.task(
    cron=Cron(
        "0 9 * * MON-FRI",
        max_runs=10,
        max_failures=3,
        misfire_policy=MisfirePolicy.GRACE(timedelta(minutes=5)),
        start_date=datetime(2030, 1, 1, tzinfo=UTC),
        tz="America/New_York",
    )
)
async def morning() -> None:
    pass


@app.task(cron="*/5 * * * *")
def every_five() -> None:
    pass


@app.task
async def introspect(
    n: int,
    context: JobContext = INJECT,
    job: Job[int] = INJECT,
    state: State = INJECT,
    scratch: RequestState = INJECT,
    config: JobifyConfiguration = INJECT,
    cron: CronContext | None = INJECT,
) -> int:
    return n


policy: GracePolicy = MisfirePolicy.GRACE(timedelta(seconds=30))
policies: list[MisfirePolicy | GracePolicy] = [
    MisfirePolicy.ALL,
    MisfirePolicy.SKIP,
    MisfirePolicy.ONCE,
    policy,
]
shout_route: Route[[str], str] = shout
add_route: Route[[int, int], int] = add
assert_type(shout.name, str)
assert_type(add(1, 2), Any)  # a direct call runs the plain function (typed Any)

# -- routers -------------------------------------------------------------------------------

reports = JobRouter(
    prefix="reports",
    state={"pool": "reports-pool"},
    lifespan=router_lifespan,
    middleware=[Timing()],
    outer_middleware=[Tagging()],
    exception_handlers={ValueError: on_value_error},
)
weekly_router = JobRouter(prefix="weekly")
reports.include_router(weekly_router)
reports.add_middleware(Timing())
reports.add_outer_middleware(Tagging())


@reports.task
async def summary(day: datetime) -> dict[str, int]:
    return {"day": day.day}


@weekly_router.task(name="orders.shipping:ship")
async def ship(order_id: int, state: State = INJECT) -> str:
    return str(state["pool"])


app.include_router(reports)
app.include_routers(JobRouter(), JobRouter(prefix="misc"))
summary_route: Route[[datetime], dict[str, int]] = summary
root_route: RootRoute[Any, Any] | None = None
node_route: NodeRoute[Any, Any] | None = None
tasks: list[str] = list(app.tasks)


# -- scheduling and the Job handle -----------------------------------------------------------


async def main() -> None:
    async with app:
        pushed = await shout.push("hi")
        assert_type(pushed, Job[str])
        value = await pushed
        assert_type(value, str)
        await pushed.wait()
        assert_type(pushed.result(), str)
        assert_type(pushed.status, JobStatus)
        assert_type(pushed.exception, BaseException | None)
        assert_type(pushed.is_done(), bool)
        assert_type(pushed.cron_expression, str | None)
        assert_type(pushed.exec_at, datetime)
        assert_type(pushed.id, str)

        builder = add.schedule(1, b=2)
        assert_type(builder, ScheduleBuilder[int])
        later = await builder.delay(3600, job_id="add-later", replace=True, force=False)
        assert_type(later, Job[int])
        at = await add.schedule(2).at(datetime(2030, 1, 1, 9, 0), job_id="add-at")
        assert_type(at, Job[int])
        now_based = await add.schedule(3).delay(10, now=datetime.now(UTC))
        assert_type(now_based, Job[int])
        recurring = await summary.schedule(datetime.now(UTC)).cron(
            Cron("@daily", tz=ZoneInfo("Asia/Tokyo")), job_id="daily-summary"
        )
        assert_type(recurring, Job[dict[str, int]])
        shipping = await ship.schedule(7).cron("0 * * * *", job_id="hourly-ship", replace=True)
        assert_type(shipping, Job[str])

        await later.pause()
        await later.resume()
        await later.cancel()
        found = app.find_job("add-at")
        assert_type(found, Job[Any] | None)
        active: list[Job[Any]] = app.get_active_jobs()
        assert active
        try:
            later.result()
        except JobCancelledError as exc:
            assert_type(exc.job_id, str)
        except (JobFailedError, JobTimeoutError, BaseJobifyError):
            pass
        with contextlib.suppress(TimeoutError):
            await app.wait_all(timeout=0.01)
    await app.shutdown(grace=1.0)


if __name__ == "__main__":
    asyncio.run(main())
