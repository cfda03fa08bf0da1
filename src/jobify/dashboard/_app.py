"""``create_app``: the dashboard as one Starlette application."""

from __future__ import annotations

import secrets
import time
from collections.abc import AsyncIterator, Callable, Sequence
from contextlib import asynccontextmanager
from datetime import tzinfo
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.routing import Route

from jobify.dashboard._actions import Actions
from jobify.dashboard._guard import Guard
from jobify.dashboard._pages import Pages
from jobify.dashboard._security import Signer
from jobify.dashboard._static import StaticAssets
from jobify.dashboard._store import InspectorHolder
from jobify.dashboard._web import Settings, Web
from jobify.inspection import Inspector, parse_storage_url

__all__ = ["MIN_TOKEN_LENGTH", "create_app"]

MIN_TOKEN_LENGTH = 16
"""The shortest auth token accepted (a short one could be guessed through the login form)."""


def _check_token(token: str | None) -> str | None:
    if token is None:
        return None
    if not isinstance(token, str):
        raise TypeError(f"auth_token must be a str or None, got {type(token).__name__}")
    if len(token) < MIN_TOKEN_LENGTH or not token.isascii() or not token.isprintable():
        raise ValueError(
            f"the dashboard's auth token must be at least {MIN_TOKEN_LENGTH} printable ASCII "
            "characters; make one with: python -c 'import secrets; print(secrets.token_urlsafe())'"
        )
    if token != token.strip() or " " in token:
        raise ValueError("the dashboard's auth token must not contain spaces")
    return token


def _check_zone(tz: str | tzinfo | None) -> tzinfo | None:
    if tz is None or isinstance(tz, tzinfo):
        return tz
    if not isinstance(tz, str):
        raise TypeError(f"tz must be a zone or an IANA zone name, got {type(tz).__name__}")
    try:
        return ZoneInfo(tz)
    except (ZoneInfoNotFoundError, ValueError, OSError):
        raise ValueError(
            f"unknown time zone {tz!r}: use an IANA name such as Europe/Berlin, or UTC"
        ) from None


def _factory(storage: str | Callable[[], Inspector]) -> Callable[[], Inspector]:
    if isinstance(storage, str):
        parse_storage_url(storage)  # a malformed URL is refused now, not at the first request
        return lambda: Inspector.from_url(storage)
    if isinstance(storage, Inspector):
        raise TypeError(
            "pass the storage URL, or a function that returns a new Inspector (the dashboard "
            "opens and closes it, and may need a second one): e.g. "
            "lambda: Inspector.from_url(url, serializer=...)"
        )
    if callable(storage):
        return storage
    raise TypeError(
        f"storage must be a storage URL or a function returning an Inspector, got "
        f"{type(storage).__name__}"
    )


def create_app(
    storage: str | Callable[[], Inspector],
    *,
    read_only: bool = False,
    auth_token: str | None = None,
    secret: bytes | str | None = None,
    title: str = "jobify",
    refresh_seconds: float = 5.0,
    allowed_hosts: Sequence[str] | None = None,
    clock: Callable[[], float] = time.time,
    tz: str | tzinfo | None = None,
) -> Starlette:
    """The dashboard of one job store, as a Starlette (ASGI) application.

    ``storage`` is a storage URL (``sqlite:///jobs.db``, ``postgresql://…``, a file path) or
    a function returning a new, unopened :class:`~jobify.inspection.Inspector` (to give it
    the app's serializer, say). The store is opened for inspection on the first request and
    closed by the application's lifespan (see ``docs/dashboard.md`` for mounting it).

    ``read_only`` hides the actions and refuses them (403). With ``auth_token`` (at least 16
    printable characters) every action needs it: ``Authorization: Bearer TOKEN`` for the
    API, the login form for the pages. ``secret`` signs sessions and form tokens (random per
    process when None: give the same one to every process serving one address).
    ``refresh_seconds`` is how often the pages refresh their live part (0: never).
    ``allowed_hosts`` limits the ``Host`` names answered (``jobify dashboard`` sets the
    loopback names when it binds to a loopback address). ``clock`` gives epoch seconds.
    ``tz`` (a zone or IANA name) is the zone every time is shown in; by default the zone of
    the app that owns the store (as it stored it when it last started), else UTC.

    Raises ``ValueError`` or ``TypeError`` for a malformed URL or option.
    """
    factory = _factory(storage)
    if isinstance(secret, str):
        secret = secret.encode()
    if secret is not None and (not isinstance(secret, bytes) or len(secret) < 16):
        raise ValueError("secret must be at least 16 bytes (or None for a random one)")
    if isinstance(refresh_seconds, bool) or not isinstance(refresh_seconds, int | float):
        raise TypeError("refresh_seconds must be a number of seconds")
    if refresh_seconds != 0 and not 0.5 <= refresh_seconds <= 3600:
        raise ValueError(
            f"refresh_seconds must be 0 (off) or between 0.5 and 3600, got {refresh_seconds}"
        )
    hosts = None
    if allowed_hosts is not None:
        if isinstance(allowed_hosts, str):
            raise TypeError("allowed_hosts is a list of host names, not one string")
        hosts = tuple(h.strip().strip("[]").lower() for h in allowed_hosts)
        if not hosts or not all(hosts):
            raise ValueError("allowed_hosts must name at least one host (or be None for any)")
    zone = _check_zone(tz)
    settings = Settings(
        read_only=bool(read_only),
        auth_token=_check_token(auth_token),
        title=str(title),
        refresh_seconds=float(refresh_seconds),
        allowed_hosts=hosts,
        tz=zone,
    )
    holder = InspectorHolder(factory)
    signer = Signer(secret or secrets.token_bytes(32), settings.auth_token, clock)
    static = StaticAssets()
    web = Web(settings, holder, signer, static, clock)

    @asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        try:
            yield
        finally:
            await holder.close()

    routes = [
        Route("/static/{name}", static.serve, methods=["GET"]),
        *Pages(web).routes(),
        *Actions(web).routes(),
    ]
    return Starlette(
        routes=routes, middleware=[Middleware(Guard, allowed_hosts=hosts)], lifespan=lifespan
    )
