"""``jobify dashboard`` as a subprocess: serves a real store with uvicorn, checks its input
first (one-line errors, exit codes 1 and 2), stops cleanly on SIGTERM."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager

import pytest

from .conftest import TOKEN, Store


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


def env(**extra: str) -> dict[str, str]:
    environment = {
        k: v for k, v in os.environ.items() if k not in ("JOBIFY_STORAGE", "JOBIFY_DASHBOARD_TOKEN")
    }
    environment.update(extra)
    return environment


def jobify(*args: str, **extra_env: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "jobify", *args],
        capture_output=True,
        text=True,
        timeout=60,
        env=env(**extra_env),
        check=False,
    )


def wait_for_port(port: int, process: subprocess.Popen[str], timeout: float = 20.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise AssertionError(f"the dashboard exited: {process.communicate()}")
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.2):
                return
        except OSError:
            time.sleep(0.05)
    raise AssertionError(f"nothing listens on port {port} after {timeout}s")


@contextmanager
def serving(*args: str, **extra_env: str) -> Iterator[tuple[int, subprocess.Popen[str]]]:
    port = free_port()
    process = subprocess.Popen(
        [sys.executable, "-m", "jobify", "dashboard", "--port", str(port), *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env(**extra_env),
    )
    try:
        wait_for_port(port, process)
        yield port, process
    finally:
        if process.poll() is None:
            process.kill()
            process.communicate()


def request(
    port: int, path: str, *, method: str = "GET", headers: dict[str, str] | None = None
) -> tuple[int, str]:
    req = urllib.request.Request(
        f"http://127.0.0.1:{port}{path}", method=method, headers=headers or {}
    )
    try:
        with urllib.request.urlopen(req, timeout=10) as response:
            return response.status, response.read().decode()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read().decode()


def stop(process: subprocess.Popen[str]) -> tuple[int, str]:
    process.send_signal(signal.SIGTERM)
    _, err = process.communicate(timeout=20)
    return process.returncode, err


def test_serves_the_store_and_stops_on_sigterm(store: Store) -> None:
    with serving("--storage", store.url, "--log-level", "warning") as (port, process):
        status, body = request(port, "/")
        assert status == 200 and "Overview" in body
        status, body = request(port, "/api/jobs?task=bulk&per_page=1")
        assert status == 200 and json.loads(body)["jobs"][0]["job_id"] == "bulk-000"
        # Bound to loopback: a request under another host name (DNS rebinding) is refused.
        status, body = request(port, "/api/jobs", headers={"Host": "evil.example"})
        assert status == 400 and "answers only to" in body
        status, body = request(port, f"/api/jobs/{store.once_id}/pause", method="POST")
        assert status == 200 and json.loads(body)["via"] == "direct"
        code, err = stop(process)
    assert code == 0, err
    assert f"jobify dashboard: the SQLite store '{store.path}' on http://127.0.0.1:{port}/" in err
    assert "actions open to whoever reaches it" in err
    assert "Traceback" not in err


def test_token_from_the_environment_and_read_only(store: Store) -> None:
    with serving("--storage", store.url, JOBIFY_DASHBOARD_TOKEN=TOKEN) as (port, process):
        path = f"/api/jobs/{store.cron_id}/pause"
        assert request(port, path, method="POST")[0] == 401
        status, _ = request(port, path, method="POST", headers={"Authorization": f"Bearer {TOKEN}"})
        assert status == 200
        code, err = stop(process)
    assert code == 0 and "actions need the token" in err
    with serving("--storage", store.url, "--read-only") as (port, process):
        assert request(port, f"/api/jobs/{store.cron_id}/resume", method="POST")[0] == 403
        assert "data-confirm" not in request(port, f"/jobs/{store.cron_id}")[1]
        code, err = stop(process)
    assert code == 0 and "(read-only)" in err


def test_allowed_host_option(store: Store) -> None:
    args = ("--storage", store.url, "--allowed-host", "jobs.internal")
    with serving(*args) as (port, process):
        assert request(port, "/api", headers={"Host": "jobs.internal:80"})[0] == 200
        assert request(port, "/api")[0] == 400  # 127.0.0.1 is not in the list now
        stop(process)


def one_line(result: subprocess.CompletedProcess[str], code: int) -> str:
    assert result.returncode == code, (result.returncode, result.stdout, result.stderr)
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in result.stderr, result.stderr
    return lines[0]


def test_a_missing_store_is_refused_before_serving(tmp_path: object) -> None:
    line = one_line(jobify("dashboard", "--storage", "/nonexistent/jobs.db"), 1)
    assert line.startswith("jobify: error: the SQLite store '/nonexistent/jobs.db' does not exist")


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (("--storage", "ftp://x"), "Invalid value for '--storage': unknown storage URL scheme"),
        (("--auth-token", "short"), "at least 16 printable ASCII characters"),
        (("--port", "0"), "Invalid value for '--port'"),
        (("--refresh", "0.1"), "must be 0 (off) or at least 0.5 seconds"),
        (("--log-level", "loud"), "Invalid value for '--log-level'"),
    ],
)
def test_usage_errors(store: Store, args: tuple[str, ...], message: str) -> None:
    line = one_line(jobify("dashboard", "--storage", store.url, *args), 2)
    assert line.startswith("jobify: usage error:") and message in line


def test_a_busy_port_is_a_clear_error(store: Store) -> None:
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        result = jobify("dashboard", "--storage", store.url, "--port", str(port))
    line = one_line(result, 1)
    assert f"cannot listen on 127.0.0.1:{port}" in line and "--port" in line


def test_help() -> None:
    result = jobify("dashboard", "--help")
    assert result.returncode == 0
    for option in ("--storage", "--host", "--port", "--read-only", "--auth-token"):
        assert option in result.stdout
    assert "JOBIFY_DASHBOARD_TOKEN" in result.stdout
    assert "dashboard" in jobify("--help").stdout
