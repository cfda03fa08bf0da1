"""Wall-clock guards: steps re-plan timers, early timers re-arm, idle costs one timer.

The app reads wall time from the clock it is given (``Jobify(clock=...)``): here real time
plus an adjustable offset, so the loop's monotonic clock stays real and only the wall clock
"steps". Timers are counted with an event loop that records what it schedules.
"""

from __future__ import annotations

import asyncio
import contextvars
import time
from collections.abc import Callable, Coroutine
from datetime import UTC, datetime, timedelta
from typing import Any, TypeVarTuple

import pytest

from jobhandles import status
from jobify import Cron, Jobify, JobStatus, MisfirePolicy
from jobify._timers import PREWAKE, WATCHDOG_INTERVAL


class FakeWall:
    """Epoch seconds = real time + ``offset``; move ``offset`` to step the wall clock."""

    def __init__(self) -> None:
        self.offset = 0.0

    def __call__(self) -> float:
        return time.time() + self.offset


Ts = TypeVarTuple("Ts")


class CountingLoop(asyncio.SelectorEventLoop):
    """An event loop that remembers every timer it was asked for."""

    def __init__(self) -> None:
        super().__init__()
        self.timers: list[asyncio.TimerHandle] = []

    def call_at(
        self,
        when: float,
        callback: Callable[[*Ts], object],
        *args: *Ts,
        context: contextvars.Context | None = None,
    ) -> asyncio.TimerHandle:
        handle = super().call_at(when, callback, *args, context=context)
        self.timers.append(handle)
        return handle

    def live(self) -> list[asyncio.TimerHandle]:
        now = self.time()
        return [h for h in self.timers if not h.cancelled() and h.when() >= now]


def run_counted(body: Callable[[CountingLoop], Coroutine[Any, Any, None]]) -> None:
    with asyncio.Runner(loop_factory=CountingLoop) as runner:
        loop = runner.get_loop()
        assert isinstance(loop, CountingLoop)
        runner.run(body(loop))


def with_fake_wall() -> tuple[Jobify, FakeWall]:
    wall = FakeWall()
    return Jobify(storage=False, clock=wall), wall


async def test_forward_step_runs_an_overdue_job_when_any_timer_fires() -> None:
    app, wall = with_fake_wall()
    ran = asyncio.Event()

    @app.task
    async def due() -> None:
        ran.set()

    @app.task
    async def other() -> None:
        pass

    async with app:
        job = await due.schedule().delay(30)
        wall.offset += 40  # the wall clock steps 40 s ahead (resume, NTP step)
        await asyncio.sleep(0.02)
        assert status(job) is JobStatus.SCHEDULED  # its monotonic timer is still 30 s away
        await other.schedule().delay(0.02)  # the next timer to fire notices the step
        await asyncio.wait_for(ran.wait(), 1)
        await job.wait()
        assert status(job) is JobStatus.SUCCESS


async def test_small_drift_is_not_a_step() -> None:
    app, wall = with_fake_wall()
    ran: list[str] = []

    @app.task
    async def mark(name: str) -> None:
        ran.append(name)

    async with app:
        far = await mark.schedule("far").delay(0.5)
        wall.offset += 0.5  # below the 1 s threshold: drift, not a step
        near = await mark.schedule("near").delay(0.02)
        await near.wait()
        assert ran == ["near"]  # the far job was not planned again (it is not overdue)
        assert far.status is JobStatus.SCHEDULED
        await far.wait()
        assert ran == ["near", "far"]


async def test_a_timer_firing_early_by_wall_clock_waits_for_its_wall_time() -> None:
    app, wall = with_fake_wall()
    ran: list[float] = []

    @app.task
    async def due() -> None:
        ran.append(wall())

    async with app:
        job = await due.schedule().delay(0.03)
        target = job.exec_at.timestamp()
        wall.offset -= 0.3  # the wall clock falls behind the monotonic one (drift)
        t0 = time.monotonic()
        await job.wait()
        assert ran[0] >= target  # never ran before its wall-clock time
        assert time.monotonic() - t0 >= 0.3


async def test_backward_step_keeps_an_every_second_cron_firing() -> None:
    app, wall = with_fake_wall()
    ticks: list[float] = []

    @app.task
    async def tick() -> None:
        ticks.append(wall())

    async with app:
        job = await tick.schedule().cron("* * * * * * *", job_id="t")
        await job.wait()
        wall.offset -= 3600  # an hour back: the cron must not wait an hour
        t0 = time.monotonic()
        for _ in range(2):
            await asyncio.wait_for(job.wait(), 3)
        assert time.monotonic() - t0 < 3
        assert ticks[-1] < ticks[0]  # the latest runs happened at the new (earlier) time


async def test_backward_step_does_not_repeat_a_fixed_time_fire_that_already_ran() -> None:
    app, wall = with_fake_wall()
    runs: list[float] = []

    @app.task
    async def daily() -> None:
        runs.append(wall())

    @app.task
    async def poke() -> None:
        pass

    async with app:
        at = datetime.fromtimestamp(int(wall()) + 2, UTC)
        expression = f"{at.second} {at.minute} {at.hour} * * * *"  # once a day, fixed time
        job = await daily.schedule().cron(expression, job_id="d")
        await asyncio.wait_for(job.wait(), 4)
        assert len(runs) == 1
        wall.offset -= 1800  # 30 min back: that fire's wall time comes round again
        await (await poke.schedule().delay(0.02)).wait()  # a timer notices the step
        # Vixie's rule: a fixed-time fire that ran within the last 3 hours does not repeat.
        assert job.exec_at == at + timedelta(days=1)
        assert len(runs) == 1


