"""Parsing the times given on the command line (``--due-before``, ``--since``, ``--from``).

Accepted: ISO 8601 (``2025-03-30T02:30``, ``2025-03-30 02:30:00+02:00``, ``2025-03-30``;
naive times are UTC), ``now``, and times relative to now: ``-1h`` (an hour ago), ``2d`` or
``+2d`` (in two days), with units s, m, h, d, w.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta, tzinfo
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

__all__ = ["WHEN_HELP", "parse_when", "parse_zone"]

WHEN_HELP = "ISO 8601 (naive = UTC), 'now', or relative to now such as -1h, -30m, 2d"

_RELATIVE = re.compile(r"([+-]?)(\d+(?:\.\d+)?)([smhdw])")
_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}


def parse_when(text: str, now: datetime) -> datetime:
    """An aware datetime for ``text`` (see the module docstring); ``now`` is aware.

    Raises ``ValueError`` saying which forms are accepted.
    """
    value = text.strip()
    if value.lower() == "now":
        return now
    match = _RELATIVE.fullmatch(value.lower())
    if match:
        sign, number, unit = match.groups()
        seconds = float(number) * _UNITS[unit]
        try:
            delta = timedelta(seconds=-seconds if sign == "-" else seconds)
            return now + delta
        except OverflowError:
            raise ValueError(f"{text!r} is too far from now") from None
    try:
        parsed = datetime.fromisoformat(value)
    except ValueError:
        raise ValueError(f"{text!r} is not a time: use {WHEN_HELP}") from None
    return parsed if parsed.tzinfo is not None else parsed.replace(tzinfo=UTC)


def parse_zone(name: str) -> tzinfo:
    """The zone named ``name`` (an IANA name such as ``Europe/Berlin``, or ``UTC``).

    Raises ``ValueError`` for an unknown name.
    """
    if name.upper() == "UTC":
        return UTC
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError, OSError):
        raise ValueError(
            f"unknown time zone {name!r}: use an IANA name such as Europe/Berlin, or UTC"
        ) from None
