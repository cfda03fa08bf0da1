"""Issue 3 benchmarks: the in-memory scheduler core (``Jobify(storage=False)``).

Only the public API is used, so the same script can measure any implementation of the spec.
Every workload verifies that each job really completed with the right result before it
reports, and prints next to our numbers the plain-asyncio floor the issue names, measured in
the same process. Run: ``.venv/bin/python benchmarks/bench_scheduler.py [workload ...]``.
"""

from __future__ import annotations

import asyncio
import gc
import math
import random
import statistics
import sys
import time
from datetime import UTC, datetime

import _harness as h
from jobify import Jobify, JobStatus

N_PUSH = 20_000
N_SEQ = 5_000
N_THREAD = 5_000
N_PRECISION = 2_000
PRECISION_SPAN = 2.0
N_TIMERS = 100_000
N_IDLE = 10_000
IDLE_SECONDS = 5.0
N_CRONS = 200
CRON_SECONDS = 5


# -- asyncio floors ---------------------------------------------------------------------------


async def _small(i: int) -> int:
    return i + 1


async def floor_gather_create_task(n: int) -> float:
    """Jobs/s of the bare shape of push_mem: each coroutine creates one task; all awaited."""
    loop = asyncio.get_running_loop()
    tasks: list[asyncio.Task[int]] = []

    async def submit(i: int) -> None:
        tasks.append(loop.create_task(_small(i)))

    t0 = time.perf_counter()
    await asyncio.gather(*(submit(i) for i in range(n)))
    results = await asyncio.gather(*tasks)
    elapsed = time.perf_counter() - t0
    h.expect(results == [i + 1 for i in range(n)], "floor gather: wrong results")
    return n / elapsed


async def floor_round_trip(n: int) -> float:
    """µs per create-task-then-await, sequentially."""
    loop = asyncio.get_running_loop()
    t0 = time.perf_counter()
    for i in range(n):
        r = await loop.create_task(_small(i))
        h.expect(r == i + 1, "floor round trip: wrong result")
    return (time.perf_counter() - t0) / n * 1e6


def _add_one(i: int) -> int:
    return i + 1


async def floor_run_in_executor(n: int) -> float:
    loop = asyncio.get_running_loop()
    t0 = time.perf_counter()
    results = await asyncio.gather(*(loop.run_in_executor(None, _add_one, i) for i in range(n)))
    elapsed = time.perf_counter() - t0
    h.expect(results == [i + 1 for i in range(n)], "floor executor: wrong results")
    return n / elapsed


async def floor_call_at(n: int) -> float:
    """Seconds to arm ``n`` bare ``call_at`` timers 1-2 h ahead (then cancel them)."""
    loop = asyncio.get_running_loop()
    rng = random.Random(1)
    t0 = time.perf_counter()
    handles = [loop.call_at(loop.time() + rng.uniform(3600, 7200), _add_one, i) for i in range(n)]
    elapsed = time.perf_counter() - t0
    for handle in handles:
        handle.cancel()
    return elapsed


# -- workloads ------------------------------------------------------------------------------


async def push_mem(argv: list[str]) -> dict[str, float]:
    app = Jobify(storage=False)

    @app.task
    async def double(i: int) -> int:
        return i * 2

    floor_gather = await floor_gather_create_task(N_PUSH)
    floor_rt = await floor_round_trip(N_SEQ)
    # The floors' garbage is collected here, not inside our timed phase.
    gc.collect()
    async with app:
        t0 = time.perf_counter()
        jobs = await asyncio.gather(*(double.push(i) for i in range(N_PUSH)))
        await app.wait_all()
        elapsed = time.perf_counter() - t0
        for i, job in enumerate(jobs):
            h.expect(job.status is JobStatus.SUCCESS, f"push_mem job {i}: {job.status}")
            h.expect(job.result() == i * 2, f"push_mem job {i}: wrong result")
        h.expect(not app.get_active_jobs(), "push_mem: jobs still active after wait_all")

        t0 = time.perf_counter()
        for i in range(N_SEQ):
            job = await double.push(i)
            await job.wait()
            h.expect(job.result() == i * 2, f"push_mem sequential {i}: wrong result")
        seq_us = (time.perf_counter() - t0) / N_SEQ * 1e6
    rate = N_PUSH / elapsed
    return {
        "rate": rate,
        "seq_us": seq_us,
        "floor_rate": floor_gather,
        "floor_us": floor_rt,
        "rate_ratio": rate / floor_gather * 100,
        "seq_ratio": seq_us / floor_rt,
    }


