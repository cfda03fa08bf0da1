"""Pause/resume as a real, persisted state, and the run history, through the public API on
real SQLite files (issue 12)."""

from __future__ import annotations

import asyncio
import logging
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from jobify import Cron, GracePolicy, Jobify, JobStatus, MisfirePolicy, RunHistory
from jobify._history import HistoryLog
from jobify.storage import SQLiteStorage
from jobify.storage.base import HistoryQuery, RunRecord


class FakeWall:
    def __init__(self) -> None:
        self.offset = 0.0

    def __call__(self) -> float:
        return time.time() + self.offset


async def recorded(storage: Any, count: int, timeout: float = 3.0) -> list[Any]:
    """The run history once it holds ``count`` runs (it is written a little after the runs)."""
    deadline = time.monotonic() + timeout
    while True:
        runs: list[Any] = await storage.query_history(HistoryQuery())
        if len(runs) >= count or time.monotonic() > deadline:
            return runs
        await asyncio.sleep(0.02)


def status(job: Any) -> JobStatus:
    value: JobStatus = job.status
    return value


async def test_a_paused_one_shot_job_waits_then_runs_on_resume() -> None:
    app = Jobify(storage=False)
    ran: list[int] = []

    @app.task
    async def work(n: int) -> None:
        ran.append(n)

    async with app:
        job = await work.schedule(1).delay(0.05)
        await job.pause()
        assert status(job) is JobStatus.PAUSED
        await asyncio.sleep(0.1)  # its time passed while paused
        assert ran == [] and app.find_job(job.id) is job
        await job.pause()  # pausing twice is fine
        await job.resume()
        await asyncio.wait_for(job.wait(), 1)  # overdue: runs at once
    assert ran == [1] and status(job) is JobStatus.SUCCESS


@pytest.mark.parametrize(
    ("policy", "expected"),
    [
        (MisfirePolicy.ALL, 3),
        (MisfirePolicy.ONCE, 1),
        (MisfirePolicy.SKIP, 0),
        (MisfirePolicy.GRACE(timedelta(minutes=5)), 1),
        (MisfirePolicy.GRACE(timedelta(seconds=5)), 0),
    ],
)
async def test_resume_applies_the_misfire_policy_to_fires_missed_while_paused(
    policy: MisfirePolicy | GracePolicy, expected: int
) -> None:
    wall = FakeWall()
    app = Jobify(storage=False, clock=wall)
    runs: list[float] = []
    t0 = datetime(2031, 5, 5, 10, 0, 5, tzinfo=UTC)
    wall.offset = t0.timestamp() - time.time()

    @app.task
    async def tick() -> None:
        runs.append(wall())

    async with app:
        # Fires at :10, :11 and :12 of that minute only (then a day later).
        cron = Cron("10,11,12 0 10 * * * *", misfire_policy=policy)
        job = await tick.schedule().cron(cron, job_id="t")
        await job.pause()
        wall.offset += 60  # a minute passes while paused: three fires missed
        await asyncio.sleep(0.05)
        assert runs == [] and status(job) is JobStatus.PAUSED
        await job.resume()
        await asyncio.sleep(0.2)
        assert len(runs) == expected
        assert status(job) is JobStatus.SCHEDULED
        assert job.exec_at == datetime(2031, 5, 6, 10, 0, 10, tzinfo=UTC)


async def test_pause_is_persisted_and_survives_a_restart(tmp_path: Path) -> None:
    db = tmp_path / "jobs.db"
    ran: list[str] = []

    def build() -> Jobify:
        app = Jobify(storage=SQLiteStorage(db))

        @app.task(name="beat")
        async def beat(tag: str) -> None:
            ran.append(tag)

        return app

    async with build() as app:
        job = (
            await app.tasks["beat"]
            .schedule("x")
            .cron(Cron("* * * * * * *", misfire_policy=MisfirePolicy.ONCE), job_id="b")
        )
        await asyncio.wait_for(job.wait(), 3)
        await job.pause()
    before = len(ran)
    async with build() as app2:
        job2 = app2.find_job("b")
        assert job2 is not None and status(job2) is JobStatus.PAUSED
        await asyncio.sleep(1.3)  # a fire would have happened
        assert len(ran) == before  # still paused after the restart, counters kept
        await job2.resume()
        await asyncio.wait_for(job2.wait(), 3)  # the missed fires: ONCE runs one now
    assert len(ran) >= before + 1


