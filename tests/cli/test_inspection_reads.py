"""``jobify.inspection.Inspector`` reads against real SQLite stores (queries, decoding)."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from jobify import Cron
from jobify._triggerdoc import AT_TRIGGER
from jobify.exceptions import StorageError
from jobify.inspection import (
    InspectionError,
    Inspector,
    JobNotFoundError,
)
from jobify.storage import SQLiteStorage
from jobify.storage.base import JobRecord, TaskRecord

from .conftest import BERLIN, ONCE_AT, Store, cron_record, save

# -- reads --------------------------------------------------------------------------------------


async def test_list_jobs_decodes_each_record(inspector: Inspector, store: Store) -> None:
    jobs = {job.job_id: job for job in await inspector.list_jobs()}
    once = jobs[store.once_id]
    assert (once.kind, once.status, once.task_name) == ("once", "scheduled", "send_email")
    assert once.next_run == ONCE_AT
    assert once.next_run.tzinfo is not None
    assert once.arguments.values == {"to": "a@example.com", "subject": "Quarterly"}
    assert once.arguments.error is None
    assert once.orphaned is False
    cron = jobs[store.cron_id].cron
    assert cron is not None
    assert (cron.expression, cron.tz, cron.runs, cron.max_runs) == (
        "0 9 * * *",
        "Europe/Berlin",
        0,
        10,
    )
    assert (cron.failures, cron.max_failures, cron.misfire_policy) == (0, 10, "once")
    assert jobs[store.static_cron_id].cron is not None
    assert jobs[store.orphan_id].orphaned is True


async def test_list_jobs_filters(inspector: Inspector, store: Store) -> None:
    by_task = await inspector.list_jobs(task="report")
    assert [job.job_id for job in by_task] == [store.static_cron_id]
    naive = ONCE_AT.replace(tzinfo=None)  # naive datetimes are UTC
    at_once = await inspector.list_jobs(due_after=naive, due_before=naive)
    assert {job.job_id for job in at_once} == {store.once_id, store.orphan_id}
    aware = ONCE_AT.astimezone(BERLIN)
    assert len(await inspector.list_jobs(due_after=aware, due_before=aware)) == 2
    assert await inspector.list_jobs(status="paused") == []
    page = await inspector.list_jobs(limit=2, offset=1)
    everything = await inspector.list_jobs()
    assert [job.job_id for job in page] == [job.job_id for job in everything[1:3]]


@pytest.mark.parametrize(
    ("kwargs", "error"),
    [
        ({"status": "running"}, ValueError),
        ({"limit": 0}, ValueError),
        ({"limit": 10_001}, ValueError),
        ({"offset": -1}, ValueError),
        ({"limit": "5"}, TypeError),
        ({"due_before": "2025-01-01"}, TypeError),
    ],
)
async def test_list_jobs_bad_arguments(
    inspector: Inspector, kwargs: dict[str, object], error: type[Exception]
) -> None:
    with pytest.raises(error):
        await inspector.list_jobs(**kwargs)  # type: ignore[arg-type]


async def test_get_job_next_fires_in_the_jobs_zone(inspector: Inspector, store: Store) -> None:
    detail = await inspector.get_job(store.cron_id, fires=3)
    assert len(detail.next_fires) == 3
    assert detail.next_fires[0] == detail.job.next_run
    for fire in detail.next_fires:
        assert fire.tzinfo == BERLIN
        assert (fire.hour, fire.minute) == (9, 0)
    assert [b - a for a, b in zip(detail.next_fires, detail.next_fires[1:], strict=False)] == [
        timedelta(days=1)
    ] * 2
    assert detail.last_run is not None
    assert detail.last_run.outcome == "failed"
    assert detail.last_run.failed
    assert detail.last_run.error_type == "ConnectionError"
    assert detail.last_run.traceback is not None
    one_shot = await inspector.get_job(store.once_id)
    assert one_shot.next_fires == ()
    assert one_shot.last_run is not None
    assert one_shot.last_run.outcome == "success"
    assert not one_shot.last_run.failed


async def test_next_fires_are_bounded_by_max_runs_and_status(store: Store) -> None:
    nine = datetime(2030, 5, 1, 9, tzinfo=UTC)
    await save(
        store.path,
        cron_record("almost-done", Cron("0 9 * * *", max_runs=3), nine, runs=1),
        cron_record("failed-for-good", Cron("0 9 * * *"), nine, status="permanently_failed"),
        cron_record(
            "paused-old", Cron("0 9 * * *"), datetime(2020, 1, 1, 9, tzinfo=UTC), status="paused"
        ),
    )
    async with Inspector.from_url(store.url) as inspector:
        assert len((await inspector.get_job("almost-done", fires=10)).next_fires) == 2
        assert (await inspector.get_job("failed-for-good")).next_fires == ()
        paused = await inspector.get_job("paused-old", fires=2)
        # A paused job fires, once resumed, after now (its missed fires go to the policy).
        assert paused.next_fires[0] > datetime.now(UTC)
        assert paused.job.next_run.year == 2020


async def test_get_job_unknown_id(inspector: Inspector, store: Store) -> None:
    with pytest.raises(JobNotFoundError, match="no job with id 'nope'") as caught:
        await inspector.get_job("nope")
    assert caught.value.job_id == "nope"
    assert isinstance(caught.value, LookupError)
    assert str(store.path) in str(caught.value)


async def test_undecodable_records_are_described_not_raised(store: Store) -> None:
    await save(
        store.path,
        JobRecord("binary-args", "send_email", 2e9, b"\xff\x00\x01binary", AT_TRIGGER),
        JobRecord("escape-args", "send_email", 2e9, b"\x1b[2Jgotcha\x1b]0;x\x07", AT_TRIGGER),
        JobRecord("bad-trigger", "send_email", 2e9, b"{}", b'{"v":99,"type":"cron"}'),
        JobRecord("list-args", "send_email", 2e9, b"[1, 2]", AT_TRIGGER),
    )
    async with Inspector.from_url(store.url) as inspector:
        jobs = {job.job_id: job for job in await inspector.list_jobs(limit=100)}
    binary = jobs["binary-args"].arguments
    assert binary.values is None
    assert binary.error is not None and "ExtendedJSONSerializer" in binary.error
    assert binary.summary == "<9 bytes: ff0001" + b"binary".hex() + ">"
    assert binary.raw == b"\xff\x00\x01binary"
    escaped = jobs["escape-args"].arguments.summary
    assert "\x1b" not in escaped and "\x07" not in escaped
    assert "\\x1b[2Jgotcha" in escaped
    bad = jobs["bad-trigger"]
    assert bad.kind == "unreadable"
    assert bad.cron is None
    assert bad.trigger_error is not None and "unknown trigger format" in bad.trigger_error
    assert jobs["list-args"].arguments.error == "decoded to a list, not a mapping of arguments"
    assert jobs["list-args"].arguments.summary == "[1, 2]"


async def test_arguments_as_stored_without_a_serializer(store: Store) -> None:
    async with Inspector.from_url(store.url, serializer=None) as inspector:
        job = (await inspector.get_job(store.once_id)).job
    assert job.arguments.values is None
    assert json.loads(job.arguments.summary) == {"to": "a@example.com", "subject": "Quarterly"}


async def test_orphaned_is_unknown_without_a_task_list(tmp_path: Path) -> None:
    path = tmp_path / "bare.db"
    await save(path, JobRecord("j", "anything", 2e9, b"{}", AT_TRIGGER))
    async with Inspector.from_url(str(path)) as inspector:
        (job,) = await inspector.list_jobs()
        assert job.orphaned is None
        assert await inspector.registered_tasks() is None
        assert await inspector.list_tasks() == []
        assert (await inspector.list_runs()) == []


async def test_counts(inspector: Inspector, store: Store) -> None:
    await inspector.pause(store.cron_id)
    counts = await inspector.count_jobs()
    assert counts.total == 4
    assert counts.by_status == {"paused": 1, "scheduled": 3}
    assert counts.by_task == {
        "gone_task": {"scheduled": 1},
        "report": {"scheduled": 1},
        "send_email": {"paused": 1, "scheduled": 1},
    }


async def test_run_history_filters(inspector: Inspector, store: Store) -> None:
    runs = await inspector.list_runs()
    assert [run.job_id for run in runs] == [store.cron_id, store.once_id]
    failed = runs[0]
    assert failed.duration == pytest.approx(1.5)
    assert failed.lateness == pytest.approx(0.1)
    assert failed.attempts == 3
    assert failed.worker == "host:1"
    assert [r.job_id for r in await inspector.list_runs(failed_only=True)] == [store.cron_id]
    assert [r.job_id for r in await inspector.list_runs(job_id=store.once_id)] == [store.once_id]
    assert await inspector.list_runs(task="report") == []
    since = datetime.now(UTC) - timedelta(seconds=90)
    assert [r.job_id for r in await inspector.list_runs(since=since)] == [store.cron_id]
    assert len(await inspector.list_runs(limit=1, offset=1)) == 1


async def test_tasks(store: Store) -> None:
    owner = SQLiteStorage(store.path)
    await owner.startup()
    await owner.save_tasks(
        [
            TaskRecord("b", json.dumps({"run_mode": "thread", "timeout": 3}), 1.7e9),
            TaskRecord("a", "not json", 1.7e9),
            TaskRecord("c", "[1]", 1.7e9),
        ]
    )
    await owner.shutdown()
    async with Inspector.from_url(store.url) as inspector:
        tasks = await inspector.list_tasks()
        registered = await inspector.registered_tasks()
    assert [t.name for t in tasks] == ["a", "b", "c"]
    assert tasks[1].options == {"run_mode": "thread", "timeout": 3}
    assert tasks[1].updated_at == datetime.fromtimestamp(1.7e9, UTC)
    assert tasks[0].options == {} and tasks[0].options_error is not None
    assert tasks[2].options_error == "options are not a JSON object"
    assert registered == frozenset("abc")


# -- life cycle and opening -------------------------------------------------------------------


async def test_not_open_and_double_open(store: Store) -> None:
    inspector = Inspector.from_url(store.url)
    with pytest.raises(InspectionError, match="not open"):
        await inspector.list_jobs()
    await inspector.open()
    try:
        with pytest.raises(InspectionError, match="already open"):
            await inspector.open()
    finally:
        await inspector.close()
    await inspector.close()  # idempotent


async def test_opening_does_not_take_ownership(store: Store) -> None:
    async with Inspector.from_url(store.url) as inspector:
        assert await inspector.owner_running() is False
        # An app can start on the store while it is being inspected.
        owner = SQLiteStorage(store.path)
        await owner.startup()
        try:
            assert await inspector.owner_running() is True
            assert len(await inspector.list_jobs()) == 4
        finally:
            await owner.shutdown()
        assert await inspector.owner_running() is False


async def test_missing_store(tmp_path: Path) -> None:
    with pytest.raises(StorageError, match="does not exist"):
        await Inspector.from_url(str(tmp_path / "none.db")).open()
    assert not (tmp_path / "none.db").exists()
    with pytest.raises(StorageError, match="is a directory"):
        await Inspector.from_url(str(tmp_path)).open()


async def test_postgresql_needs_its_storage() -> None:
    import jobify.storage

    if hasattr(jobify.storage, "PostgresStorage"):
        pytest.skip("PostgresStorage exists: its own tests cover opening it")
    with pytest.raises(InspectionError, match="no PostgreSQL storage"):
        await Inspector.from_url("postgresql://postgres@127.0.0.1/test").open()


def test_constructor_checks() -> None:
    with pytest.raises(ValueError, match="command_timeout"):
        Inspector(lambda: SQLiteStorage("x.db"), command_timeout=0)
    with pytest.raises(TypeError, match="open_storage"):
        Inspector("x.db")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="unknown storage URL scheme"):
        Inspector.from_url("redis://localhost")
