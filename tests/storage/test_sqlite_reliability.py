"""SQLiteStorage at the edges: poison writes, a full disk, a deleted file, links, busy retries."""

from __future__ import annotations

import asyncio
import os
import sqlite3
import sys
import threading
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from jobify.exceptions import StorageError, StorageLockedError
from jobify.storage import JobRecord, SQLiteStorage, filelock
from jobify.storage.base import CommandAction, HistoryQuery, RunRecord
from jobify.storage.sqlite_connection import retrying

from .own_connection import on_own_connection
from .owners import start_owner, stop_owner


def record(job_id: str, arguments: bytes = b"args") -> JobRecord:
    return JobRecord(job_id, "task", 1.0, arguments, b"trigger")


@pytest.fixture
async def storage(tmp_path: Path) -> AsyncIterator[SQLiteStorage]:
    store = SQLiteStorage(tmp_path / "jobs.db")
    await store.startup()
    try:
        yield store
    finally:
        await store.shutdown()


async def on_connection(storage: SQLiteStorage, statement: str, *args: int) -> Any:
    """Run something on the storage's own connection, in its thread (a fault injection)."""

    def work(conn: sqlite3.Connection) -> Any:
        if statement == "setlimit":
            return conn.setlimit(*args)
        return conn.execute(statement).fetchone()

    return await on_own_connection(storage, work)


def ids(records: list[JobRecord]) -> list[str]:
    return sorted(r.job_id for r in records)


# -- poison writes ----------------------------------------------------------------------------


async def test_a_poison_write_is_retried_out_of_its_batch(
    storage: SQLiteStorage, caplog: pytest.LogCaptureFixture
) -> None:
    await storage.save(record("warm-up"))  # the next writes form one batch
    before = storage.commit_count
    with caplog.at_level("WARNING", logger="jobify.storage"):
        storage.save_soon(record("soon-\udc80"))
        storage.record_run_soon(RunRecord("r", "task", 1.0, 2.0, 3.0, "success"))
        outcomes = await asyncio.gather(
            storage.save(record("good-1")),
            storage.save(record("bad-\ud800")),
            storage.delete("warm-up"),
            storage.save(record("good-2")),
            return_exceptions=True,
        )
    assert outcomes[0] is None and outcomes[2] is None and outcomes[3] is None
    failure = outcomes[1]
    assert isinstance(failure, StorageError)
    assert "bad-" in str(failure) and str(storage.database) in str(failure)
    assert isinstance(failure.__cause__, UnicodeEncodeError)
    # Two batches (the first awaited write left at once with the queued ones), each retried
    # in one transaction.
    assert storage.commit_count == before + 2
    assert ids(await storage.load()) == ["good-1", "good-2"]
    assert len(await storage.query_history(HistoryQuery())) == 1
    messages = [(r.levelname, r.getMessage()) for r in caplog.records]
    assert any(level == "WARNING" and "one by one" in text for level, text in messages)
    assert any(level == "ERROR" and "soon-" in text for level, text in messages)


async def test_a_row_sqlite_refuses_fails_only_its_writer(storage: SQLiteStorage) -> None:
    await on_connection(storage, "setlimit", sqlite3.SQLITE_LIMIT_LENGTH, 10_000)
    await storage.save(record("warm-up"))
    outcomes = await asyncio.gather(
        *(storage.save(record(f"small-{i}")) for i in range(5)),
        storage.save(record("huge", b"x" * 20_000)),
        storage.save_many([record("many-1"), record("many-huge", b"y" * 20_000)]),
        return_exceptions=True,
    )
    assert outcomes[:5] == [None] * 5
    for failure in outcomes[5:]:
        assert isinstance(failure, StorageError)
        assert "too big" in str(failure)
    assert ids(await storage.load()) == [*(f"small-{i}" for i in range(5)), "warm-up"]


# -- a failed commit, then the storage goes on -----------------------------------------------


