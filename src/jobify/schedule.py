"""Scheduling calls: ``ScheduleBuilder`` (``task.schedule(...).at/.delay/.cron``) and the
``Submitter`` that validates a request, runs outer middleware, persists and arms the job."""

from __future__ import annotations

from datetime import datetime, timedelta
from random import getrandbits
from typing import TYPE_CHECKING, Any, Generic, TypeVar

from jobify.context import OuterContext, RequestState, Runnable
from jobify.exceptions import ApplicationStateError, DuplicateJobError
from jobify.jobs import Job
from jobify.middleware import compose
from jobify.runners import RunMode, check_process_args
from jobify.scheduler import JobEntry
from jobify.triggers import Cron, check_delay

if TYPE_CHECKING:
    from jobify.app import Jobify
    from jobify.router import Bound, Route

__all__ = ["ScheduleBuilder", "Submitter"]

T = TypeVar("T")


def _new_job_id() -> str:
    """A random version-4 UUID in hex, ~10x cheaper than ``uuid.uuid4().hex``.

    Ids need to be unique, not unpredictable; ``random`` is reseeded in forked children.
    """
    n = (getrandbits(128) & _UUID_CLEAR) | _UUID_SET
    return f"{n:032x}"


# Version 4 in bits 76-79, RFC 4122 variant in bits 62-63.
_UUID_CLEAR = ~((0xF << 76) | (0x3 << 62))
_UUID_SET = (0x4 << 76) | (0x2 << 62)


def _check_job_id(job_id: str | None) -> str:
    if job_id is None:
        return _new_job_id()
    if not isinstance(job_id, str):
        raise TypeError(f"job_id must be a str, got {type(job_id).__name__}")
    if not job_id or not job_id.strip():
        raise ValueError("job_id must be a non-empty string (or None for a generated id)")
    return job_id


class ScheduleBuilder(Generic[T]):
    """Bound arguments of one task, waiting for a trigger."""

    __slots__ = ("_arguments", "_route")

    def __init__(self, route: Route[Any, T], arguments: Bound) -> None:
        self._route = route
        self._arguments = arguments

    async def at(
        self,
        at: datetime,
        *,
        job_id: str | None = None,
        replace: bool = False,
        force: bool = False,
    ) -> Job[T]:
        """Run at ``at`` (naive = the app's tz; in the past = now)."""
        if not isinstance(at, datetime):
            raise TypeError(
                f"at() takes a datetime, got {type(at).__name__}; for a number of seconds "
                "use delay()"
            )
        app = self._route.app
        if at.tzinfo is None:
            at = at.replace(tzinfo=app.configs.tz)
        return await app._submitter.submit(
            self._route, self._arguments, at.timestamp(), None, job_id, replace, force
        )

    async def delay(
        self,
        seconds: float,
        *,
        job_id: str | None = None,
        now: datetime | None = None,
        replace: bool = False,
        force: bool = False,
    ) -> Job[T]:
        """Run ``seconds`` after ``now`` (default: the current time; negative = now)."""
        seconds = check_delay(seconds)
        app = self._route.app
        if now is None:
            base = app._submitter.wall()
        elif isinstance(now, datetime):
            if now.tzinfo is None:
                now = now.replace(tzinfo=app.configs.tz)
            base = now.timestamp()
        else:
            raise TypeError(f"now must be a datetime, got {type(now).__name__}")
        return await app._submitter.submit(
            self._route, self._arguments, base + seconds, None, job_id, replace, force
        )

    async def cron(
        self,
        cron: str | Cron,
        *,
        job_id: str,
        replace: bool = False,
        force: bool = False,
    ) -> Job[T]:
        """Run on a cron schedule under ``job_id`` (required: a recurring job needs a name)."""
        if isinstance(cron, str):
            cron = Cron(cron)
        elif not isinstance(cron, Cron):
            raise TypeError(f"cron() takes a str or a Cron, got {type(cron).__name__}")
        if job_id is None:
            raise TypeError("cron() needs a job_id: a recurring job is known by its id")
        app = self._route.app
        return await app._submitter.submit(
            self._route, self._arguments, None, cron, job_id, replace, force
        )


