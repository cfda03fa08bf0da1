"""The ``jobify`` command group, and how its outcomes become exit codes and messages.

Exit codes: 0 ok, 1 failure (unknown job, store error, the app's own import failing), 2 usage
(bad option or argument, malformed storage URL, unknown app reference). Every error is one
line on stderr; ``--debug`` adds the traceback.
"""

from __future__ import annotations

import traceback
from collections.abc import Sequence
from datetime import datetime, tzinfo

import click

from jobify._version import __version__
from jobify.cli._appref import AppImportError, AppRefError
from jobify.cli._cron import EXIT_USAGE, run_cron
from jobify.cli._dashboard import dashboard
from jobify.cli._jobs import jobs
from jobify.cli._params import Settings, debug_option, when_option, zone_option
from jobify.cli._tasks import tasks
from jobify.cli._worker import worker
from jobify.exceptions import BaseJobifyError
from jobify.inspection import safe_text

__all__ = ["cli", "run"]

EXIT_FAILURE = 1
EXIT_INTERRUPTED = 130
"""The shell's code for a command ended by Ctrl-C (128 + SIGINT)."""


@click.group(
    name="jobify",
    context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 100},
)
@click.version_option(__version__, "--version", prog_name="jobify")
@debug_option
def cli() -> None:
    """jobify: an asyncio job scheduler. Inspect and steer job stores, preview cron
    expressions, list an app's tasks, run an app as a worker, serve the web dashboard.

    Exit codes: 0 ok, 1 failure, 2 usage error.
    """


@cli.command("cron", short_help="Preview the next fire times of a cron expression.")
@click.argument("expression", metavar="EXPR")
@click.option("--next", "-n", "count", type=click.IntRange(1), default=5, show_default=True,
              metavar="N", help="How many fire times.")  # fmt: skip
@zone_option("--tz", default="UTC", show_default=True, help="IANA zone name.")
@when_option("--from", "start", help="Start after this time instead of now")
@debug_option
def cron(expression: str, count: int, tz: tzinfo, start: datetime | None) -> int:
    """Print the next fire times of EXPR (e.g. "*/15 * * * *" or @daily), one ISO 8601
    time per line; times next to a clock change are marked, e.g. "(DST: clocks go
    forward)"."""
    return run_cron(expression, count, tz, start, click.echo, lambda m: click.echo(m, err=True))


cli.add_command(dashboard)
cli.add_command(jobs)
cli.add_command(tasks)
cli.add_command(worker)


def _one_line(message: str) -> str:
    return " ".join(safe_text(message, multiline=True).split())


def _error(message: str) -> None:
    click.echo(f"jobify: error: {_one_line(message)}", err=True)


def run(argv: Sequence[str]) -> int:
    """Run the command line; return the exit code (never raises, never exits)."""
    settings = Settings()
    try:
        result = cli.main(args=list(argv), prog_name="jobify", standalone_mode=False, obj=settings)
    except click.exceptions.NoArgsIsHelpError as exc:
        exc.show()
        return EXIT_USAGE
    except click.UsageError as exc:
        where = f" (see '{exc.ctx.command_path} --help')" if exc.ctx is not None else ""
        click.echo(f"jobify: usage error: {_one_line(exc.format_message())}{where}", err=True)
        return EXIT_USAGE
    except click.ClickException as exc:
        _error(exc.format_message())
        return exc.exit_code
    except (click.Abort, KeyboardInterrupt):
        _error("interrupted")
        return EXIT_INTERRUPTED
    except AppRefError as exc:
        click.echo(f"jobify: usage error: {_one_line(str(exc))}", err=True)
        return EXIT_USAGE
    except (AppImportError, BaseJobifyError, OSError) as exc:
        if settings.debug:
            traceback.print_exc()
        _error(str(exc) or type(exc).__name__)
        return EXIT_FAILURE
    except Exception as exc:
        if settings.debug:
            traceback.print_exc()
        hint = "" if settings.debug else " (run with --debug for the traceback)"
        _error(f"unexpected {type(exc).__name__}: {exc}{hint}")
        return EXIT_FAILURE
    if isinstance(result, int):
        return result
    return 0
