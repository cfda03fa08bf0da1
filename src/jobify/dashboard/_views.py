"""What each page shows, read from the inspector once and used by both twins of a route (the
HTML page and its JSON under ``/api/``)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from jobify.dashboard._chart import (
    ActivityChart,
    Timeline,
    activity_chart,
    cron_timeline,
    median_gap,
)
from jobify.dashboard._json import job_json, jsonable, run_json
from jobify.inspection import (
    Inspector,
    JobCounts,
    JobDetail,
    JobInfo,
    RunActivity,
    RunInfo,
)
from jobify.storage.base import RecordStatus

__all__ = [
    "LATE_AFTER",
    "CronsView",
    "JobView",
    "JobsView",
    "OverviewView",
    "RunsView",
    "crons_view",
    "job_view",
    "jobs_view",
    "overview_view",
    "runs_view",
]

LATE_AFTER = 60.0
"""Seconds past its fire time after which a scheduled job shows as late on the overview (a
running app fires on time; a late job usually means no app runs)."""
LATE_SHOWN = 10
MAX_CRONS = 200
"""Cron jobs shown on the crons page (the first by next fire)."""
TIMELINE_FIRES = 60
"""Fires computed per cron for the timeline."""
RECENT_FAILURES = 5


@dataclass(frozen=True, slots=True)
class OverviewView:
    now: datetime
    hours: int
    counts: JobCounts
    owner_running: bool | None
    activity: RunActivity
    chart: ActivityChart
    late: list[JobInfo]
    late_more: bool
    recent_failures: list[RunInfo]

    def json(self) -> dict[str, Any]:
        return {
            "now": self.now.isoformat(),
            "hours": self.hours,
            "counts": jsonable(self.counts),
            "owner_running": self.owner_running,
            "activity": jsonable(self.activity),
            "late_after_seconds": LATE_AFTER,
            "late": [job_json(job) for job in self.late],
            "late_more": self.late_more,
            "recent_failures": [run_json(run) for run in self.recent_failures],
        }


async def overview_view(inspector: Inspector, hours: int, now: datetime) -> OverviewView:
    counts = await inspector.count_jobs()
    activity = await inspector.run_activity(
        since=now - timedelta(hours=hours), until=now, bucket=60.0 if hours <= 12 else 600.0
    )
    late = await inspector.list_jobs(
        status=RecordStatus.SCHEDULED,
        due_before=now - timedelta(seconds=LATE_AFTER),
        limit=LATE_SHOWN + 1,
    )
    return OverviewView(
        now=now,
        hours=hours,
        counts=counts,
        owner_running=await inspector.owner_running(),
        activity=activity,
        chart=activity_chart(activity, zone=now.tzinfo or UTC),
        late=late[:LATE_SHOWN],
        late_more=len(late) > LATE_SHOWN,
        recent_failures=await inspector.list_runs(failed_only=True, limit=RECENT_FAILURES),
    )


@dataclass(frozen=True, slots=True)
class JobsView:
    now: datetime
    jobs: list[JobInfo]
    page: int
    per_page: int
    has_next: bool
    filters: dict[str, Any]
    tasks: list[str]
    """Registered task names (suggestions for the task filter)."""

    @property
    def first(self) -> int:
        return (self.page - 1) * self.per_page + 1

    def json(self) -> dict[str, Any]:
        return {
            "jobs": [job_json(job) for job in self.jobs],
            "page": self.page,
            "per_page": self.per_page,
            "has_next": self.has_next,
            "filters": jsonable(self.filters),
        }


async def jobs_view(
    inspector: Inspector,
    *,
    now: datetime,
    page: int,
    per_page: int,
    task: str | None,
    status: str | None,
    due_after: datetime | None,
    due_before: datetime | None,
) -> JobsView:
    # One row more than the page says whether a next page exists, without counting the
    # matches (a count walks every match; the page walks only what it shows).
    found = await inspector.list_jobs(
        task=task,
        status=status,
        due_after=due_after,
        due_before=due_before,
        limit=per_page + 1,
        offset=(page - 1) * per_page,
    )
    registered = await inspector.registered_tasks()
    return JobsView(
        now=now,
        jobs=found[:per_page],
        page=page,
        per_page=per_page,
        has_next=len(found) > per_page,
        filters={"task": task, "status": status, "due_after": due_after, "due_before": due_before},
        tasks=sorted(registered or ()),
    )


@dataclass(frozen=True, slots=True)
class JobView:
    now: datetime
    detail: JobDetail
    runs: list[RunInfo]
    page: int
    per_page: int
    has_next: bool

    def json(self) -> dict[str, Any]:
        data = job_json(self.detail.job)
        data["next_fires"] = [fire.isoformat() for fire in self.detail.next_fires]
        data["runs"] = [run_json(run) for run in self.runs]
        data["runs_page"] = self.page
        data["runs_per_page"] = self.per_page
        data["runs_has_next"] = self.has_next
        return data


async def job_view(
    inspector: Inspector, job_id: str, *, now: datetime, page: int, per_page: int
) -> JobView:
    detail = await inspector.get_job(job_id, fires=10)
    runs = await inspector.list_runs(
        job_id=job_id, limit=per_page + 1, offset=(page - 1) * per_page
    )
    return JobView(now, detail, runs[:per_page], page, per_page, len(runs) > per_page)


@dataclass(frozen=True, slots=True)
class CronsView:
    now: datetime
    hours: int
    crons: list[JobDetail]
    more: bool
    """More cron jobs exist than are shown."""
    timeline: Timeline

    def json(self) -> dict[str, Any]:
        crons = []
        for detail in self.crons:
            data = job_json(detail.job)
            data["next_fires"] = [fire.isoformat() for fire in detail.next_fires]
            crons.append(data)
        return {"now": self.now.isoformat(), "hours": self.hours, "crons": crons, "more": self.more}


async def crons_view(inspector: Inspector, *, now: datetime, hours: int) -> CronsView:
    end = now + timedelta(hours=hours)
    found = await inspector.list_crons(limit=MAX_CRONS + 1)
    details: list[JobDetail] = []
    rows = []
    for job in found[:MAX_CRONS]:
        detail = await inspector.get_job(job.job_id, fires=TIMELINE_FIRES)
        details.append(detail)
        label = job.cron.expression if job.cron is not None else "unreadable trigger"
        paused = "" if job.status == RecordStatus.SCHEDULED else f" ({job.status})"
        fires = detail.next_fires
        title = f"{job.task_name} · {label}{paused}"
        rows.append((job.job_id, title, job.status, fires, _dense_until(job, fires, end)))
    return CronsView(
        now=now,
        hours=hours,
        crons=details,
        more=len(found) > MAX_CRONS,
        timeline=cron_timeline(rows, now, hours),
    )


def _dense_until(job: JobInfo, fires: tuple[datetime, ...], end: datetime) -> datetime | None:
    """Until when a cron keeps firing after its last computed fire (estimated from its
    median gap and its remaining runs), when it fires more often than was computed."""
    if job.cron is None or len(fires) < TIMELINE_FIRES or fires[-1] >= end:
        return None
    if job.cron.max_runs == -1:
        return end
    remaining = job.cron.max_runs - job.cron.runs - len(fires)
    if remaining <= 0:
        return None
    gap = median_gap(fires)
    if gap is None:
        return None
    return min(end, fires[-1] + timedelta(seconds=gap * remaining))


@dataclass(frozen=True, slots=True)
class RunsView:
    now: datetime
    runs: list[RunInfo]
    failed_only: bool
    task: str | None
    page: int
    per_page: int
    has_next: bool

    @property
    def first(self) -> int:
        return (self.page - 1) * self.per_page + 1

    def json(self) -> dict[str, Any]:
        return {
            "runs": [run_json(run) for run in self.runs],
            "failed_only": self.failed_only,
            "task": self.task,
            "page": self.page,
            "per_page": self.per_page,
            "has_next": self.has_next,
        }


async def runs_view(
    inspector: Inspector,
    *,
    now: datetime,
    failed_only: bool,
    task: str | None,
    page: int,
    per_page: int,
) -> RunsView:
    runs = await inspector.list_runs(
        task=task, failed_only=failed_only, limit=per_page + 1, offset=(page - 1) * per_page
    )
    return RunsView(now, runs[:per_page], failed_only, task, page, per_page, len(runs) > per_page)
