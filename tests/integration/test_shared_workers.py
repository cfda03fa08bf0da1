"""Many worker processes on one PostgreSQL store, through the full app and ``jobify worker``:
each job runs once, fairly spread; a killed worker's jobs are taken over; one run per cron fire;
idle workers wake at once; a graceful stop hands its claims back; connections that drop are
survived."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import time
from collections import Counter
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager, contextmanager
from pathlib import Path
from typing import Any

import pytest

import pgtest
from jobify import Jobify

APP = """
import asyncio, os, signal, time
from jobify import INJECT, Cron, Job, Jobify
from jobify.storage import PostgresStorage

LOG = os.environ["JOBIFY_TEST_LOG"]
FD = os.open(LOG, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)

def note(*parts: object) -> None:
    # One write per line, unbuffered: a SIGKILL loses nothing already noted.
    os.write(FD, (" ".join(str(p) for p in parts) + "\\n").encode())

app = Jobify(
    storage=PostgresStorage(
        os.environ["JOBIFY_TEST_DSN"],
        schema=os.environ["JOBIFY_TEST_SCHEMA"],
        lease=float(os.environ.get("JOBIFY_TEST_LEASE", "30")),
        pool_size=2,
    ),
    history=False,
)

@app.task(name="work")
async def work(n: int, seconds: float = 0.0, job: Job = INJECT) -> int:
    note("start", n, os.getpid(), time.time())
    if seconds:
        await asyncio.sleep(seconds)
    note("done", n, os.getpid())
    return n

@app.task(name="tick")
async def tick(job: Job = INJECT) -> None:
    note("fire", int(job.exec_at.timestamp()), os.getpid())

@app.task(name="freeze")
async def freeze() -> None:
    note("freeze", os.getpid())
    if os.environ.get("JOBIFY_TEST_FREEZE") == "1":
        os.kill(os.getpid(), signal.SIGSTOP)  # as a VM pause or a long GC stall would

if os.environ.get("JOBIFY_TEST_DECLARE") == "1":
    @app.task(cron="0 0 1 1 *")  # declared by every worker at startup: they all write it
    async def yearly() -> None:
        pass
