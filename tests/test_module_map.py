"""The module map: taylorlib's modules import each other in one direction (no cycles), and names that
moved keep working from their old home."""

from __future__ import annotations

import ast
import inspect
import types
import typing
from pathlib import Path
from typing import NamedTuple

import pytest

import taylorlib as tl
from taylorlib.typing import Array, Float

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


# ---------------------------------------------------------------------------------------------- layers
#: The layers of the import graph, in order: a module may import modules of its own or an earlier layer,
#: never of a later one. Every module of the package is in exactly one layer.
LAYERS: dict[str, set[str]] = {
    "core": {"_checks", "_tree", "_deprecation", "typing", "activations", "data", "_two_layer"},
    "models": {
        "nets",
        "_conv",
        "taylor",
        "_jet",
        "ntk",
        "_ntk_jacobian",
        "_structured",
        "_second_order",
        "kernels",
        "_closed_forms",
        "quadratic",
        "higher_order",
        "_coupling",
        "randomize",
        "kernel_regression",
        "regularizers",
    },
    "analyses": {
        "train",
        "_train_loop",
        "_perturb",
        "landscape",
        "_lanczos",
        "saddle",
        "relaxation",
        "_relaxation_problem",
        "_relaxation_solver",
        "_relaxation_landscape",
        "_relaxation_certificate",
        "sweep",
        "_sweep_cache",
        "scaling",
        "targets",
        "_index_targets",
    },
    "book helpers": {"plotting", "_scaling_plots"},
    "package": {"__init__"},
}
#: Imports inside functions that point to a later layer on purpose (imported on first use).
ALLOWED_UPWARD = {
    ("data", "targets"): "tl.data.<name> finds the names that moved to tl.targets",
    ("_sweep_cache", "__init__"): "the sidecar records taylorlib.__version__",
}


def _all_imports() -> dict[str, set[str]]:
    """``module -> {taylorlib modules it imports}``, at load time or inside functions (``from . import
    __version__`` counts as importing the package, ``__init__``)."""
    modules = {path.stem for path in PKG.glob("*.py")}
    graph = {}
    for path in PKG.glob("*.py"):
        deps = set()
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.ImportFrom) and node.level == 1:
                if node.module:
                    deps.add(node.module.split(".")[0])
                else:
                    deps.update(a.name if a.name in modules else "__init__" for a in node.names)
        graph[path.stem] = deps - {path.stem}
    return graph


def _layer_violations(graph: dict[str, set[str]], layers: dict[str, set[str]], allowed) -> list[str]:
    rank = {mod: i for i, members in enumerate(layers.values()) for mod in members}
    names = list(layers)
    return [
        f"{mod} ({names[rank[mod]]}) imports {dep} ({names[rank[dep]]})"
        for mod, deps in sorted(graph.items())
        for dep in sorted(deps)
        if rank[dep] > rank[mod] and (mod, dep) not in allowed
    ]


def test_every_module_has_one_layer():
    members = [mod for layer in LAYERS.values() for mod in layer]
    assert len(members) == len(set(members)), "a module is listed in two layers"
    assert set(members) == set(_all_imports()), "add new modules to LAYERS (and remove deleted ones)"


def test_imports_point_to_earlier_layers_only():
    assert _layer_violations(_all_imports(), LAYERS, ALLOWED_UPWARD) == []


def test_layer_checker_finds_a_planted_violation():
    graph = _all_imports()
    assert _layer_violations(graph, LAYERS, ALLOWED_UPWARD) == []
    graph["activations"] = graph["activations"] | {"train"}
    assert _layer_violations(graph, LAYERS, ALLOWED_UPWARD) == ["activations (core) imports train (analyses)"]
    graph = _all_imports()
    assert _layer_violations(graph, LAYERS, {}) == [
        "_sweep_cache (analyses) imports __init__ (package)",
        "data (core) imports targets (analyses)",
    ]


# ------------------------------------------------------------------------------- public return types
def _classes_named(annotation, namespace: dict) -> set[type]:
    """The classes an annotation names (a string under ``from __future__ import annotations``)."""
    if annotation is None:
        return set()
    if isinstance(annotation, str):
        found = set()
        for node in ast.walk(ast.parse(annotation, mode="eval")):
            if isinstance(node, ast.Name | ast.Attribute):
                try:
                    obj = eval(compile(ast.Expression(node), "<annotation>", "eval"), dict(namespace))  # noqa: S307
                except Exception:  # noqa: BLE001  (a jaxtyping shape string, a name from TYPE_CHECKING)
                    continue
                if isinstance(obj, type):
                    found.add(obj)
        return found
    found = {annotation} if isinstance(annotation, type) else set()
    for arg in typing.get_args(annotation):
        found |= _classes_named(arg, namespace)
    return found


def _is_named_tuple(cls: type) -> bool:
    return issubclass(cls, tuple) and hasattr(cls, "_fields")


def _unlisted_named_tuples(modules, package: str = "taylorlib") -> list[str]:
    """Public functions returning a NamedTuple of ``package`` that no ``__all__`` of ``modules`` lists."""
    public = {id(getattr(mod, n)) for mod in modules for n in mod.__all__}
    out = []
    for mod in modules:
        for name in mod.__all__:
            fn = getattr(mod, name)
            if not inspect.isfunction(fn):
                continue
            ret = inspect.get_annotations(fn).get("return")
            for cls in _classes_named(ret, fn.__globals__):
                mine = cls.__module__.split(".")[0] == package  # optax's GradientTransformation is not ours
                if mine and _is_named_tuple(cls) and id(cls) not in public:
                    out.append(f"{mod.__name__}.{name} returns {cls.__module__}.{cls.__qualname__}")
    return sorted(out)


def test_every_returned_named_tuple_is_public():
    modules = [getattr(tl, m) for m in tl.__all__ if m != "__version__"]
    assert _unlisted_named_tuples(modules) == []


class _Hidden(NamedTuple):
    value: float


def _make() -> _Hidden:
    return _Hidden(1.0)


def _make_optional(x: _Hidden) -> tuple[Float[Array, " n"], _Hidden] | None:
    return None


def test_return_type_checker_finds_a_private_named_tuple():
    fake = types.SimpleNamespace(
        __name__="fake", __all__=["make", "make_optional"], make=_make, make_optional=_make_optional
    )
    assert _unlisted_named_tuples([fake], package=__name__) == [
        f"fake.make returns {__name__}._Hidden",
        f"fake.make_optional returns {__name__}._Hidden",
    ]
    fake.__all__.append("Hidden")
    fake.Hidden = _Hidden
    assert _unlisted_named_tuples([fake], package=__name__) == []
