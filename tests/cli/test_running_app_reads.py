"""``jobify jobs list/show/history/count`` on a SQLite store whose app runs in another process:
they read it without its lock, the app's own writes go on, nothing is corrupted."""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Iterator
from pathlib import Path

import pytest

from .conftest import jobify
from .running import RunningApp


@pytest.fixture
def running(tmp_path: Path) -> Iterator[RunningApp]:
    app = RunningApp(tmp_path)
    app.start()
    try:
        yield app
    finally:
        app.kill()


def own_jobs(app: RunningApp) -> int:
    result = jobify("jobs", "list", "--storage", app.url, "--json", "--limit", "10000")
    assert result.returncode == 0, result.stderr
    return sum(1 for job in json.loads(result.stdout) if job["job_id"].startswith("own-"))


def test_reads_while_the_app_runs_and_writes(running: RunningApp) -> None:
    first = own_jobs(running)
    show = jobify("jobs", "show", "steer-me", "--storage", running.url, "--json")
    assert show.returncode == 0, show.stderr
    assert json.loads(show.stdout)["arguments"]["values"] == {"n": 0}
    for command in (["history"], ["count"], ["list"], ["show", "cancel-me"]):
        result = jobify("jobs", *command, "--storage", running.url)
        assert result.returncode == 0, (command, result.stderr)
    second = own_jobs(running)
    assert second > first  # the app kept writing while it was being read

    report = running.stop()
    # Every job the app wrote is in the store, and the file is sound.
    with sqlite3.connect(running.store) as conn:
        assert conn.execute("PRAGMA integrity_check").fetchone() == ("ok",)
        (stored,) = conn.execute(
            "SELECT count(*) FROM jobify_schedules WHERE job_id LIKE 'own-%'"
        ).fetchone()
    conn.close()
    assert stored == report["written"]
    assert report["written"] >= second
    # Inspection never made the app wait on the file for long (its writes are group commits
    # of a few ms; a lock held by a reader would show as a stall of seconds).
    assert report["longest_gap"] < 2.0, report
