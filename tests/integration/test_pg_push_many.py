"""``push_many`` on PostgreSQL: 20,000 jobs in one statement with one notification, each run
once by the workers; a batch with one bad item stores nothing."""

from __future__ import annotations

import asyncio
from collections import Counter
from typing import Any

import pytest

import pgtest
from jobify import Jobify, JobStatus
from jobify.exceptions import SerializationError


async def test_20000_jobs_pushed_at_once_each_run_once() -> None:
    async with pgtest.fresh_schema() as schema:
        # A lease that cannot run out during the test: on a starved machine a lapsed heartbeat
        # lets a job be claimed again (the documented at-least-once case), and this test is
        # about the push. Large claims: not about how fast one worker drains 20,000 jobs.
        store = pgtest.storage(schema, lease=600.0)
        app = Jobify(storage=store, history=False, concurrency=500)
        runs: Counter[int] = Counter()

        @app.task
        async def square(n: int) -> int:
            runs[n] += 1
            return n * n

        notes: list[str] = []
        listen = await pgtest.admin()
        try:
            async with app, asyncio.timeout(300):  # a guard against a hang, not a target
                await listen.add_listener(store.channel, lambda *a: notes.append(a[3]))
                jobs = await square.push_many([(n,) for n in range(20_000)])
                assert len(jobs) == 20_000
                assert len({job.id for job in jobs}) == 20_000
                results = [await job for job in jobs]
        finally:
            await listen.close()
        assert results == [n * n for n in range(20_000)]
        assert runs == Counter(range(20_000))
        assert all(job.status is JobStatus.SUCCESS for job in jobs)
        # The write announced itself once ('n' + the earliest time), not once per job.
        assert sum(1 for note in notes if note.startswith("n")) == 1


@pytest.mark.parametrize("bad", [("x", "y"), (object(),)])
async def test_a_batch_with_one_bad_item_stores_nothing(bad: Any) -> None:
    async with pgtest.fresh_schema() as schema:
        app = Jobify(storage=pgtest.storage(schema), worker=False, history=False)

        @app.task
        async def one(n: Any) -> None:
            raise AssertionError("a producer never runs jobs")

        async with app:
            with pytest.raises((TypeError, SerializationError), match="item 1"):
                await one.push_many([(1,), bad, (3,)])
            conn = await pgtest.admin()
            try:
                count = await conn.fetchval(f'SELECT count(*) FROM "{schema}".jobs')
            finally:
                await conn.close()
            assert count == 0
