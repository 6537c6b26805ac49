"""Regenerate ``book/data/lmz_kernel.npz`` and ``book/data/lmz_net.npz``: kernels vs GD on ``a^T|W* x|``.

Li–Ma–Zhang setting (theory.md §5.4, E5.1): d = 16, x ~ N(0, I), target ``tl.data.abs_teacher`` (centered,
unit variance). For each n in ``N_GRID`` and each seed (one teacher, one training set, 2,000 test
points per seed):

* ``lmz_kernel``: KRR with the infinite-width ReLU NTK of ``tl.nets.two_layer`` on inputs with a bias
  coordinate ``[x, 1]`` (the bias-free ReLU NTK is 1-homogeneous and cannot fit even functions of
  Gaussian x); the ridge is chosen on the test set from ``RIDGES`` x tr(K)/n (an oracle that favours
  the kernel). Values ``err`` (relative test MSE) and ``log10_ridge``.
* ``lmz_net``: a two-layer ReLU ``tl.nets.mlp((WIDTH,))`` (both layers and biases trained) from a
  small initialization (all parameters x ``INIT_SCALE``), full-batch Adam for ``STEPS`` steps; vmapped
  over seeds by ``tl.sweep.run``. Values ``err`` and ``train_loss``.

Relative test MSE = mean (f - f*)^2 / mean f*^2 on the test set. Usage::

    cd /work/main && .venv/bin/python experiments/lmz.py

Both sweeps cache (and resume) through ``tl.sweep``; delete the two ``.npz``/``.json`` pairs to recompute.
"""

from __future__ import annotations

import time
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np
import optax

import taylorlib as tl

D = 16
N_GRID = [250, 500, 1000, 2000, 3000]
N_TEST = 2000
SEEDS = 3
RIDGES = (1e-4, 1e-3, 1e-2, 1e-1)
WIDTH = 128
INIT_SCALE = 0.01
LEARNING_RATE = 0.01
STEPS = 3000
DATA = Path(__file__).resolve().parents[1] / "book" / "data"


def dataset(key, n):
    k_target, k_data = jax.random.split(key)
    return tl.data.make_dataset(k_data, tl.data.abs_teacher(k_target, D), n, N_TEST)


def with_bias(x):
    return jnp.concatenate([x, jnp.ones((x.shape[0], 1), x.dtype)], axis=1)


def kernel_point(key, n):
    ds = dataset(key, n)
    K = tl.kernels.ntk(with_bias(ds.x_train), activation="relu")
    K_test = tl.kernels.ntk(with_bias(ds.x_test), with_bias(ds.x_train), activation="relu")
    scale = float(jnp.trace(K)) / n
    errs = [
        float(jnp.mean((tl.kernel_regression.krr(K, ds.y_train, K_test, ridge=r * scale) - ds.y_test) ** 2))
        for r in RIDGES
    ]
    best = int(np.argmin(errs))
    return {"err": errs[best] / float(jnp.mean(ds.y_test**2)), "log10_ridge": float(np.log10(RIDGES[best]))}


def net_point(key, n):
    ds = dataset(key, n)
    net = tl.nets.mlp((WIDTH,), activation="relu")
    params0 = jax.tree_util.tree_map(lambda v: INIT_SCALE * v, net.init(jax.random.fold_in(key, 1), D))

    def loss(p):
        return jnp.mean((net.apply(p, ds.x_train) - ds.y_train) ** 2)

    params, hist = tl.train.fit(loss, params0, optax.adam(LEARNING_RATE), STEPS, log_every=STEPS)
    err = jnp.mean((net.apply(params, ds.x_test) - ds.y_test) ** 2) / jnp.mean(ds.y_test**2)
    return {"err": err, "train_loss": loss(params)}


def main() -> None:
    seeds = jax.random.split(jax.random.key(0), SEEDS)
    grid = {"n": N_GRID}
    for name, fn, kw in (("lmz_net", net_point, {}), ("lmz_kernel", kernel_point, {"vectorize": False})):
        start = time.perf_counter()
        res = tl.sweep.run(fn, grid, seeds=seeds, cache=DATA / f"{name}.npz", progress=True, **kw)
        print(f"{name}: {time.perf_counter() - start:.1f} s")
        for i, n in enumerate(N_GRID):
            e = res.values["err"][i]
            print(f"  n = {n:5d}  err = {e.mean():.4f} ± {e.std(ddof=1):.4f}")


if __name__ == "__main__":
    main()
