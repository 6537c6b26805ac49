"""The chapters' Colab install cell: write it into every chapter, and run every chapter as on a fresh Colab.

The one source of the cell is ``tools/colab_cell.py``; every chapter's first cell (tagged ``remove-cell``) is
that text, and its ``REPO_URL`` is ``repository.url`` of ``_config.yml`` (``tests/test_colab.py`` checks both).

Usage:
    python tools/colab.py cell              # print the cell
    python tools/colab.py write [NB ...]    # write it into the first cell of the chapters (source only; the
                                            # stored outputs and execution counts stay, so nbval still passes)
    python tools/colab.py check [NB ...]    # make colab-check: emulate a fresh Colab runtime per chapter

``check`` builds one virtual environment with only what a fresh Colab runtime has (``tools/colab_stack.txt``:
jax, numpy, matplotlib, seaborn, scikit-learn, and ipykernel/nbclient to execute), once per run. Then, for each
chapter, it starts a fresh runtime on top of it: an empty overlay environment (new packages go there, the
stack stays untouched), an empty home directory, a working folder holding only the notebook, and a stand-in
``google.colab`` module imported at kernel start-up as on Colab. The cell's ``REPO_URL`` is replaced by a
``file://`` URL of a local repository holding a snapshot of this working tree (tracked and untracked,
non-ignored files; the checkout itself is not modified), so the cell clones, installs and finds ``data/``
exactly as on Colab, offline except for PyPI. The notebook then runs top to bottom. Each chapter's time is
reported, and the run fails if any chapter does.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
CELL_FILE = ROOT / "tools" / "colab_cell.py"
STACK_FILE = ROOT / "tools" / "colab_stack.txt"
WORK = ROOT / "_build" / "colab-check"
TAG = "remove-cell"


def cell_source() -> str:
    """The canonical first cell (the text of ``tools/colab_cell.py`` without its final newline)."""
    return CELL_FILE.read_text().rstrip("\n")


def config_url(root: Path = ROOT) -> str:
    """``repository.url`` of ``_config.yml``."""
    import yaml

    return yaml.safe_load((root / "_config.yml").read_text())["repository"]["url"]


def chapters(root: Path = ROOT) -> list[Path]:
    return sorted((root / "book").glob("[0-9]*.ipynb"))


def _lines(text: str) -> list[str]:
    return text.splitlines(keepends=True)


def first_code_cell(nb: dict) -> dict:
    return next(c for c in nb["cells"] if c["cell_type"] == "code")


def is_colab_cell(cell: dict) -> bool:
    return cell["cell_type"] == "code" and "google.colab" in "".join(cell["source"])


def write_cell(nb_path: Path, source: str | None = None) -> bool:
    """Make the first cell of ``nb_path`` the canonical cell; returns whether the file changed.

    Only the cell's source (and its ``remove-cell`` tag) change: outputs, execution count and metadata stay.
    Raises ``ValueError`` if the first cell is not a Colab install cell (then the chapter needs one inserted
    and must be re-executed).
    """
    source = cell_source() if source is None else source
    text = nb_path.read_text(encoding="utf-8")
    nb = json.loads(text)
    first = nb["cells"][0]
    if not is_colab_cell(first):
        raise ValueError(
            f"{nb_path.name}: the first cell is not the Colab install cell; insert one (a code cell tagged "
            f"{TAG!r} with the text of {CELL_FILE.relative_to(ROOT)}) and re-execute the chapter"
        )
    first["source"] = _lines(source)
    tags = first.setdefault("metadata", {}).setdefault("tags", [])
    if TAG not in tags:
        tags.append(TAG)
    new = json.dumps(nb, indent=1, ensure_ascii=False, sort_keys=True) + "\n"
    if new == text:
        return False
    nb_path.write_text(new, encoding="utf-8")
    return True


def replace_url(source: str, url: str, new_url: str) -> str:
    """The cell with its repository URL replaced; the URL must occur exactly once, as a string literal."""
    literal = f'"{url}"'
    if source.count(literal) != 1:
        raise ValueError(f"the Colab cell must contain {literal} exactly once")
    return source.replace(literal, f'"{new_url}"')


# ---------------------------------------------------------------------------------------------- emulation
STANDIN = {
    "__init__.py": '''"""Stand-in for Colab's ``google.colab`` (make colab-check). Imported at kernel start-up, as on Colab,
