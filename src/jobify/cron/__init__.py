"""The cron engine: :mod:`~jobify.cron.parse` compiles, :mod:`~jobify.cron.engine` finds fires.

Both are pure: no I/O, no clock; the current time is always an argument.
"""

from __future__ import annotations

from jobify.cron.engine import next_fire
from jobify.cron.parse import CronSpec, parse

__all__ = ["CronSpec", "next_fire", "parse"]
