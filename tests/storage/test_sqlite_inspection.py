"""SQLiteStorage inspected: what is a jobify store, read-only access, commands across processes."""

from __future__ import annotations

import asyncio
import os
import sqlite3
import sys
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import NoReturn

import pytest

from jobify.exceptions import SchemaVersionError, StorageError
from jobify.storage import JobRecord, SQLiteStorage, commandwatch
from jobify.storage.base import CommandAction, HistoryQuery, JobQuery
from jobify.storage.sql import sqlite as sql

from .conftest import Wakes
from .own_connection import on_own_connection
from .owners import start_owner, stop_owner
from .test_sqlite import V1_ROWS, build_v1_file


def record(job_id: str) -> JobRecord:
    return JobRecord(job_id, "task", 1.0, b"args", b"trigger")


async def inspect(path: Path | str, **options: object) -> SQLiteStorage:
    inspector = SQLiteStorage(path, **options)  # type: ignore[arg-type]
    await inspector.open_inspection()
    return inspector


async def refused(
    path: Path | str, error: type[Exception] = StorageError, **options: object
) -> str:
    with pytest.raises(error) as caught:
        await inspect(path, **options)
    return str(caught.value)


linux_only = pytest.mark.skipif(
    not sys.platform.startswith("linux"), reason="inotify and /proc are Linux only"
)


def open_descriptors() -> set[str]:
    return set(os.listdir("/proc/self/fd"))


def inotify_descriptors() -> set[int]:
    """This process's open inotify instances."""
    found = set()
    for name in os.listdir("/proc/self/fd"):
        try:
            if os.readlink(f"/proc/self/fd/{name}") == "anon_inode:inotify":
                found.add(int(name))
        except OSError:  # the listing's own descriptor, closed since
            pass
    return found


@pytest.fixture
async def owner(tmp_path: Path) -> AsyncIterator[SQLiteStorage]:
    storage = SQLiteStorage(tmp_path / "jobs.db")
    await storage.startup()
    try:
        yield storage
    finally:
        await storage.shutdown()


# -- what can be inspected --------------------------------------------------------------------


async def test_a_missing_file_is_not_a_jobify_store_and_is_not_created(tmp_path: Path) -> None:
    db = tmp_path / "jobs.db"
    assert "no such file" in await refused(db)
    assert not db.exists()
    assert not (tmp_path / "jobs.db-wal").exists()


async def test_files_that_are_not_jobify_stores(tmp_path: Path) -> None:
    text = tmp_path / "notes.txt"
    text.write_bytes(b"hello, this is not a database" * 100)
    message = await refused(text)
    assert "not a jobify store" in message and "not a SQLite database" in message
    assert str(text) in message

    empty = tmp_path / "empty.db"
    empty.touch()
    assert "no jobify schema" in await refused(empty)

    foreign = tmp_path / "foreign.db"
    with sqlite3.connect(foreign) as conn:
        conn.execute("CREATE TABLE users (id INTEGER)")
    conn.close()
    assert "no jobify schema" in await refused(foreign)

    assert "directory" in await refused(tmp_path)


async def test_another_table_name_is_named_in_the_error(
    owner: SQLiteStorage, tmp_path: Path
) -> None:
    message = await refused(tmp_path / "jobs.db", table_name="other")
    assert "'jobify_schedules'" in message and "table_name" in message


async def test_a_memory_database_cannot_be_inspected() -> None:
    assert "cannot be inspected" in await refused(":memory:")


async def test_a_newer_schema_is_refused_and_the_file_left_untouched(tmp_path: Path) -> None:
    db = tmp_path / "jobs.db"
    storage = SQLiteStorage(db)
    await storage.startup()
    await storage.shutdown()
    with sqlite3.connect(db) as conn:
        conn.execute("UPDATE jobify_meta SET schema_version = ?", (sql.SCHEMA_VERSION + 1,))
    conn.close()
    before = db.read_bytes()
    message = await refused(db, SchemaVersionError)
    assert "upgrade jobify" in message
    assert db.read_bytes() == before


async def test_a_v1_store_is_read_without_being_migrated(tmp_path: Path) -> None:
    db = tmp_path / "jobs.db"
    build_v1_file(db, V1_ROWS)
    before = db.read_bytes()
    inspector = await inspect(db)
    try:
        assert [r.job_id for r in await inspector.query_jobs(JobQuery())] == ["b", "a"]
        assert await inspector.job_counts() == {
            ("reports:weekly", "scheduled"): 1,
            ("mail:send", "permanently_failed"): 1,
            ("mail:send", "scheduled"): 1,
        }
        assert await inspector.query_history(HistoryQuery()) == []
        assert await inspector.load_tasks() == []
        with pytest.raises(StorageError, match="version 1, which has no commands"):
            await inspector.send_command("a", CommandAction.CANCEL)
        with pytest.raises(StorageError, match="no commands"):
            await inspector.command_result(1)
    finally:
        await inspector.shutdown()
    assert db.read_bytes() == before
    with sqlite3.connect(db) as conn:
        assert conn.execute("SELECT schema_version FROM jobify_meta").fetchone() == (1,)
    conn.close()


