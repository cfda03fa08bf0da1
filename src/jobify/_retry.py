"""Retry policies: ``SmartRetry`` and the back-off math (pure; the pipeline does the waiting)."""

from __future__ import annotations

import math
import random
from dataclasses import dataclass

__all__ = ["SmartRetry", "as_retry"]


@dataclass(frozen=True, slots=True)
class SmartRetry:
    """Retry with exponential back-off and optional jitter.

    ``retries`` extra attempts after the first failure; the wait before retry ``n`` (1-based)
    is ``min(initial_delay * backoff_factor ** (n - 1), max_delay)``, scaled by a random
    factor in [0.5, 1.0] when ``jitter`` is on (spreads retries of many jobs failing at once).
    Only exceptions that are instances of ``include_exceptions`` and not of
    ``exclude_exceptions`` are retried.

    A task's ``retry=N`` means ``SmartRetry(retries=N)``: 0.5 s before the first retry,
    doubling, at most 60 s, with jitter. ``SmartRetry(retries=N, initial_delay=0)`` retries at
    once. During retries the job stays RUNNING; each failed attempt is logged at WARNING.
    """

    retries: int
    initial_delay: float = 0.5
    max_delay: float = 60.0
    backoff_factor: float = 2.0
    jitter: bool = True
    include_exceptions: tuple[type[BaseException], ...] = (Exception,)
    exclude_exceptions: tuple[type[BaseException], ...] = ()

    def __post_init__(self) -> None:
        if isinstance(self.retries, bool) or not isinstance(self.retries, int):
            raise TypeError(f"retries must be an int, got {type(self.retries).__name__}")
        if self.retries < 0:
            raise ValueError(f"retries must be >= 0, got {self.retries}")
        for name in ("initial_delay", "max_delay", "backoff_factor"):
            value = getattr(self, name)
            if not isinstance(value, int | float) or not math.isfinite(value) or value < 0:
                raise ValueError(f"{name} must be a finite number >= 0, got {value!r}")

    def should_retry(self, exc: BaseException) -> bool:
        """Whether this exception is one to retry."""
        return isinstance(exc, self.include_exceptions) and not isinstance(
            exc, self.exclude_exceptions
        )

    def delay(self, attempt: int) -> float:
        """Seconds to wait before retry number ``attempt`` (1-based)."""
        if self.initial_delay == 0:
            return 0.0
        base = min(self.initial_delay * self.backoff_factor ** (attempt - 1), self.max_delay)
        if self.jitter:
            base *= random.uniform(0.5, 1.0)  # jitter, not cryptography
        return base


def as_retry(retry: int | SmartRetry | None) -> SmartRetry | None:
    """Normalise a task's ``retry`` option: an int ``N`` means ``SmartRetry(retries=N)``, with
    its default back-off (0.5 s, doubling, jitter, at most 60 s): retrying a failing remote
    service at once would only hammer it. ``SmartRetry(retries=N, initial_delay=0)`` retries
    at once."""
    if retry is None:
        return None
    if isinstance(retry, SmartRetry):
        return retry if retry.retries > 0 else None
    if isinstance(retry, bool) or not isinstance(retry, int):
        raise TypeError(f"retry must be an int or a SmartRetry, got {type(retry).__name__}")
    if retry < 0:
        raise ValueError(f"retry must be >= 0 (extra attempts after a failure), got {retry}")
    if retry == 0:
        return None
    return SmartRetry(retries=retry)
