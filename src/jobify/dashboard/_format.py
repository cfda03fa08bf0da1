"""How values read on a page: times, durations, and untrusted text made printable.

Escaping for HTML is the template engine's job (autoescape); these helpers only make text
printable (control and bidirectional-override characters shown as escapes), so that what a
page shows is what is stored.
"""

from __future__ import annotations

import pprint
from datetime import UTC, datetime, tzinfo
from typing import Any
from urllib.parse import quote

from jobify.inspection import human_duration, human_time, safe_text

__all__ = ["block", "duration", "job_path", "number", "pretty", "relative", "text", "when"]


def when(value: datetime | None, zone: tzinfo = UTC) -> str:
    """A time in ``zone`` to the second, its zone named (``2030-01-31 09:00:00 CET``): the
    rule of the command too (see :func:`~jobify.inspection.human_time`)."""
    return human_time(value, zone)


def duration(seconds: float | None) -> str:
    """A short human duration (see :func:`~jobify.inspection.human_duration`)."""
    return human_duration(seconds)


def relative(value: datetime | None, now: datetime) -> str:
    """``in 4m05s`` or ``4m05s ago`` (``now`` if within a second)."""
    if value is None:
        return "-"
    delta = (value - now).total_seconds()
    if abs(delta) < 1:
        return "now"
    return f"in {duration(delta)}" if delta > 0 else f"{duration(-delta)} ago"


def number(value: int) -> str:
    """An integer with thousands separators."""
    return f"{value:,}"


def text(value: Any) -> str:
    """One printable line of untrusted text (newlines shown as ``\\n``)."""
    return safe_text(str(value))


def block(value: Any) -> str:
    """Printable multi-line untrusted text (tracebacks): newlines and tabs kept."""
    return safe_text(str(value), multiline=True)


def job_path(job_id: str) -> str:
    """A job id as one URL path segment (``/`` and every other special character quoted)."""
    return quote(job_id, safe="")


def pretty(value: Any) -> str:
    """A decoded argument value as Python would show it, wrapped at 100 columns (printable)."""
    try:
        shown = pprint.pformat(value, width=100)
    except Exception:  # a value whose repr fails must not break the page
        shown = f"<{type(value).__name__} that cannot be shown>"
    return safe_text(shown, multiline=True)
