"""Issue 13: the dashboard's pages on a SQLite store of 100,000 jobs, server time in process.

The store is seeded once (``save_many``: 100,000 jobs of four tasks, one in ten paused, 50
cron jobs, 10,000 recorded runs) and only read by the workloads. Each request is a direct
call of the ASGI application (no socket, no client): the time from the call to the last byte
of the response, median of 15 requests per case after one warm-up request.

``jobs_page``: ``/jobs`` first page and a deep page (offset ~50,000), filtered by task and by
status and not; target: under 100 ms each (issue 13). Every response is checked (status 200,
50 rows, the expected first job id).
``other_pages``: the overview, a job page, the crons page (which walks every job, see
``Inspector.list_crons``) and the failures page, for scale.
Run: ``.venv/bin/python benchmarks/bench_dashboard.py [workload ...]``.
"""

from __future__ import annotations

import asyncio
import re
import shutil
import statistics
import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import _harness as h
from jobify import Cron
from jobify._triggerdoc import AT_TRIGGER, encode_trigger
from jobify.dashboard import create_app
from jobify.serializers import ExtendedJSONSerializer
from jobify.storage import SQLiteStorage
from jobify.storage.base import JobRecord, RunRecord, TaskRecord

JOBS = 100_000
TASKS = ("mail:send", "reports:weekly", "billing:charge", "cleanup:purge")
CRONS = 50
RUNS_RECORDED = 10_000
REQUESTS = 15
PER_PAGE = 50
START = 1_900_000_000.0  # every job is due in the future (2030), one a second


def job_id(i: int) -> str:
    return f"job-{i:06d}"


