"""``jobify dashboard``: serve the web dashboard of a job store with uvicorn.

Safe by default: it listens on 127.0.0.1 and, on a loopback address, answers only requests
that name a loopback host. The store is opened once before serving, so a wrong ``--storage``
is a one-line error rather than a page of errors later.
"""

from __future__ import annotations

import asyncio
import errno
import signal
import socket
from datetime import tzinfo

import click

from jobify.cli._params import DEFAULT_STORAGE, STORAGE_ENV, debug_option, display_zone_option
from jobify.inspection import Inspector

__all__ = ["TOKEN_ENV", "dashboard"]

TOKEN_ENV = "JOBIFY_DASHBOARD_TOKEN"
"""Where the auth token is read from when ``--auth-token`` is not given (the same name as
:data:`jobify.dashboard.TOKEN_ENV`, repeated so that ``--help`` works without the extra)."""
_LEVELS = ("debug", "info", "warning", "error")
_PACKAGES = ("starlette", "jinja2", "uvicorn")


def _missing_packages() -> list[str]:
    missing = []
    for name in _PACKAGES:
        try:
            __import__(name)
        except ImportError:
            missing.append(name)
    return missing


def _storage_url(ctx: click.Context, param: click.Parameter, value: str) -> str:
    from jobify.inspection import parse_storage_url

    try:
        parse_storage_url(value)
    except ValueError as exc:
        raise click.BadParameter(str(exc), ctx, param) from None
    return value


async def _check_store(url: str) -> str:
    """Open the store for inspection once (a missing or foreign file fails here)."""
    inspector = Inspector.from_url(url)
    async with inspector:
        return inspector.name


def _check_port(host: str, port: int) -> None:
    """Fail with a clear message when the address cannot be listened on (uvicorn would log
    it and exit)."""
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE)
    except socket.gaierror as exc:
        raise click.BadParameter(
            f"cannot resolve {host!r}: {exc.strerror}", param_hint="--host"
        ) from None
    family, kind, proto, _, address = infos[0]
    with socket.socket(family, kind, proto) as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind(address)
        except OSError as exc:
            hint = " (pick another with --port)" if exc.errno == errno.EADDRINUSE else ""
            raise click.ClickException(
                f"cannot listen on {host}:{port}: {exc.strerror}{hint}"
            ) from None


@click.command("dashboard", short_help="Serve the web dashboard of a job store.")
@click.option(
    "--storage",
    "url",
    metavar="URL",
    envvar=STORAGE_ENV,
    default=DEFAULT_STORAGE,
    show_default=True,
    callback=_storage_url,
    help=(
        "The job store: sqlite:///relative.db, sqlite:////absolute/path.db, a file path, "
        f"or postgresql://user@host/db. Also read from ${STORAGE_ENV}."
    ),
)
@click.option("--host", default="127.0.0.1", show_default=True,
              help="Address to listen on. Another than loopback makes the dashboard reachable "
              "from other machines: then set --auth-token or --read-only.")  # fmt: skip
@click.option("--port", type=click.IntRange(1, 65535), default=8000, show_default=True,
              help="Port to listen on.")  # fmt: skip
@click.option("--read-only", is_flag=True, help="Hide the actions and refuse them (403).")
@click.option(
    "--auth-token",
    metavar="TOKEN",
    envvar=TOKEN_ENV,
    help=(
        "Every action needs this token (at least 16 characters): Bearer header for the "
        f"API, a login form for the pages. Better given as ${TOKEN_ENV} (a command line "
        "is visible to other users of the machine)."
    ),
)
@click.option(
    "--allowed-host",
    "allowed_hosts",
    metavar="NAME",
    multiple=True,
    help=(
        "Answer only requests for this host name (repeatable). Default: the loopback names "
        "when --host is a loopback address, else any."
    ),
)
@click.option("--refresh", type=click.FloatRange(0, 3600), default=5.0, show_default=True,
              metavar="S", help="Seconds between live refreshes of a page (0: off).")  # fmt: skip
@click.option("--log-level", type=click.Choice(_LEVELS), default="info", show_default=True,
              help="uvicorn's logging (access log at info).")  # fmt: skip
@display_zone_option
@debug_option
def dashboard(
    url: str,
    host: str,
    port: int,
    read_only: bool,
    auth_token: str | None,
    allowed_hosts: tuple[str, ...],
    refresh: float,
    log_level: str,
    tz: tzinfo | None,
) -> int:
    """Serve the web dashboard of a job store (needs the dashboard extra:
    pip install 'jobify[dashboard]'). Pages: overview, jobs, crons, failures, runs; JSON
    under /api/. Ctrl-C stops it."""
    missing = _missing_packages()
    if missing:
        raise click.ClickException(
            f"jobify dashboard needs {', '.join(missing)}: pip install 'jobify[dashboard]'"
        )
    import uvicorn

    from jobify.dashboard import LOOPBACK_HOSTS, create_app
    from jobify.dashboard._security import is_loopback

    if refresh and refresh < 0.5:
        raise click.BadParameter("must be 0 (off) or at least 0.5 seconds", param_hint="--refresh")
    hosts: tuple[str, ...] | None = allowed_hosts or None
    if hosts is None and is_loopback(host):
        hosts = LOOPBACK_HOSTS
    try:
        app = create_app(
            url,
            read_only=read_only,
            auth_token=auth_token,
            refresh_seconds=refresh,
            allowed_hosts=hosts,
            tz=tz,
        )
    except ValueError as exc:
        raise click.BadParameter(str(exc), param_hint="--auth-token") from None
    name = asyncio.run(_check_store(url))
    _check_port(host, port)
    shown = f"[{host}]" if ":" in host else host
    if read_only:
        mode = "read-only"
    elif auth_token:
        mode = "actions need the token"
    else:
        mode = "actions open to whoever reaches it"
    click.echo(
        f"jobify dashboard: {name} on http://{shown}:{port}/ ({mode}); Ctrl-C stops", err=True
    )
    if not is_loopback(host) and not auth_token and not read_only:
        click.echo(
            f"jobify: warning: {host} is reachable from other machines and the dashboard has "
            f"no token: anyone who reaches it can cancel jobs (set ${TOKEN_ENV} or "
            "--read-only)",
            err=True,
        )
    config = uvicorn.Config(
        app, host=host, port=port, log_level=log_level, lifespan="on", server_header=False
    )
    # uvicorn shuts down on SIGINT/SIGTERM, restores the handlers it found, then raises the
    # signal again. Handlers that do nothing make that a clean exit 0 for this command (the
    # defaults would end it by the signal, or with KeyboardInterrupt).
    previous = {sig: signal.signal(sig, _stopped) for sig in (signal.SIGINT, signal.SIGTERM)}
    try:
        uvicorn.Server(config).run()
    except SystemExit as exc:  # uvicorn exits when it cannot start
        return exc.code if isinstance(exc.code, int) else 1
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
    return 0


def _stopped(signum: int, frame: object) -> None:
    """The signal that stopped the server, raised again by uvicorn once it has stopped."""