"""


def producer(schema: str) -> Jobify:
    app = Jobify(storage=pgtest.storage(schema), worker=False, history=False)

    @app.task(name="work")
    async def work(n: int, seconds: float = 0.0) -> int:
        raise AssertionError("a producer never runs jobs")

    @app.task(name="tick")
    async def tick() -> None:
        raise AssertionError("a producer never runs jobs")

    @app.task(name="freeze")
    async def freeze() -> None:
        raise AssertionError("a producer never runs jobs")

    return app


class Cluster:
    """Worker processes (``python -m jobify worker``) of one app module on one schema."""

    def __init__(self, tmp_path: Path, schema: str, lease: float) -> None:
        (tmp_path / "cluster_app.py").write_text(APP)
        self.log = tmp_path / "runs.log"
        self.log.touch()
        self.env = {
            **os.environ,
            "PYTHONPATH": str(tmp_path),
            "JOBIFY_TEST_DSN": pgtest.DSN,
            "JOBIFY_TEST_SCHEMA": schema,
            "JOBIFY_TEST_LOG": str(self.log),
            "JOBIFY_TEST_LEASE": str(lease),
        }
        self.procs: list[subprocess.Popen[str]] = []

    def start(
        self, count: int, *options: str, env: dict[str, str] | None = None
    ) -> list[subprocess.Popen[str]]:
        started = []
        for _ in range(count):
            proc = subprocess.Popen(
                [sys.executable, "-m", "jobify", "worker", "cluster_app:app", *options],
                env={**self.env, **(env or {})},
                stdout=subprocess.DEVNULL,
                stderr=subprocess.PIPE,
                text=True,
            )
            started.append(proc)
        self.procs += started
        return started

    async def listening(self, procs: list[subprocess.Popen[str]] | None = None) -> None:
        """Wait until each worker (all by default) LISTENs: it has started, however long a
        busy host makes its imports and connections take, and hears every job from now on
        (one pushed before it starts claiming is claimed when it does)."""
        pids = {proc.pid for proc in (self.procs if procs is None else procs)}
        deadline = time.monotonic() + 60
        conn = await pgtest.admin()
        try:
            while True:
                names = await conn.fetch(
                    "SELECT application_name FROM pg_stat_activity WHERE query LIKE 'LISTEN%'"
                )
                heard = {int(n[0].split(":")[-2]) for n in names if n[0].startswith("jobify ")}
                if pids <= heard:
                    return
                assert time.monotonic() < deadline, "the workers did not start"
                await asyncio.sleep(0.05)
        finally:
            await conn.close()

    def lines(self, kind: str) -> list[list[str]]:
        return [line.split() for line in self.log.read_text().splitlines() if line.startswith(kind)]

    def stop(self, proc: subprocess.Popen[str], sig: int = signal.SIGTERM) -> str:
        proc.send_signal(sig)
        _, err = proc.communicate(timeout=20)
        return err

    def close(self) -> None:
        for proc in self.procs:
            if proc.poll() is None:
                proc.kill()
            proc.communicate(timeout=10)


@contextmanager
def cluster(tmp_path: Path, schema: str, lease: float = 30.0) -> Iterator[Cluster]:
    made = Cluster(tmp_path, schema, lease)
    try:
        yield made
    finally:
        made.close()


@pytest.fixture
async def schema() -> AsyncIterator[str]:
    async with pgtest.fresh_schema() as name:
        # The workers create the tables; the test's producer must not race them.
        store = pgtest.storage(name)
        await store.startup()
        await store.shutdown()
        yield name


async def wait_for(predicate: Any, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError("timed out")
        await asyncio.sleep(0.05)


@asynccontextmanager
async def producing(schema: str) -> AsyncIterator[Jobify]:
    app = producer(schema)
    async with app:
        yield app


async def test_three_workers_run_3000_jobs_each_exactly_once_fairly(
    tmp_path: Path, schema: str
) -> None:
    with cluster(tmp_path, schema) as c:
        procs = c.start(3, "--concurrency", "50")
        async with producing(schema) as app:
            await c.listening()
            work = app.tasks["work"]
            jobs = []
            for first in range(0, 3000, 500):
                jobs += await asyncio.gather(*(work.push(n) for n in range(first, first + 500)))
            results = await asyncio.wait_for(asyncio.gather(*jobs), 60)
        assert results == list(range(3000))
        for proc in procs:
            assert c.stop(proc) is not None
            assert proc.returncode == 0
    done = Counter(int(line[1]) for line in c.lines("done"))
    assert sorted(done) == list(range(3000)) and set(done.values()) == {1}
    per_worker = Counter(line[2] for line in c.lines("done"))
    assert len(per_worker) == 3
    assert min(per_worker.values()) >= 300, per_worker  # a fair share each (>= 10%)


async def test_a_killed_worker_s_jobs_are_taken_over_after_its_lease(
    tmp_path: Path, schema: str
) -> None:
    with cluster(tmp_path, schema, lease=2.0) as c:
        victim, *_ = c.start(1, "--concurrency", "20")
        async with producing(schema) as app:
            await c.listening()
            work = app.tasks["work"]
            jobs = await asyncio.gather(*(work.push(n, 1.0) for n in range(60)))
            await wait_for(lambda: len(c.lines("start")) >= 10, 10)
            victim.kill()  # SIGKILL while it runs jobs
            victim.communicate(timeout=10)
            c.start(2, "--concurrency", "30")
            results = await asyncio.wait_for(asyncio.gather(*jobs), 30)
        assert results == list(range(60))
    started_by_victim = {int(line[1]) for line in c.lines("start") if line[2] == str(victim.pid)}
    starts = Counter(int(line[1]) for line in c.lines("start"))
    done = Counter(int(line[1]) for line in c.lines("done"))
    assert set(done) == set(range(60))  # none lost
    twice = {n for n, k in starts.items() if k > 1}
    assert twice <= started_by_victim  # the only re-runs are of jobs the killed worker started


async def test_an_every_second_cron_runs_once_per_fire_on_three_workers(
    tmp_path: Path, schema: str
) -> None:
    with cluster(tmp_path, schema) as c:
        c.start(3)
        async with producing(schema) as app:
            await c.listening()
            job = await app.tasks["tick"].schedule().cron("* * * * * * *", job_id="beat")
            await asyncio.sleep(10)
            await job.cancel()
        await asyncio.sleep(0.3)
    fires = Counter(int(line[1]) for line in c.lines("fire"))
    assert set(fires.values()) == {1}, fires  # one run per fire
    seconds = sorted(fires)
    assert len(seconds) >= 8
    assert seconds == list(range(seconds[0], seconds[-1] + 1))  # no gaps
    assert len({line[2] for line in c.lines("fire")}) >= 2  # fires spread over workers


async def test_an_idle_worker_wakes_at_once_on_a_new_job(tmp_path: Path, schema: str) -> None:
    with cluster(tmp_path, schema) as c:
        c.start(1)
        async with producing(schema) as app:
            await c.listening()
            work = app.tasks["work"]
            pushed: dict[int, float] = {}
            for n in range(200):
                pushed[n] = time.time()
                await asyncio.wait_for(await work.push(n), 5)
        starts = {int(line[1]): float(line[3]) for line in c.lines("start")}
    latencies = sorted(starts[n] - pushed[n] for n in range(200))
    p99 = latencies[int(0.99 * len(latencies)) - 1]
    print(f"wake-up latency p50 {latencies[100] * 1000:.1f} ms, p99 {p99 * 1000:.1f} ms")
    # Woken by the notification, not by the heartbeat's read (10 s away with this lease):
    # the figure itself (p99 of a few ms on an idle host) is the benchmarks' to judge; a host
    # whose cores are busy with other work may add tens of milliseconds of scheduling delay.
    assert p99 <= 1.0


@contextmanager
def busy_cores(count: int = 2) -> Iterator[None]:
    """Processes that keep ``count`` cores busy, as other work on a shared host does."""
    burners = [subprocess.Popen([sys.executable, "-c", "while 1: pass"]) for _ in range(count)]
    try:
        yield
    finally:
        for burner in burners:
            burner.kill()
            burner.wait()


async def test_an_idle_worker_beside_busy_cores_misses_no_job(tmp_path: Path, schema: str) -> None:
    # A notification that arrives while the worker reads the next claimable time used to be
    # lost on a busy host (the job stayed scheduled for good); each job must start.
    with cluster(tmp_path, schema) as c, busy_cores():
        c.start(1)
        async with producing(schema) as app:
            await c.listening()
            work = app.tasks["work"]
            for n in range(150):
                assert await asyncio.wait_for(await work.push(n), 5) == n


async def test_a_graceful_stop_hands_claims_back_at_once(tmp_path: Path, schema: str) -> None:
    with cluster(tmp_path, schema, lease=30.0) as c:
        first, *_ = c.start(1, "--concurrency", "1", "--grace", "0.1")
        async with producing(schema) as app:
            await c.listening()
            job = await app.tasks["work"].push(1, 3.0)
            await wait_for(lambda: len(c.lines("start")) == 1, 10)
            err = c.stop(first)  # the 3 s job is cut by the 0.1 s grace
            assert first.returncode == 0, err
            second = c.start(1)
            await c.listening(second)  # however long a busy host takes to start it
            t0 = time.monotonic()
            assert await asyncio.wait_for(job, 25) == 1
            # Taken over as soon as a worker came, not after the 30 s lease.
            assert time.monotonic() - t0 < 10


async def test_connections_that_drop_are_survived(tmp_path: Path, schema: str) -> None:
    with cluster(tmp_path, schema) as c:
        workers = c.start(2, "--concurrency", "20")
        async with producing(schema) as app:
            await c.listening()
            work = app.tasks["work"]
            jobs = await asyncio.gather(*(work.push(n, 0.05) for n in range(100)))
            await wait_for(lambda: len(c.lines("done")) >= 20, 10)
            # Every connection of both workers (their application names hold their pids).
            conn = await pgtest.admin()
            try:
                killed = await conn.fetchval(
                    "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity"
                    " WHERE application_name LIKE ANY($1::text[])",
                    [f"jobify %:{proc.pid}:%" for proc in workers],
                )
            finally:
                await conn.close()
            assert killed >= 4  # each worker's pool and its LISTEN connection
            results = await asyncio.wait_for(asyncio.gather(*jobs), 60)
        assert results == list(range(100))
    done = Counter(int(line[1]) for line in c.lines("done"))
    assert set(done) == set(range(100))


async def last_query_start(application_like: str) -> float:
    """When a connection whose application name matches last started a statement (epoch s)."""
    conn = await pgtest.admin()
    try:
        value = await conn.fetchval(
            "SELECT extract(epoch FROM max(query_start)) FROM pg_stat_activity"
            " WHERE application_name LIKE $1",
            application_like,
        )
        return 0.0 if value is None else float(value)
    finally:
        await conn.close()


async def test_a_worker_resumed_past_its_lease_never_starts_a_job_it_lost(
    tmp_path: Path, schema: str
) -> None:
    with cluster(tmp_path, schema, lease=2.0) as c:
        [frozen] = c.start(1, "--concurrency", "5", env={"JOBIFY_TEST_FREEZE": "1"})
        async with producing(schema) as app:
            await c.listening()
            # Both claimed at once (within the claim horizon), armed for 0.2 s and 0.24 s
            # later: the worker freezes itself first, even when a busy host makes both
            # timers fire late together (they fire in order; the freeze stops the process
            # in its first step).
            await asyncio.gather(
                app.tasks["freeze"].schedule().delay(0.2),
                app.tasks["work"].schedule(7).delay(0.24),
            )
            await wait_for(lambda: len(c.lines("freeze")) == 1, 10)
            [other] = c.start(1)  # takes both jobs once the frozen worker's lease ends
            await wait_for(lambda: len(c.lines("done")) == 1, 30)
            resumed = time.time()
            frozen.send_signal(signal.SIGCONT)
            # Its timer for job 7 fires on resume: wait until it has sent a statement since.
            like = f"jobify %:{frozen.pid}:%"
            deadline = time.monotonic() + 20
            while await last_query_start(like) < resumed:
                assert time.monotonic() < deadline
                await asyncio.sleep(0.05)
            err = c.stop(frozen)
            assert frozen.returncode == 0, err
    starts = [(int(line[1]), int(line[2])) for line in c.lines("start")]
    assert starts == [(7, other.pid)], starts  # never started by the worker that lost it
    assert "another operation" not in err


async def test_workers_starting_together_on_a_new_schema(tmp_path: Path) -> None:
    async with pgtest.fresh_schema() as schema:  # not created: the workers race to make it
        with cluster(tmp_path, schema) as c:
            procs = c.start(3, env={"JOBIFY_TEST_DECLARE": "1"})
            await asyncio.sleep(0)
            async with producing(schema) as app:
                work = app.tasks["work"]
                jobs = [await work.push(n) for n in range(30)]
                assert await asyncio.wait_for(asyncio.gather(*jobs), 30) == list(range(30))
            await c.listening()  # a worker still importing would die of the SIGTERM
            errors = [c.stop(proc) for proc in procs]
    for proc, err in zip(procs, errors, strict=True):
        assert proc.returncode == 0, err
        for bad in ("Traceback", "AssertionError", "never awaited", "Error"):
            assert bad not in err, err
