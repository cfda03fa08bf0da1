"""Work on a ``SQLiteStorage``'s own connection, in its thread.

For what only that connection shows or takes: its per-connection settings (``PRAGMA
synchronous``), faults injected into it (limits, a "full" disk), and the read-only connection
of an inspector (``SQLiteStorage.run_on_connection``); anything that another connection to the
same file can show is read through a connection of the test's own instead.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Callable
from typing import TypeVar

from jobify.storage import SQLiteStorage

T = TypeVar("T")


async def on_own_connection(storage: SQLiteStorage, work: Callable[[sqlite3.Connection], T]) -> T:
    """Run ``work`` with the storage's connection in the storage's thread; its result."""
    return await storage.run_on_connection(work)
