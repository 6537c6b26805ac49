"""Open every page of the built book in headless Chromium and fail on what a reader would see as broken.

Usage: ``python tools/browser_check.py [--html _build/html] [--out _build/browser-check] [--allow-scroll]``
(``make browser-check`` builds the book first). Checked on every page of ``_toc.yml``, at a 1280 x 900 window,
served from a loopback HTTP server (as ``make serve`` serves them to a reader offline):

- raw TeX in the rendered text (``$...$``, ``\\(``, ``\\[``, ``\\begin{``, ``\\frac``, ...) outside code and
  outputs, and pages whose math MathJax never typeset;
- MathJax errors (``mjx-merror``);
- console errors (script errors, failed loads) reported by the browser;
- broken images (not loaded, or zero size) and broken internal links (missing file or missing ``#anchor``);
- horizontal overflow at 1280 px: the page scrolls sideways, an element sticks out of the main column, content
  is clipped, or a display equation / printed output / table / code cell needs a horizontal scroll bar inside
  the column (``--allow-scroll`` reports the last kind without failing);
- more than one search field in the page header.

Screenshots of every page's first screen go to ``OUT/<page>.png`` and a JSON report to ``OUT/report.json``.
The browser is Debian's ``chromium`` driven through ``chromedriver`` (packages ``chromium`` and
``chromium-driver``); nothing is downloaded.
"""

from __future__ import annotations

import argparse
import contextlib
import functools
import http.server
import json
import re
import sys
import tempfile
import threading
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from urllib.parse import unquote, urlsplit

ROOT = Path(__file__).resolve().parents[1]
WIDTH, HEIGHT = 1280, 900
CHROMIUM = "/usr/bin/chromium"
CHROMEDRIVER = "/usr/bin/chromedriver"
CHROMIUM_FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--hide-scrollbars",
    f"--window-size={WIDTH},{HEIGHT}",
]

#: Raw TeX that survived into the rendered text: display/inline delimiters and TeX control words.
RAW_TEX = re.compile(
    r"\$\$|\\\(|\\\)|\\\[|\\\]|\\(?:begin|end)\{|\\[A-Za-z]{2,}|(?<![\w$])\$(?=[^\s$])[^$\n]{1,200}?(?<=[^\s$])\$"
)


@dataclass
class PageReport:
    page: str
    problems: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    seconds: float = 0.0


def raw_tex_snippets(text: str, limit: int = 5) -> list[str]:
    """Snippets of ``text`` around raw TeX (at most ``limit``)."""
    out = []
    for m in RAW_TEX.finditer(text):
        lo, hi = max(0, m.start() - 30), min(len(text), m.end() + 30)
        out.append(" ".join(text[lo:hi].split()))
        if len(out) >= limit:
            break
    return out


def toc_pages(root: Path = ROOT) -> list[str]:
    """The book's pages in ``_toc.yml`` order, as paths relative to the HTML root without suffix."""
    import yaml

    toc = yaml.safe_load((root / "_toc.yml").read_text())
    pages = [toc["root"]]
    for part in [toc] + list(toc.get("parts", [])):
        pages += [c["file"] for c in part.get("chapters", [])]
    return pages


def _anchor_ids(html_file: Path, cache: dict[Path, set[str]]) -> set[str]:
    from bs4 import BeautifulSoup

    if html_file not in cache:
        soup = BeautifulSoup(html_file.read_text(encoding="utf-8"), "html.parser")
        ids = {t["id"] for t in soup.find_all(id=True)}
        ids |= {t["name"] for t in soup.find_all("a", attrs={"name": True})}
        cache[html_file] = ids
    return cache[html_file]


def broken_links(html_root: Path, page_file: Path, cache: dict[Path, set[str]] | None = None) -> list[str]:
    """Internal links and image sources of one HTML page that point at a missing file or ``#anchor``."""
    from bs4 import BeautifulSoup

    cache = {} if cache is None else cache
    soup = BeautifulSoup(page_file.read_text(encoding="utf-8"), "html.parser")
    problems = []
    refs = [("link", a.get("href")) for a in soup.find_all("a", href=True)]
    refs += [("image", img.get("src")) for img in soup.find_all("img", src=True)]
    for kind, ref in refs:
        parts = urlsplit(ref)
        if parts.scheme or parts.netloc or ref.startswith(("mailto:", "javascript:")):
            continue  # external: not checked offline
        target = page_file if not parts.path else (page_file.parent / unquote(parts.path)).resolve()
        if target.is_dir():
            target = target / "index.html"
        if not target.exists():
            problems.append(f"broken {kind}: {ref} (no file {target.relative_to(html_root.resolve())})")
            continue
        frag = unquote(parts.fragment)
        if kind == "link" and frag and target.suffix == ".html" and frag not in _anchor_ids(target, cache):
            problems.append(f"broken link: {ref} (no anchor #{frag})")
    return problems


