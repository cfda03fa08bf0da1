"""The storage contract's inspection reads: ``query_jobs`` and ``job_counts``, every backend."""

from __future__ import annotations

import math
from typing import Any

import pytest

from jobify.storage import JobRecord, RecordStatus, Storage
from jobify.storage.base import JobQuery

PAUSED, FAILED, FINISHED = (
    RecordStatus.PAUSED,
    RecordStatus.PERMANENTLY_FAILED,
    RecordStatus.FINISHED,
)


def job(
    job_id: str, exec_at: float, task: str = "reports:weekly", status: str = "scheduled"
) -> JobRecord:
    return JobRecord(job_id, task, exec_at, b"args-" + job_id.encode(), b"trigger", status)


# Ties in exec_at (ordered by job id), several tasks and every status.
JOBS = [
    job("e", 30.0),
    job("a", 10.0),
    job("c", 20.0, task="mail:send"),
    job("b", 20.0),
    job("d", 20.0, status=PAUSED),
    job("f", 40.0, task="mail:send", status=FAILED),
    job("g", 50.0, status=FINISHED),
    job("h", 60.0, task="mail:send", status=PAUSED),
]
ORDERED = sorted(JOBS, key=lambda r: (r.exec_at, r.job_id))


def ids(records: list[JobRecord]) -> list[str]:
    return [r.job_id for r in records]


@pytest.fixture
async def filled(storage: Storage) -> Storage:
    await storage.save_many(JOBS)
    return storage


async def test_query_jobs_of_an_empty_store(storage: Storage) -> None:
    assert await storage.query_jobs(JobQuery()) == []


async def test_query_jobs_orders_by_exec_at_then_job_id(filled: Storage) -> None:
    assert await filled.query_jobs(JobQuery()) == ORDERED
    assert ids(ORDERED) == ["a", "b", "c", "d", "e", "f", "g", "h"]


@pytest.mark.parametrize(
    ("query", "expected"),
    [
        (JobQuery(task_name="mail:send"), ["c", "f", "h"]),
        (JobQuery(task_name="nobody"), []),
        (JobQuery(status="scheduled"), ["a", "b", "c", "e"]),
        (JobQuery(status=PAUSED), ["d", "h"]),
        (JobQuery(status=FAILED), ["f"]),
        (JobQuery(status=FINISHED), ["g"]),
        (JobQuery(task_name="mail:send", status=PAUSED), ["h"]),
        (JobQuery(task_name="reports:weekly", status="scheduled"), ["a", "b", "e"]),
        (JobQuery(due_before=20.0), ["a", "b", "c", "d"]),  # inclusive
        (JobQuery(due_after=40.0), ["f", "g", "h"]),  # inclusive
        (JobQuery(due_after=20.0, due_before=30.0), ["b", "c", "d", "e"]),
        (JobQuery(due_after=30.0, due_before=20.0), []),
        (JobQuery(due_before=-math.inf), []),
        (JobQuery(due_after=-math.inf, due_before=math.inf), list("abcdefgh")),
        (JobQuery(task_name="mail:send", due_after=25.0, status=FAILED), ["f"]),
    ],
)
async def test_query_jobs_filters(filled: Storage, query: JobQuery, expected: list[str]) -> None:
    assert ids(await filled.query_jobs(query)) == expected


async def test_query_jobs_returns_whole_records(filled: Storage) -> None:
    (found,) = await filled.query_jobs(JobQuery(task_name="mail:send", status=FAILED))
    assert found == job("f", 40.0, task="mail:send", status=FAILED)
    assert type(found.exec_at) is float


@pytest.mark.parametrize("limit", [1, 2, 3, 8, 100])
async def test_query_jobs_pages_walk_the_whole_order(filled: Storage, limit: int) -> None:
    pages = []
    for offset in range(0, len(JOBS), limit):
        page = await filled.query_jobs(JobQuery(limit=limit, offset=offset))
        assert len(page) == min(limit, len(JOBS) - offset)
        pages += page
    assert pages == ORDERED


async def test_query_jobs_page_of_a_filter(filled: Storage) -> None:
    query = JobQuery(task_name="reports:weekly", limit=2, offset=1)
    assert ids(await filled.query_jobs(query)) == ["b", "d"]


async def test_query_jobs_beyond_the_end_and_limit_zero(filled: Storage) -> None:
    assert await filled.query_jobs(JobQuery(offset=8)) == []
    assert await filled.query_jobs(JobQuery(offset=1000, limit=5)) == []
    assert await filled.query_jobs(JobQuery(limit=0)) == []


async def test_query_jobs_sees_replacements_and_deletes(filled: Storage) -> None:
    await filled.save(job("a", 45.0, status=PAUSED))
    await filled.delete("b")
    assert ids(await filled.query_jobs(JobQuery())) == ["c", "d", "e", "f", "a", "g", "h"]
    assert ids(await filled.query_jobs(JobQuery(status=PAUSED))) == ["d", "a", "h"]


async def test_query_jobs_on_many_records_pages_in_order(storage: Storage) -> None:
    records = [job(f"id-{i:05}", float(i // 7), task=f"t{i % 3}") for i in range(2000)]
    await storage.save_many(records)
    page = await storage.query_jobs(JobQuery(task_name="t1", limit=50, offset=500))
    expected = [r for r in records if r.task_name == "t1"][500:550]
    assert page == sorted(expected, key=lambda r: (r.exec_at, r.job_id))


async def test_query_jobs_refuses_what_is_not_a_job_query(storage: Storage) -> None:
    with pytest.raises(TypeError, match="JobQuery"):
        await storage.query_jobs({"task_name": "x"})  # type: ignore[arg-type]


async def test_job_counts(filled: Storage) -> None:
    assert await filled.job_counts() == {
        ("reports:weekly", "scheduled"): 3,
        ("reports:weekly", PAUSED): 1,
        ("reports:weekly", FINISHED): 1,
        ("mail:send", "scheduled"): 1,
        ("mail:send", FAILED): 1,
        ("mail:send", PAUSED): 1,
    }


async def test_job_counts_follow_writes(storage: Storage) -> None:
    assert await storage.job_counts() == {}
    await storage.save_many([job("a", 1.0), job("b", 2.0), job("c", 3.0, task="x")])
    await storage.save(job("b", 2.0, status=PAUSED))
    await storage.delete("c")
    assert await storage.job_counts() == {
        ("reports:weekly", "scheduled"): 1,
        ("reports:weekly", PAUSED): 1,
    }
    await storage.delete("a")
    assert await storage.job_counts() == {("reports:weekly", PAUSED): 1}


@pytest.mark.parametrize(
    ("fields", "error", "match"),
    [
        ({"limit": -1}, ValueError, "limit"),
        ({"offset": -1}, ValueError, "offset"),
        ({"limit": "10"}, TypeError, "limit"),
        ({"limit": True}, TypeError, "limit"),
        ({"offset": 1.5}, TypeError, "offset"),
        ({"status": "bogus"}, ValueError, "status must be one of"),
        ({"status": 1}, TypeError, "status"),
        ({"task_name": 3}, TypeError, "task_name"),
        ({"due_before": math.nan}, ValueError, "due_before"),
        ({"due_after": "tomorrow"}, TypeError, "due_after"),
        ({"due_after": False}, TypeError, "due_after"),
    ],
)
def test_bad_job_query_is_refused_when_built(
    fields: dict[str, Any], error: type[Exception], match: str
) -> None:
    with pytest.raises(error, match=match):
        JobQuery(**fields)
