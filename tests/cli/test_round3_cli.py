"""What new users hit on the command line: a run history that fits a 100-column terminal, an
empty list on PostgreSQL that names the schema, and a worker that states the concurrency in
force."""

from __future__ import annotations

import asyncio
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pgtest
from jobify import Jobify
from jobify.storage import PostgresStorage, SQLiteStorage

from .conftest import cli_env, jobify


async def test_history_fits_a_100_column_terminal(tmp_path: Path) -> None:
    db = tmp_path / "jobs.db"
    app = Jobify(storage=SQLiteStorage(db))

    @app.task(name="notifications.outbound.email:send_the_quarterly_newsletter_to_everyone")
    async def send(address: str) -> None:
        raise ConnectionError(f"{address}: the mail server refused the connection after 30s")

    async with app:
        for n in range(3):
            await (await send.push(f"subscriber-{n}@example.com")).wait()
    result = jobify("jobs", "history", "--storage", f"sqlite:///{db}", env=cli_env(COLUMNS="100"))
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert len(lines) > 3
    assert max(len(line) for line in lines) <= 100, result.stdout
    # Long cells wrap instead of being lost: the error is all there, across lines.
    assert "refused" in result.stdout and "ConnectionError" in result.stdout


async def test_an_empty_list_on_postgresql_names_the_schema() -> None:
    async with pgtest.fresh_schema() as schema:
        storage = pgtest.storage(schema)
        await storage.startup()  # creates the schema's tables
        await storage.shutdown()
        url = f"{pgtest.DSN}?schema={schema}"
        for command in (["jobs", "list"], ["jobs", "history"]):
            result = jobify(*command, "--storage", url)
            assert result.returncode == 0, result.stderr
            assert f"(schema '{schema}')" in result.stderr, result.stderr


async def test_the_worker_states_the_shared_store_default_concurrency(tmp_path: Path) -> None:
    async with pgtest.fresh_schema() as schema:
        app = Jobify(storage=PostgresStorage(pgtest.DSN, schema=schema))
        assert app.concurrency_in_force == (100, "shared-store default")
        (tmp_path / "pgapp.py").write_text(
            textwrap.dedent(
                f"""
                from jobify import Jobify
                from jobify.storage import PostgresStorage

                app = Jobify(storage=PostgresStorage({pgtest.DSN!r}, schema={schema!r}))

                @app.task(name="noop")
                async def noop() -> None:
                    pass
                """
            )
        )
        seen = await asyncio.to_thread(_worker_start_line, tmp_path)
    assert "concurrency 100 (shared-store default)" in seen, seen


def _worker_start_line(project: Path) -> str:
    """Start ``jobify worker pgapp:app``, read its log up to the start-up line, stop it."""
    worker = subprocess.Popen(
        [sys.executable, "-m", "jobify", "worker", "pgapp:app"],
        cwd=project,
        env=cli_env(PYTHONPATH=str(project)),
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert worker.stderr is not None
        deadline = time.monotonic() + 60
        seen = ""
        while "worker started" not in seen:
            line = worker.stderr.readline()
            assert line or worker.poll() is None, seen
            assert time.monotonic() < deadline, seen
            seen += line
        worker.send_signal(signal.SIGTERM)
        worker.wait(timeout=30)
        assert worker.returncode == 0
        return seen
    finally:
        if worker.poll() is None:
            worker.kill()
            worker.wait()
        assert worker.stderr is not None
        worker.stderr.close()
