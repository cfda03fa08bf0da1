"""Prometheus metrics for jobify (extra ``prometheus``).

Usage::

    app = Jobify()
    metrics = PrometheusMiddleware(queue_depth=app)   # the global registry, or pass one
    app.add_middleware(metrics)
    server = start_metrics_server(9464, registry=metrics.registry)   # http://127.0.0.1:9464/

One *run* is one execution attempt: a job retried twice counts three runs. Metrics (the
``jobify`` prefix is the ``namespace`` argument):

=================================  =========  ==============================================
``jobify_job_runs_total``          counter    runs that ended, by ``task`` and ``outcome``
                                              (``success``, ``failure``, ``timeout``,
                                              ``cancelled``)
``jobify_job_failures_total``      counter    failed or timed-out runs, by ``task`` and
                                              ``exception`` (the class as ``module.name``,
                                              also for builtins: ``builtins.ValueError``)
``jobify_job_retries_total``       counter    runs that were retries, by ``task``
``jobify_job_duration_seconds``    histogram  run duration, by ``task`` and ``outcome``
``jobify_job_lateness_seconds``    histogram  start of a job's first attempt minus its
                                              scheduled time (``job.exec_at``), by ``task``
``jobify_job_in_progress``         gauge      runs in progress, by ``task``
``jobify_queue_depth``             gauge      jobs scheduled and not running (read from
                                              ``queue_depth`` at scrape time)
=================================  =========  ==============================================

Nothing is computed for the queue depth between scrapes; each run costs a few counter and
histogram updates on children cached per task.
"""

from __future__ import annotations

import asyncio
import logging
import re
import threading
import time
from collections.abc import Callable, Iterable, Sequence
from typing import Any, Final

from jobify import JobContext, Jobify, JobStatus
from jobify.exceptions import JobTimeoutError, MissingDependencyError
from jobify.middleware import BaseMiddleware, CallNext

try:
    from prometheus_client import REGISTRY, CollectorRegistry, Counter, Gauge, Histogram
    from prometheus_client import start_http_server as _start_http_server
    from prometheus_client.core import GaugeMetricFamily
    from prometheus_client.registry import Collector
except ImportError as exc:  # pragma: no cover - exercised in a subprocess test
    raise MissingDependencyError(
        "prometheus-client", "prometheus", "jobify.prometheus (Prometheus metrics)"
    ) from exc

__all__ = [
    "DURATION_BUCKETS",
    "LATENESS_BUCKETS",
    "MetricsServer",
    "PrometheusMiddleware",
    "start_metrics_server",
]

log = logging.getLogger("jobify.prometheus")

DURATION_BUCKETS: Final = (
    0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 300.0, 900.0,
    3600.0,
)  # fmt: skip
"""Default buckets of the duration histogram (seconds): jobs last from milliseconds to hours."""

LATENESS_BUCKETS: Final = (
    0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 5.0, 30.0, 60.0, 300.0, 3600.0,
)  # fmt: skip
"""Default buckets of the lateness histogram (seconds): on time is a few milliseconds."""

# See jobify.otel: asyncio.timeout cancels without saying why, so a cancellation that arrives
# once the task's timeout has elapsed (less this slack) is taken to be the timeout.
_TIMEOUT_SLACK = 0.005
# Reading the app's jobs from the scrape thread races with the loop changing them; a read
# that hits a change is tried again this many times.
_READ_TRIES = 5
_NAMESPACE = re.compile(r"[a-zA-Z_:][a-zA-Z0-9_:]*")

QueueDepthSource = Jobify | Callable[[], int]


def _qualified_name(cls: type[BaseException]) -> str:
    """The ``exception`` label: ``module.qualname`` for every class, builtins included
    (``builtins.ValueError``, ``jobify.exceptions.JobTimeoutError``, ``myapp.errors.Gone``),
    so that one query form fits all and two classes of one name never share a series."""
    return f"{cls.__module__}.{cls.__qualname__}"


def _waiting_jobs(app: Jobify) -> Callable[[], int]:
    def count() -> int:
        return sum(1 for job in app.get_active_jobs() if job.status is not JobStatus.RUNNING)

    return count


