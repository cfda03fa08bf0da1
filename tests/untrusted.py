"""Hostile job stores for the tests of untrusted input: a module whose import leaves a marker
and raises SystemExit, records whose arguments and triggers name it, and a guard that makes
every import attempted while a record is being decoded fail (and remembers it)."""

from __future__ import annotations

import builtins
import functools
import importlib
import json
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from jobify._triggerdoc import AT_TRIGGER
from jobify.storage.base import JobRecord, RecordStatus

HOSTILE_SOURCE = """
import pathlib
pathlib.Path({marker!r}).write_text("imported")
raise SystemExit(0)
"""


@dataclass(frozen=True)
class Hostile:
    """A module in ``directory`` that must never be imported, and the proof if it was."""

    directory: Path
    name: str
    marker: Path

    def ref(self, attribute: str = "Evil") -> str:
        return f"{self.name}:{attribute}"


def hostile_module(directory: Path) -> Hostile:
    name = f"hostile_{uuid.uuid4().hex[:10]}"
    marker = directory / f"{name}.imported"
    (directory / f"{name}.py").write_text(HOSTILE_SOURCE.format(marker=str(marker)))
    return Hostile(directory, name, marker)


def hostile_arguments(hostile: Hostile, parameter: str) -> list[bytes]:
    """Argument documents (ExtendedJSONSerializer's format) that name the hostile module as
    a class of every kind, and as a time zone."""
    ref = hostile.ref()
    return [
        f'{{"{parameter}":{{"$t":"dc","$c":"{ref}","a":1}}}}'.encode(),
        f'{{"{parameter}":{{"$t":"nt","$c":"{ref}","v":[1]}}}}'.encode(),
        f'{{"{parameter}":[{{"$t":"enum","$c":"{ref}","v":1}}]}}'.encode(),
        f'{{"{parameter}":{{"$t":"pyd","$c":"{ref}","v":{{}}}}}}'.encode(),
        f'{{"{parameter}":{{"$t":"zi","v":"{hostile.name}"}}}}'.encode(),
    ]


def hostile_trigger(hostile: Hostile, expression: str = "0 9 * * *") -> bytes:
    """A cron trigger document whose zones name the hostile module (or, given another
    ``expression``, with valid zones and that expression)."""
    valid = expression != "0 9 * * *"
    doc = {
        "v": 1,
        "type": "cron",
        "expr": expression,
        "cron_tz": "UTC" if valid else hostile.name,
        "tz": "UTC" if valid else f"../{hostile.name}",
        "max_runs": -1,
        "max_failures": -1,
        "misfire": "once",
        "start": None,
        "runs": 0,
        "failures": 0,
    }
    return json.dumps(doc).encode()


def hostile_records(hostile: Hostile, task: str, parameter: str) -> list[JobRecord]:
    due = time.time() - 1
    records = [
        JobRecord(f"evil-{n}", task, due, data, AT_TRIGGER, RecordStatus.SCHEDULED)
        for n, data in enumerate(hostile_arguments(hostile, parameter))
    ]
    for job_id, trigger in [
        ("evil-zone", hostile_trigger(hostile)),
        ("evil-cron", hostile_trigger(hostile, f"{hostile.name} * *")),
    ]:
        records.append(
            JobRecord(
                job_id,
                task,
                due,
                f'{{"{parameter}":1}}'.encode(),
                trigger,
                RecordStatus.SCHEDULED,
            )
        )
    return records


@dataclass
class ImportGuard:
    """Counts decodes under way (any thread) and the imports attempted meanwhile."""

    depth: int = 0
    decodes: dict[str, int] = field(default_factory=dict)
    attempts: list[str] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def wrap(self, label: str, func: Callable[..., Any]) -> Callable[..., Any]:
        @functools.wraps(func)
        def decoding(*args: Any, **kwargs: Any) -> Any:
            with self.lock:
                self.depth += 1
                self.decodes[label] = self.decodes.get(label, 0) + 1
            try:
                return func(*args, **kwargs)
            finally:
                with self.lock:
                    self.depth -= 1

        return decoding

    def refuse(self, name: str) -> None:
        if self.depth:
            self.attempts.append(name)
            raise ImportError(f"import of {name!r} while decoding a stored record")


# Every function through which stored data is decoded, by the module that calls it.
DECODERS = [
    ("jobify.serializers.extended_json", "ExtendedJSONSerializer", "loadb"),
    ("jobify._arguments", "ArgumentCodec", "decode"),
    ("jobify._records", "StoreRecorder", "decode"),
    ("jobify._shared", "ResultCodec", "decode"),
    ("jobify._records", None, "decode_trigger"),
    ("jobify._shared", None, "decode_trigger"),
    ("jobify._submit", None, "decode_trigger"),
    ("jobify.inspection._decode", None, "decode_trigger"),
    ("jobify.inspection._actions", None, "decode_trigger"),
    ("jobify.inspection._inspector", None, "job_info"),
]


@contextmanager
def imports_fail_while_decoding(monkeypatch: pytest.MonkeyPatch) -> Iterator[ImportGuard]:
    """Within: ``__import__`` and ``importlib.import_module`` raise ImportError whenever a
    decode path runs (in any thread), and the names asked for are kept in ``attempts``."""
    guard = ImportGuard()
    for module_name, owner_name, attribute in DECODERS:
        module = importlib.import_module(module_name)
        owner = module if owner_name is None else getattr(module, owner_name)
        label = f"{owner_name or module_name}.{attribute}"
        monkeypatch.setattr(owner, attribute, guard.wrap(label, getattr(owner, attribute)))
    real_import = builtins.__import__
    real_import_module = importlib.import_module

    def guarded_import(name: str, *args: Any, **kwargs: Any) -> Any:
        guard.refuse(name)
        return real_import(name, *args, **kwargs)

    def guarded_import_module(name: str, package: str | None = None) -> Any:
        guard.refuse(name)
        return real_import_module(name, package)

    monkeypatch.setattr(builtins, "__import__", guarded_import)
    monkeypatch.setattr(importlib, "import_module", guarded_import_module)
    yield guard
