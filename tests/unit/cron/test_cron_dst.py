"""Daylight-saving behaviour: hand-checked instant sequences plus a brute-force reference model.

Expected values are written as UTC instants (exact), and the local rendering is checked too.
2024 transitions used: Europe/Berlin 03-31 02:00 CET -> 03:00 CEST and 10-27 03:00 CEST ->
02:00 CET; America/New_York 03-10 02:00 EST -> 03:00 EDT and 11-03 02:00 EDT -> 01:00 EST;
Australia/Lord_Howe 10-06 02:00 +10:30 -> 02:30 +11 and 04-07 02:00 +11 -> 01:30 +10:30.
"""

from __future__ import annotations

import functools
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from jobify.crontab import create_crontab

BERLIN = ZoneInfo("Europe/Berlin")
NEW_YORK = ZoneInfo("America/New_York")
LORD_HOWE = ZoneInfo("Australia/Lord_Howe")


def z(fields: tuple[int, ...], tz: ZoneInfo, fold: int = 0) -> datetime:
    return datetime(*fields, tzinfo=tz, fold=fold)  # type: ignore[misc, arg-type]


def walk(expression: str, now: datetime, count: int) -> list[datetime]:
    cron = create_crontab(expression)
    out: list[datetime] = []
    for _ in range(count):
        now = cron.next_run(now=now)
        out.append(now)
    return out


def check(
    expression: str, start: datetime, expected_utc: list[str], expected_local: list[str]
) -> None:
    got = walk(expression, start, len(expected_utc))
    assert [g.astimezone(UTC).strftime("%m-%d %H:%M:%S") for g in got] == expected_utc
    assert [g.isoformat() for g in got] == expected_local
    assert all(g.tzinfo is start.tzinfo for g in got)


