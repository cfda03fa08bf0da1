"""Retry by hand: a failed job keeps its record (status ``failed``) and ``jobify jobs retry``,
the inspector or the dashboard run it again now with its stored arguments; a permanently
failed cron starts again with its failure counter reset; read-only mode refuses it."""

from __future__ import annotations

import asyncio
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest
from starlette.testclient import TestClient

import pgtest
from jobify import Cron, Jobify, JobStatus
from jobify.dashboard import create_app
from jobify.inspection import ActionRefusedError, Inspector
from jobify.storage import SQLiteStorage


def make_app(path: Path, outcomes: dict[str, Any]) -> tuple[Jobify, Any, Any]:
    """An app whose task fails until ``outcomes["fixed"]`` is set; runs land in ``ran``."""
    app = Jobify(storage=SQLiteStorage(path))
    ran: list[str] = outcomes.setdefault("ran", [])

    @app.task(name="charge")
    async def charge(customer: str, cents: int) -> str:
        ran.append(customer)
        if not outcomes.get("fixed"):
            raise ConnectionError("payment service down")
        outcomes.setdefault("paid", []).append(customer)
        return f"{customer}:{cents}"

    @app.task(name="sync")
    async def sync() -> None:
        ran.append("sync")
        if not outcomes.get("fixed"):
            raise ConnectionError("remote down")
        outcomes["synced"] = outcomes.get("synced", 0) + 1

    return app, charge, sync


async def _until(condition: Any, timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError("timed out")
        await asyncio.sleep(0.01)


async def test_a_failed_job_is_kept_and_retried_with_its_arguments(tmp_path: Path) -> None:
    path = tmp_path / "jobs.db"
    outcomes: dict[str, Any] = {}
    app, charge, _ = make_app(path, outcomes)
    async with app:
        job = await charge.push("ada", 500)
        await job.wait()
        assert job.status is JobStatus.FAILED
        assert app.configs.storage is not None
        await app.configs.storage.flush()
        kept = await app.configs.storage.get(job.id)
        assert kept is not None and kept.status == "failed"
    async with Inspector.from_url(f"sqlite:///{path}") as inspector:
        with pytest.raises(ActionRefusedError, match="retry runs it again"):
            await inspector.pause(job.id)
        result = await inspector.retry(job.id)
        assert result.via == "direct"
    outcomes["fixed"] = True
    again, _, _ = make_app(path, outcomes)
    async with again, asyncio.timeout(10):
        retried = again.find_job(job.id)
        assert retried is not None
        assert await retried == "ada:500"  # the stored arguments
        assert again.configs.storage is not None
        await again.configs.storage.flush()
        assert await again.configs.storage.get(job.id) is None
    assert outcomes["ran"] == ["ada", "ada"]


async def test_retry_through_the_running_app_and_the_command(tmp_path: Path) -> None:
    path = tmp_path / "jobs.db"
    outcomes: dict[str, Any] = {}
    app, charge, _ = make_app(path, outcomes)
    async with app, asyncio.timeout(30):
        first = await charge.push("bob", 1)
        second = await charge.push("eve", 2)
        await asyncio.gather(first.wait(), second.wait())
        assert app.configs.storage is not None
        await app.configs.storage.flush()
        outcomes["fixed"] = True
        async with Inspector.from_url(f"sqlite:///{path}") as inspector:
            result = await inspector.retry(first.id)
        assert result.via == "owner"
        await _until(lambda: outcomes.get("paid") == ["bob"])
        command = await asyncio.create_subprocess_exec(
            sys.executable,
            "-m",
            "jobify",
            "jobs",
            "retry",
            second.id,
            "--storage",
            f"sqlite:///{path}",
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
        )
        out, err = await command.communicate()
        assert command.returncode == 0, (out, err)
        assert b"done by the running app" in out
        await _until(lambda: outcomes.get("paid") == ["bob", "eve"])
    assert sorted(outcomes["ran"]) == ["bob", "bob", "eve", "eve"]


async def test_a_permanently_failed_cron_restarts_with_its_failures_reset(tmp_path: Path) -> None:
    path = tmp_path / "jobs.db"
    outcomes: dict[str, Any] = {}
    app, _, sync = make_app(path, outcomes)
    async with app, asyncio.timeout(30):
        job = await sync.schedule().cron(
            Cron("* * * * * * *", max_failures=1), job_id="nightly-sync"
        )
        await job.wait()
        assert job.status is JobStatus.PERMANENTLY_FAILED
        outcomes["fixed"] = True
        async with Inspector.from_url(f"sqlite:///{path}") as inspector:
            await inspector.retry("nightly-sync")
            restarted = app.find_job("nightly-sync")
            assert restarted is not None and restarted.cron_expression is not None
            await restarted.wait()  # runs now, then keeps its schedule
            assert restarted.status is JobStatus.SCHEDULED
            shown = (await inspector.get_job("nightly-sync")).job
        assert shown.cron is not None and shown.cron.failures == 0
        await restarted.cancel()
    assert outcomes["synced"] >= 1


async def test_read_only_dashboard_refuses_retry_and_a_scheduled_job_is_refused(
    tmp_path: Path,
) -> None:
    path = tmp_path / "jobs.db"
    outcomes: dict[str, Any] = {}
    app, charge, _ = make_app(path, outcomes)
    async with app:
        job = await charge.push("mallory", 3)
        await job.wait()
        waiting = await charge.schedule("later", 4).delay(3600)
    with TestClient(create_app(f"sqlite:///{path}", read_only=True)) as client:
        refused = client.post(f"/api/jobs/{job.id}/retry")
        assert refused.status_code == 403 and "read-only" in refused.json()["error"]
    with TestClient(create_app(f"sqlite:///{path}")) as client:
        page = client.get(f"/jobs/{job.id}").text
        assert 'data-action="retry"' in page
        not_failed = client.post(f"/api/jobs/{waiting.id}/retry")
        assert not_failed.status_code == 409, not_failed.text
        done = client.post(f"/api/jobs/{job.id}/retry")
        assert done.status_code == 200, done.text
    storage = SQLiteStorage(path)
    await storage.startup()
    try:
        record = await storage.get(job.id)
    finally:
        await storage.shutdown()
    assert record is not None and record.status == "scheduled"


async def test_a_failed_job_on_postgres_is_kept_and_retried() -> None:
    async with pgtest.fresh_schema() as schema:
        outcomes: dict[str, Any] = {"ran": []}
        app = Jobify(storage=pgtest.storage(schema), history=False)

        @app.task(name="charge")
        async def charge(customer: str) -> str:
            outcomes["ran"].append(customer)
            if not outcomes.get("fixed"):
                raise ConnectionError("payment service down")
            return customer

        async with app, asyncio.timeout(30):
            job = await charge.push("ada")
            await job.wait()
            assert job.status is JobStatus.FAILED
            storage: Any = app.configs.storage
            await storage.flush()
            kept = await storage.get(job.id)
            assert kept is not None and kept.status == "failed"
            outcomes["fixed"] = True
            async with Inspector.from_url(f"{pgtest.DSN}?schema={schema}") as inspector:
                await inspector.retry(job.id)
            await _until(lambda: outcomes["ran"] == ["ada", "ada"])
            # Its completion removes the record this time.
            for _ in range(1000):
                if await storage.get(job.id) is None:
                    break
                await asyncio.sleep(0.01)
            assert await storage.get(job.id) is None
