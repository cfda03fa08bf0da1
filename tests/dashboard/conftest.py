"""Fixtures of the dashboard tests: a real SQLite store filled by a real app (plus run history,
a task list, an orphan, hostile text), and a Starlette test client for a dashboard on it."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from starlette.testclient import TestClient

from jobify import Cron, Jobify
from jobify._triggerdoc import AT_TRIGGER
from jobify.dashboard import create_app
from jobify.serializers import ExtendedJSONSerializer
from jobify.storage import SQLiteStorage
from jobify.storage.base import JobRecord, RunRecord, TaskRecord

ONCE_AT = datetime(2031, 1, 2, 3, 4, 5, tzinfo=UTC)
"""When the prepared one-shot jobs are due (far away: they never run during a test)."""
SCRIPT = "<script>alert('x')</script>"
"""Hostile text stored in arguments, a task name, a job id, error messages and tracebacks."""
TOKEN = "a-long-enough-token-for-tests"
BULK = 120
"""One-shot jobs of task ``bulk`` (three pages of 50 at the default page size)."""
HOST = "testserver"
"""The host name the test client sends."""

TRACEBACK = (
    "Traceback (most recent call last):\n"
    '  File "app.py", line 12, in send_email\n'
    "    raise ConnectionError('smtp down')\n"
    f"ConnectionError: smtp down {SCRIPT}\n"
)


@dataclass(frozen=True)
class Store:
    """A prepared store file and what is in it."""

    path: Path
    once_id: str = "email-1"
    """A one-shot job of ``send_email`` due at :data:`ONCE_AT`."""
    cron_id: str = "daily-digest"
    """A cron job of ``send_email``: 09:00 Europe/Berlin, at most 10 runs; it has history."""
    static_cron_id: str = "report"
    """The cron declared on the ``report`` task (its job id is the task name)."""
    orphan_id: str = "orphan-1"
    """A record of task ``gone_task``, which the app does not register."""
    hostile_id: str = f"evil/{SCRIPT}"
    """A one-shot job whose id, arguments and history carry :data:`SCRIPT`."""
    paused_id: str = "paused-1"
    """A paused one-shot job of ``send_email``."""

    @property
    def url(self) -> str:
        return f"sqlite:///{self.path}"  # four slashes in all: the path is absolute


def make_app(path: Path) -> Jobify:
    """The app that owns the prepared store."""
    app = Jobify(storage=SQLiteStorage(path))

    # Named: the tests read these names on the pages.
    @app.task(name="send_email")
    async def send_email(to: str, subject: str = "hello") -> None:
        return None

    @app.task(name="report", cron=Cron("*/5 * * * *", max_runs=100), retry=2, timeout=30)
    async def report() -> None:
        return None

    return app


async def build_store(path: Path) -> Store:
    """Fill ``path`` the way a real app does, plus history, a task list, an orphan, many
    bulk jobs and hostile text."""
    store = Store(path)
    app = make_app(path)
    await app.startup()
    try:
        send_email = app.tasks["send_email"]
        await send_email.schedule("a@example.com", subject="Quarterly").at(
            ONCE_AT, job_id=store.once_id
        )
        await send_email.schedule("team@example.com").cron(
            Cron("0 9 * * *", max_runs=10, tz=ZoneInfo("Europe/Berlin")), job_id=store.cron_id
        )
        await send_email.schedule(SCRIPT, subject=SCRIPT).at(ONCE_AT, job_id=store.hostile_id)
        await send_email.schedule("later@example.com").at(ONCE_AT, job_id=store.paused_id)
    finally:
        await app.shutdown()
    serializer = ExtendedJSONSerializer()
    owner = SQLiteStorage(path)
    await owner.startup()
    try:
        now = time.time()
        paused = await owner.get(store.paused_id)
        assert paused is not None
        await owner.save(
            JobRecord(
                paused.job_id,
                paused.task_name,
                paused.exec_at,
                paused.arguments,
                paused.trigger,
                "paused",
            )
        )
        owner.record_run_soon(
            RunRecord(store.once_id, "send_email", now - 120, now - 119.5, now - 119, "success")
        )
        owner.record_run_soon(
            RunRecord(
                store.cron_id,
                "send_email",
                now - 60,
                now - 59.9,
                now - 58.4,
                "failed",
                attempts=3,
                error_type="ConnectionError",
                error_message=f"smtp down {SCRIPT}",
                traceback=TRACEBACK,
                worker="host:1",
            )
        )
        owner.record_run_soon(
            RunRecord(store.hostile_id, "send_email", now - 30, now - 29, now - 28, "timeout",
                      error_type="TimeoutError", error_message=SCRIPT, traceback=TRACEBACK)
        )  # fmt: skip
        await owner.save_tasks(
            [TaskRecord(name, "{}", now) for name in ("report", "send_email", "bulk")]
        )
        await owner.save(
            JobRecord(store.orphan_id, "gone_task", ONCE_AT.timestamp(), b"{}", AT_TRIGGER)
        )
        start = ONCE_AT.timestamp() + 3600
        bulk = [
            JobRecord(f"bulk-{i:03d}", "bulk", start + i, serializer.dumpb({"n": i}), AT_TRIGGER)
            for i in range(BULK)
        ]
        await owner.save_many(bulk)
        await owner.flush()
    finally:
        await owner.shutdown()
    return store


@pytest.fixture
def store(tmp_path: Path) -> Store:
    """A stopped store prepared by :func:`build_store`."""
    return asyncio.run(build_store(tmp_path / "jobs.db"))


ClientFactory = Callable[..., TestClient]


@pytest.fixture
def dashboard(store: Store) -> Iterator[ClientFactory]:
    """Make a test client of a dashboard on :func:`store` (options of ``create_app``); every
    client made is closed (its lifespan ends) after the test."""
    clients: list[TestClient] = []

    def make(**options: Any) -> TestClient:
        client = TestClient(create_app(store.url, **options), base_url=f"http://{HOST}")
        client.__enter__()
        clients.append(client)
        return client

    try:
        yield make
    finally:
        for client in clients:
            client.__exit__(None, None, None)


@pytest.fixture
def client(dashboard: ClientFactory) -> TestClient:
    """A dashboard with the default options (actions open, no token)."""
    return dashboard()


async def stored(store: Store, job_id: str) -> JobRecord | None:
    """The record as the file holds it now (read by a fresh inspector-mode storage)."""
    storage = SQLiteStorage(store.path)
    await storage.open_inspection()
    try:
        return await storage.get(job_id)
    finally:
        await storage.shutdown()


def record(store: Store, job_id: str) -> JobRecord | None:
    return asyncio.run(stored(store, job_id))
