"""OpenTelemetryMiddleware against the SDK's in-memory exporter, one provider per test."""

from __future__ import annotations

import asyncio
import gc
import subprocess
import sys
import textwrap
import weakref
from collections.abc import Iterator, Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from opentelemetry import trace
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import SpanKind, StatusCode

from jobify import Cron, Job, Jobify, JobStatus, SmartRetry
from jobify.otel import OpenTelemetryMiddleware, OpenTelemetryOuterMiddleware
from jobify.storage import SQLiteStorage

EVERY_SECOND = "* * * * * * *"


class Tracing:
    """A provider of the test's own whose finished spans land in memory."""

    def __init__(self) -> None:
        self.exporter = InMemorySpanExporter()
        self.provider = TracerProvider()
        self.provider.add_span_processor(SimpleSpanProcessor(self.exporter))
        self.tracer = self.provider.get_tracer("tests")
        self.middleware = OpenTelemetryMiddleware(tracer_provider=self.provider)

    def app(self, **options: Any) -> Jobify:
        options.setdefault("storage", False)
        return Jobify(
            middleware=[self.middleware],
            outer_middleware=[self.middleware.outer_middleware],
            **options,
        )

    def runs(self) -> list[ReadableSpan]:
        """Finished execution spans, in the order they ended."""
        return [s for s in self.exporter.get_finished_spans() if s.name.startswith("jobify.run")]


@pytest.fixture
def tracing() -> Iterator[Tracing]:
    t = Tracing()
    yield t
    t.provider.shutdown()


def attrs(span: ReadableSpan) -> dict[str, Any]:
    return dict(span.attributes or {})


def parent_id(span: ReadableSpan) -> int | None:
    return span.parent.span_id if span.parent is not None else None


def span_id(span: trace.Span | ReadableSpan) -> int:
    ctx = span.get_span_context()
    assert ctx is not None
    return ctx.span_id


def events(span: ReadableSpan) -> Sequence[Any]:
    return list(span.events)


async def test_success_span_has_the_attributes(tracing: Tracing) -> None:
    app = tracing.app()

    @app.task(metadata={"team": "a"})
    async def add(a: int, b: int) -> int:
        return a + b

    async with app:
        job = await add.push(1, 2)
        assert await job == 3

    (span,) = tracing.runs()
    assert span.name == f"jobify.run {add.name}"
    assert span.kind is SpanKind.CONSUMER
    assert span.status.status_code is StatusCode.UNSET
    assert span.parent is None  # pushed with no span current
    a = attrs(span)
    assert a["jobify.task.name"] == add.name
    assert a["jobify.job.id"] == job.id
    assert a["jobify.task.run_mode"] == "main"
    assert a["code.function.name"].endswith("test_success_span_has_the_attributes.<locals>.add")
    assert a["jobify.job.attempt"] == 1
    assert a["jobify.job.outcome"] == "success"
    assert datetime.fromisoformat(a["jobify.job.scheduled_time"]) == job.exec_at
    assert 0 <= a["jobify.job.lateness"] < 5
    for absent in ("jobify.cron.expression", "jobify.job.max_attempts", "error.type"):
        assert absent not in a


async def test_failure_sets_error_status_and_records_the_exception(tracing: Tracing) -> None:
    app = tracing.app()

    @app.task
    async def broken() -> None:
        raise ValueError("bad value")

    async with app:
        job = await broken.push()
        await job.wait()
        assert job.status is JobStatus.FAILED

    (span,) = tracing.runs()
    assert span.status.status_code is StatusCode.ERROR
    assert span.status.description == "ValueError: bad value"
    assert attrs(span)["jobify.job.outcome"] == "failure"
    assert attrs(span)["error.type"] == "ValueError"
    (event,) = events(span)
    assert event.name == "exception"
    assert event.attributes["exception.type"] == "ValueError"
    assert event.attributes["exception.message"] == "bad value"


