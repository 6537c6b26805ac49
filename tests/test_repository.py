"""Repository-level checks: packaging, configuration consistency, README example, notebook hygiene."""

from __future__ import annotations

import ast
import doctest
import json
import re
import tomllib
from pathlib import Path

import pytest
import yaml

import taylorlib as tl

ROOT = Path(__file__).resolve().parents[1]
CHAPTERS = sorted((ROOT / "book").glob("[0-9]*.ipynb"))


def _pyproject() -> dict:
    return tomllib.loads((ROOT / "pyproject.toml").read_text())


def _config() -> dict:
    return yaml.safe_load((ROOT / "_config.yml").read_text())


def _code_cells(nb_path: Path) -> list[dict]:
    cells = json.loads(nb_path.read_text())["cells"]
    return [c for c in cells if c["cell_type"] == "code" and "".join(c["source"]).strip()]


def test_required_top_level_layout():
    for name in [
        "book",
        "taylorlib",
        "tests",
        "_config.yml",
        "_toc.yml",
        "environment.yml",
        "README.md",
        "pyproject.toml",
        "Makefile",
        ".ci/run",
        "constraints.txt",
    ]:
        assert (ROOT / name).exists(), f"missing {name}"
    assert "make test" in (ROOT / ".ci/run").read_text()


def test_version_and_typed_marker():
    assert re.fullmatch(r"\d+\.\d+\.\d+", tl.__version__)
    assert (ROOT / "taylorlib" / "py.typed").exists()


def test_pyproject_extras():
    extras = _pyproject()["project"]["optional-dependencies"]
    assert {"book", "test", "dev"} <= set(extras)
    book = " ".join(extras["book"])
    assert "jupyter-book>=1,<2" in book
    for pkg in ["matplotlib", "seaborn", "sphinxcontrib-bibtex"]:
        assert pkg in book
    for pkg in ["pytest", "nbval", "hypothesis"]:
        assert any(d.startswith(pkg) for d in extras["test"])
    deps = " ".join(_pyproject()["project"]["dependencies"])
    for pkg in ["jax", "numpy", "optax", "jaxtyping"]:
        assert pkg in deps


def test_environment_yml_matches_pyproject():
    env = yaml.safe_load((ROOT / "environment.yml").read_text())
    deps = env["dependencies"]
    assert "python=3.11" in deps
    assert "pip" in deps
    pip_entries = next(d["pip"] for d in deps if isinstance(d, dict) and "pip" in d)
    assert "-c constraints.txt" in pip_entries, "environment.yml installs the same pins as make install"
    editable = [e for e in pip_entries if e.startswith("-e")]
    assert len(editable) == 1
    named = set(re.search(r"\[(.*)\]", editable[0]).group(1).split(","))
    assert named == {"book", "test"}
    assert named <= set(_pyproject()["project"]["optional-dependencies"])


def test_constraints_pin_every_runtime_dependency():
    pins = {
        line.split("==")[0].lower().replace("_", "-")
        for line in (ROOT / "constraints.txt").read_text().splitlines()
        if "==" in line
    }
    for pkg in ["jax", "jaxlib", "numpy", "optax", "jaxtyping", "jupyter-book", "nbval", "matplotlib"]:
        assert pkg in pins, f"{pkg} is not pinned in constraints.txt"


def test_book_config():
    cfg = _config()
    assert cfg["only_build_toc_files"] is True
    assert cfg["execute"]["execute_notebooks"] == "off"
    assert cfg["launch_buttons"]["colab_url"].startswith("https://colab")
    assert "book/references.bib" in cfg["bibtex_bibfiles"]
    toc = yaml.safe_load((ROOT / "_toc.yml").read_text())
    assert toc["root"] == "book/index"
    files = [c["file"] for c in toc["chapters"]]
    for nb in CHAPTERS:
        assert f"book/{nb.stem}" in files, f"{nb.name} is not in _toc.yml"


def test_repository_url_is_the_same_everywhere():
    """One repository URL (``repository.url``); the chapters' Colab cell is checked in tests/test_colab.py."""
    url = _config()["repository"]["url"]
    assert isinstance(url, str)
    assert url.startswith("https://")
    readme = (ROOT / "README.md").read_text()
    assert f"git+{url}" in readme
    assert f"git+{url}" in (ROOT / "book" / "index.md").read_text()


