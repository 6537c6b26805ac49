"""Regenerate the cached sweeps of the Higher-order coupling chapter (``book/05_higher_order.ipynb``).

Two ``tl.sweep`` caches, each an ``.npz`` with a ``.json`` sidecar that records the JAX and taylorlib
versions, the grid, the seeds and this script's settings (``args``; a cache written with other settings is
refused):

``book/data/higher_order_coupling.npz``, grid ``k`` (order) × ``m`` (width) × seeds
    The order-k coupling of a paired smooth-ReLU² net (d = 20, n = 64 inputs on the sphere). The movement
    is coherent, ``w_r = C_k m^{-1/(2k)} v`` on the ``a_r = +1`` half, with ``C_k`` chosen so that the
    infinite-width prediction of ``RMS f^(k)`` on the seed's inputs is 1 (the scale of a unit-variance
    label; see :func:`unit_scale`). Values are the fields of ``tl.higher_order.coupling_error``:
    ``error`` (relative to ``rms_fk``), ``spread`` (relative) and ``rms_fk``. Each seed key is split into
    ``(k_x, k_net)`` for the inputs and the initialization, drawn in float32 exactly as the chapter draws
    them, then evaluated in float64: the exact expectation is a k-th finite difference of sigma, and in
    float32 it also differentiates the round-off of sigma (a few percent at m = 10^6).

``book/data/higher_order_generalization.npz``, grid ``d`` × ``j`` × seeds, ``n = round(d^2 2^{(j-4)/2})``
    Relative test MSE of a unit-variance degree-3 zonal harmonic (``tl.targets.staircase(key, d,
    degrees=(3,))``) learned by ``order3`` (gradient descent on the order-3 Taylor term ``f^(3)`` of a paired
    smooth-ReLU² net of width 256 in the ``W = m^{-1/6} V`` scaling, from ``V ~ 0.5 N(0, I/d)``), ``ntk``
    (kernel ridge regression with the W-block NTK of a width-4096 net, close to the m -> infinity kernel)
    and ``kernel3`` (the same with the order-3 kernel K_3); each kernel with the best ridge of ``RIDGES``
    on the test set (an oracle choice, generous to the kernels).

Usage::

    .venv/bin/python experiments/higher_order.py                # both sweeps (what `make data` runs)
    .venv/bin/python experiments/higher_order.py --only coupling

An existing complete cache is loaded instead of recomputed (an interrupted one resumes); delete
``book/data/higher_order_*`` to regenerate from scratch. A fresh run costs about 20 CPU-minutes (measured:
1178 s user+sys, 77 min wall on 2 cores shared with many other jobs; about 23 min of that wall time for the
coupling sweep), with a peak memory of 3.3 GB (the float64 expectation at m = 10^6).
"""

from __future__ import annotations

import argparse
import math
import time
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np

import taylorlib as tl

DATA = Path(__file__).resolve().parents[1] / "book" / "data"
COUPLING_CACHE = DATA / "higher_order_coupling.npz"
GEN_CACHE = DATA / "higher_order_generalization.npz"
ACT = "smooth_relu2"

# coupling sweep
COUPLING_ORDERS = (2, 3, 4, 5)
COUPLING_WIDTHS = tuple(int(2 * round(m / 2)) for m in np.geomspace(1e2, 1e6, 9))
COUPLING_D, COUPLING_N = 20, 64

# generalization sweep
GEN_DS = (8, 16, 24)
GEN_J = tuple(range(11))  # n = d^2 2^((j - 4)/2): from d^2/4 to 8 d^2
GEN_K, GEN_M, GEN_M_KERNEL = 3, 256, 4096
GEN_STEPS, GEN_LR, GEN_INIT = 4000, 4.0, 0.5
GEN_N_TEST = 1000
RIDGES = (1e-3, 1e-2, 1e-1, 1.0, 10.0)


