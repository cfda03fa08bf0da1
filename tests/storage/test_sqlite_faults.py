"""SQLiteStorage against real trouble: other processes, bad files, locked databases."""

from __future__ import annotations

import asyncio
import os
import shutil
import signal
import sqlite3
import subprocess
import sys
import time
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest

from jobify.exceptions import StorageError, StorageLockedError
from jobify.storage import JobRecord, SQLiteStorage

from .owners import start_owner

# Saves records one after the other, concurrently in groups, printing each id once saved.
WRITER = """
import asyncio, sys
from jobify.storage import JobRecord, SQLiteStorage

async def main():
    storage = SQLiteStorage(sys.argv[1])
    await storage.startup()

    async def write(job_id):
        await storage.save(JobRecord(job_id, "task", 1.0, b"args", b"trigger"))
        print(job_id, flush=True)

    n = 0
    while True:
        await asyncio.gather(*(write(f"job-{n + i}") for i in range(20)))
        n += 20

asyncio.run(main())
"""


def record(job_id: str) -> JobRecord:
    return JobRecord(job_id, "task", 1.0, b"args", b"trigger")


@pytest.fixture
async def holder(tmp_path: Path) -> AsyncIterator[asyncio.subprocess.Process]:
    """Another process that owns ``tmp_path / "jobs.db"``."""
    process, _ = await start_owner(tmp_path / "jobs.db")
    try:
        yield process
    finally:
        if process.returncode is None:
            process.kill()
        await process.wait()


async def test_a_file_held_by_another_process_is_refused(
    tmp_path: Path, holder: asyncio.subprocess.Process
) -> None:
    db = tmp_path / "jobs.db"
    with pytest.raises(StorageLockedError) as caught:
        await SQLiteStorage(db).startup()
    message = str(caught.value)
    assert str(db) in message
    assert f"pid {holder.pid}" in message
    assert "PostgresStorage" in message

    assert holder.stdin is not None
    holder.stdin.close()
    assert await asyncio.wait_for(holder.wait(), timeout=30) == 0
    storage = SQLiteStorage(db)
    await storage.startup()  # released on a clean shutdown
    await storage.shutdown()


async def test_the_lock_of_a_killed_process_is_taken_over(
    tmp_path: Path, holder: asyncio.subprocess.Process
) -> None:
    holder.send_signal(signal.SIGKILL)
    await holder.wait()
    lock_file = tmp_path / "jobs.db.lock"
    assert lock_file.read_text().strip() == str(holder.pid)  # left behind, stale

    storage = SQLiteStorage(tmp_path / "jobs.db")
    await storage.startup()
    assert lock_file.read_text().strip() == str(os.getpid())
    await storage.shutdown()
    assert lock_file.read_text() == ""


async def test_a_stale_lock_file_with_a_dead_pid_is_taken_over(tmp_path: Path) -> None:
    (tmp_path / "jobs.db.lock").write_text("999999999\n")
    storage = SQLiteStorage(tmp_path / "jobs.db")
    await storage.startup()
    await storage.shutdown()


async def test_a_second_storage_in_the_same_process_is_refused(tmp_path: Path) -> None:
    first = SQLiteStorage(tmp_path / "jobs.db")
    await first.startup()
    # Said plainly: the holder is this process (its own pid would only puzzle the reader).
    with pytest.raises(StorageLockedError, match="another app in this same process"):
        await SQLiteStorage(tmp_path / "jobs.db").startup()
    await first.shutdown()


@pytest.mark.parametrize(
    "damage",
    [
        pytest.param(lambda data: os.urandom(8192), id="random-bytes"),
        pytest.param(lambda data: b"\xde\xad" * 50 + data[100:], id="garbage-header"),
        pytest.param(lambda data: data[:1000], id="truncated"),
    ],
)
async def test_a_corrupted_file_is_a_clear_error_at_startup(tmp_path: Path, damage: object) -> None:
    db = tmp_path / "jobs.db"
    storage = SQLiteStorage(db)
    await storage.startup()
    await storage.save_many([record(f"id-{i}") for i in range(200)])
    await storage.shutdown()
    damaged = damage(db.read_bytes())  # type: ignore[operator]
    db.write_bytes(damaged)

    with pytest.raises(StorageError) as caught:
        await SQLiteStorage(db).startup()
    message = str(caught.value)
    assert str(db) in message
    assert "corrupted" in message
    assert "backup" in message
    assert db.read_bytes() == damaged  # never "repaired" behind the user's back

    db.unlink()  # after moving the bad file away, the same path works (lock was released)
    fresh = SQLiteStorage(db)
    await fresh.startup()
    await fresh.shutdown()


