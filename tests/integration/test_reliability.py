"""No lost or extra runs at the edges: replace races, shutdown races, exhausted crons, bad
writes, changed declarations (issue 9), on real SQLite files."""

from __future__ import annotations

import asyncio
import contextlib
import enum
import json
import logging
import os
import random
import sqlite3
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest

from jobify import Cron, Job, Jobify, JobStatus
from jobify.exceptions import ApplicationStateError, DuplicateJobError, StorageError
from jobify.storage import SQLiteStorage
from jobify.storage.base import JobRecord

TABLE = "jobify_schedules"


def rows(db: Path) -> dict[str, tuple[Any, ...]]:
    con = sqlite3.connect(db)
    try:
        found = con.execute(f"SELECT job_id, arguments, trigger, status FROM {TABLE}").fetchall()
    finally:
        con.close()
    return {r[0]: (json.loads(r[1]), json.loads(r[2]), r[3]) for r in found}


def seeded() -> random.Random:
    seed = int(os.environ.get("JOBIFY_TEST_SEED") or random.randrange(2**32))
    print(f"random seed: {seed} (replay with JOBIFY_TEST_SEED={seed})")
    return random.Random(seed)


# -- replacing ----------------------------------------------------------------------------


async def test_replacing_a_running_cron_leaves_only_the_new_job(tmp_path: Path) -> None:
    db = tmp_path / "jobs.db"
    started = asyncio.Event()
    release = asyncio.Event()
    runs: list[str] = []

    def build() -> Jobify:
        app = Jobify(storage=SQLiteStorage(db))

        @app.task(name="work")
        async def work(tag: str) -> None:
            runs.append(tag)
            if tag == "old":
                started.set()
                await release.wait()

        return app

    async with build() as app:
        old = await app.tasks["work"].schedule("old").cron("* * * * * * *", job_id="c")
        await started.wait()  # the old job's run is in progress
        new = (
            await app.tasks["work"]
            .schedule("new")
            .cron("*/2 * * * * * *", job_id="c", replace=True)
        )
        assert rows(db)["c"][0] == {"tag": "new"}
        release.set()
        await old.wait()  # the old run ends...
        assert old.is_done()  # ...and the old job with it: it is not armed again
        await asyncio.sleep(0.05)  # let any stray write of the old run land
        assert app.find_job("c") is new
        (args, trigger, _) = rows(db)["c"]
        assert args == {"tag": "new"} and trigger["expr"] == "*/2 * * * * * *"
        await asyncio.wait_for(new.wait(), 3)
    assert runs.count("old") == 1
    async with build() as app2:  # after a restart only the replacement exists
        job = app2.find_job("c")
        assert job is not None and job.cron_expression == "*/2 * * * * * *"


async def test_replacing_a_running_cron_on_the_same_expression_does_not_repeat_the_fire() -> None:
    app = Jobify(storage=False)
    started = asyncio.Event()
    release = asyncio.Event()
    fires: list[tuple[str, datetime]] = []

    @app.task(name="work")
    async def work(tag: str, job: Any = None) -> None:
        fires.append((tag, datetime.now(UTC).replace(microsecond=0)))
        if tag == "old":
            started.set()
            await release.wait()

    async with app:
        old = await work.schedule("old").cron("* * * * * * *", job_id="c")
        await started.wait()
        fire = old.exec_at
        new = await work.schedule("new").cron("* * * * * * *", job_id="c", replace=True)
        assert new.exec_at == fire + timedelta(seconds=1)  # takes over after the running fire
        release.set()
        await asyncio.wait_for(new.wait(), 3)
    assert [tag for tag, _ in fires] == ["old", "new"]


async def test_replacing_a_due_job_that_has_not_started_runs_only_the_new_one() -> None:
    app = Jobify(storage=False)
    ran: list[str] = []

    @app.task(name="work")
    async def work(tag: str) -> str:
        ran.append(tag)
        return tag

    async with app:
        old = await work.schedule("old").delay(0, job_id="r")
        new = await work.schedule("new").delay(0, job_id="r", replace=True)
        assert new is old  # replaced in place: the one handle follows the new job
        assert await new == "new"
    assert ran == ["new"]


