"""The sandbox's modules import one way: no cycle, not even under TYPE_CHECKING or inside a function."""

from __future__ import annotations

from pathlib import Path

from import_graph import find_cycle, import_graph

import airflow_provider_pixverse.sandbox as sandbox_package

PACKAGE = "airflow_provider_pixverse.sandbox"


def sandbox_graph() -> dict[str, set[str]]:
    """Module (short name) -> the sandbox modules it imports anywhere in its source."""
    graph = import_graph(Path(sandbox_package.__file__).parent, PACKAGE)

    def short(name: str) -> str:
        return name[len(PACKAGE) + 1 :] or "__init__" if name != PACKAGE else "__init__"

    return {short(name): {short(target) for target in targets} for name, targets in graph.items()}


def test_the_graph_sees_every_kind_of_import() -> None:
    graph = sandbox_graph()
    assert {"api", "control", "injection"} <= graph["server"]
    assert "service" in graph["__init__"]  # inside a function
    assert "service" in graph["pytest_plugin"]  # under TYPE_CHECKING and inside a function


def test_find_cycle_reports_the_modules() -> None:
    assert find_cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}}) == ["a", "b", "c", "a"]
    assert find_cycle({"a": {"b"}, "b": set()}) is None


def test_sandbox_modules_import_without_a_cycle() -> None:
    cycle = find_cycle(sandbox_graph())
    assert cycle is None, "sandbox import cycle: " + " -> ".join(cycle or [])
