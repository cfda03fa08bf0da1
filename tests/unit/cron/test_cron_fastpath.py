"""The memoised fast paths of ``CronExpression.next_run`` agree with the pure engine."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from jobify._cron import next_fire, parse
from jobify.crontab import CronExpression, create_crontab
from jobify.exceptions import CronExhaustedError

EXPRESSIONS = [
    "* * * * * * *",
    "*/15 * * * * * *",
    "7,8 */10 * * * * *",
    "0 * * * *",
    "*/5 2 * * *",
    "30 2 * * *",
    "* * * * *",
    "10-20 5 2,3 * * * *",
]
ZONES = [UTC, ZoneInfo("Europe/Berlin"), ZoneInfo("America/New_York")]


@settings(max_examples=200, deadline=None)
@given(
    st.sampled_from(EXPRESSIONS),
    st.sampled_from(ZONES),
    st.datetimes(min_value=datetime(2024, 3, 9), max_value=datetime(2024, 11, 4)),
    st.lists(st.integers(-4000, 4000), min_size=1, max_size=8),
    st.booleans(),
)
def test_memoised_next_run_equals_pure_engine(
    expression: str, tz: object, start: datetime, jumps: list[int], chain: bool
) -> None:
    cron = CronExpression(expression)  # a fresh object: its memo starts empty
    spec = parse(expression)
    now = start.replace(tzinfo=tz)  # type: ignore[arg-type]
    for jump in jumps:
        got = cron.next_run(now=now)
        assert got == next_fire(spec, now)
        assert got.utcoffset() == next_fire(spec, now).utcoffset()
        now = got if chain else (now.astimezone(UTC) + timedelta(seconds=jump)).astimezone(tz)  # type: ignore[arg-type]


EVERY_SECOND_ZONES = [UTC, ZoneInfo("UTC"), timezone(timedelta(hours=5, minutes=30))]


@settings(max_examples=200, deadline=None)
@given(
    st.sampled_from([*EVERY_SECOND_ZONES, ZoneInfo("Europe/Berlin")]),
    st.datetimes(min_value=datetime(1970, 1, 2), max_value=datetime(2099, 12, 31, 23, 59, 58)),
)
def test_every_second_fast_path_equals_pure_engine(tz: object, start: datetime) -> None:
    cron = create_crontab("* * * * * * *")
    now = start.replace(tzinfo=tz)  # type: ignore[arg-type]
    assert cron.next_run(now=now) == next_fire(parse("* * * * * * *"), now)


def test_every_second_fast_path_edges() -> None:
    cron = create_crontab("* * * * * * *")
    assert type(cron) is not CronExpression  # the specialised class
    last = datetime(2098, 12, 31, 23, 59, 59, tzinfo=UTC)
    assert cron.next_run(now=last) == datetime(2099, 1, 1, tzinfo=UTC)
    with pytest.raises(CronExhaustedError):
        cron.next_run(now=datetime(2099, 12, 31, 23, 59, 59, tzinfo=UTC))
    with pytest.raises(ValueError, match="naive"):
        cron.next_run(now=datetime(2024, 1, 1))
    half = datetime(2024, 1, 1, 0, 0, 0, 500_000, tzinfo=UTC)
    assert cron.next_run(now=half) == datetime(2024, 1, 1, 0, 0, 1, tzinfo=UTC)


def test_every_second_chained_memo_stops_at_the_last_supported_year() -> None:
    cron = create_crontab("* * * * * * *")
    now = datetime(2098, 12, 31, 23, 59, 58, tzinfo=UTC)
    seen = []
    for _ in range(3):
        now = cron.next_run(now=now)  # chained: each result fed back in
        seen.append(now)
    assert seen == [
        datetime(2098, 12, 31, 23, 59, 59, tzinfo=UTC),
        datetime(2099, 1, 1, 0, 0, 0, tzinfo=UTC),
        datetime(2099, 1, 1, 0, 0, 1, tzinfo=UTC),
    ]
    end = datetime(2099, 12, 31, 23, 59, 58, tzinfo=UTC)
    last = cron.next_run(now=end)
    assert last == datetime(2099, 12, 31, 23, 59, 59, tzinfo=UTC)
    with pytest.raises(CronExhaustedError):
        cron.next_run(now=last)
