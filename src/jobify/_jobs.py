"""The :class:`Job` handle and :class:`JobStatus`: what a caller holds after scheduling.

No I/O here: the handle is a view of one job's state, updated by the scheduler, plus the
means to wait for it and to steer it. Waiting costs nothing until someone waits: waiter
futures are created lazily. The handle reaches the scheduler only through the small
:class:`JobSource` interface it declares itself.
"""

from __future__ import annotations

import asyncio
import enum
from collections.abc import Generator
from datetime import datetime, tzinfo
from typing import Any, Generic, Protocol, TypeVar

from jobify.exceptions import (
    JobCancelledError,
    JobFailedError,
    JobNotCompletedError,
    JobTimeoutError,
)

__all__ = [
    "Job",
    "JobSource",
    "JobStatus",
    "attach",
    "end_after_last_run",
    "finish",
    "is_final",
    "park",
    "resolve",
]

T = TypeVar("T")


class JobStatus(enum.StrEnum):
    """Where a job is in its life.

    A one-shot job goes SCHEDULED → RUNNING → SUCCESS, FAILED or TIMEOUT (or CANCELLED).
    A recurring (cron) job is SCHEDULED between runs and RUNNING during one; it ends only when
    exhausted (the outcome of its last run), CANCELLED or PERMANENTLY_FAILED. PAUSED: kept
    with its counters, not firing until resumed. ORPHANED: a stored job this app cannot run
    (its task is not registered, or its arguments no longer fit the task); ``cancel()``
    removes its record.
    """

    SCHEDULED = "scheduled"
    RUNNING = "running"
    CANCELLED = "cancelled"
    SUCCESS = "success"
    FAILED = "failed"
    TIMEOUT = "timeout"
    PERMANENTLY_FAILED = "permanently_failed"
    PAUSED = "paused"
    ORPHANED = "orphaned"


# A handle left waiting by a stopped app (final here, but its job is not done).
_PARKED = (JobStatus.SCHEDULED, JobStatus.PAUSED)

_OUTCOMES = frozenset(
    {
        JobStatus.SUCCESS,
        JobStatus.FAILED,
        JobStatus.TIMEOUT,
        JobStatus.CANCELLED,
        JobStatus.PERMANENTLY_FAILED,
    }
)


class JobSource(Protocol):
    """What a handle needs from the scheduler's side of its job."""

    @property
    def exec_ts(self) -> float: ...
    @property
    def tz(self) -> tzinfo: ...
    @property
    def cron_expression(self) -> str | None: ...
    async def cancel(self) -> None: ...
    async def pause(self) -> None: ...
    async def resume(self) -> None: ...


