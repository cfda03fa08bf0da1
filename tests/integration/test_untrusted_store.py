"""A job store is untrusted input: records that name a module (whose import would leave a
marker and raise SystemExit) as a class or a time zone never make any process import it.

The owner of a SQLite store, two ``jobify worker`` processes on PostgreSQL, the ``jobify``
command and the dashboard all stay up, show the records as unrestorable, and run every other
job; and no import at all is attempted while a record is decoded, on any of these paths.
"""

from __future__ import annotations

import asyncio
import dataclasses
import importlib.util
import logging
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest
from starlette.testclient import TestClient

import pgtest
from jobify import Jobify, JobStatus
from jobify._triggerdoc import AT_TRIGGER
from jobify.dashboard import create_app
from jobify.dashboard._format import job_path
from jobify.serializers import ExtendedJSONSerializer
from jobify.storage import SQLiteStorage
from jobify.storage.base import JobRecord, RecordStatus, Storage
from untrusted import Hostile, hostile_module, hostile_records, imports_fail_while_decoding

from .test_shared_workers import cluster, schema

__all__ = ["schema"]  # the fixture, imported for the PostgreSQL tests


@dataclasses.dataclass(frozen=True)
class Point:
    x: int
    y: int


@dataclasses.dataclass(frozen=True)
class Summary:
    """Named only as a task's return annotation."""

    total: int
    points: list[Point]


