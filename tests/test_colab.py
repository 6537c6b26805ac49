"""The chapters' Colab install cell (tools/colab_cell.py) and the tool that writes it (tools/colab.py).

``make colab-check`` runs the cell for real on an emulated fresh runtime; these tests check, in milliseconds,
that every chapter carries the one cell, that its URL is the configured one, that it does nothing outside
Colab, and what it does on Colab (with ``git`` and ``pip`` replaced by recorders).
"""

from __future__ import annotations

import ast
import json
import os
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tools"))
import colab  # noqa: E402

CHAPTERS = colab.chapters()


def test_the_cell_clones_the_configured_repository():
    src = colab.cell_source()
    url = colab.config_url()
    assert url.startswith("https://")
    assert src.count(f'REPO_URL = "{url}"') == 1
    assert src.count("https://") == 1, "the cell names one URL, the configured one"
    assert colab.replace_url(src, url, "file:///tmp/x.git").count('"file:///tmp/x.git"') == 1


def test_the_cell_is_a_short_valid_chapter_cell():
    src = colab.cell_source()
    ast.parse(src)
    assert max(len(line) for line in src.splitlines()) <= 88
    assert "[notebooks]" in src
    assert "[book]" not in src


@pytest.mark.parametrize("nb", CHAPTERS, ids=lambda p: p.name)
def test_every_chapter_starts_with_the_canonical_cell(nb):
    """Fails until ``make colab-cell`` has written tools/colab_cell.py into every chapter."""
    first = json.loads(nb.read_text(encoding="utf-8"))["cells"][0]
    assert first["cell_type"] == "code"
    assert "remove-cell" in first["metadata"].get("tags", []), (
        f"{nb.name}: first cell is not tagged remove-cell"
    )
    assert "".join(first["source"]) == colab.cell_source(), f"{nb.name}: run `make colab-cell`"
    assert first.get("outputs") == [], f"{nb.name}: the Colab cell must print nothing outside Colab"


def test_the_cell_does_nothing_outside_colab(tmp_path):
    probe = (
        f"{colab.cell_source()}\nimport os\nprint('CWD', os.getcwd())\nprint('MODS', 'subprocess' in dir())"
    )
    out = subprocess.run(
        [sys.executable, "-c", probe], cwd=tmp_path, capture_output=True, text=True, check=True
    )
    assert out.stderr == ""
    assert out.stdout.splitlines() == [f"CWD {tmp_path}", "MODS False"]
    assert list(tmp_path.iterdir()) == []


def _run_cell_on_fake_colab(tmp_path, monkeypatch, calls):
    def fake_run(cmd, check=False, **kw):
        calls.append(list(cmd))
        if cmd[:2] == ["git", "clone"]:
            (Path(cmd[-1]) / "book" / "data").mkdir(parents=True)
        return subprocess.CompletedProcess(cmd, 0)

    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    monkeypatch.setitem(sys.modules, "google.colab", type(sys)("google.colab"))
    monkeypatch.setattr(subprocess, "run", fake_run)
    exec(compile(colab.cell_source(), "colab_cell", "exec"), {"__name__": "__main__"})


def test_the_cell_on_colab_clones_installs_and_enters_book(tmp_path, monkeypatch):
    calls: list[list[str]] = []
    monkeypatch.chdir(tmp_path)
    _run_cell_on_fake_colab(tmp_path, monkeypatch, calls)
    clone = str(tmp_path / "home" / "taylorlib")
    assert calls == [
        ["git", "clone", "-q", "--depth=1", colab.config_url(), clone],
        [sys.executable, "-m", "pip", "install", "-q", f"{clone}[notebooks]"],
    ]
    assert os.getcwd() == os.path.join(clone, "book")
    assert Path("data").is_dir(), "the chapter's data/ is reachable from the working directory"
    # Run again (a reader re-runs the cell): no second clone, same directory.
    _run_cell_on_fake_colab(tmp_path, monkeypatch, calls)
    assert [c[:2] for c in calls[2:]] == [[sys.executable, "-m"]]
    assert os.getcwd() == os.path.join(clone, "book")


def test_write_cell_changes_only_the_first_cells_source(tmp_path):
    nb = tmp_path / "ch.ipynb"
    original = {
        "cells": [
            {
                "cell_type": "code",
                "execution_count": 1,
                "metadata": {"tags": ["remove-cell"], "execution": {"x": 1}},
                "outputs": [],
                "source": ["# old\n", "import sys\n", "if 'google.colab' in sys.modules:\n", "    pass"],
            },
            {"cell_type": "markdown", "metadata": {}, "source": ["# Title"]},
            {
                "cell_type": "code",
                "execution_count": 2,
                "metadata": {},
                "outputs": [{"k": 1}],
                "source": ["1"],
            },
        ],
        "metadata": {"kernelspec": {"name": "python3"}},
        "nbformat": 4,
        "nbformat_minor": 5,
    }
    nb.write_text(json.dumps(original, indent=1, sort_keys=True, ensure_ascii=False) + "\n")
    assert colab.write_cell(nb) is True
    new = json.loads(nb.read_text())
    assert "".join(new["cells"][0]["source"]) == colab.cell_source()
    for key in ("execution_count", "metadata", "outputs"):
        assert new["cells"][0][key] == original["cells"][0][key]
    assert new["cells"][1:] == original["cells"][1:]
    assert new["metadata"] == original["metadata"]
    before = nb.read_bytes()
    assert colab.write_cell(nb) is False
    assert nb.read_bytes() == before


