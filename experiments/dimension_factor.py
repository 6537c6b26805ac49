"""Regenerate ``book/data/dimension_*.npz``: Bai–Lee's dimension factor, NTK vs quadratic model.

Targets on the sphere S^{d-1}(sqrt d), each with unit variance (``tl.targets.low_rank``):

* ``p2``: rank one, degree 2 (``low_rank(key, d, 2, 1)`` = ``single_index(key, d, 2)``), softplus network;
  d in ``DIMS`` (five dimensions), n = c d.
* ``p3``: rank r* = 2, degree 3 (``low_rank(key, d, 3, 2)``), smooth-ReLU^2 network (its sigma'' has an
  even and an odd part, so f^Q can hold odd functions); d in ``DIMS3``, n = c d^2 / 4.

One network ``tl.nets.two_layer(WIDTH, act)`` (symmetric init, f0 = 0) per seed; both learners are
Taylor terms of that network:

* ``*_kernel`` (Python loop over seeds: KRR checks its inputs on the host): ``err_ntk`` = KRR with the
  network's empirical first-layer NTK Theta_m (``tl.ntk.two_layer_ntk(..., trainable=("W",))``), the
  ridge chosen on the test set from ``RIDGES`` x tr(K)/n (an oracle that favours the kernel);
  ``log10_ridge`` = the chosen ridge factor.
* ``*_net`` (vmapped over seeds): ``err_quad`` = the quadratic model f^Q = f^(2) trained by full-batch
  GD on the unregularized square loss, W = m^{-1/4} V from a small random V (``INIT``), learning rate
  ``tl.quadratic.learning_rate(m, d, BASE_LR)``; ``train_loss``; ``norm24`` = ||W||_{2,4} and
  ``nuclear`` = sum_r ||w_r||^2 / (2 sqrt m) of the trained movement (the norms of Bai & Lee's bound).

Values: relative test MSE on ``N_TEST`` fresh points. Caches record the library version and the script's settings (``args``).
Usage::

    .venv/bin/python experiments/dimension_factor.py [p2|p3|p2:net|p2:kernel|p3:net|p3:kernel ...]
"""

from __future__ import annotations

import math
import sys
import time
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np
import optax

import taylorlib as tl

DIMS = [8, 12, 16, 24, 32]
KERNEL_C = [1, 2, 3, 4, 6, 8, 12, 16, 24, 32]
NET_C = [1, 2, 3, 4, 6, 8, 12, 16]
DIMS3 = [8, 12, 16]
KERNEL_C3 = [1, 2, 4, 8, 16, 32]
NET_C3 = [1, 2, 4, 8, 16]
N_TEST = 2000
SEEDS = 4
WIDTH = 400
RIDGES = (1e-5, 1e-4, 1e-3, 1e-2, 1e-1, 1.0)
INIT = 1e-2
BASE_LR = 2.0
CASES = {  # name: (degree, rank, activation, steps, n(d, c))
    "p2": (2, 1, "softplus", 2000, "c*d"),
    "p3": (3, 2, "smooth_relu2", 2000, "c*d*d//4"),
}
GRIDS = {"p2": (DIMS, KERNEL_C, NET_C), "p3": (DIMS3, KERNEL_C3, NET_C3)}
SHARED = {
    "N_TEST": N_TEST,
    "SEEDS": SEEDS,
    "WIDTH": WIDTH,
    "RIDGES": list(RIDGES),
    "INIT": INIT,
    "BASE_LR": BASE_LR,
}
DATA = Path(__file__).resolve().parents[1] / "book" / "data"


def n_of(case, d, c):
    """The training-set size of grid point (d, c): the rule written in ``CASES``."""
    return c * d if case == "p2" else c * d * d // 4


