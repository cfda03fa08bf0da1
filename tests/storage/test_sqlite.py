"""SQLiteStorage beyond the shared contract: the file, its schema and the group commit."""

from __future__ import annotations

import asyncio
import math
import sqlite3
from collections.abc import Sequence
from pathlib import Path

import pytest

from jobify.exceptions import SchemaVersionError, StorageError
from jobify.storage import JobRecord, SQLiteStorage
from jobify.storage.base import HistoryQuery, JobQuery, RunRecord
from jobify.storage.sql import sqlite as sql

from .own_connection import on_own_connection


def record(job_id: str, exec_at: float = 1.0) -> JobRecord:
    return JobRecord(job_id, "task", exec_at, b"args", b"trigger")


def entries(directory: Path) -> list[Path]:
    return list(directory.iterdir())


async def started(path: Path | str, **options: object) -> SQLiteStorage:
    storage = SQLiteStorage(path, **options)  # type: ignore[arg-type]
    await storage.startup()
    return storage


async def test_records_persist_across_close_and_reopen(tmp_path: Path) -> None:
    db = tmp_path / "jobs.db"
    first = await started(db)
    await first.save_many([record("a", 1.0), record("b", 2.0)])
    await first.delete("a")
    await first.shutdown()

    second = await started(str(db))
    assert await second.load() == [record("b", 2.0)]
    await second.shutdown()


async def test_shutdown_commits_queued_writes(tmp_path: Path) -> None:
    db = tmp_path / "jobs.db"
    storage = await started(db)
    for i in range(100):
        storage.save_soon(record(f"id-{i}"))
    await storage.shutdown()
    reopened = await started(db)
    assert len(await reopened.load()) == 100
    await reopened.shutdown()


async def test_file_is_in_wal_mode_with_a_versioned_schema(tmp_path: Path) -> None:
    db = tmp_path / "jobs.db"
    storage = await started(db, table_name="my_jobs")
    await storage.save(record("a"))
    with sqlite3.connect(db) as conn:
        assert conn.execute("PRAGMA journal_mode").fetchone() == ("wal",)
        assert conn.execute("SELECT table_name, schema_version FROM jobify_meta").fetchall() == [
            ("my_jobs", sql.SCHEMA_VERSION)
        ]
        columns = [row[1] for row in conn.execute("PRAGMA table_info(my_jobs)")]
        assert columns == ["job_id", "task_name", "exec_at", "arguments", "trigger", "status"]
        assert set(indexes(conn, "my_jobs")) >= {
            "my_jobs_exec_at",
            "my_jobs_status",
        }
        tables = {
            row[0] for row in conn.execute("SELECT name FROM sqlite_master WHERE type='table'")
        }
        assert {"my_jobs_runs", "my_jobs_tasks", "my_jobs_commands"} <= tables
    conn.close()
    await storage.shutdown()


def indexes(conn: sqlite3.Connection, table: str) -> list[str]:
    return [row[1] for row in conn.execute(f"PRAGMA index_list({table})")]


V1_ROWS = [
    ("a", "reports:weekly", 10.0, b"args-a", b"trigger", "scheduled"),
    ("b", "mail:send", 5.0, b"args-b", b"trigger", "permanently_failed"),
    ("odd", "mail:send", "not a time", b"x", b"y", "scheduled"),  # undecodable, kept
]


def build_v1_file(db: Path, rows: Sequence[tuple[object, ...]]) -> None:
    """A file exactly as jobify's schema version 1 wrote it."""
    with sqlite3.connect(db) as conn:
        conn.execute("PRAGMA journal_mode = WAL")
        conn.execute(sql.CREATE_META)
        for statement in sql.MIGRATIONS[0]:
            conn.execute(statement.format(table="jobify_schedules"))
        conn.execute(sql.SET_VERSION, ("jobify_schedules", 1))
        conn.executemany("INSERT INTO jobify_schedules VALUES (?, ?, ?, ?, ?, ?)", rows)
    conn.close()