CASES = [
    # Berlin, fixed hour: skipped 02:30 runs at 03:00 CEST; repeated 02:30 runs once (CEST).
    (
        "30 2 * * *",
        z((2024, 3, 30, 12), BERLIN),
        ["03-31 01:00:00", "04-01 00:30:00"],
        ["2024-03-31T03:00:00+02:00", "2024-04-01T02:30:00+02:00"],
    ),
    (
        "30 2 * * *",
        z((2024, 10, 26, 12), BERLIN),
        ["10-27 00:30:00", "10-28 01:30:00"],
        ["2024-10-27T02:30:00+02:00", "2024-10-28T02:30:00+01:00"],
    ),
    # now inside the repeated hour, second pass (fold=1): already ran in the first pass
    (
        "30 2 * * *",
        z((2024, 10, 27, 2, 10), BERLIN, fold=1),
        ["10-28 01:30:00"],
        ["2024-10-28T02:30:00+01:00"],
    ),
    (
        "30 2 * * *",
        z((2024, 10, 27, 2, 10), BERLIN, fold=0),
        ["10-27 00:30:00", "10-28 01:30:00"],
        ["2024-10-27T02:30:00+02:00", "2024-10-28T02:30:00+01:00"],
    ),
    # several skipped fixed times collapse into one fire; 03:00 itself is not doubled
    (
        "0,30 2,3 * * *",
        z((2024, 3, 31, 1), BERLIN),
        ["03-31 01:00:00", "03-31 01:30:00", "04-01 00:00:00"],
        ["2024-03-31T03:00:00+02:00", "2024-03-31T03:30:00+02:00", "2024-04-01T02:00:00+02:00"],
    ),
    # Berlin, wildcard hour: real elapsed time
    (
        "0 * * * *",
        z((2024, 3, 31, 0, 30), BERLIN),
        ["03-31 00:00:00", "03-31 01:00:00", "03-31 02:00:00"],
        ["2024-03-31T01:00:00+01:00", "2024-03-31T03:00:00+02:00", "2024-03-31T04:00:00+02:00"],
    ),
    (
        "0 * * * *",
        z((2024, 10, 27, 0, 30), BERLIN),
        ["10-26 23:00:00", "10-27 00:00:00", "10-27 01:00:00", "10-27 02:00:00"],
        [
            "2024-10-27T01:00:00+02:00",
            "2024-10-27T02:00:00+02:00",
            "2024-10-27T02:00:00+01:00",
            "2024-10-27T03:00:00+01:00",
        ],
    ),
    (
        "*/15 * * * *",
        z((2024, 3, 31, 1, 20), BERLIN),
        ["03-31 00:30:00", "03-31 00:45:00", "03-31 01:00:00", "03-31 01:15:00"],
        [
            "2024-03-31T01:30:00+01:00",
            "2024-03-31T01:45:00+01:00",
            "2024-03-31T03:00:00+02:00",
            "2024-03-31T03:15:00+02:00",
        ],
    ),
    (
        "*/15 * * * *",
        z((2024, 10, 27, 2, 40), BERLIN),
        ["10-27 00:45:00", "10-27 01:00:00", "10-27 01:15:00"],
        ["2024-10-27T02:45:00+02:00", "2024-10-27T02:00:00+01:00", "2024-10-27T02:15:00+01:00"],
    ),
    (
        "*/15 * * * *",
        z((2024, 10, 27, 2, 40), BERLIN, fold=1),
        ["10-27 01:45:00", "10-27 02:00:00"],
        ["2024-10-27T02:45:00+01:00", "2024-10-27T03:00:00+01:00"],
    ),
    # Berlin, every second near both transitions
    (
        "* * * * * * *",
        z((2024, 3, 31, 1, 59, 58), BERLIN),
        ["03-31 00:59:59", "03-31 01:00:00", "03-31 01:00:01"],
        ["2024-03-31T01:59:59+01:00", "2024-03-31T03:00:00+02:00", "2024-03-31T03:00:01+02:00"],
    ),
    (
        "* * * * * * *",
        z((2024, 10, 27, 2, 59, 58), BERLIN),
        ["10-27 00:59:59", "10-27 01:00:00", "10-27 01:00:01"],
        ["2024-10-27T02:59:59+02:00", "2024-10-27T02:00:00+01:00", "2024-10-27T02:00:01+01:00"],
    ),
    # every second, but in a fixed hour: the skipped hour is one fire, the repeated hour once
    (
        "* * 2 * * * *",
        z((2024, 3, 31, 1, 59, 59), BERLIN),
        ["03-31 01:00:00", "04-01 00:00:00"],
        ["2024-03-31T03:00:00+02:00", "2024-04-01T02:00:00+02:00"],
    ),
    (
        "* * 2 * * * *",
        z((2024, 10, 27, 2, 59, 58), BERLIN),
        ["10-27 00:59:59", "10-28 01:00:00"],
        ["2024-10-27T02:59:59+02:00", "2024-10-28T02:00:00+01:00"],
    ),
    # New York
    (
        "30 2 * * *",
        z((2024, 3, 9, 12), NEW_YORK),
        ["03-10 07:00:00", "03-11 06:30:00"],
        ["2024-03-10T03:00:00-04:00", "2024-03-11T02:30:00-04:00"],
    ),
    (
        "30 1 * * *",
        z((2024, 11, 2, 12), NEW_YORK),
        ["11-03 05:30:00", "11-04 06:30:00"],
        ["2024-11-03T01:30:00-04:00", "2024-11-04T01:30:00-05:00"],
    ),
    (
        "30 2 * * *",
        z((2024, 11, 2, 12), NEW_YORK),
        ["11-03 07:30:00"],
        ["2024-11-03T02:30:00-05:00"],
    ),
    (
        "0 * * * *",
        z((2024, 3, 10, 1, 30), NEW_YORK),
        ["03-10 07:00:00", "03-10 08:00:00"],
        ["2024-03-10T03:00:00-04:00", "2024-03-10T04:00:00-04:00"],
    ),
    (
        "0 * * * *",
        z((2024, 11, 3, 0, 30), NEW_YORK),
        ["11-03 05:00:00", "11-03 06:00:00", "11-03 07:00:00"],
        ["2024-11-03T01:00:00-04:00", "2024-11-03T01:00:00-05:00", "2024-11-03T02:00:00-05:00"],
    ),
    (
        "*/15 * * * *",
        z((2024, 3, 10, 1, 40), NEW_YORK),
        ["03-10 06:45:00", "03-10 07:00:00", "03-10 07:15:00"],
        ["2024-03-10T01:45:00-05:00", "2024-03-10T03:00:00-04:00", "2024-03-10T03:15:00-04:00"],
    ),
    (
        "* * * * * * *",
        z((2024, 3, 10, 1, 59, 58), NEW_YORK),
        ["03-10 06:59:59", "03-10 07:00:00"],
        ["2024-03-10T01:59:59-05:00", "2024-03-10T03:00:00-04:00"],
    ),
    (
        "* * * * * * *",
        z((2024, 11, 3, 1, 59, 58), NEW_YORK),
        ["11-03 05:59:59", "11-03 06:00:00"],
        ["2024-11-03T01:59:59-04:00", "2024-11-03T01:00:00-05:00"],
    ),
    # Lord Howe: a 30-minute shift
    (
        "0 2 * * *",
        z((2024, 10, 5, 12), LORD_HOWE),
        ["10-05 15:30:00", "10-06 15:00:00"],
        ["2024-10-06T02:30:00+11:00", "2024-10-07T02:00:00+11:00"],
    ),
    (
        "0,30 2 * * *",
        z((2024, 10, 5, 12), LORD_HOWE),
        ["10-05 15:30:00", "10-06 15:00:00"],
        ["2024-10-06T02:30:00+11:00", "2024-10-07T02:00:00+11:00"],
    ),
    (
        "*/30 * * * *",
        z((2024, 10, 6, 1), LORD_HOWE),
        ["10-05 15:00:00", "10-05 15:30:00", "10-05 16:00:00"],
        ["2024-10-06T01:30:00+10:30", "2024-10-06T02:30:00+11:00", "2024-10-06T03:00:00+11:00"],
    ),
    (
        "*/30 * * * *",
        z((2024, 4, 7, 1), LORD_HOWE),
        ["04-06 14:30:00", "04-06 15:00:00", "04-06 15:30:00"],
        ["2024-04-07T01:30:00+11:00", "2024-04-07T01:30:00+10:30", "2024-04-07T02:00:00+10:30"],
    ),
    (
        "45 1 * * *",
        z((2024, 4, 6, 12), LORD_HOWE),
        ["04-06 14:45:00", "04-07 15:15:00"],
        ["2024-04-07T01:45:00+11:00", "2024-04-08T01:45:00+10:30"],
    ),
]