class ReadOnly:
    """Makes paths read-only in a way that also stops root, and undoes it afterwards.

    Root ignores file modes, so as root the immutable attribute (``chattr +i``) is used: the
    kernel then refuses writes to the file, or new entries in the directory, even to root.
    """

    def __init__(self) -> None:
        self._undo: list[list[str]] = []

    def __call__(self, path: Path) -> None:
        if os.geteuid() != 0:
            path.chmod(0o555 if path.is_dir() else 0o444)
            self._undo.append(["chmod", "u+w", str(path)])
            return
        chattr = shutil.which("chattr")
        done = chattr and subprocess.run([chattr, "+i", str(path)], capture_output=True)
        if not done or done.returncode != 0:
            pytest.skip(
                "running as root, where file modes do not stop writes, and `chattr +i` is "
                "unavailable here: a read-only store cannot be simulated"
            )
        self._undo.append([str(chattr), "-i", str(path)])

    def undo(self) -> None:
        for command in reversed(self._undo):
            subprocess.run(command, check=False, capture_output=True)


@pytest.fixture
def read_only() -> Iterator[ReadOnly]:
    maker = ReadOnly()
    try:
        yield maker
    finally:
        maker.undo()


async def test_a_read_only_file_is_a_clear_error(tmp_path: Path, read_only: ReadOnly) -> None:
    db = tmp_path / "jobs.db"
    storage = SQLiteStorage(db)
    await storage.startup()
    await storage.save(record("a"))
    await storage.shutdown()
    read_only(db)

    with pytest.raises(StorageError) as caught:
        await SQLiteStorage(db).startup()
    assert str(db) in str(caught.value)
    assert "read-only" in str(caught.value)


async def test_a_read_only_directory_is_a_clear_error(tmp_path: Path, read_only: ReadOnly) -> None:
    directory = tmp_path / "ro"
    directory.mkdir()
    db = directory / "jobs.db"
    db.touch()  # the file is writable, but no -wal, -shm or lock file can be created
    read_only(directory)

    with pytest.raises(StorageError) as caught:
        await SQLiteStorage(db).startup()
    assert str(db) in str(caught.value)
    assert "directory must be writable" in str(caught.value)


@pytest.fixture
def busy_db(tmp_path: Path) -> Iterator[tuple[Path, sqlite3.Connection]]:
    """A database file and another connection that can hold its write lock."""
    db = tmp_path / "jobs.db"
    other = sqlite3.connect(db, isolation_level=None, check_same_thread=False)
    other.execute("PRAGMA journal_mode = WAL")
    try:
        yield db, other
    finally:
        other.close()


async def test_a_database_locked_too_long_is_a_clear_error(
    busy_db: tuple[Path, sqlite3.Connection], caplog: pytest.LogCaptureFixture
) -> None:
    db, other = busy_db
    storage = SQLiteStorage(db, timeout=0.2)
    await storage.startup()
    other.execute("BEGIN IMMEDIATE")
    storage.save_soon(record("soon"))
    started = time.monotonic()
    with caplog.at_level("ERROR", logger="jobify.storage"):
        outcomes = await asyncio.gather(
            storage.save(record("a")), storage.delete("b"), return_exceptions=True
        )
    elapsed = time.monotonic() - started
    assert 0.15 < elapsed < 5
    for outcome in outcomes:  # every caller of the failed batch learns about it
        assert isinstance(outcome, StorageError)
        assert str(db) in str(outcome)
        assert "locked" in str(outcome)
        assert isinstance(outcome.__cause__, sqlite3.OperationalError)
    assert any("1 queued write(s)" in r.getMessage() for r in caplog.records)

    other.execute("ROLLBACK")
    await storage.save(record("c"))  # the storage recovers once the lock is gone
    assert [r.job_id for r in await storage.load()] == ["c"]
    await storage.shutdown()


