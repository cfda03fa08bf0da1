"""Triggers and the time math around them: ``Cron``, misfire policies, fire planning.

Everything here is a pure function of its inputs (no clock reads, no I/O), so the scheduler
and every storage backend share one implementation and tests use plain datetimes.
"""

from __future__ import annotations

import enum
import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta, tzinfo
from typing import Any, Protocol

__all__ = [
    "MISFIRE_TOLERANCE",
    "Cron",
    "CronParser",
    "GracePolicy",
    "MisfirePolicy",
    "due_fires",
    "runs_for_misfire",
]

MISFIRE_TOLERANCE = timedelta(seconds=1)
"""A fire that starts later than this after its time counts as missed (the loop was blocked,
the app was down, or the wall clock jumped); within it, the fire is merely late and just runs."""

MAX_COUNTED_FIRES = 100_000
"""Missed fires are enumerated up to this many; beyond it ``ALL`` runs this many (logged)."""


class CronParser(Protocol):
    """What a ``cron_factory`` returns: a compiled expression."""

    def next_run(self, *, now: datetime) -> datetime:
        """The first fire strictly after the aware ``now``, aware, in ``now``'s zone."""
        ...


CronFactory = Callable[[str], CronParser]


@dataclass(frozen=True, slots=True)
class GracePolicy:
    """Misfire policy: run once if the latest missed fire is at most ``grace`` old, else skip."""

    grace: timedelta

    def __post_init__(self) -> None:
        if not isinstance(self.grace, timedelta):
            raise TypeError(
                f"GRACE takes a timedelta, got {type(self.grace).__name__}; "
                "e.g. MisfirePolicy.GRACE(timedelta(minutes=5))"
            )
        if self.grace < timedelta(0):
            raise ValueError(f"GRACE period must not be negative, got {self.grace}")


def _grace(grace: timedelta) -> GracePolicy:
    return GracePolicy(grace)


class MisfirePolicy(enum.Enum):
    """What to do with cron fires missed while the app was down or the loop was blocked.

    ``ALL`` runs every missed fire now, in order; ``SKIP`` drops them and waits for the next
    future fire; ``ONCE`` runs once now for all of them; ``MisfirePolicy.GRACE(timedelta)``
    runs once if the latest missed fire is within the grace period, else skips.
    """

    ALL = "all"
    SKIP = "skip"
    ONCE = "once"

    GRACE = staticmethod(_grace)


AnyMisfirePolicy = MisfirePolicy | GracePolicy


@dataclass(frozen=True, slots=True)
class Cron:
    """A recurring trigger: a cron expression plus its run limits and misfire policy."""

    expression: str
    max_runs: int = -1
    max_failures: int = 10
    misfire_policy: AnyMisfirePolicy = MisfirePolicy.ONCE
    start_date: datetime | None = None
    args: Sequence[Any] = ()
    kwargs: Mapping[str, Any] = field(default_factory=dict)
    tz: tzinfo | None = None
    """Zone to evaluate the expression in (beyond the reference API); default: the app's."""

    def __post_init__(self) -> None:
        if not isinstance(self.expression, str):
            raise TypeError(f"Cron expression must be a str, got {type(self.expression).__name__}")
        if isinstance(self.max_runs, bool) or not isinstance(self.max_runs, int):
            raise TypeError(f"max_runs must be an int, got {type(self.max_runs).__name__}")
        if self.max_runs == 0 or self.max_runs < -1:
            raise ValueError(f"max_runs must be -1 (unlimited) or >= 1, got {self.max_runs}")
        if isinstance(self.max_failures, bool) or not isinstance(self.max_failures, int):
            raise TypeError(f"max_failures must be an int, got {type(self.max_failures).__name__}")
        if self.max_failures < 1:
            raise ValueError(f"max_failures must be >= 1, got {self.max_failures}")
        if not isinstance(self.misfire_policy, MisfirePolicy | GracePolicy):
            raise TypeError(
                "misfire_policy must be MisfirePolicy.ALL/SKIP/ONCE or MisfirePolicy.GRACE(...), "
                f"got {self.misfire_policy!r}"
            )
        if self.start_date is not None and not isinstance(self.start_date, datetime):
            raise TypeError(f"start_date must be a datetime, got {type(self.start_date).__name__}")
        if isinstance(self.args, str | bytes) or not isinstance(self.args, Sequence):
            raise TypeError(f"Cron args must be a sequence, got {type(self.args).__name__}")
        if not isinstance(self.kwargs, Mapping):
            raise TypeError(f"Cron kwargs must be a mapping, got {type(self.kwargs).__name__}")


def due_fires(
    parser: CronParser, after: datetime, now: datetime, limit: int = MAX_COUNTED_FIRES
) -> tuple[int, datetime | None, datetime]:
    """Count the fires in ``[after, now]`` and find the next one after ``now``.

    ``after`` is itself a fire time (the one the job was armed for). Returns
    ``(count, latest_due, next_future)``; ``count`` stops at ``limit``, in which case the
    fires between the limit and ``now`` are skipped and ``next_future`` is still correct.
    """
    if after > now:
        return 0, None, after
    count = 1
    latest = after
    nxt = parser.next_run(now=after)
    while nxt <= now:
        if count >= limit:
            return count, latest, parser.next_run(now=now)
        count += 1
        latest = nxt
        nxt = parser.next_run(now=nxt)
    return count, latest, nxt


def runs_for_misfire(
    policy: AnyMisfirePolicy,
    due_count: int,
    latest_due: datetime | None,
    now: datetime,
    tolerance: timedelta = MISFIRE_TOLERANCE,
) -> int:
    """How many runs to start now for ``due_count`` fires at or before ``now``.

    A single due fire within ``tolerance`` of ``now`` is on time: it runs under every policy.
    Otherwise fires were missed, and the policy decides. The latest fire, if within the
    tolerance, is on time and is not dropped by SKIP.
    """
    if due_count <= 0 or latest_due is None:
        return 0
    lateness = now - latest_due
    on_time = lateness <= tolerance
    if due_count == 1 and on_time:
        return 1
    if policy is MisfirePolicy.ALL:
        return due_count
    if policy is MisfirePolicy.ONCE:
        return 1
    if policy is MisfirePolicy.SKIP:
        return 1 if on_time else 0
    if isinstance(policy, GracePolicy):
        return 1 if lateness <= max(policy.grace, tolerance) else 0
    raise TypeError(f"unknown misfire policy {policy!r}")


def check_delay(seconds: float) -> float:
    """Validate a delay in seconds: a real, finite number (negative means now)."""
    if type(seconds) is float or type(seconds) is int:
        if seconds - seconds == 0:  # finite (inf - inf and nan - nan are nan)
            return float(seconds)
        raise ValueError(f"delay must be a finite number of seconds, got {seconds}")
    if isinstance(seconds, bool) or not isinstance(seconds, int | float):
        raise TypeError(f"delay must be a number of seconds, got {type(seconds).__name__}")
    if not math.isfinite(seconds):
        raise ValueError(f"delay must be a finite number of seconds, got {seconds}")
    return float(seconds)
