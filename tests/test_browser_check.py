"""tools/browser_check.py finds what it is meant to find.

The static parts (raw TeX, private names, links, citation labels) run in ``make unit``. The tests marked
``browser`` open small pages, each with one planted fault, in headless chromium; ``make browser-check`` runs
them before checking the book, so a check that cannot fail does not pass silently.
"""

from __future__ import annotations

import shutil
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tools"))
sys.path.insert(0, str(ROOT / "tools" / "sphinxext"))
import browser_check as bc  # noqa: E402


@pytest.mark.parametrize(
    "text",
    [
        "the map $x \\mapsto x^2$ is",
        "display $$f(x)$$ here",
        "inline \\(a+b\\)",
        "a \\frac{1}{2} half",
        "\\begin{align} x \\end{align}",
    ],
)
def test_raw_tex_is_found(text):
    assert bc.raw_tex_snippets(f"Some prose, then {text} and more prose.")


@pytest.mark.parametrize("text", ["It costs $5 and $10.", "a 10 $ fee", "C:\\ path", "price: $ 3"])
def test_prose_without_tex_is_clean(text):
    assert bc.raw_tex_snippets(text) == []


def test_text_problems_name_aliases_and_private_paths():
    probs = bc.text_problems(
        "fn ( jax.jaxlib._jax.Array ) Alias for field number 0 taylorlib._second_order.Thing"
    )
    assert any("Alias for field number" in p for p in probs)
    assert any("jax.jaxlib._jax.Array" in p for p in probs)
    assert any("taylorlib._second_order.Thing" in p for p in probs)
    assert bc.text_problems("taylorlib.higher_order.CouplingError and jax.Array, a private_name here") == []


def _write(root: Path, name: str, body: str, head: str = "") -> Path:
    f = root / name
    f.parent.mkdir(parents=True, exist_ok=True)
    f.write_text(f"<!doctype html><html><head><meta charset='utf-8'>{head}</head><body>{body}</body></html>")
    return f


def test_broken_links_and_images(tmp_path):
    _write(tmp_path, "b.html", '<h2 id="there">There</h2>')
    page = _write(
        tmp_path,
        "a.html",
        '<p id="here"><a href="b.html#there">ok</a> <a href="#here">ok</a> <a href="https://x.org/y">ext</a>'
        '<a href="b.html#nowhere">bad anchor</a> <a href="c.html">bad file</a> <img src="missing.png"></p>',
    )
    probs = bc.broken_links(tmp_path, page)
    assert len(probs) == 3, probs
    assert any("#nowhere" in p for p in probs)
    assert any("c.html" in p for p in probs)
    assert any("image" in p and "missing.png" in p for p in probs)


def test_citation_text_must_match_the_bibliography_label(tmp_path):
    _write(
        tmp_path,
        "bibliography.html",
        '<div class="citation" id="id1"><span class="label">[Jacot <em>et al.</em>, 2018]</span>J...</div>'
        '<div class="citation" id="id2"><span class="label">[JGH18]</span>J...</div>',
    )
    good = _write(
        tmp_path,
        "a.html",
        '<a class="reference internal" href="bibliography.html#id1">Jacot <em>et al.</em>, 2018</a>',
    )
    bad = _write(
        tmp_path,
        "b.html",
        '<a class="reference internal" href="bibliography.html#id2">Jacot <em>et al.</em>, 2018</a>',
    )
    assert bc.citation_mismatches(tmp_path, good) == []
    assert bc.citation_mismatches(tmp_path, bad) == [
        "citation style: in-text 'Jacot et al., 2018' vs bibliography label 'JGH18'"
    ]


def test_toc_pages_follow_the_toc():
    pages = bc.toc_pages()
    assert pages[0] == "book/index"
    assert "book/bibliography" in pages
    assert len(pages) == len(set(pages))


