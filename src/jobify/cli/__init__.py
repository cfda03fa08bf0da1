"""The ``jobify`` command (also ``python -m jobify``).

Commands: ``jobs`` (list, show, count, cancel, pause, resume, run, history) on a job store
given by ``--storage URL``; ``cron`` (preview fire times); ``tasks MODULE:APP``;
``worker MODULE:APP``; ``dashboard`` (the web dashboard; extra ``dashboard``). It is built on
:mod:`jobify.inspection` for everything it reads from or changes in a store.

The command needs the ``cli`` extra (click, rich): ``pip install 'jobify[cli]'``. Without it,
``jobify cron`` still works and every other command says what to install.
"""

from __future__ import annotations

import sys
from collections.abc import Sequence

__all__ = ["main"]

EXTRA_PACKAGES = ("click", "rich")
EXIT_FAILURE = 1


def _missing() -> list[str]:
    missing = []
    for name in EXTRA_PACKAGES:
        try:
            __import__(name)
        except ImportError:
            missing.append(name)
    return missing


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line with ``argv`` (default ``sys.argv[1:]``); return the exit code.

    Never calls ``sys.exit`` itself, so tests can call it directly.
    """
    args = list(sys.argv[1:] if argv is None else argv)
    missing = _missing()
    if missing:
        if args[:1] == ["cron"]:
            from jobify.cli._cron import cron_without_click

            return cron_without_click(args[1:])
        print(
            f"jobify: the jobify command needs {' and '.join(missing)}: "
            "pip install 'jobify[cli]' (only 'jobify cron' works without it)",
            file=sys.stderr,
        )
        return EXIT_FAILURE
    from jobify.cli._root import run

    return run(args)
