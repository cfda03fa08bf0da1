"""Single ownership of an embedded database file: an exclusive ``flock`` on a sidecar file."""

from __future__ import annotations

import os
import sys

from jobify.exceptions import StorageError, StorageLockedError

if sys.platform != "win32":
    import fcntl

__all__ = ["OwnerLock"]


class OwnerLock:
    """An exclusive, non-blocking ``flock`` on ``<database>.lock``: one running app per file.

    The kernel drops the lock when the holder dies, even on kill -9, so a lock file left
    behind by a dead process is simply taken over. The holder's pid is written into the file
    only so that the error seen by a second process can name it. The file itself is never
    deleted: unlinking a lock file another process may have just opened would let two
    processes each lock a different inode.
    """

    def __init__(self, database: str) -> None:
        self.database = database
        self.path = database + ".lock"
        self._fd: int | None = None

    def acquire(self) -> None:
        """Take the lock or raise :class:`StorageLockedError` naming the holder's pid."""
        if sys.platform == "win32":
            # No flock on Windows: the single-owner guarantee is not enforced there.
            return
        try:
            fd = os.open(self.path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o644)
        except OSError as exc:
            raise StorageError(
                f"cannot create the lock file {self.path!r} for the SQLite database "
                f"{self.database!r}: {exc.strerror}; the directory must be writable (SQLite "
                "also keeps its -wal and -shm files there)"
            ) from exc
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = _read_pid(fd)
            os.close(fd)
            raise StorageLockedError(
                f"the SQLite database {self.database!r} is in use by another running process "
                f"(pid {holder}, see {self.path!r}): one SQLite file belongs to one running "
                "app. Stop that process or use another file; to run several workers on one "
                "job store, use PostgresStorage."
            ) from None
        except OSError as exc:
            os.close(fd)
            raise StorageError(f"cannot lock {self.path!r}: {exc.strerror}") from exc
        os.ftruncate(fd, 0)
        os.pwrite(fd, f"{os.getpid()}\n".encode(), 0)
        self._fd = fd

    def release(self) -> None:
        """Release the lock if held. Idempotent."""
        fd, self._fd = self._fd, None
        if fd is None:
            return
        # Truncate while still holding the lock: once it is released the file may already
        # carry the pid of the next owner.
        try:
            os.ftruncate(fd, 0)
        finally:
            os.close(fd)  # closing the descriptor releases the flock


def _read_pid(fd: int) -> str:
    try:
        text = os.pread(fd, 32, 0).decode("ascii", "replace").strip()
    except OSError:
        text = ""
    return text if text.isdigit() else "unknown"
