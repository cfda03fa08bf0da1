"""SQLiteStorage's inspection reads and history writes: plans, batching, SQL details."""

from __future__ import annotations

import itertools
import math
import re
import sqlite3
from collections.abc import AsyncIterator
from contextlib import closing
from pathlib import Path
from typing import Any

import pytest

from jobify.storage import JobRecord, SQLiteStorage
from jobify.storage.base import HistoryQuery, RunRecord
from jobify.storage.sql import sqlite as sql


def record(
    job_id: str, exec_at: float = 1.0, task: str = "task", status: str = "scheduled"
) -> JobRecord:
    return JobRecord(job_id, task, exec_at, b"args", b"trigger", status)


def run(job_id: str, finished_at: float, outcome: str = "success") -> RunRecord:
    return RunRecord(job_id, "task", finished_at - 1, finished_at - 0.5, finished_at, outcome)


@pytest.fixture
async def storage(tmp_path: Path) -> AsyncIterator[SQLiteStorage]:
    store = SQLiteStorage(tmp_path / "jobs.db", table_name="t")
    await store.startup()
    try:
        yield store
    finally:
        await store.shutdown()


QUERIES = sql.SQLiteQueries.for_table("t")
"""The statements of the ``storage`` fixture (table name ``t``)."""


def plan(storage: SQLiteStorage, statement: str, params: list[Any]) -> list[str]:
    """SQLite's plan for ``statement`` on the storage's file, one line per step.

    Read through a connection of our own: a plan depends on the file's schema and indexes,
    not on the connection that asks.
    """
    uri = Path(storage.database).as_uri() + "?mode=ro"
    with closing(sqlite3.connect(uri, uri=True)) as conn:
        rows = conn.execute("EXPLAIN QUERY PLAN " + statement, params)
        return [str(row[3]) for row in rows]


FULL_SCAN = re.compile(r"^SCAN \w+$")  # a table walked row by row, without an index


async def test_every_job_page_walks_an_index_in_order(storage: SQLiteStorage) -> None:
    await storage.save_many(
        [
            record(f"id{i}", float(i), f"task{i % 5}", "scheduled" if i % 9 else "paused")
            for i in range(500)
        ]
    )
    shapes = itertools.product([False, True], [None, "scheduled", "paused"], [False, True], [0, 1])
    for task, status, before, after in shapes:
        where, bind_status = sql.jobs_where(task, status, before, bool(after))
        params: list[Any] = []
        params += ["task1"] if task else []
        params += [status] if bind_status else []
        params += [1000.0] if before else []
        params += [10.0] if after else []
        steps = plan(storage, QUERIES.page_jobs(where), [*params, 100, 10])
        assert not any(FULL_SCAN.match(step) for step in steps), (where, steps)
        assert any("COVERING INDEX" in step for step in steps), (where, steps)
        # The outer query sorts its one page; only a rare status is sorted before paging.
        sorts = sum("TEMP B-TREE" in step for step in steps)
        assert sorts <= (2 if status == "paused" and not task else 1), (where, steps)


async def test_every_history_page_and_prune_use_an_index(storage: SQLiteStorage) -> None:
    for job, task, failed, since in itertools.product([False, True], repeat=4):
        where = sql.runs_where(job, task, failed, since)
        params: list[Any] = [v for v, on in (("j", job), ("t", task), (1.0, since)) if on]
        steps = plan(storage, QUERIES.page_runs(where), [*params, 100, 0])
        assert not any(FULL_SCAN.match(step) for step in steps), (where, steps)
        # Runs finished at the same instant are put in order (RIGHT PART), then the page.
        assert sum("TEMP B-TREE FOR ORDER BY" in step for step in steps) == 1, (where, steps)
        if job:
            assert any("t_runs_job" in step for step in steps), (where, steps)
        elif not failed:
            assert any("COVERING INDEX t_runs_finished" in step for step in steps), steps
    for statement, params in (
        (QUERIES.prune_runs_through, [1.0, 5]),
        (QUERIES.prune_runs_before, [1.0]),
    ):
        (step,) = plan(storage, statement, params)
        assert "USING INDEX t_runs_finished" in step
    steps = plan(storage, QUERIES.count_jobs, [])
    assert "COVERING INDEX" in steps[0]


async def test_run_records_ride_the_group_commit_of_job_writes(storage: SQLiteStorage) -> None:
    await storage.save(record("warm-up"))
    before = storage.commit_count
    for i in range(10):
        storage.record_run_soon(run(f"job-{i}", float(i)))
    await storage.save(record("a"))
    assert storage.commit_count == before + 1
    assert len(await storage.query_history(HistoryQuery())) == 10


async def test_runs_alone_are_committed_without_anyone_waiting(storage: SQLiteStorage) -> None:
    storage.record_run_soon(run("job-1", 1.0))
    await storage.shutdown()  # commits what is queued
    await storage.startup()
    assert [r.job_id for r in await storage.query_history(HistoryQuery())] == ["job-1"]


async def test_prune_deletes_a_large_history_by_range(storage: SQLiteStorage) -> None:
    for i in range(20_000):
        storage.record_run_soon(run(f"job-{i % 100}", float(i), "failed" if i % 7 else "success"))
    await storage.flush()
    assert await storage.prune_history(before=-math.inf, keep=10_000) == 10_000
    newest = await storage.query_history(HistoryQuery(limit=10_000))
    assert [r.finished_at for r in newest] == [float(i) for i in range(19_999, 9_999, -1)]
    assert await storage.prune_history(before=15_000.0, keep=10_000) == 5_000
    assert len(await storage.query_history(HistoryQuery(limit=10_000))) == 5_000


async def test_answered_commands_are_forgotten_after_a_week(storage: SQLiteStorage) -> None:
    old = await storage.send_command("job-1", "pause")
    await storage.finish_command(old, "ok")

    # A week passes for the answer (through a connection of our own, as any tool could).
    with closing(sqlite3.connect(storage.database)) as conn, conn:
        conn.execute("UPDATE t_commands SET finished_at = finished_at - 8 * 86400")
    recent = await storage.send_command("job-2", "pause")
    await storage.finish_command(recent, "ok")  # forgets the week-old answer
    assert await storage.command_result(recent) == "ok"
    with pytest.raises(ValueError, match="no command has id"):
        await storage.command_result(old)
    newer = await storage.send_command("job-3", "pause")
    assert newer > recent  # ids are never reused