async def sync_thread(argv: list[str]) -> dict[str, float]:
    app = Jobify(storage=False)

    @app.task
    def add_one(i: int) -> int:
        return i + 1

    floor = await floor_run_in_executor(N_THREAD)
    gc.collect()
    async with app:
        t0 = time.perf_counter()
        jobs = await asyncio.gather(*(add_one.push(i) for i in range(N_THREAD)))
        await app.wait_all()
        elapsed = time.perf_counter() - t0
        for i, job in enumerate(jobs):
            h.expect(job.status is JobStatus.SUCCESS, f"sync_thread job {i}: {job.status}")
            h.expect(job.result() == i + 1, f"sync_thread job {i}: wrong result")
    rate = N_THREAD / elapsed
    return {"rate": rate, "floor_rate": floor, "ratio": rate / floor * 100}


def _lateness_stats(lateness_s: list[float], prefix: str) -> dict[str, float]:
    ms = [x * 1e3 for x in lateness_s]
    return {
        f"{prefix}_p50": statistics.median(ms),
        f"{prefix}_p99": h.percentile(ms, 99),
        f"{prefix}_max": max(ms),
    }


def _schedule_instants(start: float) -> list[datetime]:
    # Instants are datetimes first (microsecond resolution), and lateness is measured against
    # their own timestamp, so rounding to µs cannot count as lateness.
    step = PRECISION_SPAN / N_PRECISION
    return [datetime.fromtimestamp(start + i * step, UTC) for i in range(N_PRECISION)]


async def _bare_precision() -> list[float]:
    loop = asyncio.get_running_loop()
    instants = _schedule_instants(time.time() + 0.3)
    lateness: list[float] = []
    done = loop.create_future()

    def fire(target: float) -> None:
        lateness.append(time.time() - target)
        if len(lateness) == N_PRECISION:
            done.set_result(None)

    for at in instants:
        ts = at.timestamp()
        # The same wall→loop conversion a scheduler has to do.
        loop.call_at(loop.time() + (ts - time.time()), fire, ts)
    await done
    return lateness


async def _app_precision() -> list[float]:
    app = Jobify(storage=False)
    lateness: dict[int, float] = {}
    targets: dict[int, float] = {}

    @app.task
    async def probe(i: int) -> int:
        lateness[i] = time.time() - targets[i]
        return i

    async with app:
        instants = _schedule_instants(time.time() + 0.3)
        jobs = []
        for i, at in enumerate(instants):
            targets[i] = at.timestamp()
            jobs.append(await probe.schedule(i).at(at))
        h.expect(time.time() < instants[0].timestamp(), "precision: scheduling took too long")
        await app.wait_all(timeout=PRECISION_SPAN + 5)
        for i, job in enumerate(jobs):
            h.expect(job.status is JobStatus.SUCCESS, f"precision job {i}: {job.status}")
            h.expect(job.result() == i, f"precision job {i}: wrong result")
    h.expect(len(lateness) == N_PRECISION, "precision: not every job ran")
    return list(lateness.values())


async def precision(argv: list[str]) -> dict[str, float]:
    # Bare, ours, ours, bare: load from other processes on the machine drifts over seconds,
    # and this order exposes both schedules to the same drift; each side pools its 2 rounds.
    bare = await _bare_precision()
    ours = await _app_precision()
    gc.collect()
    ours += await _app_precision()
    gc.collect()
    bare += await _bare_precision()
    out = _lateness_stats(bare, "bare") | _lateness_stats(ours, "app")
    out["p50_diff"] = out["app_p50"] - out["bare_p50"]
    out["p99_diff"] = out["app_p99"] - out["bare_p99"]
    out["p99_ratio"] = out["app_p99"] / out["bare_p99"] if out["bare_p99"] > 0 else math.inf
    return out


