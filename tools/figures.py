"""The two figures of the book's non-chapter pages, and the performance page's summary table.

    python tools/figures.py            # writes book/figures/taylor_picture.png and book/figures/performance.png
    python tools/figures.py --table    # prints the performance summary (book/performance.md holds it)

- ``taylor_picture.png`` (landing page): a movement at the quadratic scale, every ``a_r = +1`` neuron of a
  softplus two-layer network moved by ``m^(-1/4)`` along its own random unit direction. Left: the network
  along the line ``W0 + tW`` (one input, m = 1024) next to its Taylor polynomials of order 1, 2 and 3
  (``tl.taylor.taylor_terms``). Right: the RMS over 256 inputs of f^(1), f^(2) and of the remainder after
  order 2 against the width, mean over three seeds, with fitted log-log slopes.
- ``performance.png`` (performance page): every benchmark target of ``benchmarks/results/latest.json`` as a
  margin (above 1: met).
"""

from __future__ import annotations

import argparse
import json
import math
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
FIGURES = ROOT / "book" / "figures"
RESULTS = ROOT / "benchmarks" / "results" / "latest.json"
OPS = {">=": "≥", "<=": "≤"}


# ---------------------------------------------------------------------------------------------- performance
def performance_rows(results: dict) -> list[dict]:
    """Every ratio or slope with a target: case, ratio name, measured value, target text, met, margin."""
    rows = []
    for case in results["cases"]:
        for q in case.get("ratios", []):
            if q.get("op"):
                margin = q["value"] / q["target"] if q["op"] == ">=" else q["target"] / q["value"]
                rows.append(
                    dict(
                        case=case["name"],
                        ratio=q["name"],
                        value=q["value"],
                        target=f"{OPS[q['op']]} {q['target']:g}",
                        met=bool(q["passed"]),
                        margin=margin,
                    )
                )
        for sl in case.get("extra", {}).get("slopes", []):
            if sl.get("expected") is not None:
                off = abs(sl["value"] - sl["expected"])
                rows.append(
                    dict(
                        case=case["name"],
                        ratio=sl["name"],
                        value=sl["value"],
                        target=f"≈\u00a0{sl['expected']:g}\u00a0±\u00a0{sl['band']:g}",
                        met=bool(sl["passed"]),
                        margin=sl["band"] / max(off, 1e-3),
                    )
                )
    return rows


def summary_sentence(rows: list[dict], results: dict) -> str:
    """The sentence above the summary table: which run, and how many targets it met."""
    mach = results["machine"]
    return (
        f"Run of {mach['date'][:10]} on {mach['cpu_count']} cores of an {mach['cpu']}, JAX {mach['jax']} on the "
        f"{mach['backend'].upper()}: {sum(r['met'] for r in rows)} of {len(rows)} targets met."
    )


def performance_summary(results: dict) -> str:
    """The summary sentence and table, as they appear on the performance page."""
    rows = performance_rows(results)
    return summary_sentence(rows, results) + "\n\n" + performance_table(rows)


def performance_table(rows: list[dict]) -> str:
    """The markdown summary table of the performance page."""
    lines = ["| case | ratio | measured | target | met |", "|---|---|---:|---|---|"]
    for r in rows:
        lines.append(
            f"| `{r['case']}` | {r['ratio']} | {r['value']:.3g} | {r['target']} | "
            f"{'yes' if r['met'] else '**no**'} |"
        )
    return "\n".join(lines)