async def test_a_database_unlocked_in_time_is_waited_for(
    busy_db: tuple[Path, sqlite3.Connection],
) -> None:
    db, other = busy_db
    storage = SQLiteStorage(db, timeout=10)
    await storage.startup()
    other.execute("BEGIN IMMEDIATE")
    other.execute("CREATE TABLE other_app (x)")
    asyncio.get_running_loop().call_later(0.1, other.execute, "COMMIT")
    await storage.save(record("a"))
    assert await storage.get("a") == record("a")
    await storage.shutdown()


async def test_startup_waits_for_a_locked_database_then_fails_clearly(
    busy_db: tuple[Path, sqlite3.Connection],
) -> None:
    db, other = busy_db
    other.execute("BEGIN IMMEDIATE")
    with pytest.raises(StorageError, match="locked") as caught:
        await SQLiteStorage(db, timeout=0.2).startup()
    assert str(db) in str(caught.value)
    other.execute("ROLLBACK")
    storage = SQLiteStorage(db, timeout=0.2)
    await storage.startup()
    await storage.shutdown()


async def test_a_cancelled_startup_releases_the_file(
    busy_db: tuple[Path, sqlite3.Connection],
) -> None:
    db, other = busy_db
    other.execute("BEGIN IMMEDIATE")  # startup's migration has to wait for this
    starting = asyncio.create_task(SQLiteStorage(db, timeout=0.5).startup())
    await asyncio.sleep(0.1)
    starting.cancel()
    with pytest.raises(asyncio.CancelledError):
        await starting
    other.execute("ROLLBACK")
    # The cancelled open finishes in its thread, then closes and unlocks the file.
    deadline = time.monotonic() + 5
    while True:
        try:
            storage = SQLiteStorage(db)
            await storage.startup()
            break
        except StorageLockedError:
            assert time.monotonic() < deadline
            await asyncio.sleep(0.05)
    await storage.shutdown()


async def test_shutdown_with_uncommittable_writes_fails_them_all_and_still_closes(
    busy_db: tuple[Path, sqlite3.Connection], caplog: pytest.LogCaptureFixture
) -> None:
    db, other = busy_db
    storage = SQLiteStorage(db, timeout=0.2)
    await storage.startup()
    other.execute("BEGIN IMMEDIATE")
    storage.save_soon(record("first"))  # its batch starts committing (and waiting)
    await asyncio.sleep(0.05)
    second = asyncio.create_task(storage.save(record("second")))  # queued behind it
    await asyncio.sleep(0)
    with caplog.at_level("ERROR", logger="jobify.storage"), pytest.raises(StorageError):
        await storage.shutdown()
    with pytest.raises(StorageError, match="locked"):
        await second
    with pytest.raises(StorageError, match="shut down"):
        await storage.load()
    other.execute("ROLLBACK")
    reopened = SQLiteStorage(db)
    await reopened.startup()  # closed and released despite the failure
    assert await reopened.load() == []
    await reopened.shutdown()


async def test_every_write_that_returned_survives_kill_9(tmp_path: Path) -> None:
    db = tmp_path / "jobs.db"
    process = await asyncio.create_subprocess_exec(
        sys.executable, "-c", WRITER, str(db), stdout=asyncio.subprocess.PIPE
    )
    assert process.stdout is not None
    saved = [await asyncio.wait_for(process.stdout.readline(), timeout=30) for _ in range(500)]
    process.send_signal(signal.SIGKILL)
    rest, _ = await process.communicate()
    saved_ids = {line.decode().strip() for line in [*saved, *rest.splitlines()]} - {""}

    storage = SQLiteStorage(db)  # the dead writer's lock is gone with it
    await storage.startup()
    stored_ids = {r.job_id for r in await storage.load()}
    await storage.shutdown()
    assert len(saved_ids) >= 500
    assert saved_ids <= stored_ids
