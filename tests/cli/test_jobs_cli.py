"""``jobify jobs ...`` end to end: ``python -m jobify`` against real SQLite stores that a real
app prepared and left (stopped)."""

from __future__ import annotations

import asyncio
import json
import re
import subprocess
import sys
import time
from datetime import datetime
from typing import Any

from jobify.storage import SQLiteStorage
from jobify.storage.base import RecordStatus

from .conftest import ONCE_AT, Store, cli_env, jobify, one_line_error


def listed(store: Store, *args: str) -> list[dict[str, Any]]:
    """``jobs list --json``: one decoded JSON object per job."""
    result = jobify("jobs", "list", "--storage", store.url, "--json", *args)
    assert result.returncode == 0, result.stderr
    data = json.loads(result.stdout)
    assert isinstance(data, list)
    return data


async def record_status(store: Store, job_id: str) -> str | None:
    """The status stored for ``job_id`` (None when the record is gone), read as its owner."""
    owner = SQLiteStorage(store.path)
    await owner.startup()
    try:
        record = await owner.get(job_id)
    finally:
        await owner.shutdown()
    return None if record is None else record.status


# -- list -------------------------------------------------------------------------------------


def test_list_table_shows_every_job_and_marks_the_orphan(store: Store) -> None:
    result = jobify("jobs", "list", "--storage", store.url)
    assert result.returncode == 0, result.stderr
    rows = {line.split()[0]: line for line in result.stdout.splitlines() if line.strip()}
    for job_id in (store.once_id, store.cron_id, store.static_cron_id, store.orphan_id):
        assert job_id in rows, result.stdout
    assert "(orphaned)" in rows[store.orphan_id]
    assert "orphaned" not in rows[store.once_id]
    assert "cron 0 9 * * * (Europe/Berlin)" in rows[store.cron_id]
    assert "0/10" in rows[store.cron_id]
    assert "to='a@example.com'" in rows[store.once_id]
    assert "1 orphaned job(s)" in result.stderr


def test_list_json_is_ordered_by_next_run_and_decodes(store: Store) -> None:
    jobs = listed(store)
    ids = [job["job_id"] for job in jobs]
    assert set(ids) == {store.once_id, store.cron_id, store.static_cron_id, store.orphan_id}
    next_runs = [datetime.fromisoformat(str(job["next_run"])) for job in jobs]
    assert next_runs == sorted(next_runs)
    by_id = {job["job_id"]: job for job in jobs}
    once = by_id[store.once_id]
    assert once["kind"] == "once"
    assert once["status"] == "scheduled"
    assert datetime.fromisoformat(str(once["next_run"])) == ONCE_AT
    assert once["arguments"] == {
        "decoded": True,
        "values": {"to": "a@example.com", "subject": "Quarterly"},
        "summary": "to='a@example.com', subject='Quarterly'",
        "error": None,
    }
    assert once["orphaned"] is False
    assert by_id[store.orphan_id]["orphaned"] is True
    cron = by_id[store.cron_id]["cron"]
    assert isinstance(cron, dict)
    assert cron["expression"] == "0 9 * * *"
    assert cron["tz"] == "Europe/Berlin"
    assert (cron["runs"], cron["max_runs"], cron["misfire_policy"]) == (0, 10, "once")


def test_list_filters(store: Store) -> None:
    assert {j["job_id"] for j in listed(store, "--task", "send_email")} == {
        store.once_id,
        store.cron_id,
    }
    assert [j["job_id"] for j in listed(store, "--task", "report")] == [store.static_cron_id]
    assert listed(store, "--status", "paused") == []
    # The one-shot and the orphan are due in 2031; both crons fire within a day.
    soon = {j["job_id"] for j in listed(store, "--due-before", "2d")}
    assert soon == {store.cron_id, store.static_cron_id}
    later = {j["job_id"] for j in listed(store, "--due-after", "2030-12-31T00:00")}
    assert later == {store.once_id, store.orphan_id}
    exact = listed(store, "--due-after", ONCE_AT.isoformat(), "--due-before", "2031-01-02T03:04:05")
    assert {j["job_id"] for j in exact} == {store.once_id, store.orphan_id}
    assert len(listed(store, "--limit", "1")) == 1
    assert len(listed(store, "--offset", "3")) == 1


def test_list_empty_result_is_ok(store: Store) -> None:
    result = jobify("jobs", "list", "--storage", store.url, "--task", "nothing")
    assert result.returncode == 0
    assert result.stdout == ""
    assert "no jobs match" in result.stderr


def test_storage_from_the_environment_and_the_default_file(store: Store) -> None:
    result = jobify("jobs", "list", "--json", env=cli_env(JOBIFY_STORAGE=str(store.path)))
    assert result.returncode == 0, result.stderr
    assert len(json.loads(result.stdout)) == 4
    # Without --storage and $JOBIFY_STORAGE: jobify.db in the working directory, like an app.
    store.path.rename(store.path.parent / "jobify.db")
    result = jobify("jobs", "list", "--json", cwd=store.path.parent)
    assert result.returncode == 0, result.stderr
    assert len(json.loads(result.stdout)) == 4


