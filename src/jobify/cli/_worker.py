"""``jobify worker MODULE:APP``: run an app as a long-lived worker until SIGTERM or SIGINT.

On the signal no new run starts, running jobs get up to ``--grace`` seconds to finish
(``app.shutdown(grace=...)``), then the app shuts down and the command exits 0. Logging is
configured here, for the command; the library never configures it.
"""

from __future__ import annotations

import asyncio
import logging
import os
import signal
import sys
from typing import Any

import click

from jobify.cli._params import debug_option
from jobify.cli._tasks import check_app

__all__ = ["worker"]

log = logging.getLogger("jobify.cli.worker")

_SIGNALS = (signal.SIGTERM, signal.SIGINT)
_LEVELS = ("debug", "info", "warning", "error")


def _configure_logging(level: str) -> None:
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(
        logging.Formatter("%(asctime)s %(levelname)-7s %(name)s: %(message)s", "%H:%M:%S")
    )
    root = logging.getLogger()
    root.addHandler(handler)
    root.setLevel(level.upper())


def _running(app: Any) -> int:
    from jobify import JobStatus

    return sum(1 for job in app.get_active_jobs() if job.status is JobStatus.RUNNING)


async def _serve(app: Any, grace: float) -> None:
    loop = asyncio.get_running_loop()
    stop = asyncio.Event()
    received: list[str] = []

    def on_signal(signum: int) -> None:
        name = signal.Signals(signum).name
        if received:
            log.warning("%s: already stopping (running jobs have up to %gs)", name, grace)
        else:
            log.info("%s received: stopping", name)
        received.append(name)
        stop.set()

    for signum in _SIGNALS:
        loop.add_signal_handler(signum, on_signal, signum)
    try:
        await app.startup()
        limit, why = app.concurrency_in_force
        log.info(
            "worker started (pid %d): %d task(s), storage %r, concurrency %s",
            os.getpid(),
            len(app.tasks),
            app.configs.storage or "none (nothing persisted)",
            why if limit is None else (f"{limit}" if why == "set" else f"{limit} ({why})"),
        )
        await stop.wait()
        log.info(
            "no new runs start; %d running job(s) have up to %gs to finish", _running(app), grace
        )
        await app.shutdown(grace=grace)
        log.info("worker stopped")
    finally:
        for signum in _SIGNALS:
            loop.remove_signal_handler(signum)


@click.command("worker", short_help="Run an app as a worker until SIGTERM/SIGINT.")
@click.argument("app_ref", metavar="MODULE:APP")
@click.option(
    "--concurrency",
    type=click.IntRange(1),
    metavar="N",
    help="At most N jobs running at once (sets app.concurrency before startup).",
)
@click.option(
    "--grace",
    type=click.FloatRange(0, 86400),
    default=30.0,
    show_default=True,
    metavar="S",
    help="Seconds running jobs may take to finish after SIGTERM/SIGINT; then they are cancelled.",
)
@click.option(
    "--log-level", type=click.Choice(_LEVELS), default="info", show_default=True, help="Logging."
)
@debug_option
def worker(app_ref: str, concurrency: int | None, grace: float, log_level: str) -> int:
    """Run an app (imported from MODULE:APP, e.g. myproject.jobs:app) until SIGTERM or
    SIGINT, then stop gracefully and exit 0. Logs to stderr."""
    _configure_logging(log_level)
    app = check_app(app_ref)
    if concurrency is not None:
        app.concurrency = concurrency
    asyncio.run(_serve(app, grace))
    return 0