async def test_a_v1_file_is_migrated_to_v2_with_its_records_intact(tmp_path: Path) -> None:
    db = tmp_path / "jobs.db"
    build_v1_file(db, V1_ROWS)
    storage = await started(db)
    expected = [JobRecord(*row) for row in V1_ROWS[:2]]  # type: ignore[arg-type]
    assert sorted(await storage.load(), key=lambda r: r.job_id) == expected
    assert await storage.query_jobs(JobQuery()) == [expected[1], expected[0]]
    assert await storage.job_counts() == {
        ("reports:weekly", "scheduled"): 1,
        ("mail:send", "permanently_failed"): 1,
        ("mail:send", "scheduled"): 1,  # counted, though it does not decode
    }
    assert await storage.query_history(HistoryQuery()) == []
    assert await storage.load_tasks() == []
    storage.record_run_soon(RunRecord("a", "reports:weekly", 1.0, 2.0, 3.0, "success"))
    await storage.save(record("c"))
    assert len(await storage.query_history(HistoryQuery())) == 1
    await storage.shutdown()
    with sqlite3.connect(db) as conn:
        assert conn.execute("SELECT schema_version FROM jobify_meta").fetchone() == (2,)
        assert conn.execute("SELECT count(*) FROM jobify_schedules").fetchone() == (4,)
        assert set(indexes(conn, "jobify_schedules")) >= {
            "jobify_schedules_exec_at",
            "jobify_schedules_status",
        }
        exec_at_columns = [
            r[2] for r in conn.execute("PRAGMA index_info(jobify_schedules_exec_at)")
        ]
        assert exec_at_columns == ["exec_at", "job_id", "status", "task_name"]
    conn.close()


async def test_two_tables_in_one_file_are_independent(tmp_path: Path) -> None:
    db = tmp_path / "jobs.db"
    one = await started(db, table_name="one")
    await one.save(record("a"))
    await one.shutdown()
    two = await started(db, table_name="two")
    assert await two.load() == []
    await two.shutdown()


async def test_newer_schema_is_refused_and_the_file_left_untouched(tmp_path: Path) -> None:
    db = tmp_path / "jobs.db"
    storage = await started(db)
    await storage.save(record("a"))
    await storage.shutdown()
    with sqlite3.connect(db) as conn:
        conn.execute("UPDATE jobify_meta SET schema_version = ?", (sql.SCHEMA_VERSION + 1,))
    conn.close()
    before = db.read_bytes()

    with pytest.raises(SchemaVersionError) as caught:
        await started(db)
    message = str(caught.value)
    assert str(db) in message
    assert f"version {sql.SCHEMA_VERSION + 1}" in message
    assert f"up to {sql.SCHEMA_VERSION}" in message
    assert "upgrade jobify" in message
    assert db.read_bytes() == before


