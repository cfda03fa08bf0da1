"""``ScheduleBuilder`` (``task.schedule(...).push/.at/.delay/.cron``) and the port it submits to.

A builder holds a task's bound arguments and the task's :class:`SubmitPort`; choosing the
trigger (``at``, ``delay`` or ``cron``) turns them into one scheduling request. The port is
the only thing a route or a builder knows of the app: the app gives every route its port at
startup (before that, a port that says the app has not started).
"""

from __future__ import annotations

from collections.abc import Awaitable, Iterable
from datetime import datetime, tzinfo
from typing import Any, Generic, Protocol, TypeVar

from jobify._jobs import Job
from jobify._triggers import Cron, check_delay, localize

__all__ = ["Bound", "ScheduleBuilder", "SubmitPort"]

T = TypeVar("T")

Bound = tuple[Any, ...] | dict[str, Any]
"""Bound arguments: the positional tuple itself when every parameter was given positionally
(no copy, the smallest form for 100k waiting jobs), else parameter name → value."""


class SubmitPort(Protocol[T]):
    """Where one task's scheduling calls go (implemented by the app's submitter)."""

    @property
    def tz(self) -> tzinfo:
        """The zone naive datetimes are read in."""
        ...

    def now(self) -> float:
        """The app clock's current time, in epoch seconds."""
        ...

    def submit(
        self,
        arguments: Bound,
        exec_ts: float | None,
        cron: Cron | None,
        job_id: str | None,
        replace: bool,
        force: bool,
    ) -> Awaitable[Job[T]]:
        """Schedule one job of the task: at ``exec_ts`` (epoch seconds) or on ``cron``."""
        ...

    def submit_on(
        self,
        connection: Any,
        arguments: Bound,
        exec_ts: float,
        job_id: str | None,
        replace: bool,
        force: bool,
    ) -> Awaitable[Job[T]]:
        """Schedule one job at ``exec_ts`` inside the caller's own database transaction
        (``connection``: an asyncpg connection to the shared store's database)."""
        ...

    def submit_many(self, items: Iterable[Any]) -> Awaitable[list[Job[T]]]:
        """Push one job per item (a tuple of positional or a mapping of keyword arguments),
        validated together and written in one commit."""
        ...


class ScheduleBuilder(Generic[T]):
    """Bound arguments of one task, waiting for a trigger."""

    __slots__ = ("_arguments", "_port")

    def __init__(self, port: SubmitPort[T], arguments: Bound) -> None:
        self._port = port
        self._arguments = arguments

    async def at(
        self,
        at: datetime,
        *,
        job_id: str | None = None,
        replace: bool = False,
        force: bool = False,
        connection: Any = None,
    ) -> Job[T]:
        """Run at ``at``; a time in the past means now.

        A naive ``at`` is wall time in the app's zone, read by the same rules as cron across
        daylight-saving changes: a time in a repeated hour is its first occurrence (unless
        ``fold=1``), a time in a skipped hour is the first instant after the gap.

        ``connection``: an asyncpg connection to a PostgreSQL store's database; the job is
        written in that connection's transaction (committed: it runs; rolled back: it never
        existed). Other stores refuse it.
        """
        if not isinstance(at, datetime):
            raise TypeError(
                f"at() takes a datetime, got {type(at).__name__}; for a number of seconds "
                "use delay()"
            )
        port = self._port
        if at.tzinfo is None:
            at = localize(at, port.tz)
        if connection is not None:
            return await port.submit_on(
                connection, self._arguments, at.timestamp(), job_id, replace, force
            )
        return await port.submit(self._arguments, at.timestamp(), None, job_id, replace, force)

    async def delay(
        self,
        seconds: float,
        *,
        job_id: str | None = None,
        now: datetime | None = None,
        replace: bool = False,
        force: bool = False,
        connection: Any = None,
    ) -> Job[T]:
        """Run ``seconds`` after ``now`` (default: the current time; negative = now).
        ``connection``: as for :meth:`at`."""
        seconds = check_delay(seconds)
        port = self._port
        if now is None:
            base = port.now()
        elif isinstance(now, datetime):
            if now.tzinfo is None:
                now = localize(now, port.tz)
            base = now.timestamp()
        else:
            raise TypeError(f"now must be a datetime, got {type(now).__name__}")
        if connection is not None:
            return await port.submit_on(
                connection, self._arguments, base + seconds, job_id, replace, force
            )
        return await port.submit(self._arguments, base + seconds, None, job_id, replace, force)

    async def push(self, *, connection: Any = None) -> Job[T]:
        """Run the bound job now (``await task.schedule(1).push()`` is ``task.push(1)``).
        ``connection``: as for :meth:`at`."""
        port = self._port
        if connection is not None:
            return await port.submit_on(connection, self._arguments, port.now(), None, False, False)
        return await port.submit(self._arguments, port.now(), None, None, False, False)

    async def cron(
        self,
        cron: str | Cron,
        *,
        job_id: str,
        replace: bool = False,
        force: bool = False,
    ) -> Job[T]:
        """Run on a cron schedule under ``job_id`` (required: a recurring job needs a name)."""
        if isinstance(cron, str):
            cron = Cron(cron)
        elif not isinstance(cron, Cron):
            raise TypeError(f"cron() takes a str or a Cron, got {type(cron).__name__}")
        if job_id is None:
            raise TypeError("cron() needs a job_id: a recurring job is known by its id")
        return await self._port.submit(self._arguments, None, cron, job_id, replace, force)