async def test_timeout_is_an_error_with_a_job_timeout_event(tracing: Tracing) -> None:
    app = tracing.app()

    @app.task(timeout=0.03)
    async def slow() -> None:
        await asyncio.sleep(5)

    async with app:
        job = await slow.push()
        await job.wait()
        assert job.status is JobStatus.TIMEOUT

    (span,) = tracing.runs()
    a = attrs(span)
    assert a["jobify.job.outcome"] == "timeout"
    assert a["jobify.task.timeout"] == 0.03
    assert a["error.type"] == "jobify.exceptions.JobTimeoutError"
    assert span.status.status_code is StatusCode.ERROR
    (event,) = events(span)
    assert event.attributes["exception.type"] == "jobify.exceptions.JobTimeoutError"
    assert span.end_time is not None and span.start_time is not None
    assert (span.end_time - span.start_time) / 1e9 < 1


async def test_a_job_cancelled_by_shutdown_is_reported_cancelled(tracing: Tracing) -> None:
    app = tracing.app()
    started = asyncio.Event()

    @app.task(timeout=60)
    async def forever() -> None:
        started.set()
        await asyncio.sleep(60)

    async with app:
        await forever.push()
        await started.wait()

    (span,) = tracing.runs()
    assert attrs(span)["jobify.job.outcome"] == "cancelled"
    assert attrs(span)["error.type"] == "asyncio.exceptions.CancelledError"
    assert span.status.status_code is StatusCode.ERROR


async def test_each_retry_attempt_is_a_span_under_the_same_parent(tracing: Tracing) -> None:
    app = tracing.app()
    calls: list[int] = []

    @app.task(retry=SmartRetry(3, initial_delay=0))
    async def flaky() -> str:
        calls.append(1)
        if len(calls) < 3:
            raise ConnectionError(f"attempt {len(calls)}")
        return "ok"

    async with app:
        with tracing.tracer.start_as_current_span("caller") as caller:
            job = await flaky.push()
        assert await job == "ok"

    spans = tracing.runs()
    assert [attrs(s)["jobify.job.attempt"] for s in spans] == [1, 2, 3]
    assert [attrs(s)["jobify.job.outcome"] for s in spans] == ["failure", "failure", "success"]
    assert {attrs(s)["jobify.job.max_attempts"] for s in spans} == {4}
    assert {parent_id(s) for s in spans} == {span_id(caller)}
    assert [s.status.status_code for s in spans] == [StatusCode.ERROR] * 2 + [StatusCode.UNSET]


async def test_push_inside_a_span_makes_it_the_parent(tracing: Tracing) -> None:
    app = tracing.app()

    @app.task
    async def child_work() -> None:
        # A span made by the task is a child of the execution span.
        with tracing.tracer.start_as_current_span("inside"):
            pass

    async with app:
        with tracing.tracer.start_as_current_span("request") as request:
            now = await child_work.push()
            later = await child_work.schedule().delay(0.02)
        await now.wait()
        await later.wait()

    runs = tracing.runs()
    assert len(runs) == 2
    for run in runs:
        assert parent_id(run) == span_id(request)
        assert run.context is not None and request.get_span_context() is not None
        assert run.context.trace_id == request.get_span_context().trace_id
    inside = [s for s in tracing.exporter.get_finished_spans() if s.name == "inside"]
    assert sorted(parent_id(s) or 0 for s in inside) == sorted(span_id(r) for r in runs)


async def test_concurrent_jobs_keep_their_own_parents(tracing: Tracing) -> None:
    app = tracing.app()
    both_running = asyncio.Barrier(2)

    @app.task
    async def work(tag: str) -> None:
        await both_running.wait()  # the two executions overlap
        with tracing.tracer.start_as_current_span(f"inside {tag}"):
            await asyncio.sleep(0)

    async def schedule(tag: str, at: datetime) -> tuple[int, str]:
        with tracing.tracer.start_as_current_span(f"caller {tag}") as caller:
            await asyncio.sleep(0)  # interleave the two callers
            job = await work.schedule(tag).at(at)
        return span_id(caller), job.id

    async with app:
        # Due at the same instant: the two jobs share one timer and its callback.
        at = datetime.now(UTC) + timedelta(milliseconds=40)
        callers = await asyncio.gather(schedule("a", at), schedule("b", at))
        await app.wait_all(timeout=5)

    by_job = {attrs(s)["jobify.job.id"]: s for s in tracing.runs()}
    finished = tracing.exporter.get_finished_spans()
    for (caller_id, job_id), tag in zip(callers, "ab", strict=True):
        run = by_job[job_id]
        assert parent_id(run) == caller_id
        (inside,) = [s for s in finished if s.name == f"inside {tag}"]
        assert parent_id(inside) == span_id(run)


