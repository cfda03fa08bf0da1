"""Durable jobs through the public API on a real SQLite file: write-through and restore."""

from __future__ import annotations

import asyncio
import json
import logging
import sqlite3
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from pydantic import BaseModel

from jobify import Cron, GracePolicy, Job, Jobify, JobStatus, MisfirePolicy
from jobify.exceptions import SerializationError, StorageError
from jobify.storage import SQLiteStorage
from jobify.typeadapter import PydanticConverter

TABLE = "jobify_schedules"


def rows(db: Path) -> list[tuple[Any, ...]]:
    con = sqlite3.connect(db)
    try:
        return con.execute(
            f"SELECT job_id, task_name, exec_at, trigger, status FROM {TABLE} ORDER BY job_id"
        ).fetchall()
    finally:
        con.close()


def make_app(db: Path, **kwargs: Any) -> tuple[Jobify, dict[str, list[Any]]]:
    app = Jobify(storage=SQLiteStorage(db), **kwargs)
    seen: dict[str, list[Any]] = {"echo": [], "tick": []}

    @app.task(name="echo")
    async def echo(value: Any) -> Any:
        seen["echo"].append(value)
        return value

    @app.task(name="volatile", durable=False)
    async def volatile(value: int) -> int:
        return value

    return app, seen


async def test_push_is_committed_and_removed_when_done(tmp_path: Path) -> None:
    db = tmp_path / "jobs.db"
    app, seen = make_app(db)
    async with app:
        job = await app.tasks["echo"].schedule(1).delay(60)
        assert [r[0] for r in rows(db)] == [job.id]  # committed when delay() returned
        done = await app.tasks["echo"].push(2)
        assert await done == 2
        assert app.configs.storage is not None
        await app.configs.storage.flush()
        assert [r[0] for r in rows(db)] == [job.id]  # the finished one-shot is removed
    assert [r[0] for r in rows(db)] == [job.id]  # shutdown leaves durable jobs in storage
    assert seen["echo"] == [2]


async def test_restore_runs_overdue_and_rearms_future(tmp_path: Path) -> None:
    db = tmp_path / "jobs.db"
    app, _ = make_app(db)
    async with app:
        echo = app.tasks["echo"]
        soon = await echo.schedule("soon").delay(0.05)
        later = await echo.schedule("later").delay(3600)
        await app.shutdown()
    # Shut down before it ran: it is still scheduled (stored), and runs after the restart.
    assert soon.status is JobStatus.SCHEDULED and not soon.is_done()
    await soon.wait()  # waiters are released: nothing more happens in this process
    await asyncio.sleep(0.1)  # let 'soon' become overdue while no app runs

    app2, seen2 = make_app(db)
    async with app2:
        restored = app2.find_job(soon.id)
        assert restored is not None
        assert await restored == "soon"
        future = app2.find_job(later.id)
        assert future is not None and future.status is JobStatus.SCHEDULED
        assert future.exec_at == later.exec_at
    assert seen2["echo"] == ["soon"]
    assert [r[0] for r in rows(db)] == [later.id]


async def test_durable_false_is_never_written(tmp_path: Path) -> None:
    db = tmp_path / "jobs.db"
    app, _ = make_app(db)
    async with app:
        job = await app.tasks["volatile"].schedule(1).delay(3600)
        assert app.find_job(job.id) is job
        assert rows(db) == []


async def test_unserializable_argument_is_rejected_and_nothing_written(tmp_path: Path) -> None:
    db = tmp_path / "jobs.db"
    app, _ = make_app(db)
    async with app:
        echo = app.tasks["echo"]
        keep = await echo.schedule("fine").delay(3600)
        with pytest.raises(SerializationError) as info:
            await echo.schedule(object()).delay(3600, job_id="bad")
        message = str(info.value)
        assert "'value'" in message and "object" in message
        assert app.find_job("bad") is None
        assert [r[0] for r in rows(db)] == [keep.id]


