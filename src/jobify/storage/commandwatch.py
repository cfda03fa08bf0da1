"""Waking the app that owns a SQLite store when an inspector sends it a command.

The inspector commits the command, then touches a sidecar file next to the database
(:func:`touch`). The owner watches that file (:class:`CommandWatcher`): on Linux with inotify
(through ``ctypes``, the descriptor registered with ``loop.add_reader``), so it wakes within
milliseconds and costs nothing while idle; the database and its WAL are not watched, so the
owner's own commits never wake it. Elsewhere, or if inotify is unavailable (no watches left,
a seccomp filter), it checks the sidecar's modification time once a second with one timer.
"""

from __future__ import annotations

import ctypes
import logging
import os
import struct
import sys
import time
from asyncio import AbstractEventLoop, Handle, TimerHandle
from collections.abc import Callable
from typing import Literal

from jobify.storage.filelock import PRIVATE, open_created

__all__ = ["POLL_INTERVAL", "CommandWatcher", "touch"]

logger = logging.getLogger("jobify.storage")

POLL_INTERVAL = 1.0
"""Seconds between two checks of the sidecar where inotify is not available."""
_COARSE_MTIME = 2.0
"""Some filesystems keep modification times to the second (or two): a second touch that
soon after a first may leave it unchanged, so the poller wakes again for that long."""

# From <sys/inotify.h>.
_IN_MODIFY, _IN_ATTRIB, _IN_CLOSE_WRITE = 0x2, 0x4, 0x8
_IN_DELETE_SELF, _IN_MOVE_SELF, _IN_IGNORED = 0x400, 0x800, 0x8000
_IN_NONBLOCK, _IN_CLOEXEC = 0o4000, 0o2000000  # O_NONBLOCK, O_CLOEXEC on Linux
_MASK = _IN_MODIFY | _IN_ATTRIB | _IN_CLOSE_WRITE | _IN_DELETE_SELF | _IN_MOVE_SELF
_LOST = _IN_DELETE_SELF | _IN_MOVE_SELF | _IN_IGNORED  # the watched inode left the path
_EVENT = struct.Struct("iIII")  # wd, mask, cookie, len (then len bytes of name)
_CLOEXEC = getattr(os, "O_CLOEXEC", 0)  # absent on Windows


def touch(path: str, mode: int = PRIVATE) -> None:
    """Inspector side: mark the sidecar changed (created with ``mode`` if absent), waking
    the owner."""
    fd = open_created(path, os.O_WRONLY | _CLOEXEC, mode)
    try:
        os.utime(fd if os.utime in os.supports_fd else path)
    finally:
        os.close(fd)


def _ensure(path: str, mode: int) -> None:
    os.close(open_created(path, os.O_WRONLY | _CLOEXEC, mode))


class _Inotify:
    """The three libc calls, bound once."""

    def __init__(self) -> None:
        libc = ctypes.CDLL(None, use_errno=True)
        self.init1 = libc.inotify_init1
        self.init1.argtypes = [ctypes.c_int]
        self.init1.restype = ctypes.c_int
        self.add_watch = libc.inotify_add_watch
        self.add_watch.argtypes = [ctypes.c_int, ctypes.c_char_p, ctypes.c_uint32]
        self.add_watch.restype = ctypes.c_int
        self.rm_watch = libc.inotify_rm_watch
        self.rm_watch.argtypes = [ctypes.c_int, ctypes.c_int]
        self.rm_watch.restype = ctypes.c_int


_inotify: _Inotify | None = None


def _libc_inotify() -> _Inotify:
    global _inotify
    if _inotify is None:
        if not sys.platform.startswith("linux"):
            raise OSError("inotify is Linux only")
        try:
            _inotify = _Inotify()
        except (OSError, AttributeError) as exc:
            raise OSError(f"inotify is not available: {exc}") from exc
    return _inotify


def _check(result: int, what: str) -> int:
    if result < 0:
        errno = ctypes.get_errno()
        raise OSError(errno, f"{what}: {os.strerror(errno)}")
    return result


