"""``task.push_many(items)``: validated together, written in one commit, run once each."""

from __future__ import annotations

import asyncio
from collections import Counter
from pathlib import Path
from typing import Any

import pytest

from jobify import Jobify, JobStatus
from jobify.exceptions import ApplicationStateError, SerializationError
from jobify.middleware import BaseOuterMiddleware, CallNextOuter
from jobify.storage import SQLiteStorage


async def test_push_many_of_5000_on_sqlite_runs_each_once_in_order(tmp_path: Path) -> None:
    app = Jobify(storage=SQLiteStorage(tmp_path / "jobs.db"))
    seen: Counter[int] = Counter()

    @app.task
    async def add(a: int, b: int = 0) -> int:
        seen[a] += 1
        return a + b

    items: list[Any] = [(i,) if i % 2 else {"a": i, "b": 1} for i in range(5000)]
    async with app, asyncio.timeout(60):
        jobs = await add.push_many(items)
        assert len(jobs) == 5000 and len({job.id for job in jobs}) == 5000
        results = [await job for job in jobs]
    assert results == [i if i % 2 else i + 1 for i in range(5000)]
    assert seen == Counter(range(5000))
    assert all(job.status is JobStatus.SUCCESS for job in jobs)


async def test_push_many_is_committed_when_it_returns(tmp_path: Path) -> None:
    app = Jobify(storage=SQLiteStorage(tmp_path / "jobs.db"))
    release = asyncio.Event()

    @app.task(name="gated")
    async def gated(n: int) -> int:
        await release.wait()  # records of one-shot jobs stay until the jobs end
        return n

    async with app, asyncio.timeout(10):
        jobs = await gated.push_many([(n,) for n in range(3)])
        assert app.configs.storage is not None
        stored = {record.job_id for record in await app.configs.storage.load()}
        assert stored == {job.id for job in jobs}
        release.set()
        assert [await job for job in jobs] == [0, 1, 2]


@pytest.mark.parametrize(
    ("bad", "error", "words"),
    [
        ((1, 2, 3), TypeError, "item 2"),
        ({"nope": 1}, TypeError, "item 2"),
        ([1], TypeError, "item 2 is a list"),
        ((object(),), SerializationError, "item 2"),
    ],
)
async def test_one_bad_item_stores_nothing(
    tmp_path: Path, bad: Any, error: type[Exception], words: str
) -> None:
    app = Jobify(storage=SQLiteStorage(tmp_path / "jobs.db"))
    ran: list[int] = []

    @app.task
    async def one(n: Any) -> None:
        ran.append(n)

    async with app:
        with pytest.raises(error, match=words):
            await one.push_many([(1,), {"n": 2}, bad, (4,)])
        storage = app.configs.storage
        assert storage is not None
        assert await storage.load() == []
        assert app.get_active_jobs() == []
        await asyncio.sleep(0.05)
    assert ran == []


async def test_outer_middleware_applies_per_job(app: Jobify) -> None:
    class Doubling(BaseOuterMiddleware):
        async def __call__(self, call_next: CallNextOuter, context: Any) -> Any:
            if context.arguments["n"] == 3:
                return None  # refused: CANCELLED, never stored or run
            context.arguments["n"] *= 10
            return await call_next(context)

    ran: list[int] = []

    @app.task
    async def one(n: int) -> int:
        ran.append(n)
        return n

    app.add_outer_middleware(Doubling())
    async with app, asyncio.timeout(10):
        jobs = await one.push_many([(1,), (2,), (3,), (4,)])
        assert jobs[2].status is JobStatus.CANCELLED
        done = [jobs[i] for i in (0, 1, 3)]
        assert [await job for job in done] == [10, 20, 40]
    assert sorted(ran) == [10, 20, 40]


async def test_push_many_of_nothing_and_before_startup(app: Jobify) -> None:
    @app.task
    async def one(n: int) -> None:
        pass

    with pytest.raises(ApplicationStateError):
        await one.push_many([(1,)])
    async with app:
        assert await one.push_many([]) == []
        assert await one.push_many(iter([(1,), (2,)])) != []
