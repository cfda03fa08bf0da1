"""PrometheusMiddleware: metrics of a running app, scraped over real HTTP."""

from __future__ import annotations

import asyncio
import logging
import subprocess
import sys
import textwrap
import urllib.error
import urllib.request
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import pytest
from prometheus_client import CollectorRegistry
from prometheus_client.parser import text_string_to_metric_families

from jobify import Cron, Jobify, JobStatus, SmartRetry
from jobify.prometheus import MetricsServer, PrometheusMiddleware, start_metrics_server

EVERY_SECOND = "* * * * * * *"

Samples = dict[tuple[str, frozenset[tuple[str, str]]], float]


@pytest.fixture
def registry() -> CollectorRegistry:
    return CollectorRegistry()


@pytest.fixture
def server(registry: CollectorRegistry) -> Iterator[MetricsServer]:
    with start_metrics_server(0, registry=registry) as s:
        yield s


def scrape_sync(url: str) -> Samples:
    with urllib.request.urlopen(url, timeout=5) as response:
        assert response.status == 200
        text = response.read().decode()
    samples: Samples = {}
    for family in text_string_to_metric_families(text):
        for s in family.samples:
            samples[s.name, frozenset(s.labels.items())] = s.value
    return samples


async def scrape(server: MetricsServer) -> Samples:
    # From a thread, as Prometheus would: the app's loop keeps running during the scrape.
    return await asyncio.to_thread(scrape_sync, server.url)


def value(samples: Samples, name: str, **labels: str) -> float | None:
    return samples.get((name, frozenset(labels.items())))


async def test_a_real_scrape_of_a_running_app(
    registry: CollectorRegistry, server: MetricsServer
) -> None:
    metrics = PrometheusMiddleware(registry=registry)
    # Also a plugin: at startup it takes the app's queue depth.
    app = Jobify(storage=False, middleware=[metrics], plugins=[metrics])
    release = asyncio.Event()
    blocking = asyncio.Event()
    flaky_calls: list[int] = []

    @app.task(name="ok")
    async def ok() -> int:
        return 1

    @app.task(name="broken")
    async def broken() -> None:
        raise ValueError("no")

    @app.task(name="slow", timeout=0.03)
    async def slow() -> None:
        await asyncio.sleep(5)

    @app.task(name="flaky", retry=SmartRetry(2, initial_delay=0))
    async def flaky() -> None:
        flaky_calls.append(1)
        if len(flaky_calls) == 1:
            raise ConnectionError("once")

    @app.task(name="blocker")
    async def blocker() -> None:
        blocking.set()
        await release.wait()

    @app.task(name="later")
    async def later() -> None:
        pass

    async with app:
        for task in (ok, broken, slow, flaky):
            await (await task.push()).wait()
        for _ in range(3):
            await later.schedule().delay(60)
        held = await blocker.push()
        await blocking.wait()

        samples = await scrape(server)
        assert value(samples, "jobify_queue_depth") == 3  # the running job is not waiting
        assert value(samples, "jobify_job_in_progress", task="blocker") == 1
        release.set()
        await held.wait()
        samples = await scrape(server)

    runs = "jobify_job_runs_total"
    assert value(samples, runs, task="ok", outcome="success") == 1
    assert value(samples, runs, task="broken", outcome="failure") == 1
    assert value(samples, runs, task="slow", outcome="timeout") == 1
    assert value(samples, runs, task="flaky", outcome="failure") == 1
    assert value(samples, runs, task="flaky", outcome="success") == 1
    assert value(samples, runs, task="ok", outcome="failure") == 0  # known labels start at 0
    failures = "jobify_job_failures_total"
    # One label form for every class, builtins and jobify's own alike: module.qualname.
    assert value(samples, failures, task="broken", exception="builtins.ValueError") == 1
    assert value(samples, failures, task="flaky", exception="builtins.ConnectionError") == 1
    timeout_error = "jobify.exceptions.JobTimeoutError"
    assert value(samples, failures, task="slow", exception=timeout_error) == 1
    assert value(samples, "jobify_job_retries_total", task="flaky") == 1
    assert value(samples, "jobify_job_retries_total", task="ok") == 0
    duration = "jobify_job_duration_seconds"
    assert value(samples, duration + "_count", task="ok", outcome="success") == 1
    slow_sum = value(samples, duration + "_sum", task="slow", outcome="timeout")
    assert slow_sum is not None and 0.03 <= slow_sum < 1
    assert value(samples, duration + "_bucket", task="slow", outcome="timeout", le="0.025") == 0
    # Lateness: once per execution, not per attempt.
    lateness = "jobify_job_lateness_seconds"
    assert value(samples, lateness + "_count", task="flaky") == 1
    assert value(samples, lateness + "_count", task="blocker") == 1
    assert value(samples, "jobify_job_in_progress", task="blocker") == 0
    assert value(samples, "jobify_queue_depth") == 3  # the "later" jobs still wait
    assert value(scrape_sync(server.url), "jobify_queue_depth") is None  # the plugin stopped