# JavaScript run in the page. Each returns plain JSON.
JS_WAIT_MATHJAX = """
const done = arguments[arguments.length - 1];
const t0 = Date.now();
const hasMath = () => document.querySelector(".math, .tex2jax_process, mjx-container") !== null;
(function wait() {
  const mj = window.MathJax;
  if (mj && mj.startup && mj.startup.promise) {
    mj.startup.promise.then(() => done("typeset")).catch((e) => done("error: " + e));
  } else if (!document.querySelector("script[src*='mathjax' i]")) {
    done(hasMath() ? "not loaded" : "no math");
  } else if (Date.now() - t0 > 15000) {
    done(hasMath() ? "not loaded" : "no math");
  } else {
    setTimeout(wait, 50);
  }
})();
"""

JS_WAIT_IMAGES = """
const done = arguments[arguments.length - 1];
const imgs = Array.from(document.images);
imgs.forEach((img) => { img.loading = "eager"; });
Promise.all(imgs.map((img) => img.complete ? null : new Promise((r) => {
  img.addEventListener("load", r); img.addEventListener("error", r); setTimeout(r, 5000);
}))).then(() => done(imgs.filter((img) => !(img.complete && img.naturalWidth > 0))
  .map((img) => img.getAttribute("src"))));
"""

JS_INSPECT = r"""
const main = document.querySelector("article.bd-article") || document.querySelector("main") || document.body;
const col = main.getBoundingClientRect();
const out = {page_overflow: document.documentElement.scrollWidth - document.documentElement.clientWidth,
             main_width: Math.round(col.width), overflow: [], scroll: [], clipped: [], merror: [], text: "",
             search_fields: 0, external: [], code_chars: null};
const kind = (el) => {
  if (el.closest("mjx-container[display='true']")) return "display equation";
  if (el.closest("mjx-container")) return "inline math";
  if (el.closest(".cell_output, .output")) return el.closest("table") ? "printed table" : "printed output";
  if (el.closest(".cell_input, .cell .highlight")) return "code cell";
  if (el.closest(".highlight, pre")) return "code block";
  if (el.closest("table")) return "table";
  if (el.closest("img, figure")) return "figure";
  return el.tagName.toLowerCase();
};
const describe = (el) => {
  const sec = el.closest("section[id]");
  const mj = el.closest("mjx-container");
  const src = mj ? (mj.querySelector("mjx-assistive-mml, title") || mj) : el;
  const text = (src.textContent || "").replace(/\s+/g, " ").trim().slice(0, 60);
  return `${kind(el)} in #${sec ? sec.id : "?"} ("${text}")`;
};
const clipper = (el) => {
  for (let a = el.parentElement; a && a !== main && a !== document.body; a = a.parentElement) {
    if (getComputedStyle(a).overflowX !== "visible") return a;
  }
  return null;
};
if (getComputedStyle(main).overflowX !== "visible" && main.scrollWidth > main.clientWidth + 1) {
  out.overflow.push(`the main column's content is ${main.scrollWidth - main.clientWidth}px wider than the column`);
}
const seen = new Set();
const boxed = (c, el) => {  // c scrolls or clips el's content sideways
  seen.add(c);
  const msg = `${describe(el)}: ${Math.round(c.scrollWidth - c.clientWidth)}px wider than its ` +
    `${Math.round(c.clientWidth)}px box`;
  const ox = getComputedStyle(c).overflowX;
  (ox === "auto" || ox === "scroll" ? out.scroll : out.clipped).push(msg);
};
for (const el of main.querySelectorAll("*")) {
  if (el.parentElement && el.parentElement.closest("mjx-container, svg, mjx-assistive-mml")) continue;
  if (el.closest(".headerlink, .visually-hidden, .sr-only, mjx-assistive-mml")) continue;
  const r = el.getBoundingClientRect();
  if (r.width === 0 || r.height === 0) continue;
  // An element whose own text is wider than it (a long line in a pre). Not for boxes holding math: MathJax's
  // hidden assistive MathML inflates scrollWidth; equations are measured below by their SVG.
  if (!seen.has(el) && getComputedStyle(el).overflowX !== "visible" && el.scrollWidth > el.clientWidth + 2
      && !el.closest("span.math, mjx-container") && !el.querySelector("mjx-container")) {
    const right = el.getBoundingClientRect().right + 1;  // name the widest thing inside, if any
    const inner = Array.from(el.querySelectorAll("*")).find((d) => d.getBoundingClientRect().right > right);
    boxed(el, inner || el);
  }
  const c = clipper(el);
  const box = c ? c.getBoundingClientRect() : col;
  const excess = Math.round(r.right - box.right);
  if (excess <= 1) continue;
  if (!c) {
    out.overflow.push(`${describe(el)} sticks out of the main column by ${excess}px`);
    continue;
  }
  if (!seen.has(c)) boxed(c, el);
}
for (const c of main.querySelectorAll("mjx-container[display='true']")) {  // display equations, by their SVG
  const svg = c.querySelector(":scope > svg");
  if (!svg || seen.has(c)) continue;
  const excess = Math.round(svg.getBoundingClientRect().width - c.clientWidth);
  if (excess <= 1) continue;
  seen.add(c);
  const ox = getComputedStyle(c).overflowX;
  const msg = `${describe(c)}: ${excess}px wider than its ${Math.round(c.clientWidth)}px box`;
  (ox === "auto" || ox === "scroll" ? out.scroll : ox === "visible" ? out.overflow : out.clipped).push(msg);
}
out.merror = Array.from(document.querySelectorAll("mjx-merror, [data-mjx-error]"))
  .map((e) => (e.getAttribute("data-mjx-error") || e.textContent).slice(0, 120));
const clone = main.cloneNode(true);
clone.querySelectorAll("pre, code, script, style, textarea, mjx-container, .highlight, .cell_output, .output, "
  + ".headerlink").forEach((e) => e.remove());
out.text = clone.textContent;
const header = document.querySelector(".bd-header, header") || document.body;
const searches = Array.from(document.querySelectorAll(
  ".bd-header .search-button-field, .bd-header form.bd-search, .bd-sidebar-primary .search-button-field, "
  + ".bd-sidebar-primary form.bd-search"));
out.search_fields = searches.filter((e) => e.offsetParent !== null).length;
out.external = performance.getEntriesByType("resource").map((e) => e.name)
  .filter((n) => !n.startsWith(location.origin) && !n.startsWith("data:"));
const pre = main.querySelector(".cell_input pre");  // notebook code cells
if (pre) {
  const probe = document.createElement("span");
  probe.textContent = "0".repeat(100);
  pre.appendChild(probe);
  const charW = probe.getBoundingClientRect().width / 100;
  probe.remove();
  const st = getComputedStyle(pre);
  const inner = pre.clientWidth - parseFloat(st.paddingLeft) - parseFloat(st.paddingRight);
  out.code_chars = Math.floor(inner / charW);
}
return out;
"""