so ``"google.colab" in sys.modules``; libraries that then import its submodules (JAX's debugger imports
``output``) find no-op versions."""

from . import output  # noqa: F401
''',
    "output.py": '''"""No-op stand-in for ``google.colab.output`` (widgets and tagged outputs need the Colab front end)."""

import contextlib


@contextlib.contextmanager
def use_tags(tags):
    yield


@contextlib.contextmanager
def redirect_to_element(selector):
    yield


def clear(wait=False, output_tags=()):
    pass


def eval_js(script, ignore_result=False, timeout_sec=None):
    raise NotImplementedError("google.colab.output.eval_js needs the Colab front end")
''',
}


def _run(cmd: list[str], log: Path | None = None, **kw) -> subprocess.CompletedProcess:
    """Run ``cmd``; with ``log``, its output goes there and is shown only if it fails."""
    if log is None:
        return subprocess.run(cmd, check=True, **kw)
    with open(log, "a") as f:
        proc = subprocess.run(cmd, stdout=f, stderr=subprocess.STDOUT, **kw)
    if proc.returncode:
        sys.stdout.write(log.read_text()[-5000:])
        raise subprocess.CalledProcessError(proc.returncode, cmd)
    return proc


def snapshot_repository(dest: Path) -> str:
    """A bare repository at ``dest`` whose ``main`` is a snapshot of this working tree; returns its URL."""
    index = dest.parent / "snapshot.index"
    env = dict(os.environ, GIT_INDEX_FILE=str(index))
    git = ["git", "-C", str(ROOT)]
    _run(git + ["read-tree", "HEAD"], env=env)
    _run(git + ["add", "-A"], env=env)
    tree = subprocess.check_output(git + ["write-tree"], env=env, text=True).strip()
    commit = subprocess.check_output(
        git + ["commit-tree", tree, "-p", "HEAD", "-m", "colab-check snapshot of the working tree"],
        env=dict(
            env,
            GIT_AUTHOR_NAME="colab-check",
            GIT_AUTHOR_EMAIL="colab-check@localhost",
            GIT_COMMITTER_NAME="colab-check",
            GIT_COMMITTER_EMAIL="colab-check@localhost",
        ),
        text=True,
    ).strip()
    index.unlink()
    _run(["git", "init", "-q", "--bare", "--initial-branch=main", str(dest)])
    _run(git + ["push", "-q", dest.as_uri(), f"{commit}:refs/heads/main"])
    return dest.as_uri()


def make_stack(venv: Path) -> Path:
    """The Colab stack in a new virtual environment at ``venv``; returns its site-packages."""
    _run([sys.executable, "-m", "venv", str(venv)])
    py = str(venv / "bin" / "python")
    log = venv.parent / "stack-install.log"
    _run([py, "-m", "pip", "install", "-q", "--upgrade", "pip"], log=log)
    _run([py, "-m", "pip", "install", "-q", "-r", str(STACK_FILE)], log=log)
    return Path(
        subprocess.check_output(
            [py, "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"], text=True
        ).strip()
    )


def make_runtime(base: Path, stack_site: Path, where: Path) -> dict[str, Path]:
    """A fresh runtime: overlay venv on the stack, empty home with the stand-in, empty content folder."""
    overlay, home, content, standin = (where / n for n in ("venv", "home", "content", "standin"))
    _run([str(base / "bin" / "python"), "-m", "venv", "--without-pip", str(overlay)])
    py = overlay / "bin" / "python"
    site = Path(
        subprocess.check_output(
            [str(py), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"], text=True
        ).strip()
    )
    # The overlay sees the stack (and the stand-in) after its own site-packages, like Colab's dist-packages.
    (site / "colab_stack.pth").write_text(f"{stack_site}\n{standin}\n")
    (standin / "google" / "colab").mkdir(parents=True)
    for name, text in STANDIN.items():
        (standin / "google" / "colab" / name).write_text(text)
    startup = home / ".ipython" / "profile_default" / "startup"
    startup.mkdir(parents=True)
    (startup / "00-google-colab.py").write_text("import google.colab  # noqa: F401  (as on Colab)\n")
    kernel = home / ".local" / "share" / "jupyter" / "kernels" / "python3"
    kernel.mkdir(parents=True)
    spec = {
        "argv": [str(py), "-m", "ipykernel_launcher", "-f", "{connection_file}"],
        "display_name": "Python 3 (colab-check)",
        "language": "python",
    }
    (kernel / "kernel.json").write_text(json.dumps(spec))
    content.mkdir()
    return {"python": py, "home": home, "content": content}


def runtime_env(home: Path, python: Path) -> dict[str, str]:
    """The kernel's environment: a clean one, with the machine's pip settings (index, certificates)."""
    keep = (
        "PATH",
        "LANG",
        "LC_ALL",
        "TZ",
        "SSL_CERT_FILE",
        "REQUESTS_CA_BUNDLE",
        "http_proxy",
        "https_proxy",
        "HTTP_PROXY",
        "HTTPS_PROXY",
        "no_proxy",
        "NO_PROXY",
        "OPENBLAS_CORETYPE",
        "OPENBLAS_L2_SIZE",
    )
    env = {k: v for k, v in os.environ.items() if k in keep or k.startswith("PIP_")}
    user_pip = [Path.home() / ".config" / "pip" / "pip.conf", Path.home() / ".pip" / "pip.conf"]
    for conf in user_pip:
        if conf.exists() and "PIP_CONFIG_FILE" not in env:
            env["PIP_CONFIG_FILE"] = str(conf)
    env["PIP_CACHE_DIR"] = str(WORK / "pip-cache")  # shared download cache: saves time, changes nothing
    env["HOME"] = str(home)
    env["PATH"] = f"{python.parent}:{env.get('PATH', '/usr/bin:/bin')}"
    env["PYTHONHASHSEED"] = "0"
    return env


def execute(nb_path: Path, timeout: int) -> dict:
    """Run in the runtime's interpreter: execute ``nb_path`` in place; per-cell times from nbclient."""
    import nbformat
    from nbclient import NotebookClient

    nb = nbformat.read(nb_path, as_version=4)
    t0 = time.perf_counter()
    error = None
    try:
        NotebookClient(
            nb,
            timeout=timeout,
            kernel_name="python3",
            record_timing=True,
            resources={"metadata": {"path": str(nb_path.parent)}},
        ).execute()
    except Exception as exc:  # CellExecutionError, timeouts, dead kernels: reported, not raised
        error = f"{type(exc).__name__}: {str(exc)[-1500:]}"
    total = time.perf_counter() - t0
    nbformat.write(nb, nb_path)
    first = nb.cells[0].get("metadata", {}).get("execution", {})
    install = None
    if "iopub.status.busy" in first and "iopub.status.idle" in first:
        from datetime import datetime

        busy, idle = (
            datetime.fromisoformat(first[k].replace("Z", "+00:00"))
            for k in ("iopub.status.busy", "iopub.status.idle")
        )
        install = (idle - busy).total_seconds()
    return {
        "seconds": round(total, 1),
        "install_seconds": None if install is None else round(install, 1),
        "error": error,
    }


