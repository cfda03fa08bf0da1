"""Persistence backends behind one :class:`Storage` contract.

``MemoryStorage`` (the reference implementation and test double) lives in
:mod:`jobify.storage.memory`. ``PostgresStorage`` needs the ``postgres`` extra (asyncpg); its
module is imported on first use, so ``import jobify`` never loads it.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from jobify.storage.base import JobRecord, RecordStatus, Storage
from jobify.storage.sqlite import SQLiteStorage

if TYPE_CHECKING:
    from jobify.storage.postgres import PostgresStorage

__all__ = ["JobRecord", "PostgresStorage", "RecordStatus", "SQLiteStorage", "Storage"]


def __getattr__(name: str) -> Any:
    if name == "PostgresStorage":
        from jobify.storage.postgres import PostgresStorage

        return PostgresStorage
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
