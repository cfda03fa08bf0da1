"""Pushes in flight while PostgreSQL restarts hard (``pg_ctl restart -m immediate``): none is
failed (a write whose commit outcome is unknown is sent again within ``retry_timeout``), none
is lost, none is doubled. It needs a server of its own, started here in a temporary
directory (the shared test server is never restarted)."""

from __future__ import annotations

import asyncio
import os
import shutil
import subprocess
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from jobify.exceptions import StorageError
from jobify.storage import PostgresStorage
from jobify.storage.base import JobRecord

BIN = Path(os.environ.get("JOBIFY_TEST_PG_BIN", "/usr/lib/postgresql/15/bin"))
PORT = int(os.environ.get("JOBIFY_TEST_PG_PORT", "5443"))


def _as_server_user(args: list[str]) -> list[str]:
    """PostgreSQL refuses to run as root: run it as ``postgres`` when the tests are root."""
    if os.geteuid() == 0:
        return ["runuser", "-u", "postgres", "--", *args]
    return args


def _run(args: list[str], *, check: bool = True) -> None:
    subprocess.run(_as_server_user(args), check=check, capture_output=True, timeout=60)


@pytest.fixture
def home() -> Iterator[Path]:
    """A directory the server's user can reach (pytest's own lives under a private one)."""
    with tempfile.TemporaryDirectory(prefix="jobify-pg-") as name:
        if os.geteuid() == 0:
            shutil.chown(name, "postgres")
        yield Path(name)


@pytest.fixture
def server(home: Path) -> Iterator[str]:
    if not (BIN / "initdb").exists():
        pytest.skip(f"no PostgreSQL binaries in {BIN} (set JOBIFY_TEST_PG_BIN)")
    tmp_path = home
    data = tmp_path / "pgdata"
    _run([str(BIN / "initdb"), "-A", "trust", "-U", "postgres", "-D", str(data)])
    ctl = [str(BIN / "pg_ctl"), "-D", str(data), "-w", "-l", str(tmp_path / "log")]
    options = f"-p {PORT} -k {tmp_path} -c listen_addresses=127.0.0.1 -c fsync=off"
    _run([*ctl, "-o", options, "start"])
    try:
        yield f"postgresql://postgres@127.0.0.1:{PORT}/postgres"
    finally:
        _run([*ctl, "-m", "immediate", "stop"], check=False)


async def test_pushes_survive_an_immediate_restart(server: str, home: Path) -> None:
    storage = PostgresStorage(server, schema="restart", retry_timeout=30.0, pool_size=4)
    await storage.startup()
    failures: list[StorageError] = []
    pushed: list[str] = []
    stop = asyncio.Event()
    target = 200
    reached = asyncio.Event()

    async def push(k: int) -> None:
        n = 0
        while not stop.is_set():
            job_id = f"p{k}-{n}"
            try:
                await storage.save(JobRecord(job_id, "t", time.time() + 3600, b"a", b"t"))
            except StorageError as exc:
                failures.append(exc)
            else:
                pushed.append(job_id)
                if len(pushed) >= target:
                    reached.set()
            n += 1

    pushers = [asyncio.create_task(push(k)) for k in range(8)]
    try:
        await asyncio.wait_for(reached.wait(), 30)
        ctl = [str(BIN / "pg_ctl"), "-D", str(home / "pgdata"), "-w", "-m", "immediate"]
        restart = await asyncio.create_subprocess_exec(
            *_as_server_user([*ctl, "restart"]),
            stdout=asyncio.subprocess.DEVNULL,
            stderr=asyncio.subprocess.DEVNULL,
        )
        assert await restart.wait() == 0
        reached.clear()
        target = len(pushed) + 200
        await asyncio.wait_for(reached.wait(), 30)  # pushes go on once the server is back
    finally:
        stop.set()
        await asyncio.gather(*pushers)
    try:
        stored = [record.job_id for record in await storage.load()]
    finally:
        await storage.shutdown()
    assert failures == []
    assert sorted(stored) == sorted(pushed)  # every push that returned is there, once
