"""PostgresStorage survives a database that drops its connections mid-run.

The shared server is never restarted (other engineers use it): every connection of the
storage under test is killed with ``pg_terminate_backend``, found by the application name that
carries its random worker id, which is what a server restart or failover does to a client.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator

import pytest

import pgtest
from jobify.exceptions import StorageError
from jobify.storage.base import JobRecord, ResultRecord, SharedListener


@pytest.fixture
async def schema() -> AsyncIterator[str]:
    async with pgtest.fresh_schema() as name:
        yield name


class Resyncs(SharedListener):
    def __init__(self) -> None:
        self.resynced = asyncio.Event()
        self.new: list[float] = []
        self.heard_new = asyncio.Event()

    def on_new_job(self, exec_at: float) -> None:
        self.new.append(exec_at)
        self.heard_new.set()

    def on_job_changed(self, job_id: str) -> None:
        pass

    def on_job_finished(self, job_id: str) -> None:
        pass

    def on_resync(self) -> None:
        self.resynced.set()


async def test_a_dropped_listen_connection_reconnects_and_resyncs(schema: str) -> None:
    storage = pgtest.storage(schema)
    heard = Resyncs()
    storage.set_listener(heard)
    await storage.startup()
    try:
        assert await pgtest.terminate_backends(storage.application_name) >= 2  # pool + LISTEN
        await asyncio.wait_for(heard.resynced.wait(), timeout=10)
        assert storage.listening
        heard.heard_new.clear()
        await storage.save(JobRecord("after", "t", 123.5, b"", b""))
        await asyncio.wait_for(heard.heard_new.wait(), timeout=5)
        assert heard.new[-1] == 123.5
    finally:
        await storage.shutdown()


async def test_every_connection_dropped_mid_run_is_survived(schema: str) -> None:
    storage = pgtest.storage(schema, pool_size=3, lease=5)
    heard = Resyncs()
    storage.set_listener(heard)
    await storage.startup()
    saved: list[str] = []
    completed: list[str] = []
    failures: list[BaseException] = []
    stop = asyncio.Event()

    async def producer(n: int) -> None:
        i = 0
        while not stop.is_set():
            job_id = f"p{n}-{i}"
            i += 1
            try:
                await storage.save(JobRecord(job_id, "keep", time.time() + 3600, b"x", b"y"))
                saved.append(job_id)
            except StorageError as exc:
                failures.append(exc)
            await asyncio.sleep(0.002)

    async def worker() -> None:
        n = 0
        while not stop.is_set():
            try:
                await storage.save_many(
                    [JobRecord(f"w-{n}-{k}", "t", time.time(), b"", b"") for k in range(5)]
                )
                n += 1
                for record in await storage.claim(["t"], 10):
                    done = ResultRecord(record.job_id, "success", b"1", None, time.time())
                    if await storage.complete(record.job_id, None, done):
                        completed.append(record.job_id)
            except StorageError as exc:
                failures.append(exc)
            await asyncio.sleep(0.002)

    tasks = [asyncio.create_task(producer(n)) for n in range(8)]
    tasks.append(asyncio.create_task(worker()))
    try:
        killed = 0
        for _ in range(3):
            await asyncio.sleep(0.3)
            killed += await pgtest.terminate_backends(storage.application_name)
        # Work goes on after the drops: wait for it (a busy host writes slowly), not a while.
        after = len(saved) + 100
        deadline = time.monotonic() + 60
        while len(saved) < after:
            assert time.monotonic() < deadline, "writes did not go on after the drops"
            await asyncio.sleep(0.01)
        stop.set()
        await asyncio.gather(*tasks)
        assert killed >= 6

        # Every write that returned is there; nothing else was raised than StorageError.
        assert all(isinstance(exc, StorageError) for exc in failures)
        rows = {r.job_id for r in await storage.load()}
        assert set(saved) <= rows
        assert not rows & set(completed)
        assert all(await asyncio.gather(*(storage.get_result(j) for j in completed)))
        # No write failed (a terminated backend rolled it back, so it was sent again); the
        # LISTEN came back.
        assert failures == []
        await asyncio.wait_for(heard.resynced.wait(), timeout=10)
        assert storage.listening
        await storage.save(JobRecord("final", "keep", 1.0, b"", b""))
        assert await storage.get("final") is not None
    finally:
        stop.set()
        await asyncio.gather(*tasks, return_exceptions=True)
        await storage.shutdown()
