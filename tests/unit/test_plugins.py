"""Plugins: the protocol, add_plugin / plugins=[...], start after lifespans, stop in reverse."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import pytest

from jobify import Jobify, JobRouter, Plugin
from jobify.exceptions import ApplicationStateError


class Recording:
    """A plugin that logs its startup and shutdown."""

    def __init__(self, name: str, log: list[str]) -> None:
        self.name = name
        self.log = log
        self.app: Jobify | None = None

    async def startup(self, app: Jobify) -> None:
        self.app = app
        self.log.append(f"start {self.name}")

    async def shutdown(self) -> None:
        self.log.append(f"stop {self.name}")


class FailingStartup(Recording):
    async def startup(self, app: Jobify) -> None:
        self.log.append(f"start {self.name}")
        raise OSError("plugin cannot start")


def lifespan_logging(name: str, log: list[str]) -> Any:
    @asynccontextmanager
    async def lifespan(owner: Any) -> AsyncIterator[dict[str, str]]:
        log.append(f"enter {name}")
        yield {name: "ready"}
        log.append(f"exit {name}")

    return lifespan


def test_protocol() -> None:
    assert isinstance(Recording("p", []), Plugin)
    assert not isinstance(object(), Plugin)


async def test_started_after_lifespans_and_stopped_in_reverse_before_them() -> None:
    log: list[str] = []
    first = Recording("first", log)
    second = Recording("second", log)
    third = Recording("third", log)
    app = Jobify(storage=False, lifespan=lifespan_logging("app", log), plugins=[first, second])
    app.add_plugin(third)
    app.include_router(JobRouter(lifespan=lifespan_logging("router", log)))
    assert app.plugins == [first, second, third]

    async with app:
        assert log == [
            *("enter app", "enter router"),
            *("start first", "start second", "start third"),
        ]
        assert first.app is app
        assert app.state.app == "ready"  # lifespan state is there when plugins start
    assert log[5:] == [
        *("stop third", "stop second", "stop first"),
        *("exit router", "exit app"),
    ]


async def test_add_plugin_after_startup_is_an_application_state_error() -> None:
    app = Jobify(storage=False)
    async with app:
        with pytest.raises(ApplicationStateError, match="before the app starts"):
            app.add_plugin(Recording("late", []))
    with pytest.raises(ApplicationStateError):
        app.add_plugin(Recording("later", []))
    assert app.plugins == []


class OnlyStartup:
    async def startup(self, app: Jobify) -> None:
        pass


class SyncMethods:
    def startup(self, app: Jobify) -> None:
        pass

    def shutdown(self) -> None:
        pass


@pytest.mark.parametrize("bad", [object(), OnlyStartup(), SyncMethods(), Recording])
def test_a_non_plugin_is_a_type_error(bad: Any) -> None:
    app = Jobify(storage=False)
    with pytest.raises(TypeError, match="startup"):
        app.add_plugin(bad)
    with pytest.raises(TypeError, match="startup"):
        Jobify(storage=False, plugins=[bad])
    assert app.plugins == []


async def test_a_plugin_failing_to_start_aborts_startup_cleanly() -> None:
    log: list[str] = []
    ok = Recording("ok", log)
    broken = FailingStartup("broken", log)
    never = Recording("never", log)
    app = Jobify(storage=False, lifespan=lifespan_logging("app", log), plugins=[ok, broken, never])
    with pytest.raises(OSError, match="plugin cannot start"):
        await app.startup()
    assert log == ["enter app", "start ok", "start broken", "stop ok", "exit app"]
    await app.shutdown()
    assert log[-1] == "exit app"
