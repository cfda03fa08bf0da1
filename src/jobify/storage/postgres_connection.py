"""Connections of :class:`~jobify.storage.PostgresStorage`: the driver, the DSN, errors, retries
and the schema migration.

Errors are sorted by what they tell about a statement that was sent:

- *not applied*: the connection could not be opened, or was closed before the statement was
  sent, or the server answered with an error (including the FATAL it sends when a backend is
  terminated or shut down: the transaction was rolled back). Safe to retry.
- *unknown*: the connection broke with no word from the server while a statement was in
  flight; it may have committed. Only idempotent statements are retried after that.
- anything else is a real error and is raised as a :class:`~jobify.exceptions.StorageError`.
"""

from __future__ import annotations

import asyncio
import importlib
import logging
import re
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from types import ModuleType
from typing import Any, TypeVar
from urllib.parse import parse_qsl, unquote, urlsplit

from jobify.exceptions import MissingDependencyError, SchemaVersionError, StorageError
from jobify.storage.sql import postgres as sql

__all__ = [
    "Target",
    "driver",
    "is_retryable",
    "is_unsent",
    "map_error",
    "migrate",
    "quote_schema",
    "retrying",
    "validate_schema",
]

logger = logging.getLogger("jobify.storage")

T = TypeVar("T")

_SCHEMA = re.compile(r"[A-Za-z_][A-Za-z0-9_]{0,47}")
# Server errors after which the same statement may well succeed: a serialization failure or
# deadlock (40xxx), the server shutting down or starting (57P0x), too many connections (53300).
_TRANSIENT_SQLSTATES = ("40001", "40P01", "57P01", "57P02", "57P03", "53300")
_BACKOFF_START = 0.05
_BACKOFF_MAX = 2.0


def driver() -> ModuleType:
    """The asyncpg module, or :class:`~jobify.exceptions.MissingDependencyError` naming the
    ``postgres`` extra."""
    try:
        return importlib.import_module("asyncpg")
    except ImportError as exc:
        raise MissingDependencyError("asyncpg", "postgres", "PostgresStorage") from exc


def validate_schema(schema: object) -> str:
    """Return ``schema`` if it is a plain identifier jobify may own, else raise ValueError."""
    if (
        not isinstance(schema, str)
        or not _SCHEMA.fullmatch(schema)
        or schema.lower().startswith("pg_")
        or schema.lower() in ("public", "information_schema")
    ):
        raise ValueError(
            "schema must be a plain identifier of at most 48 characters (letters, digits and "
            "_, not starting with a digit or 'pg_', not 'public'): jobify creates its tables "
            f"in it and nothing outside it; got {schema!r}"
        )
    return schema


def quote_schema(schema: str) -> str:
    """The schema as a quoted SQL identifier (case kept as given)."""
    return '"' + schema + '"'


@dataclass(frozen=True, slots=True)
class Target:
    """What a DSN points at, for messages: never the password."""

    host: str
    port: str
    database: str
    user: str
    password: str | None

    @classmethod
    def parse(cls, dsn: str) -> Target:
        """Read the parts of a ``postgresql://`` URI (ValueError for anything else)."""
        if not isinstance(dsn, str):
            raise TypeError(f"dsn must be a str, got {type(dsn).__name__}")
        parts = urlsplit(dsn)
        if parts.scheme not in ("postgres", "postgresql"):
            raise ValueError(
                "dsn must be a PostgreSQL URI such as "
                "'postgresql://user:password@host:5432/database', got one starting with "
                f"{parts.scheme + '://' if parts.scheme else repr(dsn[:12])}"
            )
        query = dict(parse_qsl(parts.query))
        netloc = parts.netloc.rpartition("@")[2]
        credentials = parts.netloc.rpartition("@")[0] if "@" in parts.netloc else ""
        user, _, password = credentials.partition(":")
        host, port = netloc, ""
        if netloc.startswith("["):  # IPv6 literal
            host, _, rest = netloc[1:].partition("]")
            port = rest.lstrip(":")
        elif "," not in netloc and ":" in netloc:
            host, _, port = netloc.rpartition(":")
        return cls(
            host=unquote(host) or query.get("host", "localhost"),
            port=port or query.get("port", "5432"),
            database=unquote(parts.path.lstrip("/")) or query.get("dbname", "") or "(default)",
            user=unquote(user) or query.get("user", "(default)"),
            password=unquote(password) if password else query.get("password"),
        )

    def __str__(self) -> str:
        return f"{self.host}:{self.port}/{self.database}"

    def scrub(self, text: str) -> str:
        """``text`` with the password (if any) masked."""
        if self.password:
            return text.replace(self.password, "***")
        return text

    def safe_dsn(self, dsn: str) -> str:
        """The DSN with its password masked (for ``repr``)."""
        return self.scrub(dsn)


def _sqlstate(exc: BaseException) -> str | None:
    state = getattr(exc, "sqlstate", None)
    return state if isinstance(state, str) else None


def is_unsent(exc: BaseException) -> bool:
    """Whether ``exc`` says the statement was never sent because the connection is in the
    middle of something else. asyncpg raises it when a backend that sat idle in the pool was
    terminated: the server's FATAL has been read (the protocol waits for a sync that never
    comes) but the close has not, so the connection still looks open. Nothing was sent; the
    connection is dead and must not be used again."""
    pg = driver()
    return isinstance(exc, pg.exceptions.InternalClientError) and str(exc).startswith(
        "cannot switch to state"
    )


