"""One time-zone rule for the command and the dashboard: every instant is shown in the zone
of the app that owns the store (or one chosen with ``--tz`` / ``create_app(tz=...)``), to
the second, with its zone named."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

from starlette.testclient import TestClient

from jobify import Jobify
from jobify.dashboard import create_app
from jobify.storage import SQLiteStorage

from .conftest import HOST


def jobify(*args: str) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if k not in ("JOBIFY_STORAGE", "COLUMNS")}
    return subprocess.run(
        [sys.executable, "-m", "jobify", *args],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
        env=env,
    )


ZONED = re.compile(r"\d{4}-\d\d-\d\d (\d\d):(\d\d):(\d\d) (CES?T|UTC)")


async def berlin_store(path: Path) -> None:
    """A store whose app runs in Europe/Berlin, with a cron every 5 seconds."""
    app = Jobify(tz="Europe/Berlin", storage=SQLiteStorage(path))

    @app.task(name="pulse")
    async def pulse() -> None:
        pass

    async with app:
        await pulse.schedule().cron("*/5 * * * * * *", job_id="pulse-5s")
        await pulse.schedule().delay(3600, job_id="later")


async def test_the_dashboard_shows_the_apps_zone_with_seconds(tmp_path: Path) -> None:
    db = tmp_path / "jobs.db"
    await berlin_store(db)
    with TestClient(create_app(f"sqlite:///{db}"), base_url=f"http://{HOST}") as client:
        crons = client.get("/crons").text
        assert "Times in Europe/Berlin" in crons
        # The table's next fires of a seconds-level cron: they differ in their seconds (not
        # three identical minutes), five seconds apart.
        shown = re.findall(r'<time datetime="[^"]+">([^<]+)</time>', crons)
        fires = [m for text in shown for m in ZONED.findall(text) if m[3] != "UTC"]
        assert len(fires) >= 3
        seconds = [int(s) for _, _, s, _ in fires[:3]]
        assert len(set(seconds)) == 3 and all(s % 5 == 0 for s in seconds)
        assert not [m for m in ZONED.findall(crons) if m[3] == "UTC"]  # one zone throughout
        job = client.get("/jobs/later").text
        assert "Times in Europe/Berlin" in job and re.search(r":\d\d CES?T", job)
    chosen = create_app(f"sqlite:///{db}", tz="UTC")
    with TestClient(chosen, base_url=f"http://{HOST}") as client:
        crons = client.get("/crons").text
        assert "Times in UTC" in crons
        assert not [m for m in ZONED.findall(crons) if m[3] != "UTC"]


async def test_the_command_shows_the_apps_zone_or_the_one_chosen(tmp_path: Path) -> None:
    db = tmp_path / "jobs.db"
    await berlin_store(db)
    url = f"sqlite:///{db}"
    listed = jobify("jobs", "list", "--storage", url)
    assert listed.returncode == 0, listed.stderr
    assert "NEXT RUN (Europe/Berlin)" in listed.stdout
    assert [m[3] for m in ZONED.findall(listed.stdout)] in (["CET"] * 2, ["CEST"] * 2)
    utc = jobify("jobs", "list", "--storage", url, "--tz", "UTC").stdout
    assert "NEXT RUN (UTC)" in utc and [m[3] for m in ZONED.findall(utc)] == ["UTC", "UTC"]
    shown = jobify("jobs", "show", "pulse-5s", "--storage", url).stdout
    seconds = {m[2] for m in ZONED.findall(shown)}
    assert len(seconds) >= 3  # its next fires, to the second
    bad = jobify("jobs", "list", "--storage", url, "--tz", "Mars/Olympus")
    assert bad.returncode == 2 and "unknown time zone" in bad.stderr
