"""Regenerate ``book/data/nbl_kernel.npz``, ``nbl_net.npz`` and ``nbl_good.npz``: NTK + QuadNTK (Nichani–Bai–Lee).

Target ``tl.data.dense_plus_sparse(key, d, 1, 2)`` on the sphere, d = ``D``: a dense linear part (a
random linear function of all coordinates) plus a sparse degree-2 zonal harmonic, equal energies. The
network is ``tl.nets.two_layer(WIDTH, "softplus")``; softplus has an even sigma'', so f^Q is an even
function of x and cannot fit the linear part at all, while the NTK needs n ~ d^2 for the quadratic
part: neither can fit the target alone at n = O(d). For n = c d (c in ``C_GRID``) and each seed:

* ``nbl_kernel``: ``err_ntk`` = KRR with the empirical first-layer NTK (ridge chosen on the test set).
* ``nbl_net`` (vmapped over seeds), all by full-batch GD with lr ``tl.quadratic.learning_rate(m, d,
  BASE_LR)`` for ``STEPS`` steps in width-free parametrizations:
  ``err_quad`` = f^Q alone (W = m^{-1/4} V);
  ``err_joint`` = f^(1)(W_L) + f^(1)(W_Q) + f^(2)(W_Q) with W_L = m^{-1/2} U (NTK scale, from 0) and
  W_Q = m^{-1/4} V (quadratic scale), trained on MSE + ``PENALTY`` x mean_i f^(1)_{W_Q}(x_i)^2: the
  penalty keeps the quadratic-scale movement in directions where the linear model does not move on the
  data (the "good directions");
  ``err_joint_free`` = the same without the penalty (the linear term of W_Q interpolates the data);
  ``dense_learned`` / ``sparse_learned`` = fraction of each part captured by the joint predictor.
* ``nbl_good`` (d = ``GOOD_D``, widths ``GOOD_M``): RMS over test inputs of f^(1) and f^(2) for a
  coherent quadratic-scale movement w_r = 2 m^{-1/4} v (on the a_r = +1 half), the same movement with
  fixed random signs per neuron (f^(2) unchanged), and those signed rows projected onto the null space
  of W -> P_{<=2} f^(1)_W (the degree <= 2 part, estimated on ``N_PROBE`` probe inputs): theory.md §4.5.

Usage::

    cd /work/main && .venv/bin/python experiments/nbl.py
"""

from __future__ import annotations

import math
import time
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np
import optax

import taylorlib as tl

D = 40
C_GRID = [2, 4, 8, 16]
N_TEST = 2000
SEEDS = 3
WIDTH = 400
ACTIVATION = "softplus"
RIDGES = (1e-4, 1e-2, 1.0)
INIT = 1e-2
BASE_LR = 1.0
STEPS = 2000
PENALTY = 1.0
GOOD_D = 16
GOOD_M = [100, 400, 1600]
N_PROBE = 4000
DATA = Path(__file__).resolve().parents[1] / "book" / "data"


def setup(key, c):
    k_target, k_data, k_net, k_move = jax.random.split(key, 4)
    target = tl.data.dense_plus_sparse(k_target, D, 1, 2)
    ds = tl.data.make_dataset(k_data, target, c * D, N_TEST)
    params0 = tl.nets.two_layer(WIDTH, ACTIVATION).init(k_net, D)
    return target, ds, params0, INIT * jax.random.normal(k_move, (WIDTH, D))


def relative_error(pred, ds):
    return jnp.mean((pred - ds.y_test) ** 2) / jnp.mean(ds.y_test**2)


def kernel_point(key, c):
    _, ds, params0, _ = setup(key, c)
    K = tl.ntk.two_layer_ntk(params0, ds.x_train, activation=ACTIVATION, trainable=("W",))
    K_test = tl.ntk.two_layer_ntk(params0, ds.x_test, ds.x_train, activation=ACTIVATION, trainable=("W",))
    scale = float(jnp.trace(K)) / K.shape[0]
    preds = [tl.kernel_regression.krr(K, ds.y_train, K_test, ridge=r * scale) for r in RIDGES]
    return {"err_ntk": min(float(relative_error(p, ds)) for p in preds)}


