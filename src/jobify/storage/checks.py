"""Argument checks shared by every backend, so that all of them refuse the same bad input.

Every write is checked when it is issued: a bad value then fails the one caller that passed
it, at its call, instead of a group commit shared with other callers. The checks are about
types and shapes only; they stay cheap because they sit on the hot path of every write.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

from jobify.storage.base import (
    CommandAction,
    HistoryQuery,
    JobQuery,
    JobRecord,
    RunRecord,
    TaskRecord,
)

__all__ = [
    "check_action",
    "check_command_id",
    "check_command_result",
    "check_file_mode",
    "check_history_query",
    "check_job_id",
    "check_job_query",
    "check_prune",
    "check_record",
    "check_run",
    "check_tasks",
    "clean_text",
    "is_storable_text",
]


def _is_number(value: object) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def check_record(record: JobRecord) -> None:
    """Raise :class:`TypeError` unless ``record`` is a :class:`JobRecord` with well-typed fields."""
    if type(record) is not JobRecord:
        raise TypeError(f"expected a JobRecord, got {type(record).__name__}")
    if (
        type(record.job_id) is not str
        or type(record.task_name) is not str
        or type(record.arguments) is not bytes
        or type(record.trigger) is not bytes
        or type(record.status) is not str
        or not isinstance(record.exec_at, int | float)
        or isinstance(record.exec_at, bool)
    ):
        raise TypeError(
            f"JobRecord {record.job_id!r} has a field of the wrong type: job_id, task_name and "
            "status must be str, exec_at a float, arguments and trigger bytes"
        )


def check_job_id(job_id: object) -> None:
    """Raise :class:`TypeError` unless ``job_id`` is a str."""
    if type(job_id) is not str:
        raise TypeError(f"job_id must be a str, got {type(job_id).__name__}")


def check_run(run: RunRecord) -> None:
    """Raise :class:`TypeError`/:class:`ValueError` unless ``run`` is a well-formed
    :class:`RunRecord` (its free text may hold anything; see :func:`clean_text`)."""
    if type(run) is not RunRecord:
        raise TypeError(f"expected a RunRecord, got {type(run).__name__}")
    if (  # the common shape, checked fast (this runs on the loop for every finished run)
        type(run.job_id) is str
        and type(run.task_name) is str
        and type(run.outcome) is str
        and type(run.finished_at) is float
        and type(run.started_at) is float
        and type(run.scheduled_at) is float
        and type(run.attempts) is int
        and run.error_type is None
        and run.error_message is None
        and run.traceback is None
        and (run.worker is None or type(run.worker) is str)
        and run.attempts >= 1
        and -math.inf < run.finished_at < math.inf
    ):
        return
    if not (
        isinstance(run.job_id, str)
        and isinstance(run.task_name, str)
        and isinstance(run.outcome, str)
        and _is_number(run.scheduled_at)
        and _is_number(run.started_at)
        and _is_number(run.finished_at)
        and type(run.attempts) is int
        and all(
            value is None or isinstance(value, str)
            for value in (run.error_type, run.error_message, run.traceback, run.worker)
        )
    ):
        raise TypeError(
            f"RunRecord of job {run.job_id!r} has a field of the wrong type: job_id, "
            "task_name and outcome must be str, the three times floats, attempts an int, "
            "error_type, error_message, traceback and worker str or None"
        )
    if not math.isfinite(run.finished_at):
        raise ValueError(f"RunRecord of job {run.job_id!r}: finished_at must be finite")
    if run.attempts < 1:
        raise ValueError(f"RunRecord of job {run.job_id!r}: attempts must be >= 1")


def check_tasks(tasks: Sequence[TaskRecord]) -> tuple[TaskRecord, ...]:
    """The task list as a tuple, after checking types and that names are unique."""
    if isinstance(tasks, str | bytes) or not isinstance(tasks, Sequence):
        raise TypeError(f"tasks must be a sequence of TaskRecord, got {type(tasks).__name__}")
    seen: set[str] = set()
    for task in tasks:
        if type(task) is not TaskRecord:
            raise TypeError(f"expected a TaskRecord, got {type(task).__name__}")
        if (
            not isinstance(task.name, str)
            or not isinstance(task.options, str)
            or not _is_number(task.updated_at)
        ):
            raise TypeError(
                f"TaskRecord {task.name!r} has a field of the wrong type: name and options "
                "must be str, updated_at a float"
            )
        if task.name in seen:
            raise ValueError(f"two tasks are named {task.name!r}: task names must be unique")
        seen.add(task.name)
    return tuple(tasks)


def check_prune(before: object, keep: object) -> None:
    """Raise for a ``prune_history`` call with a NaN/non-number ``before`` or bad ``keep``."""
    if not _is_number(before):
        raise TypeError(f"before must be epoch seconds (a float), got {before!r}")
    if math.isnan(before):  # type: ignore[arg-type]
        raise ValueError("before must be a number of epoch seconds, got NaN")
    if type(keep) is not int:
        raise TypeError(f"keep must be an int, got {keep!r}")
    if keep < 0:
        raise ValueError(f"keep must be >= 0, got {keep}")


def check_job_query(query: object) -> None:
    """Raise :class:`TypeError` unless ``query`` is a :class:`JobQuery` (checked when built)."""
    if type(query) is not JobQuery:
        raise TypeError(f"expected a JobQuery, got {type(query).__name__}")


def check_history_query(query: object) -> None:
    """Raise :class:`TypeError` unless ``query`` is a :class:`HistoryQuery`."""
    if type(query) is not HistoryQuery:
        raise TypeError(f"expected a HistoryQuery, got {type(query).__name__}")


def check_action(job_id: object, action: object) -> None:
    """Raise unless ``action`` is a :class:`CommandAction` and ``job_id`` storable text."""
    if not isinstance(job_id, str):
        raise TypeError(f"job_id must be a str, got {type(job_id).__name__}")
    if not is_storable_text(job_id):
        raise ValueError(f"job_id {job_id!r} is not valid Unicode text (a lone surrogate)")
    if action not in CommandAction.ALL:
        raise ValueError(
            f"unknown command action {action!r}: use one of {', '.join(CommandAction.ALL)}"
        )


def check_command_id(command_id: object) -> None:
    """Raise :class:`TypeError` unless ``command_id`` is an int."""
    if type(command_id) is not int:
        raise TypeError(f"command_id must be an int, got {command_id!r}")


def check_command_result(command_id: object, result: object) -> None:
    """Raise unless ``result`` is a non-empty str answer to ``command_id`` (an int)."""
    check_command_id(command_id)
    if not isinstance(result, str):
        raise TypeError(f"result must be a str, got {type(result).__name__}")
    if not result:
        raise ValueError('result must say what happened ("ok" or a reason), got ""')


def is_storable_text(text: str) -> bool:
    """Whether ``text`` can be encoded as UTF-8 (no lone surrogates)."""
    if text.isascii():
        return True
    try:
        text.encode()
    except UnicodeEncodeError:
        return False
    return True


def clean_text(text: str) -> str:
    """``text`` with characters UTF-8 cannot hold (lone surrogates, e.g. from a
    ``surrogateescape``-decoded file name in an exception message) written as ``\\udXXX``
    escapes, so that untrusted text never makes a write fail."""
    if is_storable_text(text):
        return text
    return text.encode("utf-8", "backslashreplace").decode("utf-8")


def check_file_mode(mode: object) -> None:
    """A mode for the files a store creates: read and write for the owner at least, and no
    bits other than read/write (no execute, no set-id)."""
    if isinstance(mode, bool) or not isinstance(mode, int):
        raise TypeError(f"file_mode must be an int such as 0o600, got {mode!r}")
    if mode & ~0o666 or mode & 0o600 != 0o600:
        raise ValueError(
            "file_mode must give its owner read and write, and only read/write bits to "
            f"anyone (e.g. 0o600, 0o660), got {oct(mode)}"
        )
