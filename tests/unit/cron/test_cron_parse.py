"""Parser: accepted syntax, compiled sets, and every error category with its message."""

from __future__ import annotations

import contextlib
import string

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from jobify._cron.parse import CronSpec, parse
from jobify.crontab import CronExpression, create_crontab
from jobify.exceptions import BaseJobifyError, CronParseError


def test_five_fields_default_second_and_year() -> None:
    spec = parse("*/15 9-17 * * MON-FRI")
    assert spec.seconds == (0,)
    assert spec.minutes == (0, 15, 30, 45)
    assert spec.hours == tuple(range(9, 18))
    assert spec.days_of_week == (1, 2, 3, 4, 5)
    assert spec.years == tuple(range(1970, 2100))
    assert not spec.dom_restricted
    assert spec.dow_restricted


def test_six_fields_is_five_plus_year() -> None:
    spec = parse("0 12 1 1 * 2030,2031")
    assert spec.years == (2030, 2031)
    assert spec.seconds == (0,)
    assert spec.minutes == (0,)


def test_seven_fields_start_with_seconds() -> None:
    spec = parse("5/20 0 12 1 1 * 2030-2040/5")
    assert spec.seconds == (5, 25, 45)
    assert spec.minutes == (0,)
    assert spec.hours == (12,)
    assert spec.years == (2030, 2035, 2040)


@pytest.mark.parametrize(
    ("expression", "months", "weekdays"),
    [
        ("0 0 * jan-Mar sun", (1, 2, 3), (0,)),
        ("0 0 * DEC,feb * ", (2, 12), ()),
        ("0 0 * * 7", (), (0,)),
        ("0 0 * * 5-7", (), (0, 5, 6)),
        ("0 0 * * FRI-SUN", (), (0, 5, 6)),
        ("0 0 * * */2", (), (0, 2, 4, 6)),
        ("0 0 * * 1/2", (), (1, 3, 5)),
        ("0 0 * * L", (), (6,)),
    ],
)
def test_names_and_weekday_forms(
    expression: str, months: tuple[int, ...], weekdays: tuple[int, ...]
) -> None:
    spec = parse(expression)
    if months:
        assert spec.months == months
    assert spec.days_of_week == weekdays


def test_last_and_nth_forms() -> None:
    spec = parse("0 0 L,15 * L5,LMON,2#1,FRI#5,L3-4")
    assert spec.last_day_of_month
    assert spec.days_of_month == (15,)
    assert spec.last_weekdays == (1, 3, 4, 5)
    assert spec.nth_weekdays == ((2, 1), (5, 5))


@pytest.mark.parametrize(
    ("alias", "same_as"),
    [
        ("@yearly", "0 0 1 1 *"),
        ("@annually", "0 0 1 1 *"),
        ("@monthly", "0 0 1 * *"),
        ("@weekly", "0 0 * * 0"),
        ("@daily", "0 0 * * *"),
        ("@midnight", "0 0 * * *"),
        ("@hourly", "0 * * * *"),
        ("@DAILY", "0 0 * * *"),
    ],
)
def test_aliases(alias: str, same_as: str) -> None:
    a, b = parse(alias), parse(same_as)
    assert (a.seconds, a.minutes, a.hours, a.day_masks, a.months) == (
        b.seconds,
        b.minutes,
        b.hours,
        b.day_masks,
        b.months,
    )


@pytest.mark.parametrize(
    ("expression", "fixed"),
    [
        ("0 * * * *", False),
        ("0 */2 * * *", False),
        ("@hourly", False),
        ("* * * * * * *", False),
        ("30 2 * * *", True),
        ("0 0-23 * * *", True),
        ("0 1,2 * * *", True),
        ("0 1/2 * * *", True),
        ("@daily", True),
    ],
)
def test_hour_fixed(expression: str, fixed: bool) -> None:
    assert parse(expression).hour_fixed is fixed
    assert create_crontab(expression).hour_is_fixed is fixed


def test_question_mark_is_unrestricted() -> None:
    assert not parse("0 0 ? * MON").dom_restricted
    assert not parse("0 0 1 * ?").dow_restricted


def test_compiled_spec_is_cached_and_immutable() -> None:
    assert parse("1 2 3 4 5") is parse("1 2 3 4 5")
    assert create_crontab("1 2 3 4 5") is create_crontab("1 2 3 4 5")
    spec = parse("1 2 3 4 5")
    assert isinstance(spec, CronSpec)
    with pytest.raises(AttributeError):
        spec.minutes = (2,)  # type: ignore[misc]


def test_cron_expression_keeps_the_original_string() -> None:
    cron = create_crontab("  */5 * * * *  ")
    assert isinstance(cron, CronExpression)
    assert cron.expression == "  */5 * * * *  "
    assert cron == CronExpression("  */5 * * * *  ")
    assert repr(cron) == "CronExpression('  */5 * * * *  ')"


