"""The public API is explicit and documented: every name in every module's ``__all__`` is rendered on
book/api.md and has a docstring with a runnable example (run by ``--doctest-modules``)."""

from __future__ import annotations

import inspect
import re
from pathlib import Path

import pytest

import taylorlib as tl

ROOT = Path(__file__).resolve().parents[1]
MODULES = [m for m in tl.__all__ if m != "__version__"]
PUBLIC = [(m, name) for m in MODULES for name in getattr(tl, m).__all__]
PUBLIC_IDS = [f"{m}.{n}" for m, n in PUBLIC]
#: Type aliases (not functions or classes) documented by a ``#:`` comment instead of a docstring.
ALIASES = {("typing", "Params")}


def test_every_module_is_on_the_api_page():
    page = (ROOT / "book" / "api.md").read_text()
    documented = set(re.findall(r"\.\. automodule:: taylorlib\.(\w+)\n\s+:members:", page))
    assert documented == set(MODULES)


def test_every_module_declares_all_and_a_docstring():
    for m in MODULES:
        mod = getattr(tl, m)
        assert isinstance(mod.__all__, list | tuple), m
        assert mod.__doc__, f"taylorlib.{m} has no module docstring"
        assert len(mod.__doc__.strip()) > 20, f"taylorlib.{m} has no module docstring"
        for name in mod.__all__:
            assert hasattr(mod, name), f"taylorlib.{m}.__all__ names missing attribute {name}"


@pytest.mark.parametrize(("module", "name"), PUBLIC, ids=PUBLIC_IDS)
def test_public_name_has_docstring_example(module, name):
    if (module, name) in ALIASES:
        return
    obj = getattr(getattr(tl, module), name)
    if not (inspect.isfunction(obj) or inspect.isclass(obj) or callable(obj)):
        pytest.skip(f"{module}.{name} is a constant")
    doc = inspect.getdoc(obj) or ""
    assert doc.strip(), f"taylorlib.{module}.{name} has no docstring"
    if inspect.isclass(obj) and ("Attributes:" in doc or issubclass(obj, tuple)):
        # Records (NamedTuples, dataclasses) document their fields; their use is shown in the functions
        # that return them.
        assert "Attributes:" in doc or "Args:" in doc, f"taylorlib.{module}.{name} documents no fields"
        return
    assert ">>>" in doc, f"taylorlib.{module}.{name} has no runnable Example"


def _prose(doc: str) -> str:
    """The part of a docstring Sphinx renders as prose: no Example section, no ````literals````, no roles."""
    doc = re.split(r"\n\s*Examples?:\s*\n", doc)[0]
    doc = re.sub(r"``.*?``", "", doc, flags=re.S)
    return re.sub(r":\w+:`.*?`", "", doc, flags=re.S)


@pytest.mark.parametrize(("module", "name"), PUBLIC, ids=PUBLIC_IDS)
def test_public_name_shows_no_raw_tex(module, name):
    """Dollar math is not typeset on the API page (book/api.md renders docstrings as reST): prose uses
    :math:`...`, and a string default with TeX (an axis label) is ``None`` documented in the docstring,
    because the signature line shows defaults verbatim."""
    obj = getattr(getattr(tl, module), name)
    if not callable(obj):
        pytest.skip(f"{module}.{name} is a constant")
    try:
        params = inspect.signature(obj).parameters.values()
    except (TypeError, ValueError):
        params = []
    for p in params:
        assert not (isinstance(p.default, str) and "$" in p.default), (
            f"taylorlib.{module}.{name}: default of {p.name} shows raw TeX {p.default!r} in the signature"
        )
    tex = re.findall(r"\$[^$\n]+\$", _prose(inspect.getdoc(obj) or ""))
    assert not tex, f"taylorlib.{module}.{name}: raw TeX in the docstring prose: {tex}"
