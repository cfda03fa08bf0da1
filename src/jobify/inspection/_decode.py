"""Turning storage records into the inspection dataclasses (pure: no I/O, no clock).

Triggers are decoded with the core's own decoder (:func:`jobify._triggerdoc.decode_trigger`);
arguments with a serializer when it can, else shown as stored. Nothing here raises for a
record it cannot read: what cannot be decoded is reported in the returned value.
"""

from __future__ import annotations

import json
import unicodedata
from collections.abc import Mapping
from datetime import UTC, datetime, tzinfo
from typing import Any

from jobify._triggerdoc import TriggerDoc, decode_trigger
from jobify._triggers import GracePolicy
from jobify.crontab import create_crontab
from jobify.exceptions import CronExhaustedError
from jobify.inspection._model import ArgumentsInfo, CronInfo, JobInfo, RunInfo, TaskInfo
from jobify.serializers.base import Serializer
from jobify.storage.base import JobRecord, RecordStatus, RunRecord, TaskRecord

__all__ = [
    "decode_arguments",
    "job_info",
    "next_fires",
    "run_info",
    "safe_text",
    "task_info",
    "to_datetime",
]

SUMMARY_LIMIT = 1000
"""Characters of an argument summary kept (the rest is cut and marked with an ellipsis)."""
_HEX_PREVIEW = 32
_KEEP_MULTILINE = frozenset("\n\t")


def to_datetime(epoch: float) -> datetime:
    """An aware UTC datetime for UTC epoch seconds."""
    return datetime.fromtimestamp(epoch, UTC)


def safe_text(text: str, *, multiline: bool = False) -> str:
    """``text`` with control and format characters escaped (``\\x1b``, ``\\u202e``).

    Stored text is untrusted: escape sequences could rewrite a terminal, bidirectional
    overrides could make it read differently than it is. With ``multiline``, newlines and
    tabs are kept (for tracebacks); otherwise they are escaped too.
    """
    if text.isprintable():  # the common case, checked in C
        return text
    out: list[str] = []
    for char in text:
        if char.isprintable() or (multiline and char in _KEEP_MULTILINE):
            out.append(char)
        elif unicodedata.category(char) == "Zs":  # a non-ASCII space: show a plain one
            out.append(" ")
        else:
            code = ord(char)
            out.append(f"\\x{code:02x}" if code < 0x100 else f"\\u{code:04x}")
    return "".join(out)


def _cut(text: str) -> str:
    return text if len(text) <= SUMMARY_LIMIT else text[: SUMMARY_LIMIT - 1] + "…"


def decode_arguments(raw: bytes, serializer: Serializer | None) -> ArgumentsInfo:
    """Decode stored arguments with ``serializer`` for display, or describe the raw bytes."""
    error: str | None = None
    if serializer is not None:
        try:
            values = serializer.loadb(raw)
        except (Exception, SystemExit) as exc:  # any failure of untrusted data: show it raw
            error = f"{type(exc).__name__}: {exc}"
        else:
            if isinstance(values, Mapping):
                try:
                    summary = ", ".join(f"{safe_text(str(k))}={v!r}" for k, v in values.items())
                except Exception as exc:  # a value's repr fails (or recurses too deeply)
                    error = f"{type(exc).__name__}: {exc}"
                else:
                    summary = summary or "(no arguments)"
                    return ArgumentsInfo(raw, dict(values), _cut(safe_text(summary)))
            else:
                error = f"decoded to a {type(values).__name__}, not a mapping of arguments"
    else:
        error = "no serializer given"
    return ArgumentsInfo(raw, None, _raw_summary(raw), error)


def _raw_summary(raw: bytes) -> str:
    if not raw:
        return "(empty)"
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError:
        head = raw[:_HEX_PREVIEW].hex()
        more = "…" if len(raw) > _HEX_PREVIEW else ""
        return f"<{len(raw)} bytes: {head}{more}>"
    return _cut(safe_text(text))


def _zone_name(tz: tzinfo | None) -> str:
    if tz is None:
        return "UTC"
    return str(getattr(tz, "key", None) or tz)


