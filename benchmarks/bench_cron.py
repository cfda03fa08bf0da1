"""Cron ``next_run`` throughput: jobify against the ``crontab`` package.

Usage: ``python benchmarks/bench_cron.py``.  For each of the 8 expressions of issue 2 it
measures calls per second of ``next_run`` *chained* (each result is fed back as ``now``, the way
a scheduler uses it; the reported and targeted figure) and, for information, with one *fixed*
``now``.  The ``crontab`` package runs the same chained walk (``CronTab.next(now, delta=False,
return_datetime=True)``; its 7-field order is ours).  Each figure is the median of 5 runs in this
one process.  Targets: every jobify row >= 100,000 calls/s and >= 100x crontab, except the
every-second rows: crontab answers ``* * * * * * *`` in ~11 µs, so 100x would mean ~110 ns per
call, about the cost of one Python method call; those rows are judged by an absolute figure
instead, >= 1,000,000 calls/s, in a fixed-offset zone and in zones with daylight saving.  The
exit code is 1 if any target is missed.
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
EVERY_SECOND = "* * * * * * *"
MIN_EVERY_SECOND_CALLS_PER_S = 1_000_000
RUNS = 5

CASES: list[tuple[str, tzinfo]] = [
    (EVERY_SECOND, UTC),
    (EVERY_SECOND, ZoneInfo("Europe/Berlin")),
    (EVERY_SECOND, ZoneInfo("America/New_York")),
    ("*/15 * * * * * *", UTC),
    ("0 * * * *", UTC),
    ("0 18 * * 1-5", UTC),
    ("0 0 L * *", UTC),
    ("0 9 * * MON-FRI", UTC),
    ("@yearly", UTC),
    ("30 2 * * *", ZoneInfo("Europe/Berlin")),
]


CHAIN = 50
"""Calls per chain: each chain restarts from ``start``, so even ``@yearly`` stays inside the
supported years, and the restart costs nothing per call."""


def _median_rate(chain: Callable[[], None], chains: int) -> float:
    """Calls per second of ``chain`` (CHAIN calls each), median of RUNS runs.

    The loop around the calls is the same for jobify and the oracle and kept to the minimum
    (a local variable and a for loop), so what is timed is the call itself.
    """
    rates: list[float] = []
    for _ in range(RUNS):
        started = time.perf_counter()
        for _ in range(chains):
            chain()
        rates.append(chains * CHAIN / (time.perf_counter() - started))
    return statistics.median(rates)


def bench_jobify(expression: str, tz: tzinfo, *, chained: bool) -> float:
    next_run = create_crontab(expression).next_run
    start = datetime(2024, 1, 1, tzinfo=tz)
    steps = range(CHAIN)

    def run_chained() -> None:
        now = start
        for _ in steps:
            now = next_run(now=now)

    def run_fixed() -> None:
        for _ in steps:
            next_run(now=start)

    return _median_rate(run_chained if chained else run_fixed, 400)


def bench_crontab(expression: str, tz: tzinfo) -> float:
    next_ = CronTab(expression).next
    start = datetime(2024, 1, 1, tzinfo=tz)
    steps = range(CHAIN)

    def run_chained() -> None:
        now = start
        for _ in steps:
            now = next_(now, delta=False, return_datetime=True, default_utc=True)

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return _median_rate(run_chained, 6)


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
        if expression == EVERY_SECOND:
            if chained < MIN_EVERY_SECOND_CALLS_PER_S:
                missed.append(
                    f"{expression} ({zone}): {chained:,.0f} calls/s "
                    f"< {MIN_EVERY_SECOND_CALLS_PER_S:,}"
                )
            continue
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
        f"\ntargets: jobify chained >= {MIN_CALLS_PER_S:,} calls/s and >= {MIN_RATIO:.0f}x crontab;"
        f" the every-second rows >= {MIN_EVERY_SECOND_CALLS_PER_S:,} calls/s in every zone"
    )
    if missed:
        print("MISSED:\n  " + "\n  ".join(missed))
        return 1
    print("all targets met")
    return 0


if __name__ == "__main__":
    sys.exit(main())