def test_the_online_book_has_one_address():
    """README names the online book at ``html.baseurl`` of _config.yml, and at no other address."""
    base = _config()["html"]["baseurl"]
    assert base.startswith("https://")
    assert base.endswith("/")
    readme = (ROOT / "README.md").read_text()
    assert base in readme
    pages = set(re.findall(r"https://[\w.-]+\.github\.io/[\w./-]*", readme))
    assert pages == {base}, f"README names other book addresses: {sorted(pages - {base})}"


def test_readme_example_runs():
    text = (ROOT / "README.md").read_text()
    section = text.split("## Using taylorlib as a library", 1)[1]
    blocks = re.findall(r"```python\n(.*?)```", section, re.S)
    assert blocks, "README has no python example"
    example = blocks[0]
    n_lines = sum(1 for line in example.splitlines() if line.startswith(">>>"))
    assert n_lines <= 12
    test = doctest.DocTestParser().get_doctest(example, {}, "README", "README.md", 0)
    runner = doctest.DocTestRunner(optionflags=doctest.ELLIPSIS | doctest.NORMALIZE_WHITESPACE)
    runner.run(test)
    assert runner.failures == 0
    assert runner.tries == n_lines


def _asserts(source: str) -> list[ast.Assert]:
    """The assert statements of a code cell (IPython magics removed)."""
    lines = [ln for ln in source.splitlines() if not ln.lstrip().startswith(("%", "!"))]
    return [node for node in ast.walk(ast.parse("\n".join(lines))) if isinstance(node, ast.Assert)]


def _bound_names(source: str) -> set[str]:
    """Names a notebook computes: targets of assignments, for loops, with/as, walrus and function defs."""
    lines = [ln for ln in source.splitlines() if not ln.lstrip().startswith(("%", "!"))]
    names = set()
    for node in ast.walk(ast.parse("\n".join(lines))):
        if isinstance(node, ast.Name) and isinstance(node.ctx, ast.Store):
            names.add(node.id)
        elif isinstance(node, ast.FunctionDef):
            names.add(node.name)
    return names


def _is_constant(test: ast.expr, computed: set[str] | None = None) -> bool:
    """An assert test that does not depend on any computed value (``True``, ``1 < 2``, ``x == x``, and,
    given the names the notebook ``computed``, ``len([1, 2]) == 2`` or ``np.pi > 3``: no computed name)."""
    if not any(isinstance(n, ast.Name | ast.Attribute | ast.Call | ast.Subscript) for n in ast.walk(test)):
        return True
    if computed is not None and not any(isinstance(n, ast.Name) and n.id in computed for n in ast.walk(test)):
        return True
    if isinstance(test, ast.Compare) and len(test.comparators) == 1:
        same = ast.dump(test.left) == ast.dump(test.comparators[0])
        return same and isinstance(test.ops[0], ast.Eq | ast.LtE | ast.GtE | ast.Is)
    return False


def test_constant_asserts_are_recognized():
    flagged = [
        _is_constant(a.test) for a in _asserts("assert True\nassert 1 < 2\nassert x == x\nassert err < tol")
    ]
    assert flagged == [True, True, True, False]
    source = "import numpy as np\nerr = f()\nassert len([1, 2]) == 2\nassert np.pi > 3\nassert err < 1e-3"
    computed = _bound_names(source)
    assert [_is_constant(a.test, computed) for a in _asserts(source)] == [True, True, False]


@pytest.mark.parametrize("nb", CHAPTERS, ids=lambda p: p.name)
def test_notebook_hygiene(nb):
    code = _code_cells(nb)
    assert code, "no code cells"
    for c in code:
        assert c.get("execution_count") is not None, f"unexecuted cell: {''.join(c['source'])[:60]!r}"
        for out in c.get("outputs", []):
            assert out.get("output_type") != "error", "error output stored"
            assert "image/svg+xml" not in out.get("data", {}), "SVG output (embeds dates); use PNG"
    sources = ["".join(c["source"]) for c in code]
    joined = "\n".join(sources)
    assert not re.search(r"(from|import)\s+taylorlib\._|tl\._\w", joined), (
        "imports a private taylorlib module"
    )
    cells = json.loads(nb.read_text())["cells"]
    md = "\n".join("".join(c["source"]) for c in cells if c["cell_type"] == "markdown")
    assert "## Checks" in md, "no Checks section"
    checks_idx = next(
        i for i, c in enumerate(cells) if c["cell_type"] == "markdown" and "## Checks" in "".join(c["source"])
    )
    after = [c for c in cells[checks_idx:] if c["cell_type"] == "code"]
    assert after, "no code cell after the Checks heading"
    asserts = _asserts("".join(after[0]["source"]))
    assert len(asserts) >= 3, f"the Checks cell has {len(asserts)} assert statements (at least 3 claims)"
    computed = _bound_names("\n".join(sources))
    constant = [ast.unparse(a.test) for a in asserts if _is_constant(a.test, computed)]
    assert constant == [], f"asserts that cannot fail: {constant}"
    ignored = sum("NBVAL_IGNORE_OUTPUT" in s for s in sources)
    assert ignored <= len(code) / 4, f"{ignored}/{len(code)} cells ignore their output"
    assert "## Overview" in md
    assert "## Exercises" in md


