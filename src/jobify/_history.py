"""The run history: one record per finished run, kept for a while (``Jobify(history=...)``).

Each finished run (a one-shot job, or one fire of a cron job) becomes a
:class:`~jobify.storage.base.RunRecord`. Records are gathered for up to
:data:`FLUSH_DELAY` (or :data:`FLUSH_MAX` records) and then queued together into the
storage's next group commit: no transaction of their own, and one commit carries many of them
(writing each with the commit of its own job would add the history's pages to every durable
job's commit). So a crash may lose the last fraction of a second of history, never a job.
Old records are pruned in the background (soon after startup, then once an hour, and each
time a tenth of ``max_rows`` were recorded here since the last prune, so a busy worker keeps
the table near ``max_rows`` rather than letting an hour of runs pile up): those older than
``max_age`` and all but the newest ``max_rows``. With the history off nothing is recorded
and nothing is pruned.
"""

from __future__ import annotations

import asyncio
import logging
import os
import socket
import traceback
from collections.abc import Callable
from dataclasses import dataclass
from datetime import timedelta

from jobify._entry import JobEntry, Outcome
from jobify.exceptions import JobTimeoutError, StorageError
from jobify.storage.base import RunRecord, Storage

__all__ = ["NULL_RUN_LOG", "HistoryLog", "RunHistory"]

log = logging.getLogger("jobify.history")

PRUNE_INTERVAL = 3600.0
FIRST_PRUNE_DELAY = 5.0
FLUSH_DELAY = 0.25
FLUSH_MAX = 2048
MAX_TRACEBACK_CHARS = 20_000


@dataclass(frozen=True, slots=True)
class RunHistory:
    """How long the run history is kept: ``Jobify(history=RunHistory(...))``.

    A run record is deleted once it is older than ``max_age`` or is not among the newest
    ``max_rows``. ``Jobify(history=True)`` (the default with durable storage) keeps 7 days or
    10,000 runs; ``history=False`` records nothing.
    """

    max_age: timedelta = timedelta(days=7)
    max_rows: int = 10_000

    def __post_init__(self) -> None:
        if not isinstance(self.max_age, timedelta) or self.max_age <= timedelta(0):
            raise ValueError(f"max_age must be a positive timedelta, got {self.max_age!r}")
        if isinstance(self.max_rows, bool) or not isinstance(self.max_rows, int):
            raise TypeError(f"max_rows must be an int, got {type(self.max_rows).__name__}")
        if self.max_rows < 1:
            raise ValueError(f"max_rows must be >= 1, got {self.max_rows}")


class _NullRunLog:
    """History off: finished runs are not recorded."""

    def record(
        self, entry: JobEntry, scheduled: float, started: float, finished: float, outcome: Outcome
    ) -> None:
        return None


NULL_RUN_LOG = _NullRunLog()


def worker_name() -> str:
    """``host:pid`` of this process, as run records name it."""
    return f"{socket.gethostname()}:{os.getpid()}"


class HistoryLog:
    """Records finished runs into a storage and prunes them in the background."""

    def __init__(self, storage: Storage, retention: RunHistory, clock: Callable[[], float]) -> None:
        self.storage = storage
        self.clock = clock
        self.retention = retention
        self.worker = worker_name()
        self._timer: asyncio.TimerHandle | None = None
        self._pruning: asyncio.Task[int] | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._pending: list[RunRecord] = []
        self._flushing: asyncio.TimerHandle | None = None
        self._since_prune = 0
        self._prune_every = max(1, retention.max_rows // 10)

    def record(
        self, entry: JobEntry, scheduled: float, started: float, finished: float, outcome: Outcome
    ) -> None:
        status, _, exc, attempts = outcome
        if exc is None:
            error_type = message = text = None
        else:
            error_type = f"{type(exc).__module__}.{type(exc).__qualname__}"
            message = str(exc)
            # A timeout is an expected outcome: its message says it all, no traceback.
            text = (
                None
                if isinstance(exc, JobTimeoutError)
                else "".join(traceback.format_exception(exc))[-MAX_TRACEBACK_CHARS:]
            )
        self._pending.append(
            RunRecord(  # by position: this runs for every finished run
                entry.job.id,
                entry.task.name,
                scheduled,
                started,
                finished,
                status.value,
                attempts,
                error_type,
                message,
                text,
                self.worker,
            )
        )
        self._since_prune += 1
        if self._since_prune >= self._prune_every and self._loop is not None:
            self._prune_soon()
        if len(self._pending) >= FLUSH_MAX:
            self.flush()
        elif self._flushing is None and self._loop is not None:
            self._flushing = self._loop.call_later(FLUSH_DELAY, self.flush)

    def flush(self) -> None:
        """Queue the gathered records into the storage's next group commit."""
        if self._flushing is not None:
            self._flushing.cancel()
            self._flushing = None
        pending, self._pending = self._pending, []
        for run in pending:
            try:
                self.storage.record_run_soon(run)
            except StorageError as error:  # e.g. the storage closed under a run at shutdown
                log.warning("run of job %r not recorded in the history: %s", run.job_id, error)

    # -- pruning -------------------------------------------------------------------------

    def start(self, loop: asyncio.AbstractEventLoop) -> None:
        """Prune soon after startup, then once an hour."""
        self._loop = loop
        self._timer = loop.call_later(FIRST_PRUNE_DELAY, self._prune_now)

    def _prune_now(self) -> None:
        assert self._loop is not None
        self._timer = self._loop.call_later(PRUNE_INTERVAL, self._prune_now)
        self._prune_soon()

    def _prune_soon(self) -> None:
        assert self._loop is not None
        if self._pruning is None or self._pruning.done():
            self._since_prune = 0
            self._pruning = self._loop.create_task(self.prune())

    async def prune(self) -> int:
        """Delete what the retention no longer keeps; returns how many run records."""
        self.flush()  # the retention applies to the runs gathered so far too
        cutoff = self.clock() - self.retention.max_age.total_seconds()
        try:
            deleted = await self.storage.prune_history(before=cutoff, keep=self.retention.max_rows)
        except StorageError as exc:
            log.warning("pruning the run history failed: %s; trying again later", exc)
            return 0
        if deleted:
            log.info("pruned %d run record(s) from the history", deleted)
        return deleted

    async def stop(self) -> None:
        """Queue the last records; stop the pruning timer; wait for a prune in progress."""
        self.flush()
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        task, self._pruning = self._pruning, None
        if task is not None and not task.done():
            task.cancel()
            await asyncio.gather(task, return_exceptions=True)
