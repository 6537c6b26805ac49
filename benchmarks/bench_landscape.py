"""Hessian spectra: ``landscape.lanczos`` (30 iterations) vs the dense Hessian and its eigenvalues.

The loss is the mean square loss of a softplus two-layer network with p = m (d + 1) ≈ 4000 parameters.
The dense baseline is ``jnp.linalg.eigvalsh(landscape.hessian(loss, params))`` under one ``jax.jit``:
``eigvalsh`` rather than ``eigh`` because the extreme eigenvalues are what Lanczos is used for, and it is
the faster of the two (a stronger baseline). It is compiled ahead of time so that no full run is wasted on
warm-up (each call takes seconds).
"""

from __future__ import annotations

import jax
import jax.numpy as jnp

import taylorlib as tl

from . import Config, aot_compile, ratio, register, time_group

ACTIVATION = "softplus"
NUM_ITER = 30


def sizes(cfg: Config) -> dict:
    # p = m (d + 1): 3968 in the full run
    return dict(d=8, m=32, n=64, num_iter=10) if cfg.quick else dict(d=30, m=128, n=256, num_iter=NUM_ITER)


@register(
    "lanczos",
    family="landscape",
    description=f"landscape.lanczos ({NUM_ITER} iterations) vs dense hessian + eigvalsh, p ≈ 4000",
    requires=[("taylorlib.landscape", "lanczos"), ("taylorlib.landscape", "hessian")],
)
def case_lanczos(cfg: Config) -> dict:
    sz = sizes(cfg)
    d, m, n, k = sz["d"], sz["m"], sz["n"], sz["num_iter"]
    k_p, k_x, k_l = jax.random.split(jax.random.key(0), 3)
    net = tl.nets.two_layer(m, activation=ACTIVATION, symmetric=False)
    params = net.init(k_p, d)
    x = tl.data.sphere(k_x, n, d)
    y = x[:, 0] * x[:, 1]

    def loss(p):
        return jnp.mean((net.apply(p, x) - y) ** 2)

    p_count = sum(v.size for v in jax.tree_util.tree_leaves(params))
    dense, compile_s = aot_compile(lambda p: jnp.linalg.eigvalsh(tl.landscape.hessian(loss, p)), params)
    fns = {
        "lanczos": lambda: tl.landscape.lanczos(loss, params, k_l, num_iter=k).eigvals,
        "dense hessian + eigvalsh": dense,
    }
    timings = time_group(fns, cfg, precompiled={"dense hessian + eigvalsh": compile_s})
    med = {t.label: t.median_s for t in timings}
    ritz, evals = fns["lanczos"](), dense()
    scale = float(jnp.max(jnp.abs(evals)))
    return dict(
        sizes={**sz, "p": int(p_count), "activation": ACTIVATION},
        timings=timings,
        ratios=[ratio("dense / lanczos", "dense hessian + eigvalsh", "lanczos", med, target=10, op=">=")],
        extra={
            "lambda_max_rel_error": float(abs(ritz[-1] - evals[-1]) / scale),
            "lambda_min_ritz_minus_true_over_scale": float((ritz[0] - evals[0]) / scale),
        },
    )
