"""Cancelling a job while it runs on a ``jobify worker`` of a PostgreSQL cluster: from a
producer process and from the command, the body sees ``CancelledError`` within a second and
nothing runs it again, not after its lease."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
import time
from collections.abc import AsyncIterator, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest

import pgtest
from jobify import Jobify, JobStatus

LEASE = 1.0

APP = """
import asyncio, os, time
from jobify import Jobify
from jobify.storage import PostgresStorage

FD = os.open(os.environ["JOBIFY_TEST_LOG"], os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)

def note(*parts: object) -> None:
    os.write(FD, (" ".join(str(p) for p in parts) + "\\n").encode())

app = Jobify(
    storage=PostgresStorage(
        os.environ["JOBIFY_TEST_DSN"],
        schema=os.environ["JOBIFY_TEST_SCHEMA"],
        lease=float(os.environ["JOBIFY_TEST_LEASE"]),
        pool_size=2,
    ),
    history=False,
)

@app.task(name="long")
async def long(tag: str) -> str:
    note("start", tag, time.time())
    try:
        await asyncio.sleep(60)
    except asyncio.CancelledError:
        note("cancelled", tag, time.time())
        raise
    return tag

@app.task(name="quick")
async def quick(tag: str) -> str:
    note("quick", tag)
    return tag
"""


def producer(schema: str) -> tuple[Jobify, Any, Any]:
    """A producer-only app with the worker's task names: (app, long, quick)."""
    app = Jobify(storage=pgtest.storage(schema), worker=False, history=False)

    @app.task(name="long")
    async def long(tag: str) -> str:
        raise AssertionError("a producer never runs jobs")

    @app.task(name="quick")
    async def quick(tag: str) -> str:
        raise AssertionError("a producer never runs jobs")

    return app, long, quick


class Worker:
    def __init__(self, tmp_path: Path, schema: str) -> None:
        (tmp_path / "cancel_app.py").write_text(APP)
        self.log = tmp_path / "runs.log"
        self.log.touch()
        self.schema = schema
        self.env = {
            **os.environ,
            "PYTHONPATH": str(tmp_path),
            "JOBIFY_TEST_DSN": pgtest.DSN,
            "JOBIFY_TEST_SCHEMA": schema,
            "JOBIFY_TEST_LOG": str(self.log),
            "JOBIFY_TEST_LEASE": str(LEASE),
        }
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "jobify", "worker", "cancel_app:app"],
            env=self.env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            text=True,
        )

    def lines(self, kind: str) -> list[list[str]]:
        return [line.split() for line in self.log.read_text().splitlines() if line.startswith(kind)]

    async def wait_line(self, kind: str, tag: str, timeout: float = 30.0) -> list[str]:
        deadline = time.monotonic() + timeout
        while True:
            found = [line for line in self.lines(kind) if line[1] == tag]
            if found:
                return found[0]
            if self.proc.poll() is not None:
                raise AssertionError(f"the worker exited: {self.proc.communicate()}")
            if time.monotonic() > deadline:
                raise AssertionError(f"no {kind!r} line for {tag!r}: {self.log.read_text()}")
            await asyncio.sleep(0.01)

    def close(self) -> str:
        if self.proc.poll() is None:
            self.proc.terminate()
        _, err = self.proc.communicate(timeout=30)
        return err


@contextmanager
def worker(tmp_path: Path, schema: str) -> Iterator[Worker]:
    made = Worker(tmp_path, schema)
    try:
        yield made
    finally:
        made.close()


@pytest.fixture
async def schema() -> AsyncIterator[str]:
    async with pgtest.fresh_schema() as name:
        store = pgtest.storage(name)
        await store.startup()  # tables made before the worker and the producer race
        await store.shutdown()
        yield name


async def test_a_producer_cancels_a_main_job_running_on_a_worker(
    tmp_path: Path, schema: str
) -> None:
    app, long, quick = producer(schema)
    with worker(tmp_path, schema) as w:
        async with app, asyncio.timeout(60):
            job = await long.push("p")
            await w.wait_line("start", "p")
            asked = time.time()
            await job.cancel()
            assert job.status is JobStatus.CANCELLED
            seen = await w.wait_line("cancelled", "p", timeout=5)
            assert float(seen[2]) - asked < 1.0
            await asyncio.sleep(2 * LEASE)  # an absence is checked: let the lease pass
            await (await quick.push("after-p"))
            assert [line[1] for line in w.lines("start")].count("p") == 1
            assert await app.configs.storage.get(job.id) is None  # type: ignore[union-attr]


async def test_the_command_cancels_a_main_job_running_on_a_worker(
    tmp_path: Path, schema: str
) -> None:
    app, long, quick = producer(schema)
    with worker(tmp_path, schema) as w:
        async with app, asyncio.timeout(60):
            job = await long.push("c")
            await w.wait_line("start", "c")
            asked = time.time()
            command = await asyncio.create_subprocess_exec(
                sys.executable,
                "-m",
                "jobify",
                "jobs",
                "cancel",
                job.id,
                "--storage",
                f"{pgtest.DSN}?schema={schema}",
                stdout=asyncio.subprocess.PIPE,
                stderr=asyncio.subprocess.PIPE,
            )
            out, err = await command.communicate()
            assert command.returncode == 0, (out, err)
            seen = await w.wait_line("cancelled", "c", timeout=5)
            # The command's own start-up is most of this; the cancel itself takes ms.
            assert float(seen[2]) - asked < 10.0
            await job.wait()
            assert job.status is JobStatus.CANCELLED
            await asyncio.sleep(2 * LEASE)  # an absence is checked: let the lease pass
            await (await quick.push("after-c"))
            assert [line[1] for line in w.lines("start")].count("c") == 1