# -- show -------------------------------------------------------------------------------------


def test_show_cron_job_with_next_fires_and_failed_last_run(store: Store) -> None:
    result = jobify("jobs", "show", store.cron_id, "--storage", store.url, "--tz", "Europe/Berlin")
    assert result.returncode == 0, result.stderr
    out = result.stdout
    assert "cron 0 9 * * * in Europe/Berlin" in out
    assert "0 of 10" in out
    assert "to='team@example.com'" in out
    # Every time in the zone asked for, named: 09:00 in Berlin is 09:00 CET or CEST.
    assert re.search(r"times in +Europe/Berlin", out)
    fires = [
        line.split()[-3:]
        for line in out.splitlines()
        if " 09:00:00 CE" in line and not line.startswith("next run")
    ]
    assert len(fires) == 5
    times = [datetime.fromisoformat(f"{day}T{clock}") for day, clock, _ in fires]
    assert times == sorted(times)
    # Without --tz: the app's zone, here UTC (this store's app runs in UTC).
    utc = jobify("jobs", "show", store.cron_id, "--storage", store.url).stdout
    assert re.search(r"times in +UTC", utc)
    assert len([line for line in utc.splitlines() if ":00:00 UTC" in line]) >= 5
    # The last outcome: a failure, with its error and traceback.
    assert "failed" in out
    assert "ConnectionError: smtp down" in out
    assert "raise ConnectionError('smtp down')" in out


def test_show_json(store: Store) -> None:
    result = jobify("jobs", "show", store.once_id, "--storage", store.url, "--json")
    assert result.returncode == 0, result.stderr
    data = json.loads(result.stdout)
    assert data["job_id"] == store.once_id
    assert data["next_fires"] == []
    assert data["last_run"]["outcome"] == "success"
    result = jobify("jobs", "show", store.cron_id, "--storage", store.url, "--json", "--next", "2")
    data = json.loads(result.stdout)
    assert len(data["next_fires"]) == 2
    assert data["last_run"]["error_type"] == "ConnectionError"
    assert data["last_run"]["attempts"] == 3


def test_count(store: Store) -> None:
    result = jobify("jobs", "count", "--storage", store.url, "--json")
    assert result.returncode == 0, result.stderr
    data = json.loads(result.stdout)
    assert data["total"] == 4
    assert data["by_status"] == {"scheduled": 4}
    assert data["by_task"]["send_email"] == {"scheduled": 2}
    table = jobify("jobs", "count", "--storage", store.url)
    assert "all tasks" in table.stdout


# -- history ----------------------------------------------------------------------------------


def test_history_table_with_tracebacks(store: Store) -> None:
    result = jobify("jobs", "history", "--storage", store.url)
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    failed = next(line for line in lines if store.cron_id in line and "failed" in line)
    assert "ConnectionError: smtp down" in failed
    assert "1.5s" in failed  # how long it took
    assert any(store.once_id in line and "success" in line for line in lines)
    assert "raise ConnectionError('smtp down')" in result.stdout
    quiet = jobify("jobs", "history", "--storage", store.url, "--no-tracebacks")
    assert "raise ConnectionError" not in quiet.stdout


def test_history_filters_and_json(store: Store) -> None:
    def runs(*args: str) -> list[dict[str, Any]]:
        result = jobify("jobs", "history", "--storage", store.url, "--json", *args)
        assert result.returncode == 0, result.stderr
        data = json.loads(result.stdout)
        assert isinstance(data, list)
        return data

    everything = runs()
    assert [r["job_id"] for r in everything] == [store.cron_id, store.once_id]  # newest first
    assert [r["job_id"] for r in runs("--failed")] == [store.cron_id]
    assert [r["job_id"] for r in runs("--job", store.once_id)] == [store.once_id]
    assert runs("--task", "report") == []
    assert [r["job_id"] for r in runs("--since", "-90s")] == [store.cron_id]
    assert runs("--since", "now") == []
    assert len(runs("--limit", "1")) == 1
    failure = everything[0]
    assert failure["outcome"] == "failed"
    assert failure["traceback"].endswith("ConnectionError: smtp down\n")
    assert failure["worker"] == "host:1"
    assert 1.4 < failure["duration"] < 1.6


# -- actions on a stopped store -----------------------------------------------------------


async def test_pause_then_resume_edits_the_stopped_store(store: Store) -> None:
    result = jobify("jobs", "pause", store.cron_id, "--storage", store.url)
    assert result.returncode == 0, result.stderr
    assert "paused" in result.stdout
    assert await record_status(store, store.cron_id) == RecordStatus.PAUSED
    again = jobify("jobs", "pause", store.cron_id, "--storage", store.url)
    assert again.returncode == 0
    assert "already paused" in again.stdout
    assert [j["job_id"] for j in listed(store, "--status", "paused")] == [store.cron_id]
    result = jobify("jobs", "resume", store.cron_id, "--storage", store.url)
    assert result.returncode == 0, result.stderr
    assert await record_status(store, store.cron_id) == RecordStatus.SCHEDULED
    # Nothing else changed: same trigger, arguments and counters.
    job = next(j for j in listed(store) if j["job_id"] == store.cron_id)
    assert job["arguments"]["summary"] == "to='team@example.com'"
    assert job["cron"]["runs"] == 0


