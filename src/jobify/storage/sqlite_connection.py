"""Opening a SQLite connection for jobify: schema versions, WAL, transactions, error mapping.

Functions here block; :class:`~jobify.storage.SQLiteStorage` calls them from its worker
thread only. They know the file and its schema, nothing of the event loop or group commit.
"""

from __future__ import annotations

import logging
import sqlite3
import time
from collections.abc import Callable
from functools import partial
from typing import Literal, TypeVar

from jobify.exceptions import SchemaVersionError, StorageError
from jobify.storage.sql import sqlite as sql

__all__ = ["map_error", "open_connection", "retrying", "transaction"]

logger = logging.getLogger("jobify.storage")

T = TypeVar("T")

# Primary result codes (sqlite3.Error.sqlite_errorcode carries the extended code).
_SQLITE_BUSY, _SQLITE_LOCKED, _SQLITE_READONLY = 5, 6, 8
_SQLITE_CORRUPT, _SQLITE_CANTOPEN, _SQLITE_NOTADB = 11, 14, 26


def _code(exc: sqlite3.Error) -> int:
    return int(getattr(exc, "sqlite_errorcode", 0)) & 0xFF


def map_error(exc: sqlite3.Error, database: str, timeout: float) -> StorageError:
    """A StorageError for a driver error, naming the file and what to do about it."""
    code = _code(exc)
    db = repr(database)
    if code in (_SQLITE_BUSY, _SQLITE_LOCKED):
        return StorageError(
            f"the SQLite database {db} stayed locked by another connection for more than "
            f"{timeout}s ({exc}): another program holds a write transaction on it; "
            "end it, or raise SQLiteStorage(timeout=...)"
        )
    if code == _SQLITE_READONLY:
        return StorageError(
            f"the SQLite database {db} is read-only ({exc}): make the file and its "
            "directory writable by this process"
        )
    if code in (_SQLITE_CORRUPT, _SQLITE_NOTADB):
        return StorageError(
            f"the SQLite database {db} is corrupted or not a SQLite database ({exc}): "
            "restore it from a backup, or move it away to start with an empty one"
        )
    if code == _SQLITE_CANTOPEN:
        return StorageError(
            f"cannot open the SQLite database {db} ({exc}): check that its directory "
            "exists and is writable"
        )
    return StorageError(f"SQLite error on {db}: {exc}")


def retrying(timeout: float, work: Callable[[], T]) -> T:
    """Run ``work``, retrying "database is locked" until ``timeout`` seconds have passed.

    sqlite's busy handler already waits up to ``timeout`` in most cases; this loop covers the
    ones where SQLite reports SQLITE_BUSY without calling it (e.g. during WAL recovery).
    """
    deadline = time.monotonic() + timeout
    pause = 0.001
    while True:
        try:
            return work()
        except sqlite3.OperationalError as exc:
            if _code(exc) not in (_SQLITE_BUSY, _SQLITE_LOCKED) or time.monotonic() >= deadline:
                raise
        time.sleep(pause)
        pause = min(pause * 2, 0.05)


def transaction(conn: sqlite3.Connection, body: Callable[[], None]) -> None:
    """Run ``body`` in one write transaction: committed if it returns, rolled back if not."""
    # BEGIN IMMEDIATE takes the write lock up front, where the busy timeout applies; a
    # deferred transaction could fail with SQLITE_BUSY on its first write without waiting.
    conn.execute(sql.BEGIN_IMMEDIATE)
    try:
        body()
        conn.execute(sql.COMMIT)
    except BaseException:
        if conn.in_transaction:
            conn.rollback()
        raise


def open_connection(
    database: str,
    queries: sql.SQLiteQueries,
    table: str,
    *,
    timeout: float,
    synchronous: Literal["normal", "full"],
) -> sqlite3.Connection:
    """Connect in autocommit mode, check the schema version, switch to WAL and migrate.

    Raises :class:`SchemaVersionError`, before writing anything, when the table's schema is
    newer than :data:`~jobify.storage.sql.sqlite.SCHEMA_VERSION`.
    """
    # isolation_level=None: transactions are explicit (see transaction()).
    conn = sqlite3.connect(database, timeout=timeout, isolation_level=None)
    try:
        # Check the version before writing anything: a newer schema must leave the file
        # exactly as it is (not even switched to WAL).
        version = _stored_version(conn, table)
        if version > sql.SCHEMA_VERSION:
            raise SchemaVersionError(
                f"the SQLite database {database!r} has jobify schema version {version} "
                f"(table {table!r}) but this jobify knows versions up to "
                f"{sql.SCHEMA_VERSION}: it was written by a newer jobify; upgrade jobify. "
                "The file was not modified."
            )
        if database != ":memory:":
            row = retrying(timeout, lambda: conn.execute(sql.JOURNAL_WAL).fetchone())
            if row is None or str(row[0]).lower() != "wal":
                raise StorageError(
                    f"cannot switch the SQLite database {database!r} to WAL journal mode "
                    f"(it stays in {row[0] if row else 'unknown'!r} mode)"
                )
        conn.execute(sql.SYNCHRONOUS[synchronous])
        if version < sql.SCHEMA_VERSION:
            migrate = partial(_migrate, conn, queries, table, database)
            retrying(timeout, lambda: transaction(conn, migrate))
    except BaseException:
        conn.close()
        raise
    return conn


def _stored_version(conn: sqlite3.Connection, table: str) -> int:
    if conn.execute(sql.META_EXISTS).fetchone() is None:
        return 0
    row = conn.execute(sql.GET_VERSION, (table,)).fetchone()
    return int(row[0]) if row else 0


def _migrate(conn: sqlite3.Connection, queries: sql.SQLiteQueries, table: str, db: str) -> None:
    conn.execute(sql.CREATE_META)
    # Read again inside the write transaction: this is the version the steps apply to.
    row = conn.execute(sql.GET_VERSION, (table,)).fetchone()
    version = int(row[0]) if row else 0
    for step in queries.migrations[version:]:
        for statement in step:
            conn.execute(statement)
    conn.execute(sql.SET_VERSION, (table, sql.SCHEMA_VERSION))
    logger.info(
        "migrated table %s of %s from schema version %d to %d",
        table,
        db,
        version,
        sql.SCHEMA_VERSION,
    )
