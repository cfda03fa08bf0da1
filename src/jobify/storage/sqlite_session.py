"""What one open SQLite store holds in its worker thread: connections, lock, reader, writer.

A :class:`Session` is made for each ``startup()`` or ``open_inspection()`` of a
:class:`~jobify.storage.SQLiteStorage` and used by its worker thread only (every method
blocks). The owner's session holds the owner lock, one connection, the group-commit writer
and a reader. An inspector's session holds a read-only connection, a probe of the owner lock
and, once it sends a command, one writing connection for the commands table.
"""

from __future__ import annotations

import os
import sqlite3
from functools import partial
from typing import Literal

from jobify.exceptions import StorageError
from jobify.storage.commandwatch import touch
from jobify.storage.filelock import (
    PRIVATE,
    FileKey,
    OwnerLock,
    OwnerProbe,
    connection_closed,
    connection_opened,
)
from jobify.storage.sql import sqlite as sql
from jobify.storage.sqlite_commit import BatchWriter, Unit
from jobify.storage.sqlite_connection import (
    open_command_writer,
    open_connection,
    open_reader,
    retrying,
    transaction,
)
from jobify.storage.sqlite_reads import Reader

__all__ = ["WAKE_SUFFIX", "Session"]

MEMORY = ":memory:"
WAKE_SUFFIX = ".wake"
"""The sidecar file an inspector touches to wake the owner (next to the database)."""


class Session:
    """The thread-side resources of one open store (see the module docstring)."""

    def __init__(
        self,
        database: str,
        table: str,
        queries: sql.SQLiteQueries,
        *,
        timeout: float,
        synchronous: Literal["normal", "full"],
        file_mode: int = PRIVATE,
    ) -> None:
        self.database = database
        self.file_mode = file_mode
        self.table = table
        self.queries = queries
        self.timeout = timeout
        self.synchronous = synchronous
        self.path = database  # resolved when opened
        self.conn: sqlite3.Connection | None = None
        self.writer: BatchWriter | None = None
        self._reader: Reader | None = None
        self._key: FileKey | None = None
        self._lock: OwnerLock | None = None
        self._probe: OwnerProbe | None = None
        self._command_conn: sqlite3.Connection | None = None

    @property
    def wake_path(self) -> str:
        """The sidecar an inspector touches after sending a command."""
        return self.path + WAKE_SUFFIX

    @property
    def reader(self) -> Reader:
        """The reads over the session's main connection."""
        if self._reader is None:  # only reachable if a call raced shutdown
            raise StorageError(f"the SQLite database {self.database!r} is closed")
        return self._reader

    def open_owner(self) -> None:
        """Lock the file, connect, switch to WAL and migrate."""
        lock: OwnerLock | None = None
        path = self.database
        if path != MEMORY:
            path = os.path.realpath(path)
            if os.path.exists(path) and not os.access(path, os.W_OK):
                raise StorageError(
                    f"the SQLite database {self.database!r} is read-only for this process: "
                    "make it writable (jobify writes every durable job to it)"
                )
            lock = OwnerLock(self.database, path, self.file_mode)
            lock.acquire()
        try:
            conn = open_connection(
                self.database,
                path,
                self.queries,
                self.table,
                timeout=self.timeout,
                synchronous=self.synchronous,
            )
        except BaseException:
            if lock is not None:
                lock.release()
            raise
        self.path, self._lock, self.conn = path, lock, conn
        if lock is not None:
            self._key = lock.key
            assert self._key is not None
            connection_opened(self._key)
        check_file = None if lock is None else lock.check_file
        self.writer = BatchWriter(conn, self.queries, self.database, self.timeout, check_file)
        self._reader = Reader(conn, self.queries, self.database, sql.SCHEMA_VERSION)

    def open_inspector(self) -> None:
        """Connect read-only, without the owner lock; create and migrate nothing."""
        path = os.path.realpath(self.database)
        if not os.path.isfile(path):
            raise StorageError(
                f"{self.database!r} is not a jobify store: "
                + ("it is a directory" if os.path.isdir(path) else "no such file")
            )
        try:
            probe = OwnerProbe(path)
        except OSError as exc:
            raise StorageError(f"cannot open {self.database!r}: {exc.strerror}") from exc
        try:
            conn, version = open_reader(self.database, path, self.table, timeout=self.timeout)
        except BaseException:
            probe.close()
            raise
        self.path, self._probe, self.conn, self._key = path, probe, conn, probe.key
        connection_opened(probe.key)
        self._reader = Reader(conn, self.queries, self.database, version)

    def commit(self, units: list[Unit]) -> dict[int, object]:
        """The owner's group commit of ``units`` (see :class:`BatchWriter`)."""
        if self.writer is None or self.conn is None:  # only if a batch raced shutdown
            raise StorageError(f"the SQLite database {self.database!r} is closed")
        return self.writer.commit(units)

    def owner_running(self) -> bool:
        """Inspector side: whether the owner lock is held by a live process."""
        assert self._probe is not None
        return self._probe.owner_running()

    def send_command(self, payload: tuple[str, str, float]) -> int:
        """Inspector side: insert a command in one short transaction, then wake the owner."""
        self.reader.require_commands()
        if self._command_conn is None:
            self._command_conn = open_command_writer(self.path, timeout=self.timeout)
            assert self._key is not None
            connection_opened(self._key)
        conn = self._command_conn
        insert = self.queries.insert_command

        def body() -> int:
            return conn.execute(insert, payload).lastrowid  # type: ignore[return-value]

        command_id = retrying(self.timeout, partial(transaction, conn, body))
        try:
            # Created, if the owner has not yet, as private as the database itself is.
            touch(self.wake_path, os.stat(self.path).st_mode & 0o777)
        except OSError as exc:
            raise StorageError(
                f"command {command_id} is queued in {self.database!r}, but the running app "
                f"could not be woken: cannot touch {self.wake_path!r} ({exc.strerror}); it "
                "will apply the command when it next starts"
            ) from exc
        return command_id

    def close(self) -> None:
        """Close the connections, then release the lock (or the probe). Idempotent."""
        key, self._key = self._key, None
        lock, self._lock = self._lock, None
        probe, self._probe = self._probe, None
        conns = [self._command_conn, self.conn]
        self._command_conn = self.conn = None
        self._reader = None
        try:
            for conn in conns:
                if conn is not None:
                    conn.close()
                    if key is not None:
                        connection_closed(key)
        finally:
            if lock is not None:
                lock.release()
            if probe is not None:
                probe.close()
