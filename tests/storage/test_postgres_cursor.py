"""The claim's keyset cursor (jobify.storage.postgres_cursor) on the real server: a claim does
not walk the jobs finished before it, even while vacuum can remove nothing, and still finds
every job that becomes claimable below the cursor."""

from __future__ import annotations

import json
import time
from collections.abc import AsyncIterator
from typing import Any

import asyncpg
import pytest

import pgtest
from jobify.storage import PostgresStorage
from jobify.storage.sql import postgres as sql

from .test_postgres import Heard, job


@pytest.fixture
async def schema() -> AsyncIterator[str]:
    async with pgtest.fresh_schema() as name:
        yield name


async def listening(schema: str, **options: Any) -> tuple[PostgresStorage, Heard]:
    storage = pgtest.storage(schema, **options)
    heard = Heard()
    storage.set_listener(heard)
    await storage.startup()
    return storage, heard


async def claim_buffers(conn: asyncpg.Connection, schema: str, start: float) -> int:
    """Shared buffers the claim statement touches when it starts at ``start`` (rolled back)."""
    text, names = sql.bind(sql.CLAIM, f'"{schema}"')
    now = time.time()
    values = {
        "worker": "w",
        "until": now + 30,
        "due": now,
        "tasks": ["t"],
        "now": now,
        "limit": 10,
        "from": start,
    }
    tx = conn.transaction()
    await tx.start()
    try:
        plan = await conn.fetchval(
            "EXPLAIN (ANALYZE, BUFFERS, FORMAT JSON) " + text, *(values[n] for n in names)
        )
    finally:
        await tx.rollback()
    top = json.loads(plan)[0]["Plan"]
    return int(top["Shared Hit Blocks"]) + int(top["Shared Read Blocks"])


async def test_claims_skip_finished_jobs_while_vacuum_is_held_back(schema: str) -> None:
    worker, _ = await listening(schema)
    holder = await pgtest.admin()
    try:
        hold = holder.transaction()
        await hold.start()
        await holder.fetchval("SELECT txid_current()")  # vacuum may now remove nothing
        now = time.time()
        await worker.save_many([job(f"old{i}", now - 100 + i * 0.01) for i in range(2000)])
        while claimed := await worker.claim(["t"], 100):
            for record in claimed:
                assert await worker.complete(record.job_id, None, None)
        await worker.save(job("new", now - 1))
        [taken] = await worker.claim(["t"], 10)
        assert taken.job_id == "new"
        checker = await pgtest.admin()
        try:
            from_start = await claim_buffers(checker, schema, float("-inf"))
            from_cursor = await claim_buffers(checker, schema, worker.claim_cursor)
        finally:
            await checker.close()
        # From the start of the index a claim visits the 2,000 dead rows; from the cursor
        # only the few pages around the live rows.
        assert worker.claim_cursor >= now - 100 + 1999 * 0.01
        assert from_cursor * 10 < from_start, (from_cursor, from_start)
        await hold.rollback()
    finally:
        await holder.close()
        await worker.shutdown()


async def test_a_job_due_before_the_cursor_is_claimed_once_announced(schema: str) -> None:
    worker, heard = await listening(schema)
    producer = pgtest.storage(schema)
    await producer.startup()
    try:
        now = time.time()
        await worker.save_many([job(f"j{i}", now - 10 + i) for i in range(5)])
        assert len(await worker.claim(["t"], 2)) == 2
        assert worker.claim_cursor > now - 11
        await producer.save(job("early", now - 50))  # another process, earlier than the cursor
        while now - 50 not in heard.of("new"):
            await heard.wait("new")
        claimed = await worker.claim(["t"], 10)
        assert "early" in {r.job_id for r in claimed}
        await worker.save(job("earlier", now - 60))  # this process: found without waiting
        assert [r.job_id for r in await worker.claim(["t"], 10)] == ["earlier"]
    finally:
        await producer.shutdown()
        await worker.shutdown()


async def test_a_lease_that_expires_behind_the_cursor_is_taken_over(schema: str) -> None:
    worker, _ = await listening(schema)
    stale = pgtest.storage(schema)  # its first heartbeat is 10 s away
    await stale.startup()
    conn = await pgtest.admin()
    try:
        now = time.time()
        await worker.save_many([job(f"j{i}", now - 10 + i) for i in range(4)])
        [first] = await stale.claim(["t"], 1)
        assert first.job_id == "j0"
        # The worker claims past the row held elsewhere; its cursor stays at that live row.
        assert [r.job_id for r in await worker.claim(["t"], 10)] == ["j1", "j2", "j3"]
        for n in (1, 2, 3):
            assert await worker.complete(f"j{n}", None, None)
        assert await worker.claim(["t"], 10) == []
        # Its owner stops renewing: the lease runs out.
        await conn.execute(f'UPDATE "{schema}".jobs SET locked_until = 0 WHERE job_id = $1', "j0")
        assert [r.job_id for r in await worker.claim(["t"], 10)] == ["j0"]
    finally:
        await conn.close()
        await stale.shutdown()
        await worker.shutdown()


async def test_a_reestablished_listen_connection_sends_claims_back_to_the_start(
    schema: str,
) -> None:
    worker, heard = await listening(schema)
    conn = await pgtest.admin()
    try:
        now = time.time()
        await worker.save_many([job(f"j{i}", now - 10 + i) for i in range(3)])
        assert len(await worker.claim(["t"], 10)) == 3
        # A row written without its notification (as if it were lost with the connection).
        await conn.execute(
            f'INSERT INTO "{schema}".jobs (job_id, task_name, exec_at, arguments, trigger,'
            " status) VALUES ('quiet', 't', $1, 'args', 'once', 'scheduled')",
            now - 100,
        )
        assert await pgtest.terminate_backends(worker.application_name) >= 1
        await heard.wait("resync")
        assert [r.job_id for r in await worker.claim(["t"], 10)] == ["quiet"]
    finally:
        await conn.close()
        await worker.shutdown()
