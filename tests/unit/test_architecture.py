"""The shape of the package: imports point one way, and internal modules look internal."""

from __future__ import annotations

import ast
from pathlib import Path

import jobify

PACKAGE = Path(jobify.__file__).parent

# The public import paths of the API; every other module is internal (a leading underscore
# somewhere in its path), except the storage backends, serializers and optional integrations,
# which are public by their package.
PUBLIC = {
    "jobify",
    "jobify.router",
    "jobify.middleware",
    "jobify.exceptions",
    "jobify.crontab",
    "jobify.typeadapter",
    "jobify.storage",
    "jobify.serializers",
}


def module_name(path: Path) -> str:
    parts = list(path.relative_to(PACKAGE.parent).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def imports_of(path: Path, name: str) -> set[str]:
    """Every jobify module this one imports, at runtime, under TYPE_CHECKING or in a
    function body alike (a cycle dodged by a local import is still a cycle)."""
    tree = ast.parse(path.read_text())
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    found: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")
                base = base[: len(base) - node.level + 1]
                target = ".".join([*base, node.module] if node.module else base)
            else:
                target = node.module or ""
            found.add(target)
            for alias in node.names:  # `from jobify.x import y` may import module x.y
                found.add(f"{target}.{alias.name}")
    return {m for m in found if m == "jobify" or m.startswith("jobify.")}


def graph() -> dict[str, set[str]]:
    modules = {module_name(p): p for p in PACKAGE.rglob("*.py")}
    edges: dict[str, set[str]] = {}
    for name, path in modules.items():
        edges[name] = {t for t in imports_of(path, name) if t in modules and t != name}
    return edges


def find_cycle(edges: dict[str, set[str]]) -> list[str] | None:
    state: dict[str, int] = {}
    stack: list[str] = []

    def visit(node: str) -> list[str] | None:
        state[node] = 1
        stack.append(node)
        for nxt in sorted(edges.get(node, ())):
            if state.get(nxt) == 1:
                return [*stack[stack.index(nxt) :], nxt]
            if nxt not in state and (cycle := visit(nxt)) is not None:
                return cycle
        stack.pop()
        state[node] = 2
        return None

    for node in sorted(edges):
        if node not in state and (cycle := visit(node)) is not None:
            return cycle
    return None


def test_the_import_graph_has_no_cycle() -> None:
    cycle = find_cycle(graph())
    assert cycle is None, " -> ".join(cycle or [])


def test_a_cycle_would_be_found() -> None:
    assert find_cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}}) == ["a", "b", "c", "a"]
    assert find_cycle({"a": {"b"}, "b": set()}) is None


def test_core_modules_are_internal() -> None:
    core = [
        name
        for name in graph()
        if name.count(".") == 1
        and name not in PUBLIC
        and name
        not in {
            "jobify.__main__",
            "jobify.otel",
            "jobify.prometheus",
            "jobify.cli",
            "jobify.dashboard",
        }
        and name != "jobify.inspection"
    ]
    assert all(name.split(".")[1].startswith("_") for name in core), core


def test_the_router_does_not_know_the_app() -> None:
    # Routes know a submit port, not the app (the app imports the router, never back).
    assert "jobify._app" not in graph()["jobify.router"]
    assert not any(m.startswith("jobify._app") for m in graph()["jobify._scheduler"])
