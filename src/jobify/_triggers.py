"""Triggers and the time math around them: ``Cron``, misfire policies, fire planning.

Everything here is a pure function of its inputs (no clock reads, no I/O), so the scheduler
and every storage backend share one implementation and tests use plain datetimes.
"""

from __future__ import annotations

import enum
import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta, timezone, tzinfo
from typing import Any, Protocol
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from jobify.exceptions import CronExhaustedError

__all__ = [
    "MAX_TIMESTAMP",
    "MISFIRE_TOLERANCE",
    "Cron",
    "CronParser",
    "GracePolicy",
    "MisfirePolicy",
    "check_delay",
    "check_instant",
    "fire_after_step",
    "latest_due_fire",
    "localize",
    "resolve_zone",
    "runs_for_misfire",
]

MISFIRE_TOLERANCE = timedelta(seconds=1)
"""A fire that starts later than this after its time counts as missed (the loop was blocked,
the app was down, or the wall clock jumped); within it, the fire is merely late and just runs."""

MAX_CATCH_UP_RUNS = 100_000
"""``MisfirePolicy.ALL`` runs at most this many missed fires at once; older ones are dropped
(logged)."""

MAX_TIMESTAMP = datetime(9999, 12, 30, tzinfo=UTC).timestamp()
"""The latest instant a job may be scheduled for: a day short of ``datetime.max``, so that
the instant can be shown in any zone."""
MIN_TIMESTAMP = datetime(1, 1, 2, tzinfo=UTC).timestamp()


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


class MisfirePolicy(enum.Enum):
    """What to do with cron fires missed while the app was down or the loop was blocked.

    ``ALL`` runs every missed fire now, in order; ``SKIP`` drops them and waits for the next
    future fire; ``ONCE`` (the default of ``Cron``) runs once now for all of them;
    ``MisfirePolicy.GRACE(timedelta)`` (a :class:`GracePolicy`) runs once if the latest
    missed fire is within the grace period, else skips. While the app runs, a fire less than
    one second late is on time and just runs; after a restart or a pause every fire that
    passed counts as missed.
    """

    ALL = "all"
    SKIP = "skip"
    ONCE = "once"

    @staticmethod
    def GRACE(grace: timedelta) -> GracePolicy:
        """The policy that runs once when the latest missed fire is at most ``grace`` old."""
        return GracePolicy(grace)


AnyMisfirePolicy = MisfirePolicy | GracePolicy


@dataclass(frozen=True, slots=True)
class Cron:
    """A recurring trigger: a cron expression plus its run limits and misfire policy.

    ``expression``: 5 fields (minute hour day-of-month month day-of-week), 6 (plus year) or 7
    (second first, year last), or an alias such as ``@daily``; a malformed one raises
    ``CronParseError`` when a task or a job uses it. ``max_runs``: -1 (no limit) or the
    number of runs after which the job ends; counted in storage, across restarts.
    ``max_failures`` (default 10): failed runs in a row after which the job becomes
    PERMANENTLY_FAILED. ``misfire_policy`` (default ``MisfirePolicy.ONCE``): what to do with
    fires missed while the app was down, the job paused or the loop blocked.
    ``start_date``: the first fire is the first match at or after it (naive: the app's
    zone). ``args``/``kwargs``: the arguments of a declared cron's runs (given to
    ``schedule(...).cron()``, they replace the scheduled arguments). ``tz``: the zone to
    evaluate the expression in, a ``ZoneInfo`` or an IANA name (default: the app's zone).

    When both day fields are restricted a day matches if either matches (classic Unix cron);
    across daylight-saving changes a fixed-hour fire in a skipped hour runs at the first
    instant after the gap and one in a repeated hour runs once, while a ``*`` or ``*/n``
    hour follows real elapsed time.
    """

    expression: str
    max_runs: int = -1
    max_failures: int = 10
    misfire_policy: AnyMisfirePolicy = MisfirePolicy.ONCE
    start_date: datetime | None = None
    args: Sequence[Any] = ()
    kwargs: Mapping[str, Any] = field(default_factory=dict)
    tz: tzinfo | str | None = None
    """Zone to evaluate the expression in (beyond the reference API): a ``ZoneInfo`` or an
    IANA zone name such as ``"America/New_York"`` (kept as a ``ZoneInfo``); default: the
    app's zone."""

    @property
    def zone(self) -> ZoneInfo | None:
        """``tz`` resolved to a ``ZoneInfo`` (None: evaluated in the app's zone)."""
        return self.tz  # type: ignore[return-value]  # resolved in __post_init__

    def __post_init__(self) -> None:
        if self.tz is not None:
            object.__setattr__(self, "tz", resolve_zone(self.tz, "Cron tz"))
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


def latest_due_fire(
    parser: CronParser, armed: datetime, now: datetime
) -> tuple[int, datetime | None]:
    """The fires due by ``now`` of a job armed for the fire ``armed``.

    Returns ``(0, None)`` when nothing is due, ``(1, armed)`` when only ``armed`` is, and
    ``(2, latest)`` when two or more are (``2`` means "several": the exact count is not
    needed by any policy, and counting would cost one ``next_run`` per missed fire). The
    latest due fire is found in O(log(now - armed)) calls: gallop back from ``now`` to an
    instant before it, then bisect on the rule that ``next_run(t) <= now`` exactly when
    ``t`` is before the latest due fire.
    """
    if armed > now:
        return 0, None
    following = _after(parser, armed)
    if following is None or following > now:
        return 1, armed
    step = _ONE_SECOND
    hi = now  # next_run(hi) > now: no fire after now is due
    lo = now - step
    while lo > armed and parser.next_run(now=lo) > now:
        hi = lo
        step *= 2
        lo = now - step
    if lo <= armed:
        lo = armed  # next_run(armed) <= now, checked above
    while True:
        candidate = parser.next_run(now=lo)  # a due fire, <= now
        following = _after(parser, candidate)
        if following is None or following > now:
            return 2, candidate
        mid = lo + (hi - lo) / 2
        if mid <= lo or mid >= hi:  # cannot split further: walk the rest
            return 2, _walk_to_latest(parser, candidate, now)
        if parser.next_run(now=mid) <= now:
            lo = mid
        else:
            hi = mid


