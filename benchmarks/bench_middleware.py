"""Issue 5 benchmark: ``push_mem`` with three no-op middlewares vs the same without.

The middlewares sit at the three levels a job's chain is composed from: app
(``Jobify(middleware=...)``), router (``JobRouter(middleware=...)`` holding the task) and task
(``@router.task(middleware=...)``). Both variants run in the same process, four rounds each
in ABBA order after a warm-up, and each variant's rate is the median of its rounds. Every
job's result and every middleware call is verified.
Run: ``.venv/bin/python benchmarks/bench_middleware.py``.
"""

from __future__ import annotations

import asyncio
import gc
import statistics
import sys
import time
from typing import Any

import _harness as h
from jobify import JobContext, Jobify, JobRouter, JobStatus
from jobify.middleware import BaseMiddleware, CallNext

N_PUSH = 20_000
# ABBA order, twice: a drift over the process's life (heap growth, other load on the machine)
# hits both variants alike.
ORDER = (False, True, True, False, True, False, False, True)


class Noop(BaseMiddleware):
    """Does nothing but pass the job on; counts calls so the run can prove it was in the chain."""

    def __init__(self) -> None:
        self.calls = 0

    async def __call__(self, call_next: CallNext, context: JobContext) -> Any:
        self.calls += 1
        return await call_next(context)


async def _round(with_middleware: bool, n: int = N_PUSH) -> float:
    mws = [Noop(), Noop(), Noop()] if with_middleware else [None, None, None]
    app_mw, router_mw, task_mw = ([m] if m is not None else [] for m in mws)
    app = Jobify(storage=False, middleware=app_mw)
    router = JobRouter(middleware=router_mw)

    @router.task(middleware=task_mw)
    async def double(i: int) -> int:
        return i * 2

    app.include_router(router)
    # The previous round's app and 20k jobs are garbage now: collect them here, not inside
    # the next timed round.
    gc.collect()
    async with app:
        t0 = time.perf_counter()
        jobs = await asyncio.gather(*(double.push(i) for i in range(n)))
        await app.wait_all()
        elapsed = time.perf_counter() - t0
        for i, job in enumerate(jobs):
            h.expect(job.status is JobStatus.SUCCESS, f"job {i}: {job.status}")
            h.expect(job.result() == i * 2, f"job {i}: wrong result")
    for m in mws:
        h.expect(m is None or m.calls == n, "a middleware did not see every job")
    return n / elapsed


async def push_mem_mw(argv: list[str]) -> dict[str, float]:
    # A discarded warm-up of both variants: the first round in a process pays for lazy
    # imports and first-time allocations, which would otherwise count against one variant.
    await _round(False, 2_000)
    await _round(True, 2_000)
    rates: dict[bool, list[float]] = {False: [], True: []}
    for with_mw in ORDER:
        rates[with_mw].append(await _round(with_mw))
    plain, mw = statistics.median(rates[False]), statistics.median(rates[True])
    return {
        "plain": plain,
        "mw": mw,
        "ratio": mw / plain * 100,
        "spread": (max(rates[False]) - min(rates[False])) / plain * 100,
    }


WORKLOADS: dict[str, h.Workload] = {"push_mem_mw": push_mem_mw}

T = h.Target
TARGETS = [
    T("push_mem_mw", "plain", "gather 20k push, no middleware", "jobs/s"),
    T("push_mem_mw", "mw", "same, 3 no-op middlewares", "jobs/s"),
    T("push_mem_mw", "spread", "spread of plain rounds (noise)", "%"),
    T("push_mem_mw", "ratio", "with / without middleware", "%", ">=", 80),
]

if __name__ == "__main__":
    sys.exit(h.main(__file__, WORKLOADS, TARGETS))
