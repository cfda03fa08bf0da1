"""Behaviours of the reference system that its own test suite pins down (round 3).

Each test drives the public API only: the builder's ``push()``, ``Job.is_cron()``, replacing
a job in place, default task names (and records stored under the old ones), registration and
router inclusion errors, a cron handle after shutdown, ``State(state=...)``,
``SQLiteStorage.database``, the place of ``JobCancelledError``, ids given as enum members,
and a cancel during shutdown.
"""

from __future__ import annotations

import asyncio
import enum
import logging
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from jobhandles import status
from jobify import INJECT, Cron, Jobify, JobRouter, JobStatus, State
from jobify.exceptions import (
    ApplicationStateError,
    JobCancelledError,
    JobNotCompletedError,
    RouteAlreadyRegisteredError,
)
from jobify.middleware import BaseOuterMiddleware, CallNextOuter
from jobify.storage import SQLiteStorage

EVERY_SECOND = "* * * * * * *"
NEVER = "0 0 1 1 * 2099"


# -- 1, 2: ScheduleBuilder.push() and Job.is_cron() --------------------------------------------


async def test_schedule_push_runs_the_bound_job_now(app: Jobify) -> None:
    @app.task
    async def double(n: int) -> int:
        return n * 2

    async with app:
        job = await double.schedule(21).push()
        assert await job == 42
        with pytest.raises(TypeError, match="wrong arguments"):
            double.schedule(1, 2)  # type: ignore[call-arg]


async def test_is_cron_tells_recurring_jobs_apart(app: Jobify) -> None:
    @app.task(cron=NEVER)
    async def yearly() -> None:
        pass

    @app.task
    async def once() -> None:
        pass

    async with app:
        declared = app.find_job(yearly.name)
        assert declared is not None and declared.is_cron()
        dynamic = await once.schedule().cron(NEVER, job_id="dyn")
        assert dynamic.is_cron()
        later = await once.schedule().delay(3600)
        assert not later.is_cron()


# -- 3: replace=True updates the same handle ---------------------------------------------------


class _Counting(BaseOuterMiddleware):
    def __init__(self) -> None:
        self.calls = 0

    async def __call__(self, call_next: CallNextOuter, context: Any) -> Any:
        self.calls += 1
        return await call_next(context)


@pytest.mark.parametrize("storage", ["memory", "sqlite"])
@pytest.mark.parametrize("outer", [False, True])
async def test_replace_updates_the_existing_handle_in_place(
    tmp_path: Path, storage: str, outer: bool
) -> None:
    middleware = _Counting()
    app = Jobify(
        storage=False if storage == "memory" else SQLiteStorage(tmp_path / "jobs.db"),
        outer_middleware=[middleware] if outer else None,
    )

    @app.task
    async def work(n: int) -> int:
        return n

    async with app:
        first = await work.schedule(1).delay(3600, job_id="the-job")
        again = await work.schedule(2).delay(7200, job_id="the-job", replace=True)
        assert again is first
        assert status(first) is JobStatus.SCHEDULED  # the holder never sees CANCELLED
        assert app.find_job("the-job") is first
        assert first.exec_at > datetime.now(UTC) + timedelta(seconds=7000)
        cron = await work.schedule(3).cron(NEVER, job_id="the-cron")
        replaced = await work.schedule(4).cron("0 0 2 1 * 2099", job_id="the-cron", replace=True)
        assert replaced is cron and cron.cron_expression == "0 0 2 1 * 2099"
        assert status(cron) is JobStatus.SCHEDULED
        # The replacement is what runs, through the same handle.
        now = await work.schedule(5).push()
        assert await now == 5
        soon = await work.schedule(6).delay(3600, job_id="soon")
        moved = await work.schedule(7).delay(0, job_id="soon", replace=True)
        assert moved is soon
        assert await soon == 7
    if outer:
        assert middleware.calls == 7


# -- 4: default task names ---------------------------------------------------------------------


def test_default_task_name_is_module_and_qualname() -> None:
    app = Jobify(storage=False)
    router = JobRouter(prefix="reports")

    @app.task
    async def send() -> None:
        pass

    @router.task
    async def build() -> None:
        pass

    @router.task(name="weekly")
    async def weekly() -> None:
        pass

    app.include_router(router)
    here = test_default_task_name_is_module_and_qualname.__qualname__
    assert send.name == f"{__name__}:{here}.<locals>.send"
    # A router's prefix applies to explicit names only.
    assert build.name == f"{__name__}:{here}.<locals>.build"
    assert weekly.name == "reports:weekly"
    assert set(app.tasks) == {send.name, build.name, "reports:weekly"}


