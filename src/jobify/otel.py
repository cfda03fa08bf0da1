"""OpenTelemetry tracing for jobify: one span per execution attempt (extra ``otel``).

Usage::

    otel = OpenTelemetryMiddleware()              # the global tracer provider, or pass one
    app = Jobify(middleware=[otel], outer_middleware=[otel.outer_middleware])

``OpenTelemetryMiddleware`` wraps each execution attempt of a job in a span named
``jobify.run <task>``. Its companion ``otel.outer_middleware`` runs when a job is scheduled
(``push``, ``at``, ``delay``, ``cron``) and remembers the span that was current then, so that
the execution span continues the trace of the code that asked for the job:

- a one-shot job's spans (one per attempt) are children of the scheduling span;
- a cron job's first fire is a child of it; later fires start their own trace with a *link* to
  it (one trace per fire keeps traces bounded: a cron may fire for months, and a single trace
  holding every fire would never end);
- a job restored from storage after a restart, or scheduled with no span current, gets a span
  without a parent.

The ambient context of the scheduler's task is never used as the parent: it is whatever was
current where a timer happened to be armed, and would attach a job to an unrelated trace.

Kind ``CONSUMER``: the span is the deferred processing of a request made earlier by other code
that did not wait for it, which is what that kind means (``INTERNAL`` describes a synchronous
step of its parent's own work). Tracing backends also treat a ``CONSUMER`` span without parent
as the entry point of a unit of work, which a cron fire is.

Attributes (job-scheduler concepts have no OpenTelemetry semantic convention, so they are under
``jobify.*``; the general conventions are used where one fits):

====================================  ========================================================
``jobify.task.name``                  the task's full name (also in the span name)
``jobify.job.id``                     the job id
``jobify.task.run_mode``              ``main``, ``thread`` or ``process``
``code.function.name``                the task function's ``module.qualname``
``jobify.job.attempt``                1 for the first attempt, 2 for the first retry, ...
``jobify.job.max_attempts``           1 + the retries allowed (only when the task retries)
``jobify.task.timeout``               the task's timeout in seconds (when it has one)
``jobify.cron.expression``            the cron expression (cron jobs only)
``jobify.job.scheduled_time``         when the job was due, ISO 8601 with offset
``jobify.job.lateness``               seconds between that time and this attempt's start
``jobify.job.outcome``                ``success``, ``failure``, ``timeout`` or ``cancelled``
``error.type``                        the exception's class (failures only)
====================================  ========================================================

A failed attempt has status ERROR and an ``exception`` event. A timed-out attempt is reported
with a ``JobTimeoutError`` event; an attempt cancelled otherwise (the app shutting down) has
outcome ``cancelled``. The task's own spans are children of the execution span for tasks that
run on the event loop (``RunMode.MAIN``); a thread or process does not receive the context.

With no SDK configured (the API's default provider) and no captured context, a run costs two
checks and no span is made.
"""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Final

from jobify import Job, JobContext, JobStatus, OuterContext, __version__
from jobify.exceptions import JobTimeoutError, MissingDependencyError
from jobify.middleware import BaseMiddleware, BaseOuterMiddleware, CallNext, CallNextOuter

try:
    from opentelemetry import context as otel_context
    from opentelemetry import trace
    from opentelemetry.context import Context
except ImportError as exc:  # pragma: no cover - exercised in a subprocess test
    raise MissingDependencyError(
        "opentelemetry-api", "otel", "jobify.otel (OpenTelemetry tracing)"
    ) from exc

__all__ = ["OpenTelemetryMiddleware", "OpenTelemetryOuterMiddleware"]

ATTR_TASK: Final = "jobify.task.name"
ATTR_JOB_ID: Final = "jobify.job.id"
ATTR_RUN_MODE: Final = "jobify.task.run_mode"
ATTR_FUNCTION: Final = "code.function.name"
ATTR_ATTEMPT: Final = "jobify.job.attempt"
ATTR_MAX_ATTEMPTS: Final = "jobify.job.max_attempts"
ATTR_TIMEOUT: Final = "jobify.task.timeout"
ATTR_CRON: Final = "jobify.cron.expression"
ATTR_SCHEDULED: Final = "jobify.job.scheduled_time"
ATTR_LATENESS: Final = "jobify.job.lateness"
ATTR_OUTCOME: Final = "jobify.job.outcome"
ATTR_ERROR_TYPE: Final = "error.type"

