"""Every error jobify raises on purpose.

The hierarchy::

    BaseJobifyError
    ├── ApplicationStateError          wrong phase (register after startup, schedule before)
    ├── DuplicateJobError              a job id already in use (pass ``replace=True`` to replace it)
    ├── JobFailedError                 ``job.result()`` of a FAILED job (chains the original error)
    ├── JobTimeoutError (+TimeoutError) result() of a TIMEOUT job
    ├── JobNotCompletedError           ``job.result()`` before the job finished
    │   └── JobCancelledError          ``job.result()`` / ``await job`` of a CANCELLED job
    ├── RouteAlreadyRegisteredError    two tasks with one full name
    ├── NoResultError                  raised by an exception handler: fail now, no retry
    ├── CronParseError (+ValueError)   a malformed cron expression (names field and token)
    ├── CronExhaustedError (+ValueError) a cron expression that can never fire again
    ├── SerializationError (+TypeError) an argument that the serializer cannot encode/decode
    ├── StorageError                   the storage backend failed (wraps the driver's error)
    │   ├── StorageLockedError         the SQLite file is held by another running process
    │   └── SchemaVersionError         the stored schema is newer than this code knows
    └── MissingDependencyError (+ImportError) an optional extra is not installed
"""

from __future__ import annotations

__all__ = [
    "ApplicationStateError",
    "BaseJobifyError",
    "CronExhaustedError",
    "CronParseError",
    "DuplicateJobError",
    "JobCancelledError",
    "JobFailedError",
    "JobNotCompletedError",
    "JobTimeoutError",
    "MissingDependencyError",
    "NoResultError",
    "RouteAlreadyRegisteredError",
    "SchemaVersionError",
    "SerializationError",
    "StorageError",
    "StorageLockedError",
]


class BaseJobifyError(Exception):
    """Base class of every jobify error."""


class ApplicationStateError(BaseJobifyError):
    """An operation was attempted in the wrong phase of the application's life."""


class DuplicateJobError(BaseJobifyError):
    """A job id is already in use."""

    def __init__(self, job_id: str) -> None:
        self.job_id = job_id
        super().__init__(
            f"a job with id {job_id!r} already exists; pass replace=True to replace it"
        )


class JobFailedError(BaseJobifyError):
    """The job ended in FAILED; the task's own exception is chained as ``__cause__``."""

    def __init__(self, job_id: str, reason: str) -> None:
        self.job_id = job_id
        self.reason = reason
        super().__init__(f"job {job_id!r} failed: {reason}")


class JobTimeoutError(BaseJobifyError, TimeoutError):
    """The job did not finish within its timeout."""

    def __init__(self, job_id: str, timeout: float) -> None:
        self.job_id = job_id
        self.timeout = timeout
        super().__init__(f"job {job_id!r} exceeded its timeout of {timeout}s")


class JobNotCompletedError(BaseJobifyError):
    """``job.result()`` was called before the job completed."""

    def __init__(self, job_id: str = "") -> None:
        self.job_id = job_id
        super().__init__(
            f"job {job_id!r} has not completed yet; await job.wait() before job.result()"
        )


class JobCancelledError(JobNotCompletedError):
    """``job.result()`` (or ``await job``) of a job that was cancelled (before it ran, or
    while running: ``while_running``).

    A :class:`JobNotCompletedError`: a cancelled job never completes, and code that catches
    the latter keeps working.
    """

    def __init__(self, job_id: str = "", *, while_running: bool = False) -> None:
        self.job_id = job_id
        self.while_running = while_running
        when = " while running" if while_running else ""
        BaseJobifyError.__init__(self, f"job {job_id!r} was cancelled{when}; it has no result")


class RouteAlreadyRegisteredError(BaseJobifyError):
    """Two tasks resolve to the same full name."""

    def __init__(self, name: str) -> None:
        self.name = name
        super().__init__(f"a task named {name!r} is already registered; give one a different name")


class NoResultError(BaseJobifyError):
    """Raised by an exception handler to fail the job at once, with no retry."""


class CronParseError(BaseJobifyError, ValueError):
    """A cron expression is malformed."""


class CronExhaustedError(BaseJobifyError, ValueError):
    """A cron expression has no fire time after the given instant (e.g. a past year)."""


class SerializationError(BaseJobifyError, TypeError):
    """A value could not be serialized or deserialized."""


class StorageError(BaseJobifyError):
    """The storage backend failed."""


class StorageLockedError(StorageError):
    """The storage is owned by another running process."""


class SchemaVersionError(StorageError):
    """The stored schema was written by a newer version of jobify."""


class MissingDependencyError(BaseJobifyError, ImportError):
    """An optional dependency is not installed."""

    def __init__(self, package: str, extra: str, feature: str) -> None:
        self.package = package
        self.extra = extra
        super().__init__(
            f"{feature} needs the {package!r} package; install it with "
            f"pip install 'jobify[{extra}]'"
        )
