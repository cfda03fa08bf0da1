"""Chart geometry for server-rendered SVG: pure functions from data to shapes.

The templates draw the shapes (so every label goes through the template's escaping); no
chart library, no script: the charts are plain SVG that works with JavaScript off.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta, tzinfo

from jobify.dashboard._format import duration, when
from jobify.inspection import RunActivity

__all__ = [
    "ActivityChart",
    "Bar",
    "Tick",
    "Timeline",
    "TimelineRow",
    "activity_chart",
    "cron_timeline",
    "median_gap",
]

_STEPS = (60, 300, 600, 900, 1800, 3600, 7200, 3 * 3600, 6 * 3600, 12 * 3600, 86400)
"""Candidate seconds between time-axis labels."""


@dataclass(frozen=True, slots=True)
class Bar:
    """A rectangle: position and size in SVG units, a CSS class, a tooltip."""

    x: float
    y: float
    width: float
    height: float
    kind: str
    title: str


@dataclass(frozen=True, slots=True)
class Tick:
    """An axis label at ``position`` (x for time axes, y for value axes)."""

    position: float
    label: str


@dataclass(frozen=True, slots=True)
class ActivityChart:
    """Runs (and failures, stacked on top) per bucket."""

    width: float
    height: float
    plot_left: float
    plot_bottom: float
    bars: tuple[Bar, ...]
    x_ticks: tuple[Tick, ...]
    y_ticks: tuple[Tick, ...]
    peak: int


def _time_ticks(start: datetime, end: datetime, left: float, width: float) -> tuple[Tick, ...]:
    span = (end - start).total_seconds()
    if span <= 0:
        return ()
    step = next((s for s in _STEPS if span / s <= 8), _STEPS[-1])
    first = math.ceil(start.timestamp() / step) * step
    fmt = "%H:%M" if step < 86400 else "%m-%d"
    ticks = []
    moment = first
    while moment <= end.timestamp():
        x = left + (moment - start.timestamp()) / span * width
        ticks.append(Tick(round(x, 1), datetime.fromtimestamp(moment, start.tzinfo).strftime(fmt)))
        moment += step
    return tuple(ticks)


def _nice_ceiling(value: int) -> int:
    """The smallest of 1, 2, 5, 10, 20, 50, ... that is >= ``value``."""
    if value <= 1:
        return 1
    magnitude = int(10 ** (len(str(value)) - 1))
    for factor in (1, 2, 5, 10):
        if factor * magnitude >= value:
            return factor * magnitude
    return 10 * magnitude


def median_gap(fires: Sequence[datetime]) -> float | None:
    """The median number of seconds between successive fires (None for fewer than two)."""
    gaps = sorted((b - a).total_seconds() for a, b in itertools.pairwise(fires))
    return gaps[len(gaps) // 2] if gaps else None


def activity_chart(
    activity: RunActivity, *, width: float = 960, height: float = 200, zone: tzinfo = UTC
) -> ActivityChart:
    """Stacked bars of successful (``ok``) and failed (``failed``) runs per bucket; times
    labelled in ``zone``."""
    left, right, top, bottom = 44.0, 8.0, 8.0, 22.0
    plot_width = width - left - right
    plot_height = height - top - bottom
    buckets = activity.buckets
    peak = max((b.runs for b in buckets), default=0)
    scale = _nice_ceiling(peak)
    slot = plot_width / max(len(buckets), 1)
    gap = 1.0 if slot >= 4 else 0.0
    bars: list[Bar] = []
    for i, b in enumerate(buckets):
        if b.runs == 0:
            continue
        x = left + i * slot
        ok_height = (b.runs - b.failures) / scale * plot_height
        failed_height = b.failures / scale * plot_height
        late = "" if b.lateness_max is None else f", late up to {duration(b.lateness_max)}"
        title = f"{when(b.start, zone)}: {b.runs} run(s), {b.failures} failed{late}"
        base = top + plot_height
        if ok_height > 0:
            bars.append(
                Bar(
                    round(x, 2),
                    round(base - ok_height, 2),
                    round(slot - gap, 2),
                    round(ok_height, 2),
                    "ok",
                    title,
                )
            )
        if failed_height > 0:
            bars.append(
                Bar(
                    round(x, 2),
                    round(base - ok_height - failed_height, 2),
                    round(slot - gap, 2),
                    round(failed_height, 2),
                    "failed",
                    title,
                )
            )
    y_ticks = tuple(
        Tick(round(top + plot_height - f * plot_height, 1), str(round(scale * f)))
        for f in (0.0, 0.5, 1.0)
        if f == 0.0 or scale * f == round(scale * f)
    )
    return ActivityChart(
        width=width,
        height=height,
        plot_left=left,
        plot_bottom=top + plot_height,
        bars=tuple(bars),
        x_ticks=_time_ticks(
            activity.since.astimezone(zone), activity.until.astimezone(zone), left, plot_width
        ),
        y_ticks=y_ticks,
        peak=peak,
    )


@dataclass(frozen=True, slots=True)
class TimelineRow:
    """One cron job's line: a tick at each computed fire inside the window, and for a cron
    that fires more often than was computed, a band from its last computed fire on."""

    job_id: str
    label: str
    status: str
    y: float
    ticks: tuple[Tick, ...]
    dense: Bar | None


@dataclass(frozen=True, slots=True)
class Timeline:
    """Cron fires over a window, one row per job; labels in a column left of the plot."""

    width: float
    height: float
    plot_left: float
    plot_right: float
    row_height: float
    rows: tuple[TimelineRow, ...]
    x_ticks: tuple[Tick, ...]


LABEL_CHARS = 36
"""Characters of a row label kept (the full text is in the table below the timeline)."""


def _short(label: str) -> str:
    return label if len(label) <= LABEL_CHARS else label[: LABEL_CHARS - 1] + "…"


def cron_timeline(
    rows: Sequence[tuple[str, str, str, Sequence[datetime], datetime | None]],
    start: datetime,
    hours: int,
    *,
    width: float = 960,
) -> Timeline:
    """Rows of ``(job_id, label, status, fires, dense_until)`` over ``hours`` from
    ``start``; ``dense_until`` (or None) is how long the cron keeps firing after the last of
    ``fires`` (a frequent cron, whose every fire is not computed)."""
    left, right, row_height, axis = 250.0, 8.0, 22.0, 22.0
    end = start + timedelta(hours=hours)
    span = (end - start).total_seconds()
    plot_width = width - left - right

    def x_of(moment: datetime) -> float:
        return round(left + (moment - start).total_seconds() / span * plot_width, 2)

    drawn: list[TimelineRow] = []
    for index, (job_id, label, status, fires, dense_until) in enumerate(rows):
        y = axis + index * row_height
        inside = [f for f in fires if start <= f <= end]
        ticks = tuple(Tick(x_of(f), when(f, start.tzinfo or UTC)) for f in inside)
        dense = None
        if dense_until is not None and inside and dense_until > inside[-1]:
            gap = median_gap(fires)
            every = "often" if gap is None else duration(gap)
            x, x_end = x_of(inside[-1]), x_of(min(dense_until, end))
            dense = Bar(
                x,
                y + 5,
                round(x_end - x, 2),
                row_height - 10,
                "dense",
                f"{label}: fires about every {every} until "
                f"{when(dense_until, start.tzinfo or UTC)}",
            )
        drawn.append(TimelineRow(job_id, _short(label), status, y, ticks, dense))
    return Timeline(
        width=width,
        height=axis + max(len(drawn), 1) * row_height + 4,
        plot_left=left,
        plot_right=width - right,
        row_height=row_height,
        rows=tuple(drawn),
        x_ticks=_time_ticks(start, end, left, plot_width),
    )
