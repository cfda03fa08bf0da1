"""Loading an app from ``module:attribute`` (``jobify tasks``, ``jobify worker``)."""

from __future__ import annotations

import importlib
import os
import sys
from typing import Any

__all__ = ["AppImportError", "AppRefError", "load_app"]


class AppRefError(ValueError):
    """The reference is malformed, or names a module or attribute that does not exist (a
    usage error: the command line is wrong)."""


class AppImportError(Exception):
    """Importing the app's module raised (a failure of the app's own code)."""


def load_app(ref: str) -> Any:
    """The object ``module:attribute`` names (``attribute`` defaults to ``app``).

    The working directory is put first on ``sys.path``, as ``python -m`` does, so an app
    module next to where the command runs is found.
    """
    module_name, _, attribute = ref.partition(":")
    attribute = attribute or "app"
    if not module_name or not all(part.isidentifier() for part in module_name.split(".")):
        raise AppRefError(f"{ref!r} is not an app reference: use module:attribute, e.g. myapp:app")
    if not all(part.isidentifier() for part in attribute.split(".")):
        raise AppRefError(f"{ref!r}: {attribute!r} is not an attribute name")
    cwd = os.getcwd()
    if cwd not in sys.path:
        sys.path.insert(0, cwd)
    try:
        module = importlib.import_module(module_name)
    except ModuleNotFoundError as exc:
        if exc.name is not None and (module_name + ".").startswith(exc.name + "."):
            raise AppRefError(
                f"no module named {module_name!r} (looked in {cwd!r} and on sys.path)"
            ) from None
        raise AppImportError(f"importing {module_name!r} failed: {exc}") from exc
    except Exception as exc:
        raise AppImportError(
            f"importing {module_name!r} failed: {type(exc).__name__}: {exc}"
        ) from exc
    target: Any = module
    for part in attribute.split("."):
        try:
            target = getattr(target, part)
        except AttributeError:
            raise AppRefError(f"module {module_name!r} has no attribute {attribute!r}") from None
    return target
