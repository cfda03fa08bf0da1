"""The files of a SQLite store are private: 0o600 whatever the umask, or the mode asked for."""

from __future__ import annotations

import os
import stat
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from jobify._triggerdoc import AT_TRIGGER
from jobify.storage import SQLiteStorage
from jobify.storage.base import CommandAction, JobRecord, RecordStatus


@pytest.fixture
def umask() -> Iterator[None]:
    old = os.umask(0o022)  # the common default, which leaves files readable by everyone
    try:
        yield
    finally:
        os.umask(old)


def modes(directory: Path) -> dict[str, int]:
    return {p.name: stat.S_IMODE(p.stat().st_mode) for p in sorted(directory.iterdir())}


def job(job_id: str) -> JobRecord:
    return JobRecord(
        job_id, "t", time.time() + 60, b'{"to":"a@b.c"}', AT_TRIGGER, RecordStatus.SCHEDULED
    )


async def use_every_file(path: Path, file_mode: int = 0o600) -> dict[str, int]:
    """Own the store (database, WAL, lock, wake file), write, send a command as an
    inspector would: the modes of every file while all of them exist."""
    owner = SQLiteStorage(path, file_mode=file_mode)
    await owner.startup()
    try:
        owner.watch_commands(lambda: None)
        await owner.save(job("a"))
        inspector = SQLiteStorage(path)
        await inspector.open_inspection()
        try:
            await inspector.send_command("a", CommandAction.PAUSE)
            found = modes(path.parent)
        finally:
            await inspector.shutdown()
    finally:
        await owner.shutdown()
    return found


async def test_every_file_is_private_under_umask_022(tmp_path: Path, umask: None) -> None:
    found = await use_every_file(tmp_path / "jobs.db")
    assert set(found) >= {"jobs.db", "jobs.db-wal", "jobs.db-shm", "jobs.db.lock", "jobs.db.wake"}
    assert found == dict.fromkeys(found, 0o600)


async def test_a_group_mode_is_given_exactly(tmp_path: Path) -> None:
    old = os.umask(0o027)  # would take the group's write bit
    try:
        found = await use_every_file(tmp_path / "jobs.db", file_mode=0o660)
    finally:
        os.umask(old)
    assert found == dict.fromkeys(found, 0o660)


async def test_an_inspector_creates_the_wake_file_as_private_as_the_database(
    tmp_path: Path, umask: None
) -> None:
    path = tmp_path / "jobs.db"
    owner = SQLiteStorage(path, file_mode=0o640 | 0o020)
    await owner.startup()
    await owner.save(job("a"))
    await owner.shutdown()
    (tmp_path / "jobs.db.wake").unlink(missing_ok=True)
    inspector = SQLiteStorage(path)
    await inspector.open_inspection()
    try:
        await inspector.send_command("a", CommandAction.CANCEL)  # no owner: it waits
    finally:
        await inspector.shutdown()
    assert modes(tmp_path)["jobs.db.wake"] == 0o660


async def test_an_existing_file_keeps_its_mode(tmp_path: Path, umask: None) -> None:
    path = tmp_path / "jobs.db"
    path.touch(0o644)
    path.chmod(0o644)
    owner = SQLiteStorage(path)
    await owner.startup()
    await owner.shutdown()
    assert modes(tmp_path)["jobs.db"] == 0o644  # the owner's choice, made before
    assert modes(tmp_path)["jobs.db.lock"] == 0o600


@pytest.mark.parametrize("mode", [0o644 | 0o100, 0o400, 0o4600, 0o060])
def test_a_bad_mode_is_refused(tmp_path: Path, mode: int) -> None:
    with pytest.raises(ValueError, match="file_mode"):
        SQLiteStorage(tmp_path / "x.db", file_mode=mode)
    with pytest.raises(TypeError, match="file_mode"):
        SQLiteStorage(tmp_path / "x.db", file_mode="0o600")  # type: ignore[arg-type]
