"""Parse cron expressions into an immutable, precompiled :class:`CronSpec`.

Grammar (see docs/cron.md)::

    5 fields   minute hour day-of-month month day-of-week
    6 fields   minute hour day-of-month month day-of-week year
    7 fields   second minute hour day-of-month month day-of-week year

Every field is a comma-separated list of elements: ``*``, ``a``, ``a-b``, ``*/n``, ``a-b/n``,
``a/n`` (``a`` up to the field's maximum, step ``n``). Months and weekdays accept English
three-letter names (case-insensitive). Day-of-month and day-of-week accept a lone ``?`` (no
specific value, same as ``*``). Day-of-month accepts ``L`` (the last day of the month).
Day-of-week accepts ``7`` as Sunday, a lone ``L`` (Saturday), ``L<weekday>`` or
``L<weekday range>`` (the last such weekday(s) of the month) and ``<weekday>#<n>`` (the n-th
such weekday of the month, n in 1-5).

Decisions the spec leaves open, taken here and tested:

* A reversed range (``5-2``) is an error rather than a wrap-around, because the wrapping
  meaning is ambiguous between implementations.  As a convenience ``SUN`` at the end of a
  weekday range means 7, so ``FRI-SUN`` works.
* A field is *unrestricted* only when it is exactly ``*`` or ``?``.  When both day fields are
  restricted a day matches if either matches (Vixie's OR rule); ``*/2`` counts as restricted.
* The hour field is *wildcard/stepped* when it is exactly ``*`` or ``*/n``; every other hour
  field is *fixed*.  The engine uses this to choose the daylight-saving behaviour.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass

from jobify.exceptions import CronParseError

__all__ = ["ALIASES", "MAX_YEAR", "MIN_YEAR", "CronSpec", "parse"]

MIN_YEAR = 1970
MAX_YEAR = 2099

ALIASES: dict[str, str] = {
    "@yearly": "0 0 1 1 *",
    "@annually": "0 0 1 1 *",
    "@monthly": "0 0 1 * *",
    "@weekly": "0 0 * * 0",
    "@daily": "0 0 * * *",
    "@midnight": "0 0 * * *",
    "@hourly": "0 * * * *",
}

_MONTHS = {
    name: i + 1
    for i, name in enumerate(
        ("JAN", "FEB", "MAR", "APR", "MAY", "JUN", "JUL", "AUG", "SEP", "OCT", "NOV", "DEC")
    )
}
_WEEKDAYS = {name: i for i, name in enumerate(("SUN", "MON", "TUE", "WED", "THU", "FRI", "SAT"))}

SECOND, MINUTE, HOUR, DOM, MONTH, DOW, YEAR = (
    "second",
    "minute",
    "hour",
    "day-of-month",
    "month",
    "day-of-week",
    "year",
)
# Value bounds of each field; day-of-week admits 7 (Sunday) as an explicit value.
_BOUNDS = {
    SECOND: (0, 59),
    MINUTE: (0, 59),
    HOUR: (0, 23),
    DOM: (1, 31),
    MONTH: (1, 12),
    DOW: (0, 7),
    YEAR: (MIN_YEAR, MAX_YEAR),
}
# What `*` and `a/n` extend to: day-of-week stops at Saturday so Sunday is not counted twice.
_TOP = {**{k: v[1] for k, v in _BOUNDS.items()}, DOW: 6}


def month_shape_index(first_weekday: int, length: int) -> int:
    """Index of a month shape (weekday of the 1st, 0=Sunday; number of days) in
    ``CronSpec.day_masks``; the engine looks months up with the same function."""
    return first_weekday * 4 + (length - 28)


@dataclass(frozen=True, slots=True)
class CronSpec:
    """A compiled cron expression: the allowed values of each field plus lookup tables.

    Weekdays are numbered 0=Sunday … 6=Saturday.  The ``*_next`` tables map a value ``v`` to
    the smallest allowed value ``>= v`` or -1; they have one slot past the field's maximum so
    that an overflowing carry (second 60, hour 24, ...) reads -1 without a bounds check.
    ``day_masks`` has one bitmask of matching days (bit ``d`` = day ``d``) for each of the 28
    month shapes (weekday of the 1st x month length 28-31), so every day rule, including ``L``,
    ``L<weekday>`` and ``#n``, is resolved at compile time.
    """

    expression: str
    seconds: tuple[int, ...]
    minutes: tuple[int, ...]
    hours: tuple[int, ...]
    days_of_month: tuple[int, ...]
    last_day_of_month: bool
    months: tuple[int, ...]
    days_of_week: tuple[int, ...]
    last_weekdays: tuple[int, ...]
    nth_weekdays: tuple[tuple[int, int], ...]
    years: tuple[int, ...]
    dom_restricted: bool
    dow_restricted: bool
    hour_fixed: bool
    second_next: tuple[int, ...]
    minute_next: tuple[int, ...]
    hour_next: tuple[int, ...]
    month_next: tuple[int, ...]
    year_next: tuple[int, ...]
    day_masks: tuple[int, ...]


def _error(field: str, reason: str, token: str, expression: str) -> CronParseError:
    return CronParseError(f"{field} field: {reason}: {token!r} (in cron expression {expression!r})")


class _FieldParser:
    """Parses one field; holds the context needed for precise error messages."""

    __slots__ = ("expression", "field", "hi", "lo")

    def __init__(self, field: str, expression: str) -> None:
        self.field = field
        self.expression = expression
        self.lo, self.hi = _BOUNDS[field]

    def error(self, reason: str, token: str) -> CronParseError:
        return _error(self.field, reason, token, self.expression)

    def value(self, text: str, token: str, *, range_end: bool = False) -> int:
        """One number or name, checked against the field's bounds."""
        if text.isascii() and text.isdigit():
            # Cap the length before int(): huge digit strings are just out of range.
            number = int(text) if len(text) <= 6 else self.hi + 1
            if not self.lo <= number <= self.hi:
                raise self.error(f"value {text} out of range {self.lo}-{self.hi}", token)
            return number
        names = _MONTHS if self.field == MONTH else _WEEKDAYS if self.field == DOW else None
        if names is None:
            raise self.error("not a number", token)
        number_or_none = names.get(text.upper())
        if number_or_none is None:
            raise self.error(f"unknown name {text!r}", token)
        if range_end and self.field == DOW and number_or_none == 0:
            return 7  # FRI-SUN: Sunday as the end of a range is 7
        return number_or_none

    def step(self, text: str, token: str) -> int:
        if not (text.isascii() and text.isdigit()):
            raise self.error("step is not a number", token)
        number = int(text) if len(text) <= 6 else 10**6
        if number == 0:
            raise self.error("step must be at least 1", token)
        return number

    def element(self, token: str) -> set[int]:
        """Values of one plain element: ``*``, ``a``, ``a-b`` with an optional ``/n``."""
        base, slash, step_text = token.partition("/")
        step = self.step(step_text, token) if slash else 1
        if base == "*":
            lo, hi = self.lo, _TOP[self.field]
        elif "-" in base:
            first, _, last = base.partition("-")
            if not first or not last:
                raise self.error("incomplete range", token)
            lo = self.value(first, token)
            hi = self.value(last, token, range_end=True)
            if lo > hi:
                raise self.error(f"reversed range {lo}-{hi}", token)
        else:
            lo = self.value(base, token)
            # `a/n` runs from a to the field's maximum; a bare `a` is just itself.
            hi = _TOP[self.field] if slash else lo
            if slash and lo > hi:  # `7/2` in day-of-week
                raise self.error("step start past the end of the field", token)
        return set(range(lo, hi + 1, step))