class _QueueDepth(Collector):
    """``<namespace>_queue_depth``, read from its source when scraped (no sample without one)."""

    def __init__(self, name: str, source: Callable[[], int] | None) -> None:
        self._name = name
        self.source = source
        self.from_plugin = False

    def _family(self) -> GaugeMetricFamily:
        return GaugeMetricFamily(self._name, "Jobs scheduled and not yet running.")

    def describe(self) -> Iterable[GaugeMetricFamily]:
        # Lets the registry check the name at registration without calling the source.
        return [self._family()]

    def collect(self) -> Iterable[GaugeMetricFamily]:
        family = self._family()
        source = self.source
        if source is None:
            return [family]
        for _ in range(_READ_TRIES):
            try:
                family.add_metric([], float(source()))
                break
            except RuntimeError:  # "changed size during iteration": the loop moved on
                continue
            except Exception:
                log.warning("reading the queue depth failed; the sample is left out", exc_info=True)
                break
        return [family]


class _TaskMetrics:
    """Label children of one task, resolved once (``labels()`` is a dict lookup under a lock)."""

    __slots__ = ("by_outcome", "failures", "in_progress", "lateness", "retries", "task")

    def __init__(self, metrics: PrometheusMiddleware, task: str) -> None:
        self.task = task
        self.retries = metrics.retries.labels(task)
        self.lateness = metrics.lateness.labels(task)
        self.in_progress = metrics.in_progress.labels(task)
        self.failures = metrics.failures
        self.by_outcome = {
            outcome: (metrics.runs.labels(task, outcome), metrics.duration.labels(task, outcome))
            for outcome in ("success", "failure", "timeout", "cancelled")
        }


class PrometheusMiddleware(BaseMiddleware):
    """Counts, times and measures the lateness of every run (see the module docstring).

    ``registry``: where the metrics are registered (default: prometheus_client's global
    registry; tests pass their own ``CollectorRegistry``). ``queue_depth``: the app, or a
    callable returning the number of waiting jobs; it is called from the thread serving the
    scrape, so it must be safe there (reading the app is). ``namespace`` prefixes every
    metric name. Registering a second middleware in the same registry is a ``ValueError``:
    share one instance, or give each its own registry or namespace.
    """

    def __init__(
        self,
        *,
        registry: CollectorRegistry | None = None,
        queue_depth: QueueDepthSource | None = None,
        namespace: str = "jobify",
        duration_buckets: Sequence[float] = DURATION_BUCKETS,
        lateness_buckets: Sequence[float] = LATENESS_BUCKETS,
    ) -> None:
        if registry is not None and not isinstance(registry, CollectorRegistry):
            raise TypeError(
                "registry must be a prometheus_client.CollectorRegistry (or None for the global "
                f"one), got {registry!r}"
            )
        if not isinstance(namespace, str) or not _NAMESPACE.fullmatch(namespace):
            raise ValueError(
                f"namespace must be a metric name prefix (letters, digits, '_', ':', not "
                f"starting with a digit), got {namespace!r}"
            )
        self.registry = REGISTRY if registry is None else registry
        if queue_depth is not None and not (
            isinstance(queue_depth, Jobify) or callable(queue_depth)
        ):
            raise TypeError(
                "queue_depth must be the Jobify app or a callable returning the number of "
                f"waiting jobs, got {queue_depth!r}"
            )
        p = namespace
        # Made unregistered, then registered together: a clash leaves the registry unchanged.
        self.runs = Counter(
            f"{p}_job_runs", "Job runs that ended.", ["task", "outcome"], registry=None
        )
        self.failures = Counter(
            f"{p}_job_failures",
            "Job runs that failed or timed out.",
            ["task", "exception"],
            registry=None,
        )
        self.retries = Counter(
            f"{p}_job_retries", "Job runs that were retries.", ["task"], registry=None
        )
        self.duration = Histogram(
            f"{p}_job_duration_seconds",
            "Duration of job runs.",
            ["task", "outcome"],
            buckets=duration_buckets,
            registry=None,
        )
        self.lateness = Histogram(
            f"{p}_job_lateness_seconds",
            "Seconds between a job's scheduled time and the start of its first attempt.",
            ["task"],
            buckets=lateness_buckets,
            registry=None,
        )
        self.in_progress = Gauge(
            f"{p}_job_in_progress", "Job runs in progress.", ["task"], registry=None
        )
        collectors: list[Collector] = [
            self.runs,
            self.failures,
            self.retries,
            self.duration,
            self.lateness,
            self.in_progress,
        ]
        if isinstance(queue_depth, Jobify):
            queue_depth = _waiting_jobs(queue_depth)
        self._queue_depth = _QueueDepth(f"{p}_queue_depth", queue_depth)
        collectors.append(self._queue_depth)
        _register_all(self.registry, collectors)
        self._tasks: dict[str, _TaskMetrics] = {}
        self._key = f"jobify.prometheus.{id(self):x}"

    async def startup(self, app: Jobify) -> None:
        """As a plugin of ``app`` (``plugins=[metrics]``): report its queue depth, unless
        ``queue_depth`` was given."""
        depth = self._queue_depth
        if depth.source is None or depth.from_plugin:
            depth.source = _waiting_jobs(app)
            depth.from_plugin = True

    async def shutdown(self) -> None:
        """As a plugin: stop reading the app's queue depth (the gauge has no sample then)."""
        depth = self._queue_depth
        if depth.from_plugin:
            depth.source = None
            depth.from_plugin = False

    async def __call__(self, call_next: CallNext, context: JobContext) -> Any:
        task = context.runnable.name
        metrics = self._tasks.get(task)
        if metrics is None:
            metrics = self._tasks[task] = _TaskMetrics(self, task)
        # Attempts of one execution share its request_state (retries re-run the chain).
        request_state = context.request_state
        attempt: int = request_state.get(self._key, 0) + 1
        request_state[self._key] = attempt
        if attempt == 1:
            try:
                scheduled = context.job.exec_at.timestamp()
            except AttributeError:  # a handle made without a schedule (not by the scheduler)
                pass
            else:
                metrics.lateness.observe(max(0.0, time.time() - scheduled))
        else:
            metrics.retries.inc()
        metrics.in_progress.inc()
        outcome = "failure"
        started = time.perf_counter()
        try:
            result = await call_next(context)
            outcome = "success"
            return result
        except asyncio.CancelledError:
            timeout = context.route_options.get("timeout")
            if timeout is not None and time.perf_counter() - started + _TIMEOUT_SLACK >= timeout:
                outcome = "timeout"
                metrics.failures.labels(task, _qualified_name(JobTimeoutError)).inc()
            else:
                outcome = "cancelled"
            raise
        except BaseException as exc:
            metrics.failures.labels(task, _qualified_name(type(exc))).inc()
            raise
        finally:
            metrics.in_progress.dec()
            runs, duration = metrics.by_outcome[outcome]
            runs.inc()
            duration.observe(time.perf_counter() - started)


