"""NTK cases: the closed-form two-layer NTK, the empirical NTK methods, and their peak memory.

Baselines written here, in plain JAX, the way a user would without taylorlib:

* ``vmap(grad) Gram``: per-sample gradients ``vmap(grad(f))``, flattened into ``J`` (n, p), then ``J @ J.T``;
* ``jacrev Gram``: ``J = jax.jacrev(lambda p: apply(p, x))(params)``, then ``J @ J.T``;
* ``matmul proxy`` (roofline proxy of the closed form): one ``X @ W.T`` of the same shape and one Gram matmul
  ``U @ U.T`` of the (n, m) result: the least work any method that looks at every neuron-sample pair does.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp

import taylorlib as tl

from . import Config, peak_memory, ratio, register, time_group

ACTIVATION = "relu"


def sizes(cfg: Config) -> dict:
    return dict(d=8, m=256, n=32) if cfg.quick else dict(d=32, m=4096, n=256)


def setup(d: int, m: int, n: int, activation: str = ACTIVATION):
    """A ``two_layer`` network (symmetric init) and ``n`` inputs on the sphere of radius sqrt(d)."""
    k_p, k_x = jax.random.split(jax.random.key(0))
    net = tl.nets.two_layer(m, activation=activation)
    params = net.init(k_p, d)
    x = tl.data.sphere(k_x, n, d)
    return net, params, x


def _flat_gram(jac, n):
    J = jnp.concatenate([leaf.reshape(n, -1) for leaf in jax.tree_util.tree_leaves(jac)], axis=1)
    return J @ J.T


def vmap_grad_gram(apply):
    """Plain per-sample-gradient Gram matrix (jitted)."""

    @jax.jit
    def gram(params, x):
        jac = jax.vmap(jax.grad(lambda p, xi: apply(p, xi[None])[0]), in_axes=(None, 0))(params, x)
        return _flat_gram(jac, x.shape[0])

    return gram


def jacrev_gram(apply):
    """Gram matrix of the full reverse-mode Jacobian (jitted)."""

    @jax.jit
    def gram(params, x):
        return _flat_gram(jax.jacrev(lambda p: apply(p, x))(params), x.shape[0])

    return gram


@jax.jit
def matmul_proxy(W, x):
    """One ``X @ W.T`` and one Gram matmul of the result: the roofline proxy of the closed form."""
    u = x @ W.T
    return u @ u.T


def _rel_err(a, b) -> float:
    return float(jnp.linalg.norm(a - b) / jnp.linalg.norm(b))


@register(
    "two_layer_ntk",
    family="ntk",
    description="closed-form two-layer NTK vs autodiff Grams and a matmul roofline proxy",
)
def case_two_layer_ntk(cfg: Config) -> dict:
    sz = sizes(cfg)
    net, params, x = setup(**sz)
    vg, jr = vmap_grad_gram(net.apply), jacrev_gram(net.apply)
    fns = {
        "two_layer_ntk": lambda: tl.ntk.two_layer_ntk(params, x, activation=ACTIVATION),
        "two_layer_ntk W only": lambda: tl.ntk.two_layer_ntk(
            params, x, activation=ACTIVATION, trainable=("W",)
        ),
        "empirical_ntk jacobian": lambda: tl.ntk.empirical_ntk(net.apply, params, x, method="jacobian"),
        "vmap(grad) Gram": lambda: vg(params, x),
        "jacrev Gram": lambda: jr(params, x),
        "matmul proxy": lambda: matmul_proxy(params["W"], x),
    }
    timings = time_group(fns, cfg)
    med = {t.label: t.median_s for t in timings}
    ref = fns["two_layer_ntk"]()
    errors = {
        k: _rel_err(fns[k](), ref) for k in ("empirical_ntk jacobian", "vmap(grad) Gram", "jacrev Gram")
    }
    ratios = [
        ratio("vmap(grad) / two_layer_ntk", "vmap(grad) Gram", "two_layer_ntk", med, target=20, op=">="),
        ratio("two_layer_ntk / matmul proxy", "two_layer_ntk", "matmul proxy", med, target=1.5, op="<="),
        ratio(
            "two_layer_ntk W only / matmul proxy",
            "two_layer_ntk W only",
            "matmul proxy",
            med,
            note="one Gram matmul, like the proxy",
        ),
        ratio("jacrev / two_layer_ntk", "jacrev Gram", "two_layer_ntk", med),
        ratio("empirical_ntk jacobian / two_layer_ntk", "empirical_ntk jacobian", "two_layer_ntk", med),
    ]
    p = sum(v.size for v in jax.tree_util.tree_leaves(params))
    return dict(
        sizes={**sz, "p": int(p), "activation": ACTIVATION},
        timings=timings,
        ratios=ratios,
        extra={"rel_frobenius_error_vs_two_layer_ntk": errors},
    )


@register(
    "empirical_ntk",
    family="ntk",
    description="empirical_ntk auto / jacobian / ntvp vs a plain vmap(grad) Gram",
)
def case_empirical_ntk(cfg: Config) -> dict:
    sz = sizes(cfg)
    net, params, x = setup(**sz)
    vg = vmap_grad_gram(net.apply)
    fns = {
        f"empirical_ntk {method}": (
            lambda method=method: tl.ntk.empirical_ntk(net.apply, params, x, method=method)
        )
        for method in ("auto", "jacobian", "ntvp")
    }
    fns["vmap(grad) Gram"] = lambda: vg(params, x)
    timings = time_group(fns, cfg)
    med = {t.label: t.median_s for t in timings}
    ref = fns["vmap(grad) Gram"]()
    errors = {k: _rel_err(fns[k](), ref) for k in fns if k != "vmap(grad) Gram"}
    ratios = [
        ratio(
            "vmap(grad) / empirical_ntk auto",
            "vmap(grad) Gram",
            "empirical_ntk auto",
            med,
            target=1.0,
            op=">=",
        ),
        ratio("vmap(grad) / empirical_ntk jacobian", "vmap(grad) Gram", "empirical_ntk jacobian", med),
        ratio("vmap(grad) / empirical_ntk ntvp", "vmap(grad) Gram", "empirical_ntk ntvp", med),
    ]
    p = sum(v.size for v in jax.tree_util.tree_leaves(params))
    return dict(
        sizes={**sz, "p": int(p), "activation": ACTIVATION},
        timings=timings,
        ratios=ratios,
        extra={"rel_frobenius_error_vs_vmap_grad": errors},
    )


# ---------------------------------------------------------------- peak memory (each in a subprocess)


def memory_sizes(cfg: Config) -> dict:
    # p = m (d + 1) = 2^20 >= 10^6 in the full run.
    return dict(d=7, m=2048, n=32) if cfg.quick else dict(d=31, m=32768, n=64)


def probe(method: str, d: int, m: int, n: int, chunk_size: int | None = None):
    """Setup for :func:`benchmarks.peak_memory`: one empirical NTK computation (or the vmap(grad) baseline)."""
    net, params, x = setup(d, m, n)
    jax.block_until_ready((params, x))
    if method == "vmap(grad)":
        gram = vmap_grad_gram(net.apply)
        return lambda: gram(params, x)
    return lambda: tl.ntk.empirical_ntk(net.apply, params, x, method=method, chunk_size=chunk_size)


@register(
    "empirical_ntk_memory",
    family="ntk",
    description="peak memory of empirical_ntk ntvp vs jacobian at p >= 10^6 (one subprocess each)",
)
def case_empirical_ntk_memory(cfg: Config) -> dict:
    sz = memory_sizes(cfg)
    probes = {
        "empirical_ntk jacobian": dict(method="jacobian"),
        "empirical_ntk ntvp": dict(method="ntvp"),
        "empirical_ntk ntvp chunk_size=8": dict(method="ntvp", chunk_size=8),
        "vmap(grad) Gram": dict(method="vmap(grad)"),
    }
    if cfg.quick:  # two subprocesses are enough to prove the machinery works
        probes = {k: probes[k] for k in ("empirical_ntk jacobian", "empirical_ntk ntvp")}
    memory = {}
    if cfg.memory:
        for label, kw in probes.items():
            memory[label] = peak_memory("benchmarks.bench_ntk:probe", {**kw, **sz})
    delta = {k: max(v["delta_bytes"], 1) for k, v in memory.items()}
    ratios = []
    if memory:
        ratios.append(
            ratio(
                "ntvp / jacobian (peak memory)",
                "empirical_ntk ntvp",
                "empirical_ntk jacobian",
                delta,
                target=0.5,
                op="<=",
                kind="memory",
            )
        )
        for label in probes:
            if label not in ("empirical_ntk ntvp", "empirical_ntk jacobian"):
                ratios.append(
                    ratio(
                        f"{label.removeprefix('empirical_ntk ')} / jacobian (peak memory)",
                        label,
                        "empirical_ntk jacobian",
                        delta,
                        kind="memory",
                    )
                )
    return dict(
        sizes={**sz, "p": sz["m"] * (sz["d"] + 1), "activation": ACTIVATION},
        timings=[],
        memory=memory,
        ratios=ratios,
        extra={"seconds_single_call_incl_compile": {k: v["seconds"] for k, v in memory.items()}},
    )