class Job(Generic[T]):
    """A handle on one scheduled job.

    ``status`` is the job's current state (see :class:`JobStatus`). ``wait()`` resolves when
    the next execution completes (for a cron job: its next run), or at once if the job has
    ended for good. ``result()`` gives the outcome of the latest completed run; ``await job``
    waits, then returns the value or re-raises the task's own exception. ``cancel()``,
    ``pause()`` and ``resume()`` steer it. When the app shuts down, a stored job that has not
    run keeps its status (SCHEDULED or PAUSED) and its waiters return: it runs after the next
    start; a job that is not stored ends CANCELLED.
    """

    __slots__ = (
        "__weakref__",  # observers (e.g. tracing middleware) may hold handles weakly
        "_exception",
        "_exec_at",
        "_final",
        "_outcome",
        "_result",
        "_source",
        "_waiters",
        "id",
        "status",
    )

    def __init__(
        self, job_id: str, exec_at: datetime | None = None, source: JobSource | None = None
    ) -> None:
        self.id = job_id
        self._exec_at = exec_at
        self.status = JobStatus.SCHEDULED
        self._outcome: JobStatus | None = None
        self._result: Any = None
        self._exception: BaseException | None = None
        self._waiters: list[asyncio.Future[None]] | None = None
        self._final = False
        self._source = source

    def __repr__(self) -> str:
        try:
            when = self.exec_at.isoformat()
        except AttributeError:
            when = "?"
        return f"<Job id={self.id!r} status={self.status.value} exec_at={when}>"

    @property
    def exec_at(self) -> datetime:
        """When the job runs next (or ran last), aware, in the app's (or the Cron's) zone."""
        source = self._source
        if source is not None:
            # Derived on access: a waiting job keeps a float, not a datetime.
            return datetime.fromtimestamp(source.exec_ts, source.tz)
        if self._exec_at is None:
            raise AttributeError("exec_at is not known before the job is scheduled")
        return self._exec_at

    @exec_at.setter
    def exec_at(self, value: datetime) -> None:
        self._exec_at = value

    @property
    def cron_expression(self) -> str | None:
        """The cron expression of a cron job, else None."""
        source = self._source
        return source.cron_expression if source is not None else None

    @property
    def exception(self) -> BaseException | None:
        """The exception of the latest failed or timed-out run, else None."""
        return self._exception

    def is_cron(self) -> bool:
        """True for a recurring (cron) job."""
        source = self._source
        return source is not None and source.cron_expression is not None

    def is_done(self) -> bool:
        """True once the job has an outcome for good (a cron job between runs is not done)."""
        return self.status in _OUTCOMES

    async def wait(self) -> None:
        """Wait until the next execution completes; never raises for a failed job."""
        if self._final:
            return
        # One future per waiter: cancelling one waiting task must not disturb the others.
        waiter: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        if self._waiters is None:
            self._waiters = [waiter]
        else:
            self._waiters.append(waiter)
        await waiter

    def result(self) -> T:
        """The value of the latest completed run; raises what describes any other state.

        FAILED / PERMANENTLY_FAILED: :class:`JobFailedError` (the task's error chained);
        TIMEOUT: :class:`JobTimeoutError`; CANCELLED: :class:`JobCancelledError`; no run
        completed yet: :class:`JobNotCompletedError`.
        """
        status = self.status
        if status is JobStatus.SUCCESS:
            return self._result  # type: ignore[no-any-return]
        if status not in _OUTCOMES and self._outcome is not None:
            status = self._outcome  # a cron job between runs: its latest run
            if status is JobStatus.SUCCESS:
                return self._result  # type: ignore[no-any-return]
        exc = self._exception
        if status is JobStatus.TIMEOUT:
            if isinstance(exc, JobTimeoutError):
                raise exc
            raise JobTimeoutError(self.id, 0.0)
        if status in (JobStatus.FAILED, JobStatus.PERMANENTLY_FAILED):
            raise JobFailedError(self.id, _describe(exc)) from exc
        if status is JobStatus.CANCELLED:
            if isinstance(exc, JobCancelledError):
                raise exc  # says whether it was cancelled while running
            raise JobCancelledError(self.id)
        raise JobNotCompletedError(self.id)

    async def cancel(self) -> None:
        """Cancel the job: CANCELLED, and its record removed from storage, so nothing runs
        it again (not after a restart). A run under way is stopped: a ``MAIN`` body gets
        ``asyncio.CancelledError``, a ``PROCESS`` job's child process is terminated, a
        ``THREAD`` job's thread runs to its end and its outcome is dropped. A cron job is
        cancelled as a whole. No effect on a job that is done. Returns once the removal is
        committed: a reported cancel is durable. During or after the app's shutdown, a stored
        job is removed while its storage is still open; once it is closed this raises
        ``ApplicationStateError`` (the job stays stored and runs after the next start).
        """
        source = self._source
        if source is not None and (not self._final or self.status in _PARKED):
            await source.cancel()

    async def pause(self) -> None:
        """Stop the job from firing, keeping its counters (status PAUSED; persisted).

        A run in progress finishes. No effect on a job that is done.
        """
        source = self._source
        if source is not None and not self._final:
            await source.pause()

    async def resume(self) -> None:
        """Let a paused job fire again. A cron job applies its misfire policy to the fires
        it missed while paused; an overdue one-shot job runs at once."""
        source = self._source
        if source is not None and not self._final:
            await source.resume()

    def __await__(self) -> Generator[Any, None, T]:
        """``await job``: wait, then return the result or raise the task's own exception."""
        yield from self.wait().__await__()
        status = self.status if self.status in _OUTCOMES else self._outcome
        if status is JobStatus.SUCCESS:
            return self._result  # type: ignore[no-any-return]
        exc = self._exception
        if exc is not None and status is not JobStatus.CANCELLED:
            raise exc
        return self.result()


# -- how the scheduler updates a handle (not part of the public API) -------------------------


def attach(job: Job[Any], source: JobSource) -> None:
    """Make ``source`` the scheduler-side state behind ``job``."""
    job._source = source


def is_final(job: Job[Any]) -> bool:
    """Whether nothing more will happen to ``job`` in this process."""
    return job._final


def resolve(job: Job[Any], status: JobStatus, result: Any, exc: BaseException | None) -> None:
    """Record one run's outcome and wake the waiters (a cron job goes on)."""
    job._outcome = status
    job._result = result
    job._exception = exc
    _wake(job)


def finish(
    job: Job[Any], status: JobStatus, result: Any = None, exc: BaseException | None = None
) -> None:
    """The job has ended for good with ``status`` (and this outcome)."""
    job._final = True
    job.status = status
    job._outcome = status
    job._result = result
    job._exception = exc
    _wake(job)


def end_after_last_run(job: Job[Any]) -> None:
    """The job has ended for good with its last run's outcome (SUCCESS if it never ran)."""
    finish(job, job._outcome or JobStatus.SUCCESS, job._result, job._exception)


def park(job: Job[Any], status: JobStatus) -> None:
    """The app stopped while the job was stored and waiting: it keeps ``status`` and its
    waiters return (it runs after the next start, in another process or app)."""
    job._final = True
    job.status = status
    _wake(job)


def _wake(job: Job[Any]) -> None:
    waiters = job._waiters
    if waiters is not None:
        job._waiters = None
        for waiter in waiters:
            if not waiter.done():
                waiter.set_result(None)


def _describe(exc: BaseException | None) -> str:
    if exc is None:
        return "no exception recorded"
    text = str(exc)
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__