async def test_many_concurrent_replaces_last_writer_wins(tmp_path: Path) -> None:
    db = tmp_path / "jobs.db"
    app = Jobify(storage=SQLiteStorage(db))

    @app.task(name="work")
    async def work(n: int) -> None:
        pass

    async with app:
        later = datetime.now(UTC) + timedelta(hours=1)
        jobs = await asyncio.gather(
            *(work.schedule(n).at(later, job_id="x", replace=True) for n in range(200))
        )
        current = app.find_job("x")
        # Each replacement updated the one handle in place: every caller holds it.
        assert all(j is current for j in jobs)
        assert current is not None and current.status is JobStatus.SCHEDULED
        assert rows(db)["x"][0] == {"n": 199}


async def test_two_durable_submits_of_one_id_exactly_one_wins(tmp_path: Path) -> None:
    app = Jobify(storage=SQLiteStorage(tmp_path / "jobs.db"))

    @app.task(name="work")
    async def work(n: int) -> None:
        pass

    async with app:
        later = datetime.now(UTC) + timedelta(hours=1)
        results = await asyncio.gather(
            work.schedule(1).at(later, job_id="same"),
            work.schedule(2).at(later, job_id="same"),
            return_exceptions=True,
        )
        errors = [r for r in results if isinstance(r, DuplicateJobError)]
        assert len(errors) == 1
        assert len(app.get_active_jobs()) == 1


# -- failing writes ---------------------------------------------------------------------


class FlakyStorage(SQLiteStorage):
    """A real SQLite store whose saves fail while ``failing`` is set (a full disk)."""

    failing = False

    async def save(self, record: JobRecord) -> None:
        if self.failing:
            raise StorageError("database or disk is full")
        await super().save(record)


