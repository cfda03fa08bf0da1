"""PostgresStorage under faults a worker must survive: rows locked elsewhere, the due
boundary on the app's clock, heartbeats that fail or find a claim taken, notifications that
never come, a LISTEN connection that is killed, backends terminated under load."""

from __future__ import annotations

import asyncio
import logging
import socket
import time
from collections.abc import AsyncIterator, Callable

import asyncpg
import pytest

import pgtest
from jobify.exceptions import StorageError
from jobify.storage import PostgresStorage
from jobify.storage.base import JobRecord
from jobify.storage.postgres_listen import KEEPALIVE, listening_connection
from jobify.storage.sql import postgres as sql

from .test_postgres import Heard, job


@pytest.fixture
async def schema() -> AsyncIterator[str]:
    async with pgtest.fresh_schema() as name:
        yield name


@pytest.fixture
async def a(schema: str) -> AsyncIterator[PostgresStorage]:
    storage = pgtest.storage(schema)
    await storage.startup()
    try:
        yield storage
    finally:
        await storage.shutdown()


async def until(predicate: Callable[[], bool], timeout: float = 10.0) -> None:
    """Wait for ``predicate`` (checked on every loop turn, a few ms apart)."""
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError("timed out")
        await asyncio.sleep(0.01)


async def test_a_claim_skips_a_row_locked_elsewhere_without_waiting(
    a: PostgresStorage,
) -> None:
    now = time.time()
    await a.save_many([job("held", now - 3), job("free-1", now - 2), job("free-2", now - 1)])
    conn = await pgtest.admin()
    try:
        async with conn.transaction():
            await conn.execute(
                f'SELECT 1 FROM "{a.schema}".jobs WHERE job_id = $1 FOR UPDATE', "held"
            )
            claimed = await asyncio.wait_for(a.claim(["t"], 10), 5)
            assert [r.job_id for r in claimed] == ["free-1", "free-2"]
    finally:
        await conn.close()
    assert [r.job_id for r in await a.claim(["t"], 10)] == ["held"]  # lock gone: claimable


async def test_the_due_boundary_is_on_the_app_clock_and_inclusive(a: PostgresStorage) -> None:
    at = 1_800_000_000.5
    await a.save_many([job("on-time", at), job("a-hair-later", at + 0.001)])
    a.use_clock(lambda: at)
    assert [r.job_id for r in await a.claim(["t"], 10)] == ["on-time"]
    a.use_clock(lambda: at + 0.001)
    assert [r.job_id for r in await a.claim(["t"], 10)] == ["a-hair-later"]