def test_write_cell_round_trips_a_real_chapter_byte_for_byte(tmp_path):
    """On a chapter that already has the cell, writing changes nothing (same JSON layout as nbformat's)."""
    if not CHAPTERS:
        pytest.skip("no chapters")
    nb = tmp_path / CHAPTERS[0].name
    nb.write_bytes(CHAPTERS[0].read_bytes())
    first = json.loads(nb.read_text(encoding="utf-8"))["cells"][0]
    colab.write_cell(nb, source="".join(first["source"]))
    assert nb.read_bytes() == CHAPTERS[0].read_bytes()


def test_write_cell_refuses_a_chapter_without_the_cell(tmp_path):
    nb = tmp_path / "ch.ipynb"
    cell = {"cell_type": "code", "execution_count": 1, "metadata": {}, "outputs": [], "source": ["x = 1"]}
    nb.write_text(json.dumps({"cells": [cell], "metadata": {}, "nbformat": 4, "nbformat_minor": 5}))
    with pytest.raises(ValueError, match="not the Colab install cell"):
        colab.write_cell(nb)


def test_replace_url_needs_exactly_one_literal():
    with pytest.raises(ValueError, match="exactly once"):
        colab.replace_url('A = "u"\nB = "u"', "u", "v")
    with pytest.raises(ValueError, match="exactly once"):
        colab.replace_url("nothing here", "u", "v")


def _imported_modules(code: str) -> set[str]:
    mods = set()
    for node in ast.walk(ast.parse(code)):
        if isinstance(node, ast.Import):
            mods |= {a.name.split(".")[0] for a in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            mods.add(node.module.split(".")[0])
    return mods


def test_the_notebooks_extra_covers_what_chapters_import():
    """Every third-party module a chapter (or the plotting module it uses) imports is a runtime dependency
    or in the ``notebooks`` extra, and that extra holds no book toolchain."""
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    names = lambda reqs: {r.split(">")[0].split("=")[0].split("<")[0].split("[")[0].strip() for r in reqs}
    notebooks = names(project["optional-dependencies"]["notebooks"])
    runtime = names(project["dependencies"])
    assert not notebooks & {"jupyter-book", "sphinx", "sphinxcontrib-bibtex", "nbval", "pytest"}
    modules = _imported_modules((ROOT / "taylorlib" / "plotting.py").read_text())
    for nb in CHAPTERS:
        cells = json.loads(nb.read_text(encoding="utf-8"))["cells"]
        for c in cells[1:]:
            if c["cell_type"] == "code":
                src = "\n".join(
                    line
                    for line in "".join(c["source"]).splitlines()
                    if not line.lstrip().startswith(("%", "!"))
                )
                modules |= _imported_modules(src)
    third_party = {
        m for m in modules if m not in sys.stdlib_module_names and m not in {"taylorlib", "__future__"}
    }
    module_to_dist = {"jax": "jax", "numpy": "numpy", "optax": "optax", "matplotlib": "matplotlib"}
    module_to_dist |= {"seaborn": "seaborn", "jaxtyping": "jaxtyping", "tqdm": "tqdm"}
    for m in sorted(third_party):
        assert m in module_to_dist, f"chapters import {m!r}: add it to the notebooks extra (and this map)"
        assert module_to_dist[m] in runtime | notebooks, f"{m!r} is neither a dependency nor in [notebooks]"


def test_the_colab_stack_agrees_with_constraints():
    pins = {}
    for line in (ROOT / "constraints.txt").read_text().splitlines():
        if "==" in line:
            name, version = line.split("==")
            pins[name.lower().replace("_", "-")] = version
    stack = [ln for ln in colab.STACK_FILE.read_text().splitlines() if ln and not ln.startswith("#")]
    names = set()
    for line in stack:
        name, version = line.split("==")
        names.add(name)
        if name in pins:
            assert pins[name] == version, f"{name}: colab_stack.txt {version} vs constraints.txt {pins[name]}"
    assert {"jax", "numpy", "matplotlib", "seaborn", "scikit-learn", "ipykernel", "nbclient"} <= names
    assert "taylorlib" not in names, "the stack is Colab's: taylorlib comes from the cell"