async def test_the_ambient_context_of_startup_is_not_a_parent(tracing: Tracing) -> None:
    app = tracing.app()

    @app.task
    async def noop() -> None:
        pass

    with tracing.tracer.start_as_current_span("startup"):
        await app.startup()  # the scheduler copies the context current here
    try:
        job = await noop.schedule().delay(0.02)  # no span current when scheduling
        await job.wait()
    finally:
        await app.shutdown()
    (run,) = tracing.runs()
    assert run.parent is None


async def test_cron_first_fire_is_a_child_later_fires_link(tracing: Tracing) -> None:
    app = tracing.app()

    @app.task
    async def tick() -> None:
        pass

    async with app:
        with tracing.tracer.start_as_current_span("setup") as setup:
            job = await tick.schedule().cron(Cron(EVERY_SECOND, max_runs=3), job_id="ticker")
        for _ in range(3):
            await job.wait()

    runs = tracing.runs()
    assert len(runs) == 3
    assert {attrs(s)["jobify.cron.expression"] for s in runs} == {EVERY_SECOND}
    assert {attrs(s)["jobify.job.id"] for s in runs} == {"ticker"}
    scheduled = [datetime.fromisoformat(attrs(s)["jobify.job.scheduled_time"]) for s in runs]
    assert scheduled == sorted(scheduled) and len(set(scheduled)) == 3
    first, *later = runs
    assert parent_id(first) == span_id(setup)
    assert not first.links
    trace_ids = {first.context.trace_id if first.context else 0}
    for run in later:
        assert run.parent is None
        (link,) = run.links
        assert link.context.span_id == span_id(setup)
        assert run.context is not None
        trace_ids.add(run.context.trace_id)
    assert len(trace_ids) == 3  # one trace per fire


async def _noop() -> None:
    pass


async def test_a_restored_job_has_no_parent(tracing: Tracing, tmp_path: Path) -> None:
    db = tmp_path / "jobs.db"
    first = tracing.app(storage=SQLiteStorage(db))

    later = first.task(name="later")(_noop)

    async with first:
        with tracing.tracer.start_as_current_span("before restart"):
            job = await later.schedule().delay(0.05, job_id="kept")
    assert job.status is JobStatus.SCHEDULED  # stopped before it ran; its record stays

    # Same middleware instance: what it captured belongs to the old app's handle.
    second = tracing.app(storage=SQLiteStorage(db))

    # The same task, registered in the new app.
    second.task(name="later")(_noop)

    async with second:
        restored = second.find_job("kept")
        assert restored is not None
        await restored.wait()
        assert restored.status is JobStatus.SUCCESS

    (run,) = tracing.runs()
    assert run.parent is None
    assert attrs(run)["jobify.job.id"] == "kept"


async def test_a_refused_schedule_leaves_nothing_captured(tracing: Tracing) -> None:
    from jobify.exceptions import DuplicateJobError

    app = tracing.app()

    @app.task
    async def once() -> None:
        pass

    async with app:
        with tracing.tracer.start_as_current_span("first") as first:
            job = await once.schedule().delay(0.03, job_id="x")
        with (
            tracing.tracer.start_as_current_span("second"),
            pytest.raises(DuplicateJobError),
        ):
            await once.schedule().delay(0.5, job_id="x")
        await job.wait()

    (run,) = tracing.runs()
    assert parent_id(run) == span_id(first)