async def test_bad_records_are_logged_left_in_place_and_others_restore(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    db = tmp_path / "jobs.db"
    app = Jobify(storage=SQLiteStorage(db))

    @app.task(name="gone")
    async def gone() -> None:
        pass

    @app.task(name="echo")
    async def echo(value: Any) -> Any:
        return value

    async with app:
        await gone.schedule().delay(0.01, job_id="orphan")
        await echo.schedule("x").delay(0.01, job_id="garbled")
        await echo.schedule("ok").delay(0.01, job_id="good")
        await app.shutdown()
    con = sqlite3.connect(db)
    con.execute(f"UPDATE {TABLE} SET arguments = x'ff00ff' WHERE job_id = 'garbled'")
    con.commit()
    con.close()

    app2, seen2 = make_app(db)
    with caplog.at_level(logging.ERROR, logger="jobify"):
        async with app2:
            good = app2.find_job("good")
            assert good is not None
            assert await good == "ok"
            # Records that cannot run are shown as orphans; cancel() is the way to remove one.
            orphan = app2.find_job("orphan")
            garbled = app2.find_job("garbled")
            assert orphan is not None and orphan.status is JobStatus.ORPHANED
            assert garbled is not None and garbled.status is JobStatus.ORPHANED
            assert orphan not in app2.get_active_jobs()
    text = caplog.text
    assert "'orphan'" in text and "'gone'" in text and "not registered" in text
    assert "'garbled'" in text and "cannot be restored" in text
    assert "find_job('orphan').cancel()" in text  # the hint names a way that works
    assert [r[0] for r in rows(db)] == ["garbled", "orphan"]  # left untouched
    assert seen2["echo"] == ["ok"]

    app3, _ = make_app(db)
    async with app3:
        orphan = app3.find_job("orphan")
        assert orphan is not None
        await orphan.cancel()
        assert orphan.status is JobStatus.CANCELLED
        assert app3.find_job("orphan") is None
    assert [r[0] for r in rows(db)] == ["garbled"]


async def test_cron_counters_survive_restart_and_max_runs_counts_across(tmp_path: Path) -> None:
    db = tmp_path / "jobs.db"
    runs: list[str] = []

    def build() -> Jobify:
        app = Jobify(storage=SQLiteStorage(db))

        @app.task(name="tick", cron=Cron("* * * * * * *", max_runs=3))
        async def tick() -> None:
            runs.append("run")

        return app

    app = build()
    async with app:
        job = app.find_job("tick")
        assert job is not None
        await job.wait()
        assert len(runs) == 1
    trigger = json.loads(rows(db)[0][3])
    assert trigger["runs"] == 1

    app2 = build()
    async with app2:
        job2 = app2.find_job("tick")
        assert job2 is not None
        while not job2.is_done():
            await job2.wait()
        assert job2.status is JobStatus.SUCCESS
    assert len(runs) == 3
    # A declared cron that reached max_runs keeps a finished record, so that it stays
    # finished across restarts while its declaration is unchanged.
    ((job_id, _, _, _, status),) = rows(db)
    assert (job_id, status) == ("tick", "finished")
    async with build() as app3:
        assert app3.find_job("tick") is None
        await asyncio.sleep(1.2)  # a fire would have happened by now
    assert len(runs) == 3


async def test_static_cron_definition_change_updates_not_duplicates(tmp_path: Path) -> None:
    db = tmp_path / "jobs.db"

    def build(expr: str) -> Jobify:
        app = Jobify(storage=SQLiteStorage(db))

        @app.task(name="report", cron=expr)
        async def report() -> None:
            pass

        return app

    async with build("0 3 * * *"):
        pass
    assert len(rows(db)) == 1
    async with build("0 3 * * *") as app:
        job = app.find_job("report")
        assert job is not None and job.exec_at.hour == 3
    async with build("30 4 * * *") as app:
        job = app.find_job("report")
        assert job is not None and (job.exec_at.hour, job.exec_at.minute) == (4, 30)
    (row,) = rows(db)
    assert row[0] == "report" and json.loads(row[3])["expr"] == "30 4 * * *"


async def test_replace_keeps_cron_counters_when_start_date_unchanged(tmp_path: Path) -> None:
    db = tmp_path / "jobs.db"
    app = Jobify(storage=SQLiteStorage(db))

    @app.task
    async def beat() -> None:
        pass

    async with app:
        job = await beat.schedule().cron("* * * * * * *", job_id="beat")
        await job.wait()
        new = await beat.schedule().cron(
            Cron("* * * * * * *", max_runs=10), job_id="beat", replace=True
        )
        assert new is not job
        assert json.loads(rows(db)[0][3])["runs"] == 1
        start = datetime.now(UTC) + timedelta(days=1)
        await beat.schedule().cron(Cron("0 * * * *", start_date=start), job_id="beat", replace=True)
        assert json.loads(rows(db)[0][3])["runs"] == 0


async def test_permanently_failed_is_persisted_and_not_rearmed(tmp_path: Path) -> None:
    db = tmp_path / "jobs.db"

    def build() -> Jobify:
        app = Jobify(storage=SQLiteStorage(db))

        @app.task(name="broken", cron=Cron("* * * * * * *", max_failures=1))
        async def broken() -> None:
            raise RuntimeError("always")

        return app

    attempts: list[int] = []

    def build_counting() -> Jobify:
        app = Jobify(storage=SQLiteStorage(db))

        @app.task(name="broken", cron=Cron("* * * * * * *", max_failures=1))
        async def broken() -> None:
            attempts.append(1)
            raise RuntimeError("always")

        return app

    async with build_counting() as app:
        job = app.find_job("broken")
        assert job is not None
        await job.wait()
        assert job.status is JobStatus.PERMANENTLY_FAILED
        assert app.find_job("broken") is None
    ((_, _, _, _, status),) = rows(db)
    assert status == "permanently_failed"
    # Started again with the same declaration, it is not re-armed: it stays failed.
    async with build_counting() as app2:
        assert app2.find_job("broken") is None
        await asyncio.sleep(1.2)  # a fire would have happened by now
    assert attempts == [1]
    ((_, _, _, _, status),) = rows(db)
    assert status == "permanently_failed"


async def test_cancel_removes_the_record(tmp_path: Path) -> None:
    db = tmp_path / "jobs.db"
    app, _ = make_app(db)
    async with app:
        job: Job[Any] = await app.tasks["echo"].schedule(1).delay(3600)
        await job.cancel()
        assert job.status is JobStatus.CANCELLED
        assert rows(db) == []


class FakeWall:
    """Epoch seconds = real time + ``offset``: downtime is simulated by moving ``offset``."""

    def __init__(self, start: float) -> None:
        self.offset = start - time.time()

    def __call__(self) -> float:
        return time.time() + self.offset


async def test_misfire_policies_after_downtime(tmp_path: Path) -> None:
    db = tmp_path / "jobs.db"
    counts: dict[str, int] = {}
    done: dict[str, asyncio.Event] = {}
    # Fake wall time at second :05 of a minute; each cron fires at :10, :11 and :12 of that
    # minute only (the next fire is a day later).
    t0 = datetime(2031, 3, 4, 12, 30, 5, tzinfo=UTC)
    wall = FakeWall(t0.timestamp())
    expression = "10,11,12 30 12 * * * *"
    policies: dict[str, MisfirePolicy | GracePolicy] = {
        "ALL": MisfirePolicy.ALL,
        "SKIP": MisfirePolicy.SKIP,
        "ONCE": MisfirePolicy.ONCE,
        "GRACE_1H": MisfirePolicy.GRACE(timedelta(hours=1)),
        "GRACE_10S": MisfirePolicy.GRACE(timedelta(seconds=10)),
    }
    expected = {"ALL": 3, "ONCE": 1, "GRACE_1H": 1}

    def build() -> Jobify:
        app = Jobify(storage=SQLiteStorage(db), clock=wall)

        @app.task(name="hit")
        async def hit(name: str) -> None:
            counts[name] = counts.get(name, 0) + 1
            if counts[name] == expected.get(name):
                done[name].set()

        return app

    async with build() as app:
        for name, policy in policies.items():
            cron = Cron(expression, misfire_policy=policy, args=(name,))
            await app.tasks["hit"].schedule(name).cron(cron, job_id=name)
    # Down for a minute: all three fires of every job happened while the app was down.
    wall.offset += 60
    done.update({name: asyncio.Event() for name in expected})
    async with build() as app2:
        async with asyncio.timeout(5):
            for event in done.values():
                await event.wait()
        await asyncio.sleep(0.05)  # room for a wrong extra run to show up
        for name in policies:
            job = app2.find_job(name)
            assert job is not None and job.status is JobStatus.SCHEDULED
            assert job.exec_at == datetime(2031, 3, 5, 12, 30, 10, tzinfo=UTC)  # a day later
    assert counts == {"ALL": 3, "ONCE": 1, "GRACE_1H": 1}  # SKIP and GRACE_10S: none


async def test_corrupted_database_file_is_a_clear_error(tmp_path: Path) -> None:
    db = tmp_path / "jobs.db"
    db.write_bytes(b"this is not a database" * 100)
    app, _ = make_app(db)
    with pytest.raises(StorageError) as info:
        await app.startup()
    assert str(db) in str(info.value)
    assert app.get_active_jobs() == []


class Address(BaseModel):
    city: str


class User(BaseModel):
    name: str
    address: Address
    tags: list[str]


async def test_pydantic_models_round_trip_through_sqlite(tmp_path: Path) -> None:
    db = tmp_path / "jobs.db"
    received: list[Any] = []

    def build() -> Jobify:
        conv = PydanticConverter()
        app = Jobify(storage=SQLiteStorage(db), dumper=conv, loader=conv)

        @app.task(name="welcome")
        async def welcome(user: User, users: list[User]) -> str:
            received.append((user, users))
            return user.name

        return app

    alice = User(name="alice", address=Address(city="Oslo"), tags=["a"])
    bob = User(name="bob", address=Address(city="Rome"), tags=[])
    app = build()
    async with app:
        await app.tasks["welcome"].schedule(alice, [bob]).delay(0.05, job_id="w")
        await app.shutdown()
    await asyncio.sleep(0.06)
    app2 = build()
    async with app2:
        job = app2.find_job("w")
        assert job is not None
        assert await job == "alice"
    ((user, users),) = received
    assert type(user) is User and user == alice
    assert users == [bob] and type(users[0]) is User


async def test_misfire_all_records_progress_fire_by_fire(tmp_path: Path) -> None:
    """ALL runs missed fires one after another; each finished one is committed before the
    next starts, so a crash half-way would repeat only the run in progress."""
    db = tmp_path / "jobs.db"
    seen: list[tuple[int, float]] = []

    def build() -> Jobify:
        app = Jobify(storage=SQLiteStorage(db))

        @app.task(name="catch_up")
        async def catch_up() -> None:
            (row,) = rows(db)
            seen.append((json.loads(row[3])["runs"], row[2]))

        return app

    start = datetime.now(UTC).replace(microsecond=0) + timedelta(seconds=1)
    app = build()
    async with app:
        cron = Cron("* * * * * * *", misfire_policy=MisfirePolicy.ALL, start_date=start)
        await app.tasks["catch_up"].schedule().cron(cron, job_id="c")
    await asyncio.sleep((start - datetime.now(UTC)).total_seconds() + 2.2)
    async with build() as app2:
        job = app2.find_job("c")
        assert job is not None
        while len(seen) < 3:
            await job.wait()
    runs = [r for r, _ in seen[:3]]
    fires = [f for _, f in seen[:3]]
    assert runs == [0, 1, 2]
    assert fires == [start.timestamp(), start.timestamp() + 1, start.timestamp() + 2]