def _driver(user_data_dir: str):
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for flag in CHROMIUM_FLAGS + [f"--user-data-dir={user_data_dir}"]:
        options.add_argument(flag)
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    driver = webdriver.Chrome(options=options, service=Service(executable_path=CHROMEDRIVER))
    driver.set_window_size(WIDTH, HEIGHT)
    driver.set_script_timeout(30)
    driver.set_page_load_timeout(60)
    return driver


CODE_COLUMNS = (
    88  #: chapter code lines are at most this long (CONTRIBUTING.md); a code cell must show them whole
)
PRIVATE_NAME = re.compile(r"\b[A-Za-z]\w*(?:\.\w+)*\._[a-z]\w*\.\w+")


def text_problems(text: str) -> list[str]:
    """What is wrong with the rendered prose of a page (code and outputs removed): raw TeX, private names."""
    problems = [f"raw TeX in the rendered text: ...{snip}..." for snip in raw_tex_snippets(text)]
    if "Alias for field number" in text:
        problems.append('"Alias for field number N" entries (NamedTuple fields) are shown')
    for name in sorted(set(PRIVATE_NAME.findall(text)))[:5]:
        problems.append(f"a private module path is shown: {name}")
    return problems


def check_page(driver, url: str, name: str, screenshot: Path | None, allow_scroll: bool) -> PageReport:
    """Open ``url`` and return what is wrong with it (links are checked separately, without a browser)."""
    rep = PageReport(name)
    t0 = time.perf_counter()
    driver.get_log("browser")  # drop anything left from the previous page
    driver.get(url)
    state = driver.execute_async_script(JS_WAIT_MATHJAX)
    if state == "not loaded":
        rep.problems.append("the page has math but MathJax did not load")
    elif state.startswith("error"):
        rep.problems.append(f"MathJax failed: {state}")
    for src in driver.execute_async_script(JS_WAIT_IMAGES):
        rep.problems.append(f"broken image: {src}")
    time.sleep(0.3)  # late console messages (fonts, deferred scripts)
    info = driver.execute_script(JS_INSPECT)
    for entry in driver.get_log("browser"):
        if entry.get("level") == "SEVERE" and "/favicon.ico " not in entry.get("message", ""):
            rep.problems.append(f"console error: {entry.get('message', '')[:300]}")
    rep.problems += [f"loads a resource from outside the book: {u}" for u in info["external"]]
    rep.problems += text_problems(info["text"])
    rep.problems += [f"MathJax error: {m}" for m in info["merror"]]
    if info["page_overflow"] > 1:
        rep.problems.append(f"the page scrolls sideways by {info['page_overflow']}px at {WIDTH}px")
    rep.problems += info["overflow"]
    rep.problems += [f"cut off: {m}" for m in info["clipped"]]
    for m in info["scroll"]:  # code may scroll; equations, outputs and tables must fit (unless allowed)
        code = m.startswith(("code cell", "code block"))
        (rep.warnings if allow_scroll or code else rep.problems).append(f"horizontal scroll: {m}")
    if info["search_fields"] > 1:
        rep.problems.append(f"{info['search_fields']} search fields on the page (header and sidebar)")
    if info["code_chars"] is not None and info["code_chars"] < CODE_COLUMNS:
        rep.problems.append(
            f"code cells show {info['code_chars']} characters per line, fewer than {CODE_COLUMNS}"
        )
    if screenshot is not None:
        driver.execute_script("window.scrollTo(0, 0)")
        driver.save_screenshot(str(screenshot))
    rep.seconds = round(time.perf_counter() - t0, 2)
    return rep