async def test_a_later_step_is_applied_on_top(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    db = tmp_path / "jobs.db"
    storage = await started(db)
    await storage.save(record("kept"))
    await storage.shutdown()

    # A v3 is one more step in MIGRATIONS.
    v3 = (*sql.MIGRATIONS, ("ALTER TABLE {table} ADD COLUMN note TEXT",))
    monkeypatch.setattr(sql, "MIGRATIONS", v3)
    monkeypatch.setattr(sql, "SCHEMA_VERSION", 3)
    upgraded = await started(db)
    assert await upgraded.load() == [record("kept")]
    await upgraded.shutdown()
    with sqlite3.connect(db) as conn:
        assert conn.execute("SELECT schema_version FROM jobify_meta").fetchone() == (3,)
        assert "note" in [row[1] for row in conn.execute("PRAGMA table_info(jobify_schedules)")]
    conn.close()


async def test_existing_foreign_table_with_the_same_name_is_an_error(tmp_path: Path) -> None:
    db = tmp_path / "jobs.db"
    with sqlite3.connect(db) as conn:
        conn.execute("CREATE TABLE jobify_schedules (x INTEGER)")
    conn.close()
    with pytest.raises(StorageError, match="already exists"):
        await started(db)


async def test_undecodable_row_is_skipped_with_a_warning_and_left_in_place(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    db = tmp_path / "jobs.db"
    storage = await started(db)
    await storage.save_many([record("good-1"), record("good-2")])
    await storage.shutdown()
    with sqlite3.connect(db) as conn:
        bad_rows = [
            ("bad-text-args", "task", 1.0, "not a blob", b"t", "scheduled"),
            ("bad-exec-at", "task", "tomorrow", b"a", b"t", "scheduled"),
            ("bad-status", "task", 1.0, b"a", b"t", b"\x07"),  # a BLOB keeps its type
        ]
        conn.executemany("INSERT INTO jobify_schedules VALUES (?, ?, ?, ?, ?, ?)", bad_rows)
        # SQLite lets a non-INTEGER primary key be NULL.
        conn.execute("INSERT INTO jobify_schedules VALUES (NULL, 't', 1.0, x'00', x'00', 's')")
    conn.close()

    storage = await started(db)
    with caplog.at_level("WARNING", logger="jobify.storage"):
        loaded = await storage.load()
        assert await storage.get("bad-exec-at") is None
    assert sorted(r.job_id for r in loaded) == ["good-1", "good-2"]
    warned = "\n".join(r.getMessage() for r in caplog.records if r.name == "jobify.storage")
    for job_id in ("'bad-text-args'", "'bad-exec-at'", "'bad-status'", "job None"):
        assert job_id in warned
    await storage.shutdown()

    with sqlite3.connect(db) as conn:
        assert conn.execute("SELECT count(*) FROM jobify_schedules").fetchone() == (6,)
    conn.close()


async def test_integer_exec_at_written_by_hand_loads_as_float(tmp_path: Path) -> None:
    db = tmp_path / "jobs.db"
    storage = await started(db)
    await storage.shutdown()
    with sqlite3.connect(db) as conn:
        # Too large for REAL affinity to convert losslessly, so SQLite keeps an INTEGER.
        conn.execute(
            "INSERT INTO jobify_schedules VALUES ('big', 't', 9007199254740993, x'', x'', 's')"
        )
    conn.close()
    storage = await started(db)
    (loaded,) = await storage.load()
    assert type(loaded.exec_at) is float
    assert await storage.get("big") == loaded
    await storage.shutdown()


async def test_group_commit_batches_concurrent_writes(tmp_path: Path) -> None:
    storage = await started(tmp_path / "jobs.db")
    before = storage.commit_count
    await asyncio.gather(*(storage.save(record(f"id-{i}")) for i in range(1000)))
    assert storage.commit_count - before <= 3
    before = storage.commit_count
    await asyncio.gather(*(storage.delete(f"id-{i}") for i in range(1000)))
    assert storage.commit_count - before <= 3
    assert await storage.load() == []
    await storage.shutdown()


async def test_writes_issued_during_a_commit_go_into_the_next_one(tmp_path: Path) -> None:
    storage = await started(tmp_path / "jobs.db")
    before = storage.commit_count

    async def writer(n: int) -> None:
        for i in range(50):
            await storage.save(record(f"w{n}-{i}"))

    await asyncio.gather(*(writer(n) for n in range(20)))
    # 1,000 awaited writes from 20 sequential writers: about one commit per round, not per write.
    assert storage.commit_count - before <= 120
    assert len(await storage.load()) == 1000
    await storage.shutdown()


async def test_synchronous_full(tmp_path: Path) -> None:
    db = tmp_path / "jobs.db"
    storage = await started(db, synchronous="full")
    level = await on_own_connection(
        storage, lambda conn: conn.execute("PRAGMA synchronous").fetchone()[0]
    )
    assert level == 2  # FULL
    await storage.save(record("a"))
    await storage.shutdown()
    reopened = await started(db)
    assert await reopened.load() == [record("a")]
    await reopened.shutdown()


async def test_memory_database_creates_no_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    storage = await started(":memory:")
    await storage.save(record("a"))
    assert entries(tmp_path) == []
    await storage.shutdown()


@pytest.mark.parametrize(
    "name", ["", "1abc", "a-b", "jobs; DROP TABLE x", "sqlite_x", "jobify_meta"]
)
def test_table_name_must_be_a_plain_identifier(name: str) -> None:
    with pytest.raises(ValueError, match="table_name"):
        SQLiteStorage(":memory:", table_name=name)


def test_bad_options_are_refused() -> None:
    with pytest.raises(ValueError, match="synchronous"):
        SQLiteStorage(":memory:", synchronous="off")  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="database"):
        SQLiteStorage(b"jobs.db")  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="database"):
        SQLiteStorage(None)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("timeout", "error"),
    [
        (-1, ValueError),
        (math.nan, ValueError),
        (math.inf, ValueError),
        (-math.inf, ValueError),
        ("20", TypeError),
        (None, TypeError),
        (True, TypeError),
    ],
)
def test_a_timeout_that_is_not_a_finite_number_of_seconds_is_refused(
    timeout: object, error: type[Exception]
) -> None:
    with pytest.raises(error, match="timeout"):
        SQLiteStorage(":memory:", timeout=timeout)  # type: ignore[arg-type]


def test_integer_and_zero_timeouts_are_fine() -> None:
    assert SQLiteStorage(":memory:", timeout=0).timeout == 0.0
    assert SQLiteStorage(":memory:", timeout=5).timeout == 5.0


async def test_startup_twice_is_an_error(tmp_path: Path) -> None:
    storage = await started(tmp_path / "jobs.db")
    with pytest.raises(StorageError, match="already started"):
        await storage.startup()
    await storage.shutdown()


async def test_missing_directory_is_a_clear_error(tmp_path: Path) -> None:
    db = tmp_path / "no" / "such" / "dir" / "jobs.db"
    with pytest.raises(StorageError, match="directory must exist") as caught:
        await started(db)
    assert str(db) in str(caught.value)
