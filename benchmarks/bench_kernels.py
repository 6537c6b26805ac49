"""Infinite-width kernels: ``kernels.ntk`` (ReLU, arc-cosine closed form) vs numpy and jitted JAX.

The baselines are the textbook formula in float32, in numpy and in jitted ``jax.numpy``:

.. math:: \\Theta = (x\\cdot x')\\,\\frac{\\pi-\\theta}{2\\pi}
   + \\frac{\\|x\\|\\|x'\\|}{d}\\,\\frac{\\sin\\theta + (\\pi-\\theta)\\cos\\theta}{2\\pi},
   \\qquad \\cos\\theta = \\frac{x\\cdot x'}{\\|x\\|\\|x'\\|}.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np

import taylorlib as tl

from . import Config, ratio, register, time_group


def numpy_relu_ntk(x: np.ndarray) -> np.ndarray:
    """The infinite-width ReLU NTK of ``two_layer`` (both layers trained), numpy float32."""
    x = np.asarray(x, dtype=np.float32)
    d = x.shape[1]
    gram = x @ x.T
    norms = np.sqrt(np.sum(x * x, axis=1))
    cos = np.clip(gram / np.maximum(norms[:, None] * norms[None, :], np.float32(1e-30)), -1.0, 1.0)
    theta = np.arccos(cos)
    k1 = (np.pi - theta) / (2 * np.pi)
    k0 = (norms[:, None] * norms[None, :] / d) * (np.sin(theta) + (np.pi - theta) * cos) / (2 * np.pi)
    return (gram * k1 + k0).astype(np.float32)


@jax.jit
def jax_relu_ntk(x: jax.Array) -> jax.Array:
    """The same textbook formula as :func:`numpy_relu_ntk`, written in ``jax.numpy`` and jitted."""
    d = x.shape[1]
    gram = x @ x.T
    norms = jnp.sqrt(jnp.sum(x * x, axis=1))
    cos = jnp.clip(gram / jnp.maximum(norms[:, None] * norms[None, :], 1e-30), -1.0, 1.0)
    theta = jnp.arccos(cos)
    k1 = (jnp.pi - theta) / (2 * jnp.pi)
    k0 = (norms[:, None] * norms[None, :] / d) * (jnp.sin(theta) + (jnp.pi - theta) * cos) / (2 * jnp.pi)
    return gram * k1 + k0


def sizes(cfg: Config) -> dict:
    return dict(n=128, d=8) if cfg.quick else dict(n=2048, d=32)


@register(
    "kernels_ntk",
    family="kernels",
    description="analytic relu kernels.ntk at n = 2048 vs a numpy implementation",
)
def case_kernels_ntk(cfg: Config) -> dict:
    sz = sizes(cfg)
    x = tl.data.sphere(jax.random.key(0), sz["n"], sz["d"])
    x_np = np.asarray(x)
    fns = {
        "kernels.ntk": lambda: tl.kernels.ntk(x, activation="relu"),
        "numpy": lambda: numpy_relu_ntk(x_np),
        "jitted JAX": lambda: jax_relu_ntk(x),
    }
    timings = time_group(fns, cfg)
    med = {t.label: t.median_s for t in timings}
    K, K_np = fns["kernels.ntk"](), fns["numpy"]()
    err = float(jnp.linalg.norm(K - K_np) / jnp.linalg.norm(K_np))
    err_jax = float(jnp.linalg.norm(K - fns["jitted JAX"]()) / jnp.linalg.norm(K))
    return dict(
        sizes={**sz, "activation": "relu"},
        timings=timings,
        ratios=[
            ratio("numpy / kernels.ntk", "numpy", "kernels.ntk", med, target=3, op=">="),
            ratio(
                "jitted JAX / kernels.ntk",
                "jitted JAX",
                "kernels.ntk",
                med,
                target=1,
                op=">=",
                note="the textbook formula jitted: what a competent user writes first",
            ),
        ],
        extra={"rel_frobenius_error_vs_numpy": err, "rel_frobenius_error_vs_jitted_jax": err_jax},
    )
