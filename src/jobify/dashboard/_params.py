"""Query parameters and form bodies: parsed strictly, refused with a message that says what is
wrong (a typo in a filter must not silently show every job)."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from datetime import UTC, datetime
from typing import Any
from urllib.parse import parse_qsl

from jobify.storage.base import RecordStatus

__all__ = [
    "MAX_FORM_BYTES",
    "MAX_PAGE_NUMBER",
    "MAX_PER_PAGE",
    "BadRequestError",
    "Param",
    "flag",
    "hours",
    "page",
    "parse_form",
    "parse_query",
    "per_page",
    "status",
    "task",
    "when",
]

MAX_PER_PAGE = 500
MAX_PAGE_NUMBER = 1_000_000
MAX_FORM_BYTES = 8192
_MAX_TEXT = 1000


class BadRequestError(ValueError):
    """A request the dashboard cannot serve as asked; the message says what to change."""

    def __init__(self, message: str, status_code: int = 400) -> None:
        super().__init__(message)
        self.status_code = status_code


Param = Callable[[str], Any]
"""Turns one raw value into the parsed value, or raises ``ValueError`` saying why."""


def _integer(name: str, low: int, high: int) -> Param:
    def parse(raw: str) -> int:
        text = raw.strip()
        if not text.isascii() or not text.lstrip("-").isdigit() or len(text) > 12:
            raise ValueError(f"{name} must be a whole number, got {raw!r:.40}")
        value = int(text)
        if not low <= value <= high:
            raise ValueError(f"{name} must be between {low} and {high:,}, got {value}")
        return value

    return parse


page = _integer("page", 1, MAX_PAGE_NUMBER)
per_page = _integer("per_page", 1, MAX_PER_PAGE)
hours = _integer("hours", 1, 168)


def status(raw: str) -> str | None:
    """A job status, or None for any (an empty value, as the filter form sends it)."""
    if raw == "":
        return None
    if raw not in RecordStatus.ALL:
        raise ValueError(f"status must be one of {', '.join(RecordStatus.ALL)}, got {raw!r:.40}")
    return raw


def task(raw: str) -> str | None:
    """A full task name, or None for any (an empty value)."""
    if raw == "":
        return None
    if len(raw) > _MAX_TEXT:
        raise ValueError(f"task is longer than {_MAX_TEXT} characters")
    return raw


def when(name: str) -> Param:
    """A point in time: ISO 8601 (naive means UTC), or empty for none."""

    def parse(raw: str) -> datetime | None:
        if raw.strip() == "":
            return None
        try:
            value = datetime.fromisoformat(raw.strip())
        except ValueError:
            raise ValueError(
                f"{name} must be an ISO 8601 time such as 2030-01-31T09:00:00+00:00, "
                f"got {raw!r:.40}"
            ) from None
        return value if value.tzinfo is not None else value.replace(tzinfo=UTC)

    return parse


def flag(name: str) -> Param:
    """A yes/no switch: ``1``/``true``/``yes``/``on`` or ``0``/``false``/``no``/``off``."""

    def parse(raw: str) -> bool:
        value = raw.strip().lower()
        if value in ("1", "true", "yes", "on"):
            return True
        if value in ("", "0", "false", "no", "off"):
            return False
        raise ValueError(f"{name} must be 1 or 0, got {raw!r:.40}")

    return parse


def parse_query(
    items: Sequence[tuple[str, str]], params: Mapping[str, Param], defaults: Mapping[str, Any]
) -> dict[str, Any]:
    """Parse query ``items`` with ``params`` (name -> parser); missing ones get ``defaults``.

    Raises :class:`BadRequestError` for an unknown or repeated parameter or a bad value.
    """
    values = dict(defaults)
    seen: set[str] = set()
    for name, raw in items:
        parser = params.get(name)
        if parser is None:
            known = ", ".join(sorted(params)) or "none"
            raise BadRequestError(f"unknown query parameter {name!r:.40}; this page takes: {known}")
        if name in seen:
            raise BadRequestError(f"query parameter {name!r} is given more than once")
        seen.add(name)
        try:
            values[name] = parser(raw)
        except ValueError as exc:
            raise BadRequestError(str(exc)) from None
    return values


def parse_form(body: bytes, content_type: str | None) -> dict[str, str]:
    """The fields of a small ``application/x-www-form-urlencoded`` body (the dashboard's own
    forms); :class:`BadRequestError` for another content type, a body that is too large or
    malformed, or a repeated field."""
    kind = (content_type or "").split(";")[0].strip().lower()
    if kind != "application/x-www-form-urlencoded":
        raise BadRequestError(
            f"a form must be sent as application/x-www-form-urlencoded, got {kind or 'none'!r}",
            415,
        )
    if len(body) > MAX_FORM_BYTES:
        raise BadRequestError(f"the form is larger than {MAX_FORM_BYTES} bytes", 413)
    try:
        text = body.decode("ascii")
        pairs = parse_qsl(text, keep_blank_values=True, strict_parsing=bool(text))
    except (UnicodeDecodeError, ValueError):
        raise BadRequestError("the form body is malformed") from None
    fields: dict[str, str] = {}
    for name, value in pairs:
        if name in fields:
            raise BadRequestError(f"form field {name!r:.40} is given more than once")
        fields[name] = value
    return fields
