"""``jobify cron``: preview the fire times of a cron expression.

Kept free of the CLI libraries: when they are not installed, :func:`cron_without_click`
still serves ``jobify cron`` (it needs nothing beyond jobify itself).
"""

from __future__ import annotations

import argparse
import itertools
import sys
from collections.abc import Callable, Sequence
from datetime import UTC, datetime, tzinfo

from jobify.cli._cronpreview import preview
from jobify.cli._when import WHEN_HELP, parse_when, parse_zone
from jobify.exceptions import CronExhaustedError, CronParseError

__all__ = ["EXIT_USAGE", "cron_without_click", "run_cron"]

EXIT_USAGE = 2
"""Exit code for bad usage or bad input."""


def run_cron(
    expression: str,
    count: int,
    tz: tzinfo,
    start: datetime | None,
    out: Callable[[str], object],
    err: Callable[[str], object],
) -> int:
    """Print up to ``count`` fire times after ``start`` (default: now) in ``tz``; the exit
    code: 0, 1 when the expression never fires, 2 when it is malformed."""
    begin = (start or datetime.now(UTC)).astimezone(tz)
    try:
        fires = preview(expression, begin)
    except CronParseError as exc:
        err(f"jobify cron: {exc}")
        return EXIT_USAGE
    printed = 0
    try:
        for fire in itertools.islice(fires, count):
            out(fire.line())
            printed += 1
    except CronExhaustedError as exc:
        err(f"jobify cron: {exc}")
        # Fewer times than asked is fine; none at all means the expression is dead.
        return 0 if printed else 1
    return 0


def _positive(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        value = 0
    if value < 1:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {text!r}")
    return value


def _zone(text: str) -> tzinfo:
    try:
        return parse_zone(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def _when(text: str) -> datetime:
    try:
        return parse_when(text, datetime.now(UTC))
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def cron_without_click(argv: Sequence[str]) -> int:
    """``jobify cron`` for an install without the ``cli`` extra (same options and output)."""
    parser = argparse.ArgumentParser(
        prog="jobify cron",
        description="Print the next fire times of EXPR, one ISO 8601 datetime per line.",
    )
    parser.add_argument("expression", metavar="EXPR", help='e.g. "*/15 * * * *" or @daily')
    parser.add_argument("--next", "-n", type=_positive, default=5, metavar="N")
    parser.add_argument("--tz", type=_zone, default=UTC, metavar="ZONE")
    parser.add_argument("--from", dest="start", type=_when, metavar="DT", help=WHEN_HELP)
    try:
        args = parser.parse_args(argv)
    except SystemExit as exc:  # argparse exits on --help and on usage errors
        return exc.code if isinstance(exc.code, int) else EXIT_USAGE
    return run_cron(
        args.expression,
        args.next,
        args.tz,
        args.start,
        print,
        lambda line: print(line, file=sys.stderr),
    )