@pytest.mark.parametrize("nb", CHAPTERS, ids=lambda p: p.name)
def test_notebooks_use_only_public_names(nb):
    public = {mod: set(getattr(tl, mod).__all__) for mod in tl.__all__ if mod != "__version__"}
    joined = "\n".join("".join(c["source"]) for c in _code_cells(nb))
    for mod, name in re.findall(r"\btl\.(\w+)\.(\w+)", joined):
        assert mod in public, f"tl.{mod} is not a public module"
        assert name in public[mod], f"tl.{mod}.{name} is not in taylorlib.{mod}.__all__"


def test_cached_data_is_small():
    for f in (ROOT / "book" / "data").glob("*.npz"):
        assert f.stat().st_size < 1_000_000, f"{f.name} is larger than 1 MB"


def test_readme_research_example_runs_and_prints_what_it_says():
    """The "Cite and reuse" example runs as written, and prints (within float32 noise) what README shows."""
    text = (ROOT / "README.md").read_text()
    section = text.split("## Cite and reuse", 1)[1]
    (code,) = re.findall(r"```python\n(.*?)```", section, re.S)
    (shown,) = re.findall(r"It prints\n\n```text\n(.*?)```", section, re.S)
    assert len(code.strip().splitlines()) <= 26
    printed: list[str] = []
    namespace: dict = {"print": lambda *a: printed.append(" ".join(map(str, a)))}
    exec(compile(code, "README-research", "exec"), namespace)
    assert len(printed) == len(shown.strip().splitlines()) == 2
    number = re.compile(r"-?\d+\.\d+(?:e-?\d+)?")
    for got, want in zip(printed, shown.strip().splitlines(), strict=True):
        assert number.sub("#", got) == number.sub("#", want), (got, want)
        for g, w in zip(map(float, number.findall(got)), map(float, number.findall(want)), strict=True):
            assert abs(g - w) <= 0.02 + 0.25 * abs(w), (got, want)
    # The prose's claims: the second-order kernel is better aligned; the loss fell; a negative Hessian eigenvalue
    # is left.
    ns = namespace
    assert ns["alignment"](ns["KQ"]) > ns["alignment"](ns["K"])
    assert float(ns["loss"](ns["p"])) < 0.75 * float(ns["loss"](ns["p0"]))
    assert ns["net"].apply(ns["p0"], ns["x"]).shape == (128, 3)  # a vector-output model (issue 16)
    assert float(ns["spectrum"].eigvals[0]) < 0 < float(ns["spectrum"].eigvals[-1])
    assert ns["spectrum"].eigvals.shape == (30,)


def test_oldest_constraints_are_the_declared_lower_bounds():
    """``make oldest-check`` tests exactly the lower bound of every runtime dependency (and the matching jaxlib)."""
    pins = {}
    for line in (ROOT / "constraints-oldest.txt").read_text().splitlines():
        line = line.split("#")[0].strip()
        if line:
            name, version = line.split("==")
            pins[name.strip().lower()] = version.strip()
    bounds = {}
    for dep in _pyproject()["project"]["dependencies"]:
        m = re.fullmatch(r"([A-Za-z0-9_.-]+)>=([0-9.]+)(,<[0-9.]+)?", dep.replace(" ", ""))
        assert m, f"runtime dependency without a lower bound: {dep}"
        bounds[m.group(1).lower()] = m.group(2)
    from packaging.version import Version

    assert set(pins) == set(bounds)
    for name, bound in bounds.items():
        assert Version(pins[name]) == Version(bound), f"{name}: tested {pins[name]}, declared >= {bound}"
    assert pins["jaxlib"] == pins["jax"]