class Submitter:
    """Turns a validated scheduling request into an owned, persisted, armed job."""

    def __init__(self, app: Jobify) -> None:
        self.app = app
        # Ids whose record is being committed: a concurrent request for one is a duplicate.
        self._pending: set[str] = set()

    def wall(self) -> float:
        """Epoch seconds from the app's clock, read at each call: the app's clock can be
        replaced (tests inject one) after this object was made, and must stay the one clock
        both scheduling and the timers use."""
        return self.app._wall()

    def _check_running(self) -> None:
        app = self.app
        if not app._started:
            raise ApplicationStateError(
                "the app has not started; schedule jobs inside 'async with app:' or after "
                "'await app.startup()'"
            )
        if app._closed:
            raise ApplicationStateError(
                "the app has shut down; jobs cannot be scheduled after shutdown"
            )

    async def submit_now(self, route: Route[Any, T], arguments: Bound) -> Job[T]:
        """``push``: the fast path of ``submit`` for 'as soon as possible'."""
        return await self.submit(route, arguments, self.wall(), None, None, False, False)

    def identical(
        self,
        entry: JobEntry,
        route: Route[Any, Any],
        exec_ts: float | None,
        cron: Cron | None,
        arguments: Bound,
    ) -> bool:
        if entry.route is not route or entry.cron != cron:
            return False
        if cron is None and entry.exec_ts != exec_ts:
            return False
        stored = entry.requested if entry.requested is not None else entry.arguments
        try:
            if type(stored) is type(arguments):
                return bool(stored == arguments)
            return bool(route.as_dict(stored) == route.as_dict(arguments))
        except Exception:
            return False

    async def submit(
        self,
        route: Route[Any, T],
        arguments: Bound,
        exec_ts: float | None,
        cron: Cron | None,
        job_id: str | None,
        replace: bool,
        force: bool,
    ) -> Job[T]:
        self._check_running()
        job_id = _check_job_id(job_id)
        if cron is not None:
            parser = self.app._cron_parser(cron.expression)
            tz = cron.tz or self.app.configs.tz
            if cron.args or cron.kwargs:
                arguments = route.bind(tuple(cron.args), dict(cron.kwargs))
        else:
            parser = None
            tz = None
        existing = self.app._scheduler.jobs.get(job_id)
        if existing is not None and not replace:
            if self.identical(existing, route, exec_ts, cron, arguments):
                if not force:
                    return existing.job
                replace = True
            else:
                raise DuplicateJobError(job_id)
        outer = self.app._outer_chains.get(route.name)
        if outer is None:
            return await self._finish_submit(
                route, arguments, exec_ts, cron, parser, tz, job_id, replace
            )
        job: Job[T] = Job(job_id, self._exec_at(exec_ts, cron, parser, tz))
        args, kwargs = route.call_args(arguments)
        ctx = OuterContext(
            job=job,
            trigger=cron if cron is not None else job.exec_at,
            runnable=Runnable(route.name, route.func, args, kwargs, route.options.run_mode),
            arguments=dict(route.as_dict(arguments)),
            func_spec=route.signature,
            is_force=force,
            is_persist=route.options.durable and self.app._persistence is not None,
            is_replace=replace,
            state=self.app.state,
            route_options=route.route_options,
            jobify_config=self.app.configs,
            schedule_builder=ScheduleBuilder(route, arguments),
            request_state=RequestState(),
        )

        async def innermost(c: OuterContext) -> Job[Any]:
            # Middleware may have rewritten the arguments: bind them again, so a bad rewrite
            # is a TypeError here, at scheduling time, not a failure when the job runs.
            final = route.bind((), dict(c.arguments))
            try:
                changed = bool(route.as_dict(final) != route.as_dict(arguments))
            except Exception:  # values whose comparison raises: keep what was asked
                changed = True
            return await self._finish_submit(
                route,
                final,
                exec_ts,
                cron,
                parser,
                tz,
                job_id,
                replace,
                job,
                arguments if changed else None,
            )

        result: Job[T] = await compose(outer, innermost)(ctx)
        return result

    def _exec_at(self, exec_ts: float | None, cron: Cron | None, parser: Any, tz: Any) -> datetime:
        tz = tz or self.app.configs.tz
        if cron is None:
            assert exec_ts is not None
            return datetime.fromtimestamp(exec_ts, tz)
        return self._first_fire(cron, parser, tz)

    def _first_fire(self, cron: Cron, parser: Any, tz: Any) -> datetime:
        now = datetime.fromtimestamp(self.wall(), tz)
        start = cron.start_date
        if start is not None:
            if start.tzinfo is None:
                start = start.replace(tzinfo=tz)
            if start > now:
                # First fire is the first match at/after start_date.
                fire: datetime = parser.next_run(
                    now=(start - timedelta(microseconds=1)).astimezone(tz)
                )
                return fire
        nxt: datetime = parser.next_run(now=now)
        return nxt

    async def _finish_submit(
        self,
        route: Route[Any, T],
        arguments: Bound,
        exec_ts: float | None,
        cron: Cron | None,
        parser: Any,
        tz: Any,
        job_id: str,
        replace: bool,
        job: Job[T] | None = None,
        requested: Bound | None = None,
    ) -> Job[T]:
        app = self.app
        self._check_running()
        scheduler = app._scheduler
        existing = scheduler.jobs.get(job_id)
        if (existing is not None and not replace) or job_id in self._pending:
            raise DuplicateJobError(job_id)
        if route.options.run_mode is RunMode.PROCESS:
            route.process_ref()
            check_process_args(route.name, (), route.as_dict(arguments))
        runs = failures = 0
        if cron is not None:
            exec_at = self._first_fire(cron, parser, tz)
            if (
                existing is not None
                and existing.cron is not None
                and existing.cron.start_date == cron.start_date
            ):
                runs, failures = existing.runs, existing.failures
                if existing.cron.expression == cron.expression and existing.tz == tz:
                    exec_at = datetime.fromtimestamp(existing.exec_ts, tz)
            exec_ts = exec_at.timestamp()
        assert exec_ts is not None
        if job is None:
            job = Job(job_id)
        durable = route.options.durable and app._persistence is not None
        entry = JobEntry(
            scheduler, route, job, arguments, exec_ts, durable, cron, parser, tz, runs, failures
        )
        entry.requested = requested
        if durable:
            assert app._persistence is not None
            self._pending.add(job_id)
            try:
                # Encodes first: a SerializationError raises before anything is stored.
                await app._persistence.save(entry)
            finally:
                self._pending.discard(job_id)
            self._check_running()
            existing = scheduler.jobs.get(job_id)
        if existing is not None:
            scheduler.replace(existing)
        scheduler.add(entry)
        scheduler.arm(entry)
        return job
