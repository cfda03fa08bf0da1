"""The LISTEN connection of a :class:`~jobify.storage.PostgresStorage`.

One dedicated connection per storage runs ``LISTEN`` on the schema's channel and turns each
notification into a call on the :class:`~jobify.storage.base.SharedListener`. It sends no
query after the ``LISTEN``. When the connection drops (server restart, a terminated backend,
a network error), it reconnects with back-off and then calls ``on_resync()``: notifications
sent while it was away are lost, so the worker must re-read what it derived from them.

A connection that dies with a word from the server (a terminated backend, a shutdown) is
noticed at once. One that goes silent (a peer host that vanished, a NAT or firewall that
forgot the flow) would be noticed by nothing, since this connection never sends: its socket
keeps TCP alive with probes after 1 s of silence, 1 s apart, and gives up on the first one
unanswered, so a silent drop is noticed within about 2 s (the kernel does it; PostgreSQL
sees no query).

LISTEN needs a session: the connection must reach PostgreSQL directly or through a pooler in
*session* mode. A transaction-mode pooler (PgBouncer ``pool_mode = transaction``) hands the
session to other clients between transactions, and notifications never arrive.

Payloads (text, first character is the kind):

- ``n<exec_at>``: rows became claimable, the earliest at ``exec_at`` (epoch seconds as
  PostgreSQL prints a double, e.g. ``n1700000000.25``);
- ``c["id", ...]``: these jobs were replaced, paused, resumed or deleted by someone else;
- ``f["id", ...]``: a result was recorded for these jobs;
- ``r``: a list too long for one notification was left out: resynchronise.
"""

from __future__ import annotations

import asyncio
import functools
import json
import logging
import socket
from collections.abc import Awaitable, Callable
from typing import Any

from jobify.storage.base import SharedListener
from jobify.storage.postgres_connection import Target, driver, map_error

__all__ = ["KEEPALIVE", "Notifications", "dispatch", "keep_alive", "listening_connection"]

logger = logging.getLogger("jobify.storage")

_BACKOFF_START = 0.05
_BACKOFF_MAX = 5.0

KEEPALIVE = {"TCP_KEEPIDLE": 1, "TCP_KEEPINTVL": 1, "TCP_KEEPCNT": 1, "TCP_USER_TIMEOUT": 1000}
"""TCP options of the LISTEN socket (seconds; the user timeout in ms), where the platform
has them: probe after 1 s of silence, give up on the first probe left unanswered."""


def keep_alive(sock: Any) -> None:
    """Turn TCP keepalive on for ``sock`` with :data:`KEEPALIVE` (TCP sockets only)."""
    if sock is None or sock.family not in (socket.AF_INET, socket.AF_INET6):
        return  # a Unix socket: the server is on this host, its death closes the socket
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_KEEPALIVE, 1)
    for name, value in KEEPALIVE.items():
        option = getattr(socket, name, None)
        if option is not None:
            sock.setsockopt(socket.IPPROTO_TCP, option, value)


@functools.cache
def listening_connection() -> type[Any]:
    """asyncpg's Connection whose socket keeps TCP alive (made on first use: asyncpg is an
    optional dependency)."""
    base: type[Any] = driver().Connection

    class KeptAlive(base):  # type: ignore[misc]
        def __init__(self, protocol: Any, transport: Any, *args: Any, **kwargs: Any) -> None:
            super().__init__(protocol, transport, *args, **kwargs)
            keep_alive(transport.get_extra_info("socket"))

    return KeptAlive


def dispatch(listener: SharedListener, payload: str) -> None:
    """Decode one payload and call ``listener`` (a malformed payload is logged, not raised)."""
    kind, body = payload[:1], payload[1:]
    try:
        if kind == "n":
            listener.on_new_job(float(body))
        elif kind == "c":
            for job_id in _ids(body):
                listener.on_job_changed(job_id)
        elif kind == "f":
            for job_id in _ids(body):
                listener.on_job_finished(job_id)
        elif kind == "r":
            listener.on_resync()
        else:
            raise ValueError(f"unknown kind {kind!r}")
    except (ValueError, TypeError) as exc:
        logger.warning("ignoring a malformed jobify notification %r: %s", payload[:200], exc)


