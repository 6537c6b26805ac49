"""Any-network cases (issue 16): the structured MLP NTK against the generic Jacobian path, and its scale.

Baselines are in the same run: ``empirical_ntk(method="jacobian")`` (per-sample Jacobians in blocks, then
their Gram) and a plain-JAX ``vmap(grad)`` Gram on the same ``tl.nets.mlp``.

Flop counts (multiply-adds count 2; ``p`` parameters, ``n`` samples, ``k`` outputs, widths ``n_0 = d, n_1,
..., n_L``):

* Jacobian Gram: a forward and a backward pass per sample and output, about ``6 n k p``, plus the Gram
  ``2 n^2 k p`` (the Gram dominates once ``n >> 3``);
* ``mlp_ntk``: one batched forward ``2 n p`` and ``k`` backward passes ``2 n k p``, plus per layer an input
  Gram ``2 n^2 n_l`` and an error Gram ``2 n^2 k n_{l+1}``: ``2 n^2 (sum_l n_l + k sum_l n_{l+1} + n_L)``.

The ratio of the two Gram terms is ``k p / (sum_l n_l + k sum_l n_{l+1} + n_L)`` ~ the width.
"""

from __future__ import annotations

import jax

import taylorlib as tl

from . import Config, loglog_slope, peak_memory, ratio, register, time_group
from .bench_ntk import vmap_grad_gram

ACTIVATION = "relu"


def flops(widths, d: int, n: int, k: int = 1) -> dict:
    """Approximate flop counts of the two methods (see the module docstring)."""
    dims = (d, *widths)
    p = sum(dims[i + 1] * (dims[i] + 1) for i in range(len(widths))) + widths[-1] * k
    jac = 6 * n * k * p + 2 * n * n * k * p
    gram = sum(dims[:-1]) + k * sum(dims[1:]) + widths[-1]
    structured = 2 * n * p + 2 * n * k * p + 2 * n * n * gram
    return {
        "p": p,
        "jacobian_flops": float(jac),
        "mlp_ntk_flops": float(structured),
        "ratio": jac / structured,
    }


def setup(widths, d: int, n: int, out_dim: int = 1):
    k_p, k_x = jax.random.split(jax.random.key(0))
    net = tl.nets.mlp(widths, ACTIVATION, out_dim=out_dim)
    params = net.init(k_p, d)
    x = tl.data.sphere(k_x, n, d)
    return net, params, x


def _rel_err(a, b) -> float:
    import jax.numpy as jnp

    return float(jnp.linalg.norm(a - b) / jnp.linalg.norm(b))


@register(
    "mlp_ntk",
    family="anynet",
    description="structured mlp_ntk vs empirical_ntk(method='jacobian') on a (512, 512) MLP, d=32, n=256",
)
def case_mlp_ntk(cfg: Config) -> dict:
    sz = dict(widths=(64, 64), d=8, n=32) if cfg.quick else dict(widths=(512, 512), d=32, n=256)
    net, params, x = setup(**sz)
    vg = vmap_grad_gram(net.apply)
    fns = {
        "mlp_ntk": lambda: tl.ntk.mlp_ntk(params, x, activation=ACTIVATION),
        "empirical_ntk jacobian": lambda: tl.ntk.empirical_ntk(net.apply, params, x, method="jacobian"),
        "vmap(grad) Gram": lambda: vg(params, x),
    }
    timings = time_group(fns, cfg)
    med = {t.label: t.median_s for t in timings}
    ref = fns["empirical_ntk jacobian"]()
    fl = flops(sz["widths"], sz["d"], sz["n"])
    ratios = [
        ratio(
            "empirical_ntk jacobian / mlp_ntk",
            "empirical_ntk jacobian",
            "mlp_ntk",
            med,
            target=10.0,
            op=">=",
            note=f"flop ratio {fl['ratio']:.0f}",
        ),
        ratio("vmap(grad) / mlp_ntk", "vmap(grad) Gram", "mlp_ntk", med),
    ]
    return dict(
        sizes={
            **sz,
            "widths": list(sz["widths"]),
            "p": fl["p"],
            "activation": ACTIVATION,
            "dtype": "float32",
        },
        timings=timings,
        ratios=ratios,
        extra={"flops": fl, "rel_frobenius_error_mlp_ntk_vs_jacobian": _rel_err(fns["mlp_ntk"](), ref)},
    )


def large_sizes(cfg: Config) -> dict:
    if cfg.quick:
        return dict(widths=(64, 64), d=8, n=64, n_generic=(16, 32))
    # the generic path at n = 4096 needs ~2 n^2 p = 3.6e13 flops (20-50 min here): it is measured at n = 128
    # and 256 and extrapolated by the fit a n + b n^2 (Jacobians + Gram); the pure n^2 extrapolation is kept
    return dict(widths=(1024, 1024), d=32, n=4096, n_generic=(128, 256))


