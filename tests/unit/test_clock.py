"""Wall-clock guards: a clock jump re-arms timers, an early timer re-arms, idle costs one timer.

The app reads wall time from ``app._wall``; a fake clock (real time plus an adjustable
offset) is injected before startup, so the loop's monotonic clock stays real and only the
wall clock "jumps".
"""

from __future__ import annotations

import asyncio
import time
from datetime import UTC, datetime

from jobify import Cron, Jobify, JobStatus, MisfirePolicy
from jobify.scheduler import WATCHDOG_INTERVAL


class FakeWall:
    """Epoch seconds = real time + ``offset``; move ``offset`` to jump the wall clock."""

    def __init__(self) -> None:
        self.offset = 0.0

    def __call__(self) -> float:
        return time.time() + self.offset


def with_fake_wall() -> tuple[Jobify, FakeWall]:
    app = Jobify(storage=False)
    wall = FakeWall()
    app._wall = wall
    return app, wall


def live_timers(loop: asyncio.AbstractEventLoop) -> list[asyncio.TimerHandle]:
    return [h for h in loop._scheduled if not h.cancelled()]  # type: ignore[attr-defined]


async def test_forward_jump_runs_an_overdue_timer_at_the_watchdog_check() -> None:
    app, wall = with_fake_wall()
    ran = asyncio.Event()

    @app.task
    async def due() -> None:
        ran.set()

    async with app:
        assert app._scheduler.wall is wall
        job = await due.schedule().delay(30)
        wall.offset += 40  # the wall clock jumps 40 s ahead (resume, NTP step)
        await asyncio.sleep(0.02)
        assert job.status is JobStatus.SCHEDULED  # the monotonic timer is still 30 s away
        app._scheduler._check_clock()
        await asyncio.wait_for(ran.wait(), 1)
        await job.wait()
        assert job.status is JobStatus.SUCCESS


async def test_small_drift_does_not_rearm() -> None:
    app, wall = with_fake_wall()

    @app.task
    async def noop() -> None:
        pass

    async with app:
        job = await noop.schedule().delay(30)
        timer = job._entry.timer  # type: ignore[union-attr]
        wall.offset += 0.5  # below the 1 s threshold: not a jump
        app._scheduler._check_clock()
        assert job._entry.timer is timer  # type: ignore[union-attr]
        assert not timer.cancelled()  # type: ignore[union-attr]


async def test_timer_firing_early_by_wall_clock_rearms_instead_of_running() -> None:
    app, wall = with_fake_wall()
    ran: list[float] = []

    @app.task
    async def due() -> None:
        ran.append(wall())

    async with app:
        job = await due.schedule().delay(0.03)
        target = job.exec_at.timestamp()
        wall.offset -= 10  # the wall clock falls behind the monotonic one
        await asyncio.sleep(0.08)  # the monotonic timer has fired by now
        assert ran == []
        assert job.status is JobStatus.SCHEDULED
        entry = job._entry
        assert entry is not None and entry.timer is not None  # re-armed, ~10 s out
        assert entry.timer.when() - asyncio.get_running_loop().time() > 9
        wall.offset += 10
        app._scheduler.rearm_all()
        await job.wait()
        assert ran[0] >= target  # never ran before its wall-clock time


async def test_a_jump_applies_the_misfire_policy_to_skipped_cron_fires() -> None:
    app, wall = with_fake_wall()
    all_runs: list[int] = []
    once_runs: list[int] = []

    @app.task
    async def every(log: list[int]) -> None:
        log.append(1)

    async with app:
        policy_all = Cron("* * * * * * *", misfire_policy=MisfirePolicy.ALL, max_runs=5)
        policy_once = Cron("* * * * * * *", misfire_policy=MisfirePolicy.ONCE, max_runs=5)
        a = await every.schedule(all_runs).cron(policy_all, job_id="all")
        o = await every.schedule(once_runs).cron(policy_once, job_id="once")
        assert a.exec_at == o.exec_at
        first = a.exec_at.timestamp()
        # Jump so that "now" is 4.5 s past the first fire: fires +0..+4 were skipped.
        a_ran = asyncio.create_task(a.wait())
        o_ran = asyncio.create_task(o.wait())
        wall.offset += first + 4.5 - wall()
        app._scheduler._check_clock()
        await o_ran
        assert len(once_runs) == 1  # ONCE: one run for the five skipped fires
        await a_ran
        while app.find_job("all") is not None:
            await a.wait()
        assert len(all_runs) == 5  # ALL: each skipped fire, which is also its max_runs
        assert len(once_runs) == 1
        assert o.exec_at == datetime.fromtimestamp(first + 5, UTC)  # the next future fire


async def test_idle_cost_is_one_watchdog_timer(app: Jobify) -> None:
    loop = asyncio.get_running_loop()

    @app.task
    async def noop() -> None:
        pass

    before = len(live_timers(loop))
    tasks_before = asyncio.all_tasks()
    async with app:
        watchdog = app._scheduler._watchdog
        assert watchdog is not None
        assert watchdog.when() - loop.time() > WATCHDOG_INTERVAL - 1
        assert WATCHDOG_INTERVAL >= 60
        assert len(live_timers(loop)) == before + 1
        for _ in range(3):
            await noop.schedule().delay(3600)
        assert len(live_timers(loop)) == before + 4  # one call_at per job, one watchdog
        assert asyncio.all_tasks() == tasks_before  # no background task polls
        app._scheduler._check_clock()  # the watchdog re-arms itself: still exactly one
        assert app._scheduler._watchdog is not watchdog
        assert len(live_timers(loop)) == before + 4
    assert len(live_timers(loop)) == before


async def test_long_waits_stop_short_and_finish_with_a_short_timer() -> None:
    """A wait longer than 2 x PREWAKE is armed PREWAKE early (kernel timer slack grows with
    the wait), then finished with a short timer; the job still never runs early."""
    from jobify.scheduler import PREWAKE

    app = Jobify(storage=False)
    started: list[float] = []

    @app.task
    async def job() -> None:
        started.append(time.time())

    async with app:
        loop = asyncio.get_running_loop()
        handle = await job.schedule().delay(0.15)
        entry = handle._entry
        assert entry is not None and entry.timer is not None
        first_when = entry.timer.when()
        deadline_loop = loop.time() + (entry.exec_ts - time.time())
        assert abs((deadline_loop - first_when) - PREWAKE) < 0.005
        await handle.wait()
    assert started[0] >= entry.exec_ts
    assert handle.status is JobStatus.SUCCESS


async def test_jobs_due_at_one_instant_share_one_timer_and_cancel_alone() -> None:
    app = Jobify(storage=False)
    ran: list[int] = []

    @app.task
    async def job(i: int) -> None:
        ran.append(i)

    async with app:
        at = datetime.fromtimestamp(time.time() + 0.03, UTC)
        jobs = [await job.schedule(i).at(at) for i in range(5)]
        entries = [j._entry for j in jobs]
        assert all(e is not None for e in entries)
        assert len({id(e.timer) for e in entries if e is not None}) == 1  # one shared timer
        await jobs[2].cancel()
        assert jobs[2].status is JobStatus.CANCELLED
        for j in (jobs[0], jobs[1], jobs[3], jobs[4]):
            await j.wait()
        assert sorted(ran) == [0, 1, 3, 4]
        assert app._scheduler._landings == {}