async def seed(path: Path) -> float:
    started = time.perf_counter()
    serializer = ExtendedJSONSerializer()
    storage = SQLiteStorage(path)
    await storage.startup()
    try:
        cron = encode_trigger(Cron("*/15 * * * *"), None, runs=3, failures=0)
        records = []
        for i in range(JOBS):
            arguments = serializer.dumpb({"user_id": i, "report": f"r-{i}.pdf", "notify": True})
            trigger = cron if i % (JOBS // CRONS) == 7 else AT_TRIGGER
            status = "paused" if i % 10 == 3 else "scheduled"
            records.append(
                JobRecord(job_id(i), TASKS[i % 4], START + i, arguments, trigger, status)
            )
        for chunk in range(0, JOBS, 10_000):
            await storage.save_many(records[chunk : chunk + 10_000])
        now = time.time()
        for i in range(RUNS_RECORDED):
            finished = now - i * 0.5
            failed = i % 13 == 0
            storage.record_run_soon(
                RunRecord(
                    job_id(i % JOBS), TASKS[i % 4], finished - 2, finished - 1.9, finished,
                    "failed" if failed else "success",
                    error_type="ValueError" if failed else None,
                    error_message="bad input" if failed else None,
                    traceback="Traceback (most recent call last):\n  ...\nValueError\n" * 3
                    if failed else None,
                )
            )  # fmt: skip
        await storage.save_tasks([TaskRecord(name, "{}", now) for name in TASKS])
        await storage.flush()
    finally:
        await storage.shutdown()
    return time.perf_counter() - started


async def call(app: Any, path: str, query: str = "") -> tuple[int, bytes, float]:
    """One GET straight into the ASGI app: status, body, seconds."""
    scope = {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": "GET",
        "scheme": "http",
        "path": path,
        "raw_path": path.encode(),
        "query_string": query.encode(),
        "root_path": "",
        "headers": [(b"host", b"127.0.0.1:8000")],
        "client": ("127.0.0.1", 50000),
        "server": ("127.0.0.1", 8000),
    }
    status = 0
    body = bytearray()

    async def receive() -> dict[str, Any]:
        return {"type": "http.request", "body": b"", "more_body": False}

    async def send(message: dict[str, Any]) -> None:
        nonlocal status
        if message["type"] == "http.response.start":
            status = message["status"]
        elif message["type"] == "http.response.body":
            body.extend(message.get("body", b""))

    started = time.perf_counter()
    await app(scope, receive, send)
    return status, bytes(body), time.perf_counter() - started


async def median_ms(app: Any, path: str, query: str, first_id: str | None = None) -> float:
    await call(app, path, query)  # warm-up: opens the store, compiles the templates
    times = []
    for _ in range(REQUESTS):
        status, body, seconds = await call(app, path, query)
        h.expect(status == 200, f"{path}?{query}: HTTP {status}: {body[:300]!r}")
        if first_id is not None:
            ids = re.findall(rb'<tr class="job" data-job-id="([^"]+)"', body)
            h.expect(len(ids) == PER_PAGE, f"{path}?{query}: {len(ids)} rows")
            h.expect(ids[0].decode() == first_id, f"{path}?{query}: first {ids[0]!r}")
        times.append(seconds)
    return statistics.median(times) * 1000


def _first_of(task: int | None, status: str | None, page: int) -> str:
    """The id of the first job on a page of a filter, from how the store was seeded."""
    matching = (
        i
        for i in range(JOBS)
        if (task is None or i % 4 == task)
        and (status is None or (status == "paused") == (i % 10 == 3))
    )
    skip = (page - 1) * PER_PAGE
    for n, i in enumerate(matching):
        if n == skip:
            return job_id(i)
    raise AssertionError("page past the end")


async def jobs_page(argv: list[str]) -> dict[str, float]:
    app = create_app(f"sqlite:///{argv[0]}", refresh_seconds=0)
    cases = {
        "first_ms": ("", None, None, 1),
        "deep_ms": ("page=1000", None, None, 1000),
        "task_first_ms": ("task=reports%3Aweekly", 1, None, 1),
        "task_deep_ms": ("task=reports%3Aweekly&page=400", 1, None, 400),
        "status_deep_ms": ("status=paused&page=150", None, "paused", 150),
        "both_deep_ms": ("task=cleanup%3Apurge&status=scheduled&page=300", 3, "scheduled", 300),
    }
    metrics: dict[str, float] = {}
    async with app.router.lifespan_context(app):
        for key, (query, task, status, page) in cases.items():
            first = _first_of(task, status, page)
            metrics[key] = await median_ms(app, "/jobs", query, first)
        metrics["api_deep_ms"] = await median_ms(app, "/api/jobs", "page=1000")
    return metrics


async def other_pages(argv: list[str]) -> dict[str, float]:
    app = create_app(f"sqlite:///{argv[0]}", refresh_seconds=0)
    async with app.router.lifespan_context(app):
        return {
            "overview_ms": await median_ms(app, "/", ""),
            "job_ms": await median_ms(app, f"/jobs/{job_id(7)}", ""),
            "crons_ms": await median_ms(app, "/crons", ""),
            "failures_ms": await median_ms(app, "/failures", ""),
        }


class Seeded:
    """The store, seeded once before the runs; removed after."""

    def __init__(self) -> None:
        self.dir = Path(tempfile.mkdtemp(prefix="jobify-bench-dashboard-"))
        self.path = self.dir / "jobs.db"
        seconds = asyncio.run(seed(self.path))
        print(f"  (seeded {JOBS:,} jobs and {RUNS_RECORDED:,} runs in {seconds:.2f} s)",
              file=sys.stderr)  # fmt: skip

    def args(self, workload: str, run: int) -> Sequence[str]:
        return [str(self.path)]

    def cleanup(self) -> None:
        shutil.rmtree(self.dir, ignore_errors=True)


WORKLOADS: dict[str, h.Workload] = {"jobs_page": jobs_page, "other_pages": other_pages}

T = h.Target
TARGETS = [
    T("jobs_page", "first_ms", "/jobs first page, 100k jobs", "ms", "<=", 100),
    T("jobs_page", "deep_ms", "/jobs page 1000 (offset 49,950)", "ms", "<=", 100),
    T("jobs_page", "task_first_ms", "/jobs?task= first page", "ms", "<=", 100),
    T("jobs_page", "task_deep_ms", "/jobs?task= page 400", "ms", "<=", 100),
    T("jobs_page", "status_deep_ms", "/jobs?status=paused page 150", "ms", "<=", 100),
    T("jobs_page", "both_deep_ms", "/jobs?task=&status= page 300", "ms", "<=", 100),
    T("jobs_page", "api_deep_ms", "/api/jobs page 1000 (JSON)", "ms"),
    T("other_pages", "overview_ms", "/ overview (10k runs in history)", "ms"),
    T("other_pages", "job_ms", "/jobs/{id} (a cron job)", "ms"),
    T("other_pages", "crons_ms", "/crons (walks 100k jobs for 50 crons)", "ms"),
    T("other_pages", "failures_ms", "/failures", "ms"),
]


def main() -> int:
    seeded: Seeded | None = None

    def prepare() -> Seeded:
        nonlocal seeded
        seeded = Seeded()
        return seeded

    def extra(workload: str, run: int) -> Sequence[str]:
        return seeded.args(workload, run) if seeded is not None else []

    return h.main(__file__, WORKLOADS, TARGETS, extra_args=extra, prepare=prepare)


if __name__ == "__main__":
    sys.exit(main())