async def test_a_full_disk_fails_its_batches_and_nothing_later_is_dropped(
    storage: SQLiteStorage, caplog: pytest.LogCaptureFixture
) -> None:
    await storage.save_many([record(f"before-{i}") for i in range(3)])
    (pages,) = await on_connection(storage, "PRAGMA page_count")
    await on_connection(storage, f"PRAGMA max_page_count = {pages}")  # the disk is "full"
    big = b"z" * 50_000
    with caplog.at_level("ERROR", logger="jobify.storage"):
        storage.save_soon(record("soon", big))
        outcomes = await asyncio.gather(
            *(storage.save(record(f"lost-{i}", big)) for i in range(5)), return_exceptions=True
        )
    for failure in outcomes:
        assert isinstance(failure, StorageError)
        assert "full" in str(failure) and str(storage.database) in str(failure)
    assert any("not committed" in r.getMessage() for r in caplog.records)

    await on_connection(storage, "PRAGMA max_page_count = 1073741823")  # space returns
    await asyncio.gather(*(storage.save(record(f"after-{i}", big)) for i in range(5)))
    storage.save_soon(record("after-soon"))
    await storage.flush()
    expected = [*(f"after-{i}" for i in range(5)), "after-soon", *(f"before-{i}" for i in range(3))]
    assert ids(await storage.load()) == expected


# -- the database file deleted or replaced under a running app --------------------------------


