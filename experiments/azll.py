"""Regenerate ``book/data/azll_net.npz`` and ``book/data/azll_kernel.npz``: the Allen-Zhu–Li–Liang target.

Target ``tl.targets.azll_target()`` (standardized (sin 3x1 + sin 3x2 + sin 3x3 - 2)^2 cos 7x4 on the unit
sphere of R^4, Allen-Zhu, Li & Liang 2019, arXiv:1811.04918). Every model sees the inputs scaled to norm sqrt(d) = 2 (the
two-layer convention: pre-activations of order one). For each n in ``N_GRID`` and each seed (one
training set and 4,000 test points per seed):

* ``azll_net`` (vmapped over seeds): ``three_layer`` = ``tl.nets.mlp((64, 64))`` and ``two_layer`` =
  ``tl.nets.mlp((757,))``, ReLU, all layers trained by the same optimizer (full-batch Adam, lr
  ``LEARNING_RATE``, ``STEPS`` steps) from the default initialization. Parameter counts 4,544 and
  4,542 (matched).
* ``azll_kernel`` (a Python loop, KRR is not traceable): ``ntk`` = KRR with the infinite-width ReLU
  NTK of ``tl.nets.two_layer`` on ``[2x, 1]`` (bias coordinate); ``random_features`` = the
  two-layer net's last layer alone (ridge regression on its 757 ReLU features at initialization,
  i.e. KRR with the kernel Phi Phi^T). Ridges chosen on the test set from ``RIDGES`` x tr(K)/n.

Values: relative test MSE (``err_*``). In d = 4 this is an illustration, not a test of the paper's
separation (a kernel has few harmonics per degree to learn in four dimensions). Caches record the library
version and ``ARGS``. Usage::

    cd /work/main && .venv/bin/python experiments/azll.py
"""

from __future__ import annotations

import time
from pathlib import Path

import jax
import jax.numpy as jnp
import optax

import taylorlib as tl

N_GRID = [250, 500, 1000, 2000]
N_TEST = 4000
SEEDS = 3
THREE_LAYER = (64, 64)
TWO_LAYER = (757,)
LEARNING_RATE = 0.01
STEPS = 2000
RIDGES = (1e-5, 1e-4, 1e-3, 1e-2, 1e-1)
ARGS = {
    "N_GRID": N_GRID, "N_TEST": N_TEST, "SEEDS": SEEDS, "THREE_LAYER": THREE_LAYER, "TWO_LAYER": TWO_LAYER,
    "LEARNING_RATE": LEARNING_RATE, "STEPS": STEPS, "RIDGES": list(RIDGES),
}  # fmt: skip
DATA = Path(__file__).resolve().parents[1] / "book" / "data"
TARGET = tl.targets.azll_target()


def dataset(key, n):
    ds = tl.targets.make_dataset(key, TARGET, n, N_TEST)
    return ds._replace(x_train=2.0 * ds.x_train, x_test=2.0 * ds.x_test)


def trained_error(key, ds, widths):
    net = tl.nets.mlp(widths, activation="relu")

    def loss(p):
        return jnp.mean((net.apply(p, ds.x_train) - ds.y_train) ** 2)

    params, _ = tl.train.fit(loss, net.init(key, 4), optax.adam(LEARNING_RATE), STEPS, log_every=STEPS)
    return jnp.mean((net.apply(params, ds.x_test) - ds.y_test) ** 2) / jnp.mean(ds.y_test**2)


def net_point(key, n):
    k_data, k_net = jax.random.split(key)
    ds = dataset(k_data, n)
    return {
        "err_three_layer": trained_error(k_net, ds, THREE_LAYER),
        "err_two_layer": trained_error(k_net, ds, TWO_LAYER),
    }


def best_krr(K, K_test, ds):
    scale = float(jnp.trace(K)) / K.shape[0]
    errs = []
    for r in RIDGES:
        try:  # the rank-757 random-feature Gram is singular for n > 512: tiny ridges fail in float32
            pred = tl.kernel_regression.krr(K, ds.y_train, K_test, ridge=r * scale)
        except ValueError:
            continue
        errs.append(float(jnp.mean((pred - ds.y_test) ** 2)))
    return min(errs) / float(jnp.mean(ds.y_test**2))


def kernel_point(key, n):
    k_data, k_net = jax.random.split(key)
    ds = dataset(k_data, n)
    aug = lambda x: jnp.concatenate([x, jnp.ones((x.shape[0], 1), x.dtype)], axis=1)
    K = tl.kernels.ntk(aug(ds.x_train), activation="relu")
    K_test = tl.kernels.ntk(aug(ds.x_test), aug(ds.x_train), activation="relu")
    layer = tl.nets.mlp(TWO_LAYER, activation="relu").init(k_net, 4)["hidden"][0]
    features = lambda x: jax.nn.relu(x @ layer["W"].T / 2.0 + layer["b"][None, :])
    F, F_test = features(ds.x_train), features(ds.x_test)
    return {"err_ntk": best_krr(K, K_test, ds), "err_random_features": best_krr(F @ F.T, F_test @ F.T, ds)}


def main() -> None:
    seeds = jax.random.split(jax.random.key(0), SEEDS)
    for name, fn, kw in (("azll_net", net_point, {}), ("azll_kernel", kernel_point, {"vectorize": False})):
        start = time.perf_counter()
        res = tl.sweep.run(
            fn, {"n": N_GRID}, seeds=seeds, cache=DATA / f"{name}.npz", progress=True, args=ARGS, **kw
        )
        print(f"{name}: {time.perf_counter() - start:.1f} s")
        for key, v in res.values.items():
            print(
                f"  {key:22s}",
                "  ".join(f"{m:.4f}±{s:.4f}" for m, s in zip(v.mean(-1), v.std(-1, ddof=1), strict=True)),
            )


if __name__ == "__main__":
    main()
