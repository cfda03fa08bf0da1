"""Pure parts: storage URLs, command-line times, safe text, cron previews with DST marks."""

from __future__ import annotations

import itertools
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest

from jobify.cli._cronpreview import preview
from jobify.cli._when import parse_when, parse_zone
from jobify.inspection import human_duration, parse_storage_url, safe_text

NOW = datetime(2025, 6, 1, 12, 0, tzinfo=UTC)


@pytest.mark.parametrize(
    ("url", "path", "options"),
    [
        ("sqlite:///jobs.db", "jobs.db", {}),
        ("sqlite:///data/jobs.db", "data/jobs.db", {}),
        ("sqlite:////var/lib/app/jobs.db", "/var/lib/app/jobs.db", {}),
        ("SQLite:////abs.db", "/abs.db", {}),
        ("sqlite+aiosqlite:///jobs.db", "jobs.db", {}),
        ("sqlite:///my%20jobs.db", "my jobs.db", {}),
        ("sqlite:///jobs.db?table=my_jobs", "jobs.db", {"table": "my_jobs"}),
        ("jobs.db", "jobs.db", {}),
        ("/srv/jobs.db", "/srv/jobs.db", {}),
        ("  ./jobs.db ", "./jobs.db", {}),
    ],
)
def test_sqlite_urls(url: str, path: str, options: dict[str, str]) -> None:
    location = parse_storage_url(url)
    assert (location.kind, location.location, dict(location.options)) == ("sqlite", path, options)
    assert repr(path) in location.display


def test_postgresql_urls_keep_driver_options_and_hide_the_password() -> None:
    location = parse_storage_url(
        "postgresql+asyncpg://u:s3cret@db:5433/app?schema=jobs&sslmode=require"
    )
    assert location.kind == "postgresql"
    assert location.location == "postgresql://u:s3cret@db:5433/app?sslmode=require"
    assert dict(location.options) == {"schema": "jobs"}
    assert "s3cret" not in location.display
    assert "u:***@db:5433" in location.display
    assert parse_storage_url("postgres://db/app").location == "postgresql://db/app"


@pytest.mark.parametrize(
    ("url", "message"),
    [
        ("", "empty storage URL"),
        ("   ", "empty storage URL"),
        ("sqlite://", "names no file"),
        ("sqlite://host/jobs.db", "has a host part"),
        ("sqlite:///jobs.db?table", "malformed query string"),
        ("sqlite:///jobs.db?table=", "has no value"),
        ("sqlite:///jobs.db?table=a&x=1", "unknown option(s) x"),
        ("sqlite:///:memory:", "in-memory"),
        ("ftp://host/jobs.db", "unknown storage URL scheme 'ftp'"),
        ("://jobs.db", "unknown storage URL scheme ''"),
        ("postgresql://", "names no host or database"),
        ("postgresql://u:pw@h:notaport/db", "malformed storage URL"),
        ("jobs\0.db", "NUL"),
    ],
)
def test_bad_urls(url: str, message: str) -> None:
    with pytest.raises(ValueError) as caught:
        parse_storage_url(url)
    assert message in str(caught.value)
    assert "pw" not in str(caught.value)


def test_url_must_be_text() -> None:
    with pytest.raises(TypeError):
        parse_storage_url(b"jobs.db")  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("now", NOW),
        ("-1h", NOW - timedelta(hours=1)),
        ("2d", NOW + timedelta(days=2)),
        ("+30m", NOW + timedelta(minutes=30)),
        ("-1.5w", NOW - timedelta(weeks=1.5)),
        ("2025-03-30T02:30", datetime(2025, 3, 30, 2, 30, tzinfo=UTC)),  # naive = UTC
        ("2025-03-30", datetime(2025, 3, 30, tzinfo=UTC)),
        ("2025-03-30T02:30:00+02:00", datetime(2025, 3, 30, 0, 30, tzinfo=UTC)),
        ("2025-03-30T02:30:00Z", datetime(2025, 3, 30, 2, 30, tzinfo=UTC)),
    ],
)
def test_when(text: str, expected: datetime) -> None:
    assert parse_when(text, NOW) == expected


