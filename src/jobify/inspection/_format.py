"""Durations and instants as people read them, for every view of a store (the command,
dashboards): one rule for both, so that a time reads the same wherever it is shown."""

from __future__ import annotations

import math
from collections.abc import Iterable
from datetime import UTC, datetime, tzinfo
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

__all__ = ["app_zone", "human_duration", "human_time", "zone_name"]

APP_ZONE_KEY = "app_tz"
"""The key of the app's zone in the option documents an app stores with its tasks."""


def zone_name(zone: tzinfo) -> str:
    """The IANA name of a zone (``Europe/Berlin``), or what it calls itself."""
    key = getattr(zone, "key", None)
    return key if isinstance(key, str) else str(zone)


def human_time(value: datetime | None, zone: tzinfo) -> str:
    """An instant in ``zone``, to the second, its zone named: ``2030-01-31 09:00:00 CET``
    (``-`` for None). Naive values are UTC."""
    if value is None:
        return "-"
    if value.tzinfo is None:
        value = value.replace(tzinfo=UTC)
    local = value.astimezone(zone)
    return f"{local:%Y-%m-%d %H:%M:%S} {local.tzname() or zone_name(zone)}"


def app_zone(options: Iterable[tuple[float, object]]) -> tzinfo:
    """The zone of the app that owns a store, from ``(updated_at, zone name)`` of its stored
    tasks (the latest registration wins); UTC when none names a zone this system knows.
    The names are untrusted: an unknown or malformed one is ignored."""
    for _, name in sorted(options, key=lambda item: item[0], reverse=True):
        if isinstance(name, str) and 0 < len(name) <= 255:
            try:
                return ZoneInfo(name)
            except (ZoneInfoNotFoundError, ValueError, OSError):
                continue
    return UTC


def human_duration(seconds: float | None) -> str:
    """A short duration: ``850ms``, ``12.3s``, ``4m05s``, ``2h10m``, ``3d04h``; ``-`` for
    ``None``, infinities and NaN. Negative durations keep their sign."""
    if seconds is None or not math.isfinite(seconds):
        return "-"
    sign = "-" if seconds < 0 else ""
    seconds = abs(seconds)
    if seconds < 1:
        return f"{sign}{seconds * 1000:.0f}ms"
    if seconds < 60:
        return f"{sign}{seconds:.1f}s"
    minutes, secs = divmod(int(seconds), 60)
    if minutes < 60:
        return f"{sign}{minutes}m{secs:02d}s"
    hours, minutes = divmod(minutes, 60)
    if hours < 48:
        return f"{sign}{hours}h{minutes:02d}m"
    days, hours = divmod(hours, 24)
    return f"{sign}{days}d{hours:02d}h"