def chapter_keys() -> tuple:
    """The chapter's keys: ``k_coupling, k_gen = split(key(0))``; seed ``s`` of a sweep is
    ``split(k, num_seeds)[s]``."""
    return tuple(jax.random.split(jax.random.key(0), 2))


def gen_n(d: int, j: int) -> int:
    """Training-set size of grid point ``(d, j)``: ``round(d^2 2^{(j-4)/2})``."""
    return int(round(d**2 * 2 ** ((j - 4) / 2)))


def mean_derivative(k: int, num_nodes: int = 80) -> float:
    """``E sigma^(k)(u)`` for ``u ~ N(0, 1)`` (Gauss-Hermite quadrature)."""
    t, w = np.polynomial.hermite_e.hermegauss(num_nodes)
    dk = np.asarray(tl.activations.derivative(ACT, k)(jnp.asarray(t, jnp.float32)), np.float64)
    return float(w @ dk / math.sqrt(2 * math.pi))


def unit_scale(x: jax.Array, v: jax.Array, k: int) -> float:
    """``C_k`` with ``(C_k^k / 2) |E sigma^(k)| RMS_x (v.x)^k / k! = 1``: the infinite-width size of f^(k)
    for the coherent movement ``C_k m^{-1/(2k)} v`` on half of the neurons, set to 1 on the inputs ``x``."""
    rms = float(jnp.sqrt(jnp.mean((x @ v) ** (2 * k))))
    return (2 * math.factorial(k) / (abs(mean_derivative(k)) * rms)) ** (1 / k)


def coupling_setup(key: jax.Array, k: int, m: int) -> tuple:
    """Inputs, paired initialization and unit-scale coherent movement of one seed (float32)."""
    k_x, k_net = jax.random.split(key)
    x = tl.data.sphere(k_x, COUPLING_N, COUPLING_D)
    v = jnp.eye(COUPLING_D)[0]
    p0 = tl.nets.two_layer(m, activation=ACT).init(k_net, COUPLING_D)
    W = (p0["a"] > 0)[:, None] * unit_scale(x, v, k) * m ** (-1 / (2 * k)) * v[None, :]
    return x, p0, W


def coupling_point(key: jax.Array, k: int, m: int) -> dict:
    """The fields of ``tl.randomize.coupling_error`` for one seed, evaluated in float64."""
    x, p0, W = coupling_setup(key, k, m)
    with jax.enable_x64(True):
        f64 = lambda t: jax.tree_util.tree_map(lambda a: jnp.asarray(a, jnp.float64), t)
        res = tl.randomize.coupling_error(f64(p0), f64(W), f64(x), activation=ACT, k=k)
    print(f"  coupling k={k} m={m}: error {res.error:.4g} spread {res.spread:.4g}", flush=True)
    return {"error": res.error, "spread": res.spread, "rms_fk": res.rms_fk}


def _train_order3(p0: dict, V0: jax.Array, x: jax.Array, y: jax.Array) -> jax.Array:
    """Full-batch gradient descent on V for the order-3 model (x, y are arguments: no constant folding)."""

    def loss(V):
        W = tl.quadratic.to_movement(V, GEN_K)
        return jnp.mean((tl.quadratic.two_layer_terms(p0, W, x, activation=ACT, order=GEN_K)[GEN_K] - y) ** 2)

    step = lambda V, _: (V - GEN_LR * jax.grad(loss)(V), None)
    return jax.lax.scan(step, V0, None, length=GEN_STEPS)[0]


_train_order3_jit = jax.jit(_train_order3)


