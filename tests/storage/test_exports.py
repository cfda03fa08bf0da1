"""The public surface of ``jobify.storage`` (its import paths are part of the API)."""

from __future__ import annotations

import jobify.storage
import jobify.storage.memory


def test_storage_exports() -> None:
    expected = ["JobRecord", "PostgresStorage", "RecordStatus", "SQLiteStorage", "Storage"]
    assert sorted(jobify.storage.__all__) == expected
    for name in jobify.storage.__all__:
        assert getattr(jobify.storage, name).__doc__


def test_memory_storage_lives_in_its_module() -> None:
    assert jobify.storage.memory.MemoryStorage.__doc__