def probe(kind: str, widths, d: int, n: int):
    """Setup for :func:`benchmarks.peak_memory`: one NTK of ``mlp(widths)`` by ``kind``."""
    net, params, x = setup(tuple(widths), d, n)
    jax.block_until_ready((params, x))
    if kind == "mlp_ntk":
        return lambda: tl.ntk.mlp_ntk(params, x, activation=ACTIVATION)
    return lambda: tl.ntk.empirical_ntk(net.apply, params, x, method="jacobian")


@register(
    "mlp_ntk_large",
    family="anynet",
    description="time and peak memory of the eNTK of mlp((1024, 1024)) at n = 4096: mlp_ntk vs generic",
)
def case_mlp_ntk_large(cfg: Config) -> dict:
    sz = large_sizes(cfg)
    widths, d, n = sz["widths"], sz["d"], sz["n"]
    net, params, x = setup(widths, d, n)
    fns = {f"mlp_ntk n={n}": lambda: tl.ntk.mlp_ntk(params, x, activation=ACTIVATION)}
    for ng in sz["n_generic"]:
        xg = x[:ng]
        fns[f"empirical_ntk jacobian n={ng}"] = lambda xg=xg: tl.ntk.empirical_ntk(
            net.apply, params, xg, method="jacobian"
        )
    quick_cfg = cfg._replace(repeats=min(cfg.repeats, 3), min_time=0.0) if not cfg.quick else cfg
    timings = time_group(fns, quick_cfg)
    med = {t.label: t.median_s for t in timings}
    n_last = sz["n_generic"][-1]
    # time = a n + b n^2 (per-sample Jacobians + their Gram) through the two measured sizes
    (n_a, n_b), (t_a, t_b) = (
        sz["n_generic"],
        [med[f"empirical_ntk jacobian n={ng}"] for ng in sz["n_generic"]],
    )
    b = max((t_b - t_a * n_b / n_a) / (n_b * n_b - n_a * n_b), 0.0)  # clamped: tiny quick sizes are noise
    a = max((t_a - b * n_a * n_a) / n_a, 0.0)
    fit_label = f"empirical_ntk jacobian n={n} (fit a n + b n^2)"
    derived = {fit_label: a * n + b * n * n}
    ratios = [
        ratio(f"generic (extrapolated) / mlp_ntk at n={n}", fit_label, f"mlp_ntk n={n}", {**med, **derived})
    ]
    memory = {}
    if cfg.memory:
        memory[f"mlp_ntk n={n}"] = peak_memory(
            "benchmarks.bench_anynet:probe", dict(kind="mlp_ntk", widths=list(widths), d=d, n=n)
        )
        memory[f"empirical_ntk jacobian n={n_last}"] = peak_memory(
            "benchmarks.bench_anynet:probe", dict(kind="jacobian", widths=list(widths), d=d, n=n_last)
        )
    return dict(
        sizes={
            **sz,
            "widths": list(widths),
            "n_generic": list(sz["n_generic"]),
            "p": flops(widths, d, n)["p"],
        },
        timings=timings,
        memory=memory,
        ratios=ratios,
        derived=derived,
        extra={
            "flops_at_n": flops(widths, d, n),
            "generic_n2_extrapolation_s": t_b * (n / n_b) ** 2,
            "generic_slope_in_n": loglog_slope(
                list(sz["n_generic"]), [med[f"empirical_ntk jacobian n={ng}"] for ng in sz["n_generic"]]
            ),
        },
    )


@register(
    "lanczos_hvp",
    family="anynet",
    description="landscape.lanczos per iteration vs one compiled HVP called from a Python loop (small CNN)",
)
def case_lanczos_hvp(cfg: Config) -> dict:
    import jax.numpy as jnp
    from jax.flatten_util import ravel_pytree

    sz = (
        dict(channels=(4,), n=16, side=6, iters=8)
        if cfg.quick
        else dict(channels=(8, 8), n=64, side=8, iters=32)
    )
    net = tl.nets.cnn(sz["channels"], "tanh")
    params = net.init(jax.random.key(0), 1)
    x = jax.random.normal(jax.random.key(1), (sz["n"], sz["side"], sz["side"], 1))

    def loss(p):
        return jnp.mean((net.apply(p, x) - 1.0) ** 2)

    flat, unravel = ravel_pytree(params)
    hv = jax.jit(lambda f, v: jax.jvp(jax.grad(lambda g: loss(unravel(g))), (f,), (v,))[1])
    k = sz["iters"]

    def python_loop():
        v = flat
        for _ in range(k):
            v = hv(flat, v)
        return v

    fns = {
        f"lanczos {k} iterations": lambda: tl.landscape.lanczos(loss, params, jax.random.key(2), k).eigvals,
        f"compiled HVP x {k} (Python loop)": python_loop,
    }
    timings = time_group(fns, cfg)
    med = {t.label: t.median_s for t in timings}
    ratios = [
        ratio(
            "lanczos / compiled HVPs",
            f"lanczos {k} iterations",
            f"compiled HVP x {k} (Python loop)",
            med,
            target=2.0,
            op="<=",
            note="includes full reorthogonalization and the Ritz step",
        )
    ]
    return dict(
        sizes={**sz, "channels": list(sz["channels"]), "p": int(flat.size)},
        timings=timings,
        ratios=ratios,
    )
