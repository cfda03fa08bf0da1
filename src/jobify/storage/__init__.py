"""Persistence backends behind one :class:`Storage` contract.

``MemoryStorage`` (the reference implementation and test double) lives in
:mod:`jobify.storage.memory`.
"""

from jobify.storage.base import JobRecord, RecordStatus, Storage
from jobify.storage.sqlite import SQLiteStorage

__all__ = ["JobRecord", "RecordStatus", "SQLiteStorage", "Storage"]
