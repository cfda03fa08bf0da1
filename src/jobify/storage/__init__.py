"""Persistence backends behind one :class:`Storage` contract."""

from jobify.storage.base import JobRecord, RecordStatus, Storage

__all__ = ["JobRecord", "RecordStatus", "Storage"]
