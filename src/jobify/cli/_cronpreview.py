"""The fire times ``jobify cron`` prints, with daylight-saving transitions marked.

Pure (no CLI library, no clock): both the click command and the dependency-free fallback
print what :func:`preview` yields.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime, timedelta

from jobify.crontab import CronExpression, create_crontab

__all__ = ["Fire", "preview"]


@dataclass(frozen=True, slots=True)
class Fire:
    """One fire time, and a note when the zone's UTC offset changed since the previous one."""

    at: datetime
    note: str | None = None

    def line(self) -> str:
        """The printed line: the ISO 8601 time, then the note in parentheses."""
        text = self.at.isoformat()
        return f"{text}  ({self.note})" if self.note else text


def _offset_note(before: datetime, after: datetime) -> str | None:
    old, new = before.utcoffset(), after.utcoffset()
    if old is None or new is None or old == new:
        return None
    direction = "forward" if new > old else "back"
    shift = abs(new - old)
    amount = "" if shift == timedelta(hours=1) else f" by {_span(shift)}"
    # A change of the DST component is daylight saving time; any other offset change is a
    # zone's rule change (a country moving its standard time).
    kind = "DST" if before.dst() != after.dst() else "UTC offset change"
    return f"{kind}: clocks go {direction}{amount}"


def _span(delta: timedelta) -> str:
    minutes = int(delta.total_seconds()) // 60
    hours, minutes = divmod(minutes, 60)
    if not minutes:
        return f"{hours}h"
    return f"{hours}h{minutes:02d}m" if hours else f"{minutes}m"


def preview(expression: str, start: datetime) -> Iterator[Fire]:
    """The fires of ``expression`` strictly after the aware ``start``, in ``start``'s zone.

    A fire is marked when a clock change happened between the previous fire (or ``start``)
    and it: for example a daily 02:30 fire on the night clocks skip 02:00-03:00 runs at 03:00
    and reads "DST: clocks go forward". Raises
    :class:`~jobify.exceptions.CronParseError` for a malformed expression (before yielding)
    and :class:`~jobify.exceptions.CronExhaustedError` when it never fires again.
    """
    return _walk(create_crontab(expression), start)


def _walk(cron: CronExpression, start: datetime) -> Iterator[Fire]:
    previous = start
    while True:
        at = cron.next_run(now=previous)
        yield Fire(at, _offset_note(previous, at))
        previous = at