def check(notebooks: list[Path], timeout: int = 900, keep: bool = False) -> int:
    url = config_url()
    base, stamp = WORK / "stack", hashlib.sha1(STACK_FILE.read_bytes()).hexdigest()
    reuse = (base / "stamp").exists() and (base / "stamp").read_text() == stamp
    if WORK.exists():  # a new run: every runtime folder goes (the stack stays if its list is unchanged)
        for p in WORK.iterdir():
            if p.name != "pip-cache" and not (reuse and p == base):
                shutil.rmtree(p) if p.is_dir() else p.unlink()
    WORK.mkdir(parents=True, exist_ok=True)
    t0 = time.perf_counter()
    print("== colab-check: snapshot of the working tree as a local repository")
    repo_url = snapshot_repository(WORK / "taylorlib.git")
    if reuse:
        print(f"== colab-check: the Colab stack of the last run ({STACK_FILE.relative_to(ROOT)} unchanged)")
        stack_site = Path((base / "site").read_text())
    else:
        print(
            f"== colab-check: the Colab stack ({STACK_FILE.relative_to(ROOT)}), installed once for all chapters"
        )
        stack_site = make_stack(base)
        (base / "site").write_text(str(stack_site))
        (base / "stamp").write_text(stamp)
    print(f"   stack ready after {time.perf_counter() - t0:.0f} s")
    results = []
    for nb in notebooks:
        where = WORK / nb.stem
        rt = make_runtime(base, stack_site, where)
        data = json.loads(nb.read_text(encoding="utf-8"))
        first = data["cells"][0]
        try:
            first["source"] = _lines(replace_url("".join(first["source"]), url, repo_url))
        except ValueError as err:
            results.append({"chapter": nb.name, "seconds": 0, "install_seconds": None, "error": str(err)})
            print(f"FAIL {nb.name}: {err}")
            continue
        target = rt["content"] / nb.name
        target.write_text(json.dumps(data, indent=1, ensure_ascii=False), encoding="utf-8")
        proc = subprocess.run(
            [
                str(rt["python"]),
                str(Path(__file__).resolve()),
                "_execute",
                str(target),
                "--timeout",
                str(timeout),
            ],
            cwd=rt["content"],
            env=runtime_env(rt["home"], rt["python"]),
            capture_output=True,
            text=True,
        )
        try:
            res = json.loads(proc.stdout.strip().splitlines()[-1])
        except (IndexError, json.JSONDecodeError):
            res = {
                "seconds": None,
                "install_seconds": None,
                "error": f"the runner failed (exit {proc.returncode}): {proc.stderr[-1500:]}",
            }
        res["chapter"] = nb.name
        results.append(res)
        status = "ok  " if res["error"] is None else "FAIL"
        print(
            f"{status} {nb.name}: {res['seconds']} s in all, {res['install_seconds']} s in the install cell"
        )
        if res["error"]:
            print("     " + res["error"].replace("\n", "\n     "))
        if not keep and res["error"] is None:
            shutil.rmtree(where)
    (WORK / "report.json").write_text(json.dumps(results, indent=1))
    n_bad = sum(r["error"] is not None for r in results)
    print(f"== colab-check: {time.perf_counter() - t0:.0f} s in all; report in {WORK / 'report.json'}")
    print(f"{len(results) - n_bad} passed, {n_bad} failed")
    return 1 if n_bad else 0


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    sub = ap.add_subparsers(dest="cmd", required=True)
    sub.add_parser("cell", help="print the canonical cell")
    w = sub.add_parser("write", help="write the canonical cell into the chapters")
    w.add_argument("notebooks", nargs="*", type=Path)
    c = sub.add_parser("check", help="run every chapter as on a fresh Colab runtime")
    c.add_argument("notebooks", nargs="*", type=Path)
    c.add_argument("--timeout", type=int, default=900, help="per-cell timeout in seconds")
    c.add_argument("--keep", action="store_true", help="keep every runtime folder (default: failures only)")
    e = sub.add_parser("_execute", help=argparse.SUPPRESS)
    e.add_argument("notebook", type=Path)
    e.add_argument("--timeout", type=int, default=900)
    args = ap.parse_args(argv)
    if args.cmd == "cell":
        print(cell_source())
    elif args.cmd == "write":
        for nb in args.notebooks or chapters():
            print(f"{'updated' if write_cell(nb) else 'unchanged'}: {nb}")
    elif args.cmd == "check":
        return check([p.resolve() for p in args.notebooks] or chapters(), args.timeout, args.keep)
    elif args.cmd == "_execute":
        print(json.dumps(execute(args.notebook, args.timeout)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
