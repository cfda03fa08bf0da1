"""``Inspector``: read a job store and steer its jobs without running its app.

One object per store, used from one event loop::

    async with Inspector.from_url("sqlite:///jobs.db") as inspector:
        for job in await inspector.list_jobs(status="scheduled"):
            ...
        await inspector.pause(job_id)

Opening never takes the store's ownership (``Storage.open_inspection``): reading a SQLite
file while its app runs neither blocks nor disturbs that app.
"""

from __future__ import annotations

import os
import stat
import time
from collections.abc import Callable
from datetime import UTC, datetime, tzinfo
from types import TracebackType
from typing import Any

from jobify._triggerdoc import AT_TRIGGER
from jobify.exceptions import StorageError
from jobify.inspection._actions import precheck
from jobify.inspection._activity import RunActivity, bucket_runs, check_window
from jobify.inspection._decode import job_info, next_fires, run_info, task_info
from jobify.inspection._format import APP_ZONE_KEY, app_zone
from jobify.inspection._model import (
    ActionResult,
    InspectionError,
    JobCounts,
    JobDetail,
    JobInfo,
    JobNotFoundError,
    RunInfo,
    TaskInfo,
)
from jobify.inspection._steering import Steering
from jobify.inspection._url import StoreLocation, parse_storage_url
from jobify.serializers.base import Serializer
from jobify.storage.base import (
    CommandAction,
    CommandChannel,
    HistoryQuery,
    JobQuery,
    JobRecord,
    RecordStatus,
    RunRecord,
    Storage,
)

__all__ = ["DEFAULT_SERIALIZER", "Inspector"]

MAX_PAGE = 10_000
"""The largest ``limit`` a read accepts."""


class _DefaultSerializer:
    """Marker: decode arguments with the app's default serializer."""

    def __repr__(self) -> str:
        return "DEFAULT_SERIALIZER"


DEFAULT_SERIALIZER: Any = _DefaultSerializer()
"""Decode arguments with :class:`~jobify.serializers.ExtendedJSONSerializer`, the serializer
an app uses unless told otherwise."""


def _epoch(value: datetime | None, name: str) -> float | None:
    if value is None:
        return None
    if not isinstance(value, datetime):
        raise TypeError(f"{name} must be a datetime, got {type(value).__name__}")
    if value.tzinfo is None:  # naive = UTC, as everywhere in the inspection layer
        value = value.replace(tzinfo=UTC)
    return value.timestamp()


def _page(limit: int, offset: int) -> None:
    for name, value, low in (("limit", limit, 1), ("offset", offset, 0)):
        if isinstance(value, bool) or not isinstance(value, int):
            raise TypeError(f"{name} must be an int, got {type(value).__name__}")
        if value < low:
            raise ValueError(f"{name} must be >= {low}, got {value}")
    if limit > MAX_PAGE:
        raise ValueError(f"limit must be <= {MAX_PAGE}, got {limit}")