def performance_figure(rows: list[dict], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import taylorlib as tl

    fig, ax = tl.plotting.new_figure(width=6.4, height=0.3 * len(rows) + 1.2)
    labels = [
        f"{r['case']}: {r['ratio']}" if len(r["ratio"]) < 34 else f"{r['case']}: {r['ratio'][:32]}…"
        for r in rows
    ]
    y = range(len(rows))[::-1]
    colors = ["#0173b2" if r["met"] else "#de8f05" for r in rows]
    ax.barh(list(y), [r["margin"] for r in rows], color=colors, height=0.7)
    ax.axvline(1.0, color="black", lw=1)
    ax.set_xscale("log")
    ax.set_yticks(list(y), labels, fontsize=9.5)
    ax.set_xlabel("margin over the target (> 1: met)")
    ax.barh([], [], color="#0173b2", label="target met")  # empty bars: legend entries only
    ax.barh([], [], color="#de8f05", label="target missed")
    ax.set_ylim(-0.7, len(rows) - 0.3)
    fig.tight_layout()
    tl.plotting.legend_outside(ax, ncol=2)
    fig.savefig(path, dpi=tl.plotting.DPI, bbox_inches="tight")


# ------------------------------------------------------------------------------------------- Taylor picture
def taylor_data(widths=(256, 1024, 4096, 16384), seeds=(0, 1, 2), n=256, d=16) -> dict:
    """The numbers behind taylor_picture.png (see the module docstring)."""
    import jax
    import jax.numpy as jnp

    import taylorlib as tl

    def move(params0, m, key):  # every a_r = +1 neuron moves by m^(-1/4) along its own random unit direction
        u = jax.random.normal(key, (m, d))
        u = u / jnp.linalg.norm(u, axis=1, keepdims=True)
        return {"W": m**-0.25 * (params0["a"] > 0)[:, None] * u, "a": jnp.zeros(m)}

    rms = lambda f: float(jnp.sqrt(jnp.mean(f**2)))  # noqa: E731
    out = {"widths": list(widths), "f1": [], "f2": [], "rem": []}
    for m in widths:
        acc = {"f1": [], "f2": [], "rem": []}
        for s in seeds:
            kp, kx, kv = jax.random.split(jax.random.key(s), 3)
            net = tl.nets.two_layer(m, activation="softplus")
            p0 = net.init(kp, d)
            x = tl.data.sphere(kx, n, d)
            dp = move(p0, m, kv)
            f0, f1, f2 = tl.taylor.taylor_terms(net.apply, p0, dp, x, order=2)
            full = net.apply(jax.tree.map(jnp.add, p0, dp), x)
            acc["f1"].append(rms(f1))
            acc["f2"].append(rms(f2))
            acc["rem"].append(rms(full - f0 - f1 - f2))
        for k in acc:
            out[k].append(sum(acc[k]) / len(acc[k]))
    # Left panel: one input, one width, a movement at the quadratic scale, along t in [-2, 2].
    m = 1024
    kp, kx, kv = jax.random.split(jax.random.key(0), 3)
    net = tl.nets.two_layer(m, activation="softplus")
    p0 = net.init(kp, d)
    x = tl.data.sphere(kx, 1, d)
    dp = move(p0, m, kv)
    terms = [float(t[0]) for t in tl.taylor.taylor_terms(net.apply, p0, dp, x, order=3)]
    ts = [i / 25 for i in range(-50, 51)]
    out["t"] = ts
    along = jax.jit(lambda t: net.apply(jax.tree.map(lambda a, b: a + t * b, p0, dp), x)[0])
    out["net"] = [float(along(t)) for t in ts]
    out["poly"] = {k: [sum(terms[j] * t**j for j in range(k + 1)) for t in ts] for k in (1, 2, 3)}
    return out


def taylor_figure(data: dict, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import taylorlib as tl

    fig, (a1, a2) = tl.plotting.new_figure(ncols=2, width=6.6, height=3.2)
    a1.plot(data["t"], data["net"], color="black", lw=2.2, label="network")
    for k, style in zip((1, 2, 3), ("--", "-.", ":"), strict=True):
        a1.plot(data["t"], data["poly"][k], ls=style, lw=1.6, label=f"Taylor order {k}")
    a1.set_xlabel("step t along W")
    a1.set_ylabel("output f(W0 + tW)")
    a1.set_title("The Taylor picture", fontsize=10)
    w = data["widths"]
    for key, name in (("f1", "f(1), linear"), ("f2", "f(2), quadratic"), ("rem", "remainder")):
        tl.plotting.loglog(a2, w, data[key], name)
    a2.set_xlabel("width m")
    a2.set_ylabel("RMS over inputs")
    a2.set_title("Each term against the width", fontsize=10)
    fig.tight_layout()
    tl.plotting.legend_outside(fig, ncol=2)
    size = tl.plotting.legend_display_size(fig)
    if size < tl.plotting.MIN_LEGEND_PT:
        raise RuntimeError(f"legend would show at {size:.1f} pt")
    fig.savefig(path, dpi=tl.plotting.DPI, bbox_inches="tight")


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--table", action="store_true", help="print the performance summary table and exit")
    args = ap.parse_args(argv)
    rows = performance_rows(json.loads(RESULTS.read_text()))
    if args.table:
        print(performance_summary(json.loads(RESULTS.read_text())))
        return 0
    FIGURES.mkdir(parents=True, exist_ok=True)
    performance_figure(rows, FIGURES / "performance.png")
    data = taylor_data()
    w = data["widths"]
    slopes = {k: math.log(data[k][-1] / data[k][0]) / math.log(w[-1] / w[0]) for k in ("f1", "f2", "rem")}
    print("taylor picture: end-to-end log-log slopes", {k: round(v, 3) for k, v in slopes.items()})
    taylor_figure(data, FIGURES / "taylor_picture.png")
    print(f"wrote {FIGURES / 'performance.png'} and {FIGURES / 'taylor_picture.png'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
