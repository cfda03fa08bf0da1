"""The memoised fast paths of ``CronExpression.next_run`` agree with the pure engine."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

from hypothesis import given, settings
from hypothesis import strategies as st

from jobify.cron import next_fire, parse
from jobify.crontab import CronExpression

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
