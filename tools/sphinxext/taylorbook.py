"""Sphinx extension for the taylorlib book (loaded through ``sphinx.local_extensions`` in ``_config.yml``).

- **MathJax offline.** MathJax 3 is served from the book's own ``_static/mathjax/`` folder, copied from the
  ``django-static-mathjax`` package (a PyPI package shipping MathJax 3's ``es5`` bundle, in the ``book``
  extra), so a local build renders math without internet. The SVG output (``tex-svg.js``) needs no web fonts,
  so math also renders from ``file://``. ``TAYLORLIB_MATHJAX=cdn`` keeps Sphinx's default (a CDN URL) instead.
- **Author–year citations everywhere.** A pybtex label style ``authoryear`` labels bibliography entries
  "Jacot et al., 2018" / "Bai and Lee, 2020", the same text that ``bibtex_reference_style: author_year`` puts
  in the chapters; the formatting style ``authoryear`` uses it and sorts by author, year, title.
- **API page.** NamedTuple fields lose their "Alias for field number N" docstrings, and types are shown by
  their public names (``jax.Array``, not ``jaxlib._jax.Array``; ``taylorlib.quadratic.KernelEstimate``, not
  ``taylorlib._second_order.KernelEstimate``).
- **Each script once.** Jupyter Book registers some inline scripts twice (``const THEBE_JS_URL`` then throws
  "already been declared" in the console); duplicates are dropped from every page.
"""

from __future__ import annotations

import functools
import os
import re
from pathlib import Path

from pybtex.plugin import register_plugin
from pybtex.style.formatting.unsrt import Style as UnsrtStyle
from pybtex.style.labels import BaseLabelStyle

MATHJAX_SCRIPT = "tex-svg.js"
ALIAS_FIELD = re.compile(r"^\s*Alias for field number \d+\s*$")
#: Private spellings of public types -> public names (applied to docstrings after napoleon).
PUBLIC_TYPE_NAMES = [(re.compile(r"\b(?:jax\.)?jaxlib\._jax\.(Array|ArrayImpl)\b"), r"jax.Array")]


# ---------------------------------------------------------------------------------------------- citations
def author_year_label(entry) -> str:
    """``"Jacot et al., 2018"``: last names (two spelled out, three or more as "First et al.") and year."""
    persons = entry.persons.get("author") or entry.persons.get("editor") or []
    names = [" ".join(p.prelast_names + p.last_names) for p in persons]
    names = [re.sub(r"[{}]", "", n) for n in names]
    if not names:
        who = entry.fields.get("title", entry.key)
    elif len(names) == 1:
        who = names[0]
    elif len(names) == 2:
        who = f"{names[0]} and {names[1]}"
    else:
        who = f"{names[0]} et al."
    return f"{who}, {entry.fields.get('year', 'n.d.')}"


class AuthorYearLabelStyle(BaseLabelStyle):
    """Author–year labels; equal labels get a, b, ... appended to the year."""

    def format_labels(self, sorted_entries):
        entries = list(sorted_entries)
        labels = [author_year_label(e) for e in entries]
        counts = {lab: labels.count(lab) for lab in labels}
        seen: dict[str, int] = {}
        for lab in labels:
            if counts[lab] > 1:
                seen[lab] = seen.get(lab, 0) + 1
                yield lab + "abcdefghijklmnopqrstuvwxyz"[seen[lab] - 1]
            else:
                yield lab


class AuthorYearStyle(UnsrtStyle):
    """The ``unsrt`` entry formatting, author–year labels, sorted by author, year and title."""

    default_label_style = "authoryear"
    default_sorting_style = "author_year_title"


register_plugin("pybtex.style.labels", "authoryear", AuthorYearLabelStyle)
register_plugin("pybtex.style.formatting", "authoryear", AuthorYearStyle)


