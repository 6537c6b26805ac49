"""Regenerate ``book/data/staircase.npz``: the kernel staircase of the Linearization chapter.

Kernel ridge regression with the infinite-width ReLU NTK of ``tl.nets.two_layer`` (both layers
trainable) on inputs uniform on the sphere :math:`S^{d-1}(\\sqrt d)`, target
``tl.data.staircase(key, d, degrees=(1, 2, 3))`` (one zonal harmonic of each degree, energy 1/3
each, unit variance). For every seed one training set of ``max(N_GRID)`` points is drawn and the
smaller training sets are its prefixes, so each seed gives one learning curve.

Stored arrays (all float64 unless noted):

* ``n`` (int, ``(len(N_GRID),)``): training-set sizes;
* ``err_mean``, ``err_std``: relative test MSE :math:`E(\\hat f - f^*)^2 / E f^{*2}` over seeds;
* ``err``: ``(seeds, len(n))`` the individual curves;
* ``learned_mean``, ``learned_std``: ``(len(n), len(degrees))`` fraction of each piece captured by the predictor,
  :math:`\\langle \\hat f, \\phi_k\\rangle / (c_k \\|\\phi_k\\|^2)` on the test set (1 = learned, 0 = not);
* ``d``, ``degrees``, ``energies`` (:math:`c_k^2`), ``ridge_factor``, ``n_test``, ``seeds``, ``activation``.

Usage::

    cd /work/main && .venv/bin/python experiments/staircase.py

Takes about one minute of CPU time (~2 min wall on a busy 2-core machine). The chapter
``book/01_linearization.ipynb`` loads the file.
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
N_TEST = 2000
SEEDS = 10
#: ridge = RIDGE_FACTOR * tr(K) / n, as in theory.md E6.1 (small: GMMM's optimum is ridgeless).
RIDGE_FACTOR = 1e-3
OUT = Path(__file__).resolve().parents[1] / "book" / "data" / "staircase.npz"


def learning_curve(key: jax.Array) -> tuple[np.ndarray, np.ndarray]:
    """Relative test MSE and per-piece learned fractions for every n in N_GRID (one seed)."""
    k_target, k_train, k_test = jax.random.split(key, 3)
    target = tl.data.staircase(k_target, D, degrees=DEGREES)
    x = tl.data.sphere(k_train, int(N_GRID[-1]), D)
    x_test = tl.data.sphere(k_test, N_TEST, D)
    y, y_test = target(x), target(x_test)
    pieces = jnp.stack([c(x_test) for c in target.components], axis=1)  # (N_TEST, len(DEGREES))
    K = tl.kernels.ntk(x, activation=ACTIVATION)
    K_test = tl.kernels.ntk(x_test, x, activation=ACTIVATION)
    errs, learned = [], []
    for n in N_GRID:
        K_n = K[:n, :n]
        ridge = RIDGE_FACTOR * float(jnp.trace(K_n)) / n
        pred = tl.kernel_regression.krr(K_n, y[:n], K_test[:, :n], ridge=ridge)
        errs.append(float(jnp.mean((pred - y_test) ** 2) / jnp.mean(y_test**2)))
        overlap = (pred @ pieces) / jnp.sum(pieces**2, axis=0)
        learned.append(np.asarray(overlap) / np.asarray(target.weights))
    return np.array(errs), np.array(learned)


def main() -> None:
    start = time.perf_counter()
    key = jax.random.key(0)
    print(f"staircase: d = {D}, degrees = {DEGREES}, n = {N_GRID.tolist()}, {SEEDS} seeds", flush=True)
    errs, learned = [], []
    for s in range(SEEDS):
        e, fr = learning_curve(jax.random.fold_in(key, s))
        errs.append(e)
        learned.append(fr)
        print(
            f"  seed {s}: err = {np.round(e, 3).tolist()}  ({time.perf_counter() - start:.1f} s)", flush=True
        )
    errs, learned = np.array(errs), np.array(learned)
    target = tl.data.staircase(key, D, degrees=DEGREES)
    OUT.parent.mkdir(parents=True, exist_ok=True)
    np.savez_compressed(
        OUT,
        n=N_GRID,
        err=errs,
        err_mean=errs.mean(axis=0),
        err_std=errs.std(axis=0, ddof=1),
        learned_mean=learned.mean(axis=0),
        learned_std=learned.std(axis=0, ddof=1),
        d=D,
        degrees=np.array(DEGREES),
        energies=np.array(target.weights) ** 2,
        ridge_factor=RIDGE_FACTOR,
        n_test=N_TEST,
        seeds=SEEDS,
        activation=ACTIVATION,
    )
    print(f"wrote {OUT} ({OUT.stat().st_size / 1024:.1f} KiB) in {time.perf_counter() - start:.1f} s")
    for n, m, sd in zip(N_GRID, errs.mean(axis=0), errs.std(axis=0, ddof=1), strict=True):
        print(f"  n = {n:5d}  err = {m:.4f} ± {sd:.4f}")


if __name__ == "__main__":
    main()
