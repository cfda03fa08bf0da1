"""``create_crontab``: the default ``cron_factory`` of :class:`jobify.Jobify`.

It turns an expression into a :class:`CronExpression`, whose ``next_run(now=...)`` gives the
next fire time.  Syntax and daylight-saving rules are documented in :mod:`jobify._cron.parse`
and :mod:`jobify._cron.engine` (for users: docs/cron.md).  Note one deliberate difference from
the reference system: when both day-of-month and day-of-week are restricted, a day matches if
*either* matches (the POSIX/Vixie rule), where the reference system's parser requires both.
"""

from __future__ import annotations

import functools
from datetime import datetime, timedelta, timezone
from zoneinfo import ZoneInfo

from jobify._cron.engine import day_is_unambiguous, next_fire
from jobify._cron.parse import MAX_YEAR, MIN_YEAR, CronSpec, parse

__all__ = ["CronExpression", "create_crontab"]

# Precomputed steps for the same-hour fast path (a jump is at most one hour).
_SECONDS = tuple(timedelta(seconds=n) for n in range(3601))
_ONE_SECOND = _SECONDS[1]
# The app's default zone; ZoneInfo caches instances per key, so identity is a cheap test.
_ZONE_UTC = ZoneInfo("UTC")


class CronExpression:
    """A compiled cron expression.

    Immutable and shareable: :func:`create_crontab` hands out one instance per distinct
    expression string.
    """

    __slots__ = ("_every_second", "_hour", "expression", "spec")

    expression: str
    """The expression exactly as given."""
    spec: CronSpec
    """The compiled form (allowed values per field)."""

    def __init__(self, expression: str) -> None:
        """Compile ``expression``; raises :class:`~jobify.exceptions.CronParseError`."""
        self.spec = parse(expression)
        self.expression = expression
        # (year, month, day, hour, tzinfo) of the last result: an hour known to match (date
        # and hour fields) and to be free of DST ambiguity, so a later `now` inside it only
        # needs the minute and second tables.  Replaced whole (one atomic store), so sharing
        # the object across threads is safe.
        self._hour: tuple[int, int, int, int, object] | None = None
        self._every_second = _is_every_second(self.spec)

    @property
    def hour_is_fixed(self) -> bool:
        """``False`` when the hour field is ``*`` or ``*/n`` (follows real time across DST)."""
        return self.spec.hour_fixed

    def next_run(self, *, now: datetime) -> datetime:
        """The first fire time strictly after the aware ``now``, in ``now``'s zone.

        Raises :class:`ValueError` for a naive ``now`` and
        :class:`~jobify.exceptions.CronExhaustedError` if the expression never fires again.
        """
        if (
            self._every_second
            and now.year < MAX_YEAR
            and (type(now.tzinfo) is timezone or now.tzinfo is _ZONE_UTC)
        ):
            if now.microsecond:
                return now.replace(microsecond=0) + _ONE_SECOND
            return now + _ONE_SECOND
        return self._next_run(now)

    def _next_run(self, now: datetime) -> datetime:
        memo = self._hour
        if (
            memo is not None
            and now.hour == memo[3]
            and now.day == memo[2]
            and now.month == memo[1]
            and now.year == memo[0]
            and now.tzinfo is memo[4]
        ):
            spec = self.spec
            minute = now.minute
            second = now.second
            upcoming = spec.second_next[second + 1]
            if upcoming >= 0 and spec.minute_next[minute] == minute:
                if now.microsecond == 0:
                    return now + _SECONDS[upcoming - second]
                return now.replace(second=upcoming, microsecond=0)
            next_minute = spec.minute_next[minute + 1]
            if next_minute >= 0:
                upcoming = spec.second_next[0]
                if now.microsecond == 0:
                    return now + _SECONDS[(next_minute - minute) * 60 + upcoming - second]
                return now.replace(minute=next_minute, second=upcoming, microsecond=0)
        result = next_fire(self.spec, now)
        tz = result.tzinfo
        if tz is not None and (
            type(tz) is timezone or day_is_unambiguous(tz, result.year, result.month, result.day)
        ):
            self._hour = (result.year, result.month, result.day, result.hour, tz)
        return result

    def __repr__(self) -> str:
        return f"CronExpression({self.expression!r})"

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, CronExpression):
            return NotImplemented
        return self.expression == other.expression

    def __hash__(self) -> int:
        return hash(self.expression)


def _is_every_second(spec: CronSpec) -> bool:
    """Every second of every day (7 fields, all wildcards): in a fixed-offset zone wall time
    is real time, so the next fire is simply the next whole second."""
    return (
        len(spec.seconds) == 60
        and len(spec.minutes) == 60
        and len(spec.hours) == 24
        and not spec.dom_restricted
        and not spec.dow_restricted
        and len(spec.months) == 12
        and len(spec.years) == MAX_YEAR - MIN_YEAR + 1
    )


class _EverySecond(CronExpression):
    """``* * * * * * *``: a scheduler asks it once a second per job, and walking missed fires
    (the ``ALL`` misfire policy after downtime, ``jobify cron --next``) feeds each result back
    in; its common cases cost one check and one addition."""

    __slots__ = ("_last",)

    def __init__(self, expression: str) -> None:
        super().__init__(expression)
        # The last result: a whole second in a fixed-offset zone before MAX_YEAR. Any object
        # ever stored here passed those checks, so a `now` that *is* it needs none of them
        # (safe when threads share the instance: identity implies validity).
        self._last: datetime | None = None

    def next_run(self, *, now: datetime) -> datetime:
        if now is self._last:
            nxt = now + _ONE_SECOND
            if nxt.year < MAX_YEAR:
                self._last = nxt
                return nxt
        tz = now.tzinfo
        if (
            (tz is _ZONE_UTC or type(tz) is timezone)
            and not now.microsecond
            and now.year < MAX_YEAR
        ):
            nxt = now + _ONE_SECOND
            self._last = nxt
            return nxt
        memo = self._hour
        if (
            memo is not None
            and not now.microsecond
            and (now.second < 59 or now.minute < 59)
            and now.hour == memo[3]
            and now.day == memo[2]
            and now.month == memo[1]
            and now.year == memo[0]
            and tz is memo[4]
        ):
            # Inside an hour of a day without a daylight-saving change (the memo says so),
            # and not its last second: wall time is real time, the next fire is the next
            # second of the same hour.
            return now + _ONE_SECOND
        return self._next_run(now)


@functools.lru_cache(maxsize=1024)
def _create_cached(expression: str) -> CronExpression:
    cls = _EverySecond if _is_every_second(parse(expression)) else CronExpression
    return cls(expression)


def create_crontab(expression: str) -> CronExpression:
    """Compile ``expression`` (cached) and return its :class:`CronExpression`.

    Raises :class:`~jobify.exceptions.CronParseError` naming the field and token of a malformed
    expression, :class:`TypeError` when ``expression`` is not a ``str``.
    """
    if not isinstance(expression, str):
        raise TypeError(f"a cron expression must be a str, not {type(expression).__name__}")
    return _create_cached(expression)
