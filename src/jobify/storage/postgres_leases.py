"""The leases of :class:`~jobify.storage.PostgresStorage`: which claims this worker holds, the
heartbeat that renews them, and the check before a late run starts.

A mixin: it needs the storage's ``_run``, ``_check`` and group commit, which it declares.
``_held`` maps each claimed job id to when its lease ends by the storage's clock, as of the
last renewal sent (the server set the same value).

- The heartbeat runs every ``lease / 3`` while the storage is started as a worker, holding
  claims or not: one statement that renews the leases, reports the claims that were taken
  (the row is gone or another worker holds it: only then does a claim end here) and reads the
  earliest claimable time, which it hands to the listener as a notification would, so a lost
  notification delays a job by one period at most. An idle worker sends this one statement
  per period and nothing else; a producer that never claimed sends nothing.
- A beat that cannot complete (the server is slow or away) leaves every claim in place and
  is tried again within a second rather than a period later; each attempt is bounded by the
  period, the wait for a pooled connection included.
- :meth:`holds` is the cheap local check before a run starts: the lease, as last renewed, has
  a third of its length left. When it has not (the process was frozen, beats failed), the run
  asks the server first (:meth:`confirm`), which renews the claim or says it is gone.
"""

from __future__ import annotations

import asyncio
import logging
import math
from collections.abc import Callable
from typing import Any

from jobify.exceptions import StorageError
from jobify.storage.base import SharedListener
from jobify.storage.postgres_batch import GroupCommit
from jobify.storage.postgres_cursor import ClaimCursor
from jobify.storage.sql import postgres as sql

__all__ = ["PostgresLeases"]

logger = logging.getLogger("jobify.storage")


class PostgresLeases:
    """Claims held by this worker, their heartbeat, and the check before a late start."""

    lease: float
    worker_id: str
    _held: dict[str, float]
    _tasks: list[str]
    _clock: Callable[[], float]
    _listener: SharedListener | None
    _cursor: ClaimCursor

    def _check(self, *, owner: bool = False) -> None:
        raise NotImplementedError

    def _commit_(self) -> GroupCommit:
        raise NotImplementedError

    async def _run(
        self,
        method: str,
        template: str,
        values: dict[str, Any],
        doing: str,
        *,
        idempotent: bool,
        patience: float | None = None,
        timeout: float | None = None,
    ) -> Any:
        raise NotImplementedError

    def has_claim(self, job_id: str) -> bool:
        """Whether this worker still has its claim of ``job_id``, as far as it knows."""
        return job_id in self._held

    def holds(self, job_id: str) -> bool:
        """Whether this worker may start a run of ``job_id`` now without asking the server:
        it claimed it and its lease, as last renewed, has a third of its length left."""
        until = self._held.get(job_id)
        return until is not None and until - self._clock() >= self.lease / 3

    async def confirm(self, job_id: str) -> bool:
        """Renew the claim of ``job_id`` if the server says it is still this worker's (a run
        that starts late: the worker was frozen, or heartbeats failed). False, and the claim
        is let go, when it is not or the server cannot tell in time."""
        self._check(owner=True)
        if job_id not in self._held:
            return False
        sent = self._clock()
        values = {"job_id": job_id, "worker": self.worker_id, "until": sent + self.lease}
        try:
            row = await self._run(
                "fetchval",
                sql.CONFIRM,
                values,
                "confirming a claim",
                idempotent=True,
                patience=self.lease / 3,
                timeout=self.lease / 3,
            )
        except StorageError as exc:
            logger.warning("job %r: its claim could not be confirmed (%s)", job_id, exc)
            row = None
        if row is None:
            self._held.pop(job_id, None)
            return False
        if job_id in self._held:
            self._held[job_id] = sent + self.lease
        return True

    async def _heartbeat_loop(self) -> None:
        period = self.lease / 3
        delay = period
        while True:
            await asyncio.sleep(delay)
            # A beat that could not complete is tried again soon, not a period later: the
            # leases still run for a third of their length at least, and the claims stay
            # this worker's meanwhile (only the server saying otherwise ends one).
            delay = period if await self._beat(period) else min(period / 4, 1.0)

    async def _beat(self, period: float) -> bool:
        """One heartbeat; False when it could not complete and should be tried again."""
        ids = list(self._held)
        if not ids and not (self._tasks and self._listener is not None):
            return True  # nothing to renew and nobody to tell: an idle producer sends nothing
        sent = self._clock()
        values = {
            "worker": self.worker_id,
            "until": sent + self.lease,
            "ids": ids,
            "tasks": self._tasks,
            # From the start of the index: this read is the safety net for a notification
            # that was lost, which the claim cursor would not have heard either.
            "from": -math.inf,
        }
        try:
            row = await self._run(
                "fetchrow",
                sql.HEARTBEAT,
                values,
                "renewing leases",
                idempotent=True,
                patience=period,
                # Long enough for a slow server to answer (a beat cut short never renews
                # anything), short enough that a stuck one is retried while leases last.
                timeout=period,
            )
        except StorageError as exc:
            left = min((self._held.get(i, sent) for i in ids), default=sent) - self._clock()
            logger.warning(
                "lease heartbeat could not complete (the first lease ends in %.1f s): %s",
                left,
                exc,
            )
            return not self._held
        for job_id in row["renewed"]:
            if job_id in self._held:
                self._held[job_id] = sent + self.lease
        commit = self._commit_()
        lost = [
            job_id
            for job_id in row["lost"]
            # Gone because this worker's own completion just committed: not a loss.
            if not commit.completing(job_id) and self._held.pop(job_id, None) is not None
        ]
        if lost:
            logger.warning(
                "%d claim(s) of this worker were taken over or removed meanwhile (a lease "
                "expired): they are not started here, and an outcome of a run under way "
                "is dropped",
                len(lost),
                extra={"job_ids": lost},
            )
        nxt = row["next"]
        listener = self._listener
        if nxt is not None and listener is not None:
            # As if notified: a notification that was lost costs one period at most (and
            # the claim cursor goes back to it).
            self._cursor.lower(float(nxt))
            listener.on_new_job(float(nxt))
        return True