# ------------------------------------------------------------------------------------------ in the browser
LAYOUT = "<style>body{{margin:0}} main{{width:600px;margin-left:200px}}</style><main>{}</main>"
CLEAN = "<section id='s'><h1>Title</h1><p>Prose with no TeX at all.</p></section>"
FAULTS = {
    "clean": (CLEAN, None),
    "raw_tex": ("<section id='s'><p>The loss $\\frac{1}{2}x^2$ here.</p></section>", "raw TeX"),
    "sticks_out": (
        "<section id='s'><div style='width:900px'>wide</div></section>",
        "sticks out of the main column",
    ),
    "scrolls": (
        "<section id='s'><div class='cell_output'><pre style='overflow-x:auto'>"
        + "x" * 400
        + "</pre></div></section>",
        "horizontal scroll: printed output",
    ),
    "clipped": (
        "<section id='s'><div style='overflow:hidden'><table><tr><td style='min-width:900px'>t</td></tr></table>"
        "</div></section>",
        "cut off: table",
    ),
    "console": ("<script>throw new Error('planted')</script>" + CLEAN, "console error"),
    "image": (CLEAN + "<img src='nothing-here.png' alt='x'>", "broken image"),
    "external": (CLEAN + "<img src='http://localhost:9/x.png' alt='x'>", "loads a resource from outside"),
    "search": (
        "<div class='bd-header'><button class='search-button-field'>S</button></div>"
        "<div class='bd-sidebar-primary'><button class='search-button-field'>S</button></div>" + CLEAN,
        "search fields",
    ),
    "narrow_code": (
        "<section id='s'><div class='cell_input'><div class='highlight'><pre style='width:300px'>x = 1</pre>"
        "</div></div></section>",
        "characters per line",
    ),
    "no_mathjax": (
        "<section id='s'><p><span class='math'>\\(x\\)</span></p></section>",
        "MathJax did not load",
    ),
}


def _mathjax_pages(root: Path) -> dict[str, str]:
    """Pages that load the book's own MathJax (from the book extra): one valid, one with a TeX error."""
    import taylorbook

    es5 = taylorbook.mathjax_es5_dir()
    if es5 is None:
        return {}
    shutil.copytree(es5, root / "mathjax")
    head = "<script defer src='mathjax/tex-svg.js'></script>"
    pages = {
        "mathjax_ok": (head, "<section id='s'><p>Inline \\(x^2\\) and</p><p>\\[\\sum_i a_i\\]</p></section>"),
        "mathjax_error": (head, "<section id='s'><p>Broken \\(x^2^3\\)</p></section>"),
        "mathjax_wide": (
            head + "<style>mjx-container[display='true']{overflow-x:auto}</style>",
            "<section id='s'><p>\\["
            + " + ".join(f"x_{{{i}}}^{{2}}" for i in range(60))
            + "\\]</p></section>",
        ),
    }
    for name, (h, body) in pages.items():
        _write(root, f"{name}.html", LAYOUT.format(body), head=h)
    return {
        "mathjax_ok": None,
        "mathjax_error": "MathJax error",
        "mathjax_wide": "horizontal scroll: display equation",
    }


@pytest.mark.browser
def test_every_planted_fault_is_reported_and_nothing_else(tmp_path):
    if not (Path(bc.CHROMIUM).exists() and Path(bc.CHROMEDRIVER).exists()):
        pytest.fail("chromium and chromedriver are needed (apt-get install chromium chromium-driver)")
    expected = {}
    for name, (body, fault) in FAULTS.items():
        _write(tmp_path / "html", f"{name}.html", LAYOUT.format(body))
        expected[name] = fault
    expected |= _mathjax_pages(tmp_path / "html")
    assert "mathjax_ok" in expected, "MathJax from the book extra is not installed"
    reports = {r.page: r for r in bc.run(tmp_path / "html", tmp_path / "out", sorted(expected))}
    for name, fault in expected.items():
        probs = reports[name].problems
        if fault is None:
            assert probs == [], f"{name}: {probs}"
        else:
            assert any(fault in p for p in probs), f"{name}: expected {fault!r}, got {probs}"
        assert (tmp_path / "out" / f"{name}.png").stat().st_size > 1000, "no screenshot"
    allowed = bc.run(tmp_path / "html", tmp_path / "out2", ["scrolls"], allow_scroll=True)[0]
    assert allowed.problems == []
    assert any("horizontal scroll" in w for w in allowed.warnings)
