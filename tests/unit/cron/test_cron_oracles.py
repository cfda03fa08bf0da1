"""Differential tests against two independent implementations: ``crontab`` and ``croniter``.

Both oracles are used only where they are right: UTC instants, and expressions where at most
one of day-of-month / day-of-week is restricted (the oracles disagree with each other on the
OR rule; it is hand-checked in test_cron_engine.py).  croniter has no year field, so it gets
5-field expressions, and 7-field ones translated to its 6-field form (seconds last).
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from croniter import CroniterBadDateError, croniter
from crontab import CronTab
from hypothesis import given, settings
from hypothesis import strategies as st

from jobify.crontab import create_crontab
from jobify.exceptions import CronExhaustedError

MONTH_NAMES = ["JAN", "FEB", "MAR", "APR", "MAY", "JUN", "JUL", "AUG", "SEP", "OCT", "NOV", "DEC"]
DAY_NAMES = ["SUN", "MON", "TUE", "WED", "THU", "FRI", "SAT"]


def _value(
    draw: st.DrawFn, lo: int, hi: int, names: list[str] | None, base: int
) -> tuple[int, str]:
    number = draw(st.integers(lo, hi))
    if names is not None and number - base < len(names) and draw(st.booleans()):
        name = names[number - base]
        return number, draw(st.sampled_from([name, name.lower(), name.capitalize()]))
    return number, str(number)


@st.composite
def element(draw: st.DrawFn, lo: int, hi: int, names: list[str] | None = None) -> str:
    """One list element: n, a-b, */s, a-b/s, a/s (a < b)."""
    base = lo
    kind = draw(st.sampled_from(["value", "range", "star_step", "range_step", "start_step"]))
    if kind == "value":
        return _value(draw, lo, hi, names, base)[1]
    step = draw(st.integers(1, max(1, (hi - lo) // 2 + 1)))
    if kind == "star_step":
        return f"*/{step}"
    a, a_text = _value(draw, lo, hi, names, base)
    if kind == "start_step":
        # crontab rejects `a/s` when a + s is past the field's end; so keep it in range
        return f"{a_text}/{min(step, hi - a)}" if a < hi else a_text
    if a == hi:
        return a_text
    # a < b strictly: both oracles misread a one-value range `a-a` (as `*` or as an error)
    b, b_text = _value(draw, a + 1, hi, names, base)
    # crontab rejects `a-b/s` when a + s is past b
    return f"{a_text}-{b_text}" + (f"/{min(step, b - a)}" if kind == "range_step" else "")


def field(
    lo: int, hi: int, names: list[str] | None = None, star: float = 0.3
) -> st.SearchStrategy[str]:
    restricted = st.lists(element(lo, hi, names), min_size=1, max_size=3).map(",".join)
    return st.one_of(st.just("*"), restricted) if star else restricted


@dataclass(frozen=True)
class Fields:
    second: str
    minute: str
    hour: str
    dom: str
    month: str
    dow: str
    year: str


@st.composite
def fields(draw: st.DrawFn, seconds: bool, years: bool) -> Fields:
    dom = draw(field(1, 31))
    dow = draw(field(0, 6, DAY_NAMES))
    if dom != "*" and dow != "*":  # oracles differ on the OR rule: keep one side '*' or '?'
        if draw(st.booleans()):
            dom = draw(st.sampled_from(["*", "?"]))
        else:
            dow = draw(st.sampled_from(["*", "?"]))
    return Fields(
        second=draw(field(0, 59)) if seconds else "0",
        minute=draw(field(0, 59)),
        hour=draw(field(0, 23)),
        dom=dom,
        month=draw(field(1, 12, MONTH_NAMES)),
        dow=dow,
        year=draw(st.one_of(st.just("*"), field(1970, 2099, star=0))) if years else "*",
    )


INSTANTS = st.datetimes(
    min_value=datetime(1970, 1, 1), max_value=datetime(2099, 12, 31, 23, 59, 59)
).map(lambda d: d.replace(tzinfo=UTC))


def ours(expression: str, now: datetime) -> datetime | None:
    try:
        return create_crontab(expression).next_run(now=now)
    except CronExhaustedError:
        return None


def by_crontab(expression: str, now: datetime) -> datetime | None:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        result = CronTab(expression).next(now, default_utc=True, return_datetime=True)
    assert result is None or isinstance(result, datetime)
    if result is None or result.year > 2099:
        return None
    return result.astimezone(UTC)


def test_a_never_firing_expression_is_no_fire_for_both() -> None:
    now = datetime(2030, 1, 1, tzinfo=UTC)
    assert by_croniter("* * 30 2 *", now) is None
    assert ours("* * 30 2 *", now) is None


def by_croniter(expression: str, now: datetime) -> datetime | None:
    try:
        result = croniter(expression, now).get_next(datetime)
    except CroniterBadDateError:  # an expression that never fires (e.g. "* * 30 2 *")
        return None
    assert isinstance(result, datetime)
    return None if result.year > 2099 else result.astimezone(UTC)


def _dow_for_croniter(dow: str) -> str:
    return "*" if dow == "?" else dow


@settings(max_examples=400, deadline=None)
@given(fields(seconds=True, years=True), INSTANTS)
def test_seven_fields_against_crontab(f: Fields, now: datetime) -> None:
    # crontab's 7-field order is ours: second minute hour dom month dow year
    expression = f"{f.second} {f.minute} {f.hour} {f.dom} {f.month} {f.dow} {f.year}"
    assert ours(expression, now) == by_crontab(expression, now)


@settings(max_examples=300, deadline=None)
@given(fields(seconds=False, years=False), INSTANTS)
def test_five_fields_against_crontab(f: Fields, now: datetime) -> None:
    expression = f"{f.minute} {f.hour} {f.dom} {f.month} {f.dow}"
    assert ours(expression, now) == by_crontab(expression, now)


@settings(max_examples=300, deadline=None)
@given(fields(seconds=False, years=False), INSTANTS.filter(lambda d: d.year < 2099))
def test_five_fields_against_croniter(f: Fields, now: datetime) -> None:
    expression = f"{f.minute} {f.hour} {f.dom} {f.month} {f.dow}"
    theirs = f"{f.minute} {f.hour} {f.dom} {f.month} {_dow_for_croniter(f.dow)}"
    assert ours(expression, now) == by_croniter(theirs, now)


@settings(max_examples=200, deadline=None)
@given(fields(seconds=True, years=False), INSTANTS.filter(lambda d: d.year < 2099))
def test_seconds_against_croniter(f: Fields, now: datetime) -> None:
    expression = f"{f.second} {f.minute} {f.hour} {f.dom} {f.month} {f.dow} *"
    # croniter's 6-field form puts seconds last
    theirs = f"{f.minute} {f.hour} {f.dom} {f.month} {_dow_for_croniter(f.dow)} {f.second}"
    assert ours(expression, now) == by_croniter(theirs, now)


@settings(max_examples=150, deadline=None)
@given(
    st.sampled_from(["L", "15,L", "L,1"]),
    st.sampled_from(["*", "2", "*/3", "FEB,APR"]),
    st.integers(0, 23),
    INSTANTS.filter(lambda d: d.year < 2099),
)
def test_last_day_of_month_against_both(dom: str, month: str, hour: int, now: datetime) -> None:
    expression = f"0 {hour} {dom} {month} *"
    expected = ours(expression, now)
    assert expected == by_croniter(expression, now)
    assert expected == by_crontab(expression, now)


@settings(max_examples=150, deadline=None)
@given(
    st.integers(0, 6),
    st.integers(1, 5),
    st.sampled_from(["#", "L"]),
    INSTANTS.filter(lambda d: d.year < 2099),
)
def test_nth_and_last_weekday_against_croniter(
    weekday: int, n: int, kind: str, now: datetime
) -> None:
    expression = f"0 0 * * {weekday}#{n}" if kind == "#" else f"0 0 * * L{weekday}"
    assert ours(expression, now) == by_croniter(expression, now)


def test_oracle_sanity() -> None:
    now = datetime(2024, 2, 10, 13, 5, 7, tzinfo=UTC)
    assert by_crontab("0 0 L * *", now) == datetime(2024, 2, 29, tzinfo=UTC)
    assert by_croniter("0 0 L * *", now) == datetime(2024, 2, 29, tzinfo=UTC)
    assert ours("0 0 L * *", now) == now.replace(day=29, hour=0, minute=0, second=0)
    assert ours("* * * * *", now) == now.replace(second=0) + timedelta(minutes=1)
