"""The values the inspection layer returns: plain frozen dataclasses, and its errors.

Times are aware ``datetime`` values in UTC unless a field says otherwise. Text that came from
the store (task names, arguments, error messages, tracebacks) is untrusted: a consumer that
renders it escapes it for its medium (the CLI strips terminal controls, a web page escapes
HTML).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Literal

from jobify.exceptions import BaseJobifyError

__all__ = [
    "ActionRefusedError",
    "ActionResult",
    "ArgumentsInfo",
    "CronInfo",
    "InspectionError",
    "JobCounts",
    "JobDetail",
    "JobInfo",
    "JobNotFoundError",
    "OwnerNotAnsweringError",
    "RunInfo",
    "TaskInfo",
]


class InspectionError(BaseJobifyError):
    """An inspection read or action could not be done (the message says why)."""


class JobNotFoundError(InspectionError, LookupError):
    """No job with this id is in the store."""

    def __init__(self, job_id: str, store: str) -> None:
        self.job_id = job_id
        super().__init__(f"no job with id {job_id!r} in {store}")


class ActionRefusedError(InspectionError):
    """The action does not apply to this job (e.g. resuming a job that failed for good), or
    the running app that owns the store refused it; the message gives the reason."""


class OwnerNotAnsweringError(InspectionError):
    """The app that owns the store is running but did not answer a command in time."""


@dataclass(frozen=True, slots=True)
class CronInfo:
    """The cron trigger of a recurring job, with its counters."""

    expression: str
    tz: str
    """The IANA zone the expression is evaluated in (the Cron's own zone, else the app's)."""
    runs: int
    """Runs so far (counts against ``max_runs``)."""
    failures: int
    """Consecutive failures so far (the job fails for good at ``max_failures``)."""
    max_runs: int
    """-1 for unlimited."""
    max_failures: int
    misfire_policy: str
    """``"once"``, ``"all"``, ``"skip"`` or ``"grace:<seconds>"``."""
    start_date: datetime | None


@dataclass(frozen=True, slots=True)
class ArgumentsInfo:
    """A job's stored arguments, decoded for display when the serializer allows.

    ``values`` maps parameter name to value when decoding worked (the app's default
    serializer, or the one given to the inspector); otherwise it is None and ``error`` says
    why. ``summary`` is always set: one printable line (``a=1, b='x'`` when decoded, else the
    stored text or a hex preview), with control characters escaped.
    """

    raw: bytes
    values: Mapping[str, Any] | None
    summary: str
    error: str | None = None


@dataclass(frozen=True, slots=True)
class JobInfo:
    """One stored job, as listed.

    ``kind`` is ``"once"`` (a one-shot job), ``"cron"`` (``cron`` is set) or
    ``"unreadable"`` (its trigger document could not be decoded; ``trigger_error`` says why).
    ``orphaned`` is True when the job's task is not among the tasks the owning app
    registered when it last started, False when it is, None when unknown (no task list in
    the store). ``paused`` jobs never fire until resumed; ``permanently_failed`` and
    ``finished`` cron jobs are kept for inspection and never fire.
    """

    job_id: str
    task_name: str
    status: str
    """A :class:`~jobify.storage.RecordStatus` value."""
    next_run: datetime
    """When it fires next (for a paused job: when it would have)."""
    kind: Literal["once", "cron", "unreadable"]
    cron: CronInfo | None
    arguments: ArgumentsInfo
    orphaned: bool | None
    trigger_error: str | None = None


@dataclass(frozen=True, slots=True)
class RunInfo:
    """One finished run of a job (a one-shot run or one cron fire), from the run history.

    ``outcome`` is ``"success"``, ``"failed"``, ``"timeout"`` or ``"cancelled"``; for
    failures ``error_type``, ``error_message`` and ``traceback`` describe the exception.
    """

    job_id: str
    task_name: str
    scheduled_at: datetime
    started_at: datetime
    finished_at: datetime
    duration: float
    """Seconds from start to finish."""
    lateness: float
    """Seconds from the scheduled time to the start (negative if it started early)."""
    outcome: str
    attempts: int
    error_type: str | None
    error_message: str | None
    traceback: str | None
    worker: str | None
    """The process that ran it (``host:pid``), when recorded."""

    @property
    def failed(self) -> bool:
        """True unless the run succeeded or was cancelled."""
        return self.outcome not in ("success", "cancelled")


@dataclass(frozen=True, slots=True)
class JobDetail:
    """One job with what ``show`` needs beyond the listing.

    ``next_fires`` are the upcoming fire times of a scheduled or paused cron job, in the
    job's zone, starting with ``job.next_run`` and bounded by its remaining ``max_runs``
    (empty for one-shot jobs and for jobs that will not fire again). ``last_run`` is the
    newest entry of the run history for this job id, if any.
    """

    job: JobInfo
    next_fires: tuple[datetime, ...]
    last_run: RunInfo | None


@dataclass(frozen=True, slots=True)
class TaskInfo:
    """A task the owning app registered when it last started.

    ``options`` is the document the app wrote (run mode, retry, timeout, durability, cron
    declaration); ``options_error`` is set, and ``options`` empty, when it is not a JSON
    object.
    """

    name: str
    options: Mapping[str, Any]
    updated_at: datetime
    options_error: str | None = None


@dataclass(frozen=True, slots=True)
class JobCounts:
    """How many jobs there are, in total, per status, and per task and status."""

    total: int
    by_status: Mapping[str, int]
    by_task: Mapping[str, Mapping[str, int]]


@dataclass(frozen=True, slots=True)
class ActionResult:
    """What an action (cancel, pause, resume, run now) did.

    ``via`` says who applied it: ``"owner"`` (the running app, through a command),
    ``"direct"`` (the inspector edited the store: no app was running, or the store is
    shared), or ``"none"`` (nothing to do: e.g. pausing a job that is already paused;
    ``message`` says so). ``new_job_id`` is set when running a cron job now directly created
    a one-shot job.
    """

    job_id: str
    action: str
    """A :class:`~jobify.storage.base.CommandAction` value."""
    via: Literal["owner", "direct", "none"]
    message: str
    new_job_id: str | None = None
