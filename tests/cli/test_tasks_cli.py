"""``jobify tasks MODULE:APP`` (and how app references are resolved)."""

from __future__ import annotations

import json
import textwrap
from pathlib import Path

import pytest

from .conftest import jobify, one_line_error

APP = textwrap.dedent(
    """
    from datetime import timedelta
    from jobify import Cron, Jobify, JobRouter, MisfirePolicy, RunMode, SmartRetry

    app = Jobify(storage=False)
    reports = JobRouter(prefix="reports")

    @app.task
    async def ping() -> None:
        pass

    @app.task(retry=SmartRetry(3, initial_delay=2), timeout=9.5, metadata={"priority": 5})
    def resize(path: str) -> None:
        pass

    @reports.task(
        cron=Cron("0 6 * * MON", max_runs=52, misfire_policy=MisfirePolicy.SKIP, tz="Asia/Tokyo"),
        durable=False,
        run_mode=RunMode.THREAD,
    )
    def weekly() -> None:
        pass

    app.include_router(reports)
    not_an_app = 42
    """
)


@pytest.fixture
def project(tmp_path: Path) -> Path:
    (tmp_path / "myapp.py").write_text(APP)
    (tmp_path / "broken.py").write_text("raise RuntimeError('boom at import')\n")
    return tmp_path


def test_tasks_table(project: Path) -> None:
    result = jobify("tasks", "myapp:app", cwd=project)
    assert result.returncode == 0, result.stderr
    rows = {line.split()[0]: line for line in result.stdout.splitlines() if line.strip()}
    # Default names: module:qualname, for router tasks too (the prefix is for given names).
    assert set(rows) >= {"myapp:ping", "myapp:resize", "myapp:weekly"}
    assert "0 6 * * MON (Asia/Tokyo, 52 runs)" in rows["myapp:weekly"]
    assert "thread" in rows["myapp:weekly"]
    assert "3 (after 2s x2, at most 60s)" in rows["myapp:resize"]
    assert "9.5s" in rows["myapp:resize"]
    assert "priority=5" in rows["myapp:resize"]
    # The cron's next fire, shown in the app's zone (UTC here) and named: 06:00 in Tokyo.
    assert "21:00:00 UTC" in result.stdout


def test_tasks_json(project: Path) -> None:
    result = jobify("tasks", "myapp:app", "--json", cwd=project)
    assert result.returncode == 0, result.stderr
    tasks = {task["name"]: task for task in json.loads(result.stdout)}
    assert list(tasks) == ["myapp:ping", "myapp:resize", "myapp:weekly"]
    weekly = tasks["myapp:weekly"]
    assert weekly["durable"] is False
    assert weekly["run_mode"] == "thread"
    assert weekly["cron"]["expression"] == "0 6 * * MON"
    assert weekly["cron"]["tz"] == "Asia/Tokyo"
    assert weekly["cron"]["misfire_policy"] == "skip"
    assert weekly["cron"]["next_fire"].endswith("T06:00:00+09:00")
    assert tasks["myapp:resize"]["retry"]["retries"] == 3
    assert tasks["myapp:resize"]["metadata"] == {"priority": 5}
    assert tasks["myapp:ping"]["retry"] is None
    assert tasks["myapp:ping"]["run_mode"] == "main"


def test_default_attribute_is_app(project: Path) -> None:
    result = jobify("tasks", "myapp", "--json", cwd=project)
    assert result.returncode == 0, result.stderr
    assert len(json.loads(result.stdout)) == 3


@pytest.mark.parametrize(
    ("ref", "code", "expected"),
    [
        ("nosuchmodule:app", 2, "no module named 'nosuchmodule'"),
        ("myapp:nothing", 2, "has no attribute 'nothing'"),
        ("myapp:not_an_app", 2, "is a int, not a jobify app"),
        ("my-app:app", 2, "not an app reference"),
        ("broken:app", 1, "RuntimeError: boom at import"),
    ],
)
def test_bad_app_references(project: Path, ref: str, code: int, expected: str) -> None:
    for command in ("tasks", "worker"):
        line = one_line_error(jobify(command, ref, cwd=project), code)
        assert expected in line, line


def test_import_failure_traceback_with_debug(project: Path) -> None:
    result = jobify("--debug", "tasks", "broken:app", cwd=project)
    assert result.returncode == 1
    assert "Traceback" in result.stderr
    assert "boom at import" in result.stderr
