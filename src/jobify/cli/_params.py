"""Option types and shared options of the ``jobify`` command (click)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, tzinfo
from typing import Any, TypeVar

import click

from jobify.cli._when import WHEN_HELP, parse_when, parse_zone
from jobify.inspection import Inspector

__all__ = [
    "STORAGE_ENV",
    "Settings",
    "debug_option",
    "display_zone_option",
    "json_option",
    "storage_option",
    "when_option",
    "zone_option",
]

F = TypeVar("F", bound=Callable[..., Any])

STORAGE_ENV = "JOBIFY_STORAGE"
DEFAULT_STORAGE = "jobify.db"


@dataclass
class Settings:
    """Options that outlive a command's parsing (read by the error handler)."""

    debug: bool = False


def _when(ctx: click.Context, param: click.Parameter, value: str | None) -> datetime | None:
    if value is None:
        return None
    try:
        return parse_when(value, datetime.now(UTC))
    except ValueError as exc:
        raise click.BadParameter(str(exc), ctx, param) from None


def _zone(ctx: click.Context, param: click.Parameter, value: str | None) -> tzinfo | None:
    if value is None:
        return None
    try:
        return parse_zone(value)
    except ValueError as exc:
        raise click.BadParameter(str(exc), ctx, param) from None


def when_option(*names: str, help: str, **kwargs: Any) -> Callable[[F], F]:
    """An option taking a point in time (ISO 8601 with naive = UTC, ``now``, ``-1h``)."""
    return click.option(
        *names, metavar="DT", callback=_when, help=f"{help}: {WHEN_HELP}.", **kwargs
    )


def zone_option(*names: str, help: str, **kwargs: Any) -> Callable[[F], F]:
    """An option taking an IANA zone name (or UTC)."""
    return click.option(*names, metavar="ZONE", callback=_zone, help=help, **kwargs)


def display_zone_option(func: F) -> F:
    """``--tz ZONE``: the zone times are shown in (default: the app's, as stored)."""
    return zone_option(
        "--tz",
        "tz",
        default=None,
        help="Show times in this zone (an IANA name or UTC). Default: the zone of the app "
        "that owns the store, as it stored it when it last started; else UTC.",
    )(func)


def _inspector(ctx: click.Context, param: click.Parameter, value: str) -> Inspector:
    try:
        return Inspector.from_url(value)
    except ValueError as exc:
        raise click.BadParameter(str(exc), ctx, param) from None


def storage_option(func: F) -> F:
    """``--storage URL`` (or ``$JOBIFY_STORAGE``), passed as an unopened ``inspector``."""
    return click.option(
        "--storage",
        "inspector",
        metavar="URL",
        envvar=STORAGE_ENV,
        default=DEFAULT_STORAGE,
        show_default=True,
        callback=_inspector,
        help=(
            "The job store: sqlite:///relative.db, sqlite:////absolute/path.db, a file path, "
            f"or postgresql://user@host/db. Also read from ${STORAGE_ENV}."
        ),
    )(func)


def json_option(func: F) -> F:
    """``--json``: machine-readable output."""
    return click.option(
        "--json", "as_json", is_flag=True, help="Print JSON (for scripts) instead of a table."
    )(func)


def _set_debug(ctx: click.Context, param: click.Parameter, value: bool) -> None:
    if value:
        settings = ctx.find_object(Settings)
        if settings is not None:
            settings.debug = True


def debug_option(func: F) -> F:
    """``--debug``: show tracebacks of errors (accepted before or after the command)."""
    return click.option(
        "--debug",
        is_flag=True,
        expose_value=False,
        is_eager=True,
        callback=_set_debug,
        help="Show the full traceback of an error.",
    )(func)
