"""Where a claim of :class:`~jobify.storage.PostgresStorage` starts reading: a keyset cursor.

A claim walks the due-job index in ``exec_at`` order. Rows that were completed (deleted) stay
in that index as dead entries until vacuum removes them, and vacuum removes nothing older
than the oldest snapshot still open anywhere on the server (a long transaction, ``pg_dump``,
an idle-in-transaction session, a replication slot). A claim that starts at the beginning of
the index then walks every job completed since that snapshot, and so gets slower by the
second; at a few hundred jobs/s it takes seconds within a minute.

So each claim starts at a cursor: the ``exec_at`` of the earliest *live* scheduled row of the
worker's tasks that the previous claim saw (the claim statement reads it in its own snapshot;
see ``CLAIM`` in :mod:`jobify.storage.sql.postgres`). Every live row is at or after it: rows in
flight elsewhere stay live (and so stay ahead of the cursor) until they are deleted, so a
lease that expires is still found. What the cursor can miss is a row that *becomes* due
below it: a new row, a replacement, a resume, a cron advance, a release. Each of those is
announced by a ``n<exec_at>`` notification, and writes of this storage lower the cursor when
they are queued; either lowers it to that ``exec_at``. Notifications heard while a claim is
running lower the cursor that claim sets too (a row committed after the claim's snapshot is
announced only after its commit, so after the claim began). Without a listening connection,
or after one was re-established (``on_resync``: what was sent meanwhile was not heard), the
cursor goes back to the start of the index.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Collection

from jobify.storage.base import SharedListener

__all__ = ["ClaimCursor", "CursorListener"]

START = -math.inf

MARGIN = 0.001
"""Seconds a notified ``exec_at`` is lowered by: the payload is PostgreSQL's text of a double,
which a session with ``extra_float_digits < 1`` rounds (by microseconds at today's epoch)."""


class ClaimCursor:
    """The cursor of one storage: lowered by what may have become claimable, moved forward
    by each claim to the earliest live row that claim saw."""

    def __init__(self) -> None:
        self.position = START
        self._tasks: frozenset[str] = frozenset()
        self._watches: list[list[float]] = []
        self.resets = 0
        """How many times the cursor went back to the start (for tests and monitoring)."""

    def lower(self, exec_at: float) -> None:
        """A row at ``exec_at`` may have become claimable."""
        at = exec_at - MARGIN
        if at < self.position:
            self.position = at
        for watch in self._watches:
            if at < watch[0]:
                watch[0] = at

    def reset(self) -> None:
        """Start the next claim at the beginning of the index."""
        self.lower(START)
        self.resets += 1

    def begin(self, task_names: Collection[str], *, valid: bool) -> tuple[float, list[float]]:
        """Where a claim of ``task_names`` starts, and a watch that collects what is
        lowered while it runs (pass it to :meth:`end`). ``valid`` is False when
        notifications may be missed right now."""
        tasks = frozenset(task_names)
        if tasks != self._tasks or not valid:
            self._tasks = tasks
            self.position = START
        watch = [math.inf]
        self._watches.append(watch)
        return self.position, watch

    def start_for(self, task_names: Collection[str], *, valid: bool) -> float:
        """Where a read of ``task_names`` that sets nothing may start."""
        if frozenset(task_names) != self._tasks or not valid:
            return START
        return self.position

    def end(self, watch: list[float], low: float | None, now: float) -> None:
        """The claim that took ``watch`` saw ``low`` as its earliest live row (None: none,
        so rows committed later are at or after ``now`` or announced). A claim that failed
        calls :meth:`abandon` instead."""
        self._watches.remove(watch)
        position = now if low is None else low
        self.position = min(position, watch[0])

    def abandon(self, watch: list[float]) -> None:
        """The claim failed: keep the cursor where it was (lowered meanwhile, if so)."""
        self._watches.remove(watch)


class CursorListener(SharedListener):
    """Sits between the LISTEN connection and the worker's listener: notifications lower
    the cursor first, then go on (to nobody when ``target()`` is None)."""

    def __init__(self, cursor: ClaimCursor, target: Callable[[], SharedListener | None]) -> None:
        self.cursor = cursor
        self.target = target

    def on_new_job(self, exec_at: float) -> None:
        self.cursor.lower(exec_at)
        listener = self.target()
        if listener is not None:
            listener.on_new_job(exec_at)

    def on_job_changed(self, job_id: str) -> None:
        listener = self.target()
        if listener is not None:
            listener.on_job_changed(job_id)

    def on_job_finished(self, job_id: str) -> None:
        listener = self.target()
        if listener is not None:
            listener.on_job_finished(job_id)

    def on_resync(self) -> None:
        self.cursor.reset()
        listener = self.target()
        if listener is not None:
            listener.on_resync()
