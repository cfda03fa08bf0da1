"""The ``jobify`` command line.

Each subcommand is one ``_add_<name>(subparsers)`` function that declares its arguments and
sets ``handler`` (a function taking the parsed namespace and returning the exit code); adding
a command (``worker``, ``jobs``) means writing one such function and listing it in
``_COMMANDS``.  ``main`` never calls ``sys.exit`` itself, so tests can call it directly.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable, Sequence
from datetime import UTC, datetime, tzinfo
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from jobify.crontab import create_crontab
from jobify.exceptions import CronExhaustedError, CronParseError

__all__ = ["build_parser", "main"]

#: Exit code for bad usage or bad input (argparse uses the same).
EXIT_USAGE = 2


def _zone(name: str) -> tzinfo:
    if name.upper() == "UTC":
        return UTC
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError, OSError) as exc:
        raise argparse.ArgumentTypeError(f"unknown time zone {name!r}") from exc


def _positive(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        value = 0
    if value < 1:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {text!r}")
    return value


def _run_cron(args: argparse.Namespace) -> int:
    try:
        cron = create_crontab(args.expression)
    except CronParseError as exc:
        print(f"jobify cron: {exc}", file=sys.stderr)
        return EXIT_USAGE
    now = datetime.now(args.tz)
    for printed in range(args.next):
        try:
            now = cron.next_run(now=now)
        except CronExhaustedError as exc:
            print(f"jobify cron: {exc}", file=sys.stderr)
            # Fewer times than asked is fine; none at all means the expression is dead.
            return 0 if printed else 1
        print(now.isoformat())
    return 0


def _add_cron(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = subparsers.add_parser(
        "cron",
        help="preview the next fire times of a cron expression",
        description="Print the next fire times of EXPR, one ISO 8601 datetime per line.",
    )
    parser.add_argument("expression", metavar="EXPR", help='e.g. "*/15 * * * *" or @daily')
    parser.add_argument(
        "--next", "-n", type=_positive, default=5, metavar="N", help="how many (default 5)"
    )
    parser.add_argument(
        "--tz", type=_zone, default=UTC, metavar="TZ", help="IANA zone name (default UTC)"
    )
    parser.set_defaults(handler=_run_cron)


_COMMANDS: tuple[Callable[[argparse._SubParsersAction[argparse.ArgumentParser]], None], ...] = (
    _add_cron,
)


def build_parser() -> argparse.ArgumentParser:
    """The top-level parser with every subcommand registered."""
    parser = argparse.ArgumentParser(prog="jobify", description="jobify: an asyncio job scheduler")
    subparsers = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for add in _COMMANDS:
        add(subparsers)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line with ``argv`` (default ``sys.argv[1:]``); returns the exit code."""
    parser = build_parser()
    try:
        args = parser.parse_args(argv)
    except SystemExit as exc:  # argparse exits on --help and on usage errors
        return exc.code if isinstance(exc.code, int) else EXIT_USAGE
    handler: Callable[[argparse.Namespace], int] = args.handler
    return handler(args)
