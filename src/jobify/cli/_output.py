"""How the ``jobify`` command writes: rich tables for people, JSON for scripts.

Everything read from a store is untrusted text: it is passed through
:func:`~jobify.inspection.safe_text` (no terminal escape sequences get through) and given to
rich as ``Text`` (never parsed as markup).
"""

from __future__ import annotations

import json
import os
import sys
from collections.abc import Iterable
from datetime import datetime, tzinfo
from typing import Any

from rich import box
from rich.console import Console
from rich.table import Table
from rich.text import Text

from jobify.inspection import human_duration, human_time, jsonable, safe_text

__all__ = [
    "WIDE",
    "console",
    "duration",
    "jsonable",
    "print_json",
    "table",
    "text",
    "when",
]

WIDE = 240
"""Console width when the output is not a terminal (pipes, files): wide enough that job ids
and times are never cut or wrapped for the scripts and people who grep them."""


def console(*, stderr: bool = False) -> Console:
    """A console on stdout (or stderr) that never interprets markup in what it prints."""
    stream = sys.stderr if stderr else sys.stdout
    # A terminal's own width (or $COLUMNS when set): tables wrap their long cells to fit.
    sized = stream.isatty() or os.environ.get("COLUMNS", "").isdigit()
    return Console(
        file=stream,
        width=None if sized else WIDE,
        markup=False,
        emoji=False,
        highlight=False,
        soft_wrap=False,
    )


def text(value: object, style: str = "", *, multiline: bool = False) -> Text:
    """A rich ``Text`` of ``value`` with control characters escaped."""
    return Text(safe_text(str(value), multiline=multiline), style=style)


def table(*columns: str) -> Table:
    """A plain table with a header row."""
    grid = Table(box=box.SIMPLE_HEAD, pad_edge=False, show_edge=False, highlight=False)
    for name in columns:
        grid.add_column(name, overflow="fold")
    return grid


def when(value: datetime | None, zone: tzinfo) -> str:
    """A time in ``zone`` to the second, its zone named (``2030-01-31 09:00:00 CET``), as
    the dashboard shows it (JSON output keeps ISO 8601 in UTC, for scripts)."""
    return human_time(value, zone)


def duration(seconds: float) -> str:
    """A short human duration (see :func:`~jobify.inspection.human_duration`)."""
    return human_duration(seconds)


def print_json(data: Any) -> None:
    """Write ``data`` as indented JSON on stdout (ASCII only, so nothing in it can act on a
    terminal)."""
    sys.stdout.write(json.dumps(jsonable(data), indent=2, ensure_ascii=True) + "\n")


def rows_of(grid: Table, rows: Iterable[Iterable[Text]]) -> Table:
    """Add every row to ``grid`` and return it."""
    for row in rows:
        grid.add_row(*row)
    return grid