# asyncio.timeout cancels the task without saying why, so a cancellation that arrives once the
# task's timeout has elapsed (less this slack, for the time spent before this middleware ran)
# is taken to be the timeout.
_TIMEOUT_SLACK = 0.005
# The store of captured contexts is swept of jobs that can no longer run once it has doubled.
_MIN_SWEEP = 1024
_ENDED = frozenset({JobStatus.CANCELLED, JobStatus.PERMANENTLY_FAILED})
_ROOT = Context()
_SILENT_PROVIDERS = (trace.NoOpTracerProvider, trace.ProxyTracerProvider)


def _qualified_name(cls: type[BaseException]) -> str:
    module = cls.__module__
    return cls.__qualname__ if module == "builtins" else f"{module}.{cls.__qualname__}"


@dataclass(slots=True)
class _Captured:
    """The span current when a job was scheduled."""

    job: Job[Any]
    span_context: trace.SpanContext
    fired: bool = False


class _Captures:
    """Captured span contexts by job id; all access is on the app's event loop."""

    def __init__(self) -> None:
        self._items: dict[str, _Captured] = {}
        self._sweep_at = _MIN_SWEEP

    def __len__(self) -> int:
        return len(self._items)

    def put(self, job: Job[Any], span_context: trace.SpanContext) -> _Captured | None:
        """Remember ``span_context`` for ``job``; returns what it replaced (for ``undo``)."""
        previous = self._items.get(job.id)
        self._items[job.id] = _Captured(job, span_context)
        if len(self._items) >= self._sweep_at:
            self._sweep()
        return previous

    def undo(self, job: Job[Any], previous: _Captured | None) -> None:
        """The scheduling call failed: forget ``job``'s capture, restore the one it replaced."""
        current = self._items.get(job.id)
        if current is None or current.job is not job:
            return
        if previous is None:
            del self._items[job.id]
        else:
            self._items[job.id] = previous

    def parent_of(self, job: Job[Any]) -> tuple[Context, tuple[trace.Link, ...]]:
        """The parent context and links of a new execution of ``job``."""
        captured = self._items.get(job.id)
        if captured is None or captured.job is not job:
            return _ROOT, ()
        if job.cron_expression is None:
            del self._items[job.id]  # a one-shot job executes once
        elif captured.fired:
            return _ROOT, (trace.Link(captured.span_context),)
        captured.fired = True
        return trace.set_span_in_context(trace.NonRecordingSpan(captured.span_context), _ROOT), ()

    def _sweep(self) -> None:
        # Jobs cancelled or refused before they ran never reach parent_of; drop them here.
        # (A cron job ended by max_runs keeps its small entry: no public signal tells it apart
        # from one waiting for its next fire.)
        self._items = {
            job_id: c
            for job_id, c in self._items.items()
            if not (c.job.status in _ENDED or (c.job.cron_expression is None and c.job.is_done()))
        }
        self._sweep_at = max(_MIN_SWEEP, 2 * len(self._items))


@dataclass(slots=True)
class _Execution:
    """What the attempts of one execution share (kept in the context's request_state)."""

    parent: Context
    links: tuple[trace.Link, ...]
    attempt: int = 0


class OpenTelemetryOuterMiddleware(BaseOuterMiddleware):
    """Remembers the span current when a job is scheduled, as the parent of its execution.

    Obtain it as ``OpenTelemetryMiddleware(...).outer_middleware``: the two share the store
    of captured contexts. Costs one context-variable read when no span is current.
    """

    def __init__(self, captures: _Captures) -> None:
        self._captures = captures

    async def __call__(self, call_next: CallNextOuter, context: OuterContext) -> Job[Any]:
        job = context.job
        span_context = trace.get_current_span().get_span_context()
        if job is None or not span_context.is_valid:
            return await call_next(context)
        # Captured before call_next: a job due now may start before control comes back here.
        previous = self._captures.put(job, span_context)
        try:
            return await call_next(context)
        except BaseException:
            self._captures.undo(job, previous)
            raise


