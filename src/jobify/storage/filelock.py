"""Single ownership of an embedded database file: an exclusive ``flock`` on the file itself.

The lock is taken on the database file's inode, not on a name, so a symlink or a hard link
to the same file cannot give it a second owner. ``flock`` locks and the POSIX (``fcntl``)
record locks SQLite uses are independent of each other on Linux and the BSDs, so the two
never interfere.

One trap remains, and :func:`close_descriptor` is about it: closing *any* descriptor of a
file drops every POSIX lock the process holds on that file, including the locks of SQLite
connections that are still open (in WAL mode each connection keeps a shared lock on the
database file; without it, another process closing its last connection would take the file
for its own, checkpoint and delete the WAL under us). So a descriptor of ours on a database
file is closed only once no jobify connection to that file is open in this process.
"""

from __future__ import annotations

import os
import sys
import threading
import time
from typing import NoReturn

from jobify.exceptions import StorageError, StorageLockedError

if sys.platform != "win32":
    import fcntl

__all__ = [
    "PRIVATE",
    "FileKey",
    "OwnerLock",
    "OwnerProbe",
    "close_descriptor",
    "connection_closed",
    "connection_opened",
    "open_created",
]

FileKey = tuple[int, int]
"""A file's identity: ``(st_dev, st_ino)``."""

_CLOEXEC = getattr(os, "O_CLOEXEC", 0)  # absent on Windows

_PATH_CHECK_INTERVAL = 1.0
"""Seconds between two looks at what the database path names (see OwnerLock.check_file)."""

_LOCK_RETRY = 0.05
"""Seconds a blocked owner keeps trying: an inspector's probe holds the lock for
microseconds, and must not make an app that starts at that instant fail."""

_guard = threading.Lock()
_connections: dict[FileKey, int] = {}  # open jobify SQLite connections per file
_parked: dict[FileKey, list[int]] = {}  # descriptors waiting for those to close


def connection_opened(key: FileKey) -> None:
    """Count a SQLite connection to the file ``key`` opened by this process."""
    with _guard:
        _connections[key] = _connections.get(key, 0) + 1


def connection_closed(key: FileKey) -> None:
    """Uncount one; close the descriptors parked for the file once none is left."""
    with _guard:
        left = _connections.get(key, 0) - 1
        if left > 0:
            _connections[key] = left
            return
        _connections.pop(key, None)
        parked = _parked.pop(key, [])
    for fd in parked:
        os.close(fd)


def close_descriptor(fd: int, key: FileKey) -> None:
    """Close ``fd`` of the file ``key`` now, or once this process has no connection to it."""
    with _guard:
        if _connections.get(key):
            _parked.setdefault(key, []).append(fd)
            return
    os.close(fd)


def _key(fd: int) -> FileKey:
    info = os.fstat(fd)
    return info.st_dev, info.st_ino


PRIVATE = 0o600
"""The mode of every file a store creates, unless told otherwise: a job's arguments often
hold addresses and tokens, which other local users must not read."""


def open_created(path: str, flags: int, mode: int) -> int:
    """``os.open(path, flags | O_CREAT)``, where a file this call creates gets exactly ``mode``
    whatever the umask (which could only narrow it; ``mode`` may be wider, e.g. 0o660 for a
    group). A file that exists keeps its mode."""
    try:
        fd = os.open(path, flags | os.O_CREAT | os.O_EXCL, mode)
    except FileExistsError:
        return os.open(path, flags)
    try:
        if os.chmod in os.supports_fd:
            os.chmod(fd, mode)
    except OSError:
        pass  # e.g. a filesystem without modes: what the umask left stays
    return fd


