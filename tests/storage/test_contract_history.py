"""The storage contract's run history and task list, on every backend."""

from __future__ import annotations

import math
from dataclasses import replace
from typing import Any

import pytest

from jobify.storage import JobRecord, Storage
from jobify.storage.base import HistoryQuery, RunRecord, TaskRecord


def run(
    job_id: str = "job-1",
    finished_at: float = 100.0,
    outcome: str = "success",
    task: str = "reports:weekly",
    **changes: Any,
) -> RunRecord:
    fields: dict[str, Any] = {
        "job_id": job_id,
        "task_name": task,
        "scheduled_at": finished_at - 3.0,
        "started_at": finished_at - 2.5,
        "finished_at": finished_at,
        "outcome": outcome,
    }
    fields.update(changes)
    return RunRecord(**fields)


FAILURE = run(
    "job-2",
    200.0,
    "failed",
    attempts=3,
    error_type="builtins.ValueError",
    error_message="bad value: ünïcødé",
    traceback='Traceback (most recent call last):\n  File "x.py", line 1\nValueError: bad',
    worker="host-a:1234",
)
RUNS = [
    run("job-1", 100.0),
    FAILURE,
    run("job-3", 150.0, "timeout", task="mail:send"),
    run("job-1", 300.0, "cancelled"),
    run("job-3", 250.0, "success", task="mail:send"),
]


def finished(runs: list[RunRecord]) -> list[float]:
    return [r.finished_at for r in runs]


@pytest.fixture
async def recorded(storage: Storage) -> Storage:
    for r in RUNS:
        storage.record_run_soon(r)
    await storage.flush()
    return storage


async def test_history_of_a_new_store_is_empty(storage: Storage) -> None:
    assert await storage.query_history(HistoryQuery()) == []


async def test_runs_come_back_newest_first_and_whole(recorded: Storage) -> None:
    runs = await recorded.query_history(HistoryQuery())
    assert finished(runs) == [300.0, 250.0, 200.0, 150.0, 100.0]
    assert runs[2] == FAILURE
    assert all(type(t) is float for r in runs for t in (r.scheduled_at, r.finished_at))


async def test_runs_finished_at_the_same_time_are_newest_recorded_first(storage: Storage) -> None:
    for job_id in ("first", "second", "third"):
        storage.record_run_soon(run(job_id, 5.0))
    await storage.flush()
    runs = await storage.query_history(HistoryQuery())
    assert [r.job_id for r in runs] == ["third", "second", "first"]


@pytest.mark.parametrize(
    ("query", "expected"),
    [
        (HistoryQuery(job_id="job-1"), [300.0, 100.0]),
        (HistoryQuery(job_id="nobody"), []),
        (HistoryQuery(task_name="mail:send"), [250.0, 150.0]),
        (HistoryQuery(failed_only=True), [200.0, 150.0]),  # failed and timeout
        (HistoryQuery(since=200.0), [300.0, 250.0, 200.0]),  # inclusive
        (HistoryQuery(since=math.inf), []),
        (HistoryQuery(task_name="mail:send", failed_only=True), [150.0]),
        (HistoryQuery(job_id="job-1", since=150.0), [300.0]),
        (HistoryQuery(limit=2), [300.0, 250.0]),
        (HistoryQuery(limit=2, offset=2), [200.0, 150.0]),
        (HistoryQuery(offset=4), [100.0]),
        (HistoryQuery(offset=5), []),
        (HistoryQuery(limit=0), []),
        (HistoryQuery(task_name="reports:weekly", limit=1, offset=1), [200.0]),
    ],
)
async def test_history_filters_and_pages(
    recorded: Storage, query: HistoryQuery, expected: list[float]
) -> None:
    assert finished(await recorded.query_history(query)) == expected


async def test_a_run_rides_with_job_writes(storage: Storage) -> None:
    job = JobRecord("job-1", "reports:weekly", 1.0, b"a", b"t")
    storage.save_soon(job)
    storage.record_run_soon(run("job-1", 10.0))
    await storage.save(replace(job, exec_at=2.0))
    assert await storage.get("job-1") == replace(job, exec_at=2.0)
    assert finished(await storage.query_history(HistoryQuery())) == [10.0]


