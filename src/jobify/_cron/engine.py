"""The next fire time of a compiled cron expression: a pure function of spec and aware ``now``.

The search runs on naive wall-clock fields, field by field (year, month, day, hour, minute,
second) using the lookup tables of :class:`~jobify._cron.parse.CronSpec`, so the cost is a handful
of table look-ups whatever the expression; it never iterates second by second.

Wall times are then mapped to instants in the zone of ``now``.  Daylight-saving rules
(docs/cron.md):

* *wildcard/stepped hour* (hour field ``*`` or ``*/n``): the expression follows real elapsed
  time.  It fires at every instant whose local wall time matches, so in a repeated hour it
  fires in both occurrences (distinct instants), and in a skipped hour it does not fire.
* *fixed hour* (any other hour field): a matching wall time that does not exist (skipped hour)
  fires at the first instant after the gap; a matching wall time that occurs twice fires once,
  at its first occurrence (``fold=0``).  Several skipped wall times collapse into one fire.

Results are aware, in ``now``'s zone, strictly after ``now``, and every instant is produced at
most once when the result is fed back as the next ``now``.  Fire times are limited to years
1970-2099 (the range of the year field); beyond that :class:`CronExhaustedError` is raised.
"""

from __future__ import annotations

import datetime as _dt
from datetime import datetime, timedelta, timezone

from jobify._cron.parse import MAX_YEAR, MIN_YEAR, CronSpec, month_shape_index
from jobify.exceptions import CronExhaustedError

__all__ = ["day_is_unambiguous", "next_fire", "next_wall"]

_UTC = _dt.UTC
_SECOND = timedelta(seconds=1)


