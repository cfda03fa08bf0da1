"""``JobifyConfiguration``: the app's resolved, read-only settings (``app.configs``)."""

from __future__ import annotations

from concurrent.futures import Executor
from dataclasses import dataclass
from typing import TYPE_CHECKING
from zoneinfo import ZoneInfo

if TYPE_CHECKING:
    from jobify._triggers import CronFactory
    from jobify.serializers import Serializer
    from jobify.storage import Storage
    from jobify.typeadapter import Dumper, Loader

__all__ = ["JobifyConfiguration"]


@dataclass(frozen=True, slots=True, eq=False)
class JobifyConfiguration:
    """What the app was configured with; shared read-only by every job (``app.configs``)."""

    tz: ZoneInfo
    storage: Storage | None
    """None when nothing is persisted (``Jobify(storage=False)``)."""
    serializer: Serializer
    dumper: Dumper | None
    loader: Loader | None
    cron_factory: CronFactory
    threadpool_executor: Executor | None
    processpool_executor: Executor | None