async def test_queue_depth_of_an_app_given_explicitly(registry: CollectorRegistry) -> None:
    app = Jobify(storage=False)
    PrometheusMiddleware(registry=registry, queue_depth=app)

    @app.task(name="later")
    async def later() -> None:
        pass

    assert registry.get_sample_value("jobify_queue_depth") == 0  # not started: no jobs
    async with app:
        for _ in range(2):
            await later.schedule().delay(60)
        assert registry.get_sample_value("jobify_queue_depth") == 2


async def test_lateness_is_measured_from_the_scheduled_time(registry: CollectorRegistry) -> None:
    app = Jobify(storage=False, middleware=[PrometheusMiddleware(registry=registry)])

    @app.task(name="overdue")
    async def overdue() -> None:
        pass

    async with app:
        job = await overdue.schedule().at(datetime.now(UTC) - timedelta(seconds=2))
        await job.wait()

    def bucket(le: str) -> float | None:
        return registry.get_sample_value(
            "jobify_job_lateness_seconds_bucket", {"task": "overdue", "le": le}
        )

    assert bucket("1.0") == 0
    assert bucket("5.0") == 1
    total = registry.get_sample_value("jobify_job_lateness_seconds_sum", {"task": "overdue"})
    assert total is not None and 2 <= total < 5


async def test_cron_runs_are_each_counted(registry: CollectorRegistry) -> None:
    app = Jobify(storage=False, middleware=[PrometheusMiddleware(registry=registry)])

    @app.task(name="tick", cron=Cron(EVERY_SECOND, max_runs=2))
    async def tick() -> None:
        pass

    async with app:
        job = app.find_job("tick")
        assert job is not None
        await job.wait()
        await job.wait()

    labels = {"task": "tick", "outcome": "success"}
    assert registry.get_sample_value("jobify_job_runs_total", labels) == 2
    assert registry.get_sample_value("jobify_job_lateness_seconds_count", {"task": "tick"}) == 2
    on_time = registry.get_sample_value(
        "jobify_job_lateness_seconds_bucket", {"task": "tick", "le": "0.25"}
    )
    assert on_time == 2


async def test_a_run_cut_by_shutdown_is_cancelled_not_failed(registry: CollectorRegistry) -> None:
    app = Jobify(storage=False, middleware=[PrometheusMiddleware(registry=registry)])
    started = asyncio.Event()

    @app.task(name="forever", timeout=60)
    async def forever() -> None:
        started.set()
        await asyncio.sleep(60)

    async with app:
        job = await forever.push()
        await started.wait()
    assert job.status is JobStatus.CANCELLED
    runs = "jobify_job_runs_total"
    assert registry.get_sample_value(runs, {"task": "forever", "outcome": "cancelled"}) == 1
    assert registry.get_sample_value(runs, {"task": "forever", "outcome": "timeout"}) == 0
    assert registry.get_sample_value("jobify_job_in_progress", {"task": "forever"}) == 0