def net_point(key, c):
    target, ds, params0, V0 = setup(key, c)
    opt = optax.sgd(tl.quadratic.learning_rate(WIDTH, D, BASE_LR))

    def terms(W, x, order):
        return tl.quadratic.two_layer_terms(params0, W, x, activation=ACTIVATION, order=order)

    def quad(V, x):
        return terms(tl.quadratic.to_movement(V), x, 2)[2]

    def joint(P, x):
        t = terms(tl.quadratic.to_movement(P["V"]), x, 2)
        return terms(tl.quadratic.to_movement(P["U"], k=1), x, 1)[1] + t[1] + t[2]

    def joint_loss(P, penalty):
        lin_q = terms(tl.quadratic.to_movement(P["V"]), ds.x_train, 1)[1]
        return jnp.mean((joint(P, ds.x_train) - ds.y_train) ** 2) + penalty * jnp.mean(lin_q**2)

    V, _ = tl.train.fit(lambda V: jnp.mean((quad(V, ds.x_train) - ds.y_train) ** 2), V0, opt, STEPS)
    P0 = {"U": jnp.zeros_like(V0), "V": V0}
    P, _ = tl.train.fit(lambda P: joint_loss(P, PENALTY), P0, opt, STEPS)
    P_free, _ = tl.train.fit(lambda P: joint_loss(P, 0.0), P0, opt, STEPS)
    pred = joint(P, ds.x_test)
    learned = [
        jnp.mean(pred * g(ds.x_test)) / (w * jnp.mean(g(ds.x_test) ** 2))
        for g, w in zip(target.components, target.weights, strict=True)
    ]
    return {
        "err_quad": relative_error(quad(V, ds.x_test), ds),
        "err_joint": relative_error(pred, ds),
        "err_joint_free": relative_error(joint(P_free, ds.x_test), ds),
        "dense_learned": learned[0],
        "sparse_learned": learned[1],
    }


def low_degree_projector(params0, x):
    """(D, m d) matrix L with L vec(W) = coefficients of the degree <= 2 part of f^(1)_W on the probes x."""
    iu = np.triu_indices(x.shape[1])
    feats = jnp.concatenate([jnp.ones((x.shape[0], 1)), x, x[:, iu[0]] * x[:, iu[1]]], axis=1)
    basis, s, _ = jnp.linalg.svd(feats, full_matrices=False)
    basis = basis[:, : feats.shape[1] - 1]  # sum_i x_i^2 = d on the sphere: one monomial is redundant
    g = tl.activations.derivative(ACTIVATION, 1)(x @ params0["W"].T) * params0["a"][None, :]
    L = jnp.stack([basis.T @ (g * x[:, i : i + 1]) for i in range(x.shape[1])], axis=-1)  # (D, m, d)
    return L.reshape(basis.shape[1], -1) / math.sqrt(x.shape[0])


def good_point(key, m):
    k_net, k_v, k_sign, k_probe, k_test = jax.random.split(key, 5)
    params0 = tl.nets.two_layer(m, ACTIVATION).init(k_net, GOOD_D)
    v = jax.random.normal(k_v, (GOOD_D,))
    v = v / jnp.linalg.norm(v)
    coherent = 2.0 * m**-0.25 * (params0["a"] > 0)[:, None] * v[None, :]
    signed = tl.randomize.sign_flip(k_sign, coherent)
    L = low_degree_projector(params0, tl.data.sphere(k_probe, N_PROBE, GOOD_D))
    w = signed.reshape(-1)
    projected = (w - L.T @ jnp.linalg.solve(L @ L.T, L @ w)).reshape(signed.shape)
    x = tl.data.sphere(k_test, N_TEST, GOOD_D)
    out = {}
    for name, W in (("coherent", coherent), ("signed", signed), ("projected", projected)):
        _, f1, f2 = tl.quadratic.two_layer_terms(params0, W, x, activation=ACTIVATION, order=2)
        out[f"f1_{name}"], out[f"f2_{name}"] = jnp.sqrt(jnp.mean(f1**2)), jnp.sqrt(jnp.mean(f2**2))
    return out


def main() -> None:
    seeds = jax.random.split(jax.random.key(0), SEEDS)
    runs = (
        ("nbl_good", good_point, {"m": GOOD_M}, {}),
        ("nbl_net", net_point, {"c": C_GRID}, {}),
        ("nbl_kernel", kernel_point, {"c": C_GRID}, {"vectorize": False}),
    )
    for name, fn, grid, kw in runs:
        start = time.perf_counter()
        res = tl.sweep.run(fn, grid, seeds=seeds, cache=DATA / f"{name}.npz", progress=True, **kw)
        print(f"{name}: {time.perf_counter() - start:.1f} s")
        for key, v in res.values.items():
            print(f"  {key:16s}", " ".join(f"{e:.4f}" for e in v.mean(-1)))


if __name__ == "__main__":
    main()