def setup(key, case, d, c):
    degree, rank, act, _, _ = CASES[case]
    k_target, k_data, k_net, k_move = jax.random.split(key, 4)
    target = tl.targets.low_rank(k_target, d, degree, rank)
    ds = tl.targets.make_dataset(k_data, target, n_of(case, d, c), N_TEST)
    params0 = tl.nets.two_layer(WIDTH, act).init(k_net, d)
    return ds, params0, INIT * jax.random.normal(k_move, (WIDTH, d))


def relative_error(pred, ds):
    return jnp.mean((pred - ds.y_test) ** 2) / jnp.mean(ds.y_test**2)


def oracle_krr(K, K_test, ds):
    """Relative test error at the best ridge of ``RIDGES`` x tr(K)/n, and log10 of that factor."""
    scale = float(jnp.trace(K)) / K.shape[0]
    errs = []
    for r in RIDGES:
        try:  # a Cholesky failure at a tiny ridge (float32) just drops that ridge
            pred = tl.kernel_regression.krr(K, ds.y_train, K_test, ridge=r * scale)
            errs.append(float(relative_error(pred, ds)))
        except ValueError:
            errs.append(np.inf)
    best = int(np.argmin(errs))
    return {"err_ntk": errs[best], "log10_ridge": math.log10(RIDGES[best])}


def kernel_point(key, case, d, c):
    ds, params0, _ = setup(key, case, d, c)
    act = CASES[case][2]
    K = tl.ntk.two_layer_ntk(params0, ds.x_train, activation=act, trainable=("W",))
    K_test = tl.ntk.two_layer_ntk(params0, ds.x_test, ds.x_train, activation=act, trainable=("W",))
    return oracle_krr(K, K_test, ds)


def net_point(key, case, d, c):
    ds, params0, V0 = setup(key, case, d, c)
    act, steps = CASES[case][2], CASES[case][3]
    opt = optax.sgd(tl.quadratic.learning_rate(WIDTH, d, BASE_LR))
    move = tl.quadratic.to_movement

    def quad(V, x):
        return tl.quadratic.two_layer_terms(params0, move(V), x, activation=act, order=2)[2]

    def loss(V):
        return jnp.mean((quad(V, ds.x_train) - ds.y_train) ** 2)

    V, _ = tl.train.fit(loss, V0, opt, steps, log_every=steps)
    W = move(V)
    return {
        "err_quad": relative_error(quad(V, ds.x_test), ds),
        "train_loss": loss(V),
        "norm24": tl.regularizers.norm_2p(W, 4),
        "nuclear": jnp.sum(W**2) / (2 * math.sqrt(WIDTH)),
    }


def main(jobs) -> None:
    """Run ``jobs`` such as ``["p2", "p3:kernel"]`` (a case, optionally restricted to its net or kernel sweep)."""
    seeds = jax.random.split(jax.random.key(0), SEEDS)
    for job in jobs:
        case, _, only = job.partition(":")
        dims, kc, nc = GRIDS[case]
        args = {
            **SHARED,
            "case": case,
            "setting": list(CASES[case]),
            "dims": dims,
            "kernel_c": kc,
            "net_c": nc,
        }
        runs = (
            ("net", net_point, {"d": dims, "c": nc}, {}),
            ("kernel", kernel_point, {"d": dims, "c": kc}, {"vectorize": False}),
        )
        for kind, fn, grid, kw in runs:
            if only and kind != only:
                continue
            name = f"dimension_{case}_{kind}"
            start = time.perf_counter()
            res = tl.sweep.run(
                lambda key, d, c, fn=fn, case=case: fn(key, case, d, c),
                grid,
                seeds=seeds,
                cache=DATA / f"{name}.npz",
                progress=True,
                args={**args, "fn": fn.__name__},
                **kw,
            )
            print(f"{name}: {time.perf_counter() - start:.1f} s", flush=True)
            for key, v in res.values.items():
                for i, d in enumerate(dims):
                    print(f"  {key} d = {d:3d}:", " ".join(f"{e:.3g}" for e in v[i].mean(-1)))


if __name__ == "__main__":
    main(sys.argv[1:] or list(CASES))
