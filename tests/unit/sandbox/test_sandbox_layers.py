"""The sandbox's modules import one way: no cycle, not even under TYPE_CHECKING or inside a function."""

from __future__ import annotations

import ast
from pathlib import Path

import airflow_provider_pixverse.sandbox as sandbox_package

PACKAGE = "airflow_provider_pixverse.sandbox"
FOLDER = Path(sandbox_package.__file__).parent
MODULES = {path.stem for path in FOLDER.glob("*.py")}


def _module(dotted: str) -> str | None:
    """The sandbox module a dotted name lies in (``__init__`` for the package itself), or None."""
    if dotted == PACKAGE:
        return "__init__"
    if not dotted.startswith(PACKAGE + "."):
        return None
    name = dotted[len(PACKAGE) + 1 :].split(".")[0]
    return name if name in MODULES else "__init__"


def _imported(node: ast.Import | ast.ImportFrom) -> set[str]:
    """The sandbox modules one import statement names (``from pkg import mod`` names ``mod``)."""
    if isinstance(node, ast.Import):
        dotted = [alias.name for alias in node.names]
    else:
        base = node.module or ""
        if node.level:  # relative to the sandbox package
            base = ".".join([*PACKAGE.split(".")[: 3 - node.level], *filter(None, [base])])
        dotted = [base] if base.startswith(PACKAGE + ".") else [f"{base}.{a.name}" for a in node.names]
    return {module for name in dotted if (module := _module(name))}


def import_graph() -> dict[str, set[str]]:
    """Module -> the sandbox modules it imports anywhere in its source."""
    graph = {}
    for name in MODULES:
        tree = ast.parse((FOLDER / f"{name}.py").read_text(encoding="utf-8"))
        nodes = [n for n in ast.walk(tree) if isinstance(n, ast.Import | ast.ImportFrom)]
        graph[name] = set().union(*map(_imported, nodes)) - {name}
    return graph


def find_cycle(graph: dict[str, set[str]]) -> list[str] | None:
    """One cycle as [a, b, ..., a], or None."""
    done: set[str] = set()

    def visit(node: str, path: list[str]) -> list[str] | None:
        if node in path:
            return [*path[path.index(node) :], node]
        if node in done:
            return None
        for nxt in sorted(graph.get(node, ())):
            if cycle := visit(nxt, [*path, node]):
                return cycle
        done.add(node)
        return None

    for start in sorted(graph):
        if cycle := visit(start, []):
            return cycle
    return None


def test_the_graph_sees_every_kind_of_import() -> None:
    graph = import_graph()
    assert {"api", "control", "injection"} <= graph["server"]
    assert "service" in graph["__init__"]  # inside a function
    assert "service" in graph["pytest_plugin"]  # under TYPE_CHECKING and inside a function


def test_find_cycle_reports_the_modules() -> None:
    assert find_cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}}) == ["a", "b", "c", "a"]
    assert find_cycle({"a": {"b"}, "b": set()}) is None


def test_sandbox_modules_import_without_a_cycle() -> None:
    cycle = find_cycle(import_graph())
    assert cycle is None, "sandbox import cycle: " + " -> ".join(cycle or [])