def generalization_point(key: jax.Array, d: int, j: int) -> dict:
    """Relative test MSEs of the order-3 model (GD), the NTK and K_3 (best-ridge KRR), one seed.

    The same computation as the chapter's live cell of section 4 (which runs one grid point).
    """
    n = gen_n(d, j)
    k_t, k_tr, k_te, k_n, k_w, k_v = jax.random.split(key, 6)
    target = tl.targets.staircase(k_t, d, degrees=(GEN_K,))
    x_test = tl.data.sphere(k_te, GEN_N_TEST, d)
    y_test = target(x_test)
    rel_mse = lambda pred: float(jnp.mean((pred - y_test) ** 2) / jnp.mean(y_test**2))
    x = tl.data.sphere(k_tr, n, d)
    y = target(x)
    p0 = tl.nets.two_layer(GEN_M, activation=ACT).init(k_n, d)
    V0 = GEN_INIT * jax.random.normal(k_v, p0["W"].shape) / math.sqrt(d)
    V = _train_order3_jit(p0, V0, x, y)
    W = tl.quadratic.to_movement(V, GEN_K)
    out = {"order3": rel_mse(tl.quadratic.two_layer_terms(p0, W, x_test, activation=ACT, order=GEN_K)[GEN_K])}
    wide = tl.nets.two_layer(GEN_M_KERNEL, activation=ACT, symmetric=False).init(k_w, d)
    kernels = {
        "ntk": lambda a, b=None: tl.ntk.two_layer_ntk(wide, a, b, activation=ACT, trainable=("W",)),
        "kernel3": lambda a, b=None: tl.quadratic.order_k_ntk(wide, a, b, activation=ACT, k=GEN_K),
    }
    for name, kern in kernels.items():
        K, K_test = kern(x), kern(x_test, x)
        scale = float(jnp.trace(K)) / n
        out[name] = min(rel_mse(tl.kernel_regression.krr(K, y, K_test, ridge=r * scale)) for r in RIDGES)
    print(f"  generalization d={d} n={n}: " + " ".join(f"{k} {v:.3f}" for k, v in out.items()), flush=True)
    return out


def coupling_args() -> dict:
    """The settings of the coupling sweep, recorded in its sidecar (``tl.sweep.run(..., args=)``)."""
    return dict(
        script="experiments/higher_order.py",
        activation=ACT,
        d=COUPLING_D,
        n=COUPLING_N,
        movement="coherent on the a_r = +1 half, C_k m^(-1/(2k)) e_1, C_k = unit_scale",
        precision="float32 draws, float64 evaluation",
    )


def generalization_args() -> dict:
    """The settings of the generalization sweep, recorded in its sidecar."""
    return dict(
        script="experiments/higher_order.py",
        activation=ACT,
        n="round(d^2 2^((j-4)/2))",
        k=GEN_K,
        m=GEN_M,
        m_kernel=GEN_M_KERNEL,
        steps=GEN_STEPS,
        lr=GEN_LR,
        init=GEN_INIT,
        n_test=GEN_N_TEST,
        ridges=list(RIDGES),
    )


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--only", choices=("coupling", "generalization"), default=None)
    parser.add_argument("--coupling-seeds", type=int, default=3)
    parser.add_argument("--generalization-seeds", type=int, default=4)
    args = parser.parse_args(argv)
    k_coupling, k_gen = chapter_keys()
    start = time.perf_counter()
    if args.only in (None, "coupling"):
        print("coupling sweep", flush=True)
        tl.sweep.run(
            coupling_point,
            {"k": list(COUPLING_ORDERS), "m": list(COUPLING_WIDTHS)},
            seeds=jax.random.split(k_coupling, args.coupling_seeds),
            cache=COUPLING_CACHE,
            vectorize=False,
            args=coupling_args(),
        )
        print(f"  done after {time.perf_counter() - start:.0f} s", flush=True)
    if args.only in (None, "generalization"):
        print("generalization sweep", flush=True)
        tl.sweep.run(
            generalization_point,
            {"d": list(GEN_DS), "j": list(GEN_J)},
            seeds=jax.random.split(k_gen, args.generalization_seeds),
            cache=GEN_CACHE,
            vectorize=False,
            args=generalization_args(),
        )
    print(f"finished in {time.perf_counter() - start:.0f} s", flush=True)


if __name__ == "__main__":
    main()
