"""Engine: hand-checked fire times (UTC and fixed offsets), day rules, bounds and errors."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

import pytest

from jobify.crontab import create_crontab
from jobify.exceptions import CronExhaustedError


def walk(expression: str, now: datetime, count: int) -> list[datetime]:
    """``count`` successive fire times, feeding each result back as ``now``."""
    cron = create_crontab(expression)
    out: list[datetime] = []
    for _ in range(count):
        now = cron.next_run(now=now)
        out.append(now)
    return out


def u(*fields: int) -> datetime:
    return datetime(*fields, tzinfo=UTC)  # type: ignore[misc, arg-type]


@pytest.mark.parametrize(
    ("expression", "start", "expected"),
    [
        # leap years
        ("0 0 29 2 *", u(2023, 1, 1), [u(2024, 2, 29), u(2028, 2, 29), u(2032, 2, 29)]),
        ("0 0 29 2 *", u(2096, 3, 1), None),  # 2100 is not a leap year, and out of range
        # month ends
        ("0 0 31 * *", u(2024, 4, 1), [u(2024, 5, 31), u(2024, 7, 31), u(2024, 8, 31)]),
        ("0 0 L * *", u(2023, 1, 31), [u(2023, 2, 28), u(2023, 3, 31), u(2023, 4, 30)]),
        ("0 0 L * *", u(2024, 2, 1), [u(2024, 2, 29), u(2024, 3, 31)]),
        ("0 0 L,15 * *", u(2024, 2, 1), [u(2024, 2, 15), u(2024, 2, 29), u(2024, 3, 15)]),
        # last weekday of the month
        (
            "0 12 * * L5",
            u(2024, 1, 1),
            [u(2024, 1, 26, 12), u(2024, 2, 23, 12), u(2024, 3, 29, 12)],
        ),
        ("0 12 * * LFRI", u(2024, 1, 1), [u(2024, 1, 26, 12), u(2024, 2, 23, 12)]),
        (
            "0 12 * * L3-4",
            u(2024, 2, 1),
            [u(2024, 2, 28, 12), u(2024, 2, 29, 12), u(2024, 3, 27, 12)],
        ),
        # lone L in day-of-week = Saturday
        ("0 0 * * L", u(2024, 2, 1), [u(2024, 2, 3), u(2024, 2, 10)]),
        # n-th weekday
        ("0 0 * * MON#2", u(2024, 1, 1), [u(2024, 1, 8), u(2024, 2, 12), u(2024, 3, 11)]),
        ("0 0 * * 0#1,0#3", u(2024, 9, 1), [u(2024, 9, 15), u(2024, 10, 6), u(2024, 10, 20)]),
        # FRI#5 skips months without a fifth Friday
        (
            "0 0 * * FRI#5",
            u(2024, 1, 1),
            [u(2024, 3, 29), u(2024, 5, 31), u(2024, 8, 30), u(2024, 11, 29), u(2025, 1, 31)],
        ),
        # the OR rule: both restricted -> either matches
        (
            "0 0 13 * FRI",
            u(2024, 9, 1),
            [
                u(2024, 9, 6),
                u(2024, 9, 13),
                u(2024, 9, 20),
                u(2024, 9, 27),
                u(2024, 10, 4),
                u(2024, 10, 11),
                u(2024, 10, 13),
                u(2024, 10, 18),
            ],
        ),
        (
            "0 0 30 2 MON",
            u(2024, 2, 1),
            [u(2024, 2, 5), u(2024, 2, 12), u(2024, 2, 19), u(2024, 2, 26), u(2025, 2, 3)],
        ),
        ("0 0 L * MON#1", u(2024, 4, 2), [u(2024, 4, 30), u(2024, 5, 6), u(2024, 5, 31)]),
        # one restricted, the other * or ?: the restricted one alone decides
        ("0 0 13 * *", u(2024, 9, 1), [u(2024, 9, 13), u(2024, 10, 13)]),
        ("0 0 ? * FRI", u(2024, 9, 1), [u(2024, 9, 6), u(2024, 9, 13)]),
        ("0 0 13 * ?", u(2024, 9, 1), [u(2024, 9, 13), u(2024, 10, 13)]),
        ("0 0 * * 7", u(2024, 9, 1), [u(2024, 9, 8), u(2024, 9, 15)]),
        # year boundaries
        ("@yearly", u(2024, 12, 31, 23, 59, 59), [u(2025, 1, 1), u(2026, 1, 1)]),
        ("@annually", u(2024, 1, 1), [u(2025, 1, 1)]),
        ("59 23 31 12 *", u(2024, 12, 31, 23, 59), [u(2025, 12, 31, 23, 59)]),
        ("* * * * *", u(2024, 12, 31, 23, 59, 30), [u(2025, 1, 1), u(2025, 1, 1, 0, 1)]),
        ("@monthly", u(2024, 1, 31, 12), [u(2024, 2, 1), u(2024, 3, 1)]),
        ("@weekly", u(2024, 9, 4), [u(2024, 9, 8), u(2024, 9, 15)]),
        ("@daily", u(2024, 2, 28, 1), [u(2024, 2, 29), u(2024, 3, 1)]),
        ("@hourly", u(2024, 2, 28, 23, 0), [u(2024, 2, 29), u(2024, 2, 29, 1)]),
        # 6 and 7 fields, the year field
        ("0 0 1 1 * 2030", u(2024, 5, 5), [u(2030, 1, 1)]),
        ("0 0 1 1 * 2030-2040/5", u(2030, 1, 1), [u(2035, 1, 1), u(2040, 1, 1)]),
        ("30 15 10 1 1 * 2030", u(2024, 1, 1), [u(2030, 1, 1, 10, 15, 30)]),
        (
            "*/20 * * * * * *",
            u(2024, 1, 1, 12, 0, 50),
            [u(2024, 1, 1, 12, 1), u(2024, 1, 1, 12, 1, 20)],
        ),
        (
            "5-10/5 0 0 * * * 2025",
            u(2024, 6, 1),
            [u(2025, 1, 1, 0, 0, 5), u(2025, 1, 1, 0, 0, 10), u(2025, 1, 2, 0, 0, 5)],
        ),
        # strictly after now
        ("0 12 * * *", u(2024, 1, 1, 12), [u(2024, 1, 2, 12)]),
        ("0 12 * * *", u(2024, 1, 1, 11, 59, 59, 999999), [u(2024, 1, 1, 12)]),
        ("* * * * *", u(2024, 1, 1, 12, 0, 0, 1), [u(2024, 1, 1, 12, 1)]),
        # a `now` before 1970 starts at the beginning of the supported range
        ("0 0 1 1 *", u(1960, 5, 5), [u(1970, 1, 1), u(1971, 1, 1)]),
        ("0 0 31 12 *", u(2099, 12, 30), [u(2099, 12, 31)]),
    ],
)
def test_fire_times(expression: str, start: datetime, expected: list[datetime] | None) -> None:
    if not expected:
        with pytest.raises(CronExhaustedError):
            walk(expression, start, 1)
        return
    got = walk(expression, start, len(expected))
    assert got == expected
    assert all(g.tzinfo is UTC for g in got)


@pytest.mark.parametrize(
    ("expression", "now"),
    [
        ("30 2 30 2 *", u(2024, 1, 1)),
        ("0 0 31 4,6,9,11 *", u(2024, 1, 1)),
        ("* * * * * 2020", u(2024, 1, 1)),
        ("0 0 1 1 * 2030", u(2030, 1, 1)),
        ("0 0 31 12 *", u(2099, 12, 31)),
        ("* * * * *", u(2100, 1, 1)),
        ("* * * * *", datetime(9999, 12, 31, 23, 59, tzinfo=UTC)),
    ],
)
def test_exhausted(expression: str, now: datetime) -> None:
    with pytest.raises(CronExhaustedError, match=r"never fires after") as info:
        create_crontab(expression).next_run(now=now)
    assert expression in str(info.value)
    assert isinstance(info.value, ValueError)


def test_naive_now_is_a_clear_value_error() -> None:
    with pytest.raises(ValueError, match="aware"):
        create_crontab("* * * * *").next_run(now=datetime(2024, 1, 1))


def test_fixed_offset_zone_is_kept() -> None:
    ist = timezone(timedelta(hours=5, minutes=30))
    got = walk("0 9 * * *", datetime(2024, 1, 1, 10, tzinfo=ist), 2)
    assert got == [datetime(2024, 1, 2, 9, tzinfo=ist), datetime(2024, 1, 3, 9, tzinfo=ist)]
    assert all(g.tzinfo is ist for g in got)


def test_every_second_walk_crosses_every_boundary() -> None:
    got = walk("* * * * * * *", u(2024, 12, 31, 23, 59, 58), 3)
    assert got == [u(2024, 12, 31, 23, 59, 59), u(2025, 1, 1), u(2025, 1, 1, 0, 0, 1)]


def _brute_days(dom: set[int] | None, dow: set[int] | None, start: datetime) -> datetime:
    """Reference: the next midnight after ``start`` by walking day by day (None = '*')."""
    day = start.replace(hour=0, minute=0, second=0, microsecond=0) + timedelta(days=1)
    while True:
        weekday = (day.weekday() + 1) % 7
        dom_ok = dom is not None and day.day in dom
        dow_ok = dow is not None and weekday in dow
        if (dom is None and dow is None) or dom_ok or dow_ok:
            return day
        day += timedelta(days=1)


@pytest.mark.parametrize(
    ("dom_text", "dom", "dow_text", "dow"),
    [
        ("1,15", {1, 15}, "MON", {1}),
        ("*/10", {1, 11, 21, 31}, "SAT,SUN", {0, 6}),
        ("31", {31}, "3-4", {3, 4}),
        ("29", {29}, "*", None),
        ("*", None, "0", {0}),
    ],
)
def test_or_rule_against_day_walk(
    dom_text: str, dom: set[int] | None, dow_text: str, dow: set[int] | None
) -> None:
    cron = create_crontab(f"0 0 {dom_text} * {dow_text}")
    now = u(2023, 12, 25)
    for _ in range(60):
        expected = _brute_days(dom, dow, now)
        now = cron.next_run(now=now)
        assert now == expected
