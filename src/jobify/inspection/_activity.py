"""Run activity: finished runs counted per time bucket (runs, failures, lateness).

Pure: the inspector reads the run records, :func:`bucket_runs` counts them. A run belongs to
the bucket of its ``finished_at``, the time the run history is filtered and ordered by.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime

from jobify.inspection._decode import to_datetime
from jobify.storage.base import RunRecord

__all__ = ["MAX_BUCKETS", "ActivityBucket", "RunActivity", "bucket_runs", "check_window"]

MAX_BUCKETS = 10_000
"""The most buckets one activity read may ask for (e.g. a week of minutes)."""

_NOT_FAILED = frozenset({"success", "cancelled"})


@dataclass(frozen=True, slots=True)
class ActivityBucket:
    """Runs that finished in ``[start, start + bucket)``."""

    start: datetime
    runs: int
    failures: int
    """Runs that neither succeeded nor were cancelled (failed, timed out)."""
    lateness_max: float | None
    """The largest lateness (seconds from scheduled time to start) of these runs; None when
    there were none."""


@dataclass(frozen=True, slots=True)
class RunActivity:
    """Finished runs between ``since`` and ``until``, counted per bucket of
    ``bucket_seconds``, oldest bucket first, with lateness figures over the whole window.

    ``truncated`` is True when the window holds more runs than were read (the scan limit):
    then only the newest runs were counted, from ``counted_since`` on, and older buckets
    are incomplete.
    """

    since: datetime
    until: datetime
    bucket_seconds: float
    buckets: tuple[ActivityBucket, ...]
    runs: int
    failures: int
    lateness_p50: float | None
    lateness_p95: float | None
    lateness_max: float | None
    truncated: bool = False
    counted_since: datetime | None = None


def check_window(since: float, until: float, bucket: float) -> int:
    """The number of buckets of the window; ``ValueError`` for an empty or reversed
    window, a bucket that is not a positive number of seconds, or too many buckets."""
    if not (math.isfinite(bucket) and bucket > 0):
        raise ValueError(f"bucket must be a positive number of seconds, got {bucket!r}")
    if not (math.isfinite(since) and math.isfinite(until)) or until <= since:
        raise ValueError("since must be before until")
    count = math.ceil((until - since) / bucket)
    if count > MAX_BUCKETS:
        raise ValueError(
            f"{count} buckets of {bucket:g}s between since and until; at most {MAX_BUCKETS}: "
            "use larger buckets or a shorter window"
        )
    return count


def _nearest_rank(ordered: list[float], q: float) -> float:
    rank = max(0, min(len(ordered) - 1, math.ceil(q / 100 * len(ordered)) - 1))
    return ordered[rank]


def bucket_runs(
    runs: Iterable[RunRecord],
    *,
    since: float,
    until: float,
    bucket: float,
    truncated: bool = False,
) -> RunActivity:
    """Count ``runs`` (epoch-second times) into buckets of ``bucket`` seconds from ``since``
    up to ``until``; runs finished outside ``[since, until)`` are left out.

    ``truncated`` says the caller read only the newest runs of the window: the result then
    carries the oldest ``finished_at`` counted (``counted_since``).
    """
    count = check_window(since, until, bucket)
    totals = [0] * count
    failed = [0] * count
    late: list[float | None] = [None] * count
    lateness: list[float] = []
    oldest: float | None = None
    for run in runs:
        if not since <= run.finished_at < until:
            continue
        index = min(int((run.finished_at - since) // bucket), count - 1)
        totals[index] += 1
        if run.outcome not in _NOT_FAILED:
            failed[index] += 1
        value = run.started_at - run.scheduled_at
        lateness.append(value)
        current = late[index]
        late[index] = value if current is None else max(current, value)
        oldest = run.finished_at if oldest is None else min(oldest, run.finished_at)
    lateness.sort()
    return RunActivity(
        since=to_datetime(since),
        until=to_datetime(until),
        bucket_seconds=float(bucket),
        buckets=tuple(
            ActivityBucket(to_datetime(since + i * bucket), totals[i], failed[i], late[i])
            for i in range(count)
        ),
        runs=sum(totals),
        failures=sum(failed),
        lateness_p50=_nearest_rank(lateness, 50) if lateness else None,
        lateness_p95=_nearest_rank(lateness, 95) if lateness else None,
        lateness_max=lateness[-1] if lateness else None,
        truncated=truncated,
        counted_since=to_datetime(oldest) if truncated and oldest is not None else None,
    )