def is_retryable(exc: BaseException, *, idempotent: bool) -> bool:
    """Whether a statement that failed with ``exc`` may be sent again (see module doc)."""
    pg = driver()
    if is_unsent(exc):
        return True
    if isinstance(exc, OSError | TimeoutError):
        # Refused, unreachable or timed out while connecting (nothing sent), or a socket
        # error mid-statement (outcome unknown).
        return idempotent or isinstance(exc, ConnectionRefusedError)
    if isinstance(exc, pg.exceptions.ConnectionDoesNotExistError):
        # With a server error as its cause the server rolled the statement back (a
        # terminated backend sends FATAL instead of the statement's result).
        return idempotent or isinstance(exc.__cause__, pg.PostgresError)
    if isinstance(exc, pg.InterfaceError) and "closed" in str(exc):
        return True  # raised before sending: the connection was already closed
    state = _sqlstate(exc)
    if state is not None:
        return state in _TRANSIENT_SQLSTATES or (state.startswith("08") and idempotent)
    return False


def map_error(exc: BaseException, target: Target, doing: str) -> StorageError:
    """A :class:`StorageError` naming the server and what was being done (no password)."""
    if isinstance(exc, StorageError):
        return exc
    pg = driver()
    detail = target.scrub(str(exc) or type(exc).__name__)
    unreachable = (
        OSError,
        TimeoutError,
        pg.exceptions.ConnectionDoesNotExistError,
        pg.exceptions.CannotConnectNowError,
    )
    if isinstance(exc, unreachable):
        message = (
            f"cannot reach PostgreSQL at {target.host}:{target.port} (database "
            f"{target.database!r}) while {doing}: {detail}"
        )
    elif isinstance(exc, pg.InvalidPasswordError | pg.InvalidAuthorizationSpecificationError):
        message = (
            f"PostgreSQL at {target.host}:{target.port} refused user {target.user!r} "
            f"(database {target.database!r}) while {doing}: {detail}; check the DSN's "
            "user and password"
        )
    elif isinstance(exc, pg.InvalidCatalogNameError):
        message = (
            f"PostgreSQL at {target.host}:{target.port} has no database "
            f"{target.database!r}: create it or fix the DSN ({detail})"
        )
    else:
        message = f"PostgreSQL at {target} failed while {doing}: {detail}"
    error = StorageError(message)
    error.__cause__ = exc
    return error


async def retrying(
    call: Callable[[], Awaitable[T]],
    *,
    target: Target,
    doing: str,
    idempotent: bool,
    deadline: float,
) -> T:
    """Await ``call()``; retry it with back-off while it fails retryably and before
    ``deadline`` (a ``time.monotonic()`` value); raise a mapped StorageError otherwise."""
    delay = _BACKOFF_START
    while True:
        try:
            return await call()
        except StorageError:
            raise
        except Exception as exc:
            if not is_retryable(exc, idempotent=idempotent) or time.monotonic() >= deadline:
                raise map_error(exc, target, doing) from exc
            if is_unsent(exc):
                continue  # nothing was sent and that connection is closed: at once, quietly
            logger.warning(
                "PostgreSQL at %s: %s failed (%s); retrying in %.2f s",
                target,
                doing,
                target.scrub(str(exc) or type(exc).__name__),
                delay,
            )
            await asyncio.sleep(min(delay, max(0.0, deadline - time.monotonic())))
            delay = min(delay * 2, _BACKOFF_MAX)


async def migrate(conn: Any, schema: str, *, create: bool) -> None:
    """Create or migrate the schema on ``conn`` under an advisory lock (``create``), or only
    check that it is a jobify schema this code can read (inspection)."""
    quoted = quote_schema(schema)

    def q(template: str) -> str:
        return sql.bind(template, quoted)[0]

    async def version() -> int | None:
        if not await conn.fetchval(q(sql.META_EXISTS), f"{quoted}.meta"):
            return None
        raw = await conn.fetchval(q(sql.GET_VERSION))
        try:
            return int(raw)
        except (TypeError, ValueError):
            raise StorageError(
                f"schema {schema!r} has a jobify meta table with an unreadable version {raw!r}"
            ) from None

    def check(found: int | None) -> None:
        if found is not None and found > sql.SCHEMA_VERSION:
            raise SchemaVersionError(
                f"schema {schema!r} was written by a newer jobify (schema version {found}, "
                f"this code knows up to {sql.SCHEMA_VERSION}): upgrade jobify"
            )

    if not create:
        found = await version()
        if found is None:
            raise StorageError(
                f"not a jobify store: schema {schema!r} has no jobify tables (a worker "
                "creates them when it starts)"
            )
        check(found)
        if found < sql.SCHEMA_VERSION:
            raise StorageError(
                f"schema {schema!r} is at version {found}, older than this code "
                f"({sql.SCHEMA_VERSION}): start a worker once to migrate it"
            )
        return
    async with conn.transaction():
        await conn.execute(q(sql.ADVISORY_LOCK), f"jobify schema {schema}")
        await conn.execute(q(sql.CREATE_SCHEMA))
        found = await version()
        check(found)
        current = found or 0
        if current == sql.SCHEMA_VERSION:
            return
        pg = driver()
        for step in sql.MIGRATIONS[current:]:
            for statement in step:
                try:
                    await conn.execute(q(statement))
                except pg.DuplicateTableError as exc:
                    raise StorageError(
                        f"schema {schema!r} already holds tables that jobify did not create "
                        f"({exc}): give PostgresStorage a schema of its own"
                    ) from exc
        await conn.execute(q(sql.SET_VERSION), str(sql.SCHEMA_VERSION))
        logger.info("PostgreSQL schema %r migrated to version %d", schema, sql.SCHEMA_VERSION)
