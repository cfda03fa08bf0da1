"""``jobify jobs ...``: list, show, count, cancel, pause, resume and run stored jobs; history.

Every command opens the store for inspection only (``--storage``): reading a store whose app is
running neither blocks nor disturbs it; actions are sent to that app when it runs.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from datetime import datetime, tzinfo
from typing import Any, TypeVar

import click
from rich.console import Group
from rich.table import Table
from rich.text import Text

from jobify.cli._output import console, duration, print_json, table, text, when
from jobify.cli._params import (
    debug_option,
    display_zone_option,
    json_option,
    storage_option,
    when_option,
)
from jobify.inspection import (
    MAX_PAGE,
    ActionResult,
    Inspector,
    JobDetail,
    JobInfo,
    RunInfo,
    zone_name,
)
from jobify.storage.base import RecordStatus

__all__ = ["jobs"]

T = TypeVar("T")

_LIMIT = click.IntRange(1, MAX_PAGE)
_OUTCOME_STYLE = {"success": "green", "failed": "red", "timeout": "red", "cancelled": "yellow"}
_STATUS_STYLE = {
    RecordStatus.SCHEDULED: "green",
    RecordStatus.PAUSED: "yellow",
    RecordStatus.PERMANENTLY_FAILED: "red",
    RecordStatus.FINISHED: "dim",
    RecordStatus.FAILED: "red",
}


def _run(inspector: Inspector, body: Callable[[Inspector], Awaitable[T]]) -> T:
    async def main() -> T:
        async with inspector:
            return await body(inspector)

    return asyncio.run(main())


async def _zoned(inspector: Inspector, tz: tzinfo | None, read: Awaitable[T]) -> tuple[tzinfo, T]:
    """What ``read`` gives, with the zone to show its times in (``--tz`` or the app's)."""
    result = await read
    return await inspector.display_zone(tz), result


def _note(message: str) -> None:
    """A remark for people, on stderr (stdout stays the table or the JSON)."""
    console(stderr=True).print(text(message, "dim"))


@click.group(short_help="See and steer the jobs in a job store.")
@debug_option
def jobs() -> None:
    """See and steer the jobs in a job store (see --storage on each command)."""


# -- list -------------------------------------------------------------------------------------


def _trigger(job: JobInfo) -> Text:
    if job.cron is not None:
        return text(f"cron {job.cron.expression} ({job.cron.tz})")
    if job.kind == "unreadable":
        return text("unreadable", "red")
    return text("once")


def _runs(job: JobInfo) -> Text:
    if job.cron is None:
        return text("-")
    limit = "" if job.cron.max_runs == -1 else f"/{job.cron.max_runs}"
    failures = f", {job.cron.failures} failed" if job.cron.failures else ""
    return text(f"{job.cron.runs}{limit}{failures}")


def _shorten(value: str, width: int) -> str:
    return value if len(value) <= width else value[: width - 1] + "…"


def _task(job: JobInfo) -> Text:
    cell = text(job.task_name)
    if job.orphaned:
        cell.append(" (orphaned)", "bold red")
    return cell


def _job_json(job: JobInfo) -> dict[str, Any]:
    return {
        "job_id": job.job_id,
        "task": job.task_name,
        "status": job.status,
        "next_run": job.next_run,
        "kind": job.kind,
        "cron": job.cron,
        "arguments": {
            "decoded": job.arguments.values is not None,
            "values": job.arguments.values,
            "summary": job.arguments.summary,
            "error": job.arguments.error,
        },
        "orphaned": job.orphaned,
        "trigger_error": job.trigger_error,
    }


@jobs.command("list", short_help="List jobs (filter by task, status, due time).")
@click.option("--task", metavar="NAME", help="Only jobs of this task (its full name).")
@click.option("--status", type=click.Choice(RecordStatus.ALL), help="Only jobs in this status.")
@when_option("--due-before", help="Only jobs whose next run is at or before this time")
@when_option("--due-after", help="Only jobs whose next run is at or after this time")
@click.option("--limit", type=_LIMIT, default=100, show_default=True, help="At most N jobs.")
@click.option("--offset", type=click.IntRange(0), default=0, help="Skip the first N jobs.")
@display_zone_option
@json_option
@storage_option
@debug_option
def list_jobs(
    inspector: Inspector,
    tz: tzinfo | None,
    task: str | None,
    status: str | None,
    due_before: datetime | None,
    due_after: datetime | None,
    limit: int,
    offset: int,
    as_json: bool,
) -> int:
    """List jobs by next run time. Orphaned jobs (whose task the app no longer registers)
    are marked; 'jobify jobs cancel ID' removes them."""
    zone, found = _run(
        inspector,
        lambda i: _zoned(
            i,
            tz,
            i.list_jobs(
                task=task,
                status=status,
                due_before=due_before,
                due_after=due_after,
                limit=limit,
                offset=offset,
            ),
        ),
    )
    if as_json:
        print_json([_job_json(job) for job in found])
        return 0
    if not found:
        _note(f"no jobs match in {inspector.name}")
        return 0
    grid = table(
        "ID", "TASK", "STATUS", f"NEXT RUN ({zone_name(zone)})", "TRIGGER", "RUNS", "ARGUMENTS"
    )
    for job in found:
        grid.add_row(
            text(job.job_id),
            _task(job),
            text(job.status, _STATUS_STYLE.get(job.status, "")),
            text(when(job.next_run, zone)),
            _trigger(job),
            _runs(job),
            text(_shorten(job.arguments.summary, 60)),
        )
    console().print(grid)
    orphans = sum(1 for job in found if job.orphaned)
    if orphans:
        _note(
            f"{orphans} orphaned job(s): their task is not registered in the app that owns "
            "this store; 'jobify jobs cancel ID' removes one"
        )
    if len(found) == limit:
        _note(f"showing {limit} jobs from offset {offset}; use --limit/--offset for more")
    return 0


# -- show -------------------------------------------------------------------------------------


def _field(grid: Table, name: str, value: Text | str) -> None:
    grid.add_row(Text(name, "bold"), value if isinstance(value, Text) else text(value))


def _run_lines(run: RunInfo, zone: tzinfo) -> list[Text]:
    outcome = text(run.outcome, _OUTCOME_STYLE.get(run.outcome, ""))
    line = Text.assemble(
        outcome,
        f" at {when(run.finished_at, zone)}, took {duration(run.duration)}, "
        f"{run.attempts} attempt(s)",
    )
    lines = [line]
    if run.error_type or run.error_message:
        lines.append(text(f"{run.error_type or 'error'}: {run.error_message or ''}", "red"))
    return lines


def _traceback(run: RunInfo) -> Text | None:
    if not run.traceback:
        return None
    return text(run.traceback.rstrip("\n"), "dim", multiline=True)


def _show_table(detail: JobDetail, zone: tzinfo) -> Group:
    job = detail.job
    grid = Table.grid(padding=(0, 2))
    _field(grid, "id", job.job_id)
    _field(grid, "task", _task(job))
    _field(grid, "status", text(job.status, _STATUS_STYLE.get(job.status, "")))
    _field(grid, "times in", zone_name(zone))
    _field(grid, "next run", when(job.next_run, zone))
    if job.cron is not None:
        cron = job.cron
        _field(grid, "trigger", f"cron {cron.expression} in {cron.tz}")
        limit = "unlimited" if cron.max_runs == -1 else str(cron.max_runs)
        _field(grid, "runs", f"{cron.runs} of {limit}")
        _field(
            grid, "failures", f"{cron.failures} in a row (fails for good at {cron.max_failures})"
        )
        _field(grid, "misfire policy", cron.misfire_policy)
        if cron.start_date is not None:
            _field(grid, "start date", when(cron.start_date, zone))
    elif job.kind == "unreadable":
        _field(grid, "trigger", text(f"unreadable: {job.trigger_error}", "red"))
    else:
        _field(grid, "trigger", "once")
    _field(grid, "arguments", job.arguments.summary)
    if job.arguments.error is not None and job.arguments.raw:
        _field(grid, "", text(f"(shown as stored: {job.arguments.error})", "dim"))
    if job.orphaned is not None:
        _field(grid, "orphaned", "yes: its task is not registered" if job.orphaned else "no")
    for index, fire in enumerate(detail.next_fires):
        label = "next fires" if job.status != "paused" else "fires if resumed"
        _field(grid, label if index == 0 else "", when(fire, zone))
    parts: list[Any] = [grid]
    if detail.last_run is None:
        _field(grid, "last run", "none recorded")
    else:
        lines = _run_lines(detail.last_run, zone)
        for index, line in enumerate(lines):
            _field(grid, "last run" if index == 0 else "", line)
        trace = _traceback(detail.last_run)
        if trace is not None:
            parts.append(trace)
    return Group(*parts)


@jobs.command("show", short_help="Show one job in detail.")
@click.argument("job_id", metavar="ID")
@click.option("--next", "fires", type=click.IntRange(0, 1000), default=5, show_default=True,
              help="How many next fire times of a cron job to show.")  # fmt: skip
@display_zone_option
@json_option
@storage_option
@debug_option
def show_job(
    inspector: Inspector, tz: tzinfo | None, job_id: str, fires: int, as_json: bool
) -> int:
    """Show one job: trigger, arguments, counters, next fires and last outcome."""
    zone, detail = _run(inspector, lambda i: _zoned(i, tz, i.get_job(job_id, fires=fires)))
    if as_json:
        data = _job_json(detail.job)
        data["next_fires"] = detail.next_fires
        data["last_run"] = detail.last_run
        print_json(data)
        return 0
    console().print(_show_table(detail, zone))
    return 0


# -- count ------------------------------------------------------------------------------------


@jobs.command("count")
@json_option
@storage_option
@debug_option
def count_jobs(inspector: Inspector, as_json: bool) -> int:
    """Count jobs per task and status."""
    counts = _run(inspector, lambda i: i.count_jobs())
    if as_json:
        print_json(counts)
        return 0
    grid = table("TASK", *RecordStatus.ALL, "TOTAL")
    for task, by_status in counts.by_task.items():
        cells = [text(by_status.get(status, 0)) for status in RecordStatus.ALL]
        grid.add_row(text(task), *cells, text(sum(by_status.values())))
    totals = [text(counts.by_status.get(status, 0), "bold") for status in RecordStatus.ALL]
    grid.add_row(text("all tasks", "bold"), *totals, text(counts.total, "bold"))
    console().print(grid)
    return 0


# -- actions ----------------------------------------------------------------------------------


_ACTION_NOTE = (
    "\n\nWhen an app is running on the store, it is asked to do it (the store is never "
    "edited behind its back) and its answer is awaited; otherwise the store is edited."
)


def _action(
    name: str, summary: str, act: Callable[[Inspector, str], Awaitable[ActionResult]]
) -> None:
    @jobs.command(name, help=summary + _ACTION_NOTE, short_help=summary.partition(":")[0] + ".")
    @click.argument("job_id", metavar="ID")
    @click.option(
        "--wait",
        type=click.FloatRange(0, 3600, min_open=True),
        default=5.0,
        show_default=True,
        metavar="S",
        help="Seconds to wait for the answer of the app running on the store.",
    )
    @storage_option
    @debug_option
    def command(inspector: Inspector, job_id: str, wait: float) -> int:
        inspector.command_timeout = wait
        result = _run(inspector, lambda i: act(i, job_id))
        console().print(text(result.message))
        return 0


_action(
    "cancel",
    "Cancel a job: it never runs again and its record is removed (also an orphaned one).",
    Inspector.cancel,
)
_action(
    "pause",
    "Pause a job: it keeps its counters but does not fire until resumed.",
    Inspector.pause,
)
_action(
    "resume",
    "Resume a paused job: a cron applies its misfire policy to the fires it missed.",
    Inspector.resume,
)
_action(
    "run",
    "Run a job now: a one-shot job is moved to now; a cron job runs once more now, "
    "keeping its schedule.",
    Inspector.run_now,
)
_action(
    "retry",
    "Retry a failed job now with its stored arguments; a permanently failed cron job "
    "starts its schedule again with its failure counter reset.",
    Inspector.retry,
)


# -- history ----------------------------------------------------------------------------------


def _run_json(run: RunInfo) -> dict[str, Any]:
    data: dict[str, Any] = {
        name: getattr(run, name)
        for name in (
            "job_id",
            "task_name",
            "outcome",
            "scheduled_at",
            "started_at",
            "finished_at",
            "duration",
            "lateness",
            "attempts",
            "error_type",
            "error_message",
            "traceback",
            "worker",
        )
    }
    data["task"] = data.pop("task_name")
    return data


@jobs.command("history", short_help="List finished runs, newest first.")
@click.option("--task", metavar="NAME", help="Only runs of this task (its full name).")
@click.option("--job", "job_id", metavar="ID", help="Only runs of this job.")
@click.option("--failed", is_flag=True, help="Only runs that failed or timed out.")
@when_option("--since", help="Only runs finished at or after this time")
@click.option("--limit", type=_LIMIT, default=50, show_default=True, help="At most N runs.")
@click.option("--offset", type=click.IntRange(0), default=0, help="Skip the N newest runs.")
@click.option("--tracebacks/--no-tracebacks", default=True, show_default=True,
              help="Print the traceback of each failed run after the table.")  # fmt: skip
@display_zone_option
@json_option
@storage_option
@debug_option
def history(
    inspector: Inspector,
    tz: tzinfo | None,
    task: str | None,
    job_id: str | None,
    failed: bool,
    since: datetime | None,
    limit: int,
    offset: int,
    tracebacks: bool,
    as_json: bool,
) -> int:
    """List finished runs, newest first, with the error of each failure."""
    zone, runs = _run(
        inspector,
        lambda i: _zoned(
            i,
            tz,
            i.list_runs(
                task=task,
                job_id=job_id,
                failed_only=failed,
                since=since,
                limit=limit,
                offset=offset,
            ),
        ),
    )
    if as_json:
        print_json([_run_json(run) for run in runs])
        return 0
    if not runs:
        _note(f"no runs recorded in {inspector.name} match")
        return 0
    grid = table(
        f"FINISHED ({zone_name(zone)})", "JOB", "TASK", "OUTCOME", "TRIES", "TOOK", "LATE", "ERROR"
    )
    for run in runs:
        error = f"{run.error_type or ''}: {run.error_message or ''}" if run.failed else ""
        grid.add_row(
            text(when(run.finished_at, zone)),
            text(run.job_id),
            text(run.task_name),
            text(run.outcome, _OUTCOME_STYLE.get(run.outcome, "")),
            text(run.attempts),
            text(duration(run.duration)),
            text(duration(run.lateness)),
            text(error.strip(": "), "red"),
        )
    out = console()
    out.print(grid)
    if tracebacks:
        for run in runs:
            trace = _traceback(run) if run.failed else None
            if trace is not None:
                out.print(
                    text(f"--- {run.job_id} ({run.task_name}) at {when(run.finished_at, zone)}")
                )
                out.print(trace)
    if len(runs) == limit:
        _note(f"showing {limit} runs from offset {offset}; use --limit/--offset for more")
    return 0
