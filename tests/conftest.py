"""Shared fixtures of the whole suite (kept small: most tests build their own app)."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from jobify import Jobify


@pytest.fixture
async def app() -> AsyncIterator[Jobify]:
    """An unstarted in-memory app; shut down after the test even if it failed midway."""
    application = Jobify(storage=False)
    try:
        yield application
    finally:
        await application.shutdown()