async def test_untrusted_run_text_is_stored_escaped_not_refused(storage: Storage) -> None:
    # An exception message may carry a file name decoded with surrogateescape.
    odd = run("job-1", error_message="cannot open /tmp/\udcff.txt", traceback="\ud800")
    storage.record_run_soon(odd)
    storage.record_run_soon(run("job-2"))
    await storage.flush()
    runs = await storage.query_history(HistoryQuery())
    assert sorted(r.job_id for r in runs) == ["job-1", "job-2"]
    (kept,) = [r for r in runs if r.job_id == "job-1"]
    assert kept.error_message == "cannot open /tmp/\\udcff.txt"
    assert kept.traceback == "\\ud800"


async def test_a_run_is_stored_by_value_when_it_is_recorded(storage: Storage) -> None:
    # RunRecord is not frozen (it is built for every run): the storage takes its values at
    # once, and what the caller or a reader does with an object later changes nothing stored.
    given = run("job-1", 10.0)
    storage.record_run_soon(given)
    given.outcome = "failed"
    await storage.flush()
    (first,) = await storage.query_history(HistoryQuery())
    assert first.outcome == "success"
    first.outcome = "timeout"
    (again,) = await storage.query_history(HistoryQuery())
    assert again == run("job-1", 10.0)


async def test_integer_times_come_back_as_floats(storage: Storage) -> None:
    storage.record_run_soon(run(scheduled_at=1, started_at=2, finished_at=3))
    await storage.flush()
    (kept,) = await storage.query_history(HistoryQuery())
    assert (kept.scheduled_at, kept.started_at, kept.finished_at) == (1.0, 2.0, 3.0)
    assert all(type(t) is float for t in (kept.scheduled_at, kept.started_at, kept.finished_at))


@pytest.mark.parametrize(
    ("bad", "error"),
    [
        ("not a run", TypeError),
        (run(job_id=1), TypeError),  # type: ignore[arg-type]
        (run(outcome=None), TypeError),  # type: ignore[arg-type]
        (run(finished_at=1.0, scheduled_at="now"), TypeError),
        (run(started_at=True), TypeError),
        (run(attempts=1.0), TypeError),
        (run(attempts=0), ValueError),
        (run(traceback=b"bytes"), TypeError),
        (run(finished_at=math.nan), ValueError),
        (run(finished_at=math.inf), ValueError),
    ],
)
async def test_bad_run_is_refused_when_issued(
    storage: Storage, bad: RunRecord, error: type[Exception]
) -> None:
    with pytest.raises(error):
        storage.record_run_soon(bad)
    await storage.flush()
    assert await storage.query_history(HistoryQuery()) == []


# -- pruning ----------------------------------------------------------------------------------


async def test_prune_by_age(recorded: Storage) -> None:
    assert await recorded.prune_history(before=200.0, keep=100) == 2
    assert finished(await recorded.query_history(HistoryQuery())) == [300.0, 250.0, 200.0]


async def test_prune_by_count(recorded: Storage) -> None:
    assert await recorded.prune_history(before=-math.inf, keep=2) == 3
    assert finished(await recorded.query_history(HistoryQuery())) == [300.0, 250.0]
    assert await recorded.prune_history(before=-math.inf, keep=2) == 0


async def test_prune_by_age_and_count_keeps_only_what_both_keep(recorded: Storage) -> None:
    # Age alone would delete 100 and 150; count alone 150 and 100 and 200.
    assert await recorded.prune_history(before=160.0, keep=3) == 2
    assert finished(await recorded.query_history(HistoryQuery())) == [300.0, 250.0, 200.0]
    assert await recorded.prune_history(before=260.0, keep=3) == 2
    assert finished(await recorded.query_history(HistoryQuery())) == [300.0]


async def test_prune_keep_zero_empties_and_keep_more_than_all_keeps_all(recorded: Storage) -> None:
    assert await recorded.prune_history(before=-math.inf, keep=10) == 0
    assert await recorded.prune_history(before=-math.inf, keep=0) == 5
    assert await recorded.query_history(HistoryQuery()) == []
    assert await recorded.prune_history(before=math.inf, keep=0) == 0