async def test_a_forward_step_applies_the_misfire_policy_to_skipped_cron_fires() -> None:
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
        # Step 4.5 s ahead. The jobs' own timers, armed for the first fire, notice the step
        # when they fire: "now" is then ~4.5 s past the first fire, so fires +0..+4 were
        # skipped.
        a_ran = asyncio.create_task(a.wait())
        o_ran = asyncio.create_task(o.wait())
        assert first - wall() > 0.1
        wall.offset += 4.5
        await asyncio.wait_for(o_ran, 3)
        assert len(once_runs) == 1  # ONCE: one run for the five skipped fires
        await asyncio.wait_for(a_ran, 3)
        while app.find_job("all") is not None:
            await asyncio.wait_for(a.wait(), 3)
        assert len(all_runs) == 5  # ALL: each skipped fire, which is also its max_runs
        assert len(once_runs) == 1
        assert o.exec_at == datetime.fromtimestamp(first + 5, UTC)  # the next future fire


def test_idle_cost_is_one_watchdog_timer() -> None:
    async def body(loop: CountingLoop) -> None:
        app = Jobify(storage=False)

        @app.task
        async def noop() -> None:
            pass

        before = len(loop.live())
        tasks_before = asyncio.all_tasks()
        async with app:
            live = loop.live()
            assert len(live) == before + 1  # the watchdog
            assert live[-1].when() - loop.time() > WATCHDOG_INTERVAL - 1
            assert WATCHDOG_INTERVAL >= 60
            for _ in range(3):
                await noop.schedule().delay(3600)
            assert len(loop.live()) == before + 4  # one call_at per job, one watchdog
            assert asyncio.all_tasks() == tasks_before  # no background task polls
        assert len(loop.live()) == before

    run_counted(body)


def test_long_waits_stop_short_and_finish_with_a_short_timer() -> None:
    """A wait longer than 2 x PREWAKE is armed PREWAKE early (kernel timer slack grows with
    the wait), then finished with a short timer; the job still never runs early."""

    async def body(loop: CountingLoop) -> None:
        app = Jobify(storage=False)
        started: list[float] = []

        @app.task
        async def job() -> None:
            started.append(time.time())

        async with app:
            armed_before = len(loop.timers)
            handle = await job.schedule().delay(0.15)
            first = loop.timers[armed_before]
            deadline_loop = loop.time() + (handle.exec_at.timestamp() - time.time())
            assert abs((deadline_loop - first.when()) - PREWAKE) < 0.005
            await handle.wait()
            assert len(loop.timers) == armed_before + 2  # the long wait, then the last stretch
        assert started[0] >= handle.exec_at.timestamp()
        assert handle.status is JobStatus.SUCCESS

    run_counted(body)


def test_jobs_due_at_one_instant_share_one_timer_and_cancel_alone() -> None:
    async def body(loop: CountingLoop) -> None:
        app = Jobify(storage=False)
        ran: list[int] = []

        @app.task
        async def job(i: int) -> None:
            ran.append(i)

        async with app:
            before = len(loop.live())
            at = datetime.fromtimestamp(time.time() + 0.03, UTC)
            jobs = [await job.schedule(i).at(at) for i in range(5)]
            assert len(loop.live()) == before + 1  # one shared timer for the five
            await jobs[2].cancel()
            assert jobs[2].status is JobStatus.CANCELLED
            assert len(loop.live()) == before + 1  # the others still wait on it
            for j in (jobs[0], jobs[1], jobs[3], jobs[4]):
                await j.wait()
            assert sorted(ran) == [0, 1, 3, 4]
            assert len(loop.live()) == before

    run_counted(body)


@pytest.mark.parametrize(
    "policy", [MisfirePolicy.SKIP, MisfirePolicy.GRACE(timedelta(0))], ids=["skip", "grace0"]
)
async def test_fires_skipped_by_a_small_forward_step_are_missed_not_on_time(
    policy: Any,
) -> None:
    # A 1.5 s step: past the step threshold, yet the latest skipped fire is only ~0.5 s old,
    # within the 1 s on-time tolerance of a fire that is merely late. Fires skipped by a step
    # are missed fires, so SKIP and GRACE(0) drop them; treated as "late but on time" they
    # would run at once.
    app, wall = with_fake_wall()
    ran_at: list[float] = []

    @app.task
    async def tick() -> None:
        ran_at.append(wall())

    async with app:
        job = await tick.schedule().cron(Cron("* * * * * * *", misfire_policy=policy), job_id="t")
        first = job.exec_at.timestamp()
        while first - wall() < 0.3:  # room to step before the first fire's timer
            await job.wait()
            first = job.exec_at.timestamp()
        ran_at.clear()
        wall.offset += 1.5  # fires `first` and `first + 1` are skipped by the step
        await asyncio.wait_for(job.wait(), 5)
        assert ran_at, "the cron stopped firing"
        assert ran_at[0] >= first + 2 - 0.05  # neither skipped fire ran; the next one did
