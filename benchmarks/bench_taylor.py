"""Taylor terms: ``taylor_terms`` (nested jvp and jet) vs one forward pass and vs ``jax.experimental.jet``.

The raw-jet baseline is what a user would write without taylorlib: ``jet.jet`` over the parameter leaves
(jet wants arrays, not pytrees), with the series ``(dparams, 0, ..., 0)`` and the k-th output divided by
``k!``, under ``jax.jit``. (The "jet only in taylor.py" rule is for the library; a benchmark may import it.)
"""

from __future__ import annotations

import math

import jax
import jax.numpy as jnp
from jax.experimental import jet

import taylorlib as tl

from . import Config, ratio, register, time_group
from .bench_ntk import setup

#: Smooth and supported by jet.
ACTIVATION = "tanh"


def sizes(cfg: Config) -> dict:
    if cfg.quick:
        return dict(d=8, m=256, n=32, orders=(4,))
    return dict(d=32, m=4096, n=256, orders=tuple(range(1, 9)))


def raw_jet_terms(apply, order: int):
    """Jitted ``(params0, dparams, x) -> (f0, ..., fK)`` straight from ``jax.experimental.jet``."""

    @jax.jit
    def terms(params0, dparams, x):
        leaves0, treedef = jax.tree_util.tree_flatten(params0)
        leaves_d = jax.tree_util.tree_leaves(dparams)
        series = tuple((v,) + (jnp.zeros_like(v),) * (order - 1) for v in leaves_d)
        y0, ys = jet.jet(
            lambda *ls: apply(jax.tree_util.tree_unflatten(treedef, ls), x), tuple(leaves0), series
        )
        return (y0,) + tuple(y / math.factorial(k + 1) for k, y in enumerate(ys))

    return terms


@register(
    "taylor_terms",
    family="taylor",
    description="taylor_terms (jvp, jet) for K = 1..8 vs one forward pass and vs jax.experimental.jet",
)
def case_taylor_terms(cfg: Config) -> dict:
    sz = sizes(cfg)
    d, m, n, orders = sz["d"], sz["m"], sz["n"], sz["orders"]
    net, params, x = setup(d, m, n, activation=ACTIVATION)
    key = jax.random.key(1)
    # a movement of the lazy-to-quadratic scale, ||w_r|| ~ m^(-1/4)
    dparams = {
        "W": jax.random.normal(key, params["W"].shape) / (math.sqrt(d) * m**0.25),
        "a": jnp.zeros_like(params["a"]),
    }
    forward = jax.jit(net.apply)
    fns = {"forward": lambda: forward(params, x)}
    for K in orders:
        raw = raw_jet_terms(net.apply, K)
        for method in ("jvp", "jet"):
            fns[f"taylor_terms {method} K={K}"] = lambda K=K, method=method: tl.taylor.taylor_terms(
                net.apply, params, dparams, x, order=K, method=method
            )
        fns[f"raw jet K={K}"] = lambda raw=raw: raw(params, dparams, x)
    timings = time_group(fns, cfg)
    med = {t.label: t.median_s for t in timings}
    k4 = 4 if 4 in orders else max(orders)
    ratios = [
        ratio(
            f"taylor_terms jvp K={k4} / forward",
            f"taylor_terms jvp K={k4}",
            "forward",
            med,
            target=3,
            op="<=",
        ),
        ratio(f"taylor_terms jet K={k4} / forward", f"taylor_terms jet K={k4}", "forward", med),
    ]
    for K in orders:
        target = dict(target=2, op=">=") if K >= 3 else {}
        ratios.append(
            ratio(
                f"raw jet / taylor_terms jvp, K={K}",
                f"raw jet K={K}",
                f"taylor_terms jvp K={K}",
                med,
                **target,
            )
        )
    for K in orders:
        ratios.append(
            ratio(f"taylor_terms jet / raw jet, K={K}", f"taylor_terms jet K={K}", f"raw jet K={K}", med)
        )
    # agreement of the three implementations at the highest order (max relative error per term)
    K = max(orders)
    a = fns[f"taylor_terms jvp K={K}"]()
    b = fns[f"taylor_terms jet K={K}"]()
    c = fns[f"raw jet K={K}"]()
    rel = lambda u, v: float(jnp.linalg.norm(u - v) / jnp.maximum(jnp.linalg.norm(v), 1e-30))
    compile_s = {t.label: t.compile_s for t in timings}
    return dict(
        sizes={"d": d, "m": m, "n": n, "orders": list(orders), "activation": ACTIVATION},
        timings=timings,
        ratios=ratios,
        extra={
            f"rel_error_jvp_vs_raw_jet_K{K}": [rel(u, v) for u, v in zip(a, c, strict=True)],
            f"rel_error_jet_vs_raw_jet_K{K}": [rel(u, v) for u, v in zip(b, c, strict=True)],
            "compile_s": compile_s,
        },
    )
