"""The trigger document: how a job's trigger and counters are written into a ``JobRecord``.

A small, versioned JSON document, the core's own format (storage keeps it as opaque bytes).
Pure functions, no clock and no I/O: the app uses them to save and restore jobs, and the
inspection tools (the ``jobify`` command, the dashboard) use them to show a stored job without
running its app.

Every one-shot job has the same document (:data:`AT_TRIGGER`), encoded once and recognised by
equality. A cron job's document carries its expression and options, the zone it is evaluated
in, and its counters (runs, consecutive failures).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone, tzinfo
from typing import Any
from zoneinfo import ZoneInfo

from jobify._triggers import AnyMisfirePolicy, Cron, GracePolicy, MisfirePolicy
from jobify._zones import zone_from_key

__all__ = ["AT_TRIGGER", "TRIGGER_VERSION", "TriggerDoc", "decode_trigger", "encode_trigger"]

TRIGGER_VERSION = 1

AT_TRIGGER = json.dumps({"v": TRIGGER_VERSION, "type": "at"}, separators=(",", ":")).encode()
"""The document of every one-shot job."""


@dataclass(frozen=True, slots=True)
class TriggerDoc:
    """A decoded trigger document: ``cron`` is None for a one-shot job."""

    cron: Cron | None
    tz: tzinfo | None
    """The zone the cron is evaluated in (the Cron's own or the app's); None for one-shot."""
    runs: int = 0
    failures: int = 0
    declared: bool = False
    """The cron was declared on its task (``@app.task(cron=...)``); its job id is the task's
    name. Documents written before this field existed read as False."""


def _tz_key(tz: tzinfo | None) -> str | None:
    if tz is None:
        return None
    if isinstance(tz, ZoneInfo):
        return tz.key
    if tz is timezone.utc:  # noqa: UP017
        return "UTC"
    raise ValueError(f"cannot store time zone {tz!r}: use a ZoneInfo")


def _tz_from(key: str | None) -> tzinfo | None:
    # A stored key is untrusted: looked up without importing (see jobify._zones).
    return None if key is None else zone_from_key(key)


def _policy_to_json(policy: AnyMisfirePolicy) -> Any:
    if isinstance(policy, GracePolicy):
        return {"grace": policy.grace.total_seconds()}
    return policy.value


def _policy_from_json(data: Any) -> AnyMisfirePolicy:
    if isinstance(data, dict):
        return GracePolicy(timedelta(seconds=float(data["grace"])))
    return MisfirePolicy(data)


def encode_trigger(
    cron: Cron | None, tz: tzinfo | None, runs: int, failures: int, *, declared: bool = False
) -> bytes:
    """The document of a job: :data:`AT_TRIGGER` for a one-shot job (``cron`` None)."""
    if cron is None:
        return AT_TRIGGER
    doc = {
        "v": TRIGGER_VERSION,
        "type": "cron",
        "expr": cron.expression,
        "cron_tz": _tz_key(cron.zone),
        "tz": _tz_key(tz),
        "max_runs": cron.max_runs,
        "max_failures": cron.max_failures,
        "misfire": _policy_to_json(cron.misfire_policy),
        "start": cron.start_date.isoformat() if cron.start_date is not None else None,
        "runs": runs,
        "failures": failures,
    }
    if declared:
        doc["declared"] = True
    return json.dumps(doc, separators=(",", ":")).encode()


_ONE_SHOT = TriggerDoc(None, None)


def decode_trigger(data: bytes) -> TriggerDoc:
    """Decode a document written by :func:`encode_trigger`.

    Raises ``ValueError`` (unknown version or type, bad JSON), ``KeyError`` (a missing field)
    or ``TypeError`` (a field of the wrong type), or the ``Cron``'s own validation error.
    """
    if data == AT_TRIGGER:
        return _ONE_SHOT
    doc = json.loads(data)
    if not isinstance(doc, dict) or doc.get("v") != TRIGGER_VERSION:
        raise ValueError(f"unknown trigger format {doc!r:.80}")
    kind = doc.get("type")
    if kind == "at":
        return _ONE_SHOT
    if kind != "cron":
        raise ValueError(f"unknown trigger type {kind!r:.40}")
    start = doc["start"]
    cron = Cron(
        doc["expr"],
        max_runs=int(doc["max_runs"]),
        max_failures=int(doc["max_failures"]),
        misfire_policy=_policy_from_json(doc["misfire"]),
        start_date=datetime.fromisoformat(start) if start else None,
        tz=_tz_from(doc["cron_tz"]),
    )
    return TriggerDoc(
        cron,
        _tz_from(doc["tz"]),
        int(doc["runs"]),
        int(doc["failures"]),
        bool(doc.get("declared", False)),
    )
