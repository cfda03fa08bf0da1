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
import math
import os
import statistics
import subprocess
import sys
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import Any

import _reference

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
    # The same run's floor for this row (a metric of the same workload, e.g. the bare asyncio
    # shape of it), and a target on ours / reference (both medians of the same run).
    floor_key: str = ""
    ref_op: str = ""  # ">=", "<=" or "" (ratio printed for scale)
    ref_value: float = 0.0

    def ref_passed(self, ratio: float) -> bool | None:
        if self.ref_op == ">=":
            return ratio >= self.ref_value
        if self.ref_op == "<=":
            return ratio <= self.ref_value
        return None

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
        parts = []
        if self.target_text:
            parts.append(self.target_text)
        elif self.op != "info":
            parts.append(f"{self.op} {_fmt(self.value)} {self.unit}".rstrip())
        if self.ref_op:
            parts.append(f"{self.ref_op} {self.ref_value:g}x ref")
        return "; ".join(parts) or "—"


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


# True in a child running the reference system's side of a workload.
ON_REFERENCE = os.environ.get(_reference.SIDE_ENV) == "reference"
REF = "@reference"  # results of the reference system's runs are kept under "name@reference"


def _run_child(
    script: str,
    workload: str,
    extra: Sequence[str],
    timeout: float,
    *,
    reference: bool = False,
) -> dict[str, Any]:
    if reference:
        interpreter, _ = _reference.python()
        assert interpreter is not None
        command, env = [interpreter], _reference.child_env()
    else:
        command, env = [sys.executable], None
    proc = subprocess.run(
        [*command, script, "--workload", workload, *extra],
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
        env=env,
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
    reference: Sequence[str] = (),
) -> tuple[dict[str, list[dict[str, float]]], list[str]]:
    """Run each workload ``runs`` times in fresh processes, one after the other.

    Runs are sequential, never parallel: on a 2-core machine two runs would measure each other.
    A workload named in ``reference`` also runs on the reference system, alternating with ours
    (ours, reference, ours, reference, ...) so that both sides see the same drift of the
    machine's load; those results are kept under ``name + REF`` (``extra_args`` gets that
    name too, e.g. to hand the reference a database seeded by the reference).
    """
    results: dict[str, list[dict[str, float]]] = {}
    errors: list[str] = []
    with_reference = _reference.python()[0] is not None
    for name in workloads:
        started = time.perf_counter()
        sides = [False, True] if with_reference and name in reference else [False]
        for i in range(runs):
            for on_reference in sides:
                key = name + REF if on_reference else name
                extra = extra_args(key, i) if extra_args is not None else ()
                try:
                    metrics = _run_child(script, name, extra, timeout, reference=on_reference)
                    results.setdefault(key, []).append(metrics)
                except (BenchError, subprocess.TimeoutExpired) as exc:
                    errors.append(f"{key} run {i + 1}: {exc}")
        rounds = f"{runs} rounds A B" if len(sides) == 2 else f"{runs} runs"
        print(f"  ({name}: {rounds} in {time.perf_counter() - started:.1f} s)", file=sys.stderr)
    return results, errors


def _medians(runs: list[dict[str, float]]) -> dict[str, float]:
    return {k: statistics.median(r[k] for r in runs if k in r) for k in runs[0] if k in runs[-1]}