async def test_a_claim_taken_over_is_dropped_a_failed_heartbeat_is_not(
    schema: str,
    a: PostgresStorage,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    slow = pgtest.storage(schema, lease=0.6)  # beats every 0.2 s
    await slow.startup()
    try:
        await slow.save_many([job("kept"), job("taken")])
        assert {r.job_id for r in await slow.claim(["t"], 10)} == {"kept", "taken"}
        assert slow.holds("kept") and slow.holds("taken")
        real_run = slow._run
        beats = 0

        async def failing_beat(method: str, template: str, *args: object, **kw: object) -> object:
            nonlocal beats
            if template is sql.HEARTBEAT:
                beats += 1
                raise StorageError("the server is slow")
            return await real_run(method, template, *args, **kw)  # type: ignore[arg-type]

        monkeypatch.setattr(slow, "_run", failing_beat)
        await until(lambda: beats >= 3)
        # Beats that could not complete take nothing away; the claims are still its own.
        assert slow.held == {"kept", "taken"}
        assert "lease heartbeat could not complete" in caplog.text
        # The lease ran short meanwhile: a run starting now asks the server first.
        await until(lambda: not slow.holds("kept"))
        assert await slow.confirm("kept")  # renewed: still this worker's
        assert slow.holds("kept")
        monkeypatch.setattr(slow, "_run", real_run)

        # One lease ran out (as if this worker had been frozen past it) and another worker
        # claimed the job.
        conn = await pgtest.admin()
        try:
            await conn.execute(
                f'UPDATE "{schema}".jobs SET locked_by = $2, locked_until = $3 WHERE job_id = $1',
                "taken",
                a.worker_id,
                time.time() + 60,
            )
        finally:
            await conn.close()
        await until(lambda: "taken" not in slow.held)  # the next heartbeat says so
        assert slow.held == {"kept"}
        assert not slow.holds("taken")
        assert await slow.confirm("taken") is False
        assert "taken over or removed" in caplog.text
    finally:
        await slow.shutdown()


async def test_the_heartbeat_finds_a_job_whose_notification_never_came(schema: str) -> None:
    heard = Heard()
    worker = pgtest.storage(schema, lease=0.6)
    worker.set_listener(heard)
    await worker.startup()
    try:
        assert await worker.claim(["t"], 10) == []  # it works on task "t" and is idle
        conn = await pgtest.admin()
        try:  # written behind the storage's back: no NOTIFY
            await conn.execute(
                f'INSERT INTO "{schema}".jobs (job_id, task_name, exec_at, arguments, trigger,'
                " status) VALUES ('quiet', 't', $1, '', '', 'scheduled')",
                time.time(),
            )
        finally:
            await conn.close()
        started = time.monotonic()
        await heard.wait("new")
        assert time.monotonic() - started < 0.2 + 2.0  # one period, with room for a busy host
        assert [r.job_id for r in await worker.claim(["t"], 10)] == ["quiet"]
    finally:
        await worker.shutdown()


async def test_a_killed_listen_connection_is_back_and_resynchronised_at_once(
    schema: str,
) -> None:
    heard = Heard()
    storage = pgtest.storage(schema)
    storage.set_listener(heard)
    await storage.startup()
    try:
        conn = await pgtest.admin()
        try:
            started = time.monotonic()
            killed = await conn.fetchval(
                "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity"
                " WHERE application_name = $1 AND query LIKE 'LISTEN%'",
                storage.application_name,
            )
            assert killed == 1
            await heard.wait("resync")
            assert time.monotonic() - started < 1.0
        finally:
            await conn.close()
        assert storage.listening
    finally:
        await storage.shutdown()


async def test_the_listen_socket_keeps_tcp_alive() -> None:
    pgtest.require_server()
    conn = await asyncpg.connect(pgtest.DSN, connection_class=listening_connection())
    try:
        sock = conn._transport.get_extra_info("socket")
        assert sock.getsockopt(socket.SOL_SOCKET, socket.SO_KEEPALIVE) == 1
        for name, value in KEEPALIVE.items():
            if hasattr(socket, name):
                assert sock.getsockopt(socket.IPPROTO_TCP, getattr(socket, name)) == value
    finally:
        await conn.close()


async def test_terminated_backends_fail_no_statement_and_lose_no_completion(
    schema: str, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.WARNING, logger="jobify")
    storage = pgtest.storage(schema, pool_size=4, retry_timeout=20)
    await storage.startup()
    failures: list[BaseException] = []
    completed: set[str] = set()
    stop = asyncio.Event()

    async def push(k: int) -> None:
        n = 0
        while not stop.is_set():
            try:
                await storage.save(job(f"p{k}-{n}", time.time() - 1))
            except StorageError as exc:
                failures.append(exc)
            n += 1

    async def read(k: int) -> None:
        while not stop.is_set():
            try:
                await storage.get(f"p{k}-0")
            except StorageError as exc:
                failures.append(exc)
            await asyncio.sleep(0.001)

    async def work() -> None:
        while not stop.is_set() or storage.held:
            try:
                claimed: list[JobRecord] = await storage.claim(["t"], 20)
                done = await asyncio.gather(
                    *(storage.complete(r.job_id, None, None) for r in claimed)
                )
            except StorageError as exc:
                failures.append(exc)
                continue
            assert all(done)
            completed.update(r.job_id for r in claimed)
            if not claimed:
                await asyncio.sleep(0.005)

    tasks = [asyncio.create_task(push(k)) for k in range(6)]
    tasks += [asyncio.create_task(read(k)) for k in range(3)]
    tasks.append(asyncio.create_task(work()))
    try:
        for _ in range(15):
            await asyncio.sleep(0.1)
            await pgtest.terminate_backends(storage.application_name)
        stop.set()
        await asyncio.gather(*tasks)
        left = [r.job_id for r in await storage.load()]
        while left:  # the last pushes, after the worker loop ended
            claimed = await storage.claim(["t"], 100)
            assert all(
                await asyncio.gather(*(storage.complete(r.job_id, None, None) for r in claimed))
            )
            completed.update(r.job_id for r in claimed)
            left = [r.job_id for r in await storage.load()]
    finally:
        stop.set()
        await asyncio.gather(*tasks, return_exceptions=True)
        await storage.shutdown()
    assert failures == []
    assert "another operation" not in caplog.text and "cannot switch" not in caplog.text
    assert completed  # work was done while backends died