# ------------------------------------------------------------------------------------------------- api page
def public_type_map() -> list[tuple[re.Pattern, str]]:
    """Regex substitutions from private module paths of public taylorlib names to their public paths."""
    import taylorlib as tl

    subs = list(PUBLIC_TYPE_NAMES)
    for mod in tl.__all__:
        if mod == "__version__":
            continue
        module = getattr(tl, mod)
        for name in module.__all__:
            home = getattr(getattr(module, name), "__module__", None)
            if isinstance(home, str) and home.startswith("taylorlib._"):
                subs.append((re.compile(rf"\b{re.escape(home)}\.{name}\b"), f"taylorlib.{mod}.{name}"))
    return subs


def clean_docstring_lines(lines: list[str], subs: list[tuple[re.Pattern, str]]) -> None:
    """In place: drop "Alias for field number N" lines and spell types by their public names."""
    lines[:] = [line for line in lines if not ALIAS_FIELD.match(line)]
    for i, line in enumerate(lines):
        for pattern, public in subs:
            line = pattern.sub(public, line)
        lines[i] = line


@functools.cache
def _subs() -> tuple[tuple[re.Pattern, str], ...]:
    return tuple(public_type_map())


def _process_docstring(app, what, name, obj, options, lines):
    clean_docstring_lines(lines, list(_subs()))


def _skip_alias_fields(app, what, name, obj, skip, options):
    doc = getattr(obj, "__doc__", None)
    if isinstance(doc, str) and ALIAS_FIELD.match(doc):
        return True
    return None


def _process_signature(app, what, name, obj, options, signature, return_annotation):
    subs = _subs()
    out = []
    for text in (signature, return_annotation):
        if text:
            for pattern, public in subs:
                text = pattern.sub(public, text)
        out.append(text)
    return tuple(out)


# -------------------------------------------------------------------------------------------------- mathjax
def mathjax_es5_dir() -> Path | None:
    """The ``es5`` folder of MathJax 3 shipped by ``django-static-mathjax`` (None if not installed)."""
    try:
        import mathjax
    except ImportError:
        return None
    base = Path(mathjax.__file__).resolve().parent / "static" / "mathjax" / "es5"
    return base if (base / MATHJAX_SCRIPT).exists() else None


def _config_inited(app, config):
    if os.environ.get("TAYLORLIB_MATHJAX", "local") == "cdn":
        return
    es5 = mathjax_es5_dir()
    if es5 is None:
        from sphinx.util import logging

        logging.getLogger(__name__).warning(
            "MathJax 3 for offline reading is not installed (pip install django-static-mathjax, in the book "
            "extra); set TAYLORLIB_MATHJAX=cdn to load it from the network instead"
        )
        return
    config.mathjax_path = f"mathjax/{MATHJAX_SCRIPT}"
    app.taylorbook_mathjax = es5


def _copy_mathjax(app, exc):
    es5 = getattr(app, "taylorbook_mathjax", None)
    if exc is None and es5 is not None and app.builder.format == "html":
        from sphinx.util.fileutil import copy_asset

        copy_asset(str(es5), str(Path(app.outdir) / "_static" / "mathjax"))


# -------------------------------------------------------------------------------------------- page scripts
def dedupe_scripts(scripts: list) -> list:
    """Scripts without repeats (same file, or same inline body), first occurrence kept."""
    seen, out = set(), []
    for js in scripts:
        filename = getattr(js, "filename", js) or ""  # None and "" both mean an inline script
        key = (os.fspath(filename), tuple(sorted(getattr(js, "attributes", {}).items())))
        if key not in seen:
            seen.add(key)
            out.append(js)
    return out


def _page_context(app, pagename, templatename, context, doctree):
    if "script_files" in context:
        context["script_files"] = dedupe_scripts(context["script_files"])


def setup(app):
    app.connect("config-inited", _config_inited)
    app.connect("build-finished", _copy_mathjax)
    app.connect("autodoc-process-docstring", _process_docstring, priority=600)  # after napoleon (500)
    app.connect("autodoc-skip-member", _skip_alias_fields)
    app.connect("autodoc-process-signature", _process_signature)
    app.connect("html-page-context", _page_context, priority=1000)
    return {"version": "1.0", "parallel_read_safe": True, "parallel_write_safe": True}