async def test_prune_by_count_breaks_ties_by_recording_order(storage: Storage) -> None:
    for job_id in ("first", "second", "third"):
        storage.record_run_soon(run(job_id, 5.0))
    assert await storage.prune_history(before=-math.inf, keep=2) == 1
    assert [r.job_id for r in await storage.query_history(HistoryQuery())] == ["third", "second"]


async def test_prune_applies_to_runs_queued_before_it(storage: Storage) -> None:
    storage.record_run_soon(run("early", 1.0))
    assert await storage.prune_history(before=2.0, keep=10) == 1
    storage.record_run_soon(run("late", 1.0))  # queued after: not pruned
    await storage.flush()
    assert [r.job_id for r in await storage.query_history(HistoryQuery())] == ["late"]


@pytest.mark.parametrize(
    ("before", "keep", "error"),
    [
        (math.nan, 1, ValueError),
        ("yesterday", 1, TypeError),
        (None, 1, TypeError),
        (True, 1, TypeError),
        (0.0, -1, ValueError),
        (0.0, 1.5, TypeError),
        (0.0, True, TypeError),
    ],
)
async def test_bad_prune_is_refused(
    recorded: Storage, before: Any, keep: Any, error: type[Exception]
) -> None:
    with pytest.raises(error):
        await recorded.prune_history(before=before, keep=keep)
    assert len(await recorded.query_history(HistoryQuery())) == 5


@pytest.mark.parametrize(
    ("fields", "error", "match"),
    [
        ({"failed_only": "yes"}, TypeError, "failed_only"),
        ({"since": math.nan}, ValueError, "since"),
        ({"since": "today"}, TypeError, "since"),
        ({"job_id": 1}, TypeError, "job_id"),
        ({"task_name": b"t"}, TypeError, "task_name"),
        ({"limit": -5}, ValueError, "limit"),
        ({"offset": None}, TypeError, "offset"),
    ],
)
def test_bad_history_query_is_refused_when_built(
    fields: dict[str, Any], error: type[Exception], match: str
) -> None:
    with pytest.raises(error, match=match):
        HistoryQuery(**fields)


async def test_query_history_refuses_what_is_not_a_history_query(storage: Storage) -> None:
    with pytest.raises(TypeError, match="HistoryQuery"):
        await storage.query_history(None)  # type: ignore[arg-type]


# -- task list --------------------------------------------------------------------------------

TASKS = [
    TaskRecord("reports:weekly", '{"run_mode": "main"}', 1000.0),
    TaskRecord("mail:send", '{"retry": 3}', 1000.5),
]


async def test_task_list_is_empty_until_saved(storage: Storage) -> None:
    assert await storage.load_tasks() == []


async def test_save_tasks_replaces_the_list(storage: Storage) -> None:
    await storage.save_tasks(TASKS)
    assert await storage.load_tasks() == sorted(TASKS, key=lambda t: t.name)
    newer = [TaskRecord("mail:send", "{}", 2000.0), TaskRecord("a:new", "{}", 2000.0)]
    await storage.save_tasks(newer)
    assert await storage.load_tasks() == sorted(newer, key=lambda t: t.name)
    await storage.save_tasks([])
    assert await storage.load_tasks() == []


@pytest.mark.parametrize(
    ("bad", "error"),
    [
        ([TASKS[0], TASKS[0]], ValueError),
        (["reports:weekly"], TypeError),
        ([TaskRecord("t", None, 1.0)], TypeError),  # type: ignore[arg-type]
        ([TaskRecord("t", "{}", "now")], TypeError),  # type: ignore[arg-type]
        ("reports:weekly", TypeError),
        (None, TypeError),
    ],
)
async def test_bad_task_list_is_refused(storage: Storage, bad: Any, error: type[Exception]) -> None:
    await storage.save_tasks(TASKS)
    with pytest.raises(error):
        await storage.save_tasks(bad)
    assert len(await storage.load_tasks()) == 2
