"""Bad input to ``jobify``: each is one line on stderr, no traceback, exit code 1 or 2."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest

from .conftest import Store, jobify, one_line_error


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        ("sqlite://host/jobs.db", "host part"),
        ("sqlite:///", "names no file"),
        ("sqlite:///jobs.db?mode=ro", "unknown option"),
        ("mysql://user@host/db", "unknown storage URL scheme 'mysql'"),
        ("", "empty storage URL"),
        ("postgresql://user:secret@host:99999/db", "Port out of range"),
        ("sqlite:///:memory:", "in-memory"),
    ],
)
def test_malformed_storage_url_is_a_usage_error(url: str, expected: str) -> None:
    line = one_line_error(jobify("jobs", "list", "--storage", url), 2)
    assert expected in line
    assert "secret" not in line
    assert "--storage" in line


def test_postgresql_store_that_cannot_be_opened_fails(tmp_path: Path) -> None:
    # Until PostgresStorage exists: "no PostgreSQL storage"; once it does, this schema is not
    # a jobify store. Either way a one-line failure that never shows the password.
    url = "postgresql://postgres:secret@127.0.0.1:5432/test?schema=jobify_cli_no_such_schema"
    line = one_line_error(jobify("jobs", "list", "--storage", url), 1)
    assert "secret" not in line


def test_missing_file_is_reported_and_not_created(tmp_path: Path) -> None:
    path = tmp_path / "typo.db"
    line = one_line_error(jobify("jobs", "list", "--storage", str(path)), 1)
    assert "does not exist" in line
    assert not path.exists()


def test_directory(tmp_path: Path) -> None:
    line = one_line_error(jobify("jobs", "list", "--storage", str(tmp_path)), 1)
    assert "is a directory" in line


def test_file_that_is_not_a_database(tmp_path: Path) -> None:
    path = tmp_path / "notes.txt"
    path.write_text("just some text, not SQLite\n" * 100)
    before = path.read_bytes()
    line = one_line_error(jobify("jobs", "list", "--storage", str(path)), 1)
    assert str(path) in line
    assert path.read_bytes() == before


def test_sqlite_file_of_another_program_is_left_untouched(tmp_path: Path) -> None:
    path = tmp_path / "other.db"
    with sqlite3.connect(path) as conn:
        conn.execute("CREATE TABLE invoices (id INTEGER PRIMARY KEY, total REAL)")
    conn.close()
    before = path.read_bytes()
    for command in (["list"], ["show", "x"], ["cancel", "x"], ["pause", "x"], ["history"]):
        line = one_line_error(jobify("jobs", *command, "--storage", str(path)), 1)
        assert "not a jobify store" in line, line
    assert path.read_bytes() == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["other.db"]


def test_store_of_a_newer_schema(store: Store) -> None:
    with sqlite3.connect(store.path) as conn:
        conn.execute("UPDATE jobify_meta SET schema_version = 99")
    conn.close()
    for command in (["list"], ["show", store.once_id], ["pause", store.once_id]):
        line = one_line_error(jobify("jobs", *command, "--storage", store.url), 1)
        assert "newer" in line, line
        assert "99" in line
    with sqlite3.connect(store.path) as conn:
        (version,) = conn.execute("SELECT max(schema_version) FROM jobify_meta").fetchone()
    conn.close()
    assert version == 99


def test_unreadable_store(store: Store) -> None:
    store.path.chmod(0)
    result = jobify("jobs", "list", "--storage", store.url, honour_permissions=True)
    line = one_line_error(result, 1)
    assert "not readable by this user" in line, line


def test_unreachable_directory(store: Store, tmp_path: Path) -> None:
    tmp_path.chmod(0)  # the store's directory: it may not even be looked into
    try:
        result = jobify("jobs", "list", "--storage", store.url, honour_permissions=True)
    finally:
        tmp_path.chmod(0o700)
    line = one_line_error(result, 1)
    assert "cannot be reached: Permission denied" in line, line


@pytest.mark.parametrize(
    "args",
    [
        ["jobs", "list", "--limit", "0"],
        ["jobs", "list", "--status", "running"],
        ["jobs", "list", "--due-before", "next tuesday"],
        ["jobs", "history", "--since", "2025-13-01"],
        ["jobs", "show"],
        ["jobs", "frobnicate"],
        ["nosuchcommand"],
        ["cron", "* * * * *", "--from", "yesterday-ish"],
        ["cron", "* * * * *", "--next", "0"],
        ["worker", "app:app", "--grace", "-1"],
        ["worker", "app:app", "--concurrency", "0"],
    ],
)
def test_usage_errors(args: list[str], store: Store) -> None:
    line = one_line_error(
        jobify(*args, "--storage", store.url) if args[0] == "jobs" else jobify(*args), 2
    )
    assert "usage error" in line
    assert "--help" in line
