"""Every SQL statement :class:`~jobify.storage.SQLiteStorage` runs, as named constants.

Statements that mention the jobs table are templates with a ``{table}`` placeholder; they are
formatted once per storage by :meth:`SQLiteQueries.for_table` with a name that has already been
validated as a plain identifier (so formatting cannot inject SQL).

The schema is versioned per jobs table in ``jobify_meta``. :data:`MIGRATIONS` is an ordered list:
step ``i`` takes a table from version ``i`` to ``i + 1``, so adding v2 means appending one step.
"""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["MIGRATIONS", "SCHEMA_VERSION", "SQLiteQueries"]

META_TABLE = "jobify_meta"

MIGRATIONS: tuple[tuple[str, ...], ...] = (
    # v0 -> v1: the jobs table and the index the scheduler's "what is due next" needs.
    (
        """
        CREATE TABLE {table} (
            job_id    TEXT PRIMARY KEY,
            task_name TEXT NOT NULL,
            exec_at   REAL NOT NULL,
            arguments BLOB NOT NULL,
            trigger   BLOB NOT NULL,
            status    TEXT NOT NULL
        )
        """,
        "CREATE INDEX {table}_exec_at ON {table} (exec_at)",
    ),
)

SCHEMA_VERSION = len(MIGRATIONS)
"""The schema version this code writes and understands."""

BEGIN_IMMEDIATE = "BEGIN IMMEDIATE"
COMMIT = "COMMIT"
JOURNAL_WAL = "PRAGMA journal_mode = WAL"
SYNCHRONOUS = {"normal": "PRAGMA synchronous = NORMAL", "full": "PRAGMA synchronous = FULL"}

META_EXISTS = "SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'jobify_meta'"
CREATE_META = (
    "CREATE TABLE IF NOT EXISTS jobify_meta ("
    " table_name TEXT PRIMARY KEY, schema_version INTEGER NOT NULL)"
)
GET_VERSION = "SELECT schema_version FROM jobify_meta WHERE table_name = ?"
SET_VERSION = (
    "INSERT INTO jobify_meta (table_name, schema_version) VALUES (?, ?)"
    " ON CONFLICT (table_name) DO UPDATE SET schema_version = excluded.schema_version"
)

UPSERT = (
    "INSERT OR REPLACE INTO {table} (job_id, task_name, exec_at, arguments, trigger, status)"
    " VALUES (?, ?, ?, ?, ?, ?)"
)
DELETE = "DELETE FROM {table} WHERE job_id = ?"
# Column types are checked in Python after the fetch (the table is not STRICT, so a row edited
# by hand can hold anything): on 100,000 rows that is several times cheaper than typeof() tests.
LOAD = "SELECT job_id, task_name, exec_at, arguments, trigger, status FROM {table}"
GET = LOAD + " WHERE job_id = ?"


@dataclass(frozen=True, slots=True)
class SQLiteQueries:
    """The statements for one jobs table, formatted once."""

    migrations: tuple[tuple[str, ...], ...]
    upsert: str
    delete: str
    load: str
    get: str

    @classmethod
    def for_table(cls, table: str) -> SQLiteQueries:
        """Format every template for ``table`` (an already validated identifier)."""
        return cls(
            migrations=tuple(tuple(s.format(table=table) for s in step) for step in MIGRATIONS),
            upsert=UPSERT.format(table=table),
            delete=DELETE.format(table=table),
            load=LOAD.format(table=table),
            get=GET.format(table=table),
        )