def _compared_row(
    t: Target, runs: list[dict[str, float]], ref_runs: list[dict[str, float]]
) -> tuple[str, bool | None]:
    """One row of the comparison table: floor / reference / ours / ratio / target / result."""
    unit = f" {t.unit}" if t.unit else ""
    values = [r[t.key] for r in runs if t.key in r]
    if not values:
        return f"| {t.workload} | {t.label} | — | — | no run | — | {t.describe()} | FAIL |", False
    medians = _medians(runs)
    ours = medians[t.key]
    floor = f"{_fmt(medians[t.floor_key])}{unit}" if t.floor_key in medians else "—"
    verdicts = [t.passed(medians)]
    ref_values = [r[t.key] for r in ref_runs if t.key in r]
    if ref_values:
        ref = statistics.median(ref_values)
        ratio = ours / ref if ref else math.inf
        reference = f"{_fmt(ref)}{unit}"
        # A ratio of two ratios (a row such as "ours / floor") would say nothing.
        shown_ratio = f"{ratio:.2f}x" if t.ref_op or t.unit not in ("%", "x") else "—"
        verdicts.append(t.ref_passed(ratio))
    elif t.ref_op:
        reference, shown_ratio = _reference.python()[1] or "no reference run", "—"
    else:
        reference, shown_ratio = "—", "—"
    known = [v for v in verdicts if v is not None]
    verdict = all(known) if known else None
    result = "—" if verdict is None else ("pass" if verdict else "**FAIL**")
    return (
        f"| {t.workload} | {t.label} | {floor} | {reference} | {_fmt(ours)}{unit} "
        f"| {shown_ratio} | {t.describe()} | {result} |"
    ), verdict


def comparison_table(
    results: dict[str, list[dict[str, float]]], targets: Sequence[Target]
) -> tuple[str, bool]:
    """The table of a script whose rows have floors or a reference: medians side by side."""
    lines = [
        "| workload | metric | floor (same run) | reference | ours | ours / ref | target "
        "| result |",
        "|---|---|---|---|---|---|---|---|",
    ]
    ok = True
    for t in targets:
        runs = results.get(t.workload, [])
        line, verdict = _compared_row(t, runs, results.get(t.workload + REF, []))
        lines.append(line)
        ok = ok and verdict is not False
    lines.append("")
    lines.append("All runs (ours; reference in brackets), in the order they ran:")
    lines.append("")
    for t in targets:
        ours = [_fmt(r[t.key]) for r in results.get(t.workload, []) if t.key in r]
        ref = [_fmt(r[t.key]) for r in results.get(t.workload + REF, []) if t.key in r]
        shown = ", ".join(ours) + (f" [{', '.join(ref)}]" if ref else "")
        lines.append(f"- {t.workload} / {t.label}: {shown}")
    return "\n".join(lines), ok


def table(
    results: dict[str, list[dict[str, float]]], targets: Sequence[Target]
) -> tuple[str, bool]:
    """The markdown table and whether every target was met."""
    if any(t.floor_key or t.ref_op for t in targets):
        return comparison_table(results, targets)
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
    reference: Sequence[str] = (),
) -> int:
    """Child mode with ``--workload NAME``; otherwise run everything and print the table.

    ``prepare`` runs once in the parent before the workloads (e.g. to write seed databases);
    positional arguments choose a subset of workloads. ``hidden`` workloads (helpers such as
    seeding a database) only run when a script spawns them itself.
    """
    argv = sys.argv[1:]
    if argv[:1] == ["--workload"]:
        _reference.check_side()
        name, rest = argv[1], argv[2:]
        metrics = asyncio.run(workloads[name](rest))
        print(MARKER + json.dumps(metrics), flush=True)
        return 0
    chosen = [w for w in workloads if w not in hidden and (not argv or w in argv)]
    context = prepare() if prepare is not None else None
    try:
        results, errors = run_workloads(script, chosen, extra_args=extra_args, reference=reference)
    finally:
        if hasattr(context, "cleanup"):
            context.cleanup()
    text, ok = table(results, [t for t in targets if t.workload in chosen])
    print(text)
    if set(reference) & set(chosen):
        interpreter, reason = _reference.python()
        print(
            f"\nreference: PyPI jobify=={_reference.VERSION} in {_reference.VENV.name} "
            "(its own interpreter), alternating with ours run by run; ratios are ours / "
            "reference of the medians"
            if interpreter
            else f"\n{reason}"
        )
    for note in notes:
        print(f"\n{note}")
    for err in errors:
        print(f"\nERROR {err}")
    if errors:
        ok = False
    print("\nall targets met" if ok else "\nTARGETS MISSED")
    return 0 if ok else 1
