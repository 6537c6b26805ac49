"""Regenerate ``book/data/lmz_*.npz``: kernels vs gradient descent on ``a^T|W* x|`` (Li–Ma–Zhang setting).

x ~ N(0, I_d), target ``tl.targets.abs_teacher(key, d)`` (centered, unit variance; its Hermite degrees >= 4
carry (pi - 3)/(pi - 2) ~ 0.124 of the variance). For d in ``DIMS`` and n = c d^2 / 2 (c in the grids
below, so n / d^2 is the same at every d), per seed (one teacher, one training set, ``N_TEST`` test
points):

* ``lmz_kernel`` (Python loop: KRR checks its inputs on the host): KRR with the infinite-width ReLU NTK
  of ``tl.nets.two_layer`` on inputs with a bias coordinate ``[x, 1]`` (the bias-free ReLU NTK is
  positively 1-homogeneous and cannot fit even functions of Gaussian x); ``err_r{i}`` = relative test
  error at ridge ``RIDGES[i]`` x tr(K)/n (ridge 0 = interpolation), ``err`` = the best of them (an
  oracle that favours the kernel) and ``ridge_index`` = its index.
* ``lmz_net`` (vmapped over seeds, d in ``NET_DIMS``): a two-layer ReLU ``tl.nets.mlp((WIDTH,))`` (both layers and biases
  trained) from a small initialization (every parameter x ``INIT_SCALE``), ``STEPS`` full-batch steps
  of Adam (lr ``LEARNING_RATE``); values ``err`` and ``train_loss``.
* ``lmz_width`` (d = ``WIDTH_D``, n = ``WIDTH_N``): the same network at widths ``WIDTHS``; the teacher is
  exactly a width-2d ReLU network (|z| = relu(z) + relu(-z)), so widths below 2d cannot represent it.

Caches record the library version and the settings ``ARGS[name]`` each sweep depends on. Usage::

    .venv/bin/python experiments/lmz.py [lmz_kernel lmz_net lmz_width]
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np
import optax

import taylorlib as tl

DIMS = [12, 16, 24]
KERNEL_C = [1, 2, 4, 8, 16]
NET_DIMS = [12, 16]
NET_C = [4, 16]
N_TEST = 2000
SEEDS = 3
RIDGES = (0.0, 1e-4, 1e-3, 1e-2, 1e-1, 1.0)
WIDTH = 128
INIT_SCALE = 0.01
LEARNING_RATE = 0.01
STEPS = 3000
WIDTH_D = 16
WIDTH_N = 2048
WIDTHS = [8, 16, 32, 64]
NET = {"WIDTH": WIDTH, "INIT_SCALE": INIT_SCALE, "LEARNING_RATE": LEARNING_RATE, "STEPS": STEPS}
ARGS = {  # the settings each sweep depends on
    "lmz_kernel": {"N_TEST": N_TEST, "RIDGES": list(RIDGES), "n": "c * d * d // 2"},
    "lmz_net": {"N_TEST": N_TEST, **NET, "n": "c * d * d // 2"},  # width WIDTH
    "lmz_width": {"N_TEST": N_TEST, **NET, "WIDTH_D": WIDTH_D, "WIDTH_N": WIDTH_N},
}
DATA = Path(__file__).resolve().parents[1] / "book" / "data"


def dataset(key, d, n):
    k_target, k_data = jax.random.split(key)
    return tl.targets.make_dataset(k_data, tl.targets.abs_teacher(k_target, d), n, N_TEST)


def with_bias(x):
    return jnp.concatenate([x, jnp.ones((x.shape[0], 1), x.dtype)], axis=1)


def kernel_point(key, d, c):
    ds = dataset(key, d, c * d * d // 2)
    K = tl.kernels.ntk(with_bias(ds.x_train), activation="relu")
    K_test = tl.kernels.ntk(with_bias(ds.x_test), with_bias(ds.x_train), activation="relu")
    scale = float(jnp.trace(K)) / K.shape[0]
    var = float(jnp.mean(ds.y_test**2))
    out = {}
    for i, r in enumerate(RIDGES):
        try:  # a Cholesky failure at ridge 0 (float32) just drops that ridge
            pred = tl.kernel_regression.krr(K, ds.y_train, K_test, ridge=r * scale)
            out[f"err_r{i}"] = float(jnp.mean((pred - ds.y_test) ** 2)) / var
        except ValueError:
            out[f"err_r{i}"] = np.nan
    errs = np.array([out[f"err_r{i}"] for i in range(len(RIDGES))])
    out["ridge_index"] = float(np.nanargmin(errs))
    out["err"] = float(np.nanmin(errs))
    return out


def trained(key, ds, d, width):
    net = tl.nets.mlp((width,), activation="relu")
    params0 = jax.tree_util.tree_map(lambda v: INIT_SCALE * v, net.init(jax.random.fold_in(key, 1), d))

    def loss(p):
        return jnp.mean((net.apply(p, ds.x_train) - ds.y_train) ** 2)

    params, _ = tl.train.fit(loss, params0, optax.adam(LEARNING_RATE), STEPS, log_every=STEPS)
    err = jnp.mean((net.apply(params, ds.x_test) - ds.y_test) ** 2) / jnp.mean(ds.y_test**2)
    return {"err": err, "train_loss": loss(params)}


def net_point(key, d, c):
    return trained(key, dataset(key, d, c * d * d // 2), d, WIDTH)


def width_point(key, m):
    return trained(key, dataset(key, WIDTH_D, WIDTH_N), WIDTH_D, m)


def main(names) -> None:
    """Run the sweeps named in ``names`` (default: all three)."""
    seeds = jax.random.split(jax.random.key(0), SEEDS)
    runs = (
        ("lmz_kernel", kernel_point, {"d": DIMS, "c": KERNEL_C}, {"vectorize": False}),
        ("lmz_net", net_point, {"d": NET_DIMS, "c": NET_C}, {}),
        ("lmz_width", width_point, {"m": WIDTHS}, {}),
    )
    for name, fn, grid, kw in runs:
        if names and name not in names:
            continue
        start = time.perf_counter()
        res = tl.sweep.run(
            fn, grid, seeds=seeds, cache=DATA / f"{name}.npz", progress=True, args=ARGS[name], **kw
        )
        print(f"{name}: {time.perf_counter() - start:.1f} s", flush=True)
        e = res.values["err"]
        for idx in np.ndindex(*e.shape[:-1]):
            print(f"  {idx}: err = {e[idx].mean():.4f} ± {e[idx].std(ddof=1):.4f}")


if __name__ == "__main__":
    main(sys.argv[1:])
