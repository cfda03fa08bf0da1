"""Transactional enqueue on PostgreSQL: a job pushed on the caller's own connection exists
only if the caller's transaction commits (then it runs once); rolled back, it never existed."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy.ext.asyncio import AsyncSession, create_async_engine

import pgtest
from jobify import Jobify, JobStatus
from jobify.exceptions import DuplicateJobError, JobCancelledError
from jobify.storage import SQLiteStorage


class Rollback(Exception):
    pass


@pytest.fixture
async def cluster() -> AsyncIterator[tuple[Jobify, Any, list[int], Any]]:
    """(a worker app, its task, the values it ran, a connection to the same database)."""
    async with pgtest.fresh_schema() as schema:
        app = Jobify(storage=pgtest.storage(schema), history=False)
        ran: list[int] = []

        @app.task(name="record")
        async def record(n: int) -> int:
            ran.append(n)
            return n

        conn = await pgtest.admin()
        try:
            async with app:
                yield app, record, ran, conn
        finally:
            await conn.close()


async def _rows(conn: Any, app: Jobify) -> int:
    storage: Any = app.configs.storage
    count: int = await conn.fetchval(f'SELECT count(*) FROM "{storage.schema}".jobs')
    return count


async def test_a_rolled_back_push_never_existed(cluster: Any) -> None:
    app, record, ran, conn = cluster
    with pytest.raises(Rollback):
        async with conn.transaction():
            job = await record.schedule(1).push(connection=conn)
            assert await _rows(conn, app) == 1  # visible inside the transaction only
            raise Rollback
    async with asyncio.timeout(10):
        await job.wait()  # the handle learns that the transaction rolled back
    assert job.status is JobStatus.CANCELLED
    with pytest.raises(JobCancelledError):
        job.result()
    assert await _rows(conn, app) == 0
    # A job pushed afterwards runs and is the only run: the rolled back one never does.
    assert await (await record.push(2)) == 2
    assert ran == [2]


async def test_a_committed_push_runs_once_after_the_commit(cluster: Any) -> None:
    _app, record, ran, conn = cluster
    tx = conn.transaction()
    await tx.start()
    job = await record.schedule(7).push(connection=conn)
    # Not committed yet: no worker can see it (a job pushed now runs, this one does not).
    assert await (await record.push(0)) == 0
    assert ran == [0]
    await tx.commit()
    async with asyncio.timeout(10):
        assert await job == 7
    assert ran == [0, 7]
    assert job.status is JobStatus.SUCCESS


async def test_at_and_delay_take_a_connection_and_autocommit_works(cluster: Any) -> None:
    _app, record, ran, conn = cluster
    soon = datetime.now(UTC) + timedelta(seconds=0.2)
    async with conn.transaction():
        at_job = await record.schedule(1).at(soon, connection=conn)
        delayed = await record.schedule(2).delay(0.1, connection=conn)
    plain = await record.schedule(3).push(connection=conn)  # no transaction: its own commit
    async with asyncio.timeout(10):
        assert [await at_job, await delayed, await plain] == [1, 2, 3]
    assert sorted(ran) == [1, 2, 3]


async def test_an_id_in_use_is_a_duplicate_and_the_transaction_goes_on(cluster: Any) -> None:
    _app, record, ran, conn = cluster
    first = await record.schedule(1).delay(3600, job_id="mine")
    async with conn.transaction():
        with pytest.raises(DuplicateJobError):
            await record.schedule(2).delay(0, job_id="mine", connection=conn)
        other = await record.schedule(3).push(connection=conn)  # the transaction is usable
    async with asyncio.timeout(10):
        assert await other == 3
    await first.cancel()
    assert ran == [3]


async def _driver_connection(session: AsyncSession) -> Any:
    """The recipe of the docs: the asyncpg connection under an AsyncSession's transaction."""
    connection = await session.connection()
    # SQLAlchemy sends BEGIN with its first statement, not before: make sure it was sent,
    # or the job would be committed on its own, outside the session's transaction.
    await connection.exec_driver_sql("SELECT 1")
    raw = await connection.get_raw_connection()
    return raw.driver_connection


async def test_sqlalchemy_async_session_recipe(cluster: Any) -> None:
    _app, record, ran, _conn = cluster
    url = pgtest.DSN.replace("postgresql://", "postgresql+asyncpg://", 1)
    engine = create_async_engine(url)
    try:
        async with AsyncSession(engine) as session:
            async with session.begin():
                job = await record.schedule(5).push(connection=await _driver_connection(session))
            with pytest.raises(Rollback):
                async with session.begin():
                    dropped = await record.schedule(6).push(
                        connection=await _driver_connection(session)
                    )
                    raise Rollback
    finally:
        await engine.dispose()
    async with asyncio.timeout(10):
        assert await job == 5
        await dropped.wait()
    assert dropped.status is JobStatus.CANCELLED
    assert ran == [5]


async def test_other_stores_refuse_a_connection(tmp_path: Path) -> None:
    app = Jobify(storage=SQLiteStorage(tmp_path / "jobs.db"))

    @app.task
    async def one(n: int) -> None:
        pass

    async with app:
        with pytest.raises(TypeError, match="needs a PostgreSQL store"):
            await one.schedule(1).push(connection=object())
        assert app.get_active_jobs() == []
