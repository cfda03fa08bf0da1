"""The public surface of ``jobify.inspection``, and which way the imports point."""

from __future__ import annotations

import subprocess
import sys

import jobify.inspection

SURFACE = {
    "DEFAULT_SERIALIZER",
    "MAX_BUCKETS",
    "MAX_PAGE",
    "ActionRefusedError",
    "ActionResult",
    "ActivityBucket",
    "ArgumentsInfo",
    "CronInfo",
    "InspectionError",
    "Inspector",
    "JobCounts",
    "JobDetail",
    "JobInfo",
    "JobNotFoundError",
    "OwnerNotAnsweringError",
    "RunActivity",
    "RunInfo",
    "StoreLocation",
    "TaskInfo",
    "human_duration",
    "human_time",
    "jsonable",
    "parse_storage_url",
    "safe_text",
    "zone_name",
}


def test_all_is_the_documented_surface() -> None:
    assert len(jobify.inspection.__all__) == len(SURFACE)
    assert set(jobify.inspection.__all__) == SURFACE
    for name in SURFACE:
        assert getattr(jobify.inspection, name, None) is not None, name


def test_errors_are_jobify_errors() -> None:
    from jobify.exceptions import BaseJobifyError

    for name in ("InspectionError", "JobNotFoundError", "ActionRefusedError"):
        assert issubclass(getattr(jobify.inspection, name), BaseJobifyError)
    assert issubclass(jobify.inspection.OwnerNotAnsweringError, jobify.inspection.InspectionError)


def test_inspection_needs_no_cli_library_and_the_library_no_inspection() -> None:
    # A dashboard uses jobify.inspection without the cli extra; an app never loads either.
    code = (
        "import sys, jobify, jobify.storage\n"
        "assert 'jobify.inspection' not in sys.modules and 'jobify.cli' not in sys.modules\n"
        "import jobify.inspection\n"
        "assert not {'click', 'rich', 'jobify.cli'} & set(sys.modules), sorted(sys.modules)\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=False
    )
    assert result.returncode == 0, result.stderr
