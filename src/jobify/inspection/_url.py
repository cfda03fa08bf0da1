"""Storage URLs: which store to open, from one string (``--storage``, ``JOBIFY_STORAGE``).

Accepted forms, following SQLAlchemy's convention for SQLite:

- ``sqlite:///relative/path.db`` (three slashes: relative to the working directory),
- ``sqlite:////absolute/path.db`` (four slashes: an absolute path),
- a bare file path (``jobs.db``, ``/var/lib/app/jobs.db``),
- ``postgresql://user@host:5432/db`` (or ``postgres://``) for the shared PostgreSQL store.

Options go in the query string: ``?table=NAME`` (SQLite: the jobs table, default
``jobify_schedules``), ``?schema=NAME`` (PostgreSQL: the schema, default ``jobify``). A
driver suffix (``postgresql+asyncpg://``, ``sqlite+aiosqlite://``) is accepted and ignored.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Literal
from urllib.parse import parse_qsl, unquote, urlsplit, urlunsplit

from jobify.inspection._model import InspectionError
from jobify.storage.base import Storage

__all__ = ["StoreLocation", "parse_storage_url"]

_FORMS = "sqlite:///relative.db, sqlite:////absolute/path.db, a file path, or postgresql://…"
_SQLITE_OPTIONS = frozenset({"table"})
_POSTGRES_OPTIONS = frozenset({"schema"})


@dataclass(frozen=True, slots=True)
class StoreLocation:
    """A parsed storage URL: what kind of store, where, and with which options.

    ``location`` is the SQLite file path or the PostgreSQL DSN (which may hold a password:
    never print it; use :attr:`display`).
    """

    kind: Literal["sqlite", "postgresql"]
    location: str
    options: Mapping[str, str] = field(default_factory=dict)
    display: str = ""
    """A description for messages (no password)."""

    def create(self) -> Storage:
        """A new, unopened storage instance for this location.

        Raises :class:`InspectionError` when this jobify has no PostgreSQL storage, and
        :class:`~jobify.exceptions.MissingDependencyError` when its driver is not installed.
        """
        if self.kind == "sqlite":
            from jobify.storage import SQLiteStorage

            table = self.options.get("table")
            if table is None:
                return SQLiteStorage(self.location)
            return SQLiteStorage(self.location, table_name=table)
        # Imported lazily: the PostgreSQL backend (and its driver) is optional.
        import jobify.storage

        postgres = getattr(jobify.storage, "PostgresStorage", None)
        if postgres is None:
            raise InspectionError(
                f"cannot open {self.display}: this version of jobify has no PostgreSQL "
                "storage (jobify.storage.PostgresStorage); upgrade jobify"
            )
        schema = self.options.get("schema")
        store: Storage = (
            postgres(self.location) if schema is None else postgres(self.location, schema=schema)
        )
        return store


def parse_storage_url(url: str) -> StoreLocation:
    """Parse a storage URL or a bare file path (see the module docstring for the forms).

    Raises ``ValueError`` naming what is wrong for an empty or malformed URL, an unknown
    scheme, a SQLite URL with a host, or an unknown option.
    """
    if not isinstance(url, str):
        raise TypeError(f"a storage URL is a str, got {type(url).__name__}")
    text = url.strip()
    if not text:
        raise ValueError(f"empty storage URL: use {_FORMS}")
    if "://" not in text:
        return _sqlite(text, {})
    try:
        parts = urlsplit(text)
        parts.port  # noqa: B018  # validates the port now, not at connection time
    except ValueError as exc:
        raise ValueError(f"malformed storage URL {_redact_text(text)!r}: {exc}") from None
    scheme = parts.scheme.lower().partition("+")[0]
    options = _options(parts.query, text)
    if scheme == "sqlite":
        if parts.netloc:
            raise ValueError(
                f"malformed SQLite URL {text!r}: it has a host part ({parts.netloc!r}); use "
                "sqlite:///relative.db (three slashes) or sqlite:////absolute/path.db (four)"
            )
        if not parts.path.startswith("/") or parts.path == "/":
            raise ValueError(f"SQLite URL {text!r} names no file: use {_FORMS}")
        unknown = sorted(set(options) - _SQLITE_OPTIONS)
        if unknown:
            raise ValueError(
                f"unknown option(s) {', '.join(unknown)} in SQLite URL {text!r}; the only "
                "one is table=NAME"
            )
        # SQLAlchemy's convention: what follows "sqlite:///" is the path as written, so a
        # fourth slash makes it absolute.
        return _sqlite(unquote(parts.path[1:]), options)
    if scheme in ("postgresql", "postgres"):
        if not parts.hostname and not parts.path.strip("/"):
            raise ValueError(f"PostgreSQL URL {_redact_text(text)!r} names no host or database")
        # Other query options (sslmode, ...) belong to the driver: they stay in the DSN.
        ours = {k: v for k, v in options.items() if k in _POSTGRES_OPTIONS}
        rest = [(k, v) for k, v in parse_qsl(parts.query) if k not in _POSTGRES_OPTIONS]
        query = "&".join(f"{k}={v}" for k, v in rest)
        dsn = urlunsplit(("postgresql", parts.netloc, parts.path, query, ""))
        # The schema is named too: one database may hold the stores of several apps.
        schema = ours.get("schema", "jobify")
        shown = f"the PostgreSQL store {_redact_text(dsn)!r} (schema {schema!r})"
        return StoreLocation("postgresql", dsn, ours, shown)
    shown = parts.scheme or text.partition("://")[0]
    raise ValueError(
        f"unknown storage URL scheme {shown!r} in {_redact_text(text)!r}: use {_FORMS}"
    )


def _sqlite(path: str, options: dict[str, str]) -> StoreLocation:
    if path == ":memory:":
        raise ValueError(
            "an in-memory SQLite database cannot be inspected from another process: "
            "give the file of the app's store"
        )
    if "\0" in path:
        raise ValueError("a file path cannot contain a NUL character")
    return StoreLocation("sqlite", path, options, f"the SQLite store {path!r}")


def _options(query: str, url: str) -> dict[str, str]:
    try:
        pairs = parse_qsl(query, keep_blank_values=True, strict_parsing=bool(query))
    except ValueError:
        raise ValueError(f"malformed query string in storage URL {_redact_text(url)!r}") from None
    options: dict[str, str] = {}
    for key, value in pairs:
        if not value:
            raise ValueError(f"storage URL option {key!r} has no value")
        options[key] = value
    return options


def _redact_text(url: str) -> str:
    """``url`` with any password replaced by ``***``."""
    try:
        parts = urlsplit(url)
        password = parts.password
    except ValueError:
        return url.partition("://")[0] + "://…"
    if not password:
        return url
    user = parts.username or ""
    host = parts.netloc.rpartition("@")[2]
    return urlunsplit(parts._replace(netloc=f"{user}:***@{host}"))
