"""``create_crontab``: the default ``cron_factory`` of :class:`jobify.Jobify`.

It turns an expression into a :class:`CronExpression`, whose ``next_run(now=...)`` gives the
next fire time.  Syntax and daylight-saving rules are documented in :mod:`jobify.cron.parse`
and :mod:`jobify.cron.engine` (spec §4).  Note one deliberate difference from the reference
system: when both day-of-month and day-of-week are restricted, a day matches if *either*
matches (the POSIX/Vixie rule), where the reference system's parser requires both.
"""

from __future__ import annotations

import functools
from datetime import datetime

from jobify.cron.engine import next_fire
from jobify.cron.parse import CronSpec, parse

__all__ = ["CronExpression", "create_crontab"]


class CronExpression:
    """A compiled cron expression.

    Immutable and shareable: :func:`create_crontab` hands out one instance per distinct
    expression string.
    """

    __slots__ = ("expression", "spec")

    expression: str
    """The expression exactly as given."""
    spec: CronSpec
    """The compiled form (allowed values per field)."""

    def __init__(self, expression: str) -> None:
        """Compile ``expression``; raises :class:`~jobify.exceptions.CronParseError`."""
        self.spec = parse(expression)
        self.expression = expression

    @property
    def hour_is_fixed(self) -> bool:
        """``False`` when the hour field is ``*`` or ``*/n`` (follows real time across DST)."""
        return self.spec.hour_fixed

    def next_run(self, *, now: datetime) -> datetime:
        """The first fire time strictly after the aware ``now``, in ``now``'s zone.

        Raises :class:`ValueError` for a naive ``now`` and
        :class:`~jobify.exceptions.CronExhaustedError` if the expression never fires again.
        """
        return next_fire(self.spec, now)

    def __repr__(self) -> str:
        return f"CronExpression({self.expression!r})"

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, CronExpression):
            return NotImplemented
        return self.expression == other.expression

    def __hash__(self) -> int:
        return hash(self.expression)


@functools.lru_cache(maxsize=1024)
def _create_cached(expression: str) -> CronExpression:
    return CronExpression(expression)


def create_crontab(expression: str) -> CronExpression:
    """Compile ``expression`` (cached) and return its :class:`CronExpression`.

    Raises :class:`~jobify.exceptions.CronParseError` naming the field and token of a malformed
    expression, :class:`TypeError` when ``expression`` is not a ``str``.
    """
    if not isinstance(expression, str):
        raise TypeError(f"a cron expression must be a str, not {type(expression).__name__}")
    return _create_cached(expression)