async def test_nothing_recorded_with_a_non_recording_provider() -> None:
    middleware = OpenTelemetryMiddleware(tracer_provider=trace.NoOpTracerProvider())
    app = Jobify(
        storage=False, middleware=[middleware], outer_middleware=[middleware.outer_middleware]
    )

    @app.task
    async def fails() -> None:
        raise KeyError("k")

    @app.task
    async def works() -> int:
        return 7

    async with app:
        assert await (await works.push()) == 7
        job = await fails.push()
        await job.wait()
        assert job.status is JobStatus.FAILED


def test_the_companion_is_an_outer_middleware() -> None:
    middleware = OpenTelemetryMiddleware()
    assert isinstance(middleware.outer_middleware, OpenTelemetryOuterMiddleware)


def run_script(code: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-c", textwrap.dedent(code)], capture_output=True, text=True, timeout=60
    )


def test_the_global_provider_is_used_by_default() -> None:
    # In a subprocess: the global provider can be set once per process.
    proc = run_script(
        """
        import asyncio
        from opentelemetry import trace
        from opentelemetry.sdk.trace import TracerProvider
        from opentelemetry.sdk.trace.export import SimpleSpanProcessor
        from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
        from jobify import Jobify
        from jobify.otel import OpenTelemetryMiddleware

        otel = OpenTelemetryMiddleware()  # built before the global provider is set
        exporter = InMemorySpanExporter()
        provider = TracerProvider()
        provider.add_span_processor(SimpleSpanProcessor(exporter))
        trace.set_tracer_provider(provider)
        app = Jobify(storage=False, middleware=[otel], outer_middleware=[otel.outer_middleware])

        @app.task(name="hello")
        async def hello() -> None:
            pass

        async def main() -> None:
            async with app:
                await (await hello.push()).wait()

        asyncio.run(main())
        print([s.name for s in exporter.get_finished_spans()])
        """
    )
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == "['jobify.run hello']"


def test_missing_opentelemetry_is_a_clear_error() -> None:
    proc = run_script(
        """
        import sys
        sys.modules["opentelemetry"] = None  # as if the extra were not installed
        from jobify.exceptions import MissingDependencyError
        try:
            import jobify.otel
        except MissingDependencyError as exc:
            assert isinstance(exc, ImportError)
            print(exc)
        """
    )
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == (
        "jobify.otel (OpenTelemetry tracing) needs the 'opentelemetry-api' package; "
        "install it with pip install 'jobify[otel]'"
    )


def test_importing_sets_no_global_provider() -> None:
    proc = run_script(
        """
        from opentelemetry import trace
        before = trace.get_tracer_provider()
        import jobify.otel
        jobify.otel.OpenTelemetryMiddleware()
        assert trace.get_tracer_provider() is before
        assert type(before).__name__ == "ProxyTracerProvider"
        print("ok")
        """
    )
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == "ok"


def test_a_bad_tracer_provider_is_a_clear_error() -> None:
    with pytest.raises(TypeError, match="tracer_provider must be an opentelemetry TracerProvider"):
        OpenTelemetryMiddleware(tracer_provider="console")  # type: ignore[arg-type]


def test_public_names() -> None:
    import jobify.otel

    assert set(jobify.otel.__all__) == {"OpenTelemetryMiddleware", "OpenTelemetryOuterMiddleware"}


async def test_contexts_of_jobs_cancelled_before_running_are_not_kept(tracing: Tracing) -> None:
    app = tracing.app()

    @app.task
    async def never() -> None:
        pass

    cancelled: weakref.WeakSet[Job[None]] = weakref.WeakSet()
    async with app:
        with tracing.tracer.start_as_current_span("caller"):
            for _ in range(1100):
                job = await never.schedule().delay(60)
                await job.cancel()
                cancelled.add(job)
            del job
            kept = await never.schedule().delay(0.01)
        await kept.wait()
        # The middleware holds a captured job's handle until the job runs or its capture is
        # swept; the app holds a cancelled job no longer. Swept when the store filled up: the
        # handles still alive are only those cancelled since the last sweep.
        gc.collect()
        assert 0 < len(cancelled) < 100
    (run,) = tracing.runs()
    assert run.parent is not None
