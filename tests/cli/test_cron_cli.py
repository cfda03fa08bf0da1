"""The ``jobify cron`` preview command (in process and as ``python -m jobify``)."""

from __future__ import annotations

import subprocess
import sys
from datetime import datetime

import pytest

from jobify.cli import main


def test_cron_prints_n_iso_datetimes(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["cron", "*/15 * * * * * *", "--next", "3"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert len(lines) == 3
    times = [datetime.fromisoformat(line) for line in lines]
    assert all(t.utcoffset() is not None and t.second % 15 == 0 for t in times)
    assert times == sorted(times)


def test_cron_default_is_five_in_utc(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["cron", "@daily"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert len(lines) == 5
    assert all(line.endswith("T00:00:00+00:00") for line in lines)


def test_cron_in_a_zone(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["cron", "0 9 * * *", "--tz", "Asia/Kolkata", "-n", "2"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert all(line.endswith("T09:00:00+05:30") for line in lines)


def test_bad_expression_goes_to_stderr_with_exit_2(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["cron", "61 * * * *"]) == 2
    captured = capsys.readouterr()
    assert captured.out == ""
    assert "minute field" in captured.err
    assert "'61'" in captured.err


def test_exhausted_expression(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["cron", "0 0 1 1 * 1999"]) == 1
    assert "never fires" in capsys.readouterr().err


@pytest.mark.parametrize("argv", [["cron", "* * * * *", "--tz", "Nowhere/City"], ["cron"], []])
def test_usage_errors_exit_2(argv: list[str], capsys: pytest.CaptureFixture[str]) -> None:
    assert main(argv) == 2
    assert "usage" in capsys.readouterr().err.lower()


def test_python_dash_m_jobify() -> None:
    result = subprocess.run(
        [sys.executable, "-m", "jobify", "cron", "0 18 * * 1-5", "--next", "2"],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert len(lines) == 2
    assert all(line.endswith("T18:00:00+00:00") for line in lines)


def test_from_and_dst_marks_end_to_end() -> None:
    result = subprocess.run(
        [sys.executable, "-m", "jobify", "cron", "30 2 * * *", "--tz", "Europe/Berlin",
         "--from", "2025-03-29T12:00", "-n", "2"],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    assert result.stdout.splitlines() == [
        "2025-03-30T03:00:00+02:00  (DST: clocks go forward)",
        "2025-03-31T02:30:00+02:00",
    ]


def test_naive_from_is_utc(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["cron", "0 * * * *", "--tz", "Asia/Kolkata", "--from", "2025-01-01T00:00"]) == 0
    first = capsys.readouterr().out.splitlines()[0]
    # 00:00 UTC is 05:30 in Kolkata: the next whole hour there is 06:00.
    assert first == "2025-01-01T06:00:00+05:30"


WITHOUT_CLI_DEPS = """
import sys
sys.modules["click"] = None  # as if the cli extra were not installed
from jobify.cli import main
sys.exit(main(sys.argv[1:]))
"""


@pytest.mark.parametrize("blocked", ["click", "rich"])
def test_without_the_cli_extra_cron_still_works(blocked: str) -> None:
    script = WITHOUT_CLI_DEPS.replace('"click"', repr(blocked))
    run = [sys.executable, "-c", script]
    result = subprocess.run(
        [*run, "cron", "30 2 * * *", "--tz", "Europe/Berlin", "--from", "2025-03-29T12:00",
         "-n", "2"],
        capture_output=True, text=True, timeout=60, check=False,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    assert result.stdout.splitlines()[0] == "2025-03-30T03:00:00+02:00  (DST: clocks go forward)"
    bad = subprocess.run([*run, "cron", "61 * * * *"], capture_output=True, text=True, check=False)
    assert bad.returncode == 2
    assert "'61'" in bad.stderr
    other = subprocess.run(
        [*run, "jobs", "list"], capture_output=True, text=True, timeout=60, check=False
    )
    assert other.returncode == 1
    assert other.stderr.strip().splitlines() == [
        f"jobify: the jobify command needs {blocked}: pip install 'jobify[cli]' "
        "(only 'jobify cron' works without it)"
    ]