async def many_timers(argv: list[str]) -> dict[str, float]:
    app = Jobify(storage=False)

    @app.task
    async def later(i: int) -> int:
        return i

    rng = random.Random(3)
    delays = [rng.uniform(3600, 7200) for _ in range(N_TIMERS)]
    async with app:
        rss0 = h.rss_mb()
        t0 = time.perf_counter()
        for i, d in enumerate(delays):
            await later.schedule(i).delay(d)
        elapsed = time.perf_counter() - t0
        rss1 = h.rss_mb()
        active = app.get_active_jobs()
        h.expect(len(active) == N_TIMERS, f"many_timers: {len(active)} active")
        h.expect(all(j.status is JobStatus.SCHEDULED for j in active), "many_timers: not SCHEDULED")
        t1 = time.perf_counter()
    shutdown = time.perf_counter() - t1
    if not h.ON_REFERENCE:  # the reference leaves a job it never ran as it was at shutdown
        h.expect(all(j.status is JobStatus.CANCELLED for j in active), "many_timers: not cancelled")
    # The floor runs after our measurement so that its freed memory cannot hide our growth.
    floor = await floor_call_at(N_TIMERS)
    return {
        "seconds": elapsed,
        "rss": rss1 - rss0,
        "shutdown": shutdown,
        "floor": floor,
        "ratio": elapsed / floor,
    }


async def idle(argv: list[str]) -> dict[str, float]:
    app = Jobify(storage=False)

    @app.task
    async def later(i: int) -> int:
        return i

    async with app:
        for i in range(N_IDLE):
            await later.schedule(i).delay(3600)
        h.expect(len(app.get_active_jobs()) == N_IDLE, "idle: not every job scheduled")
        # process_time counts every thread of the process, so a busy helper thread shows too.
        cpu0 = time.process_time()
        await asyncio.sleep(IDLE_SECONDS)
        cpu = time.process_time() - cpu0
        h.expect(len(app.get_active_jobs()) == N_IDLE, "idle: jobs vanished while idle")
    return {"cpu_ms": cpu * 1e3}


async def _bare_fanout(seconds: int) -> list[float]:
    """The same 200 every-second fires on bare call_at, each re-arming itself like a cron."""
    loop = asyncio.get_running_loop()
    lateness: list[float] = []
    await asyncio.sleep(math.ceil(time.time()) - time.time() + 0.02)
    first = math.floor(time.time()) + 1
    last = first + seconds - 1

    def fire(second: int) -> None:
        lateness.append(time.time() - second)
        if second < last:
            loop.call_at(loop.time() + (second + 1 - time.time()), fire, second + 1)

    for _ in range(N_CRONS):
        loop.call_at(loop.time() + (first - time.time()), fire, first)
    await asyncio.sleep(last + 0.5 - time.time())
    h.expect(len(lateness) == N_CRONS * seconds, "bare fanout: missing fires")
    return lateness


async def cron_fanout(argv: list[str]) -> dict[str, float]:
    app = Jobify(storage=False)
    fires: list[tuple[int, float]] = []

    @app.task
    async def tick(i: int) -> int:
        fires.append((i, time.time()))
        return i

    async with app:
        # Start just after a second boundary so all 200 crons share their first fire second.
        await asyncio.sleep(math.ceil(time.time()) - time.time() + 0.02)
        jobs = [
            await tick.schedule(i).cron("* * * * * * *", job_id=f"c{i}") for i in range(N_CRONS)
        ]
        first = math.floor(time.time()) + 1  # every cron was scheduled before this second
        end = first + CRON_SECONDS - 1
        await asyncio.sleep(end + 0.5 - time.time())
        h.expect(all(j.cron_expression is not None for j in jobs), "cron_fanout: not cron jobs")
    window = [(i, t) for i, t in fires if first - 0.5 <= t < end + 0.5]
    counts: dict[tuple[int, int], int] = {}
    lateness: list[float] = []
    for i, t in window:
        second = round(t)
        counts[(i, second)] = counts.get((i, second), 0) + 1
        lateness.append(t - second)
    dups = sum(c - 1 for c in counts.values() if c > 1)
    gaps = sum(1 for i in range(N_CRONS) for s in range(first, end + 1) if (i, s) not in counts)
    h.expect(dups == 0, f"cron_fanout: {dups} duplicate fires")
    h.expect(gaps == 0, f"cron_fanout: {gaps} missing fires")
    h.expect(len(window) == N_CRONS * CRON_SECONDS, f"cron_fanout: {len(window)} fires")
    ms = [x * 1e3 for x in lateness]
    # For scale: on a VM the kernel lets a 1 s epoll wait overrun by ~0.1 % (timer slack),
    # plus asyncio's rounding up to whole ms, so even bare timers are ~2 ms late here.
    bare = [x * 1e3 for x in await _bare_fanout(3)]
    return {
        "bare_mean_ms": statistics.fmean(bare),
        "fires": float(len(window)),
        "mean_ms": statistics.fmean(ms),
        "p99_ms": h.percentile(ms, 99),
        "max_ms": max(ms),
    }