async def test_a_pause_during_a_run_takes_effect_after_it(tmp_path: Path) -> None:
    app = Jobify(storage=SQLiteStorage(tmp_path / "jobs.db"))
    started = asyncio.Event()
    release = asyncio.Event()
    runs: list[int] = []

    @app.task
    async def slow() -> None:
        runs.append(1)
        started.set()
        await release.wait()

    async with app:
        job = await slow.schedule().cron("* * * * * * *", job_id="s")
        await started.wait()
        await job.pause()
        assert status(job) is JobStatus.RUNNING  # the run under way finishes
        waiting = asyncio.create_task(job.wait())
        await asyncio.sleep(0)  # waiting for this run, before it ends
        release.set()
        await asyncio.wait_for(waiting, 2)
        assert status(job) is JobStatus.PAUSED
        await asyncio.sleep(1.2)
        assert runs == [1]  # not armed again while paused


async def test_every_finished_run_is_recorded(tmp_path: Path) -> None:
    db = tmp_path / "jobs.db"
    app = Jobify(storage=SQLiteStorage(db))

    @app.task
    async def ok(n: int) -> int:
        return n

    def broken_helper() -> None:
        raise ValueError("bad input <script>")

    @app.task
    async def broken() -> None:
        broken_helper()

    async with app:
        assert await (await ok.push(1)) == 1
        failed = await broken.push()
        await failed.wait()
        storage = app.configs.storage
        assert storage is not None
        # Runs are gathered for a fraction of a second, then written with a group commit.
        runs = await recorded(storage, 2)
        failures = await storage.query_history(HistoryQuery(failed_only=True))
    assert sorted(r.outcome for r in runs) == ["failed", "success"]
    (failure,) = failures
    assert failure.job_id == failed.id and failure.task_name == broken.name
    assert failure.error_type == "builtins.ValueError"
    assert failure.error_message == "bad input <script>"
    assert failure.traceback is not None and "broken_helper()" in failure.traceback
    assert failure.attempts == 1 and failure.finished_at >= failure.started_at


async def test_history_off_records_nothing(tmp_path: Path) -> None:
    app = Jobify(storage=SQLiteStorage(tmp_path / "jobs.db"), history=False)

    @app.task
    async def ok() -> None:
        pass

    async with app:
        await (await ok.push()).wait()
        storage = app.configs.storage
        assert storage is not None
        await storage.flush()
        assert await storage.query_history(HistoryQuery()) == []


async def test_history_retention_prunes_by_age_and_count(tmp_path: Path) -> None:
    storage = SQLiteStorage(tmp_path / "jobs.db")
    await storage.startup()
    now = time.time()
    try:
        log = HistoryLog(storage, RunHistory(max_age=timedelta(hours=1), max_rows=3), time.time)
        for i in range(6):
            age = 7200 if i == 0 else 60 * (6 - i)  # the first one is two hours old
            finished = now - age
            storage.record_run_soon(
                RunRecord(f"j{i}", "t", finished, finished, finished, "success")
            )
        assert await log.prune() == 3  # one too old, two beyond the newest three
        kept = await storage.query_history(HistoryQuery())
        assert [r.job_id for r in kept] == ["j5", "j4", "j3"]
    finally:
        await storage.shutdown()


def test_bad_history_options_are_refused() -> None:
    with pytest.raises(ValueError, match="max_rows"):
        RunHistory(max_rows=0)
    with pytest.raises(ValueError, match="max_age"):
        RunHistory(max_age=timedelta(0))
    with pytest.raises(TypeError, match="history must be"):
        Jobify(storage=False, history="7d")  # type: ignore[arg-type]
    assert Jobify(storage=False).history is None  # nothing to record into
    assert Jobify(storage=False, history=True).history == RunHistory()


async def test_pause_of_a_finished_job_does_nothing(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, logger="jobify")
    app = Jobify(storage=False)

    @app.task
    async def ok() -> None:
        pass

    async with app:
        job = await ok.push()
        await job.wait()
        await job.pause()
        await job.resume()
        assert status(job) is JobStatus.SUCCESS