# -- reading next to a running owner ----------------------------------------------------------


async def test_the_inspector_cannot_write_records_even_through_its_connection(
    owner: SQLiteStorage, tmp_path: Path
) -> None:
    await owner.save(record("a"))
    inspector = await inspect(tmp_path / "jobs.db")
    try:
        with pytest.raises(StorageError, match="read-only"):
            await on_own_connection(
                inspector, lambda conn: conn.execute("DELETE FROM jobify_schedules")
            )
    finally:
        await inspector.shutdown()
    assert await owner.load() == [record("a")]


@linux_only
async def test_an_owner_in_another_process_is_seen_and_answers_commands(tmp_path: Path) -> None:
    db = tmp_path / "jobs.db"
    process, mode = await start_owner(db)
    inspector = await inspect(db)
    try:
        assert mode == "inotify"
        assert await inspector.owner_running() is True
        sent = time.monotonic()
        command_id = await inspector.send_command("job-7", CommandAction.PAUSE)
        while (answer := await inspector.command_result(command_id)) is None:
            assert time.monotonic() - sent < 10, "the owner never answered"
            await asyncio.sleep(0.005)
        assert answer == "pause job-7"
        # Woken by inotify, not by a once-a-second check.
        assert time.monotonic() - sent < 0.9
        assert await stop_owner(process) == 0
        assert await inspector.owner_running() is False
    finally:
        await inspector.shutdown()
        if process.returncode is None:
            process.kill()
            await process.wait()


async def test_an_inspector_takes_no_lock(tmp_path: Path) -> None:
    db = tmp_path / "jobs.db"
    storage = SQLiteStorage(db)
    await storage.startup()
    await storage.save(record("a"))
    await storage.shutdown()
    inspector = await inspect(db)
    try:
        assert await inspector.owner_running() is False
        process, _ = await start_owner(db)  # starts although the inspector is open
        try:
            assert await inspector.owner_running() is True
            assert await inspector.load() == [record("a")]
        finally:
            assert await stop_owner(process) == 0
    finally:
        await inspector.shutdown()


# -- the owner's watch ------------------------------------------------------------------------


@linux_only
async def test_inotify_wakes_the_owner_for_an_inspector_in_milliseconds(
    owner: SQLiteStorage, tmp_path: Path
) -> None:
    wakes = Wakes()
    owner.watch_commands(wakes)
    assert owner.watch_mode == "inotify"
    inspector = await inspect(tmp_path / "jobs.db")
    try:
        sent = time.monotonic()
        await inspector.send_command("job-1", CommandAction.RUN)
        await wakes.next()
        assert time.monotonic() - sent < 0.5
        # The sidecar deleted under the watch: it is watched again.
        (tmp_path / "jobs.db.wake").unlink()
        await wakes.next()
        await inspector.send_command("job-2", CommandAction.RUN)
        await wakes.next()
    finally:
        await inspector.shutdown()
    assert len(await owner.take_commands()) == 2


async def test_without_inotify_the_owner_polls_the_sidecar(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    def no_inotify() -> NoReturn:
        raise OSError("inotify is not available: no watches left")

    # As on a platform without inotify, or where the user's inotify instances are used up.
    monkeypatch.setattr(commandwatch, "_libc_inotify", no_inotify)
    monkeypatch.setattr(commandwatch, "POLL_INTERVAL", 0.02)
    owner = SQLiteStorage(tmp_path / "jobs.db")
    await owner.startup()
    inspector = await inspect(tmp_path / "jobs.db")
    try:
        wakes = Wakes()
        owner.watch_commands(wakes)
        assert owner.watch_mode == "poll"
        await inspector.send_command("job-1", CommandAction.CANCEL)
        await wakes.next()
        assert [c.job_id for c in await owner.take_commands()] == ["job-1"]
    finally:
        await inspector.shutdown()
        await owner.shutdown()
    assert str(owner.watch_mode) == "stopped"


@linux_only
async def test_shutdown_stops_the_watch_and_closes_its_descriptor(owner: SQLiteStorage) -> None:
    fds_before = open_descriptors()
    inotify_before = inotify_descriptors()
    owner.watch_commands(Wakes())
    assert owner.watch_mode == "inotify"
    (watch,) = inotify_descriptors() - inotify_before
    await owner.shutdown()
    assert str(owner.watch_mode) == "stopped"
    assert not asyncio.get_running_loop().remove_reader(watch)  # the loop no longer reads it
    assert watch not in inotify_descriptors()
    assert open_descriptors() <= fds_before  # the inotify descriptor is gone


async def test_a_sidecar_that_cannot_be_created_is_a_clear_error(
    owner: SQLiteStorage, tmp_path: Path
) -> None:
    (tmp_path / "jobs.db.wake").mkdir()  # a directory where the file should be
    with pytest.raises(StorageError, match="cannot watch for commands"):
        owner.watch_commands(Wakes())
