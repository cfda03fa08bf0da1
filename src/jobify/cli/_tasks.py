"""``jobify tasks MODULE:APP``: the tasks an app registers, with their options and crons."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, datetime, tzinfo
from typing import Any
from zoneinfo import ZoneInfo

import click
from rich.text import Text

from jobify.cli._appref import load_app
from jobify.cli._output import console, jsonable, print_json, table, text, when
from jobify.cli._params import debug_option, json_option
from jobify.crontab import create_crontab
from jobify.exceptions import CronExhaustedError, CronParseError

__all__ = ["check_app", "tasks"]


def check_app(ref: str) -> Any:
    """The app ``ref`` names; a usage error if it is not a jobify app."""
    from jobify import Jobify

    app = load_app(ref)
    if not isinstance(app, Jobify):
        raise click.BadParameter(
            f"{ref!r} is a {type(app).__name__}, not a jobify app (a Jobify instance)",
            param_hint="'MODULE:APP'",
        )
    return app


def _zone(cron: Any, app_tz: tzinfo) -> tzinfo:
    zone = cron.tz or app_tz
    # A Cron may carry its zone as a name (Cron(tz="Asia/Tokyo")).
    return ZoneInfo(zone) if isinstance(zone, str) else zone


def _next_fire(cron: Any, app_tz: tzinfo) -> datetime | None:
    zone = _zone(cron, app_tz)
    try:
        return create_crontab(cron.expression).next_run(now=datetime.now(UTC).astimezone(zone))
    except (CronParseError, CronExhaustedError):
        return None


def _cron_json(cron: Any, app_tz: tzinfo) -> dict[str, Any] | None:
    if cron is None:
        return None
    policy = cron.misfire_policy
    return {
        "expression": cron.expression,
        "tz": str(getattr(_zone(cron, app_tz), "key", _zone(cron, app_tz))),
        "max_runs": cron.max_runs,
        "max_failures": cron.max_failures,
        "misfire_policy": getattr(policy, "value", None) or repr(policy),
        "start_date": cron.start_date,
        "next_fire": _next_fire(cron, app_tz),
    }


def _retry_json(retry: Any) -> dict[str, Any] | None:
    if retry is None:
        return None
    return {
        "retries": retry.retries,
        "initial_delay": retry.initial_delay,
        "max_delay": retry.max_delay,
        "backoff_factor": retry.backoff_factor,
        "jitter": retry.jitter,
        "include_exceptions": [e.__qualname__ for e in retry.include_exceptions],
        "exclude_exceptions": [e.__qualname__ for e in retry.exclude_exceptions],
    }


def _task_json(name: str, route: Any, app_tz: tzinfo) -> dict[str, Any]:
    options = route.options
    return {
        "name": name,
        "cron": _cron_json(options.cron, app_tz),
        "retry": _retry_json(options.retry),
        "timeout": options.timeout,
        "durable": options.durable,
        "run_mode": str(options.run_mode),
        "metadata": jsonable(dict(options.metadata)),
    }


def _cron_cell(data: Mapping[str, Any] | None, app_tz: tzinfo) -> Text:
    """A cron declaration, its next fire shown in the app's zone."""
    if data is None:
        return text("-")
    limit = "" if data["max_runs"] == -1 else f", {data['max_runs']} runs"
    cell = text(f"{data['expression']} ({data['tz']}{limit})")
    if data["next_fire"] is not None:
        cell.append(f"\nnext {when(data['next_fire'], app_tz)}", "dim")
    return cell


def _retry_cell(data: Mapping[str, Any] | None) -> Text:
    if data is None or not data["retries"]:
        return text("-")
    return text(
        f"{data['retries']} (after {data['initial_delay']:g}s x{data['backoff_factor']:g}, "
        f"at most {data['max_delay']:g}s)"
    )


@click.command("tasks", short_help="List the tasks an app registers.")
@click.argument("app_ref", metavar="MODULE:APP")
@json_option
@debug_option
def tasks(app_ref: str, as_json: bool) -> int:
    """List the tasks registered in an app (imported from MODULE:APP, e.g. myproject.jobs:app),
    with their options and cron declarations."""
    app = check_app(app_ref)
    app_tz = app.configs.tz
    rows = [_task_json(name, route, app_tz) for name, route in sorted(app.tasks.items())]
    if as_json:
        print_json(rows)
        return 0
    if not rows:
        console(stderr=True).print(text(f"{app_ref} registers no tasks", "dim"))
        return 0
    grid = table("TASK", "CRON", "RUN MODE", "RETRY", "TIMEOUT", "DURABLE", "METADATA")
    for row in rows:
        grid.add_row(
            text(row["name"]),
            _cron_cell(row["cron"], app_tz),
            text(row["run_mode"]),
            _retry_cell(row["retry"]),
            text("-" if row["timeout"] is None else f"{row['timeout']:g}s"),
            text("yes" if row["durable"] else "no"),
            text(", ".join(f"{k}={v!r}" for k, v in row["metadata"].items()) or "-"),
        )
    console().print(grid)
    return 0