def test_queue_depth_from_a_callable(
    registry: CollectorRegistry, server: MetricsServer, caplog: pytest.LogCaptureFixture
) -> None:
    depth = [7]

    def source() -> int:
        if depth[0] < 0:
            raise OSError("source broke")
        return depth[0]

    PrometheusMiddleware(registry=registry, queue_depth=source)
    assert value(scrape_sync(server.url), "jobify_queue_depth") == 7
    depth[0] = -1
    with caplog.at_level(logging.WARNING, logger="jobify.prometheus"):
        samples = scrape_sync(server.url)
    assert value(samples, "jobify_queue_depth") is None  # left out, the scrape still works
    assert "queue depth" in caplog.text
    assert value(samples, "jobify_job_runs_total") is None  # no runs yet: no samples


def test_bad_queue_depth_is_a_clear_error(registry: CollectorRegistry) -> None:
    with pytest.raises(TypeError, match="queue_depth must be the Jobify app or a callable"):
        PrometheusMiddleware(registry=registry, queue_depth=3)  # type: ignore[arg-type]


def test_a_second_middleware_in_one_registry_is_a_clear_error(
    registry: CollectorRegistry,
) -> None:
    PrometheusMiddleware(registry=registry)
    with pytest.raises(ValueError, match="share one instance, or pass registry="):
        PrometheusMiddleware(registry=registry, queue_depth=lambda: 0)
    # Nothing of the failed one stayed registered: another namespace fits.
    PrometheusMiddleware(registry=registry, namespace="other", queue_depth=lambda: 0)
    assert registry.get_sample_value("other_queue_depth") == 0


def test_the_server_listens_on_loopback_and_closes(registry: CollectorRegistry) -> None:
    server = start_metrics_server(0, registry=registry)
    assert server.host == "127.0.0.1"
    assert server.url == f"http://127.0.0.1:{server.port}/metrics"
    PrometheusMiddleware(registry=registry, queue_depth=lambda: 1)
    assert value(scrape_sync(server.url), "jobify_queue_depth") == 1
    server.close()
    with pytest.raises(urllib.error.URLError):
        scrape_sync(server.url)


def run_script(code: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-c", textwrap.dedent(code)], capture_output=True, text=True, timeout=60
    )


def test_the_global_registry_by_default_and_nothing_at_import() -> None:
    proc = run_script(
        """
        from prometheus_client import REGISTRY, generate_latest
        import jobify.prometheus
        assert b"jobify_" not in generate_latest(REGISTRY)  # importing registers nothing
        jobify.prometheus.PrometheusMiddleware(queue_depth=lambda: 4)
        text = generate_latest(REGISTRY).decode()
        assert "jobify_queue_depth 4.0" in text, text
        print("ok")
        """
    )
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == "ok"


def test_missing_prometheus_client_is_a_clear_error() -> None:
    proc = run_script(
        """
        import sys
        sys.modules["prometheus_client"] = None  # as if the extra were not installed
        from jobify.exceptions import MissingDependencyError
        try:
            import jobify.prometheus
        except MissingDependencyError as exc:
            assert isinstance(exc, ImportError)
            print(exc)
        """
    )
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == (
        "jobify.prometheus (Prometheus metrics) needs the 'prometheus-client' package; "
        "install it with pip install 'jobify[prometheus]'"
    )


def test_a_bad_registry_or_namespace_is_a_clear_error() -> None:
    with pytest.raises(TypeError, match=r"registry must be a prometheus_client\.CollectorRegistry"):
        PrometheusMiddleware(registry={})  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="namespace must be a metric name prefix"):
        PrometheusMiddleware(registry=CollectorRegistry(), namespace="my-app")


def test_public_names() -> None:
    import jobify.prometheus

    assert set(jobify.prometheus.__all__) == {
        "DURATION_BUCKETS",
        "LATENESS_BUCKETS",
        "MetricsServer",
        "PrometheusMiddleware",
        "start_metrics_server",
    }