def _parse_plain(parser: _FieldParser, text: str) -> set[int]:
    """A field that accepts only plain elements (all fields but the two day fields)."""
    values: set[int] = set()
    for token in text.split(","):
        if not token:
            raise parser.error("empty list element", text)
        if "L" in token.upper() and parser.field != MONTH:
            raise parser.error("'L' is only allowed in day-of-month and day-of-week", token)
        if "#" in token:
            raise parser.error("'#' is only allowed in day-of-week", token)
        if token == "?":
            raise parser.error("'?' is only allowed in day-of-month and day-of-week", token)
        values |= parser.element(token)
    return values


def _parse_dom(parser: _FieldParser, text: str) -> tuple[set[int], bool]:
    values: set[int] = set()
    last = False
    for token in text.split(","):
        if not token:
            raise parser.error("empty list element", text)
        if token.upper() == "L":
            last = True
        elif "L" in token.upper():
            raise parser.error("'L' must stand alone in day-of-month", token)
        elif "#" in token:
            raise parser.error("'#' is only allowed in day-of-week", token)
        elif token == "?":
            raise parser.error("'?' must be the whole field", token)
        else:
            values |= parser.element(token)
    return values, last


def _parse_dow(parser: _FieldParser, text: str) -> tuple[set[int], set[int], set[tuple[int, int]]]:
    plain: set[int] = set()
    last: set[int] = set()
    nth: set[tuple[int, int]] = set()
    for token in text.split(","):
        if not token:
            raise parser.error("empty list element", text)
        upper = token.upper()
        if upper == "L":
            plain.add(6)  # a lone L is the last day of the week
        elif upper.startswith("L"):
            rest = token[1:]
            if "/" in rest or "#" in rest:
                raise parser.error("'L<weekday>' takes a weekday or a weekday range", token)
            last |= {v % 7 for v in parser.element(rest)}
        elif "#" in token:
            day_text, _, n_text = token.partition("#")
            if not day_text or "-" in day_text or "/" in day_text or "*" in day_text:
                raise parser.error("'#' needs a single weekday before it", token)
            day = parser.value(day_text, token) % 7
            if not (n_text.isascii() and n_text.isdigit()) or not 1 <= int(n_text[:3]) <= 5:
                raise parser.error("'#n' needs n in 1-5", token)
            nth.add((day, int(n_text)))
        elif token == "?":
            raise parser.error("'?' must be the whole field", token)
        else:
            plain |= {v % 7 for v in parser.element(token)}
    return plain, last, nth


