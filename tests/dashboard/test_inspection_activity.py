"""What the dashboard added to the inspection layer: ``Inspector.run_activity`` (runs and
failures per bucket, lateness) and ``Inspector.list_crons`` — on real SQLite stores."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from jobify._triggerdoc import AT_TRIGGER, encode_trigger
from jobify._triggers import Cron
from jobify.inspection import MAX_BUCKETS, Inspector
from jobify.inspection._activity import bucket_runs
from jobify.storage import SQLiteStorage
from jobify.storage.base import JobRecord, RunRecord

T0 = 1_800_000_000.0  # a whole minute: 2027-01-15 08:00:00 UTC


def run(finished: float, outcome: str = "success", late: float = 0.5) -> RunRecord:
    return RunRecord("j", "t", finished - 1 - late, finished - 1, finished, outcome)


def test_bucket_runs_counts_per_bucket() -> None:
    runs = [
        run(T0 + 5),
        run(T0 + 59.9, "failed", late=2.0),
        run(T0 + 60),
        run(T0 + 150, "timeout", late=-0.25),
        run(T0 + 170, "cancelled"),  # not a failure
        run(T0 - 1),  # before the window
        run(T0 + 180),  # at its end: outside
    ]
    activity = bucket_runs(runs, since=T0, until=T0 + 180, bucket=60)
    assert [(b.runs, b.failures) for b in activity.buckets] == [(2, 1), (1, 0), (2, 1)]
    assert [b.start.timestamp() for b in activity.buckets] == [T0, T0 + 60, T0 + 120]
    assert activity.buckets[0].lateness_max == 2.0
    assert activity.buckets[2].lateness_max == 0.5
    assert activity.runs == 5 and activity.failures == 2
    assert activity.lateness_max == 2.0
    assert activity.lateness_p50 == 0.5
    assert activity.lateness_p95 == 2.0
    assert activity.truncated is False and activity.counted_since is None


def test_bucket_runs_edges() -> None:
    empty = bucket_runs([], since=T0, until=T0 + 90, bucket=60)
    assert len(empty.buckets) == 2  # the last one is partial
    assert empty.runs == 0 and empty.lateness_p50 is None and empty.lateness_max is None
    assert empty.buckets[0].lateness_max is None
    cut = bucket_runs([run(T0 + 80)], since=T0, until=T0 + 90, bucket=60, truncated=True)
    assert cut.counted_since == datetime.fromtimestamp(T0 + 80, UTC)


@pytest.mark.parametrize(
    ("since", "until", "bucket", "message"),
    [
        (T0, T0, 60, "since must be before until"),
        (T0 + 1, T0, 60, "since must be before until"),
        (T0, T0 + 60, 0, "bucket must be a positive number of seconds"),
        (T0, T0 + 60, float("nan"), "bucket must be a positive number"),
        (T0, T0 + 60 * (MAX_BUCKETS + 1), 60, f"at most {MAX_BUCKETS}"),
    ],
)
def test_bucket_runs_refuses_bad_windows(
    since: float, until: float, bucket: float, message: str
) -> None:
    with pytest.raises(ValueError, match=message):
        bucket_runs([], since=since, until=until, bucket=bucket)


async def history_store(path: Path, count: int) -> None:
    owner = SQLiteStorage(path)
    await owner.startup()
    try:
        for i in range(count):
            finished = T0 + i  # one run a second from T0 on
            outcome = "failed" if i % 10 == 0 else "success"
            owner.record_run_soon(
                RunRecord(f"j{i % 3}", "a" if i % 2 else "b", finished - 2, finished - 1,
                          finished, outcome)
            )  # fmt: skip
        await owner.flush()
    finally:
        await owner.shutdown()


async def test_run_activity_on_sqlite(tmp_path: Path) -> None:
    path = tmp_path / "jobs.db"
    await history_store(path, 300)
    now = T0 + 300
    async with Inspector.from_url(str(path), clock=lambda: now) as inspector:
        since = datetime.fromtimestamp(T0, UTC)
        activity = await inspector.run_activity(since=since)  # until now (the clock)
        assert activity.runs == 300 and activity.failures == 30
        assert [b.runs for b in activity.buckets] == [60] * 5
        assert activity.lateness_max == 1.0
        by_task = await inspector.run_activity(since=since, task="a", bucket=150)
        assert [b.runs for b in by_task.buckets] == [75, 75]
        # Naive datetimes are UTC, as everywhere in the inspection layer.
        naive = await inspector.run_activity(
            since=datetime(2027, 1, 15, 8, 0, 0), until=datetime(2027, 1, 15, 8, 1, 0)
        )
        assert naive.runs == 60
        # A scan limit keeps only the newest runs, and says so.
        capped = await inspector.run_activity(since=since, scan_limit=100)
        assert capped.runs == 100 and capped.truncated is True
        assert capped.counted_since == datetime.fromtimestamp(T0 + 200, UTC)
        exact = await inspector.run_activity(since=since, scan_limit=300)
        assert exact.truncated is False
        with pytest.raises(ValueError, match="scan_limit must be an int >= 1"):
            await inspector.run_activity(since=since, scan_limit=0)
        with pytest.raises(TypeError, match="since must be a datetime"):
            await inspector.run_activity(since=T0)  # type: ignore[arg-type]
        with pytest.raises(TypeError, match="bucket must be a number of seconds"):
            await inspector.run_activity(since=since, bucket=timedelta(minutes=1))  # type: ignore[arg-type]


async def test_run_activity_pages_through_more_than_one_read(tmp_path: Path) -> None:
    path = tmp_path / "jobs.db"
    await history_store(path, 10_500)  # more than MAX_PAGE (10,000) rows
    now = T0 + 10_500
    async with Inspector.from_url(str(path), clock=lambda: now) as inspector:
        activity = await inspector.run_activity(since=datetime.fromtimestamp(T0, UTC), bucket=3600)
    assert activity.runs == 10_500 and activity.truncated is False
    assert [b.runs for b in activity.buckets] == [3600, 3600, 3300]


async def test_list_crons(tmp_path: Path) -> None:
    path = tmp_path / "jobs.db"
    owner = SQLiteStorage(path)
    await owner.startup()
    cron = encode_trigger(Cron("*/5 * * * *"), UTC, runs=3, failures=0)
    records = [JobRecord(f"once-{i:05d}", "t", T0 + i, b"{}", AT_TRIGGER) for i in range(12_000)]
    records += [
        JobRecord("cron-late", "t", T0 + 11_999.5, b"{}", cron),
        JobRecord("cron-early", "t", T0 - 10, b"{}", cron),
        JobRecord("cron-paused", "t", T0 + 100.5, b"{}", cron, "paused"),
        JobRecord("broken", "t", T0 + 5.5, b"{}", b"not json"),
    ]
    await owner.save_many(records)
    await owner.shutdown()
    async with Inspector.from_url(str(path)) as inspector:
        crons = await inspector.list_crons()
        assert [j.job_id for j in crons] == ["cron-early", "broken", "cron-paused", "cron-late"]
        assert crons[0].cron is not None and crons[0].cron.runs == 3
        assert crons[1].kind == "unreadable"
        scheduled = await inspector.list_crons(status="scheduled", limit=2)
        assert [j.job_id for j in scheduled] == ["cron-early", "broken"]
        paused = await inspector.list_crons(status="paused")
        assert [j.job_id for j in paused] == ["cron-paused"]
        with pytest.raises(ValueError, match="unknown status"):
            await inspector.list_crons(status="running")
        with pytest.raises(ValueError, match="limit must be >= 1"):
            await inspector.list_crons(limit=0)
