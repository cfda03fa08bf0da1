"""The shared tier under pressure, side by side with procrastinate (a yardstick only), on a
PostgreSQL server of its own (``initdb`` + ``pg_ctl`` in a temporary directory).

Per system: 2 worker processes (concurrency 32 each), 1 ms jobs, a producer process offering
``RATE`` jobs/s for the whole run (jobify: one durable ``push()`` per job, as a web app
does; procrastinate: one ``batch_defer_async`` per 10 ms tick, since one defer per job
exhausts its connection pool at this rate); consecutive cells of ``--phase`` seconds each:

- ``clean``: nothing else;
- ``xmin``: a session elsewhere holds a transaction open (``BEGIN; SELECT txid_current()``: the
  xmin horizon is pinned, vacuum removes nothing), on a busy server (``pgbench`` beside it);
- ``load15``: 1.5x the rate;
- ``rr4``: 4 REPEATABLE READ readers, each reading the job table in 2 s transactions;
- ``kill``: one worker is SIGKILLed 2 s in and replaced at once (its in-flight jobs wait for
  their lease).

Each cell reports done/s (jobs started in the cell per second), p99 pickup (start minus push of
the jobs pushed in the cell; a job not started yet counts with its wait so far), dead tuples and
total table size of the system's tables at the end of the cell, recovery s (after the cell ends:
how long until the p99 pickup of the jobs pushed in each second stays within 3x the clean p99
(at least 100 ms), over a 15 s window; for the kill, from the kill on), and the claim
statement's shared buffers per claimed job (from ``pg_stat_statements``: the cost that does
not depend on the machine). At the end the producer stops, the backlog drains and every job
must have run (jobify: none lost; jobs that ran twice are reported for both systems).

It runs minutes, so ``make bench`` runs it only with ``JOBIFY_BENCH_PRESSURE=1`` (phases of
``JOBIFY_BENCH_PRESSURE_PHASE`` s, default 20). The long form of the issue's figures:
``.venv/bin/python benchmarks/bench_pressure.py --phase 45``; ``--cells clean,xmin --phase
120 --explain`` also prints EXPLAIN (ANALYZE, BUFFERS) of the claim at the end of each cell;
``--systems jobify`` skips procrastinate; ``--src DIR`` runs the jobify workers on the code in
``DIR`` (another checkout's ``src``: an A/B of two versions of the workers, offered the same
load by this checkout's producer); ``--port`` picks
the server's port (default 5459).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import math
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import asyncpg

import _harness as h

PG_BIN = Path("/usr/lib/postgresql/15/bin")
RATE = 500
CONCURRENCY = 32
WORKERS = 2
RECOVERY_WINDOW = 15.0
SCHEMA = "pressure"


# -- the server -------------------------------------------------------------------------------


class Server:
    """A throw-away PostgreSQL server (as the ``postgres`` user when run as root)."""

    def __init__(self, port: int) -> None:
        self.port = port
        self.dir = Path(tempfile.mkdtemp(prefix="jobify-pressure-"))
        self.dsn = f"postgresql://postgres@127.0.0.1:{port}/postgres"

    def _as_owner(self, *cmd: str) -> list[str]:
        if os.geteuid() == 0:
            return ["runuser", "-u", "postgres", "--", *cmd]
        return list(cmd)

    def start(self) -> None:
        if os.geteuid() == 0:
            shutil.chown(self.dir, "postgres")
        data = self.dir / "data"
        subprocess.run(
            self._as_owner(
                str(PG_BIN / "initdb"), "-D", str(data), "-U", "postgres", "-A", "trust"
            ),
            check=True,
            capture_output=True,
        )
        preload = (PG_BIN.parent / "lib" / "pg_stat_statements.so").exists()
        conf = [
            f"port = {self.port}",
            "listen_addresses = '127.0.0.1'",
            f"unix_socket_directories = '{self.dir}'",
            "max_connections = 200",
            "shared_buffers = 128MB",
        ]
        if preload:
            conf += ["shared_preload_libraries = 'pg_stat_statements'"]
        with (data / "postgresql.conf").open("a") as f:
            f.write("\n".join(conf) + "\n")
        subprocess.run(
            self._as_owner(
                str(PG_BIN / "pg_ctl"), "-D", str(data), "-l", str(self.dir / "log"), "-w", "start"
            ),
            check=True,
            capture_output=True,
        )

    def stop(self) -> None:
        subprocess.run(
            self._as_owner(
                str(PG_BIN / "pg_ctl"), "-D", str(self.dir / "data"), "-m", "fast", "stop"
            ),
            check=False,
            capture_output=True,
        )
        shutil.rmtree(self.dir, ignore_errors=True)


# -- worker processes -------------------------------------------------------------------------


class Recorder:
    """Appends one ``n pushed started`` line per job started to a file."""

    def __init__(self, path: str) -> None:
        # Line-buffered: a SIGKILLed worker loses no line of the jobs it started.
        self.file = open(path, "a", buffering=1)  # noqa: SIM115 - closed in close()
        self.stop = asyncio.Event()

    def add(self, n: int, pushed: float) -> None:
        self.file.write(f"{n} {pushed:.6f} {time.time():.6f}\n")

    async def run(self) -> None:
        loop = asyncio.get_running_loop()
        loop.add_signal_handler(signal.SIGTERM, self.stop.set)
        print("ready", flush=True)
        await self.stop.wait()

    def close(self) -> None:
        self.file.close()


async def jobify_worker(dsn: str, out: str) -> None:
    from jobify import Jobify
    from jobify.storage.postgres import PostgresStorage

    recorder = Recorder(out)
    app = Jobify(storage=PostgresStorage(dsn, schema=SCHEMA), concurrency=CONCURRENCY)

    @app.task
    async def work(n: int, pushed: float) -> None:
        recorder.add(n, pushed)
        await asyncio.sleep(0.001)

    async with app:
        await recorder.run()
    recorder.close()


def procrastinate_app(dsn: str) -> tuple[Any, Any]:
    import procrastinate

    connector = procrastinate.PsycopgConnector(
        conninfo=dsn, kwargs={"options": f"-c search_path={SCHEMA}"}
    )
    app = procrastinate.App(connector=connector)
    recorder: list[Recorder] = []

    @app.task(name="work")
    async def work(n: int, pushed: float) -> None:
        recorder[0].add(n, pushed)
        await asyncio.sleep(0.001)

    return app, (work, recorder)


async def procrastinate_worker(dsn: str, out: str) -> None:
    app, (_, holder) = procrastinate_app(dsn)
    recorder = Recorder(out)
    holder.append(recorder)
    async with app.open_async():
        worker = asyncio.create_task(
            app.run_worker_async(concurrency=CONCURRENCY, install_signal_handlers=False)
        )
        await recorder.run()
        worker.cancel()
        await asyncio.gather(worker, return_exceptions=True)
    recorder.close()


# -- producers --------------------------------------------------------------------------------


class Producer:
    """Offers ``rate`` jobs/s in ticks of 10 ms, in a process of its own (as a web app
    would); writes ``n pushed`` once a push returned. Reads a new rate, or ``stop``, from
    stdin."""

    def __init__(self, system: str, dsn: str, out: str) -> None:
        self.system = system
        self.dsn = dsn
        self.rate = float(RATE)
        self.file = open(out, "a", buffering=1)  # noqa: SIM115 - closed in run()
        self.stopped = asyncio.Event()

    async def run(self) -> None:
        loop = asyncio.get_running_loop()
        loop.add_reader(sys.stdin.fileno(), self._command)
        try:
            if self.system == "jobify":
                await self._jobify()
            else:
                app, (work, _) = procrastinate_app(self.dsn)
                async with app.open_async():
                    # One batch per tick: one defer per job would need a pool connection
                    # each (procrastinate's pool then times them out by the thousand).
                    await self._loop(
                        lambda jobs: work.batch_defer_async(
                            *({"n": n, "pushed": t} for n, t in jobs)
                        )
                    )
        finally:
            self.file.close()

    async def _jobify(self) -> None:
        from jobify import Jobify
        from jobify.storage.postgres import PostgresStorage

        app = Jobify(storage=PostgresStorage(self.dsn, schema=SCHEMA), worker=False)

        @app.task
        async def work(n: int, pushed: float) -> None:
            return None

        async with app:
            await self._loop(lambda jobs: asyncio.gather(*(work.push(n, t) for n, t in jobs)))

    def _command(self) -> None:
        line = sys.stdin.readline()
        if not line:  # EOF: stop
            asyncio.get_running_loop().remove_reader(sys.stdin.fileno())
            self.stopped.set()
        else:
            self.rate = float(line)

    async def _loop(self, push: Any) -> None:
        owed = 0.0
        last = time.perf_counter()
        pending: set[asyncio.Task[None]] = set()
        n = 0
        print("ready", flush=True)
        while not self.stopped.is_set():
            await asyncio.sleep(0.01)
            now = time.perf_counter()
            owed += (now - last) * self.rate
            last = now
            due = int(owed)
            if due:
                owed -= due
                task = asyncio.ensure_future(self._push(push, range(n, n + due)))
                pending.add(task)
                task.add_done_callback(pending.discard)
                n += due
        await asyncio.gather(*pending, return_exceptions=True)
        self.file.write("stopped\n")

    async def _push(self, push: Any, numbers: range) -> None:
        at = time.time()
        try:
            await push([(n, at) for n in numbers])
        except Exception:
            self.file.write("".join(f"failed {n}\n" for n in numbers))
            return
        self.file.write("".join(f"{n} {at:.6f}\n" for n in numbers))


def read_pushed(path: Path) -> tuple[list[float], int]:
    """Push time by job number (NaN: not pushed, or its push failed), and the failures."""
    times: dict[int, float] = {}
    failed = 0
    for line in path.read_text().splitlines():
        parts = line.split()
        if len(parts) == 2 and parts[0] != "failed":
            times[int(parts[0])] = float(parts[1])
        elif parts[:1] == ["failed"]:
            failed += 1
    pushed = [math.nan] * (max(times, default=-1) + 1)
    for n, at in times.items():
        pushed[n] = at
    return pushed, failed


# -- disturbances -----------------------------------------------------------------------------


@contextlib.asynccontextmanager
async def held_xmin(dsn: str) -> Any:
    conn = await asyncpg.connect(dsn)
    tx = conn.transaction()
    await tx.start()
    await conn.fetchval("SELECT txid_current()")
    pgbench = subprocess.Popen(  # noqa: ASYNC220 - started once per cell
        [str(PG_BIN / "pgbench"), "-n", "-c", "4", "-j", "1", "-R", "400", "-T", "100000", dsn],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        yield
    finally:
        pgbench.terminate()
        pgbench.wait()
        await tx.rollback()
        await conn.close()


@contextlib.asynccontextmanager
async def readers(dsn: str, table: str) -> Any:
    async def read(offset: float) -> None:
        conn = await asyncpg.connect(dsn)
        try:
            await asyncio.sleep(offset)
            while True:
                async with conn.transaction(isolation="repeatable_read"):
                    await conn.fetchval(f"SELECT count(*) FROM {table}")
                    await asyncio.sleep(2.0)
                    await conn.fetchval(f"SELECT count(*) FROM {table}")
        finally:
            await conn.close()

    tasks = [asyncio.create_task(read(i * 0.5)) for i in range(4)]
    try:
        yield
    finally:
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)


# -- measuring --------------------------------------------------------------------------------


async def table_stats(dsn: str) -> tuple[int, int]:
    """Dead tuples and total size (bytes) of the tables in SCHEMA."""
    conn = await asyncpg.connect(dsn)
    try:
        row = await conn.fetchrow(
            "SELECT coalesce(sum(n_dead_tup), 0)::bigint AS dead,"
            " coalesce(sum(pg_total_relation_size(relid)), 0)::bigint AS size"
            " FROM pg_stat_user_tables WHERE schemaname = $1",
            SCHEMA,
        )
        return int(row["dead"]), int(row["size"])
    finally:
        await conn.close()


CLAIM_LIKE = {"jobify": "%SET locked_by =%", "procrastinate": "%procrastinate_fetch_job%"}


async def claim_buffers(dsn: str, system: str) -> float:
    """Shared buffers (hit + read) the claim statement touched so far, in this database."""
    conn = await asyncpg.connect(dsn)
    try:
        if not await conn.fetchval(
            "SELECT count(*) FROM pg_extension WHERE extname = 'pg_stat_statements'"
        ):
            return float("nan")
        value = await conn.fetchval(
            "SELECT coalesce(sum(shared_blks_hit + shared_blks_read), 0) FROM pg_stat_statements"
            " WHERE dbid = (SELECT oid FROM pg_database WHERE datname = current_database())"
            " AND query LIKE $1 AND query NOT LIKE '%pg_stat_statements%'",
            CLAIM_LIKE[system],
        )
        return float(value)
    finally:
        await conn.close()


async def explain_claim(dsn: str) -> str:
    """EXPLAIN (ANALYZE, BUFFERS) of the claim (rolled back), from the start of the index (as
    every claim did before the cursor) and from the earliest live row (where the cursor
    of a worker stands)."""
    from jobify.storage.sql import postgres as sql

    text, names = sql.bind(sql.CLAIM, f'"{SCHEMA}"')
    conn = await asyncpg.connect(dsn)
    plans: list[str] = []
    try:
        low = await conn.fetchval(
            f"SELECT min(exec_at) FROM {SCHEMA}.jobs WHERE status = 'scheduled'"
        )
        for start in (float("-inf"), float("-inf") if low is None else low):
            now = time.time()
            values = {
                "worker": "explain",
                "until": now + 30,
                "due": now + 0.25,
                "tasks": ["work"],
                "now": now,
                "limit": CONCURRENCY,
                "from": start,
            }
            try:
                async with conn.transaction():
                    rows = await conn.fetch(
                        "EXPLAIN (ANALYZE, BUFFERS) " + text, *(values[n] for n in names)
                    )
                    raise _Rollback("\n".join(r[0] for r in rows))
            except _Rollback as done:
                plans.append(f"-- from {start}:\n{done}")
    finally:
        await conn.close()
    return "\n".join(plans)


class _Rollback(Exception):
    pass


def read_runs(paths: list[Path]) -> dict[int, list[float]]:
    """Job number -> start times (more than one: it ran more than once)."""
    starts: dict[int, list[float]] = {}
    for path in paths:
        if not path.exists():
            continue
        for line in path.read_text().splitlines():
            parts = line.split()
            if len(parts) == 3:
                starts.setdefault(int(parts[0]), []).append(float(parts[2]))
    return starts


def cell_figures(
    pushed: list[float], starts: dict[int, list[float]], t0: float, t1: float, end: float
) -> dict[str, float]:
    began = [min(s) for s in starts.values()]
    done = sum(1 for t in began if t0 <= t < t1)
    waits = [
        (min(starts[n]) if n in starts else end) - at
        for n, at in enumerate(pushed)
        if t0 <= at < t1  # False for NaN: not pushed
    ]
    return {
        "done_s": done / (t1 - t0),
        "offered_s": len(waits) / (t1 - t0),
        "p99_s": h.percentile(waits, 99) if waits else float("nan"),
    }


def recovery(
    pushed: list[float], starts: dict[int, list[float]], t1: float, end: float, limit: float
) -> float:
    """Seconds after ``t1`` until the p99 pickup of the jobs pushed in each second stays
    within ``limit`` (over RECOVERY_WINDOW seconds)."""
    buckets: dict[int, list[float]] = {}
    for n, at in enumerate(pushed):
        if t1 <= at < t1 + RECOVERY_WINDOW:
            wait = (min(starts[n]) if n in starts else end) - at
            buckets.setdefault(int(at - t1), []).append(wait)
    late = [second + 1 for second, waits in buckets.items() if h.percentile(waits, 99) > limit]
    return float(max(late, default=0))


async def measure_cell(
    cell: dict[str, Any], dsn: str, system: str, buffers0: float, *, explain: bool
) -> None:
    """Called inside the disturbance: what it did to the tables, before it ends."""
    cell["t1"] = time.time()
    cell["dead"], cell["size"] = await table_stats(dsn)
    cell["buffers"] = await claim_buffers(dsn, system) - buffers0
    cell["plan"] = await explain_claim(dsn) if explain else ""


# -- one system -------------------------------------------------------------------------------


def spawn(role: str, system: str, dsn: str, out: Path, src: str | None) -> subprocess.Popen[str]:
    env = dict(os.environ)
    if src is not None and system == "jobify":
        env["PYTHONPATH"] = src + os.pathsep + env.get("PYTHONPATH", "")
    proc = subprocess.Popen(
        [sys.executable, __file__, role, system, dsn, str(out)],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
        env=env,
    )
    assert proc.stdout is not None
    line = proc.stdout.readline().strip()
    h.expect(line == "ready", f"{system} worker did not start: {line!r}")
    return proc


async def prepare(server: Server, system: str) -> str:
    conn = await asyncpg.connect(server.dsn)
    try:
        await conn.execute(f"CREATE DATABASE {system}_p")
    finally:
        await conn.close()
    dsn = server.dsn.rsplit("/", 1)[0] + f"/{system}_p"
    conn = await asyncpg.connect(dsn)
    try:
        await conn.execute(f"CREATE SCHEMA {SCHEMA}")
        with contextlib.suppress(asyncpg.PostgresError):
            await conn.execute("CREATE EXTENSION pg_stat_statements")
    finally:
        await conn.close()
    subprocess.run(  # noqa: ASYNC221 - setup, before the clock starts
        [str(PG_BIN / "pgbench"), "-i", "-q", "-s", "5", dsn], check=True, capture_output=True
    )
    if system == "procrastinate":
        app, _ = procrastinate_app(dsn)
        async with app.open_async():
            await app.schema_manager.apply_schema_async()
    else:
        from jobify.storage.postgres import PostgresStorage

        store = PostgresStorage(dsn, schema=SCHEMA)
        await store.startup()
        await store.shutdown()
    return dsn


async def run_system(system: str, server: Server, args: argparse.Namespace) -> list[dict[str, Any]]:
    dsn = await prepare(server, system)
    outdir = Path(tempfile.mkdtemp(prefix=f"pressure-{system}-"))
    files = [outdir / f"w{i}" for i in range(WORKERS)]
    workers = [spawn("--worker", system, dsn, f, args.src) for f in files]
    # The producer runs this checkout's code with --src too: both sides of an A/B are
    # offered the same load by the same producer.
    producer = spawn("--producer", system, dsn, outdir / "pushed", None)

    def rate(value: float) -> None:
        assert producer.stdin is not None
        producer.stdin.write(f"{value}\n")
        producer.stdin.flush()

    table = f"{SCHEMA}.jobs" if system == "jobify" else f"{SCHEMA}.procrastinate_jobs"
    cells: list[dict[str, Any]] = []
    try:
        await asyncio.sleep(3.0)  # warm up
        for name in args.cells:
            buffers0 = await claim_buffers(dsn, system)
            t0 = time.time()
            cell: dict[str, Any] = {"cell": name, "t0": t0}
            explain = args.explain and system == "jobify" and name in ("clean", "xmin")

            async def measure() -> None:
                await measure_cell(cell, dsn, system, buffers0, explain=explain)  # noqa: B023

            if name == "xmin":
                async with held_xmin(dsn):
                    await asyncio.sleep(args.phase)
                    await measure()
            elif name == "rr4":
                async with readers(dsn, table):
                    await asyncio.sleep(args.phase)
                    await measure()
            elif name == "load15":
                rate(RATE * 1.5)
                await asyncio.sleep(args.phase)
                await measure()
                rate(RATE)
            elif name == "kill":
                await asyncio.sleep(2.0)
                cell["killed_at"] = time.time()
                workers[0].kill()
                workers[0].wait()
                files.append(outdir / f"w{len(files)}")
                workers[0] = spawn("--worker", system, dsn, files[-1], args.src)
                await asyncio.sleep(args.phase - 2.0)
                await measure()
            else:
                await asyncio.sleep(args.phase)
                await measure()
            cells.append(cell)
            print(
                f"  {system} {name}: dead {cell['dead']:,}, {cell['size'] / 1e6:.1f} MB",
                file=sys.stderr,
            )
        await asyncio.sleep(RECOVERY_WINDOW)
    finally:
        rate(0)
        assert producer.stdin is not None
        producer.stdin.close()  # stop: the last pushes complete
    stopped = time.time() + 30
    while time.time() < stopped and "stopped" not in (outdir / "pushed").read_text()[-20:]:  # noqa: ASYNC110 - another process writes the file
        await asyncio.sleep(0.5)
    producer.kill()  # it may still be fetching results for its handles
    producer.wait()
    pushed, failed = read_pushed(outdir / "pushed")
    expected = sum(1 for at in pushed if at == at)
    deadline = time.time() + 90
    while time.time() < deadline:
        if len(read_runs(files)) >= expected:
            break
        await asyncio.sleep(2.0)
    for proc in workers:
        proc.terminate()
    for proc in workers:
        proc.wait(timeout=30)
    end = time.time()
    starts = read_runs(files)
    clean_p99 = 0.0
    for cell in cells:
        figures = cell_figures(pushed, starts, cell["t0"], cell["t1"], end)
        cell.update(figures)
        if cell["cell"] == "clean":
            clean_p99 = figures["p99_s"]
        jobs = figures["done_s"] * (cell["t1"] - cell["t0"])
        cell["buffers_per_job"] = cell["buffers"] / jobs if jobs else float("nan")
    limit = max(0.1, 3 * clean_p99)
    for cell in cells:
        # After the disturbance ends; for the kill, from the kill on (the killed worker's
        # in-flight jobs wait for their lease by design: they were pushed before it).
        since = cell.get("killed_at", cell["t1"])
        cell["recovery_s"] = recovery(pushed, starts, since, end, limit)
        cell["system"] = system
    ran = sum(len(s) for s in starts.values())
    cells.append(
        {
            "system": system,
            "cell": "total",
            "pushed": expected,
            "push_failed": failed,
            "lost": sum(1 for n, at in enumerate(pushed) if at == at and n not in starts),
            "twice": ran - len(starts),
        }
    )
    shutil.rmtree(outdir, ignore_errors=True)
    return cells


# -- report -----------------------------------------------------------------------------------


def report(cells: list[dict[str, Any]]) -> tuple[str, bool]:
    lines = [
        "| cell | system | done/s (offered) | p99 pickup | dead tuples | tables MB "
        "| recovery s | claim buffers/job |",
        "|---|---|---|---|---|---|---|---|",
    ]
    ok = True
    totals: list[str] = []
    by: dict[tuple[str, str], dict[str, Any]] = {}
    for c in cells:
        by[(c["system"], c["cell"])] = c
        if c["cell"] == "total":
            totals.append(
                f"{c['system']}: {c['pushed']:,} pushed, {c['push_failed']} pushes failed, "
                f"{c['lost']} never ran, {c['twice']} ran more than once"
            )
            if c["system"] == "jobify" and (c["lost"] or c["push_failed"]):
                ok = False
            continue
        lines.append(
            f"| {c['cell']} | {c['system']} | {c['done_s']:.0f} ({c['offered_s']:.0f}) "
            f"| {c['p99_s'] * 1000:.0f} ms | {c['dead']:,} | {c['size'] / 1e6:.1f} "
            f"| {c['recovery_s']:.2f} | {c['buffers_per_job']:.1f} |"
        )
    xmin, clean = by.get(("jobify", "xmin")), by.get(("jobify", "clean"))
    if xmin is not None:
        ok = ok and xmin["done_s"] >= 0.9 * xmin["offered_s"] and xmin["p99_s"] <= 1.0
        ok = ok and xmin["recovery_s"] <= 10.0
        if clean is not None and clean["buffers_per_job"] == clean["buffers_per_job"]:
            ok = ok and xmin["buffers_per_job"] <= 2 * clean["buffers_per_job"]
    return "\n".join([*lines, "", *totals]), ok


def main() -> int:
    argv = sys.argv[1:]
    if argv[:1] == ["--worker"]:
        system, dsn, out = argv[1:4]
        asyncio.run((jobify_worker if system == "jobify" else procrastinate_worker)(dsn, out))
        return 0
    if argv[:1] == ["--producer"]:
        system, dsn, out = argv[1:4]
        asyncio.run(Producer(system, dsn, out).run())
        return 0
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--phase", type=float, default=None)
    parser.add_argument("--cells", default="clean,xmin,load15,rr4,kill")
    parser.add_argument("--systems", default="jobify,procrastinate")
    parser.add_argument("--src", default=None)
    parser.add_argument("--port", type=int, default=5459)
    parser.add_argument("--explain", action="store_true")
    args = parser.parse_args(argv)
    if args.phase is None:
        if not argv and not os.environ.get("JOBIFY_BENCH_PRESSURE"):
            print("skipped: runs minutes; set JOBIFY_BENCH_PRESSURE=1 (or pass options)")
            return 0
        args.phase = float(os.environ.get("JOBIFY_BENCH_PRESSURE_PHASE", "20"))
    args.cells = args.cells.split(",")
    if not (PG_BIN / "initdb").exists():
        print(f"skipped: no PostgreSQL 15 binaries in {PG_BIN}")
        return 0
    server = Server(args.port)
    server.start()
    try:
        cells: list[dict[str, Any]] = []
        for system in args.systems.split(","):
            cells += asyncio.run(run_system(system, server, args))
    finally:
        server.stop()
    text, ok = report(cells)
    print(text)
    for c in cells:
        if c.get("plan"):
            print(f"\nEXPLAIN of the claim at the end of {c['cell']}:\n{c['plan']}")
    print(
        f"\n{WORKERS} worker processes x concurrency {CONCURRENCY}, 1 ms jobs, {RATE} jobs/s "
        f"offered, {args.phase:.0f} s per cell; jobify targets in the xmin cell: done >= 90 % "
        "of offered, p99 pickup <= 1 s, recovery <= 10 s, claim buffers/job <= 2x clean."
    )
    print("\nall targets met" if ok else "\nTARGETS MISSED")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
