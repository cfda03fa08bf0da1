"""What PostgresStorage keeps and for how long, and what reading it costs: results for remote
waiters (read together, pruned a few per commit), run history pruned in steps."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from typing import Any

import pytest

import pgtest
from jobify.storage import PostgresStorage
from jobify.storage.base import HistoryQuery, ResultRecord, RunRecord
from jobify.storage.postgres import PRUNE_STEP
from jobify.storage.sql import postgres as sql

from .test_postgres import job


@pytest.fixture
async def schema() -> AsyncIterator[str]:
    async with pgtest.fresh_schema() as name:
        yield name


async def started(schema: str, **options: Any) -> PostgresStorage:
    storage = pgtest.storage(schema, **options)
    await storage.startup()
    return storage


async def finish(storage: PostgresStorage, ids: list[str], finished_at: float) -> None:
    await storage.save_many([job(i) for i in ids])
    claimed = await storage.claim(["t"], len(ids))
    assert len(claimed) == len(ids)
    done = await asyncio.gather(
        *(
            storage.complete(i, None, ResultRecord(i, "success", i.encode(), None, finished_at))
            for i in ids
        )
    )
    assert all(done)


async def result_count(schema: str) -> int:
    conn = await pgtest.admin()
    try:
        return int(await conn.fetchval(f'SELECT count(*) FROM "{schema}".results'))
    finally:
        await conn.close()


def test_results_are_kept_five_minutes_by_default() -> None:
    assert PostgresStorage("postgresql://h/db").results_ttl == 300.0


async def test_result_reads_asked_together_go_out_together(
    schema: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    storage = await started(schema)
    try:
        ids = [f"j{i}" for i in range(300)]
        await finish(storage, ids, time.time())
        reads: list[int] = []
        run = storage._run

        async def counting(
            method: str, template: str, values: dict[str, Any], *a: Any, **k: Any
        ) -> Any:
            if template == sql.GET_RESULTS:
                reads.append(len(values["ids"]))
            return await run(method, template, values, *a, **k)

        monkeypatch.setattr(storage, "_run", counting)
        got = await asyncio.gather(*(storage.get_result(i) for i in [*ids, "missing"]))
        assert [r.value if r else None for r in got] == [i.encode() for i in ids] + [None]
        assert sum(reads) == 301 and len(reads) <= 2  # one read, or one more for late askers
    finally:
        await storage.shutdown()


async def test_expired_results_go_a_few_per_commit_and_fresh_ones_stay(schema: str) -> None:
    storage = await started(schema, results_ttl=60.0)
    try:
        await finish(storage, [f"old{i}" for i in range(100)], time.time() - 120)
        # Each commit writing results deletes at most 2 x its results + 16 expired ones.
        await finish(storage, ["a"], time.time())
        assert await result_count(schema) == 101 - 18
        for n in range(5):
            await finish(storage, [f"b{n}"], time.time())
        assert await result_count(schema) == 6  # the old ones are gone, the fresh ones stay
        assert await storage.get_result("b4") is not None
    finally:
        await storage.shutdown()


async def test_the_history_is_pruned_in_steps_to_its_limits(schema: str) -> None:
    storage = await started(schema)
    try:
        total = 2 * PRUNE_STEP + 500
        for i in range(total):
            storage.record_run_soon(RunRecord(f"j{i}", "t", 1.0, 2.0, 10.0 + i, "success"))
        await storage.flush()
        assert await storage.prune_history(before=0.0, keep=100) == total - 100
        kept = await storage.query_history(HistoryQuery(limit=1000))
        assert [r.job_id for r in kept] == [f"j{i}" for i in range(total - 1, total - 101, -1)]
        # A run older than those pruned is still pruned (the step floor goes back).
        storage.record_run_soon(RunRecord("late", "t", 1.0, 2.0, 5.0, "success"))
        await storage.flush()
        assert await storage.prune_history(before=6.0, keep=1000) == 1
    finally:
        await storage.shutdown()
