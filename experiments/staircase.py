"""Regenerate ``book/data/staircase.npz`` (+ ``.json``): the kernel staircase of the Linearization chapter.

Kernel ridge regression with the infinite-width ReLU NTK :math:`\\Theta_\\infty` of ``tl.nets.two_layer``
(both layers trainable) on inputs uniform on the sphere :math:`S^{d-1}(\\sqrt d)`, target
``tl.targets.staircase(key, d, degrees=(1, 2, 3))`` (one zonal harmonic of each degree, energy 1/3 each, unit
variance). For every seed one target, one draw of ``N_MAX`` training points and one test set of ``N_TEST``
points are made; the training set of size ``n`` is the first ``n`` points of the draw, so each seed gives
one learning curve. The ridge is ``RIDGE_FACTOR * tr(K) / n``.

A ``tl.sweep`` cache over ``n`` in ``N_GRID`` x ``SEEDS`` seeds (Python loop over seeds: the target is built
on the host). Values, each ``(len(N_GRID), SEEDS)``:

* ``err``: relative test MSE :math:`E(\\hat f - f^*)^2 / E f^{*2}`;
* ``learned_1``, ``learned_2``, ``learned_3``: fraction of the degree-1, 2, 3 piece captured by the
  predictor, :math:`\\langle \\hat f, \\phi_\\ell\\rangle / (c_\\ell \\|\\phi_\\ell\\|^2)` on the test set (1 = learned,
  0 = not).

The sidecar records the constants below (``args``). Chapter 1 recomputes the point ``n = 4d`` of the first
seed live with the same recipe and compares it with the cache. Usage::

    .venv/bin/python experiments/staircase.py

About two minutes of CPU time; delete ``book/data/staircase.npz`` and ``.json`` to recompute.
"""

from __future__ import annotations

import time
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np

import taylorlib as tl

D = 30
DEGREES = (1, 2, 3)
ACTIVATION = "relu"
#: training-set sizes: a log grid from 10 to 2.5 d^2 plus the marks the chapter asserts at (4d, d^2, 1.5 d^2).
N_GRID = np.unique(np.r_[np.geomspace(10, 2.5 * D**2, 16).round(), 4 * D, D**2, 1.5 * D**2].astype(int))
N_MAX = int(N_GRID[-1])
N_TEST = 2000
SEEDS = 10
#: ridge = RIDGE_FACTOR * tr(K) / n (small: the optimum of Ghorbani, Mei, Misiakiewicz & Montanari is ridgeless).
RIDGE_FACTOR = 1e-3
OUT = Path(__file__).resolve().parents[1] / "book" / "data" / "staircase.npz"


def staircase_point(key: jax.Array, n: int) -> dict:
    """Relative test MSE and per-degree learned fractions of KRR with n training points (one seed)."""
    k_target, k_train, k_test = jax.random.split(key, 3)
    target = tl.targets.staircase(k_target, D, degrees=DEGREES)
    x = tl.data.sphere(k_train, N_MAX, D)[:n]
    x_test = tl.data.sphere(k_test, N_TEST, D)
    y, y_test = target(x), target(x_test)
    pieces = jnp.stack([c(x_test) for c in target.components], axis=1)  # (N_TEST, len(DEGREES))
    K = tl.kernels.ntk(x, activation=ACTIVATION)
    K_test = tl.kernels.ntk(x_test, x, activation=ACTIVATION)
    ridge = RIDGE_FACTOR * float(jnp.trace(K)) / n
    pred = tl.kernel_regression.krr(K, y, K_test, ridge=ridge)
    learned = np.asarray((pred @ pieces) / jnp.sum(pieces**2, axis=0)) / np.asarray(target.weights)
    out = {"err": float(jnp.mean((pred - y_test) ** 2) / jnp.mean(y_test**2))}
    out.update({f"learned_{ell}": float(v) for ell, v in zip(DEGREES, learned, strict=True)})
    return out


def main() -> None:
    start = time.perf_counter()
    args = {
        "script": "experiments/staircase.py",
        "d": D,
        "degrees": list(DEGREES),
        "activation": ACTIVATION,
        "n_max": N_MAX,
        "n_test": N_TEST,
        "ridge_factor": RIDGE_FACTOR,
        "seed": "jax.random.split(jax.random.key(0), SEEDS)",
    }
    print(f"staircase: d = {D}, degrees = {DEGREES}, n = {N_GRID.tolist()}, {SEEDS} seeds", flush=True)
    res = tl.sweep.run(
        staircase_point,
        {"n": N_GRID.tolist()},
        seeds=jax.random.split(jax.random.key(0), SEEDS),
        cache=OUT,
        vectorize=False,
        progress=True,
        args=args,
    )
    err = res.values["err"]
    print(f"wrote {OUT} ({OUT.stat().st_size / 1024:.1f} KiB) in {time.perf_counter() - start:.1f} s")
    for n, m, sd in zip(res.axes["n"], err.mean(axis=1), err.std(axis=1, ddof=1), strict=True):
        print(f"  n = {n:5d}  err = {m:.4f} ± {sd:.4f}")


if __name__ == "__main__":
    main()
