"""``jobify jobs pause/resume/run/cancel`` reach an app running in another process: the app
applies them (the CLI never edits the file under it), its own writes go on, nothing is
corrupted.

Needs the core to apply commands (it watches the store's command channel while it runs). Until
the core does, the whole module is skipped by the probe below, which turns it on by itself.
"""

from __future__ import annotations

import asyncio
import json
import sqlite3
import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from jobify import Jobify
from jobify._triggerdoc import AT_TRIGGER
from jobify.storage import SQLiteStorage
from jobify.storage.base import JobRecord, TaskRecord

from .conftest import jobify
from .running import RunningApp, eventually


def _core_watches_commands() -> bool:
    """Whether a started app watches its store's command channel (the core's side of
    ``jobify jobs pause``) — probed on a real app, so no attribute name is assumed."""
    watched: list[bool] = []

    class Probe(SQLiteStorage):
        def watch_commands(self, callback: Callable[[], None] | None) -> None:
            watched.append(callback is not None)
            super().watch_commands(callback)

    async def probe(path: Path) -> None:
        app = Jobify(storage=Probe(path))
        await app.startup()
        await app.shutdown()

    with tempfile.TemporaryDirectory() as directory:
        asyncio.run(probe(Path(directory) / "probe.db"))
    return True in watched


pytestmark = pytest.mark.skipif(
    not _core_watches_commands(),
    reason="the core does not apply inspector commands yet (no watch_commands at startup)",
)


@pytest.fixture
def running(tmp_path: Path) -> Iterator[RunningApp]:
    app = RunningApp(tmp_path)

    async def orphan() -> None:
        # A record of a task the app does not have, left from an older deployment.
        owner = SQLiteStorage(app.store)
        await owner.startup()
        await owner.save(JobRecord("orphan-1", "gone_task", 2e9, b"{}", AT_TRIGGER))
        await owner.save_tasks([TaskRecord("note", "{}", 0.0)])
        await owner.shutdown()

    asyncio.run(orphan())
    app.start()
    try:
        yield app
    finally:
        app.kill()


def status(app: RunningApp, job_id: str) -> str | None:
    result = jobify("jobs", "show", job_id, "--storage", app.url, "--json")
    if result.returncode == 1 and "no job with id" in result.stderr:
        return None
    assert result.returncode == 0, result.stderr
    value = json.loads(result.stdout)["status"]
    assert isinstance(value, str)
    return value


def act(app: RunningApp, action: str, job_id: str) -> None:
    result = jobify("jobs", action, job_id, "--storage", app.url)
    assert result.returncode == 0, (action, result.stderr)
    assert "done by the running app" in result.stdout


def test_commands_reach_the_running_app(running: RunningApp) -> None:
    act(running, "pause", "steer-me")
    eventually(lambda: status(running, "steer-me") == "paused")
    act(running, "resume", "steer-me")
    eventually(lambda: status(running, "steer-me") == "scheduled")
    act(running, "run", "steer-me")
    eventually(lambda: (running.workdir / "ran-0").exists())
    act(running, "cancel", "cancel-me")
    eventually(lambda: status(running, "cancel-me") is None)
    act(running, "cancel", "orphan-1")
    eventually(lambda: status(running, "orphan-1") is None)

    report = running.stop()
    with sqlite3.connect(running.store) as conn:
        assert conn.execute("PRAGMA integrity_check").fetchone() == ("ok",)
        (stored,) = conn.execute(
            "SELECT count(*) FROM jobify_schedules WHERE job_id LIKE 'own-%'"
        ).fetchone()
    conn.close()
    assert stored == report["written"]
