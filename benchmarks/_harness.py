"""Shared plumbing of the ``bench_*.py`` scripts: fresh processes, medians, one markdown table.

A script defines its workloads as ``async def name(argv) -> dict[str, float]`` (metrics of one
run) and a list of ``Target`` rows. ``main`` runs every workload ``RUNS`` times, each run in a
fresh interpreter (``sys.executable script --workload name``) so that no run inherits the
allocator state, caches or garbage of another; the child prints its metrics as one JSON line.
The table shows the median and every value; the script exits 1 when a target is missed or a
run failed its own verification (a workload raises when a job did not complete correctly).
"""

from __future__ import annotations

import asyncio
import json
import statistics
import subprocess
import sys
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import Any

RUNS = 5
MARKER = "BENCH-RESULT "

Workload = Callable[[list[str]], Awaitable[dict[str, float]]]
Check = Callable[[dict[str, float]], bool]


@dataclass(frozen=True)
class Target:
    """One table row: a metric of a workload and, unless ``op`` is ``info``, its target.

    ``check`` replaces the plain comparison when a target depends on several metrics (it gets
    the medians of the workload's metrics); ``target_text`` then describes it.
    """

    workload: str
    key: str
    label: str
    unit: str
    op: str = "info"  # ">=", "<=" or "info" (printed for scale, never fails)
    value: float = 0.0
    check: Check | None = None
    target_text: str = ""

    def passed(self, medians: dict[str, float]) -> bool | None:
        if self.check is not None:
            return self.check(medians)
        median = medians[self.key]
        if self.op == ">=":
            return median >= self.value
        if self.op == "<=":
            return median <= self.value
        return None

    def describe(self) -> str:
        if self.target_text:
            return self.target_text
        if self.op == "info":
            return "—"
        return f"{self.op} {_fmt(self.value)} {self.unit}".rstrip()


def _fmt(x: float) -> str:
    ax = abs(x)
    if ax >= 1000:
        return f"{x:,.0f}"
    if ax >= 100:
        return f"{x:.0f}"
    if ax >= 10:
        return f"{x:.1f}"
    if ax >= 1:
        return f"{x:.2f}"
    return f"{x:.3f}"


# -- helpers for workloads -------------------------------------------------------------------


def rss_mb() -> float:
    """Resident set size of this process in MB."""
    import psutil

    return float(psutil.Process().memory_info().rss) / 1e6


def percentile(values: Sequence[float], q: float) -> float:
    """Nearest-rank percentile (q in 0..100) of unsorted values."""
    ordered = sorted(values)
    if not ordered:
        raise ValueError("no values")
    rank = max(0, min(len(ordered) - 1, round(q / 100 * len(ordered) + 0.5) - 1))
    return ordered[rank]


class BenchError(AssertionError):
    """A workload's own verification failed: the run does not count."""


def expect(condition: bool, message: str) -> None:
    # A plain assert would vanish under python -O; a benchmark that stops verifying is worse
    # than no benchmark.
    if not condition:
        raise BenchError(message)


# -- parent: run and tabulate ----------------------------------------------------------------


def _run_child(script: str, workload: str, extra: Sequence[str], timeout: float) -> dict[str, Any]:
    proc = subprocess.run(
        [sys.executable, script, "--workload", workload, *extra],
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )
    for line in proc.stdout.splitlines():
        if line.startswith(MARKER):
            return dict(json.loads(line[len(MARKER) :]))
    tail = (proc.stderr or proc.stdout).strip().splitlines()[-15:]
    raise BenchError(f"workload {workload!r} exited {proc.returncode}:\n" + "\n".join(tail))


def run_workloads(
    script: str,
    workloads: Sequence[str],
    *,
    runs: int = RUNS,
    timeout: float = 180.0,
    extra_args: Callable[[str, int], Sequence[str]] | None = None,
) -> tuple[dict[str, list[dict[str, float]]], list[str]]:
    """Run each workload ``runs`` times in fresh processes, one after the other.

    Runs are sequential, never parallel: on a 2-core machine two runs would measure each other.
    """
    results: dict[str, list[dict[str, float]]] = {}
    errors: list[str] = []
    for name in workloads:
        started = time.perf_counter()
        for i in range(runs):
            extra = extra_args(name, i) if extra_args is not None else ()
            try:
                results.setdefault(name, []).append(_run_child(script, name, extra, timeout))
            except (BenchError, subprocess.TimeoutExpired) as exc:
                errors.append(f"{name} run {i + 1}: {exc}")
        print(f"  ({name}: {runs} runs in {time.perf_counter() - started:.1f} s)", file=sys.stderr)
    return results, errors


def table(
    results: dict[str, list[dict[str, float]]], targets: Sequence[Target]
) -> tuple[str, bool]:
    """The markdown table and whether every target was met."""
    lines = [
        "| workload | metric | target | median | all runs | result |",
        "|---|---|---|---|---|---|",
    ]
    ok = True
    for t in targets:
        runs = results.get(t.workload, [])
        values = [r[t.key] for r in runs if t.key in r]
        if not values:
            lines.append(f"| {t.workload} | {t.label} | {t.describe()} | — | no run | FAIL |")
            ok = ok and t.op == "info" and t.check is None
            continue
        medians = {
            k: statistics.median(r[k] for r in runs if k in r) for k in runs[0] if k in runs[-1]
        }
        verdict = t.passed(medians)
        if verdict is False:
            ok = False
        result = "—" if verdict is None else ("pass" if verdict else "**FAIL**")
        shown = ", ".join(_fmt(v) for v in values)
        unit = f" {t.unit}" if t.unit else ""
        lines.append(
            f"| {t.workload} | {t.label} | {t.describe()} | {_fmt(medians[t.key])}{unit} "
            f"| {shown} | {result} |"
        )
    return "\n".join(lines), ok


def main(
    script: str,
    workloads: dict[str, Workload],
    targets: Sequence[Target],
    *,
    notes: Sequence[str] = (),
    extra_args: Callable[[str, int], Sequence[str]] | None = None,
    prepare: Callable[[], Any] | None = None,
    hidden: Sequence[str] = (),
) -> int:
    """Child mode with ``--workload NAME``; otherwise run everything and print the table.

    ``prepare`` runs once in the parent before the workloads (e.g. to write seed databases);
    positional arguments choose a subset of workloads. ``hidden`` workloads (helpers such as
    seeding a database) only run when a script spawns them itself.
    """
    argv = sys.argv[1:]
    if argv[:1] == ["--workload"]:
        name, rest = argv[1], argv[2:]
        metrics = asyncio.run(workloads[name](rest))
        print(MARKER + json.dumps(metrics), flush=True)
        return 0
    chosen = [w for w in workloads if w not in hidden and (not argv or w in argv)]
    context = prepare() if prepare is not None else None
    try:
        results, errors = run_workloads(script, chosen, extra_args=extra_args)
    finally:
        if hasattr(context, "cleanup"):
            context.cleanup()
    text, ok = table(results, [t for t in targets if t.workload in chosen])
    print(text)
    for note in notes:
        print(f"\n{note}")
    for err in errors:
        print(f"\nERROR {err}")
    if errors:
        ok = False
    print("\nall targets met" if ok else "\nTARGETS MISSED")
    return 0 if ok else 1
