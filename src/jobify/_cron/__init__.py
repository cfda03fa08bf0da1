"""The cron engine: :mod:`~jobify._cron.parse` compiles, :mod:`~jobify._cron.engine` finds fires.

Both are pure: no I/O, no clock; the current time is always an argument.
"""

from __future__ import annotations

from jobify._cron.engine import next_fire
from jobify._cron.parse import CronSpec, parse

__all__ = ["CronSpec", "next_fire", "parse"]