def jobify(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    """``python -m jobify ARGS`` run where the hostile module could be imported from."""
    env = {k: v for k, v in os.environ.items() if k != "JOBIFY_STORAGE"}
    env["PYTHONPATH"] = str(cwd)
    return subprocess.run(
        [sys.executable, "-m", "jobify", *args],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
        cwd=cwd,
        env=env,
    )


def good_records(count: int) -> list[JobRecord]:
    serializer = ExtendedJSONSerializer([Point])
    return [
        JobRecord(
            f"good-{n}",
            "take",
            time.time() - 1,
            serializer.dumpb({"x": Point(n, -n)}),
            AT_TRIGGER,
            RecordStatus.SCHEDULED,
        )
        for n in range(count)
    ]


@pytest.fixture
def hostile(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Hostile:
    made = hostile_module(tmp_path)
    monkeypatch.syspath_prepend(str(tmp_path))
    importlib.invalidate_caches()
    assert importlib.util.find_spec(made.name) is not None  # importing it would be possible
    return made


def assert_never_imported(hostile: Hostile) -> None:
    assert not hostile.marker.exists()
    assert hostile.name not in sys.modules


async def seed(storage: Storage, records: list[JobRecord]) -> None:
    await storage.startup()
    try:
        await storage.save_many(records)
    finally:
        await storage.shutdown()


def check_command(url: str, hostile: Hostile, evil: list[str]) -> None:
    """``jobify jobs list`` and ``jobs show`` (real processes, the module importable)."""
    listed = jobify("jobs", "list", "--storage", url, cwd=hostile.directory)
    assert listed.returncode == 0, listed.stderr
    for job_id in evil:
        assert job_id in listed.stdout
    for job_id in (evil[0], evil[-1]):  # a class, and a trigger (each a process of its own)
        shown = jobify("jobs", "show", job_id, "--storage", url, cwd=hostile.directory)
        assert shown.returncode == 0, shown.stderr
        assert job_id in shown.stdout
    json_list = jobify("jobs", "list", "--json", "--storage", url, cwd=hostile.directory)
    assert json_list.returncode == 0, json_list.stderr
    assert_never_imported(hostile)


def check_dashboard(url: str, hostile: Hostile, evil: list[str]) -> None:
    with TestClient(create_app(url), base_url="http://testserver") as client:
        for path in ("/", "/jobs", "/crons", "/failures", "/runs"):
            assert client.get(path).status_code == 200, path
            api = "/api/overview" if path == "/" else "/api" + path
            assert client.get(api).status_code == 200, api
        for job_id in evil:
            page = client.get(f"/jobs/{job_path(job_id)}")
            assert page.status_code == 200 and job_id in page.text
            assert client.get(f"/api/jobs/{job_path(job_id)}").status_code == 200
    assert_never_imported(hostile)


async def test_sqlite_owner_command_and_dashboard(
    tmp_path: Path,
    hostile: Hostile,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    path = tmp_path / "jobs.db"
    evil = hostile_records(hostile, "take", "x")
    await seed(SQLiteStorage(path), [*evil, *good_records(3)])
    ran: list[Point] = []
    all_ran = asyncio.Event()
    app = Jobify(storage=SQLiteStorage(path))

    @app.task
    async def take(x: Point) -> None:
        ran.append(x)
        if len(ran) == 3:
            all_ran.set()

    with imports_fail_while_decoding(monkeypatch) as guard, caplog.at_level(logging.ERROR):
        async with app:
            await asyncio.wait_for(all_ran.wait(), 10)
            for record in evil:
                job = app.find_job(record.job_id)
                assert job is not None and job.status is JobStatus.ORPHANED
        check_dashboard(f"sqlite:///{path}", hostile, [r.job_id for r in evil])
    assert sorted(ran, key=lambda p: p.x) == [Point(n, -n) for n in range(3)]
    assert guard.attempts == [] and guard.decodes["StoreRecorder.decode"] >= 10
    assert guard.decodes["jobify.inspection._inspector.job_info"] >= len(evil)
    for record in evil:  # logged with its id and, for a class, the name it asked for
        lines = [r.getMessage() for r in caplog.records if record.job_id in r.getMessage()]
        assert len(lines) == 1, lines
    assert hostile.ref() in caplog.text
    # Left in place: a later start still finds them, unchanged.
    reader = SQLiteStorage(path)
    await reader.open_inspection()
    try:
        kept = {r.job_id: r for r in await reader.load()}
    finally:
        await reader.shutdown()
    assert all(kept[r.job_id] == r for r in evil) and not any(k.startswith("good") for k in kept)
    check_command(f"sqlite:///{path}", hostile, [r.job_id for r in evil])


SHAPES = """
import dataclasses

@dataclasses.dataclass(frozen=True)
class Point:
    x: int
    y: int
"""

WORKER_APP = """
import os
from jobify import Jobify
from jobify.storage import PostgresStorage
from {shapes} import Point

app = Jobify(
    storage=PostgresStorage(os.environ["JOBIFY_TEST_DSN"], schema=os.environ["JOBIFY_TEST_SCHEMA"]),
    history=False,
)

@app.task(name="take")
async def take(x: Point) -> int:
    return x.x
"""


async def connected(procs: list[subprocess.Popen[str]]) -> None:
    """Wait until every worker has a connection of its own (it is then past the start of
    ``jobify worker``, where SIGTERM stops it gracefully)."""
    conn = await pgtest.admin()
    try:
        deadline = time.monotonic() + 60
        for proc in procs:
            while not await conn.fetchval(
                "SELECT count(*) FROM pg_stat_activity WHERE application_name LIKE $1",
                f"jobify %:{proc.pid}:%",
            ):
                assert proc.poll() is None and time.monotonic() < deadline
                await asyncio.sleep(0.05)
    finally:
        await conn.close()


async def test_two_workers_on_postgres_set_the_rows_aside_and_run_the_rest(
    tmp_path: Path, hostile: Hostile, schema: str
) -> None:
    evil = hostile_records(hostile, "take", "x")
    await seed(pgtest.storage(schema), evil)
    shapes = f"shapes_{hostile.name}"  # the argument class, shared by producer and workers
    (tmp_path / f"{shapes}.py").write_text(SHAPES)
    Point = importlib.import_module(shapes).Point
    with cluster(tmp_path, schema) as workers:
        (tmp_path / "cluster_app.py").write_text(WORKER_APP.format(shapes=shapes))
        procs = workers.start(2)
        await connected(procs)
        producer = Jobify(storage=pgtest.storage(schema), worker=False, history=False)

        @producer.task(name="take")
        async def take(x: Point) -> int:  # type: ignore[valid-type]
            raise AssertionError("a producer never runs jobs")

        async with producer:
            jobs = [await take.push(Point(n, n)) for n in range(10)]
            try:
                results = await asyncio.wait_for(asyncio.gather(*jobs), 30)
            except TimeoutError:
                for proc in procs:
                    proc.kill()
                raise AssertionError([proc.communicate()[1] for proc in procs]) from None
            assert results == list(range(10))
            reader = pgtest.storage(schema)
            await reader.startup()
            try:

                async def statuses() -> dict[str, str]:
                    return {r.job_id: r.status for r in await reader.load()}

                # Each row was claimed, could not be decoded, and was set aside (paused):
                # no worker keeps it claimed, none claims it again.
                deadline = time.monotonic() + 20
                while set((await statuses()).values()) != {RecordStatus.PAUSED}:
                    assert time.monotonic() < deadline, await statuses()
                    await asyncio.sleep(0.1)
                assert set(await statuses()) == {r.job_id for r in evil}
            finally:
                await reader.shutdown()
        assert all(proc.poll() is None for proc in procs)  # both alive
        for proc in procs:
            err = workers.stop(proc)
            assert proc.returncode == 0, err
            assert "Traceback" not in err
    assert_never_imported(hostile)
    url = f"{pgtest.DSN}?schema={schema}"
    check_command(url, hostile, [r.job_id for r in evil])
    check_dashboard(url, hostile, [r.job_id for r in evil])


async def test_claims_and_remote_results_decode_without_importing(
    hostile: Hostile, schema: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """In one process: a worker app claims the hostile rows and a good job; a producer app
    (its own serializer) awaits a result whose types only its task's return annotation
    names."""
    evil = hostile_records(hostile, "summarize", "n")
    await seed(pgtest.storage(schema), evil)
    worker = Jobify(storage=pgtest.storage(schema), history=False)
    producer = Jobify(storage=pgtest.storage(schema), worker=False, history=False)

    @worker.task(name="summarize")
    async def summarize(n: int) -> Summary:
        return Summary(n, [Point(n, -n)])

    @producer.task(name="summarize")
    async def summarize_elsewhere(n: int) -> Summary:
        raise AssertionError("a producer never runs jobs")

    assert set(producer.configs.serializer.registry.values()) == {Summary, Point}  # type: ignore[attr-defined]
    with imports_fail_while_decoding(monkeypatch) as guard:
        async with worker, producer:
            job = await summarize_elsewhere.push(7)
            assert await asyncio.wait_for(job, 20) == Summary(7, [Point(7, -7)])
            reader = pgtest.storage(schema)
            await reader.startup()
            try:
                deadline = time.monotonic() + 20
                while {r.status for r in await reader.load()} != {RecordStatus.PAUSED}:
                    assert time.monotonic() < deadline
                    await asyncio.sleep(0.1)
            finally:
                await reader.shutdown()
    assert guard.attempts == []
    assert guard.decodes["StoreRecorder.decode"] >= len(evil) + 1
    assert guard.decodes["ResultCodec.decode"] >= 1
    assert_never_imported(hostile)