async def test_a_failed_save_after_a_run_keeps_the_cron_alive_and_lands_later(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    db = tmp_path / "jobs.db"
    storage = FlakyStorage(db)
    app = Jobify(storage=storage)
    ran: list[int] = []

    @app.task(name="tick")
    async def tick() -> None:
        ran.append(1)

    with caplog.at_level(logging.ERROR, logger="jobify"):
        async with app:
            job = await tick.schedule().cron("* * * * * * *", job_id="t")
            storage.failing = True
            await asyncio.wait_for(job.wait(), 3)
            await asyncio.wait_for(job.wait(), 3)  # still firing after the failed save
            assert app.find_job("t") is job and job.status is JobStatus.SCHEDULED
            assert "saving its state failed" in caplog.text
            storage.failing = False  # space came back
            await asyncio.sleep(1.2)  # the retry (0.5 s back-off) or the next run lands
            assert rows(db)["t"][1]["runs"] >= 2
    assert len(ran) >= 2


# -- exhausted expressions and declarations -----------------------------------------------


async def test_the_last_fire_of_an_expression_runs_then_the_job_finishes(tmp_path: Path) -> None:
    db = tmp_path / "jobs.db"
    app = Jobify(storage=SQLiteStorage(db))
    ran: list[datetime] = []

    @app.task(name="once")
    async def once() -> None:
        ran.append(datetime.now(UTC))

    async with app:
        at = datetime.now(UTC).replace(microsecond=0) + timedelta(seconds=2)
        # 7 fields with a year: exactly one fire, ever.
        expression = f"{at.second} {at.minute} {at.hour} {at.day} {at.month} * {at.year}"
        job = await once.schedule().cron(expression, job_id="last")
        await asyncio.wait_for(job.wait(), 4)
        assert job.status is JobStatus.SUCCESS and job.is_done()
        assert app.find_job("last") is None
        assert rows(db) == {}
    assert len(ran) == 1


async def test_a_stored_last_fire_that_passed_while_down_runs_once_then_finishes(
    tmp_path: Path,
) -> None:
    db = tmp_path / "jobs.db"
    ran: list[int] = []
    offset = [0.0]

    def clock() -> float:
        return time.time() + offset[0]

    def build() -> Jobify:
        app = Jobify(storage=SQLiteStorage(db), clock=clock)

        @app.task(name="once")
        async def once() -> None:
            ran.append(1)

        return app

    async with build() as app:
        at = datetime.fromtimestamp(clock(), UTC).replace(microsecond=0) + timedelta(hours=1)
        expression = f"{at.second} {at.minute} {at.hour} {at.day} {at.month} * {at.year}"
        await app.tasks["once"].schedule().cron(expression, job_id="last")
    offset[0] += 2 * 3600  # its only fire happened while the app was down
    for _ in range(2):  # and a second restart finds nothing left to fail on
        async with build() as app2:
            job = app2.find_job("last")
            if job is not None:
                await asyncio.wait_for(job.wait(), 3)
                assert job.status is JobStatus.SUCCESS
    assert ran == [1]
    assert rows(db) == {}


async def test_a_changed_declaration_starts_afresh_and_a_removed_one_is_dropped(
    tmp_path: Path,
) -> None:
    db = tmp_path / "jobs.db"

    def build(cron: Cron | None, other: bool = False) -> Jobify:
        app = Jobify(storage=SQLiteStorage(db))

        @app.task(name="report", cron=cron)
        async def report() -> None:
            pass

        @app.task(name="dynamic")
        async def dynamic() -> None:
            pass

        return app

    async with build(Cron("* * * * * * *", max_runs=1)) as app:
        job = app.find_job("report")
        assert job is not None
        await asyncio.wait_for(job.wait(), 3)
        await app.tasks["dynamic"].schedule().cron("0 0 1 1 *", job_id="dyn")
    assert rows(db)["report"][2] == "finished"
    async with build(Cron("* * * * * * *", max_runs=1)) as app:
        assert app.find_job("report") is None  # unchanged: stays finished
    async with build(Cron("* * * * * * *", max_runs=2)) as app:
        job = app.find_job("report")  # changed: starts afresh
        assert job is not None and job.status is JobStatus.SCHEDULED
        assert rows(db)["report"][1]["runs"] == 0
    async with build(None) as app:  # the cron= was removed from the decorator
        assert app.find_job("report") is None
        assert app.find_job("dyn") is not None  # dynamic crons are untouched
    assert "report" not in rows(db) and "dyn" in rows(db)


async def test_a_task_switched_to_durable_false_finishes_its_stored_job(tmp_path: Path) -> None:
    db = tmp_path / "jobs.db"
    ran: list[int] = []

    def build(durable: bool) -> Jobify:
        app = Jobify(storage=SQLiteStorage(db))

        @app.task(name="work", durable=durable)
        async def work(n: int) -> None:
            ran.append(n)

        return app

    async with build(True) as app:
        await app.tasks["work"].schedule(1).delay(0.05, job_id="old")
        await app.shutdown()
    await asyncio.sleep(0.06)
    for _ in range(2):
        async with build(False) as app:
            job = app.find_job("old")
            if job is not None:
                await job.wait()
            assert app.configs.storage is not None
            await app.configs.storage.flush()
    assert ran == [1]  # ran once, and its record went with it
    assert rows(db) == {}


async def test_a_restored_job_that_no_longer_fits_its_task_is_left_and_reported(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    db = tmp_path / "jobs.db"
    ran: list[Any] = []

    app = Jobify(storage=SQLiteStorage(db))

    @app.task(name="work")
    async def work_v1(n: int) -> None:
        ran.append(n)

    async with app:
        await work_v1.schedule(1).delay(0.05, job_id="j")
        await app.shutdown()
    await asyncio.sleep(0.06)

    app2 = Jobify(storage=SQLiteStorage(db))

    @app2.task(name="work")
    async def work_v2(n: int, required_now: str) -> None:  # the signature changed
        ran.append((n, required_now))

    with caplog.at_level(logging.ERROR, logger="jobify"):
        async with app2:
            job = app2.find_job("j")
            assert job is not None and job.status is JobStatus.ORPHANED
            await asyncio.sleep(0.05)
    assert ran == []
    assert "no longer fit" in caplog.text and "'j'" in caplog.text
    assert "j" in rows(db)  # left untouched


# -- shutdown races -----------------------------------------------------------------------


async def test_pushes_racing_shutdown_are_stored_exactly_when_accepted(tmp_path: Path) -> None:
    rng = seeded()
    for round_ in range(15):
        db = tmp_path / f"race-{round_}.db"
        app = Jobify(storage=SQLiteStorage(db))

        @app.task(name="work")
        async def work(n: int) -> None:
            pass

        later = datetime.now(UTC) + timedelta(hours=1)
        await app.startup()

        async def push(n: int, later: datetime = later) -> bool:
            await asyncio.sleep(rng.random() * 0.01)
            try:
                await work.schedule(n).at(later, job_id=f"j{n}")
            except ApplicationStateError:
                return False
            return True

        pushes = [asyncio.create_task(push(n)) for n in range(100)]
        await asyncio.sleep(rng.random() * 0.01)
        await app.shutdown()
        accepted = {f"j{n}" for n, ok in enumerate(await asyncio.gather(*pushes)) if ok}
        # An error means nothing was stored; a returned job is stored (and runs after restart).
        assert set(rows(db)) == accepted, f"round {round_}"


async def test_cancels_racing_shutdown_are_durable_when_reported(tmp_path: Path) -> None:
    rng = seeded()
    for round_ in range(15):
        db = tmp_path / f"cancel-{round_}.db"
        app = Jobify(storage=SQLiteStorage(db))

        @app.task(name="work")
        async def work(n: int) -> None:
            pass

        later = datetime.now(UTC) + timedelta(hours=1)
        await app.startup()
        jobs = [await work.schedule(n).at(later, job_id=f"j{n}") for n in range(40)]

        async def cancel(job: Job[Any]) -> None:
            await asyncio.sleep(rng.random() * 0.01)
            # Too late (ApplicationStateError): the job stays stored, and does not say CANCELLED.
            with contextlib.suppress(ApplicationStateError):
                await job.cancel()

        cancels = [asyncio.create_task(cancel(job)) for job in jobs]
        await asyncio.sleep(rng.random() * 0.01)
        await app.shutdown()
        await asyncio.gather(*cancels)
        stored = set(rows(db))
        for job in jobs:
            cancelled = job.status is JobStatus.CANCELLED
            assert cancelled != (job.id in stored), (round_, job.id, job.status)


# -- bad input that must not reach storage -----------------------------------------------


async def test_a_lone_surrogate_id_fails_only_its_caller(tmp_path: Path) -> None:
    db = tmp_path / "jobs.db"
    app = Jobify(storage=SQLiteStorage(db))

    @app.task(name="work")
    async def work(n: int) -> None:
        pass

    async with app:
        later = datetime.now(UTC) + timedelta(hours=1)
        results = await asyncio.gather(
            *(work.schedule(n).at(later, job_id=f"ok{n}") for n in range(20)),
            work.schedule(99).at(later, job_id="bad\udc80id"),
            return_exceptions=True,
        )
        errors = [r for r in results if isinstance(r, BaseException)]
        assert len(errors) == 1 and isinstance(errors[0], ValueError)
        assert "surrogate" in str(errors[0])
    assert len(rows(db)) == 20


class Kind(enum.StrEnum):
    NIGHTLY = "nightly"


async def test_a_str_subclass_job_id_is_taken_as_its_value(tmp_path: Path) -> None:
    db = tmp_path / "jobs.db"
    app = Jobify(storage=SQLiteStorage(db))

    @app.task(name="work")
    async def work() -> None:
        pass

    async with app:
        job = await work.schedule().delay(3600, job_id=Kind.NIGHTLY)
        assert type(job.id) is str and job.id == "nightly"
        assert app.find_job("nightly") is job
    assert list(rows(db)) == ["nightly"]


@pytest.mark.parametrize("seconds", [1e18, 2**63, 10**12])
async def test_a_delay_past_the_end_of_time_is_refused(seconds: float) -> None:
    app = Jobify(storage=False)

    @app.task(name="work")
    async def work() -> None:
        pass

    async with app:
        with pytest.raises(ValueError, match="9999"):
            await work.schedule().delay(seconds)
        job = await work.schedule().delay(-1e18)  # the far past means now
        await job.wait()
        assert job.status is JobStatus.SUCCESS


async def test_naive_at_in_a_dst_gap_or_overlap_follows_the_cron_rule() -> None:
    berlin = ZoneInfo("Europe/Berlin")
    app = Jobify(storage=False, tz=berlin)

    @app.task(name="work")
    async def work() -> None:
        pass

    async with app:
        # 2031-03-30 02:30 does not exist in Berlin: the first instant after the gap.
        gap = await work.schedule().at(datetime(2031, 3, 30, 2, 30))
        assert gap.exec_at == datetime(2031, 3, 30, 3, 0, tzinfo=berlin)
        assert gap.exec_at.utcoffset() == timedelta(hours=2)
        # 2031-10-26 02:30 happens twice: the first occurrence, unless fold=1.
        first = await work.schedule().at(datetime(2031, 10, 26, 2, 30))
        assert first.exec_at.utcoffset() == timedelta(hours=2)
        second = await work.schedule().at(datetime(2031, 10, 26, 2, 30, fold=1))
        assert second.exec_at.utcoffset() == timedelta(hours=1)
        assert second.exec_at.timestamp() - first.exec_at.timestamp() == 3600


async def test_counting_missed_fires_after_a_long_downtime_is_cheap(tmp_path: Path) -> None:
    from jobify.crontab import create_crontab

    calls = 0

    class Counting:
        def __init__(self, expression: str) -> None:
            self.inner = create_crontab(expression)

        def next_run(self, *, now: datetime) -> datetime:
            nonlocal calls
            calls += 1
            result: datetime = self.inner.next_run(now=now)
            return result

    db = tmp_path / "jobs.db"
    wall_offset = [0.0]

    def clock() -> float:
        return time.time() + wall_offset[0]

    def build() -> Jobify:
        app = Jobify(storage=SQLiteStorage(db), cron_factory=Counting, clock=clock)

        @app.task(name="tick")
        async def tick(n: int) -> None:
            pass

        return app

    async with build() as app:
        for n in range(100):
            await app.tasks["tick"].schedule(n).cron("* * * * * * *", job_id=f"t{n}")
    wall_offset[0] += 3 * 24 * 3600  # down for three days
    calls = 0
    async with build() as app2:
        job = app2.find_job("t0")
        assert job is not None
        await asyncio.wait_for(job.wait(), 3)
        for n in range(1, 100):
            other = app2.find_job(f"t{n}")
            assert other is not None
    # ONCE per job: the latest missed fire is found directly, not by walking 259,200 fires.
    assert calls < 100 * 80


async def test_a_declared_cron_that_never_fires_again_does_not_stop_the_app(
    caplog: pytest.LogCaptureFixture,
) -> None:
    app = Jobify(storage=False)

    @app.task(name="long_gone", cron="0 0 1 1 * 2000")  # a one-off whose year has passed
    async def long_gone() -> None:
        pass

    @app.task
    async def alive() -> int:
        return 1

    with caplog.at_level(logging.WARNING, logger="jobify"):
        async with app:
            assert app.find_job("long_gone") is None
            assert await (await alive.push()) == 1
    assert "never fires again" in caplog.text and "'long_gone'" in caplog.text