def citation_mismatches(html_root: Path, page_file: Path) -> list[str]:
    """In-text citations whose text differs from the label of the bibliography entry they link to."""
    from bs4 import BeautifulSoup

    soup = BeautifulSoup(page_file.read_text(encoding="utf-8"), "html.parser")
    problems, labels = [], {}
    for a in soup.select(
        "a.reference.internal[href*='bibliography.html#'], a.reference.internal[href^='#id']"
    ):
        path, _, frag = a["href"].partition("#")
        target = (page_file.parent / path).resolve() if path else page_file
        if target not in labels:
            t = BeautifulSoup(target.read_text(encoding="utf-8"), "html.parser") if target.exists() else None
            labels[target] = {}
            for cit in t.select("div.citation[id], aside.citation[id]") if t else []:
                lab = cit.select_one(".label")
                labels[target][cit["id"]] = " ".join(lab.get_text().split()).strip("[] ") if lab else ""
        if frag in labels[target]:
            text = " ".join(a.get_text().split())
            if text != labels[target][frag]:
                problems.append(
                    f"citation style: in-text '{text}' vs bibliography label '{labels[target][frag]}'"
                )
    return sorted(set(problems))


@contextlib.contextmanager
def serve(root: Path):
    """Serve ``root`` over HTTP on a free loopback port; yields the base URL."""

    class Quiet(http.server.SimpleHTTPRequestHandler):
        def log_message(self, *args):
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), functools.partial(Quiet, directory=str(root)))
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/"
    finally:
        server.shutdown()
        server.server_close()


def run(html_root: Path, out_dir: Path, pages: list[str], allow_scroll: bool = False) -> list[PageReport]:
    """Check ``pages`` (relative paths without ``.html``) under ``html_root``; screenshots go to ``out_dir``."""
    html_root = html_root.resolve()
    out_dir.mkdir(parents=True, exist_ok=True)
    reports = []
    cache: dict[Path, set[str]] = {}
    with tempfile.TemporaryDirectory(prefix="browser-check-profile-") as profile, serve(html_root) as base:
        driver = _driver(profile)
        try:
            for page in pages:
                f = html_root / f"{page}.html"
                if not f.exists():
                    reports.append(PageReport(page, [f"page not built: {f}"]))
                    continue
                shot = out_dir / (Path(page).name + ".png")
                rep = check_page(driver, base + f"{page}.html", page, shot, allow_scroll)
                rep.problems += broken_links(html_root, f, cache)
                rep.problems += citation_mismatches(html_root, f)
                reports.append(rep)
        finally:
            driver.quit()
    return reports


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--html", type=Path, default=ROOT / "_build" / "html")
    ap.add_argument("--out", type=Path, default=ROOT / "_build" / "browser-check")
    ap.add_argument(
        "--allow-scroll", action="store_true", help="report horizontal scroll bars without failing"
    )
    ap.add_argument("pages", nargs="*", help="pages to check (default: every page in _toc.yml)")
    args = ap.parse_args(argv)
    pages = args.pages or toc_pages()
    reports = run(args.html, args.out, pages, args.allow_scroll)
    (args.out / "report.json").write_text(json.dumps([asdict(r) for r in reports], indent=1))
    n_bad = 0
    for r in reports:
        status = "FAIL" if r.problems else "ok"
        print(f"{status:4} {r.page} ({r.seconds:.1f} s)")
        for p in r.problems:
            print(f"     - {p}")
        for w in r.warnings:
            print(f"     ~ {w}")
        n_bad += bool(r.problems)
    print(f"screenshots and report.json in {args.out}")
    print(f"{len(reports) - n_bad} passed, {n_bad} failed")
    return 1 if n_bad else 0


if __name__ == "__main__":
    sys.exit(main())