WORKLOADS: dict[str, h.Workload] = {
    "push_mem": push_mem,
    "sync_thread": sync_thread,
    "precision": precision,
    "many_timers": many_timers,
    "idle": idle,
    "cron_fanout": cron_fanout,
}


def _p99_ok(m: dict[str, float]) -> bool:
    # A ratio of two sub-0.2 ms tails is noise; there the intent is "no extra tail",
    # judged as within 0.1 ms absolute.
    if m["p99_ratio"] <= 1.2:
        return True
    return m["bare_p99"] < 0.2 and m["p99_diff"] <= 0.1


T = h.Target
# Ratio targets (ref_op/ref_value) are ours / the reference system's median of the same run.
TARGETS = [
    T(
        "push_mem",
        "rate",
        "gather 20k push + wait_all",
        "jobs/s",
        ">=",
        16_000,
        floor_key="floor_rate",
        ref_op=">=",
        ref_value=3,
    ),
    T(
        "push_mem",
        "seq_us",
        "sequential push→wait",
        "µs",
        "<=",
        40,
        floor_key="floor_us",
        ref_op="<=",
        ref_value=0.33,
    ),
    T(
        "sync_thread",
        "rate",
        "5k def pushes (thread pool)",
        "jobs/s",
        ">=",
        7_000,
        floor_key="floor_rate",
        ref_op=">=",
        ref_value=2,
    ),
    T("sync_thread", "ratio", "ours / bare run_in_executor", "%", ">=", 80),
    T("precision", "app_p50", "lateness p50", "ms", floor_key="bare_p50"),
    T("precision", "p50_diff", "p50 − bare p50", "ms", "<=", 0.1),
    T("precision", "app_p99", "lateness p99", "ms", floor_key="bare_p99"),
    T(
        "precision",
        "p99_ratio",
        "p99 / bare p99",
        "x",
        check=_p99_ok,
        target_text="<= 1.2 x (or <= +0.1 ms if bare p99 < 0.2 ms)",
    ),
    T("precision", "p99_diff", "p99 − bare p99", "ms"),
    T("precision", "app_max", "lateness max", "ms", floor_key="bare_max"),
    T(
        "many_timers",
        "seconds",
        "schedule 100k, 1-2 h ahead",
        "s",
        "<=",
        1.5,
        floor_key="floor",
        ref_op="<=",
        ref_value=0.2,
    ),
    T("many_timers", "rss", "RSS growth", "MB", "<=", 80, ref_op="<=", ref_value=0.33),
    T("many_timers", "shutdown", "shutdown with 100k armed", "s"),
    T("idle", "cpu_ms", "CPU during 5 s idle, 10k armed", "ms", "<=", 1.0),
    T("cron_fanout", "fires", "fires of 200 crons × 5 s (exactly once)", "", ">=", 1000),
    T(
        "cron_fanout",
        "mean_ms",
        "mean lateness",
        "ms",
        "<=",
        4.0,
        floor_key="bare_mean_ms",
        ref_op="<=",
        ref_value=0.3,
    ),
    T("cron_fanout", "p99_ms", "lateness p99", "ms"),
    T("cron_fanout", "max_ms", "lateness max", "ms"),
]
# The workloads of the reference comparison; precision and idle hold against their floors.
REFERENCE = ("push_mem", "sync_thread", "many_timers", "cron_fanout")

NOTES = [
    "precision p99: when the bare call_at p99 is below 0.2 ms a ratio of two tiny tails is "
    "noise, so the row also passes when our p99 is within 0.1 ms (absolute) of bare; the "
    "'p99 − bare p99' row shows that difference.",
    "precision: each run schedules the 2,000 instants four times, bare / jobify / jobify / "
    "bare, and pools each side's 4,000 lateness values.",
    "cron_fanout: a run fails its own verification (and the table shows ERROR) on any "
    "duplicate or missing fire of any cron in any second of the window.",
]

if __name__ == "__main__":
    sys.exit(h.main(__file__, WORKLOADS, TARGETS, notes=NOTES, reference=REFERENCE))