def _ids(body: str) -> list[str]:
    ids = json.loads(body)
    if not isinstance(ids, list) or not all(isinstance(i, str) for i in ids):
        raise ValueError("expected a JSON array of job ids")
    return ids


class Notifications:
    """LISTEN on ``channel`` over its own connection, forwarding to a listener.

    ``connect`` opens a new connection; ``listener`` returns the current listener (it may be
    changed or removed at any time). ``start()`` raises a StorageError when the first
    connection cannot be made; later drops are retried forever until ``close()``.
    """

    def __init__(
        self,
        connect: Callable[[], Awaitable[Any]],
        channel: str,
        target: Target,
        listener: Callable[[], SharedListener | None],
    ) -> None:
        self._connect = connect
        self._channel = channel
        self._target = target
        self._listener = listener
        self._conn: Any = None
        self._reconnecting: asyncio.Task[None] | None = None
        self._closed = False
        self.reconnects = 0
        """How many times the connection was re-established (for tests and monitoring)."""

    @property
    def connected(self) -> bool:
        """Whether the LISTEN is in place right now."""
        return self._conn is not None and not self._conn.is_closed()

    async def start(self) -> None:
        """Open the connection and LISTEN (StorageError naming the server on failure)."""
        try:
            await self._open()
        except Exception as exc:
            raise map_error(exc, self._target, "opening the LISTEN connection") from exc

    async def close(self) -> None:
        """Stop listening and close the connection. Idempotent."""
        self._closed = True
        task, self._reconnecting = self._reconnecting, None
        if task is not None:
            task.cancel()
            await asyncio.gather(task, return_exceptions=True)
        conn, self._conn = self._conn, None
        if conn is not None and not conn.is_closed():
            conn.remove_termination_listener(self._on_terminated)
            try:
                await conn.close(timeout=2)
            except Exception:  # closing a broken connection: nothing left to release
                conn.terminate()

    async def _open(self) -> None:
        conn = await self._connect()
        try:
            await conn.add_listener(self._channel, self._on_notification)
        except BaseException:
            conn.terminate()
            raise
        conn.add_termination_listener(self._on_terminated)
        self._conn = conn

    def _on_notification(self, _conn: object, _pid: int, _channel: str, payload: str) -> None:
        listener = self._listener()
        if listener is None:
            return
        try:
            dispatch(listener, payload)
        except Exception:  # the listener's own bug must not silence later notifications
            logger.exception("a jobify listener failed on notification %r", payload[:200])

    def _on_terminated(self, _conn: object) -> None:
        self._conn = None
        if self._closed or self._reconnecting is not None:
            return
        logger.warning(
            "the LISTEN connection to PostgreSQL at %s was lost; reconnecting", self._target
        )
        self._reconnecting = asyncio.get_running_loop().create_task(self._reconnect())

    async def _reconnect(self) -> None:
        delay = _BACKOFF_START
        while not self._closed:
            try:
                await self._open()
            except Exception as exc:
                logger.warning(
                    "cannot re-open the LISTEN connection to PostgreSQL at %s (%s); retrying "
                    "in %.2f s",
                    self._target,
                    map_error(exc, self._target, "listening"),
                    delay,
                )
                await asyncio.sleep(delay)
                delay = min(delay * 2, _BACKOFF_MAX)
                continue
            self._reconnecting = None
            self.reconnects += 1
            logger.info("the LISTEN connection to PostgreSQL at %s is back", self._target)
            listener = self._listener()
            if listener is not None:
                try:
                    listener.on_resync()
                except Exception:
                    logger.exception("a jobify listener failed in on_resync()")
            return