class OwnerLock:
    """An exclusive, non-blocking ``flock`` on the database file: one running app per file.

    ``database`` is the path as the user gave it (for messages); ``path`` the resolved one.
    The file is created empty when absent (an empty file is a valid new SQLite database).
    The kernel drops the lock when the holder dies, even on kill -9. The holder's pid is
    written to ``<path>.lock`` only so that a second process's error can name it; that file
    is emptied on release and never deleted.
    """

    def __init__(self, database: str, path: str, mode: int = PRIVATE) -> None:
        self.database = database
        self.path = path
        self.mode = mode
        self.pid_path = path + ".lock"
        self.key: FileKey | None = None
        self._fd: int | None = None
        self._next_path_check = 0.0

    def acquire(self) -> None:
        """Take the lock or raise :class:`StorageLockedError` naming the holder's pid."""
        try:
            fd = open_created(self.path, os.O_RDWR | _CLOEXEC, self.mode)
        except OSError as exc:
            raise StorageError(
                f"cannot open or create the SQLite database {self.database!r}: "
                f"{exc.strerror}; its directory must exist and be writable"
            ) from exc
        key = _key(fd)
        if sys.platform != "win32":  # no flock there: single ownership is not enforced
            try:
                self._lock(fd)
            except BaseException:
                close_descriptor(fd, key)
                raise
        self._fd, self.key = fd, key
        try:
            self._write_pid(f"{os.getpid()}\n")
        except OSError as exc:
            self.release()
            raise StorageError(
                f"cannot write the lock file {self.pid_path!r} of the SQLite database "
                f"{self.database!r}: {exc.strerror}; the directory must be writable (SQLite "
                "also keeps its -wal and -shm files there)"
            ) from exc

    def _lock(self, fd: int) -> None:
        deadline = time.monotonic() + _LOCK_RETRY
        while True:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                return
            except BlockingIOError:
                if time.monotonic() >= deadline:
                    break
                time.sleep(0.005)
            except OSError as exc:
                raise StorageError(f"cannot lock {self.database!r}: {exc.strerror}") from exc
        pid = _read_pid(self.pid_path)
        # No pid: the holder opened the file under another name (a hard link), or is
        # between taking the lock and writing its pid.
        holder = (
            f"pid {pid}, see {self.pid_path!r}"
            if pid
            else "pid unknown: it may have opened the file under another name, e.g. a hard link"
        )
        if pid == str(os.getpid()):
            raise StorageLockedError(
                f"the SQLite database {self.database!r} is already in use by another app in "
                "this same process: one SQLite file belongs to one running app. Shut the "
                "other app down first, or give each app its own file."
            )
        raise StorageLockedError(
            f"the SQLite database {self.database!r} is in use by another running process "
            f"({holder}): one SQLite file belongs to one running app. Stop that process or "
            "use another file; to run several workers on one job store, use PostgresStorage."
        )

    def _write_pid(self, text: str) -> None:
        fd = open_created(self.pid_path, os.O_RDWR | _CLOEXEC, self.mode)
        try:
            os.ftruncate(fd, 0)
            if text:
                os.write(fd, text.encode())
        finally:
            os.close(fd)

    def release(self) -> None:
        """Release the lock if held. Idempotent."""
        fd, self._fd = self._fd, None
        if fd is None:
            return
        assert self.key is not None
        try:
            # Emptied while still holding the lock: once it is released the file may already
            # carry the pid of the next owner.
            self._write_pid("")
        except OSError:
            pass
        finally:
            if sys.platform != "win32":
                fcntl.flock(fd, fcntl.LOCK_UN)
            close_descriptor(fd, self.key)

    def check_file(self) -> None:
        """Raise :class:`StorageError` unless ``path`` still names the locked file: writes
        into a file deleted or replaced under us would be lost without a word.

        Called before every commit, so it is cheap: the link count of the open file (0 once
        it was deleted, or replaced by a rename, and so is out of every directory), plus,
        at most once a second, a look at what ``path`` names now (it only differs while the
        file is still reachable through another hard link: nothing is lost meanwhile).
        """
        assert self._fd is not None
        now = time.monotonic()
        if os.fstat(self._fd).st_nlink != 0 and now < self._next_path_check:
            return
        self._next_path_check = now + _PATH_CHECK_INTERVAL
        try:
            info = os.stat(self.path)
        except FileNotFoundError:
            self._refuse("was deleted")
        except OSError as exc:
            self._refuse(f"cannot be checked ({exc.strerror})")
        if (info.st_dev, info.st_ino) != self.key:
            self._refuse("was replaced by another file")
        if os.fstat(self._fd).st_nlink == 0:  # unlinked by some other name, then re-linked?
            self._refuse("was deleted")

    def _refuse(self, problem: str) -> NoReturn:
        self._next_path_check = 0.0  # and look again at the next commit
        raise StorageError(
            f"the SQLite database {self.database!r} {problem} while this app was running on "
            "it: writes are refused rather than lost in a file nobody can open again. Restore "
            "the file, or restart the app"
        )


class OwnerProbe:
    """An inspector's question to the lock: is an owner running? Never keeps the lock.

    Holds a read-only descriptor of the database file for its whole life (see the module
    docstring for why it is not reopened per question).
    """

    def __init__(self, path: str) -> None:
        self.path = path
        self._fd: int | None = os.open(path, os.O_RDONLY | _CLOEXEC)
        self.key = _key(self._fd)

    def owner_running(self) -> bool:
        """Whether a live process holds the owner lock right now."""
        assert self._fd is not None
        if sys.platform == "win32":  # no flock: trust the pid file (may be stale)
            return _read_pid(self.path + ".lock") is not None
        try:
            # Shared: probes of several inspectors do not collide; the owner's exclusive
            # lock stops it.
            fcntl.flock(self._fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
        except BlockingIOError:
            return True
        fcntl.flock(self._fd, fcntl.LOCK_UN)
        return False

    def close(self) -> None:
        """Close the descriptor (deferred while this process has a connection to the file)."""
        fd, self._fd = self._fd, None
        if fd is not None:
            close_descriptor(fd, self.key)


def _read_pid(pid_path: str) -> str | None:
    try:
        with open(pid_path, "rb") as file:
            text = file.read(32).decode("ascii", "replace").strip()
    except OSError:
        return None
    return text if text.isdigit() else None