@pytest.mark.parametrize(("expression", "start", "expected_utc", "expected_local"), CASES)
def test_dst_sequences(
    expression: str, start: datetime, expected_utc: list[str], expected_local: list[str]
) -> None:
    check(expression, start, expected_utc, expected_local)


def test_non_canonical_now_in_a_gap_is_normalised() -> None:
    # 02:30 on the spring-forward day does not exist; Python reads it as 01:30 UTC (03:30 CEST).
    got = create_crontab("*/15 * * * *").next_run(now=z((2024, 3, 31, 2, 30), BERLIN))
    assert got.isoformat() == "2024-03-31T03:45:00+02:00"


@pytest.mark.parametrize("tz", [BERLIN, NEW_YORK, LORD_HOWE, ZoneInfo("America/Santiago")])
@pytest.mark.parametrize(
    "expression", ["0 * * * *", "*/7 * * * *", "30 2 * * *", "0 0 * * *", "*/10 0-3 * * *"]
)
def test_chained_walk_is_strictly_increasing(tz: ZoneInfo, expression: str) -> None:
    """Walk through each 2024 transition month: terminates, no instant twice, zone kept."""
    cron = create_crontab(expression)
    for month in (3, 4, 9, 10, 11):
        previous = now = datetime(2024, month, 1, tzinfo=tz)
        for _ in range(400):
            now = cron.next_run(now=now)
            assert now.astimezone(UTC) > previous.astimezone(UTC)
            assert now.tzinfo is tz
            previous = now


# --- a brute-force reference of the DST rules -------------------------------------------------

ZONES = [
    "Europe/Berlin",
    "America/New_York",
    "Australia/Lord_Howe",
    "America/Santiago",
    "Pacific/Chatham",
    "America/St_Johns",
    "Europe/London",
    "Australia/Sydney",
]


@functools.cache
def transitions(zone: str, year: int) -> tuple[datetime, ...]:
    """UTC instants (to the minute) where the zone's offset changes during ``year``."""
    tz = ZoneInfo(zone)
    found: list[datetime] = []
    t = datetime(year, 1, 1, tzinfo=UTC)
    end = datetime(year + 1, 1, 1, tzinfo=UTC)
    step = timedelta(hours=6)
    while t < end:
        if t.astimezone(tz).utcoffset() != (t + step).astimezone(tz).utcoffset():
            lo, hi = t, t + step
            while hi - lo > timedelta(minutes=1):
                mid = lo + (hi - lo) / 2
                if mid.astimezone(tz).utcoffset() == lo.astimezone(tz).utcoffset():
                    lo = mid
                else:
                    hi = mid
            found.append(hi.replace(second=0, microsecond=0))
        t += step
    return tuple(found)


