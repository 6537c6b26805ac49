"""The module map: taylorlib's modules import each other in one direction (no cycles), and names that
moved keep working from their old home."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

import taylorlib as tl

PKG = Path(tl.__file__).resolve().parent


def _module_level_imports() -> dict[str, set[str]]:
    """``module -> {taylorlib modules it imports at load time}`` (imports inside functions excluded)."""
    graph = {}
    for path in PKG.glob("*.py"):
        name = path.stem
        deps = set()
        for node in ast.parse(path.read_text()).body:
            if isinstance(node, ast.ImportFrom) and node.level == 1:
                if node.module:
                    deps.add(node.module.split(".")[0])
                else:
                    deps.update(alias.name for alias in node.names)
        graph[name] = deps - {name}
    return graph


def _cycle(graph: dict[str, set[str]]) -> list[str] | None:
    state: dict[str, int] = {}
    stack: list[str] = []

    def visit(v: str) -> list[str] | None:
        state[v] = 1
        stack.append(v)
        for w in sorted(graph.get(v, ())):
            if state.get(w) == 1:
                return stack[stack.index(w) :] + [w]
            if w not in state and (found := visit(w)):
                return found
        stack.pop()
        state[v] = 2
        return None

    for v in sorted(graph):
        if v not in state and (found := visit(v)):
            return found
    return None


def test_cycle_finder_finds_a_planted_cycle():
    assert _cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}}) == ["a", "b", "c", "a"]
    assert _cycle({"a": {"b"}, "b": set()}) is None


def test_no_import_cycles():
    graph = _module_level_imports()
    assert "data" in graph
    assert "targets" in graph["__init__"]
    assert _cycle(graph) is None


def test_moved_names_are_found_at_their_old_address():
    for name in tl.targets.__all__:
        assert getattr(tl.data, name) is getattr(tl.targets, name)
    with pytest.raises(AttributeError, match="no attribute 'nonexistent'"):
        tl.data.nonexistent  # noqa: B018
    assert tl.sweep.fit_exponent is tl.scaling.fit_exponent


def test_moved_order_k_names_warn_at_their_old_address():
    with pytest.warns(DeprecationWarning, match=r"tl\.randomize\.coupling_error moved to tl\.higher_order"):
        from taylorlib.randomize import coupling_error
    assert coupling_error is tl.higher_order.coupling_error
    with pytest.raises(AttributeError, match="no attribute 'nonexistent'"):
        tl.randomize.nonexistent  # noqa: B018
    with pytest.raises(AttributeError, match="no attribute 'order_k'"):
        tl.quadratic.order_k  # noqa: B018  (only the names that moved out of quadratic resolve)
