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
from urllib.parse import quote

from jobify.exceptions import SchemaVersionError, StorageError
from jobify.storage.sql import sqlite as sql

__all__ = [
    "is_per_write",
    "map_error",
    "open_command_writer",
    "open_connection",
    "open_reader",
    "retrying",
    "transaction",
]

logger = logging.getLogger("jobify.storage")

T = TypeVar("T")

# Primary result codes (sqlite3.Error.sqlite_errorcode carries the extended code).
_SQLITE_BUSY, _SQLITE_LOCKED, _SQLITE_READONLY, _SQLITE_IOERR = 5, 6, 8, 10
_SQLITE_CORRUPT, _SQLITE_FULL, _SQLITE_CANTOPEN, _SQLITE_NOTADB = 11, 13, 14, 26


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
    if code == _SQLITE_FULL:
        return StorageError(
            f"the disk holding the SQLite database {db} is full ({exc}): free some space; "
            "writes fail until then, and nothing committed before is lost"
        )
    if code == _SQLITE_IOERR:
        return StorageError(f"I/O error on the SQLite database {db} ({exc}): check the disk")
    return StorageError(f"SQLite error on {db}: {exc}")


def is_per_write(exc: BaseException) -> bool:
    """Whether ``exc`` may come from one write's own values rather than from the database.

    A value the driver cannot bind (a lone surrogate, an integer out of range), a row
    SQLite refuses (too big, a constraint) fail that write alone: the rest of its group
    commit can be retried without it. Errors of the file, the disk or the lock (every
    ``OperationalError``, corruption, a :class:`StorageError` of ours) would fail any write
    and are not worth retrying one by one.
    """
    if isinstance(exc, sqlite3.IntegrityError | sqlite3.DataError | sqlite3.InterfaceError):
        return True
    if isinstance(exc, sqlite3.ProgrammingError):
        return True
    return not isinstance(exc, sqlite3.Error | StorageError | MemoryError)


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


def transaction(conn: sqlite3.Connection, body: Callable[[], T]) -> T:
    """Run ``body`` in one write transaction: committed if it returns (its result is
    returned), rolled back if not."""
    # BEGIN IMMEDIATE takes the write lock up front, where the busy timeout applies; a
    # deferred transaction could fail with SQLITE_BUSY on its first write without waiting.
    conn.execute(sql.BEGIN_IMMEDIATE)
    try:
        result = body()
        conn.execute(sql.COMMIT)
    except BaseException:
        if conn.in_transaction:
            conn.rollback()
        raise
    return result


def open_connection(
    database: str,
    path: str,
    queries: sql.SQLiteQueries,
    table: str,
    *,
    timeout: float,
    synchronous: Literal["normal", "full"],
) -> sqlite3.Connection:
    """Connect the owner in autocommit mode, check the schema version, switch to WAL and
    migrate. ``database`` names the file in messages, ``path`` is what is opened.

    Raises :class:`SchemaVersionError`, before writing anything, when the table's schema is
    newer than :data:`~jobify.storage.sql.sqlite.SCHEMA_VERSION`.
    """
    # isolation_level=None: transactions are explicit (see transaction()).
    conn = sqlite3.connect(path, timeout=timeout, isolation_level=None)
    try:
        # Check the version before writing anything: a newer schema must leave the file
        # exactly as it is (not even switched to WAL).
        version = _stored_version(conn, table)
        _refuse_newer(version, database, table)
        if path != ":memory:":
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


def open_reader(
    database: str, path: str, table: str, *, timeout: float
) -> tuple[sqlite3.Connection, int]:
    """An inspector's read-only connection and the store's schema version.

    Creates, migrates and writes nothing (SQLite may create the -wal and -shm files a WAL
    reader needs when no owner runs). Raises :class:`StorageError` for a file that is not a
    jobify store with ``table`` and :class:`SchemaVersionError` for a newer schema.
    """
    conn = sqlite3.connect(_uri(path, "ro"), uri=True, timeout=timeout, isolation_level=None)
    try:
        try:
            version = _stored_version(conn, table)
        except sqlite3.DatabaseError as exc:
            if _code(exc) != _SQLITE_NOTADB:
                raise
            raise StorageError(
                f"{database!r} is not a jobify store: it is not a SQLite database ({exc})"
            ) from exc
        if version == 0:
            stores = _stores(conn)
            raise StorageError(
                f"{database!r} is not a jobify store with table {table!r}: "
                + (
                    f"it holds jobify's tables {', '.join(map(repr, stores))} (pass one as "
                    "table_name)"
                    if stores
                    else "it has no jobify schema (no app has ever run on it)"
                )
            )
        _refuse_newer(version, database, table)
    except BaseException:
        conn.close()
        raise
    return conn, version


def open_command_writer(path: str, *, timeout: float) -> sqlite3.Connection:
    """The inspector's one writing connection, for commands: never creates the file."""
    return sqlite3.connect(_uri(path, "rw"), uri=True, timeout=timeout, isolation_level=None)


def _uri(path: str, mode: str) -> str:
    return f"file:{quote(path)}?mode={mode}"


def _refuse_newer(version: int, database: str, table: str) -> None:
    if version > sql.SCHEMA_VERSION:
        raise SchemaVersionError(
            f"the SQLite database {database!r} has jobify schema version {version} "
            f"(table {table!r}) but this jobify knows versions up to "
            f"{sql.SCHEMA_VERSION}: it was written by a newer jobify; upgrade jobify. "
            "The file was not modified."
        )


def _stores(conn: sqlite3.Connection) -> list[str]:
    if conn.execute(sql.META_EXISTS).fetchone() is None:
        return []
    return [str(row[0]) for row in conn.execute(sql.LIST_STORES)]


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
    if version == 0:
        logger.info("created the jobify tables (%s) in %s", table, db)
    else:
        logger.info(
            "migrated table %s of %s from schema version %d to %d",
            table,
            db,
            version,
            sql.SCHEMA_VERSION,
        )
