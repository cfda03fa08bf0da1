"""Cron jobs: static and dynamic, run limits, failures, waiting, cancel and replace."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from jobhandles import status
from jobify import Cron, Jobify, JobStatus

EVERY_SECOND = "* * * * * * *"


async def test_static_cron_starts_with_the_app(app: Jobify) -> None:
    ticks: list[datetime] = []

    @app.task(cron=Cron(EVERY_SECOND, max_runs=2, args=("a",), kwargs={"b": 1}))
    async def heartbeat(a: str, b: int) -> str:
        ticks.append(datetime.now(UTC))
        return f"{a}{b}"

    async with app:
        job = app.find_job(heartbeat.name)  # job id = the task's name
        assert job is not None
        assert job.cron_expression == EVERY_SECOND
        assert status(job) is JobStatus.SCHEDULED
        first_fire = job.exec_at
        assert first_fire.microsecond == 0
        await job.wait()
        assert job.result() == "a1"  # the latest run's value
        assert status(job) is JobStatus.SCHEDULED  # between runs: it has a next fire
        assert not job.is_done()
        assert app.find_job(heartbeat.name) is job  # still scheduled
        assert job.exec_at == first_fire + timedelta(seconds=1)
        await job.wait()
        assert app.find_job(heartbeat.name) is None  # removed at max_runs
        assert status(job) is JobStatus.SUCCESS  # exhausted: final, with its last outcome
        assert job.is_done()
    assert len(ticks) == 2
    assert ticks[0] >= first_fire
    assert ticks[1] - ticks[0] > timedelta(milliseconds=500)


async def test_static_cron_from_a_string(app: Jobify) -> None:
    @app.task(cron="0 0 1 1 * 2099")
    async def new_year() -> None:
        pass

    async with app:
        job = app.find_job(new_year.name)
        assert job is not None
        assert job.exec_at == datetime(2099, 1, 1, tzinfo=UTC)


async def test_dynamic_cron_with_max_runs(app: Jobify) -> None:
    runs: list[int] = []

    @app.task
    def count(step: int) -> int:
        runs.append(step)
        return len(runs) * step

    async with app:
        job = await count.schedule(10).cron(Cron(EVERY_SECOND, max_runs=1), job_id="counter")
        assert app.find_job("counter") is job
        await job.wait()
        assert job.result() == 10
        assert job.is_done()
        assert app.find_job("counter") is None
        await app.wait_all(timeout=1.5)
    assert runs == [10]


async def test_consecutive_failures_make_the_job_permanently_failed(app: Jobify) -> None:
    fails = iter([True, False, True, True])

    @app.task
    async def sometimes() -> str:
        if next(fails):
            raise RuntimeError("fail")
        return "fine"

    async with app:
        job = await sometimes.schedule().cron(Cron(EVERY_SECOND, max_failures=2), job_id="s")
        statuses = []
        for _ in range(3):
            await job.wait()
            assert job.status is JobStatus.SCHEDULED  # between runs
            statuses.append(JobStatus.SUCCESS if job.exception is None else JobStatus.FAILED)
            assert app.find_job("s") is job  # still scheduled
        await job.wait()
        statuses.append(job.status)
        assert app.find_job("s") is None  # unscheduled
        assert str(job.exception) == "fail"
        await app.wait_all(timeout=1.5)  # nothing left to wait for
    # fail, succeed (resets the count), fail, fail: two in a row reach max_failures=2.
    assert statuses == [
        JobStatus.FAILED,
        JobStatus.SUCCESS,
        JobStatus.FAILED,
        JobStatus.PERMANENTLY_FAILED,
    ]


async def test_cancel_a_cron_job(app: Jobify) -> None:
    ran: list[int] = []

    @app.task
    async def tick() -> None:
        ran.append(1)

    async with app:
        job = await tick.schedule().cron(EVERY_SECOND, job_id="t")
        await job.cancel()
        assert job.status is JobStatus.CANCELLED
        assert app.find_job("t") is None
        await app.wait_all()
    assert ran == []


async def test_replace_keeps_the_run_count(app: Jobify) -> None:
    runs: list[str] = []

    @app.task
    async def tick(label: str) -> None:
        runs.append(label)

    async with app:
        first = await tick.schedule("old").cron(Cron(EVERY_SECOND, max_runs=2), job_id="r")
        await first.wait()
        second = await tick.schedule("new").cron(
            Cron(EVERY_SECOND, max_runs=2), job_id="r", replace=True
        )
        assert second is first  # replaced in place: the same handle, still scheduled
        assert first.status is JobStatus.SCHEDULED
        await second.wait()
        # One run was already counted: the second run reaches max_runs and removes the job.
        assert app.find_job("r") is None
    assert runs == ["old", "new"]


async def test_start_date_delays_the_first_fire(app: Jobify) -> None:
    @app.task
    async def noop() -> None:
        pass

    async with app:
        start = datetime(2098, 3, 4, 5, 6, 7, 500000, tzinfo=UTC)
        job = await noop.schedule().cron(Cron(EVERY_SECOND, start_date=start), job_id="late")
        assert job.exec_at == datetime(2098, 3, 4, 5, 6, 8, tzinfo=UTC)
        exact = datetime(2098, 3, 4, 5, 6, 7, tzinfo=UTC)
        job2 = await noop.schedule().cron(Cron(EVERY_SECOND, start_date=exact), job_id="exact")
        assert job2.exec_at == exact  # first match at/after start_date


async def test_identical_cron_with_cron_args_is_a_no_op() -> None:
    from jobify import Cron, Jobify

    app = Jobify(storage=False)

    @app.task
    async def beat(name: str) -> None:
        pass

    async with app:
        cron = Cron("0 0 1 1 *", args=("x",))
        first = await beat.schedule("ignored").cron(cron, job_id="b")
        again = await beat.schedule("ignored").cron(cron, job_id="b")
        assert again is first