def test_no_file_refers_to_documents_outside_the_repository():
    """Contributors have only the repository: every document a file cites must be in it."""
    outside = re.compile(r"\b(STYLE\.md|DESIGN\.md|theory\.md)|\.\./shared/")
    suffixes = {".py", ".md", ".ipynb", ".toml", ".yml", ".cfg", ".txt", ".json"}
    offenders = []
    for path in ROOT.rglob("*"):
        rel = path.relative_to(ROOT)
        if rel.parts[0] in {".venv", "_build", ".git"} or not path.is_file():
            continue
        if (path.suffix in suffixes or path.name in {"Makefile", "run"}) and outside.search(path.read_text()):
            offenders.append(str(rel))
    assert offenders == []


def test_contributor_documents_exist_and_name_the_test_tiers():
    text = (ROOT / "CONTRIBUTING.md").read_text()
    for target in ("make lint", "make unit", "make x64", "make nbval", "make test", "make bench"):
        assert target in text, target
    assert "## Unreleased" in (ROOT / "CHANGELOG.md").read_text()


def _brace_expand(pattern: str) -> list[str]:
    """``a_{x,y}_{u,v}.npz`` -> the four names (README's shorthand for a script's caches)."""
    m = re.search(r"\{([^{}]*)\}", pattern)
    if not m:
        return [pattern]
    return [
        name
        for alt in m.group(1).split(",")
        for name in _brace_expand(pattern[: m.start()] + alt + pattern[m.end() :])
    ]


def test_readme_lists_every_experiment_and_its_caches():
    """README's "Regenerating" list names every script in experiments/ and every cache in book/data/."""
    text = (ROOT / "README.md").read_text()
    section = text.split("## Regenerating notebooks and cached data", 1)[1].split("\n## ", 1)[0]
    for script in sorted((ROOT / "experiments").glob("*.py")):
        assert f"`experiments/{script.name}`" in section, f"README does not list experiments/{script.name}"
    listed = {n for p in re.findall(r"`book/data/([^`*]+)`", section) for n in _brace_expand(p)}
    stored = {
        f.name for f in (ROOT / "book" / "data").glob("*") if f.suffix in (".npz",) or "settings" in f.name
    }
    assert stored <= listed, f"caches missing from README: {sorted(stored - listed)}"
    assert listed <= stored, f"README lists caches that do not exist: {sorted(listed - stored)}"


@pytest.mark.parametrize("nb", CHAPTERS, ids=lambda p: p.name)
def test_chapter_lines_fit_the_text_column(nb):
    """Code lines and stored printed lines are at most 88 characters: the book's text column shows 88
    monospace characters at a 1280 px window (tools/browser_check.py), so longer lines scroll or are cut."""
    for c in _code_cells(nb):
        for line in "".join(c["source"]).splitlines():
            assert len(line) <= 88, f"code line of {len(line)} characters: {line[:60]!r}"
        for out in c.get("outputs", []):
            text = out.get("text") or out.get("data", {}).get("text/plain", "")
            for line in "".join(text).splitlines():
                assert len(line) <= 88, f"printed line of {len(line)} characters: {line[:60]!r}"


@pytest.mark.parametrize("nb", CHAPTERS, ids=lambda p: p.name)
def test_every_chapter_figure_has_alt_text(nb):
    """A cell that stores a figure says what it shows (MyST-NB puts ``mystnb.image.alt`` on the image)."""
    for c in _code_cells(nb):
        if any("image/png" in out.get("data", {}) for out in c.get("outputs", [])):
            alt = c["metadata"].get("mystnb", {}).get("image", {}).get("alt", "")
            assert len(alt.split()) >= 8, f"figure without alt text: {''.join(c['source'])[:60]!r}"


def test_tests_import_the_shared_helpers_one_way():
    """tests/helpers.py is imported as ``helpers`` (a second spelling, ``tests.helpers``, loads a second copy),
    and no test module redefines one of its functions."""
    import helpers

    shared = {name for name, obj in vars(helpers).items() if callable(obj) and obj.__module__ == "helpers"}
    assert shared >= {"assert_close_matrices", "assert_symmetric_psd", "np_sphere", "random_like"}
    for path in sorted((ROOT / "tests").glob("test_*.py")):
        tree = ast.parse(path.read_text())
        for node in ast.walk(tree):
            if isinstance(node, ast.ImportFrom):
                assert node.module != "tests.helpers", f"{path.name}: use 'from helpers import ...'"
        defined = {n.name for n in tree.body if isinstance(n, ast.FunctionDef)}
        assert not defined & shared, f"{path.name} redefines {sorted(defined & shared)} from tests/helpers.py"
