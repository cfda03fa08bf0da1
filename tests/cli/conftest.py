"""Helpers of the CLI and inspection tests: real job stores made by a real app, and running
``python -m jobify`` as a subprocess."""

from __future__ import annotations

import ctypes
import os
import subprocess
import sys
import time
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

from jobify import Cron, Jobify
from jobify._triggerdoc import AT_TRIGGER, encode_trigger
from jobify.inspection import Inspector
from jobify.storage import SQLiteStorage
from jobify.storage.base import JobRecord, RecordStatus, RunRecord, TaskRecord

BERLIN = ZoneInfo("Europe/Berlin")
OLD_NINE = datetime(2020, 1, 1, 9, tzinfo=UTC)

ONCE_AT = datetime(2031, 1, 2, 3, 4, 5, tzinfo=UTC)
"""When the prepared one-shot job is due (far away: it never runs during a test)."""

TRACEBACK = (
    "Traceback (most recent call last):\n"
    '  File "app.py", line 12, in send_email\n'
    "    raise ConnectionError('smtp down')\n"
    "ConnectionError: smtp down\n"
)


@dataclass(frozen=True)
class Store:
    """A prepared store file and what is in it."""

    path: Path
    once_id: str = "email-1"
    """A one-shot job of ``send_email`` due at :data:`ONCE_AT`."""
    cron_id: str = "daily-digest"
    """A cron job of ``send_email``: 09:00 Europe/Berlin, at most 10 runs."""
    static_cron_id: str = "report"
    """The cron declared on the ``report`` task (its job id is the task name)."""
    orphan_id: str = "orphan-1"
    """A record of task ``gone_task``, which the app does not register."""
    tasks: tuple[str, ...] = ("report", "send_email")

    @property
    def url(self) -> str:
        return f"sqlite:///{self.path}"  # four slashes in all: the path is absolute


def make_app(path: Path) -> Jobify:
    """The app that owns the prepared stores."""
    app = Jobify(storage=SQLiteStorage(path))

    # Named: the tests read these names in the command's output.
    @app.task(name="send_email")
    async def send_email(to: str, subject: str = "hello") -> None:
        return None

    @app.task(name="report", cron=Cron("*/5 * * * *", max_runs=100), retry=2, timeout=30)
    async def report() -> None:
        return None

    return app


async def build_store(path: Path) -> Store:
    """Fill ``path`` the way a real app does, plus history, a task list and an orphan."""
    store = Store(path)
    app = make_app(path)
    await app.startup()
    try:
        send_email = app.tasks["send_email"]
        await send_email.schedule("a@example.com", subject="Quarterly").at(
            ONCE_AT, job_id=store.once_id
        )
        await send_email.schedule("team@example.com").cron(
            Cron("0 9 * * *", max_runs=10, tz=BERLIN), job_id=store.cron_id
        )
    finally:
        await app.shutdown()
    # What the core writes while it runs (run history, the registered-task list), written
    # here through the real storage so that the tests do not depend on when the core does.
    owner = SQLiteStorage(path)
    await owner.startup()
    try:
        now = time.time()
        owner.record_run_soon(
            RunRecord(store.once_id, "send_email", now - 120, now - 119.5, now - 119, "success")
        )
        owner.record_run_soon(
            RunRecord(
                store.cron_id,
                "send_email",
                now - 60,
                now - 59.9,
                now - 58.4,
                "failed",
                attempts=3,
                error_type="ConnectionError",
                error_message="smtp down",
                traceback=TRACEBACK,
                worker="host:1",
            )
        )
        await owner.save_tasks([TaskRecord(name, "{}", now) for name in store.tasks])
        await owner.save(
            JobRecord(store.orphan_id, "gone_task", ONCE_AT.timestamp(), b"{}", AT_TRIGGER)
        )
        await owner.flush()
    finally:
        await owner.shutdown()
    return store


@pytest.fixture
async def store(tmp_path: Path) -> Store:
    """A stopped store prepared by :func:`build_store`."""
    return await build_store(tmp_path / "jobs.db")


def cli_env(**extra: str) -> dict[str, str]:
    """The environment of a ``jobify`` subprocess: no inherited store URL, wide output."""
    env = {k: v for k, v in os.environ.items() if k != "JOBIFY_STORAGE"}
    env.update(extra)
    return env


_PR_CAPBSET_DROP = 24
_CAP_DAC_OVERRIDE, _CAP_DAC_READ_SEARCH = 1, 2


def _without_file_override() -> None:
    """In the child before exec: drop root's power to ignore file permissions, so that a
    test run as root can see what a user who may not read a file sees."""
    libc = ctypes.CDLL(None, use_errno=True)
    for cap in (_CAP_DAC_OVERRIDE, _CAP_DAC_READ_SEARCH):
        if libc.prctl(_PR_CAPBSET_DROP, cap, 0, 0, 0) != 0:
            raise OSError(ctypes.get_errno(), "prctl(PR_CAPBSET_DROP) failed")


def jobify(
    *args: str,
    cwd: Path | None = None,
    env: dict[str, str] | None = None,
    timeout: float = 60,
    honour_permissions: bool = False,
) -> subprocess.CompletedProcess[str]:
    """Run ``python -m jobify ARGS`` and return its result (never raises on exit codes).

    ``honour_permissions``: file permissions apply even if the tests run as root.
    """
    drop = honour_permissions and os.geteuid() == 0
    return subprocess.run(
        [sys.executable, "-m", "jobify", *args],
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
        cwd=cwd,
        env=env if env is not None else cli_env(),
        preexec_fn=_without_file_override if drop else None,
    )


def one_line_error(result: subprocess.CompletedProcess[str], code: int) -> str:
    """Assert ``result`` failed with ``code`` and exactly one stderr line (no traceback)."""
    assert result.returncode == code, (result.returncode, result.stdout, result.stderr)
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert "Traceback" not in result.stderr
    assert lines[0].startswith("jobify"), lines[0]
    return lines[0]


def words(lines: Sequence[str]) -> list[list[str]]:
    """Each line split on whitespace (for finding cells in a table)."""
    return [line.split() for line in lines]


async def save(path: Path, *records: JobRecord, tasks: list[str] | None = None) -> None:
    """Write records (and optionally the task list) as the store's owner."""
    owner = SQLiteStorage(path)
    await owner.startup()
    try:
        if records:
            await owner.save_many(records)
        if tasks is not None:
            await owner.save_tasks([TaskRecord(name, "{}", time.time()) for name in tasks])
    finally:
        await owner.shutdown()


def cron_record(job_id: str, cron: Cron, exec_at: datetime, **kwargs: object) -> JobRecord:
    runs = int(kwargs.pop("runs", 0))  # type: ignore[call-overload]
    return JobRecord(
        job_id,
        "send_email",
        exec_at.timestamp(),
        b'{"to":"x@example.com"}',
        encode_trigger(cron, UTC, runs, 0),
        str(kwargs.pop("status", RecordStatus.SCHEDULED)),
    )


@pytest.fixture
async def inspector(store: Store) -> AsyncIterator[Inspector]:
    async with Inspector.from_url(store.url) as opened:
        yield opened