class OpenTelemetryMiddleware(BaseMiddleware):
    """A span per execution attempt of every job (see the module docstring for the details).

    ``tracer_provider``: where spans go; default the global provider (read when spans are
    made, so one set after this middleware was built is used).
    """

    def __init__(self, *, tracer_provider: trace.TracerProvider | None = None) -> None:
        if tracer_provider is not None and not isinstance(tracer_provider, trace.TracerProvider):
            raise TypeError(
                "tracer_provider must be an opentelemetry TracerProvider (or None for the "
                f"global one), got {tracer_provider!r}"
            )
        self._provider = tracer_provider
        self._tracer = trace.get_tracer("jobify", __version__, tracer_provider=tracer_provider)
        self._captures = _Captures()
        self.outer_middleware = OpenTelemetryOuterMiddleware(self._captures)
        # Per task: (span name, attributes that never change between runs).
        self._static: dict[str, tuple[str, dict[str, Any]]] = {}
        self._key = f"jobify.otel.{id(self):x}"

    def _task_info(self, context: JobContext) -> tuple[str, dict[str, Any]]:
        runnable = context.runnable
        info = self._static.get(runnable.name)
        if info is None:
            options = context.route_options
            func = runnable.func
            attributes: dict[str, Any] = {
                ATTR_TASK: runnable.name,
                ATTR_RUN_MODE: str(runnable.run_mode),
                ATTR_FUNCTION: f"{func.__module__}.{func.__qualname__}",
            }
            retries = getattr(options.get("retry"), "retries", None)
            if retries is not None:
                attributes[ATTR_MAX_ATTEMPTS] = retries + 1
            timeout = options.get("timeout")
            if timeout is not None:
                attributes[ATTR_TIMEOUT] = float(timeout)
            info = self._static[runnable.name] = (f"jobify.run {runnable.name}", attributes)
        return info

    def _silent(self) -> bool:
        """True when spans would go nowhere: no SDK configured (or a no-op provider given)."""
        provider = self._provider
        if provider is None:
            provider = trace.get_tracer_provider()  # the global one may be set at any time
        return isinstance(provider, _SILENT_PROVIDERS)

    async def __call__(self, call_next: CallNext, context: JobContext) -> Any:
        if not self._captures and self._silent():
            # Nothing to record and no parent to pass on: the cost is these two checks.
            return await call_next(context)
        job = context.job
        request_state = context.request_state
        execution: _Execution | None = request_state.get(self._key)
        if execution is None:
            parent, links = self._captures.parent_of(job)
            execution = request_state[self._key] = _Execution(parent, links)
        execution.attempt += 1
        name, static = self._task_info(context)
        attributes = {**static, ATTR_JOB_ID: job.id, ATTR_ATTEMPT: execution.attempt}
        _add_schedule(attributes, job)
        span = self._tracer.start_span(
            name,
            context=execution.parent,
            kind=trace.SpanKind.CONSUMER,
            attributes=attributes,
            links=execution.links,
        )
        recording = span.is_recording()
        started = time.perf_counter()
        # The span is current while the task runs, so the task's own spans are its children.
        token = otel_context.attach(trace.set_span_in_context(span, execution.parent))
        try:
            result = await call_next(context)
        except asyncio.CancelledError:
            if recording:
                _set_cancelled(span, context, time.perf_counter() - started)
            raise
        except BaseException as exc:
            if recording:
                _set_failed(span, exc, "failure")
            raise
        else:
            if recording:
                span.set_attribute(ATTR_OUTCOME, "success")
            return result
        finally:
            otel_context.detach(token)
            span.end()


def _add_schedule(attributes: dict[str, Any], job: Job[Any]) -> None:
    cron = job.cron_expression
    if cron is not None:
        attributes[ATTR_CRON] = cron
    try:
        exec_at: datetime = job.exec_at
    except AttributeError:  # a handle made without a schedule (not by the scheduler)
        return
    attributes[ATTR_SCHEDULED] = exec_at.isoformat()
    attributes[ATTR_LATENESS] = max(0.0, time.time() - exec_at.timestamp())


def _set_failed(span: trace.Span, exc: BaseException, outcome: str) -> None:
    span.set_attribute(ATTR_OUTCOME, outcome)
    span.set_attribute(ATTR_ERROR_TYPE, _qualified_name(type(exc)))
    span.record_exception(exc)
    span.set_status(trace.Status(trace.StatusCode.ERROR, f"{type(exc).__name__}: {exc}"))


def _set_cancelled(span: trace.Span, context: JobContext, elapsed: float) -> None:
    timeout = context.route_options.get("timeout")
    if timeout is not None and elapsed + _TIMEOUT_SLACK >= timeout:
        _set_failed(span, JobTimeoutError(context.job.id, timeout), "timeout")
        return
    span.set_attribute(ATTR_OUTCOME, "cancelled")
    span.set_attribute(ATTR_ERROR_TYPE, _qualified_name(asyncio.CancelledError))
    span.set_status(trace.Status(trace.StatusCode.ERROR, "cancelled before it finished"))