async def test_writes_after_the_file_was_deleted_fail_loudly(
    storage: SQLiteStorage, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    db = tmp_path / "jobs.db"
    await storage.save(record("a"))
    db.unlink()
    with caplog.at_level("ERROR", logger="jobify.storage"):
        outcomes = await asyncio.gather(
            storage.save(record("b")), storage.delete("a"), return_exceptions=True
        )
        storage.save_soon(record("c"))
        with pytest.raises(StorageError, match="was deleted"):
            await storage.flush()
    for failure in outcomes:
        assert isinstance(failure, StorageError)
        assert str(db) in str(failure) and "was deleted" in str(failure)
    errors = [r.getMessage() for r in caplog.records if r.levelname == "ERROR"]
    assert any("was deleted" in text and str(db) in text for text in errors)
    assert not db.exists()  # never written anew behind the user's back


async def test_writes_after_the_file_was_replaced_fail_loudly(
    storage: SQLiteStorage, tmp_path: Path
) -> None:
    db = tmp_path / "jobs.db"
    await storage.save(record("a"))
    other = tmp_path / "other.db"
    sqlite3.connect(other).close()
    os.replace(other, db)
    with pytest.raises(StorageError, match="was replaced by another file"):
        await storage.save(record("b"))


async def test_a_path_deleted_while_a_hard_link_keeps_the_file_is_noticed(
    storage: SQLiteStorage, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The file stays reachable (nothing is lost yet), so the path itself is looked at only
    # once a second; here at every commit.
    monkeypatch.setattr(filelock, "_PATH_CHECK_INTERVAL", 0.0)
    db = tmp_path / "jobs.db"
    await storage.save(record("a"))
    os.link(db, tmp_path / "kept.db")
    db.unlink()
    with pytest.raises(StorageError, match="was deleted"):
        await storage.save(record("b"))


# -- one owner per file, whatever its name ----------------------------------------------------


async def test_a_symlink_or_a_hard_link_does_not_give_a_second_owner(tmp_path: Path) -> None:
    db = tmp_path / "jobs.db"
    owner, _ = await start_owner(db)
    try:
        symlink = tmp_path / "symlink.db"
        symlink.symlink_to(db)
        with pytest.raises(StorageLockedError) as caught:
            await SQLiteStorage(symlink).startup()
        assert f"pid {owner.pid}" in str(caught.value)
        assert str(symlink) in str(caught.value)

        hard_link = tmp_path / "hard.db"
        os.link(db, hard_link)
        with pytest.raises(StorageLockedError, match="in use by another running process") as caught:
            await SQLiteStorage(hard_link).startup()
        assert "hard link" in str(caught.value)
    finally:
        assert await stop_owner(owner) == 0
    storage = SQLiteStorage(tmp_path / "hard.db")  # released: any name works again
    await storage.startup()
    await storage.shutdown()


async def test_an_owner_through_a_symlink_locks_the_target(tmp_path: Path) -> None:
    db = tmp_path / "jobs.db"
    sqlite3.connect(db).close()
    symlink = tmp_path / "symlink.db"
    symlink.symlink_to(db)
    owner, _ = await start_owner(symlink)
    try:
        with pytest.raises(StorageLockedError, match=f"pid {owner.pid}"):
            await SQLiteStorage(db).startup()
    finally:
        assert await stop_owner(owner) == 0


# -- an inspector in the owner's process leaves the owner's SQLite locks alone ------------------

TOUCH = """
import sqlite3, sys
conn = sqlite3.connect(sys.argv[1])
conn.execute("SELECT count(*) FROM jobify_schedules").fetchone()
conn.close()
"""


async def test_an_inspector_closing_in_the_owners_process_keeps_the_wal_safe(
    storage: SQLiteStorage, tmp_path: Path
) -> None:
    db = tmp_path / "jobs.db"
    await storage.save(record("a"))
    for _ in range(2):
        inspector = SQLiteStorage(db)
        await inspector.open_inspection()
        assert await inspector.owner_running() is True
        await inspector.send_command("a", CommandAction.RUN)  # its writing connection too
        assert ids(await inspector.load()) == ["a"]
        await inspector.shutdown()
    # Had closing the inspector's descriptors dropped this process's POSIX locks on the file,
    # this other process would now think it the last user: checkpoint, delete the WAL under
    # the owner, and the owner's next commits would go to a file nobody can read again.
    other = await asyncio.create_subprocess_exec(
        sys.executable, "-c", TOUCH, str(db), stderr=asyncio.subprocess.PIPE
    )
    _, stderr = await other.communicate()
    assert other.returncode == 0, stderr
    assert (tmp_path / "jobs.db-wal").exists()
    await storage.save(record("b"))
    await storage.shutdown()
    await storage.startup()
    assert ids(await storage.load()) == ["a", "b"]


# -- the busy retry loop ------------------------------------------------------------------------


@pytest.fixture
def locked(tmp_path: Path) -> tuple[Path, sqlite3.Connection]:
    db = tmp_path / "busy.db"
    other = sqlite3.connect(db, isolation_level=None, check_same_thread=False)
    other.execute("PRAGMA journal_mode = WAL")
    other.execute("CREATE TABLE t (x)")
    other.execute("BEGIN IMMEDIATE")  # holds the write lock
    return db, other


def test_the_busy_retry_loop_waits_out_a_lock_released_later(
    locked: tuple[Path, sqlite3.Connection],
) -> None:
    db, other = locked
    # timeout=0: no busy handler, so SQLITE_BUSY comes back at once and only the loop waits.
    conn = sqlite3.connect(db, timeout=0, isolation_level=None)
    attempts = 0

    def write() -> None:
        nonlocal attempts
        attempts += 1
        conn.execute("BEGIN IMMEDIATE")
        conn.execute("INSERT INTO t VALUES (1)")
        conn.execute("COMMIT")

    release = threading.Timer(0.05, other.execute, ("ROLLBACK",))
    started = time.monotonic()
    release.start()
    try:
        retrying(5.0, write)
    finally:
        release.join()
    elapsed = time.monotonic() - started
    assert 0.04 <= elapsed < 2.0
    assert attempts > 2  # backed off and tried again, more than once
    assert conn.execute("SELECT count(*) FROM t").fetchone() == (1,)
    conn.close()
    other.close()


def test_the_busy_retry_loop_gives_up_after_its_timeout(
    locked: tuple[Path, sqlite3.Connection],
) -> None:
    db, other = locked
    conn = sqlite3.connect(db, timeout=0, isolation_level=None)
    started = time.monotonic()
    with pytest.raises(sqlite3.OperationalError, match="locked"):
        retrying(0.1, lambda: conn.execute("BEGIN IMMEDIATE"))
    assert 0.1 <= time.monotonic() - started < 2.0
    conn.close()
    other.close()