class Inspector:
    """Reads and actions on one job store, for the ``jobify`` command and dashboards.

    ``open_storage`` returns a new, unopened :class:`~jobify.storage.Storage` for the store
    each time it is called: one is opened for inspection, and another one, briefly, as owner
    when a job must be edited while no app runs. ``name`` describes the store in messages.

    ``serializer`` decodes job arguments for display: by default the app's default
    (:class:`~jobify.serializers.ExtendedJSONSerializer` with nothing registered: it imports
    nothing, and arguments that hold classes are shown as stored); give the app's own
    serializer (with the classes it registers) to see those decoded, or None to show every
    argument as stored. ``command_timeout`` bounds, in seconds,
    how long an action waits for a running app to answer. ``clock`` returns UTC epoch
    seconds ("now" for run-now and next-fire computations).

    Every datetime returned is aware; every datetime argument may be aware or naive (naive
    means UTC).
    """

    def __init__(
        self,
        open_storage: Callable[[], Storage],
        *,
        name: str = "the job store",
        serializer: Serializer | None = DEFAULT_SERIALIZER,
        command_timeout: float = 5.0,
        clock: Callable[[], float] = time.time,
    ) -> None:
        if not callable(open_storage):
            raise TypeError("open_storage must be a callable returning a new Storage")
        if serializer is DEFAULT_SERIALIZER:
            from jobify.serializers import ExtendedJSONSerializer

            serializer = ExtendedJSONSerializer()
        self.name = name
        self.serializer: Serializer | None = serializer
        self._open_storage = open_storage
        self._clock = clock
        self._storage: Storage | None = None
        self._steering = Steering(open_storage, name, clock)
        self.command_timeout = command_timeout

    @property
    def command_timeout(self) -> float:
        """Seconds an action waits for a running app's answer (may be changed)."""
        return self._steering.timeout

    @command_timeout.setter
    def command_timeout(self, seconds: float) -> None:
        if isinstance(seconds, bool) or not isinstance(seconds, int | float):
            raise TypeError("command_timeout must be a number of seconds")
        if not 0 < seconds < float("inf"):
            raise ValueError(f"command_timeout must be > 0 seconds, got {seconds}")
        self._steering.timeout = float(seconds)

    @classmethod
    def from_url(cls, url: str, **options: Any) -> Inspector:
        """An inspector for the store a storage URL names (not opened yet).

        Forms: ``sqlite:///relative.db``, ``sqlite:////absolute/path.db``, a file path,
        ``postgresql://…`` (see :func:`parse_storage_url`). Raises ``ValueError`` for a
        malformed URL or an unknown scheme. ``options`` are the constructor's keywords.
        """
        location = parse_storage_url(url)
        options.setdefault("name", location.display)
        return cls(_opener(location), **options)

    # -- life cycle ---------------------------------------------------------------------

    async def open(self) -> None:
        """Open the store for inspection (never as its owner; creates nothing).

        Raises :class:`~jobify.exceptions.StorageError` when the store is missing,
        unreadable or not a jobify store, :class:`~jobify.exceptions.SchemaVersionError`
        when it was written by a newer jobify, :class:`InspectionError` when this jobify
        cannot open that kind of store.
        """
        if self._storage is not None:
            raise InspectionError(f"the inspector of {self.name} is already open")
        storage = self._open_storage()
        await storage.open_inspection()
        self._storage = storage

    async def close(self) -> None:
        """Close the store. Idempotent."""
        storage, self._storage = self._storage, None
        if storage is not None:
            await storage.shutdown()

    async def __aenter__(self) -> Inspector:
        await self.open()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.close()

    @property
    def storage(self) -> Storage:
        """The storage opened for inspection (raises if the inspector is not open)."""
        if self._storage is None:
            raise InspectionError(
                f"the inspector of {self.name} is not open: use 'async with' or await open()"
            )
        return self._storage

    # -- reads ----------------------------------------------------------------------------

    async def registered_tasks(self) -> frozenset[str] | None:
        """Names of the tasks the owning app registered when it last started; None when
        the store holds no task list (then nothing can be called orphaned)."""
        tasks = await self.storage.load_tasks()
        return frozenset(task.name for task in tasks) if tasks else None

    async def list_jobs(
        self,
        *,
        task: str | None = None,
        status: str | None = None,
        due_before: datetime | None = None,
        due_after: datetime | None = None,
        limit: int = 100,
        offset: int = 0,
    ) -> list[JobInfo]:
        """Jobs ordered by next run time (then id), one page of them.

        ``task`` is a full task name; ``status`` a :class:`~jobify.storage.RecordStatus`
        value; ``due_before``/``due_after`` bound the next run time (inclusive).
        """
        if status is not None and status not in RecordStatus.ALL:
            raise ValueError(f"unknown status {status!r}; expected one of {RecordStatus.ALL}")
        _page(limit, offset)
        query = JobQuery(
            task_name=task,
            status=status,
            due_before=_epoch(due_before, "due_before"),
            due_after=_epoch(due_after, "due_after"),
            limit=limit,
            offset=offset,
        )
        records = await self.storage.query_jobs(query)
        registered = await self.registered_tasks() if records else None
        return [job_info(record, self.serializer, registered) for record in records]

    async def get_job(self, job_id: str, *, fires: int = 5) -> JobDetail:
        """One job with its next ``fires`` fire times (cron) and its last run.

        Raises :class:`JobNotFoundError` when no job has this id.
        """
        if isinstance(fires, bool) or not isinstance(fires, int) or fires < 0:
            raise ValueError(f"fires must be an int >= 0, got {fires!r}")
        record = await self.storage.get(job_id)
        if record is None:
            raise JobNotFoundError(job_id, self.name)
        info = job_info(record, self.serializer, await self.registered_tasks())
        runs = await self.storage.query_history(HistoryQuery(job_id=job_id, limit=1))
        return JobDetail(
            job=info,
            next_fires=next_fires(record, fires, self._clock()),
            last_run=run_info(runs[0]) if runs else None,
        )

    async def count_jobs(self) -> JobCounts:
        """How many jobs there are, per status and per task."""
        counts = await self.storage.job_counts()
        by_status: dict[str, int] = {}
        by_task: dict[str, dict[str, int]] = {}
        for (task, status), count in sorted(counts.items()):
            by_status[status] = by_status.get(status, 0) + count
            by_task.setdefault(task, {})[status] = count
        return JobCounts(sum(by_status.values()), by_status, by_task)

    async def list_runs(
        self,
        *,
        task: str | None = None,
        job_id: str | None = None,
        failed_only: bool = False,
        since: datetime | None = None,
        limit: int = 100,
        offset: int = 0,
    ) -> list[RunInfo]:
        """Finished runs, newest first, one page of them.

        ``failed_only`` keeps runs that neither succeeded nor were cancelled; ``since``
        keeps runs finished at or after that time.
        """
        _page(limit, offset)
        query = HistoryQuery(
            job_id=job_id,
            task_name=task,
            failed_only=bool(failed_only),
            since=_epoch(since, "since"),
            limit=limit,
            offset=offset,
        )
        return [run_info(run) for run in await self.storage.query_history(query)]

    async def run_activity(
        self,
        *,
        since: datetime,
        until: datetime | None = None,
        bucket: float = 60.0,
        task: str | None = None,
        scan_limit: int = 100_000,
    ) -> RunActivity:
        """Runs and failures per ``bucket`` seconds (finish time) from ``since`` to ``until``
        (default now), with the window's lateness figures (see :class:`RunActivity`).

        Reads the run history newest first, at most ``scan_limit`` runs (the result says
        when the window held more). Raises ``ValueError`` for an empty window, a bucket that
        is not a positive number of seconds, more than ``MAX_BUCKETS`` buckets, or a
        ``scan_limit`` below 1.
        """
        start = _epoch(since, "since")
        end = self._clock() if until is None else _epoch(until, "until")
        assert start is not None and end is not None
        if isinstance(bucket, bool) or not isinstance(bucket, int | float):
            raise TypeError(f"bucket must be a number of seconds, got {type(bucket).__name__}")
        check_window(start, end, float(bucket))
        if isinstance(scan_limit, bool) or not isinstance(scan_limit, int) or scan_limit < 1:
            raise ValueError(f"scan_limit must be an int >= 1, got {scan_limit!r}")
        runs: list[RunRecord] = []
        truncated = False
        while True:
            page = min(MAX_PAGE, scan_limit - len(runs))
            query = HistoryQuery(task_name=task, since=start, limit=page, offset=len(runs))
            found = await self.storage.query_history(query)
            runs.extend(found)
            if len(found) < page:
                break
            if len(runs) >= scan_limit:
                # One more row tells whether the window held more than was read.
                more = HistoryQuery(task_name=task, since=start, limit=1, offset=len(runs))
                truncated = bool(await self.storage.query_history(more))
                break
        return bucket_runs(runs, since=start, until=end, bucket=float(bucket), truncated=truncated)

    async def list_crons(self, *, status: str | None = None, limit: int = 1000) -> list[JobInfo]:
        """Cron jobs (also unreadable triggers, which may be crons) ordered by next run
        time (then id), at most ``limit`` of them; ``status`` as in :meth:`list_jobs`.

        The storage has no filter by kind of trigger: this walks the jobs in next-run order,
        a page at a time, until ``limit`` are found, so its cost grows with the number of
        one-shot jobs before the last cron found (about 0.2 s for 100,000 jobs on SQLite).
        """
        if status is not None and status not in RecordStatus.ALL:
            raise ValueError(f"unknown status {status!r}; expected one of {RecordStatus.ALL}")
        _page(limit, 0)
        found: list[JobRecord] = []
        offset = 0
        while len(found) < limit:
            query = JobQuery(status=status, limit=MAX_PAGE, offset=offset)
            records = await self.storage.query_jobs(query)
            # Every one-shot job has the very same trigger document: a bytes comparison
            # skips it without decoding anything.
            found.extend(record for record in records if record.trigger != AT_TRIGGER)
            if len(records) < MAX_PAGE:
                break
            offset += MAX_PAGE
        found = found[:limit]
        registered = await self.registered_tasks() if found else None
        return [job_info(record, self.serializer, registered) for record in found]

    async def list_tasks(self) -> list[TaskInfo]:
        """The tasks the owning app registered when it last started, by name."""
        tasks = await self.storage.load_tasks()
        return sorted((task_info(task) for task in tasks), key=lambda t: t.name)

    async def display_zone(self, override: tzinfo | None = None) -> tzinfo:
        """The zone to show instants in: ``override`` when given, else the zone of the app
        that owns the store (as it stored it when it last started), else UTC."""
        if override is not None:
            return override
        tasks = await self.list_tasks()
        return app_zone(
            (task.updated_at.timestamp(), task.options.get(APP_ZONE_KEY)) for task in tasks
        )

    async def owner_running(self) -> bool | None:
        """Whether an app owning this (embedded) store runs now; None for a shared store
        or a store that cannot tell."""
        storage = self.storage
        if storage.shared or not isinstance(storage, CommandChannel):
            return None
        return await storage.owner_running()

    # -- actions --------------------------------------------------------------------------

    async def cancel(self, job_id: str) -> ActionResult:
        """Cancel the job: it never runs again and its record is removed (also for an
        orphaned record, whose task the app no longer has)."""
        return await self._act(job_id, CommandAction.CANCEL)

    async def pause(self, job_id: str) -> ActionResult:
        """Pause the job: it keeps its record and counters but does not fire until resumed."""
        return await self._act(job_id, CommandAction.PAUSE)

    async def resume(self, job_id: str) -> ActionResult:
        """Resume a paused job (a cron applies its misfire policy to the fires it missed)."""
        return await self._act(job_id, CommandAction.RESUME)

    async def run_now(self, job_id: str) -> ActionResult:
        """Run the job now: a one-shot job is moved to now; a cron job runs once more now
        without moving its schedule (through the running app: an extra run; edited
        directly: a new one-shot job of the same task and arguments,
        :attr:`ActionResult.new_job_id`)."""
        return await self._act(job_id, CommandAction.RUN)

    async def retry(self, job_id: str) -> ActionResult:
        """Retry a failed job now with its stored arguments (a permanently failed cron job
        starts its schedule again, its failure counter reset)."""
        return await self._act(job_id, CommandAction.RETRY)

    async def _act(self, job_id: str, action: str) -> ActionResult:
        """Apply an action where the storage contract says it must be applied.

        Raises :class:`JobNotFoundError`, :class:`ActionRefusedError` (the action does not
        apply, or the running app refused it), :class:`OwnerNotAnsweringError`, or
        :class:`~jobify.exceptions.StorageError`.
        """
        storage = self.storage
        record = await storage.get(job_id)
        if record is None:
            raise JobNotFoundError(job_id, self.name)
        registered = await self.registered_tasks()
        orphaned = None if registered is None else record.task_name not in registered
        skip = precheck(record, action, orphaned)
        if skip is not None:
            return ActionResult(job_id, action, "none", skip)
        return await self._steering.apply(storage, job_id, action, orphaned)


def _opener(location: StoreLocation) -> Callable[[], Storage]:
    """A factory of storages for ``location`` that first checks that a SQLite file is there
    (so that a typo is reported as such, and no empty database is ever created)."""

    def open_storage() -> Storage:
        if location.kind == "sqlite":
            _check_file(location.location, location.display)
        return location.create()

    return open_storage


def _check_file(path: str, display: str) -> None:
    try:
        info = os.stat(path)
    except FileNotFoundError:
        raise StorageError(
            f"{display} does not exist (a relative path is looked up in {os.getcwd()!r}): give "
            "the path of the app's store file (an app's default is jobify.db in its working "
            "directory)"
        ) from None
    except OSError as exc:  # e.g. a directory on the way that this user may not enter
        raise StorageError(f"{display} cannot be reached: {exc.strerror}") from None
    if stat.S_ISDIR(info.st_mode):
        raise StorageError(f"{display} is a directory, not a jobify store file")
    if not os.access(path, os.R_OK):
        raise StorageError(f"{display} is not readable by this user (permission denied)")