class CommandWatcher:
    """Calls ``wake`` on the loop whenever the sidecar file at ``path`` is touched.

    ``use_inotify=False`` forces the polling fallback (it is how the fallback is tested on
    Linux). The sidecar is created if absent. :meth:`stop` must be called on the loop.
    """

    def __init__(
        self,
        path: str,
        loop: AbstractEventLoop,
        wake: Callable[[], None],
        *,
        use_inotify: bool = True,
        file_mode: int = PRIVATE,
    ) -> None:
        self.path = path
        self.file_mode = file_mode
        self._loop = loop
        self._wake = wake
        self._use_inotify = use_inotify
        self.mode: Literal["inotify", "poll", "stopped"] = "stopped"
        self._fd = -1
        self._wd = -1
        self._timer: TimerHandle | Handle | None = None
        self._signature: tuple[int, int, int] | None = None
        self._changed_at = -_COARSE_MTIME

    def start(self) -> None:
        """Create the sidecar and start watching it. Raises ``OSError`` when the sidecar
        cannot be created."""
        _ensure(self.path, self.file_mode)
        if self._use_inotify:
            try:
                self._start_inotify()
                return
            except (OSError, NotImplementedError) as exc:  # the latter: no loop.add_reader
                logger.debug("checking %s once a second: %s", self.path, exc)
        self._signature = _signature(self.path)
        self.mode = "poll"
        self._timer = self._loop.call_later(POLL_INTERVAL, self._poll)

    def stop(self) -> None:
        """Stop watching. Idempotent."""
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        if self._fd >= 0:
            self._loop.remove_reader(self._fd)
            os.close(self._fd)
            self._fd = -1
        self.mode = "stopped"

    # -- inotify ----------------------------------------------------------------------------

    def _start_inotify(self) -> None:
        calls = _libc_inotify()
        fd = _check(calls.init1(_IN_NONBLOCK | _IN_CLOEXEC), "inotify_init1")
        try:
            self._wd = _check(
                calls.add_watch(fd, os.fsencode(self.path), _MASK), "inotify_add_watch"
            )
            self._loop.add_reader(fd, self._on_events)
        except BaseException:
            os.close(fd)
            raise
        self._fd = fd
        self.mode = "inotify"

    def _on_events(self) -> None:
        lost = False
        while True:
            try:
                data = os.read(self._fd, 65536)
            except BlockingIOError:
                break
            if not data:
                break
            offset = 0
            while offset + _EVENT.size <= len(data):
                _, mask, _, length = _EVENT.unpack_from(data, offset)
                lost = lost or bool(mask & _LOST)
                offset += _EVENT.size + length
        if lost:
            self._rewatch()
        self._wake()

    def _rewatch(self) -> None:
        # The sidecar was deleted or renamed: watch whatever file now has its name.
        calls = _libc_inotify()
        calls.rm_watch(self._fd, self._wd)  # fails harmlessly when already gone
        try:
            _ensure(self.path, self.file_mode)
            self._wd = _check(
                calls.add_watch(self._fd, os.fsencode(self.path), _MASK), "inotify_add_watch"
            )
        except OSError as exc:
            logger.warning("cannot watch %s again (%s): checking it once a second", self.path, exc)
            self.stop()
            self._signature = _signature(self.path)
            self.mode = "poll"
            self._timer = self._loop.call_later(POLL_INTERVAL, self._poll)

    # -- polling ----------------------------------------------------------------------------

    def _poll(self) -> None:
        self._timer = self._loop.call_later(POLL_INTERVAL, self._poll)
        signature = _signature(self.path)
        now = time.monotonic()
        if signature != self._signature:
            self._signature = signature
            self._changed_at = now
            self._wake()
        elif now - self._changed_at < _COARSE_MTIME:
            self._wake()


def _signature(path: str) -> tuple[int, int, int] | None:
    try:
        info = os.stat(path)
    except OSError:
        return None
    return info.st_ino, info.st_mtime_ns, info.st_size
