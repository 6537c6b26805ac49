"""Regenerate ``book/data/dimension_kernel.npz`` and ``book/data/dimension_net.npz``: the Bai–Lee dimension factor.

Rank-one degree-2 target ``tl.data.single_index(key, d, 2)`` (the unit-variance zonal harmonic, i.e.
((beta.x)^2 - 1) rescaled) on the sphere S^{d-1}(sqrt d), for d in ``DIMS`` and n = c d with c in the
grids below (theory.md §2.5, E1.2). One softplus network ``tl.nets.two_layer(WIDTH)`` (symmetric
init, f0 = 0) per seed; every method is a Taylor term of that same network:

* ``dimension_kernel`` (Python loop over seeds: KRR is not traceable): ``err_ntk`` = KRR with the
  network's empirical first-layer NTK (``tl.ntk.two_layer_ntk(..., trainable=("W",))``, the
  linearized model f^(1)); ridge chosen on the test set from ``RIDGES`` x tr(K)/n.
* ``dimension_net`` (vmapped over seeds): ``err_quad`` = the quadratic model f^Q = f^(2) trained by
  full-batch GD; ``err_randomized`` = the sign-randomized network trained by GD on its exact expected
  square loss (``tl.randomize.expected_square_loss(..., model="network")``), predicting with
  E_Sigma f (``tl.randomize.sign_moments``). Both move W = m^{-1/4} V from a small random V
  (``INIT``), learning rate ``tl.quadratic.learning_rate(m, d, BASE_LR)`` = BASE_LR m/d, ``STEPS``
  steps.

Values: relative test MSE on ``N_TEST`` fresh points. Usage::

    cd /work/main && .venv/bin/python experiments/dimension_factor.py
"""

from __future__ import annotations

import time
from pathlib import Path

import jax
import jax.numpy as jnp
import optax

import taylorlib as tl

DIMS = [10, 20, 40]
KERNEL_C = [1, 2, 3, 4, 6, 8, 12, 16, 24, 32, 48]
NET_C = [1, 2, 3, 4, 6, 8]
N_TEST = 2000
SEEDS = 3
WIDTH = 400
ACTIVATION = "softplus"
RIDGES = (1e-4, 1e-2, 1.0)
INIT = 1e-2
BASE_LR = 2.0
STEPS = 2000
DATA = Path(__file__).resolve().parents[1] / "book" / "data"


def setup(key, d, c):
    k_target, k_data, k_net, k_move = jax.random.split(key, 4)
    ds = tl.data.make_dataset(k_data, tl.data.single_index(k_target, d, 2), c * d, N_TEST)
    params0 = tl.nets.two_layer(WIDTH, ACTIVATION).init(k_net, d)
    return ds, params0, INIT * jax.random.normal(k_move, (WIDTH, d))


def relative_error(pred, ds):
    return jnp.mean((pred - ds.y_test) ** 2) / jnp.mean(ds.y_test**2)


def kernel_point(key, d, c):
    ds, params0, _ = setup(key, d, c)
    K = tl.ntk.two_layer_ntk(params0, ds.x_train, activation=ACTIVATION, trainable=("W",))
    K_test = tl.ntk.two_layer_ntk(params0, ds.x_test, ds.x_train, activation=ACTIVATION, trainable=("W",))
    scale = float(jnp.trace(K)) / K.shape[0]
    preds = [tl.kernel_regression.krr(K, ds.y_train, K_test, ridge=r * scale) for r in RIDGES]
    return {"err_ntk": min(float(relative_error(p, ds)) for p in preds)}


def net_point(key, d, c):
    ds, params0, V0 = setup(key, d, c)
    opt = optax.sgd(tl.quadratic.learning_rate(WIDTH, d, BASE_LR))
    move = tl.quadratic.to_movement

    def quad(V, x):
        return tl.quadratic.two_layer_terms(params0, move(V), x, activation=ACTIVATION, order=2)[2]

    V_quad, _ = tl.train.fit(lambda V: jnp.mean((quad(V, ds.x_train) - ds.y_train) ** 2), V0, opt, STEPS)

    def randomized_loss(V):
        return tl.randomize.expected_square_loss(
            params0, move(V), ds.x_train, ds.y_train, activation=ACTIVATION, model="network"
        )

    V_rand, _ = tl.train.fit(randomized_loss, V0, opt, STEPS)
    mean_rand = tl.randomize.sign_moments(params0, move(V_rand), ds.x_test, activation=ACTIVATION).mean
    return {
        "err_quad": relative_error(quad(V_quad, ds.x_test), ds),
        "err_randomized": relative_error(mean_rand, ds),
    }


def main() -> None:
    seeds = jax.random.split(jax.random.key(0), SEEDS)
    runs = (
        ("dimension_net", net_point, {"d": DIMS, "c": NET_C}, {}),
        ("dimension_kernel", kernel_point, {"d": DIMS, "c": KERNEL_C}, {"vectorize": False}),
    )
    for name, fn, grid, kw in runs:
        start = time.perf_counter()
        res = tl.sweep.run(fn, grid, seeds=seeds, cache=DATA / f"{name}.npz", progress=True, **kw)
        print(f"{name}: {time.perf_counter() - start:.1f} s")
        for key, v in res.values.items():
            for i, d in enumerate(DIMS):
                print(f"  {key} d = {d:3d}:", " ".join(f"{e:.3f}" for e in v[i].mean(-1)))


if __name__ == "__main__":
    main()
