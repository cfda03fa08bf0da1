"""The public surface: ``__all__`` of every public module is the documented import map."""

from __future__ import annotations

import importlib

import pytest

SPEC: dict[str, set[str]] = {
    "jobify": {
        "Jobify",
        "JobRouter",
        "Job",
        "JobStatus",
        "RunMode",
        "Cron",
        "MisfirePolicy",
        "GracePolicy",
        "SmartRetry",
        "INJECT",
        "JobContext",
        "OuterContext",
        "State",
        "RequestState",
        "JobifyConfiguration",
        "ScheduleBuilder",
        "CronContext",
        "Runnable",
        "Plugin",
        "__version__",
    },
    "jobify.exceptions": {
        "BaseJobifyError",
        "ApplicationStateError",
        "DuplicateJobError",
        "JobFailedError",
        "JobTimeoutError",
        "JobNotCompletedError",
        "RouteAlreadyRegisteredError",
        "NoResultError",
    },
    "jobify.middleware": {
        "BaseMiddleware",
        "BaseOuterMiddleware",
        "CallNext",
        "CallNextOuter",
        "QueueMiddleware",
        "JobifyQueue",
        "Item",
    },
    "jobify.storage": {"Storage", "SQLiteStorage"},
    "jobify.serializers": {
        "Serializer",
        "JSONSerializer",
        "ExtendedJSONSerializer",
        "UnsafePickleSerializer",
        "OrjsonSerializer",
        "MsgpackSerializer",
        "CBORSerializer",
    },
    "jobify.router": {"JobRouter", "Route", "RootRoute", "NodeRoute"},
    "jobify.typeadapter": {"Dumper", "Loader", "PydanticConverter"},
    "jobify.crontab": {"create_crontab"},
}

# Names we export beyond the spec's table, each documented where it is defined.
EXTRAS: dict[str, set[str]] = {
    "jobify": {"RunHistory"},  # Jobify(history=RunHistory(...)): run-history retention
    "jobify.exceptions": {
        "JobCancelledError",
        "CronParseError",
        "CronExhaustedError",
        "SerializationError",
        "StorageError",
        "StorageLockedError",
        "SchemaVersionError",
        "MissingDependencyError",
    },
    "jobify.storage": {"JobRecord", "RecordStatus"},  # the record type the Storage ABC speaks
    "jobify.router": {"TaskOptions"},  # the validated options of a route (route.options)
    "jobify.crontab": {"CronExpression"},  # what create_crontab returns
}

# Optional, beyond the reference API: exported only once the backend exists.
OPTIONAL: dict[str, set[str]] = {"jobify.storage": {"PostgresStorage"}}


@pytest.mark.parametrize("module_name", sorted(SPEC))
def test_all_is_exactly_the_import_map(module_name: str) -> None:
    module = importlib.import_module(module_name)
    exported = set(module.__all__)
    assert len(module.__all__) == len(exported), "duplicates in __all__"
    expected = SPEC[module_name] | EXTRAS.get(module_name, set())
    extra = exported - expected - OPTIONAL.get(module_name, set())
    assert not (expected - exported), f"missing from {module_name}.__all__"
    assert not extra, f"undocumented names in {module_name}.__all__"


@pytest.mark.parametrize("module_name", sorted(SPEC))
def test_every_exported_name_is_importable(module_name: str) -> None:
    module = importlib.import_module(module_name)
    for name in module.__all__:
        assert getattr(module, name, None) is not None, f"{module_name}.{name}"


def test_our_errors_are_jobify_errors() -> None:
    from jobify import exceptions

    for name in exceptions.__all__:
        assert issubclass(getattr(exceptions, name), exceptions.BaseJobifyError), name
    assert issubclass(exceptions.CronParseError, ValueError)
    assert issubclass(exceptions.JobTimeoutError, TimeoutError)


def test_version_is_a_string() -> None:
    import jobify

    assert isinstance(jobify.__version__, str)
    assert jobify.__version__