def _walk_to_latest(parser: CronParser, fire: datetime, now: datetime) -> datetime:
    nxt = _after(parser, fire)
    while nxt is not None and nxt <= now:
        fire, nxt = nxt, _after(parser, nxt)
    return fire


def _after(parser: CronParser, fire: datetime) -> datetime | None:
    """The fire after ``fire``, or None when the expression has no more."""
    try:
        return parser.next_run(now=fire)
    except CronExhaustedError:
        return None


_ONE_SECOND = timedelta(seconds=1)


VIXIE_WINDOW = 3 * 3600.0
"""After a backward clock step, a fixed-time cron fire that already ran within this many
seconds of wall time is not run again (Vixie cron's rule)."""


def fire_after_step(
    parser: CronParser,
    tz: tzinfo,
    armed: float,
    last_fire: float | None,
    now: float,
    jump: float,
) -> tuple[float, bool]:
    """A cron's next fire (epoch seconds) after the wall clock stepped by ``jump`` seconds,
    and whether its due fires are now missed fires.

    Forward: the armed fire stays, and the fires the step skipped are missed (the misfire
    policy decides). Backward: the next fire after the new time, except that a fixed-time
    fire (the hour field is not ``*`` or ``*/n``) already run within the last
    :data:`VIXIE_WINDOW` of wall time is not run again.
    """
    if jump > 0:
        return armed, armed < now
    after = now
    fixed = getattr(parser, "hour_is_fixed", True)
    if fixed and last_fire is not None and now < last_fire <= now + VIXIE_WINDOW:
        after = last_fire
    following = _after(parser, datetime.fromtimestamp(after, tz))
    return (armed if following is None else following.timestamp()), False


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


def resolve_zone(value: Any, what: str = "tz") -> ZoneInfo:
    """A ``ZoneInfo`` from a ``ZoneInfo``, an IANA zone name or UTC; a clear error otherwise."""
    if isinstance(value, ZoneInfo):
        return value
    if isinstance(value, str):
        try:
            return ZoneInfo(value)
        except (ZoneInfoNotFoundError, ValueError, OSError):
            raise ValueError(
                f"{what}: unknown time zone {value!r}; use an IANA zone name such as "
                "'Europe/Berlin' or 'UTC'"
            ) from None
    if value is UTC or value is timezone.utc:  # noqa: UP017
        return ZoneInfo("UTC")
    raise TypeError(
        f"{what} must be a zoneinfo.ZoneInfo or an IANA zone name (e.g. 'Europe/Berlin'), "
        f"got {value!r}"
    )


def localize(naive: datetime, tz: tzinfo) -> datetime:
    """Attach ``tz`` to a naive wall time, by the same rules as cron across DST.

    A wall time in a repeated hour means its first occurrence (unless ``fold=1`` asks for the
    second); a wall time in a skipped hour (it never happens) means the first instant after
    the gap.
    """
    aware = naive.replace(tzinfo=tz)
    back = aware.astimezone(UTC).astimezone(tz).replace(tzinfo=None)
    if back == naive.replace(fold=0):
        return aware
    # In a gap: the two folds map to instants on either side of the transition; bisect
    # (to the second: zone transitions happen on whole seconds) for the instant it happens.
    lo = int(naive.replace(tzinfo=tz, fold=1).timestamp()) - 1
    hi = int(naive.replace(tzinfo=tz, fold=0).timestamp()) + 1
    before = datetime.fromtimestamp(lo, tz).utcoffset()
    while hi - lo > 1:
        mid = (lo + hi) // 2
        if datetime.fromtimestamp(mid, tz).utcoffset() == before:
            lo = mid
        else:
            hi = mid
    return datetime.fromtimestamp(hi, tz)


def check_instant(timestamp: float) -> float:
    """Validate the epoch second a job is scheduled for: not after :data:`MAX_TIMESTAMP`
    (a clear ``ValueError``); instants before year 1 are "now" anyway and are clamped."""
    if timestamp > MAX_TIMESTAMP:
        raise ValueError(
            "the job would run after 9999-12-30, the latest time a datetime can hold; "
            "use a smaller delay or an earlier time"
        )
    return timestamp if timestamp >= MIN_TIMESTAMP else MIN_TIMESTAMP


def check_delay(seconds: float) -> float:
    """Validate a delay in seconds: a real, finite number (negative means now)."""
    if type(seconds) is float or type(seconds) is int:
        if seconds - seconds == 0:  # finite (inf - inf and nan - nan are nan)
            try:
                return float(seconds)
            except OverflowError:  # an int beyond any float: negative is "now" anyway
                if seconds < 0:
                    return -math.inf
                raise ValueError(
                    "delay is too large: the job would run after 9999-12-30, the latest "
                    "time a datetime can hold; use a smaller delay or an earlier time"
                ) from None
        raise ValueError(f"delay must be a finite number of seconds, got {seconds}")
    if isinstance(seconds, bool) or not isinstance(seconds, int | float):
        raise TypeError(f"delay must be a number of seconds, got {type(seconds).__name__}")
    if not math.isfinite(seconds):
        raise ValueError(f"delay must be a finite number of seconds, got {seconds}")
    return float(seconds)
