"""Signals belong to the host: jobify inside a FastAPI lifespan served by uvicorn.

Each case runs uvicorn as a real subprocess on 127.0.0.1 (port 0: the OS picks a free one,
uvicorn prints which), pushes a job from an HTTP endpoint, then sends SIGINT or SIGTERM. The
same server without jobify (a control run, in the same test) tells what uvicorn's own exit
status is for that signal, which changes between uvicorn releases (recent ones re-raise the
signal after their graceful shutdown): with jobify the status must be the same, uvicorn's
graceful shutdown must happen, the code after ``yield`` must run, the scheduler must shut down
exactly once, and nothing may print a traceback.
"""

from __future__ import annotations

import json
import os
import queue
import re
import signal
import subprocess
import sys
import threading
import urllib.request
from dataclasses import dataclass
from pathlib import Path

import pytest

pytest.importorskip("fastapi")
pytest.importorskip("uvicorn")

pytestmark = pytest.mark.skipif(sys.platform == "win32", reason="POSIX signals")

SERVER = """
import contextlib
import os

from fastapi import FastAPI

from jobify import Jobify

WITH_JOBIFY = os.environ["WITH_JOBIFY"] == "1"


class ShutdownProbe:
    \"\"\"A plugin: its shutdown runs when the scheduler shuts down.\"\"\"

    async def startup(self, app: Jobify) -> None:
        print("SCHEDULER-STARTED", flush=True)

    async def shutdown(self) -> None:
        print("SCHEDULER-SHUTDOWN", flush=True)


scheduler = Jobify(storage=False, plugins=[ShutdownProbe()])


@scheduler.task
async def shout(word: str) -> str:
    return word.upper()


@contextlib.asynccontextmanager
async def lifespan(app: FastAPI):
    if WITH_JOBIFY:
        async with scheduler:
            yield
    else:
        yield
    print("AFTER-YIELD", flush=True)


app = FastAPI(lifespan=lifespan)


@app.post("/shout/{word}")
async def shout_endpoint(word: str) -> dict[str, str]:
    if not WITH_JOBIFY:
        return {"result": word.upper(), "status": "control"}
    job = await shout.push(word)
    result = await job
    return {"result": result, "status": job.status.value}
"""


@dataclass
class Run:
    returncode: int
    stdout: str
    stderr: str
    response: dict[str, str]


def serve_then_signal(tmp_path: Path, sig: signal.Signals, *, with_jobify: bool) -> Run:
    """Start the server, call the endpoint once, send ``sig``, collect what happened."""
    tmp_path.mkdir()
    (tmp_path / "server_app.py").write_text(SERVER)
    command = [
        sys.executable,
        "-m",
        "uvicorn",
        "server_app:app",
        "--host",
        "127.0.0.1",
        "--port",
        "0",
        "--app-dir",
        str(tmp_path),
    ]
    env = {**_env(), "WITH_JOBIFY": "1" if with_jobify else "0"}
    with subprocess.Popen(
        command,
        cwd=tmp_path,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
    ) as proc:
        assert proc.stdout is not None and proc.stderr is not None
        lines: queue.Queue[str | None] = queue.Queue()
        err_lines: list[str] = []

        def pump() -> None:
            assert proc.stderr is not None
            for line in proc.stderr:
                err_lines.append(line)
                lines.put(line)
            lines.put(None)

        reader = threading.Thread(target=pump, daemon=True)
        reader.start()
        try:
            url = _wait_for_url(lines, err_lines)
            request = urllib.request.Request(f"{url}/shout/hello", method="POST")
            with urllib.request.urlopen(request, timeout=10) as reply:
                response = json.loads(reply.read())
            proc.send_signal(sig)
            returncode = proc.wait(timeout=20)
        finally:
            if proc.poll() is None:
                proc.kill()
                proc.wait()
        reader.join(timeout=5)
        stdout = proc.stdout.read()
    return Run(returncode, stdout, "".join(err_lines), response)


def _env() -> dict[str, str]:
    env = dict(os.environ)
    env.pop("PYTHONASYNCIODEBUG", None)
    return env


def _wait_for_url(lines: queue.Queue[str | None], seen: list[str]) -> str:
    while True:
        try:
            line = lines.get(timeout=20)
        except queue.Empty:
            raise AssertionError(f"uvicorn did not start:\n{''.join(seen)}") from None
        if line is None:
            raise AssertionError(f"uvicorn exited before serving:\n{''.join(seen)}")
        found = re.search(r"Uvicorn running on (http://127\.0\.0\.1:\d+)", line)
        if found:
            return found.group(1)


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM], ids=["SIGINT", "SIGTERM"])
def test_uvicorn_keeps_its_signals(tmp_path: Path, sig: signal.Signals) -> None:
    control = serve_then_signal(tmp_path / "control", sig, with_jobify=False)
    run = serve_then_signal(tmp_path / "jobify", sig, with_jobify=True)

    # The control run shows what uvicorn does on its own with this signal.
    assert "Application shutdown complete" in control.stderr, control.stderr
    assert "AFTER-YIELD" in control.stdout

    # The server answered HTTP before the signal, and a job pushed from the endpoint ran.
    assert run.response == {"result": "HELLO", "status": "success"}
    # uvicorn's own graceful shutdown ran, including the code after ``yield``.
    assert "Shutting down" in run.stderr, run.stderr
    assert "Application shutdown complete" in run.stderr, run.stderr
    assert "AFTER-YIELD" in run.stdout, run.stdout
    # The scheduler started once and shut down once, when the lifespan exited.
    assert run.stdout.count("SCHEDULER-STARTED") == 1, run.stdout
    assert run.stdout.count("SCHEDULER-SHUTDOWN") == 1, run.stdout
    assert run.stdout.index("SCHEDULER-SHUTDOWN") < run.stdout.index("AFTER-YIELD")
    # Nothing went wrong on the way out.
    assert "Traceback" not in run.stderr, run.stderr
    assert "KeyboardInterrupt" not in run.stderr, run.stderr
    assert "CancelledError" not in run.stderr, run.stderr
    # jobify changed nothing in how the process ends.
    assert run.returncode == control.returncode, (run.returncode, control.returncode)


SCRIPT_NO_SIGNALS = """
import asyncio
import signal

from jobify import Jobify

app = Jobify(storage=False, handle_signals=False)


async def main() -> None:
    async with app:
        handlers = {s.name: signal.getsignal(s) is signal.SIG_DFL for s in (signal.SIGTERM,)}
        print("READY", handlers, flush=True)
        await asyncio.sleep(30)
    print("NOT-REACHED", flush=True)


asyncio.run(main())
"""


def test_handle_signals_false_installs_no_handler(tmp_path: Path) -> None:
    script = tmp_path / "plain.py"
    script.write_text(SCRIPT_NO_SIGNALS)
    with subprocess.Popen(
        [sys.executable, str(script)],
        cwd=tmp_path,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    ) as proc:
        assert proc.stdout is not None
        try:
            assert proc.stdout.readline().strip() == "READY {'SIGTERM': True}"
            proc.send_signal(signal.SIGTERM)
            out, err = proc.communicate(timeout=20)
        finally:
            if proc.poll() is None:
                proc.kill()
                proc.wait()
    # Killed the default way: no graceful shutdown, no code after the block.
    assert proc.returncode == -signal.SIGTERM, err
    assert "NOT-REACHED" not in out