def _register_all(registry: CollectorRegistry, collectors: Sequence[Collector]) -> None:
    done: list[Collector] = []
    try:
        for collector in collectors:
            registry.register(collector)
            done.append(collector)
    except ValueError as exc:
        for collector in done:
            registry.unregister(collector)
        raise ValueError(
            f"cannot register jobify's metrics: {exc}. A PrometheusMiddleware is already "
            "registered in this registry: share one instance, or pass registry= (e.g. a new "
            "prometheus_client.CollectorRegistry()) or another namespace="
        ) from exc


class MetricsServer:
    """An HTTP endpoint serving a registry's metrics, on a daemon thread. Close it when done
    (or use it as a context manager)."""

    def __init__(self, httpd: Any, thread: threading.Thread) -> None:
        self._httpd = httpd
        self._thread = thread
        host, port = httpd.server_address[:2]
        self.host: str = host
        self.port: int = port

    @property
    def url(self) -> str:
        """The metrics URL (any path serves the metrics; ``/metrics`` by convention)."""
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"http://{host}:{self.port}/metrics"

    def close(self) -> None:
        """Stop serving and wait for the server thread to end."""
        self._httpd.shutdown()
        self._httpd.server_close()
        self._thread.join()

    def __enter__(self) -> MetricsServer:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()


def start_metrics_server(
    port: int = 0, *, addr: str = "127.0.0.1", registry: CollectorRegistry | None = None
) -> MetricsServer:
    """Serve ``registry`` (default the global one) over HTTP at ``addr:port``.

    ``addr`` defaults to the loopback interface: metrics are not exposed to the network unless
    asked (``addr="0.0.0.0"``). ``port=0`` picks a free port (see ``MetricsServer.port``).
    """
    httpd, thread = _start_http_server(
        port, addr=addr, registry=REGISTRY if registry is None else registry
    )
    return MetricsServer(httpd, thread)