def reference_next(minutes: set[int], hours: set[int], fixed: bool, now: datetime) -> datetime:
    """Spec §4 read literally, minute by minute over real instants."""
    tz = now.tzinfo
    assert tz is not None
    t = now.astimezone(UTC).replace(second=0, microsecond=0) + timedelta(minutes=1)
    while True:
        local = t.astimezone(tz)
        matches = local.minute in minutes and local.hour in hours
        if not fixed:
            if matches:
                return local
        else:
            if matches and local.fold == 0:
                return local
            before = (t - timedelta(minutes=1)).astimezone(tz)
            gap = local.utcoffset() - before.utcoffset()  # type: ignore[operator]
            if gap > timedelta(0):  # t is the first instant after a skipped interval
                wall = before.replace(tzinfo=None) + timedelta(minutes=1)
                while wall < local.replace(tzinfo=None):
                    if wall.minute in minutes and wall.hour in hours:
                        return local
                    wall += timedelta(minutes=1)
        t += timedelta(minutes=1)


MINUTE_FIELDS = st.one_of(
    st.sampled_from([("*", set(range(60)))]),
    st.integers(1, 30).map(lambda n: (f"*/{n}", set(range(0, 60, n)))),
    st.sets(st.sampled_from([0, 1, 15, 29, 30, 31, 45, 59]), min_size=1, max_size=3).map(
        lambda s: (",".join(map(str, sorted(s))), s)
    ),
)
HOUR_FIELDS = st.one_of(
    st.sampled_from([("*", set(range(24)), False)]),
    st.integers(1, 5).map(lambda n: (f"*/{n}", set(range(0, 24, n)), False)),
    st.sets(st.integers(0, 4) | st.integers(20, 23), min_size=1, max_size=3).map(
        lambda s: (",".join(map(str, sorted(s))), s, True)
    ),
    st.tuples(st.integers(0, 3), st.integers(0, 3)).map(
        lambda ab: (f"{min(ab)}-{max(ab) + 1}", set(range(min(ab), max(ab) + 2)), True)
    ),
)


@settings(max_examples=250, deadline=None)
@given(
    zone=st.sampled_from(ZONES),
    year=st.integers(2010, 2035),
    which=st.integers(0, 1),
    offset_minutes=st.integers(-150, 90) | st.integers(-26 * 60, 6 * 60),
    second=st.integers(0, 59),
    minute_field=MINUTE_FIELDS,
    hour_field=HOUR_FIELDS,
)
def test_matches_brute_force_reference_near_transitions(
    zone: str,
    year: int,
    which: int,
    offset_minutes: int,
    second: int,
    minute_field: tuple[str, set[int]],
    hour_field: tuple[str, set[int], bool],
) -> None:
    found = transitions(zone, year)
    if not found:
        return
    tz = ZoneInfo(zone)
    instant = found[which % len(found)] + timedelta(minutes=offset_minutes, seconds=second)
    now = instant.astimezone(tz)  # canonical, with fold=1 in a second pass
    minute_text, minutes = minute_field
    hour_text, hours, fixed = hour_field
    cron = create_crontab(f"{minute_text} {hour_text} * * *")
    assert cron.hour_is_fixed is fixed
    got = cron.next_run(now=now)
    expected = reference_next(minutes, hours, fixed, now)
    assert got.astimezone(UTC) == expected.astimezone(UTC), (got, expected)
    assert got.utcoffset() == expected.utcoffset()
    assert got.tzinfo is tz


@settings(max_examples=150, deadline=None)
@given(
    zone=st.sampled_from(ZONES),
    year=st.integers(2010, 2035),
    which=st.integers(0, 1),
    before_minutes=st.integers(1, 26 * 60),
    minute_field=MINUTE_FIELDS,
    extra_hour=st.none() | st.integers(0, 23),
)
def test_fixed_hour_at_the_transition_hour_matches_reference(
    zone: str,
    year: int,
    which: int,
    before_minutes: int,
    minute_field: tuple[str, set[int]],
    extra_hour: int | None,
) -> None:
    """Aim the hour field at the wall hour where the transition happens (gaps and repeats)."""
    found = transitions(zone, year)
    if not found:
        return
    tz = ZoneInfo(zone)
    transition = found[which % len(found)]
    # the wall hour just before the transition: inside the gap or the repeated interval
    hours = {(transition - timedelta(minutes=1)).astimezone(tz).hour}
    hours |= {transition.astimezone(tz).hour}
    if extra_hour is not None:
        hours.add(extra_hour)
    now = (transition - timedelta(minutes=before_minutes)).astimezone(tz)
    minute_text, minutes = minute_field
    cron = create_crontab(f"{minute_text} {','.join(map(str, sorted(hours)))} * * *")
    for _ in range(3):  # a short chain: also covers `now` in the second pass of a repeat
        got = cron.next_run(now=now)
        expected = reference_next(minutes, hours, True, now)
        assert got.astimezone(UTC) == expected.astimezone(UTC), (now, got, expected)
        assert got.utcoffset() == expected.utcoffset()
        now = got