def _month_shapes() -> tuple[int, ...]:
    """Per month 1970-01 … 2099-12: its shape (weekday of the 1st, length) as a day-table index."""
    shapes: list[int] = []
    for year in range(MIN_YEAR, MAX_YEAR + 1):
        for month in range(1, 13):
            first = _dt.date(year, month, 1)
            following = _dt.date(year + month // 12, month % 12 + 1, 1)
            length = (following - first).days
            first_weekday = (first.weekday() + 1) % 7  # cron numbering: 0 = Sunday
            shapes.append(month_shape_index(first_weekday, length))
    return tuple(shapes)


_MONTH_SHAPES = _month_shapes()


class _Exhausted(Exception):
    """Internal: the search ran past the last representable year."""


def next_wall(
    spec: CronSpec, y: int, mo: int, d: int, h: int, mi: int, s: int
) -> tuple[int, int, int, int, int, int]:
    """The earliest matching wall time at or after the given fields.

    Each field may exceed its range by one (``s=60``, ``h=24``, ``d=32``, ``mo=13``): the
    lookup tables turn such a value into a carry, so callers can add one second without
    normalising.  Raises ``_Exhausted`` past 2099.
    """
    year_next = spec.year_next
    month_next = spec.month_next
    day_masks = spec.day_masks
    hour_next = spec.hour_next
    minute_next = spec.minute_next
    second_next = spec.second_next
    if y < MIN_YEAR:
        y, mo, d, h, mi, s = MIN_YEAR, 1, 1, 0, 0, 0
    # Each branch either returns or moves strictly forward, resetting the smaller fields; the
    # year check bounds the loop even for expressions that never match (Feb 30).
    while True:
        if y > MAX_YEAR:
            raise _Exhausted
        ny = year_next[y - MIN_YEAR]
        if ny != y:
            if ny < 0:
                raise _Exhausted
            y, mo, d, h, mi, s = ny, 1, 1, 0, 0, 0
        nmo = month_next[mo]
        if nmo != mo:
            if nmo < 0:
                y, mo, d, h, mi, s = y + 1, 1, 1, 0, 0, 0
                continue
            mo, d, h, mi, s = nmo, 1, 0, 0, 0
        mask = day_masks[_MONTH_SHAPES[(y - MIN_YEAR) * 12 + mo - 1]] >> d
        if not mask & 1:
            if not mask:
                mo, d, h, mi, s = mo + 1, 1, 0, 0, 0
                continue
            d += (mask & -mask).bit_length() - 1
            h = mi = s = 0
        nh = hour_next[h]
        if nh != h:
            if nh < 0:
                d, h, mi, s = d + 1, 0, 0, 0
                continue
            h, mi, s = nh, 0, 0
        nmi = minute_next[mi]
        if nmi != mi:
            if nmi < 0:
                h, mi, s = h + 1, 0, 0
                continue
            mi, s = nmi, 0
        ns = second_next[s]
        if ns < 0:
            mi, s = mi + 1, 0
            continue
        return y, mo, d, h, mi, ns


def _exhausted(spec: CronSpec, now: datetime) -> CronExhaustedError:
    return CronExhaustedError(
        f"cron expression {spec.expression!r} never fires after {now.isoformat()} "
        f"(fire times are searched up to the end of {MAX_YEAR})"
    )


def next_fire(spec: CronSpec, now: datetime) -> datetime:
    """The first fire time of ``spec`` strictly after the aware datetime ``now``.

    The result is in ``now``'s time zone.  Raises :class:`ValueError` for a naive ``now`` and
    :class:`~jobify.exceptions.CronExhaustedError` when the expression never fires again.
    """
    tz = now.tzinfo
    if tz is None or now.utcoffset() is None:
        raise ValueError(
            f"cron needs an aware datetime for 'now', got naive {now.isoformat()}; "
            "attach a zone, e.g. now.replace(tzinfo=ZoneInfo('Europe/Berlin'))"
        )
    try:
        if type(tz) is timezone:
            # Fixed offset (UTC included): wall time is a bijection of instants.
            y, mo, d, h, mi, s = next_wall(
                spec, now.year, now.month, now.day, now.hour, now.minute, now.second + 1
            )
            return datetime(y, mo, d, h, mi, s, tzinfo=tz)
        # A zone with possible transitions. Fast path: `now` and the result both lie outside
        # any gap or repeated interval; then naive wall-time order is instant order. Whole
        # days without a transition are memoised, so the usual case costs two dict look-ups.
        y, mo, d = now.year, now.month, now.day
        if day_is_unambiguous(tz, y, mo, d) or (
            now.utcoffset() == now.replace(fold=1 - now.fold).utcoffset()
        ):
            y, mo, d, h, mi, s = next_wall(spec, y, mo, d, now.hour, now.minute, now.second + 1)
            result = datetime(y, mo, d, h, mi, s, tzinfo=tz)
            if day_is_unambiguous(tz, y, mo, d) or (
                result.utcoffset() == result.replace(fold=1).utcoffset()
            ):
                return result
        return _next_fire_near_transition(spec, now, tz)
    except _Exhausted:
        raise _exhausted(spec, now) from None


# Per zone: day key -> whether every wall time of that local day maps to exactly one instant.
_UNAMBIGUOUS_DAYS: dict[_dt.tzinfo, dict[int, bool]] = {}
_UNAMBIGUOUS_DAYS_MAX = 100_000  # per zone; a chained every-day walk over 270 years fits


def day_is_unambiguous(tz: _dt.tzinfo, y: int, mo: int, d: int) -> bool:
    """Whether local day ``y-mo-d`` in ``tz`` has no gap and no repeated wall time (memoised)."""
    days = _UNAMBIGUOUS_DAYS.get(tz)
    if days is None:
        days = _UNAMBIGUOUS_DAYS.setdefault(tz, {})
    key = (y << 9) | (mo << 5) | d
    known = days.get(key)
    if known is None:
        if len(days) >= _UNAMBIGUOUS_DAYS_MAX:
            days.clear()
        known = days[key] = _compute_day_is_unambiguous(tz, y, mo, d)
    return known


def _compute_day_is_unambiguous(tz: _dt.tzinfo, y: int, mo: int, d: int) -> bool:
    start = datetime(y, mo, d)
    end = start + timedelta(days=1)
    if _transition_at(start, tz) is not None or _transition_at(end, tz) is not None:
        return False
    # Same offset at both ends and in the middle: no transition in between (real zones never
    # have two opposite transitions within a few hours).
    first = start.replace(tzinfo=tz).astimezone(_UTC).replace(tzinfo=None)
    last = end.replace(tzinfo=tz).astimezone(_UTC).replace(tzinfo=None)
    offsets = {_offset_at(first + (last - first) * k / 4, tz) for k in range(5)}
    return len(offsets) == 1


def _wall_at_or_after(spec: CronSpec, wall: datetime) -> datetime:
    y, mo, d, h, mi, s = next_wall(
        spec, wall.year, wall.month, wall.day, wall.hour, wall.minute, wall.second
    )
    return datetime(y, mo, d, h, mi, s)


def _wall_after(spec: CronSpec, wall: datetime) -> datetime:
    # Fires are on whole seconds, so "strictly after" starts at the next whole second.
    y, mo, d, h, mi, s = next_wall(
        spec, wall.year, wall.month, wall.day, wall.hour, wall.minute, wall.second + 1
    )
    return datetime(y, mo, d, h, mi, s)


class _Transition:
    """A gap or repeated interval of wall time around one UTC transition instant."""

    __slots__ = ("end", "instant", "is_gap", "start")

    def __init__(self, is_gap: bool, start: datetime, end: datetime, instant: datetime) -> None:
        self.is_gap = is_gap
        self.start = start  # first wall time of the gap / repeated interval
        self.end = end  # first wall time after it
        self.instant = instant  # the transition, aware UTC


def _offset_at(utc_naive: datetime, tz: _dt.tzinfo) -> timedelta | None:
    return tz.fromutc(utc_naive.replace(tzinfo=tz)).utcoffset()


def _transition_at(wall: datetime, tz: _dt.tzinfo) -> _Transition | None:
    """``None`` if ``wall`` maps to exactly one instant, else its gap or repeated interval."""
    before = wall.replace(tzinfo=tz).utcoffset()  # PEP 495: fold=0 uses the earlier offset
    after = wall.replace(tzinfo=tz, fold=1).utcoffset()
    if before == after or before is None or after is None:
        return None
    # The transition instant T lies in (wall - max offset, wall - min offset]. Bisect over
    # whole seconds (zone transitions are on whole seconds): the window is at most a few hours.
    lo = wall - max(before, after)
    lo_s, hi_s = 0, int(abs(after - before).total_seconds())
    while hi_s - lo_s > 1:
        mid = (lo_s + hi_s) // 2
        if _offset_at(lo + timedelta(seconds=mid), tz) == before:
            lo_s = mid
        else:
            hi_s = mid
    instant = lo + timedelta(seconds=hi_s)
    if before < after:  # skipped wall times: [T + before, T + after)
        return _Transition(True, instant + before, instant + after, instant.replace(tzinfo=_UTC))
    # repeated wall times: [T + after, T + before)
    return _Transition(False, instant + after, instant + before, instant.replace(tzinfo=_UTC))


def _next_fire_near_transition(spec: CronSpec, now: datetime, tz: _dt.tzinfo) -> datetime:
    """The general algorithm; only taken when ``now`` or the naive result touches a transition."""
    local = now.astimezone(_UTC).astimezone(tz)  # canonical wall time and fold of `now`
    wall = local.replace(tzinfo=None, fold=0)
    fixed = spec.hour_fixed
    repeated = _transition_at(wall, tz)
    if repeated is not None:
        # `now` is inside a repeated interval [start, end): its fold tells which pass we are in.
        if local.fold == 0:
            candidate = _wall_after(spec, wall)
            if candidate < repeated.end:
                return candidate.replace(tzinfo=tz)
            if not fixed:  # the second pass over the interval is real time too
                candidate = _wall_at_or_after(spec, repeated.start)
                if candidate < repeated.end:
                    return candidate.replace(tzinfo=tz, fold=1)
        elif not fixed:
            candidate = _wall_after(spec, wall)
            if candidate < repeated.end:
                return candidate.replace(tzinfo=tz, fold=1)
        # Fixed-hour fires in the second pass already ran in the first one.
        start = repeated.end
    else:
        start = wall.replace(microsecond=0) + _SECOND
    while True:
        candidate = _wall_at_or_after(spec, start)
        transition = _transition_at(candidate, tz)
        if transition is None or not transition.is_gap:
            return candidate.replace(tzinfo=tz)  # fold=0: the first occurrence
        if fixed:
            return transition.instant.astimezone(tz)  # the first instant after the gap
        start = transition.end  # real time: nothing fires in a skipped interval