def test_same_named_functions_of_two_modules_do_not_collide() -> None:
    app = Jobify(storage=False)

    def make(module: str) -> Any:
        async def send() -> None:
            pass

        send.__module__ = module
        send.__qualname__ = "send"
        return send

    first = app.task(make("billing.emails"))
    second = app.task(make("crm.emails"))
    assert (first.name, second.name) == ("billing.emails:send", "crm.emails:send")
    with pytest.raises(RouteAlreadyRegisteredError, match=r"billing\.emails:send"):
        app.task(make("billing.emails"))


def _old_style_app(db: Path, fired: list[str], *, old: bool) -> tuple[Jobify, Any, Any]:
    """The same two tasks, named the old way (bare function names) or by default."""
    app = Jobify(storage=SQLiteStorage(db))
    router = JobRouter(prefix="mail")

    async def deliver(to: str) -> str:
        fired.append(to)
        return to

    async def beat() -> None:
        fired.append("beat")

    cron = Cron(EVERY_SECOND, max_runs=2)
    if old:
        send = router.task(name="deliver")(deliver)
        tick = app.task(name="beat", cron=cron)(beat)
    else:
        send = router.task(deliver)
        tick = app.task(cron=cron)(beat)
    app.include_router(router)
    return app, send, tick


async def test_records_stored_under_the_old_default_names_are_restored(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    db = tmp_path / "jobs.db"
    fired: list[str] = []
    app, send, tick = _old_style_app(db, fired, old=True)
    async with app:
        assert send.name == "mail:deliver" and tick.name == "beat"  # the old defaults
        await send.schedule("ann").delay(3600, job_id="later")
        soon = await send.schedule("bob").delay(0.2, job_id="soon")
        beat = app.find_job("beat")
        assert beat is not None
        await beat.wait()  # one of its two runs
        await beat.pause()  # kept with its counter until the next app resumes it
        await soon
    assert sorted(fired) == ["beat", "bob"]

    app2, send2, tick2 = _old_style_app(db, fired, old=False)
    with caplog.at_level(logging.INFO, logger="jobify"):
        async with app2:
            later = app2.find_job("later")
            assert later is not None and status(later) is JobStatus.SCHEDULED
            # The declared cron moved to its task's new name, keeping its state and its run
            # count: one run left of max_runs=2, then it is exhausted.
            assert app2.find_job("beat") is None
            renamed = app2.find_job(tick2.name)
            assert renamed is not None and status(renamed) is JobStatus.PAUSED
            await renamed.resume()
            await renamed.wait()
            assert app2.find_job(tick2.name) is None
            assert renamed.is_done()
    assert fired.count("beat") == 2
    adopted = [r.getMessage() for r in caplog.records if "old default name" in r.getMessage()]
    assert any("'later'" in m and "'mail:deliver'" in m and send2.name in m for m in adopted)
    assert any("now known by the task's name" in r.getMessage() for r in caplog.records)


async def test_an_old_name_shared_by_two_tasks_is_not_adopted(tmp_path: Path) -> None:
    db = tmp_path / "jobs.db"
    old = Jobify(storage=SQLiteStorage(db))

    @old.task(name="send")
    async def send_old() -> None:
        pass

    async with old:
        await send_old.schedule().delay(3600, job_id="ambiguous")

    new = Jobify(storage=SQLiteStorage(db))

    def make(module: str) -> Any:
        async def send() -> None:
            pass

        send.__module__ = module
        send.__qualname__ = "send"
        return send

    new.task(make("a"))
    new.task(make("b"))
    async with new:
        orphan = new.find_job("ambiguous")
        assert orphan is not None and status(orphan) is JobStatus.ORPHANED


# -- 5, 6: registration while running; registering a task again; including routers -------------


async def test_registering_while_running_is_an_application_state_error(app: Jobify) -> None:
    router = JobRouter()

    @app.task
    async def work() -> None:
        pass

    async with app:
        with pytest.raises(ApplicationStateError):

            @app.task
            async def late() -> None:
                pass

        with pytest.raises(ApplicationStateError):
            app.include_router(router)
        with pytest.raises(ApplicationStateError):
            app.task(work, name="again")


def test_a_task_registered_again_under_another_name_is_the_same_function() -> None:
    app = Jobify(storage=False)

    @app.task
    async def work(n: int) -> int:
        return n

    other = app.task(work, name="other")
    assert other is not work and other.name == "other"
    assert other.func is work.func
    assert set(app.tasks) == {work.name, "other"}
    with pytest.raises(RouteAlreadyRegisteredError):
        app.task(work)  # its default name is taken by the first registration


def test_include_router_errors_match_the_reference() -> None:
    app = Jobify(storage=False)
    other_app = Jobify(storage=False)
    router, inner = JobRouter(prefix="r"), JobRouter(prefix="i")
    router.include_router(inner)
    app.include_router(router)
    with pytest.raises(RuntimeError, match="already included"):
        app.include_router(router)
    with pytest.raises(RuntimeError, match="already included"):
        JobRouter().include_router(inner)
    with pytest.raises(RuntimeError, match="an app cannot be included"):
        app.include_router(app)  # type: ignore[arg-type]
    with pytest.raises(RuntimeError, match="an app cannot be included"):
        JobRouter().include_router(other_app)  # type: ignore[arg-type]
    with pytest.raises(RuntimeError, match="itself"):
        lone = JobRouter()
        lone.include_router(lone)
    with pytest.raises(ValueError, match="at least one router"):
        app.include_routers()
    with pytest.raises(ValueError, match="at least one router"):
        router.include_routers()
    with pytest.raises(TypeError):
        app.include_router("router")  # type: ignore[arg-type]


# -- 7: INJECT without an annotation -----------------------------------------------------------


def test_inject_without_annotation_is_a_value_error() -> None:
    app = Jobify(storage=False)
    with pytest.raises(ValueError, match="'ctx' = INJECT has no type annotation"):

        @app.task
        async def work(ctx=INJECT) -> None:  # type: ignore[no-untyped-def]
            pass

    assert dict(app.tasks) == {}


# -- 9: a cron handle after shutdown -----------------------------------------------------------


@pytest.mark.parametrize("storage", ["memory", "sqlite"])
async def test_after_shutdown_a_cron_handle_stays_scheduled_with_its_last_result(
    tmp_path: Path, storage: str
) -> None:
    app = Jobify(storage=False if storage == "memory" else SQLiteStorage(tmp_path / "j.db"))
    runs: list[int] = []

    @app.task
    async def tick() -> int:
        runs.append(1)
        return len(runs)

    async with app:
        job = await tick.schedule().cron(EVERY_SECOND, job_id="tick")
        await job.wait()
        assert job.result() == 1
    assert status(job) is JobStatus.SCHEDULED
    assert not job.is_done()
    assert job.result() == 1
    assert await job == 1  # wait() returns at once: the app has stopped


# -- 10: State(state=...) and SQLiteStorage.database -------------------------------------------


def test_state_keyword_and_database_path(tmp_path: Path) -> None:
    state = State(state={"db": "conn"})
    assert state.db == "conn" and state["db"] == "conn"
    assert State({"a": 1}).a == 1
    storage = SQLiteStorage(str(tmp_path / "x.db"))
    assert isinstance(storage.database, Path)
    assert storage.database == tmp_path / "x.db"
    assert SQLiteStorage(tmp_path / "y.db").database == tmp_path / "y.db"


# -- 11: JobCancelledError is a JobNotCompletedError -------------------------------------------


async def test_cancelled_job_result_is_caught_as_not_completed(app: Jobify) -> None:
    @app.task
    async def work() -> None:
        pass

    async with app:
        job = await work.schedule().delay(3600)
        await job.cancel()
        assert issubclass(JobCancelledError, JobNotCompletedError)
        with pytest.raises(JobNotCompletedError):
            job.result()
        with pytest.raises(JobCancelledError):
            await job


# -- 14: a str enum member as a job id ---------------------------------------------------------


class Ids(str, enum.Enum):  # noqa: UP042 (the mixin form is the point)
    NIGHTLY = "nightly"


async def test_a_str_enum_job_id_is_stored_and_found_as_its_value(tmp_path: Path) -> None:
    db = tmp_path / "jobs.db"

    def build() -> tuple[Jobify, Any]:
        app = Jobify(storage=SQLiteStorage(db))

        @app.task
        async def work() -> None:
            pass

        return app, work

    app, work = build()
    async with app:
        job = await work.schedule().cron(NEVER, job_id=Ids.NIGHTLY)
        assert type(job.id) is str and job.id == "nightly"
        assert app.find_job("nightly") is job
        assert app.find_job(Ids.NIGHTLY) is job
    app2, _ = build()
    async with app2:
        assert app2.find_job("nightly") is not None


# -- 12: a declared cron and outer middleware at startup ---------------------------------------


async def test_declared_cron_goes_through_outer_middleware_when_new_or_changed(
    tmp_path: Path,
) -> None:
    db = tmp_path / "jobs.db"

    def build(expression: str) -> tuple[Jobify, _Counting]:
        middleware = _Counting()
        app = Jobify(storage=SQLiteStorage(db), outer_middleware=[middleware])

        async def nightly() -> None:
            pass

        app.task(name="nightly", cron=expression)(nightly)
        return app, middleware

    app, seen = build(NEVER)
    async with app:
        assert app.find_job("nightly") is not None
    assert seen.calls == 1  # new: scheduled through outer middleware
    app, seen = build(NEVER)
    async with app:
        assert app.find_job("nightly") is not None
    assert seen.calls == 0  # unchanged: restored as it is
    app, seen = build("0 0 2 1 * 2099")
    async with app:
        job = app.find_job("nightly")
        assert job is not None and job.cron_expression == "0 0 2 1 * 2099"
    assert seen.calls == 1  # changed: scheduled again


async def test_in_memory_declared_cron_goes_through_outer_middleware() -> None:
    middleware = _Counting()
    app = Jobify(storage=False, outer_middleware=[middleware])

    @app.task(cron=NEVER)
    async def nightly() -> None:
        pass

    async with app:
        assert app.find_job(nightly.name) is not None
    assert middleware.calls == 1


# -- 13, 16: shutdown: a cancel meanwhile, and the running jobs it cuts ------------------------


async def test_cancel_during_shutdown_is_durable_or_raises(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    db = tmp_path / "jobs.db"
    started, cut = asyncio.Event(), asyncio.Event()
    release = asyncio.Event()
    outcome: dict[str, BaseException | None] = {}
    ran: list[str] = []

    class LateCancel:
        """A plugin whose shutdown runs once storage has closed."""

        active = True

        async def startup(self, app: Jobify) -> None:
            pass

        async def shutdown(self) -> None:
            if not self.active:
                return
            try:
                await late.cancel()
                outcome["late"] = None
            except ApplicationStateError as exc:
                outcome["late"] = exc

    plugin = LateCancel()

    def build() -> tuple[Jobify, Any, Any]:
        app = Jobify(storage=SQLiteStorage(db), plugins=[plugin])

        @app.task
        async def slow() -> None:
            started.set()
            try:
                await asyncio.sleep(3600)
            except asyncio.CancelledError:
                cut.set()
                await release.wait()  # shutdown waits here while we cancel
                raise

        @app.task
        async def work(name: str) -> None:
            ran.append(name)

        return app, slow, work

    app, slow, work = build()
    with caplog.at_level(logging.WARNING, logger="jobify"):
        await app.startup()
        running = await slow.push()
        during = await work.schedule("during").delay(3600, job_id="during")
        late = await work.schedule("late").delay(3600, job_id="late")
        await started.wait()
        stopping = asyncio.create_task(app.shutdown())
        await cut.wait()
        await during.cancel()  # shutdown is in progress: storage still open
        assert status(during) is JobStatus.CANCELLED
        release.set()
        await stopping
    assert isinstance(outcome["late"], ApplicationStateError)  # storage closed: it says so
    line = next(r.getMessage() for r in caplog.records if "shutdown cut" in r.getMessage())
    assert f"{running.id!r} ({slow.name})" in line and "run again after the next start" in line

    app2, _, _ = build()
    plugin.active = False
    async with app2:
        assert app2.find_job("during") is None  # the cancel that returned held
        assert app2.find_job("late") is not None  # the one that raised did not happen
        assert app2.find_job(running.id) is not None  # the cut job runs again
    assert ran == []


# -- 15: a timeout is one line ----------------------------------------------------------------


async def test_a_timeout_is_one_log_line_and_no_traceback_in_the_history(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    from jobify.inspection import Inspector

    db = tmp_path / "jobs.db"
    app = Jobify(storage=SQLiteStorage(db))

    @app.task(name="slow", timeout=0.05)
    async def slow() -> None:
        await asyncio.sleep(60)

    with caplog.at_level(logging.DEBUG, logger="jobify"):
        async with app:
            job = await slow.push()
            await job.wait()
    assert status(job) is JobStatus.TIMEOUT
    lines = [r for r in caplog.records if r.levelno >= logging.WARNING and job.id in r.getMessage()]
    assert len(lines) == 1, [r.getMessage() for r in lines]
    [line] = lines
    assert line.levelno == logging.ERROR and line.exc_info is None
    assert line.getMessage() == f"job {job.id!r} of task 'slow' timed out after 0.05s (attempt 1)"
    exc = job.exception
    assert exc is not None and exc.__cause__ is None and exc.__suppress_context__
    async with Inspector.from_url(f"sqlite:///{db}") as inspector:
        [run] = await inspector.list_runs(failed_only=True)
    assert run.outcome == "timeout" and run.traceback is None
    assert run.error_type == "jobify.exceptions.JobTimeoutError"