def _policy(doc: TriggerDoc) -> str:
    assert doc.cron is not None
    policy = doc.cron.misfire_policy
    if isinstance(policy, GracePolicy):
        return f"grace:{policy.grace.total_seconds():g}"
    return str(policy.value)


def _cron_info(doc: TriggerDoc) -> CronInfo:
    cron = doc.cron
    assert cron is not None
    return CronInfo(
        expression=cron.expression,
        tz=_zone_name(cron.zone or doc.tz),
        runs=doc.runs,
        failures=doc.failures,
        max_runs=cron.max_runs,
        max_failures=cron.max_failures,
        misfire_policy=_policy(doc),
        start_date=cron.start_date,
    )


def job_info(
    record: JobRecord, serializer: Serializer | None, registered: frozenset[str] | None
) -> JobInfo:
    """The listing view of one record; ``registered`` is the owning app's task names (None
    when unknown)."""
    doc: TriggerDoc | None = None
    trigger_error: str | None = None
    try:
        doc = decode_trigger(record.trigger)
    except Exception as exc:  # stored data: whatever it raises is shown, not raised
        trigger_error = safe_text(f"{type(exc).__name__}: {exc}")
    kind: Any = "unreadable" if doc is None else ("once" if doc.cron is None else "cron")
    return JobInfo(
        job_id=record.job_id,
        task_name=record.task_name,
        status=record.status,
        next_run=to_datetime(record.exec_at),
        kind=kind,
        cron=_cron_info(doc) if doc is not None and doc.cron is not None else None,
        arguments=decode_arguments(record.arguments, serializer),
        orphaned=None if registered is None else record.task_name not in registered,
        trigger_error=trigger_error,
    )


def next_fires(record: JobRecord, count: int, now: float) -> tuple[datetime, ...]:
    """Up to ``count`` upcoming fire times of a cron record, in its zone (see ``JobDetail``).

    A scheduled cron fires next at its ``exec_at``; a paused one would fire, once resumed,
    at the fires after ``now`` (its missed ones are then handled by its misfire policy).
    """
    if record.status not in (RecordStatus.SCHEDULED, RecordStatus.PAUSED) or count < 1:
        return ()
    try:
        doc = decode_trigger(record.trigger)
    except Exception:
        return ()
    cron = doc.cron
    if cron is None:
        return ()
    if cron.max_runs != -1:
        count = min(count, cron.max_runs - doc.runs)
    if count < 1:
        return ()
    tz = cron.zone or doc.tz or UTC
    fires: list[datetime] = []
    try:
        parser = create_crontab(cron.expression)
        first = to_datetime(record.exec_at).astimezone(tz)
        if record.status == RecordStatus.PAUSED and record.exec_at <= now:
            first = parser.next_run(now=to_datetime(now).astimezone(tz))
        fires.append(first)
        while len(fires) < count:
            fires.append(parser.next_run(now=fires[-1]))
    except CronExhaustedError:
        pass
    except Exception:  # CronParseError, or anything else a stored expression provokes
        return ()
    return tuple(fires)


def run_info(run: RunRecord) -> RunInfo:
    """The history view of one run record."""
    return RunInfo(
        job_id=run.job_id,
        task_name=run.task_name,
        scheduled_at=to_datetime(run.scheduled_at),
        started_at=to_datetime(run.started_at),
        finished_at=to_datetime(run.finished_at),
        duration=max(run.finished_at - run.started_at, 0.0),
        lateness=run.started_at - run.scheduled_at,
        outcome=run.outcome,
        attempts=run.attempts,
        error_type=run.error_type,
        error_message=run.error_message,
        traceback=run.traceback,
        worker=run.worker,
    )


def task_info(task: TaskRecord) -> TaskInfo:
    """The view of one registered task; its options document parsed when it is JSON."""
    try:
        options = json.loads(task.options)
    except ValueError as exc:
        return TaskInfo(task.name, {}, to_datetime(task.updated_at), f"not JSON: {exc}")
    if not isinstance(options, dict):
        return TaskInfo(
            task.name, {}, to_datetime(task.updated_at), "options are not a JSON object"
        )
    return TaskInfo(task.name, options, to_datetime(task.updated_at))