@pytest.mark.parametrize(
    ("expression", "field", "token"),
    [
        ("60 * * * *", "minute", "60"),
        ("* 24 * * *", "hour", "24"),
        ("* * 0 * *", "day-of-month", "0"),
        ("* * 32 * *", "day-of-month", "32"),
        ("* * * 13 *", "month", "13"),
        ("* * * * 8", "day-of-week", "8"),
        ("60 * * * * * *", "second", "60"),
        ("* * * * * 1969", "year", "1969"),
        ("* * * * * 2100", "year", "2100"),
        ("* * * * * 99999999999", "year", "99999999999"),
        ("5-2 * * * *", "minute", "5-2"),
        ("* * * * FRI-MON", "day-of-week", "FRI-MON"),
        ("*/0 * * * *", "minute", "*/0"),
        ("1-5/0 * * * *", "minute", "1-5/0"),
        ("* * * FOO *", "month", "FOO"),
        ("* * * * FUN", "day-of-week", "FUN"),
        ("* * * JAN-FOO *", "month", "JAN-FOO"),
        ("MON * * * *", "minute", "MON"),
        ("1,,2 * * * *", "minute", "1,,2"),
        ("1, * * * *", "minute", "1,"),
        ("* * * * 1,", "day-of-week", "1,"),
        ("x * * * *", "minute", "x"),
        ("1-* * * * *", "minute", "1-*"),
        ("-1 * * * *", "minute", "-1"),
        ("1- * * * *", "minute", "1-"),
        ("*/x * * * *", "minute", "*/x"),
        ("*/-1 * * * *", "minute", "*/-1"),
        ("1/2/3 * * * *", "minute", "1/2/3"),
        ("* L * * *", "hour", "L"),
        ("* * * L *", "month", "L"),
        ("* * * * * * L", "year", "L"),
        ("* * LW * *", "day-of-month", "LW"),
        ("* * 1#2 * *", "day-of-month", "1#2"),
        ("1#2 * * * *", "minute", "1#2"),
        ("* * * * MON#6", "day-of-week", "MON#6"),
        ("* * * * 1#0", "day-of-week", "1#0"),
        ("* * * * #6", "day-of-week", "#6"),
        ("* * * * 1-3#2", "day-of-week", "1-3#2"),
        ("* * * * 1#", "day-of-week", "1#"),
        ("* * * * L5/2", "day-of-week", "L5/2"),
        ("* * * * LFOO", "day-of-week", "FOO"),
        ("? * * * *", "minute", "?"),
        ("* * 1,? * *", "day-of-month", "?"),
        ("* * * * ?,1", "day-of-week", "?"),
        ("* * * * 7/2", "day-of-week", "7/2"),
        ("* * * * *,", "day-of-week", "*,"),
        ("* * * * ²", "day-of-week", "²"),
        ("* * ١ * *", "day-of-month", "١"),
    ],
)
def test_parse_errors_name_field_and_token(expression: str, field: str, token: str) -> None:
    with pytest.raises(CronParseError) as info:
        parse(expression)
    message = str(info.value)
    assert message.startswith(f"{field} field:"), message
    assert repr(token) in message or token in message, message
    assert isinstance(info.value, ValueError)
    assert isinstance(info.value, BaseJobifyError)


@pytest.mark.parametrize(
    "expression", ["", "   ", "* * * *", "* * * * * * * *", "*", "1 2 3 4 5 6 7 8 9"]
)
def test_wrong_field_count(expression: str) -> None:
    with pytest.raises(CronParseError, match=r"fields|empty"):
        parse(expression)


def test_field_count_message_shows_count_and_expression() -> None:
    with pytest.raises(CronParseError, match=r"expected 5, 6 or 7 fields, got 4: '\* \* \* \*'"):
        parse("* * * *")


def test_unknown_alias() -> None:
    with pytest.raises(CronParseError, match="unknown alias '@reboot'"):
        parse("@reboot")


@pytest.mark.parametrize("bad", [None, 5, b"* * * * *", ["* * * * *"]])
def test_non_str_is_a_type_error(bad: object) -> None:
    with pytest.raises(TypeError, match="must be a str"):
        parse(bad)  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="must be a str"):
        create_crontab(bad)  # type: ignore[arg-type]


def _parse_or_error(text: str) -> None:
    # Success is fine too; anything but CronParseError propagates and fails the test.
    with contextlib.suppress(CronParseError):
        parse(text)


@settings(max_examples=300, deadline=None)
@given(st.text())
def test_fuzz_arbitrary_text_only_raises_cron_parse_error(text: str) -> None:
    _parse_or_error(text)


_CRON_ALPHABET = string.digits + "*/,-?#L@ \tMONFRIJANDECSUWlh"
_CRON_TOKENS = st.sampled_from(
    [
        "*",
        "?",
        "L",
        "#",
        "/",
        "-",
        ",",
        " ",
        "MON",
        "jan",
        "FRI",
        "L5",
        "5#3",
        "0",
        "7",
        "59",
        "60",
        "23",
        "31",
        "12",
        "2099",
        "1970",
        "@yearly",
        "@hourly",
        "@",
        "W",
        "*/",
        "1-",
    ]
)


@settings(max_examples=300, deadline=None)
@given(st.text(alphabet=_CRON_ALPHABET, max_size=40))
def test_fuzz_cron_alphabet_only_raises_cron_parse_error(text: str) -> None:
    _parse_or_error(text)


@settings(max_examples=300, deadline=None)
@given(st.lists(_CRON_TOKENS, max_size=25).map("".join))
def test_fuzz_cron_tokens_only_raises_cron_parse_error(text: str) -> None:
    _parse_or_error(text)


@settings(max_examples=200, deadline=None)
@given(
    st.lists(
        st.text(alphabet=_CRON_ALPHABET.replace(" ", ""), min_size=1, max_size=8),
        min_size=5,
        max_size=7,
    ).map(" ".join)
)
def test_fuzz_field_shaped_strings_only_raise_cron_parse_error(text: str) -> None:
    _parse_or_error(text)
