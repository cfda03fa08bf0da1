"""The :class:`Job` handle and :class:`JobStatus`: what a caller holds after scheduling.

No I/O here: the handle is a view of one job's state, updated by the scheduler, plus the
means to wait for it. Waiting costs nothing until someone waits: the future is created lazily.
"""

from __future__ import annotations

import asyncio
import enum
from collections.abc import Generator
from datetime import datetime
from typing import TYPE_CHECKING, Any, Generic, TypeVar

from jobify.exceptions import JobFailedError, JobNotCompletedError, JobTimeoutError

if TYPE_CHECKING:
    from jobify.scheduler import JobEntry

__all__ = ["Job", "JobStatus"]

T = TypeVar("T")


class JobStatus(enum.StrEnum):
    """Where a job is in its life."""

    SCHEDULED = "scheduled"
    RUNNING = "running"
    CANCELLED = "cancelled"
    SUCCESS = "success"
    FAILED = "failed"
    TIMEOUT = "timeout"
    PERMANENTLY_FAILED = "permanently_failed"


_OUTCOMES = frozenset(
    {
        JobStatus.SUCCESS,
        JobStatus.FAILED,
        JobStatus.TIMEOUT,
        JobStatus.CANCELLED,
        JobStatus.PERMANENTLY_FAILED,
    }
)


class Job(Generic[T]):
    """A handle on one scheduled job.

    ``status`` is the job's latest state. A one-shot job ends in SUCCESS, FAILED, TIMEOUT or
    CANCELLED. A cron job reports the outcome of its latest run between runs (its ``exec_at``
    is then the next fire), RUNNING during a run, and ends in CANCELLED or PERMANENTLY_FAILED,
    or is removed after ``max_runs``. ``wait()`` resolves after the next execution completes
    (or at once if the job has already ended for good).
    """

    __slots__ = (
        "_entry",
        "_exception",
        "_exec_at",
        "_final",
        "_result",
        "_waiters",
        "id",
        "status",
    )

    def __init__(
        self, job_id: str, exec_at: datetime | None = None, entry: JobEntry | None = None
    ) -> None:
        self.id = job_id
        self._exec_at = exec_at
        self.status = JobStatus.SCHEDULED
        self._result: Any = None
        self._exception: BaseException | None = None
        self._waiters: list[asyncio.Future[None]] | None = None
        self._final = False
        self._entry = entry

    def __repr__(self) -> str:
        return f"<Job id={self.id!r} status={self.status.value} exec_at={self.exec_at.isoformat()}>"

    @property
    def exec_at(self) -> datetime:
        """When the job runs next (or ran last), aware, in the app's (or the Cron's) zone."""
        entry = self._entry
        if entry is not None:
            # Derived on access: a waiting job keeps a float, not a datetime.
            return datetime.fromtimestamp(entry.exec_ts, entry.tz or entry.scheduler.tz)
        if self._exec_at is None:
            raise AttributeError("exec_at is not known before the job is scheduled")
        return self._exec_at

    @exec_at.setter
    def exec_at(self, value: datetime) -> None:
        self._exec_at = value

    @property
    def cron_expression(self) -> str | None:
        """The cron expression of a cron job, else None."""
        entry = self._entry
        return entry.cron_expression if entry is not None else None

    @property
    def exception(self) -> BaseException | None:
        """The exception of the latest failed or timed-out execution, else None."""
        return self._exception

    def is_done(self) -> bool:
        """True once the latest execution has an outcome (or the job was cancelled)."""
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
        """The value of a SUCCESS job; raises what describes any other state.

        FAILED / PERMANENTLY_FAILED: :class:`JobFailedError` (the task's error chained);
        TIMEOUT: :class:`JobTimeoutError`; not yet completed or cancelled:
        :class:`JobNotCompletedError`.
        """
        status = self.status
        if status is JobStatus.SUCCESS:
            return self._result  # type: ignore[no-any-return]
        exc = self._exception
        if status is JobStatus.TIMEOUT:
            if isinstance(exc, JobTimeoutError):
                raise exc
            raise JobTimeoutError(self.id, 0.0)
        if status in (JobStatus.FAILED, JobStatus.PERMANENTLY_FAILED):
            raise JobFailedError(self.id, _describe(exc)) from exc
        raise JobNotCompletedError(self.id)

    async def cancel(self) -> None:
        """Cancel a job that has not started: CANCELLED and removed from storage.

        No effect on a job that is running or already done.
        """
        entry = self._entry
        if entry is not None:
            await entry.cancel()

    def __await__(self) -> Generator[Any, None, T]:
        """``await job``: wait, then return the result or raise the task's own exception."""
        yield from self.wait().__await__()
        if self.status is JobStatus.SUCCESS:
            return self._result  # type: ignore[no-any-return]
        exc = self._exception
        if exc is not None:
            raise exc
        return self.result()

    # -- used by the scheduler only -------------------------------------------------------

    def _resolve(self, status: JobStatus, result: Any, exc: BaseException | None) -> None:
        self.status = status
        self._result = result
        self._exception = exc
        waiters = self._waiters
        if waiters is not None:
            self._waiters = None
            for waiter in waiters:
                if not waiter.done():
                    waiter.set_result(None)

    def _finish(
        self, status: JobStatus, result: Any = None, exc: BaseException | None = None
    ) -> None:
        self._final = True
        self._resolve(status, result, exc)


def _describe(exc: BaseException | None) -> str:
    if exc is None:
        return "no exception recorded"
    text = str(exc)
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__