async def test_cancel_removes_the_record_also_of_an_orphan(store: Store) -> None:
    for job_id in (store.once_id, store.orphan_id):
        result = jobify("jobs", "cancel", job_id, "--storage", store.url)
        assert result.returncode == 0, result.stderr
        assert "cancelled" in result.stdout
        assert await record_status(store, job_id) is None
    assert {j["job_id"] for j in listed(store)} == {store.cron_id, store.static_cron_id}


def test_run_now_moves_a_one_shot_job_to_now(store: Store) -> None:
    before = time.time()
    result = jobify("jobs", "run", store.once_id, "--storage", store.url)
    assert result.returncode == 0, result.stderr
    job = next(j for j in listed(store) if j["job_id"] == store.once_id)
    moved = datetime.fromisoformat(str(job["next_run"])).timestamp()
    assert before <= moved <= time.time()


def test_run_now_of_a_cron_job_adds_a_one_shot_job(store: Store) -> None:
    result = jobify("jobs", "run", store.cron_id, "--storage", store.url)
    assert result.returncode == 0, result.stderr
    jobs = {j["job_id"]: j for j in listed(store)}
    assert len(jobs) == 5
    (new_id,) = set(jobs) - {store.once_id, store.cron_id, store.static_cron_id, store.orphan_id}
    assert new_id in result.stdout
    new = jobs[new_id]
    assert (new["kind"], new["task"]) == ("once", "send_email")
    assert new["arguments"] == jobs[store.cron_id]["arguments"]
    assert jobs[store.cron_id]["next_run"] != new["next_run"]  # the cron kept its schedule


def test_run_now_of_an_orphan_is_refused(store: Store) -> None:
    line = one_line_error_of("jobs", "run", store.orphan_id, "--storage", store.url, code=1)
    assert "gone_task" in line
    assert "not registered" in line


def test_actions_on_an_unknown_job_fail(store: Store) -> None:
    for action in ("show", "cancel", "pause", "resume", "run"):
        line = one_line_error_of("jobs", action, "no-such-job", "--storage", store.url, code=1)
        assert "no job with id 'no-such-job'" in line
        assert str(store.path) in line


def one_line_error_of(*args: str, code: int) -> str:
    return one_line_error(jobify(*args), code)


def test_debug_shows_the_traceback(store: Store) -> None:
    result = jobify("--debug", "jobs", "show", "nope", "--storage", store.url)
    assert result.returncode == 1
    assert "Traceback" in result.stderr
    assert "JobNotFoundError" in result.stderr
    after = jobify("jobs", "show", "nope", "--storage", store.url, "--debug")
    assert "Traceback" in after.stderr


def test_help_everywhere() -> None:
    for command in (
        [],
        ["jobs"],
        ["jobs", "list"],
        ["jobs", "show"],
        ["jobs", "cancel"],
        ["jobs", "pause"],
        ["jobs", "resume"],
        ["jobs", "run"],
        ["jobs", "history"],
        ["jobs", "count"],
        ["cron"],
        ["tasks"],
        ["worker"],
    ):
        result = jobify(*command, "--help")
        assert result.returncode == 0, (command, result.stderr)
        assert result.stdout.startswith("Usage: jobify"), command
    assert "naive = UTC" in jobify("jobs", "list", "--help").stdout
    assert "naive = UTC" in jobify("jobs", "history", "--help").stdout
    assert "naive = UTC" in jobify("cron", "--help").stdout


OWNER = """
import asyncio, sys
from jobify.storage import SQLiteStorage

async def main() -> None:
    owner = SQLiteStorage(sys.argv[1])
    await owner.startup()  # owns the store, and never reads its commands
    print("owning", flush=True)
    await asyncio.to_thread(sys.stdin.read)  # until the test closes our stdin
    await owner.shutdown()

asyncio.run(main())
"""


def test_actions_never_edit_under_a_running_owner(store: Store) -> None:
    with subprocess.Popen(
        [sys.executable, "-c", OWNER, str(store.path)],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    ) as owner:
        assert owner.stdout is not None and owner.stdin is not None
        try:
            assert owner.stdout.readline().strip() == "owning"
            result = jobify("jobs", "pause", store.cron_id, "--storage", store.url, "--wait", "0.3")
            line = one_line_error(result, 1)
            assert "did not answer within 0.3s" in line
            assert "The command stays queued" in line
        finally:
            owner.stdin.close()
            owner.wait(timeout=30)
    assert owner.returncode == 0
    # Untouched while it ran; once it is gone, the next edit answers the queued command.
    assert asyncio.run(record_status(store, store.cron_id)) == RecordStatus.SCHEDULED
    result = jobify("jobs", "cancel", store.orphan_id, "--storage", store.url)
    assert result.returncode == 0, result.stderr
    assert asyncio.run(record_status(store, store.cron_id)) == RecordStatus.PAUSED