def _next_table(values: set[int], size: int, offset: int = 0) -> tuple[int, ...]:
    """``table[v - offset]`` = smallest allowed value >= v, or -1; ``size`` slots."""
    table: list[int] = []
    upcoming = -1
    for index in range(size - 1, -1, -1):
        if index + offset in values:
            upcoming = index + offset
        table.append(upcoming)
    table.reverse()
    return tuple(table)


def _day_masks(
    dom: set[int],
    dom_last: bool,
    dom_restricted: bool,
    dow: set[int],
    dow_last: set[int],
    dow_nth: set[tuple[int, int]],
    dow_restricted: bool,
) -> tuple[int, ...]:
    masks = [0] * 28
    for first_weekday in range(7):
        for length in range(28, 32):
            dom_mask = 0
            dow_mask = 0
            for day in range(1, length + 1):
                weekday = (first_weekday + day - 1) % 7
                if day in dom or (dom_last and day == length):
                    dom_mask |= 1 << day
                if (
                    weekday in dow
                    or (weekday in dow_last and day + 7 > length)
                    or (weekday, (day + 6) // 7) in dow_nth
                ):
                    dow_mask |= 1 << day
            if dom_restricted and dow_restricted:
                mask = dom_mask | dow_mask
            elif dom_restricted:
                mask = dom_mask
            elif dow_restricted:
                mask = dow_mask
            else:
                mask = ((1 << (length + 1)) - 1) & ~1
            masks[month_shape_index(first_weekday, length)] = mask
    return tuple(masks)


def _compile(expression: str) -> CronSpec:
    if not isinstance(expression, str):
        raise TypeError(f"a cron expression must be a str, not {type(expression).__name__}")
    text = expression.strip()
    if not text:
        raise CronParseError(f"empty cron expression: {expression!r}")
    if text.startswith("@"):
        alias = ALIASES.get(text.lower())
        if alias is None:
            raise CronParseError(
                f"unknown alias {text!r}; expected one of {', '.join(sorted(ALIASES))}"
            )
        text = alias
    fields = text.split()
    if len(fields) == 5:
        fields = ["0", *fields, "*"]
    elif len(fields) == 6:
        fields = ["0", *fields]
    elif len(fields) != 7:
        raise CronParseError(
            f"expected 5, 6 or 7 fields, got {len(fields)}: {expression!r} "
            "(minute hour day-of-month month day-of-week [year], or "
            "second minute hour day-of-month month day-of-week year)"
        )
    sec_t, min_t, hour_t, dom_t, month_t, dow_t, year_t = fields

    def plain(field: str, field_text: str) -> set[int]:
        return _parse_plain(_FieldParser(field, expression), field_text)

    seconds = plain(SECOND, sec_t)
    minutes = plain(MINUTE, min_t)
    hours = plain(HOUR, hour_t)
    months = plain(MONTH, month_t)
    years = plain(YEAR, year_t)

    dom_restricted = dom_t not in ("*", "?")
    dow_restricted = dow_t not in ("*", "?")
    dom: set[int] = set()
    dom_last = False
    dow: set[int] = set()
    dow_last: set[int] = set()
    dow_nth: set[tuple[int, int]] = set()
    if dom_restricted:
        dom, dom_last = _parse_dom(_FieldParser(DOM, expression), dom_t)
    if dow_restricted:
        dow, dow_last, dow_nth = _parse_dow(_FieldParser(DOW, expression), dow_t)

    hour_fixed = not (hour_t == "*" or (hour_t.startswith("*/") and "," not in hour_t))
    return CronSpec(
        expression=expression,
        seconds=tuple(sorted(seconds)),
        minutes=tuple(sorted(minutes)),
        hours=tuple(sorted(hours)),
        days_of_month=tuple(sorted(dom)),
        last_day_of_month=dom_last,
        months=tuple(sorted(months)),
        days_of_week=tuple(sorted(dow)),
        last_weekdays=tuple(sorted(dow_last)),
        nth_weekdays=tuple(sorted(dow_nth)),
        years=tuple(sorted(years)),
        dom_restricted=dom_restricted,
        dow_restricted=dow_restricted,
        hour_fixed=hour_fixed,
        second_next=_next_table(seconds, 61),
        minute_next=_next_table(minutes, 61),
        hour_next=_next_table(hours, 25),
        month_next=_next_table(months, 14),
        year_next=_next_table(years, MAX_YEAR - MIN_YEAR + 2, MIN_YEAR),
        day_masks=_day_masks(dom, dom_last, dom_restricted, dow, dow_last, dow_nth, dow_restricted),
    )


@functools.lru_cache(maxsize=1024)
def _compile_cached(expression: str) -> CronSpec:
    return _compile(expression)


def parse(expression: str) -> CronSpec:
    """Compile ``expression`` into a :class:`CronSpec` (cached: apps repeat expressions).

    Raises :class:`~jobify.exceptions.CronParseError` naming the field and the offending token
    for any malformed expression, and :class:`TypeError` for a non-``str`` argument.
    """
    if not isinstance(expression, str):
        # Checked before the cache, which would fail on unhashable input with a vaguer error.
        raise TypeError(f"a cron expression must be a str, not {type(expression).__name__}")
    return _compile_cached(expression)
