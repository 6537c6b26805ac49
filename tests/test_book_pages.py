"""The non-chapter pages: the landing page opens with its figure, the performance page's summary is the latest
benchmark run, figures exist and carry alt text, and the bibliography and citations use one style."""

from __future__ import annotations

import json
import re
import sys
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tools"))
sys.path.insert(0, str(ROOT / "tools" / "sphinxext"))
import figures  # noqa: E402


def _figures(page: str) -> list[tuple[str, str]]:
    """(path, alt) of every ``{figure}`` directive of a MyST page."""
    return re.findall(r"```\{figure\} (\S+)\n(?::[^\n]*\n)*?:alt: ([^\n]+)\n", page)


def test_the_landing_page_opens_with_a_figure_and_a_short_paragraph():
    page = (ROOT / "book" / "index.md").read_text()
    body = page.split("\n# ", 1)[1].split("\n", 1)[1].lstrip()
    assert body.startswith("```{figure} figures/taylor_picture.png"), (
        "the first thing under the title is a figure"
    )
    after = body.split("```\n", 2)[-1].lstrip() if body.count("```") >= 2 else ""
    first_paragraph = after.split("\n\n", 1)[0]
    assert 0 < len(first_paragraph.split()) <= 70, "a short first paragraph follows the figure"
    toc = yaml.safe_load((ROOT / "_toc.yml").read_text())
    for ch in toc["chapters"]:
        stem = Path(ch["file"]).name
        if stem[:2].isdigit():
            assert f"`{stem}.ipynb`" in page, f"the chapter list misses {stem}"


def test_every_page_figure_exists_is_small_and_has_alt_text():
    for name in ("index.md", "performance.md"):
        page = (ROOT / "book" / name).read_text()
        figs = _figures(page)
        assert figs, f"{name} has no figure"
        for path, alt in figs:
            f = ROOT / "book" / path
            assert f.suffix == ".png", f"{name}: {path} is not a PNG"
            assert f.exists(), f"{name}: {path} missing (run make figures)"
            assert f.stat().st_size < 300_000, f"{path} is larger than 300 kB"
            assert len(alt.split()) >= 8, f"{name}: the alt text of {path} does not say what it shows"


def test_the_performance_summary_is_the_latest_run():
    page = (ROOT / "book" / "performance.md").read_text()
    results = json.loads(figures.RESULTS.read_text())
    assert figures.performance_summary(results) in page, "run `python tools/figures.py --table` and paste it"
    assert (
        page.index("## Summary")
        < page.index("```{figure} figures/performance.png")
        < page.index(":::{dropdown}")
    )
    rows = figures.performance_rows(results)
    assert len(rows) >= 10
    assert any(not r["met"] for r in rows)
    assert any(r["met"] for r in rows)
    for r in rows:
        assert (r["margin"] > 1) == r["met"], f"{r['ratio']}: margin and verdict disagree"


def test_the_notes_are_folded():
    page = (ROOT / "book" / "performance.md").read_text()
    notes = page.split("## Measurement notes", 1)[1]
    assert notes.count(":::{dropdown}") >= 4
    assert not re.search(r"^#{1,6} ", notes, re.M), "no headings inside the folded notes"


def test_author_year_labels():
    import taylorbook
    from pybtex.database import parse_file

    bib = parse_file(str(ROOT / "book" / "references.bib"))
    labels = {k: taylorbook.author_year_label(e) for k, e in bib.entries.items()}
    assert labels["bai2020beyond"] == "Bai and Lee, 2020"
    assert labels["jacot2018neural"] == "Jacot et al., 2018"
    assert labels["williams1997computing"] == "Williams, 1997"
    style = taylorbook.AuthorYearLabelStyle()
    twins = [bib.entries["bai2020beyond"], bib.entries["bai2020beyond"]]
    assert list(style.format_labels(twins)) == ["Bai and Lee, 2020a", "Bai and Lee, 2020b"]


def test_config_uses_one_citation_style_and_offline_mathjax():
    cfg = yaml.safe_load((ROOT / "_config.yml").read_text())
    conf = cfg["sphinx"]["config"]
    assert conf["bibtex_reference_style"] == "author_year"
    assert conf["bibtex_default_style"] == "authoryear"
    assert cfg["sphinx"]["local_extensions"] == {"taylorbook": "tools/sphinxext"}
    import taylorbook

    es5 = taylorbook.mathjax_es5_dir()
    assert es5 is not None
    assert (es5 / taylorbook.MATHJAX_SCRIPT).stat().st_size > 100_000


def test_docstring_clean_up_for_the_api_page():
    import taylorbook

    lines = [
        "Alias for field number 0",
        ":vartype fn: jax.jaxlib._jax.Array",
        "keep taylorlib._second_order.KernelEstimate",
    ]
    taylorbook.clean_docstring_lines(lines, taylorbook.public_type_map())
    assert lines == [":vartype fn: jax.Array", "keep taylorlib.quadratic.KernelEstimate"]


def test_public_functions_return_public_types():
    """A class a public function returns (by annotation) is itself public, so the API page can name it."""
    import inspect
    import typing

    import taylorlib as tl

    public = {
        getattr(getattr(tl, m), n)
        for m in tl.__all__
        if m != "__version__"
        for n in getattr(tl, m).__all__
        if inspect.isclass(getattr(getattr(tl, m), n))
    }

    def classes(tp):
        yield tp
        for arg in typing.get_args(tp):
            yield from classes(arg)

    for m in tl.__all__:
        if m == "__version__":
            continue
        for n in getattr(tl, m).__all__:
            fn = getattr(getattr(tl, m), n)
            if not inspect.isfunction(fn):
                continue
            try:
                ret = typing.get_type_hints(fn).get("return")
            except Exception:  # jaxtyping strings etc.: nothing to learn here
                continue
            for c in classes(ret):
                if inspect.isclass(c) and c.__module__.startswith("taylorlib"):
                    assert c in public, f"tl.{m}.{n} returns {c.__qualname__}, which is not public"
