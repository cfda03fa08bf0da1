"""An in-process storage: the reference implementation of the contract and a test double.

:class:`MemoryStorage` keeps records, run history, the task list and commands in dicts. It
has the semantics of the SQLite backend (life cycle, validation, ordering, errors) without a
disk: a write "commits" the moment it is issued, so every write is applied in the order it
was issued and ``flush()`` has nothing to wait for. Awaited writes still yield to the event
loop once, like a real backend does, so code tested against it cannot come to rely on a write
never suspending.

What a file is to SQLite, a :class:`_Store` is here: :meth:`MemoryStorage.twin` gives another
handle on the same store, so that an inspector (``open_inspection()``) can run next to an
owner in one process, as the ``jobify`` command does next to an app on a SQLite file.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import replace
from typing import Literal, Self

from jobify.exceptions import StorageError, StorageLockedError
from jobify.storage.base import (
    Command,
    CommandChannel,
    HistoryQuery,
    JobQuery,
    JobRecord,
    RunRecord,
    Storage,
    TaskRecord,
)
from jobify.storage.checks import (
    check_action,
    check_command_id,
    check_command_result,
    check_history_query,
    check_job_id,
    check_job_query,
    check_prune,
    check_record,
    check_run,
    check_tasks,
    clean_text,
    is_storable_text,
)

__all__ = ["MemoryStorage", "check_record"]

logger = logging.getLogger("jobify.storage")

_NOT_FAILED = ("success", "cancelled")


def _stored(record: JobRecord) -> JobRecord:
    """The record as a database would give it back: checked, with a float ``exec_at``.

    Text a database cannot encode fails like a database write would (StorageError), so that
    code tested against memory meets the same failure."""
    check_record(record)
    for text in (record.job_id, record.task_name, record.status):
        if not is_storable_text(text):
            raise StorageError(
                f"cannot store job {record.job_id!r}: {text!r} is not valid Unicode text "
                "(a lone surrogate)"
            )
    if type(record.exec_at) is not float:
        return replace(record, exec_at=float(record.exec_at))
    return record


def _stored_run(run: RunRecord) -> RunRecord:
    """The run as a database would give it back: plain str text, float times."""
    return RunRecord(
        clean_text(str(run.job_id)),
        clean_text(str(run.task_name)),
        float(run.scheduled_at),
        float(run.started_at),
        float(run.finished_at),
        clean_text(str(run.outcome)),
        run.attempts,
        *(None if text is None else clean_text(str(text)) for text in _run_texts(run)),
    )


def _run_texts(run: RunRecord) -> tuple[str | None, ...]:
    return (run.error_type, run.error_message, run.traceback, run.worker)


class _Store:
    """The data behind one or more :class:`MemoryStorage` handles."""

    def __init__(self) -> None:
        self.records: dict[str, JobRecord] = {}
        self.runs: dict[int, RunRecord] = {}  # run id (grows with each record) -> run
        self.next_run = 1
        self.tasks: tuple[TaskRecord, ...] = ()
        self.commands: dict[int, Command] = {}
        self.results: dict[int, str] = {}  # command id -> answer
        self.next_command = 1
        self.created = False  # an owner has started on it: it "has jobify's schema"
        self.owner: MemoryStorage | None = None


class MemoryStorage(Storage, CommandChannel):
    """Records in a dict, for ``storage=False`` and for tests.

    Nothing survives the process, but everything survives ``shutdown()`` followed by
    ``startup()`` on the same instance (or a :meth:`twin`), which lets tests simulate a
    restart. One handle at a time owns the store (``startup()`` on a second one while the
    first runs raises :class:`~jobify.exceptions.StorageLockedError`).

    ``open_inspection()`` inspects this handle's store: it raises
    :class:`~jobify.exceptions.StorageError` ("not a jobify store") until some handle has
    started on it as its owner, like a SQLite file that no app ever opened. Answered commands
    are kept as long as the store lives.
    """

    shared = False

    def __init__(self) -> None:
        self._store = _Store()
        self._mode: Literal["new", "owner", "inspector", "closed"] = "new"
        self._loop: asyncio.AbstractEventLoop | None = None
        self._watcher: Callable[[], None] | None = None

    def twin(self) -> Self:
        """Another, unstarted handle of the same class on the same store: to open an
        inspector next to a running owner (as a second ``SQLiteStorage`` on the same file
        would)."""
        other = type(self)()
        other._store = self._store
        return other

    # -- life cycle ---------------------------------------------------------------------

    def _check_open(self) -> None:
        if self._mode == "new":
            raise StorageError("MemoryStorage is not started: await storage.startup() first")
        if self._mode == "closed":
            raise StorageError("MemoryStorage is shut down")

    def _check_owner(self, what: str) -> None:
        if self._mode != "owner":
            self._check_open()
            raise StorageError(
                f"MemoryStorage is open for inspection: {what} is for the owning app only "
                "(await storage.startup() to own the store)"
            )

    def _check_closed(self) -> None:
        if self._mode in ("owner", "inspector"):
            raise StorageError("MemoryStorage is already started")

    async def startup(self) -> None:
        """Own the store; what it held before a ``shutdown()`` is still there."""
        self._check_closed()
        owner = self._store.owner
        if owner is not None and owner is not self:
            raise StorageLockedError(
                "this MemoryStorage's store is owned by another running handle: one store "
                "belongs to one running app"
            )
        self._store.owner = self
        self._store.created = True
        self._loop = asyncio.get_running_loop()
        self._mode = "owner"

    async def open_inspection(self) -> None:
        """Inspect the store (reads and the inspector's command calls only)."""
        self._check_closed()
        if not self._store.created:
            raise StorageError(
                "not a jobify store: this MemoryStorage was never started by an owner, so "
                "there is nothing to inspect"
            )
        self._loop = asyncio.get_running_loop()
        self._mode = "inspector"

    async def shutdown(self) -> None:
        """Stop accepting calls and give up ownership (nothing to commit). Idempotent."""
        if self._mode == "owner":
            self._store.owner = None
        self._watcher = None
        if self._mode != "new":
            self._mode = "closed"

    # -- reads ----------------------------------------------------------------------------

    async def load(self) -> list[JobRecord]:
        """Every record, in no particular order."""
        self._check_open()
        return list(self._store.records.values())

    async def get(self, job_id: str) -> JobRecord | None:
        """The record with this id, or None."""
        check_job_id(job_id)
        self._check_open()
        return self._store.records.get(job_id)

    async def query_jobs(self, query: JobQuery) -> list[JobRecord]:
        """Matching records ordered by ``(exec_at, job_id)``, one page of them."""
        check_job_query(query)
        self._check_open()
        found = [
            record
            for record in self._store.records.values()
            if (query.task_name is None or record.task_name == query.task_name)
            and (query.status is None or record.status == query.status)
            and (query.due_before is None or record.exec_at <= query.due_before)
            and (query.due_after is None or record.exec_at >= query.due_after)
        ]
        found.sort(key=lambda record: (record.exec_at, record.job_id))
        return found[query.offset : query.offset + query.limit]

    async def job_counts(self) -> dict[tuple[str, str], int]:
        """How many records there are per ``(task_name, status)``."""
        self._check_open()
        return dict(Counter((r.task_name, r.status) for r in self._store.records.values()))

    async def query_history(self, query: HistoryQuery) -> list[RunRecord]:
        """Matching runs, newest first, one page of them."""
        check_history_query(query)
        self._check_open()
        found = [
            (run_id, run)
            for run_id, run in self._store.runs.items()
            if (query.job_id is None or run.job_id == query.job_id)
            and (query.task_name is None or run.task_name == query.task_name)
            and (not query.failed_only or run.outcome not in _NOT_FAILED)
            and (query.since is None or run.finished_at >= query.since)
        ]
        found.sort(key=lambda item: (item[1].finished_at, item[0]), reverse=True)
        # Copies: a run record is not frozen, and what the caller does with it stays theirs.
        return [replace(run) for _, run in found[query.offset : query.offset + query.limit]]

    async def load_tasks(self) -> list[TaskRecord]:
        """The registered tasks, by name."""
        self._check_open()
        return sorted(self._store.tasks, key=lambda task: task.name)

    # -- writes ---------------------------------------------------------------------------

    async def save(self, record: JobRecord) -> None:
        """Insert or replace the record; it is visible before this returns."""
        stored = _stored(record)
        self._check_owner("save()")
        self._store.records[stored.job_id] = stored
        await asyncio.sleep(0)

    async def save_many(self, records: Sequence[JobRecord]) -> None:
        """Insert or replace several records, all or none (each is checked first)."""
        stored = [_stored(record) for record in records]
        self._check_owner("save_many()")
        for record in stored:
            self._store.records[record.job_id] = record
        await asyncio.sleep(0)

    async def delete(self, job_id: str) -> None:
        """Delete the record (no error when absent)."""
        self.delete_soon(job_id)
        await asyncio.sleep(0)

    def save_soon(self, record: JobRecord) -> None:
        """Insert or replace the record now; a record that cannot be stored is logged."""
        check_record(record)
        self._check_owner("save_soon()")
        try:
            stored = _stored(record)
        except StorageError as exc:  # as a failed group commit of a queued write would be
            logger.error("a queued write to MemoryStorage was not committed: %s", exc)
            return
        self._store.records[stored.job_id] = stored

    def delete_soon(self, job_id: str) -> None:
        """Delete the record now (no error when absent)."""
        check_job_id(job_id)
        self._check_owner("delete_soon()")
        self._store.records.pop(job_id, None)

    def record_run_soon(self, run: RunRecord) -> None:
        """Add the run to the history now (text that cannot be stored is escaped)."""
        check_run(run)
        self._check_owner("record_run_soon()")
        store = self._store
        store.runs[store.next_run] = _stored_run(run)
        store.next_run += 1

    async def prune_history(self, *, before: float, keep: int) -> int:
        """Delete runs finished before ``before`` and all but the newest ``keep``."""
        check_prune(before, keep)
        self._check_owner("prune_history()")
        runs = self._store.runs
        newest = sorted(runs, key=lambda run_id: (runs[run_id].finished_at, run_id))
        kept = set(newest[len(newest) - keep :]) if keep else set()
        doomed = [i for i in runs if i not in kept or runs[i].finished_at < before]
        for run_id in doomed:
            del runs[run_id]
        await asyncio.sleep(0)
        return len(doomed)

    async def save_tasks(self, tasks: Sequence[TaskRecord]) -> None:
        """Replace the registered-task list."""
        checked = check_tasks(tasks)
        self._check_owner("save_tasks()")
        self._store.tasks = tuple(
            TaskRecord(str(t.name), str(t.options), float(t.updated_at)) for t in checked
        )
        await asyncio.sleep(0)

    async def flush(self) -> None:
        """Return at once: every write is applied when it is issued."""
        self._check_owner("flush()")

    # -- commands -----------------------------------------------------------------------

    async def owner_running(self) -> bool:
        """Whether some handle owns this store right now."""
        self._check_open()
        return self._store.owner is not None

    async def send_command(self, job_id: str, action: str) -> int:
        """Queue a command for the owner and wake its watcher (on its loop)."""
        check_action(job_id, action)
        self._check_open()
        store = self._store
        command = Command(store.next_command, str(job_id), action, time.time())
        store.commands[command.command_id] = command
        store.next_command += 1
        owner = store.owner
        if owner is not None and owner._watcher is not None:
            assert owner._loop is not None
            owner._loop.call_soon(owner._wake)
        await asyncio.sleep(0)
        return command.command_id

    async def command_result(self, command_id: int) -> str | None:
        """The owner's answer, or None while pending; ValueError for an unknown id."""
        check_command_id(command_id)
        self._check_open()
        if command_id not in self._store.commands:
            raise ValueError(f"no command has id {command_id}")
        return self._store.results.get(command_id)

    async def take_commands(self) -> list[Command]:
        """The commands not yet answered, oldest first."""
        self._check_owner("take_commands()")
        store = self._store
        return [store.commands[i] for i in sorted(store.commands) if i not in store.results]

    async def finish_command(self, command_id: int, result: str) -> None:
        """Record the answer to a pending command."""
        check_command_result(command_id, result)
        self._check_owner("finish_command()")
        store = self._store
        if command_id not in store.commands or command_id in store.results:
            raise ValueError(f"no pending command has id {command_id}")
        store.results[command_id] = clean_text(str(result))
        await asyncio.sleep(0)

    def watch_commands(self, callback: Callable[[], None] | None) -> None:
        """Call ``callback`` (via ``loop.call_soon``) after each ``send_command`` on this
        store, and once right away if commands are pending; None stops watching."""
        self._check_owner("watch_commands()")
        self._watcher = callback
        store = self._store
        if callback is not None and any(i not in store.results for i in store.commands):
            assert self._loop is not None
            self._loop.call_soon(self._wake)

    def _wake(self) -> None:
        # Looked up at call time: watching may have stopped or changed since it was queued.
        if self._watcher is not None and self._mode == "owner":
            self._watcher()