@pytest.mark.parametrize("text", ["yesterday", "1y", "-h", "2025-02-30", "", "99999999999d"])
def test_bad_when(text: str) -> None:
    with pytest.raises(ValueError, match=r"not a time|too far"):
        parse_when(text, NOW)


def test_zone() -> None:
    assert parse_zone("utc") is UTC
    assert parse_zone("Europe/Berlin") == ZoneInfo("Europe/Berlin")
    with pytest.raises(ValueError, match="unknown time zone 'Mars/Olympus'"):
        parse_zone("Mars/Olympus")
    with pytest.raises(ValueError, match="unknown time zone"):
        parse_zone("../../etc/passwd")


def test_safe_text() -> None:
    assert safe_text("plain text, ünïcode ✓") == "plain text, ünïcode ✓"
    assert safe_text("\x1b[31mred\x1b[0m") == "\\x1b[31mred\\x1b[0m"
    assert safe_text("a\nb\tc") == "a\\x0ab\\x09c"
    assert safe_text("a\nb\tc\r", multiline=True) == "a\nb\tc\\x0d"
    assert safe_text("abc\u202egnp.exe") == "abc\\u202egnp.exe"  # right-to-left override
    assert safe_text("\x9b2J") == "\\x9b2J"  # the one-byte CSI
    assert safe_text("no\u00a0break") == "no break"


def test_human_duration() -> None:
    assert human_duration(0.85) == "850ms"
    assert human_duration(12.34) == "12.3s"
    assert human_duration(245) == "4m05s"
    assert human_duration(2 * 3600 + 600) == "2h10m"
    assert human_duration(47 * 3600 + 59 * 60) == "47h59m"
    assert human_duration(3 * 86400 + 4 * 3600) == "3d04h"
    assert human_duration(-245) == "-4m05s"
    assert human_duration(None) == "-"
    assert human_duration(float("nan")) == "-"
    assert human_duration(float("inf")) == "-"


def fires(expression: str, zone: str, start: str, count: int) -> list[str]:
    begin = datetime.fromisoformat(start).replace(tzinfo=ZoneInfo(zone))
    return [fire.line() for fire in itertools.islice(preview(expression, begin), count)]


def test_preview_marks_spring_forward() -> None:
    assert fires("30 2 * * *", "Europe/Berlin", "2025-03-29T00:00", 3) == [
        "2025-03-29T02:30:00+01:00",
        "2025-03-30T03:00:00+02:00  (DST: clocks go forward)",
        "2025-03-31T02:30:00+02:00",
    ]


def test_preview_marks_fall_back_once() -> None:
    lines = fires("*/30 * * * *", "America/New_York", "2025-11-02T00:40", 5)
    assert lines == [
        "2025-11-02T01:00:00-04:00",
        "2025-11-02T01:30:00-04:00",
        "2025-11-02T01:00:00-05:00  (DST: clocks go back)",
        "2025-11-02T01:30:00-05:00",
        "2025-11-02T02:00:00-05:00",
    ]


def test_preview_marks_non_dst_offset_changes_and_half_hours() -> None:
    # North Korea moved its standard time back by 30 minutes on 2015-08-15.
    lines = fires("0 0 * * *", "Asia/Pyongyang", "2015-08-14T00:00", 2)
    assert lines[1] == "2015-08-16T00:00:00+08:30"
    assert lines[0] == "2015-08-15T00:00:00+08:30  (UTC offset change: clocks go back by 30m)"
    # Lord Howe Island's DST is half an hour.
    lines = fires("0 3 * * *", "Australia/Lord_Howe", "2025-04-05T12:00", 2)
    assert lines[0].endswith("(DST: clocks go back by 30m)")


def test_preview_in_utc_has_no_marks() -> None:
    lines = fires("0 */6 * * *", "UTC", "2025-03-29T00:00", 12)
    assert all("(" not in line for line in lines)
