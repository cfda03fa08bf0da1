"""Cron ``next_run`` throughput: jobify against the ``crontab`` package.

Usage: ``python benchmarks/bench_cron.py``.  For each of the 8 expressions of issue 2 it
measures calls per second of ``next_run`` *chained* (each result is fed back as ``now``, the way
a scheduler uses it; the reported and targeted figure) and, for information, with one *fixed*
``now``.  The ``crontab`` package runs the same chained walk (``CronTab.next(now, delta=False,
return_datetime=True)``; its 7-field order is ours).  Each figure is the median of 5 runs in this
one process.  Targets: every jobify row >= 100,000 calls/s and >= 100x crontab; the exit code
is 1 if any target is missed.
"""

from __future__ import annotations

import statistics
import sys
import time
import warnings
from collections.abc import Callable
from datetime import UTC, datetime, tzinfo
from zoneinfo import ZoneInfo

from jobify.crontab import create_crontab

try:
    from crontab import CronTab
except ImportError:  # pragma: no cover - the dev extra installs it
    sys.exit("bench_cron needs the 'crontab' package: pip install -e '.[dev]'")

MIN_CALLS_PER_S = 100_000
MIN_RATIO = 100.0
RUNS = 5

CASES: list[tuple[str, tzinfo]] = [
    ("* * * * * * *", UTC),
    ("*/15 * * * * * *", UTC),
    ("0 * * * *", UTC),
    ("0 18 * * 1-5", UTC),
    ("0 0 L * *", UTC),
    ("0 9 * * MON-FRI", UTC),
    ("@yearly", UTC),
    ("30 2 * * *", ZoneInfo("Europe/Berlin")),
]


def _median_rate(step: Callable[[], None], calls: int) -> float:
    rates: list[float] = []
    for _ in range(RUNS):
        started = time.perf_counter()
        for _ in range(calls):
            step()
        rates.append(calls / (time.perf_counter() - started))
    return statistics.median(rates)


def bench_jobify(expression: str, tz: tzinfo, *, chained: bool) -> float:
    cron = create_crontab(expression)
    start = datetime(2024, 1, 1, tzinfo=tz)
    state = [start]
    next_run = cron.next_run

    def step_chained() -> None:
        result = next_run(now=state[0])
        # restart before the end of the supported range (@yearly would get there quickly)
        state[0] = result if result.year < 2090 else start

    def step_fixed() -> None:
        next_run(now=start)

    return _median_rate(step_chained if chained else step_fixed, 20_000)


def bench_crontab(expression: str, tz: tzinfo) -> float:
    entry = CronTab(expression)
    start = datetime(2024, 1, 1, tzinfo=tz)
    state = [start]

    def step() -> None:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            result = entry.next(state[0], delta=False, return_datetime=True, default_utc=True)
        state[0] = result if result is not None and result.year < 2090 else start

    return _median_rate(step, 300)


def main() -> int:
    rows: list[str] = []
    missed: list[str] = []
    for expression, tz in CASES:
        chained = bench_jobify(expression, tz, chained=True)
        fixed = bench_jobify(expression, tz, chained=False)
        theirs = bench_crontab(expression, tz)
        ratio = chained / theirs
        zone = getattr(tz, "key", "UTC")
        rows.append(
            f"| `{expression}` | {zone} | {chained:,.0f} | {fixed:,.0f} | {theirs:,.0f} "
            f"| {ratio:,.0f}x |"
        )
        if chained < MIN_CALLS_PER_S:
            missed.append(f"{expression} ({zone}): {chained:,.0f} calls/s < {MIN_CALLS_PER_S:,}")
        if ratio < MIN_RATIO:
            missed.append(f"{expression} ({zone}): {ratio:,.0f}x crontab < {MIN_RATIO:,.0f}x")
    print(
        f"cron next_run, calls/s, median of {RUNS} runs (Python {sys.version.split()[0]})\n\n"
        "| expression | zone | jobify chained | jobify fixed now | crontab chained | ratio |\n"
        "|---|---|---:|---:|---:|---:|"
    )
    print("\n".join(rows))
    print(
        f"\ntargets: jobify chained >= {MIN_CALLS_PER_S:,} calls/s and >= {MIN_RATIO:.0f}x crontab"
    )
    if missed:
        print("MISSED:\n  " + "\n  ".join(missed))
        return 1
    print("all targets met")
    return 0


if __name__ == "__main__":
    sys.exit(main())
