"""Helpers of the browser tests: the system Chromium driven by Selenium, a dashboard served by
uvicorn in a thread, and a real app running in another process."""

from __future__ import annotations

import os
import queue
import shutil
import socket
import subprocess
import sys
import textwrap
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import uvicorn

from jobify.dashboard import create_app

CHROMIUM = "/usr/bin/chromium"
CHROMEDRIVER = "/usr/bin/chromedriver"
HOW_TO_GET_IT = (
    "the browser tests need Debian's Chromium and its driver "
    f"({CHROMIUM}, {CHROMEDRIVER}): apt-get install chromium chromium-driver"
)
FLAGS = (
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--window-size=1280,1000",
)


def require_chromium() -> None:
    """Skip (fail under CI=true) when the system Chromium or its driver is missing."""
    missing = [p for p in (CHROMIUM, CHROMEDRIVER) if not shutil.which(p)]
    if not missing:
        return
    message = f"{HOW_TO_GET_IT} (missing: {', '.join(missing)})"
    if os.environ.get("CI") == "true":
        pytest.fail(message)
    pytest.skip(message)


def start_browser(profile: Path) -> Any:
    """A headless Chromium session with a fresh profile (the system browser and driver:
    nothing is downloaded)."""
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for flag in (*FLAGS, f"--user-data-dir={profile}"):
        options.add_argument(flag)
    driver = webdriver.Chrome(options=options, service=Service(executable_path=CHROMEDRIVER))
    driver.set_page_load_timeout(20)
    return driver


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


class Served:
    """A dashboard served by uvicorn on 127.0.0.1 in a thread of the test process."""

    def __init__(self, url: str, **options: Any) -> None:
        self.port = free_port()
        self.base = f"http://127.0.0.1:{self.port}"
        app = create_app(url, **options)
        # log_config=None: the test process's logging is left as it is.
        config = uvicorn.Config(
            app, host="127.0.0.1", port=self.port, log_config=None, lifespan="on"
        )
        self.server = uvicorn.Server(config)
        self.thread = threading.Thread(target=self.server.run, name="dashboard", daemon=True)

    def start(self) -> Served:
        self.thread.start()
        deadline = time.monotonic() + 10
        while not self.server.started:
            if not self.thread.is_alive() or time.monotonic() > deadline:
                raise AssertionError("the dashboard did not start")
            time.sleep(0.01)
        return self

    def stop(self) -> None:
        self.server.should_exit = True
        self.thread.join(timeout=10)


APP = textwrap.dedent(
    """
    import asyncio, sys, time
    from pathlib import Path
    from jobify import Cron, Jobify
    from jobify.storage import SQLiteStorage

    store, stop = Path(sys.argv[1]), Path(sys.argv[2])
    app = Jobify(storage=SQLiteStorage(store))

    @app.task(name="tick", cron=Cron("* * * * * * *"))  # every second; its job id is "tick"
    async def tick() -> None:
        print("ran", time.time(), flush=True)

    async def main() -> None:
        async with app:
            print("ready", flush=True)
            while not stop.exists():
                await asyncio.sleep(0.02)

    asyncio.run(main())
    """
)


class RunningApp:
    """A real app on a SQLite file, whose cron job ``tick`` runs every second and prints
    ``ran <time>`` for each run (read by a thread into :attr:`runs`)."""

    def __init__(self, workdir: Path) -> None:
        self.workdir = workdir
        self.store = workdir / "running.db"
        self.url = f"sqlite:///{self.store}"
        self.runs: list[float] = []
        self._lines: queue.Queue[str] = queue.Queue()
        self.process: subprocess.Popen[str] | None = None

    def start(self) -> RunningApp:
        script = self.workdir / "tick_app.py"
        script.write_text(APP)
        self.process = subprocess.Popen(
            [sys.executable, str(script), str(self.store), str(self.workdir / "stop")],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        threading.Thread(target=self._read, daemon=True).start()
        line = self._lines.get(timeout=30)
        if line != "ready":
            raise AssertionError(f"the app did not start: {line!r}")
        return self

    def _read(self) -> None:
        assert self.process is not None and self.process.stdout is not None
        for raw in self.process.stdout:
            line = raw.strip()
            if line.startswith("ran "):
                self.runs.append(time.monotonic())
            else:
                self._lines.put(line)

    def wait_for_runs(self, count: int, timeout: float) -> None:
        """Wait until at least ``count`` runs have been reported, or fail."""
        wait_until(lambda: len(self.runs) >= count, timeout, f"{count} runs of the app")

    def stop(self) -> str:
        """Stop the app; return its stderr."""
        assert self.process is not None
        (self.workdir / "stop").write_text("")
        try:
            _, err = self.process.communicate(timeout=20)
        except subprocess.TimeoutExpired:
            self.process.kill()
            _, err = self.process.communicate()
        return err


def wait_until(check: Callable[[], object], timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        if time.monotonic() > deadline:
            raise AssertionError(f"not within {timeout}s: {what}")
        time.sleep(0.02)
