"""Regenerate ``book/data/nbl_*.npz``: a dense plus a sparse part, the NTK and the quadratic model (Nichani–Bai–Lee).

Target ``tl.targets.dense_plus_sparse(key, d, 1, 2)`` on the sphere: a dense linear part (a random linear
function of all coordinates) plus a sparse degree-2 zonal harmonic of one direction, equal energies.
The network is ``tl.nets.two_layer(WIDTH, "smooth_relu2")``: sigma'' of the smooth ReLU^2 has an even
and an odd part, so the quadratic model f^(2) can represent both halves (no parity obstruction). For d
in ``DIMS``, n = c d (c in ``C_GRID``: one ratio n/d, several d) and each seed:

* ``nbl_kernel`` (Python loop: KRR checks its inputs on the host), oracle ridge from ``RIDGES`` x tr(K)/n:
  ``err_ntk`` = KRR with the empirical first-layer NTK Theta_m; ``err_ntk_quadntk`` = KRR with
  Theta_m + K_Q (K_Q = ``tl.quadratic.quad_ntk``, the Gram of the quadratic model's features, rescaled
  to the trace of Theta_m): the sum of the two kernels, still a kernel method.
* ``nbl_net`` (vmapped over seeds), full-batch GD, lr ``tl.quadratic.learning_rate(m, d, BASE_LR)``,
  ``STEPS`` steps, width-free parametrizations W_L = m^{-1/2} U (NTK scale, from 0) and
  W_Q = m^{-1/4} V (quadratic scale, from a small random V):
  ``err_quad`` = f^(2)(W_Q) alone;
  the *joint Taylor model* f^(1)(W_L) + f^(1)(W_Q) + f^(2)(W_Q) of the same first layer, trained three
  ways: ``err_joint_free`` (plain square loss), ``err_joint_proj`` (W_Q restricted to the good
  directions: V is projected onto the null space of the training Jacobian W -> (f^(1)_W(x_i))_i
  before it enters the model, so the quadratic-scale movement cannot move the linear model on the
  data) and ``err_joint_pen`` (the soft version: square loss + ``PENALTY`` x mean_i f^(1)_{W_Q}(x_i)^2);
  ``sparse_by_f2_*`` / ``dense_by_lin_*`` = fraction of the sparse part carried by f^(2)(W_Q) and of
  the dense part carried by f^(1)(W_L) + f^(1)(W_Q) (test-set coefficient <f, part>/<part, part>
  divided by the part's weight).
* ``nbl_good`` (d = ``GOOD_D``, widths ``GOOD_M``): RMS over test inputs of f^(1) and f^(2) for a coherent
  quadratic-scale movement w_r = 2 m^{-1/4} v (on the a_r = +1 half), the same rows with fixed random
  signs (f^(2) unchanged) and those rows projected onto the null space of W -> P_{<=2} f^(1)_W.

Caches record the library version and the settings ``ARGS[name]`` each sweep depends on. Usage::

    .venv/bin/python experiments/nbl.py
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

DIMS = [12, 20, 32]
C_GRID = [8]
N_TEST = 2000
SEEDS = 3
WIDTH = 400
ACTIVATION = "smooth_relu2"
RIDGES = (1e-5, 1e-4, 1e-3, 1e-2, 1e-1, 1.0)
INIT = 1e-2
BASE_LR = 1.0
STEPS = 1000
PENALTY = 1.0
N_PROBE = 4000
GOOD_D = 16
GOOD_M = [100, 400, 1600]
GOOD_ACTIVATION = "softplus"
MODEL = {
    "DIMS": DIMS,
    "C_GRID": C_GRID,
    "N_TEST": N_TEST,
    "WIDTH": WIDTH,
    "ACTIVATION": ACTIVATION,
    "INIT": INIT,
}
ARGS = {  # the settings each sweep depends on
    "nbl_good": {"N_TEST": N_TEST, "N_PROBE": N_PROBE, "GOOD_D": GOOD_D, "GOOD_ACTIVATION": GOOD_ACTIVATION},
    "nbl_net": {**MODEL, "BASE_LR": BASE_LR, "STEPS": STEPS, "PENALTY": PENALTY},
    "nbl_kernel": {**MODEL, "RIDGES": list(RIDGES)},
}
DATA = Path(__file__).resolve().parents[1] / "book" / "data"


def setup(key, d, c):
    k_target, k_data, k_net, k_move = jax.random.split(key, 4)
    target = tl.targets.dense_plus_sparse(k_target, d, 1, 2)
    ds = tl.targets.make_dataset(k_data, target, c * d, N_TEST)
    params0 = tl.nets.two_layer(WIDTH, ACTIVATION).init(k_net, d)
    return target, ds, params0, INIT * jax.random.normal(k_move, (WIDTH, d))


def relative_error(pred, ds):
    return jnp.mean((pred - ds.y_test) ** 2) / jnp.mean(ds.y_test**2)


def oracle_krr(K, K_test, ds):
    scale = float(jnp.trace(K)) / K.shape[0]
    errs = []
    for r in RIDGES:
        try:  # a Cholesky failure at a tiny ridge (float32) just drops that ridge
            errs.append(float(relative_error(tl.kernel_regression.krr(K, ds.y_train, K_test, r * scale), ds)))
        except ValueError:
            errs.append(np.inf)
    return min(errs)


def kernel_point(key, d, c):
    _, ds, params0, _ = setup(key, d, c)
    ntk = lambda x1, x2=None: tl.ntk.two_layer_ntk(params0, x1, x2, activation=ACTIVATION, trainable=("W",))
    quad = lambda x1, x2=None: tl.quadratic.quad_ntk(params0, x1, x2, activation=ACTIVATION)
    K, K_test = ntk(ds.x_train), ntk(ds.x_test, ds.x_train)
    KQ, KQ_test = quad(ds.x_train), quad(ds.x_test, ds.x_train)
    s = float(jnp.trace(K) / jnp.trace(KQ))
    return {
        "err_ntk": oracle_krr(K, K_test, ds),
        "err_ntk_quadntk": oracle_krr(K + s * KQ, K_test + s * KQ_test, ds),
    }


def low_degree_projector(params0, x, activation):
    """(D, m d) matrix L: L vec(W) = coefficients of the degree <= 2 part of f^(1)_W on the probes x."""
    iu = np.triu_indices(x.shape[1])
    feats = jnp.concatenate([jnp.ones((x.shape[0], 1)), x, x[:, iu[0]] * x[:, iu[1]]], axis=1)
    basis, _, _ = jnp.linalg.svd(feats, full_matrices=False)
    basis = basis[:, : feats.shape[1] - 1]  # sum_i x_i^2 = d on the sphere: one monomial is redundant
    g = tl.activations.derivative(activation, 1)(x @ params0["W"].T) * params0["a"][None, :]
    L = jnp.stack([basis.T @ (g * x[:, i : i + 1]) for i in range(x.shape[1])], axis=-1)  # (D, m, d)
    return L.reshape(basis.shape[1], -1) / math.sqrt(x.shape[0])


def null_space_projection(L):
    """The map W -> W - L^T (L L^T)^{-1} L W (orthogonal projection onto the null space of L)."""
    Q, _ = jnp.linalg.qr(L.T)  # (m d, D) orthonormal basis of the row space

    def project(W):
        w = W.reshape(-1)
        return (w - Q @ (Q.T @ w)).reshape(W.shape)

    return project


def training_jacobian(params0, x, activation):
    """(n, m d) matrix J: J vec(W) = (f^(1)_W(x_i))_i, rows normalized (only its null space is used)."""
    g = tl.activations.derivative(activation, 1)(x @ params0["W"].T) * params0["a"][None, :]
    J = (g[:, :, None] * x[:, None, :]).reshape(x.shape[0], -1)
    return J / jnp.linalg.norm(J, axis=1, keepdims=True)


def net_point(key, d, c):
    target, ds, params0, V0 = setup(key, d, c)
    opt = optax.sgd(tl.quadratic.learning_rate(WIDTH, d, BASE_LR))
    project = null_space_projection(training_jacobian(params0, ds.x_train, ACTIVATION))
    move = tl.quadratic.to_movement

    def terms(W, x, order):
        return tl.quadratic.two_layer_terms(params0, W, x, activation=ACTIVATION, order=order)

    def parts(P, x, proj):
        lin_l = terms(move(P["U"], k=1), x, 1)[1]
        _, lin_q, f2 = terms(move(project(P["V"]) if proj else P["V"]), x, 2)
        return lin_l + lin_q, f2, lin_q

    def loss(P, proj, penalty):
        lin, f2, lin_q = parts(P, ds.x_train, proj)
        return jnp.mean((lin + f2 - ds.y_train) ** 2) + penalty * jnp.mean(lin_q**2)

    def quad_loss(V):
        return jnp.mean((terms(move(V), ds.x_train, 2)[2] - ds.y_train) ** 2)

    V, _ = tl.train.fit(quad_loss, V0, opt, STEPS, log_every=STEPS)
    P0 = {"U": jnp.zeros_like(V0), "V": V0}
    (dense, sparse), (w_dense, w_sparse) = target.components, target.weights
    share = lambda f, g, w: jnp.mean(f * g(ds.x_test)) / (w * jnp.mean(g(ds.x_test) ** 2))
    out = {"err_quad": relative_error(terms(move(V), ds.x_test, 2)[2], ds)}
    for name, proj, pen in (("free", False, 0.0), ("proj", True, 0.0), ("pen", False, PENALTY)):
        P, _ = tl.train.fit(lambda P, proj=proj, pen=pen: loss(P, proj, pen), P0, opt, STEPS, log_every=STEPS)
        lin, f2, _ = parts(P, ds.x_test, proj)
        out[f"err_joint_{name}"] = relative_error(lin + f2, ds)
        out[f"sparse_by_f2_{name}"] = share(f2, sparse, w_sparse)
        out[f"dense_by_lin_{name}"] = share(lin, dense, w_dense)
    return out


def good_point(key, m):
    k_net, k_v, k_sign, k_probe, k_test = jax.random.split(key, 5)
    params0 = tl.nets.two_layer(m, GOOD_ACTIVATION).init(k_net, GOOD_D)
    v = jax.random.normal(k_v, (GOOD_D,))
    v = v / jnp.linalg.norm(v)
    coherent = 2.0 * m**-0.25 * (params0["a"] > 0)[:, None] * v[None, :]
    signed = tl.randomize.sign_flip(k_sign, coherent)
    probes = tl.data.sphere(k_probe, N_PROBE, GOOD_D)
    projected = null_space_projection(low_degree_projector(params0, probes, GOOD_ACTIVATION))(signed)
    x = tl.data.sphere(k_test, N_TEST, GOOD_D)
    out = {}
    for name, W in (("coherent", coherent), ("signed", signed), ("projected", projected)):
        _, f1, f2 = tl.quadratic.two_layer_terms(params0, W, x, activation=GOOD_ACTIVATION, order=2)
        out[f"f1_{name}"], out[f"f2_{name}"] = jnp.sqrt(jnp.mean(f1**2)), jnp.sqrt(jnp.mean(f2**2))
    return out


def main() -> None:
    seeds = jax.random.split(jax.random.key(0), SEEDS)
    runs = (
        ("nbl_good", good_point, {"m": GOOD_M}, {}),
        ("nbl_net", net_point, {"d": DIMS, "c": C_GRID}, {}),
        ("nbl_kernel", kernel_point, {"d": DIMS, "c": C_GRID}, {"vectorize": False}),
    )
    for name, fn, grid, kw in runs:
        start = time.perf_counter()
        res = tl.sweep.run(
            fn, grid, seeds=seeds, cache=DATA / f"{name}.npz", progress=True, args=ARGS[name], **kw
        )
        print(f"{name}: {time.perf_counter() - start:.1f} s", flush=True)
        for key, v in res.values.items():
            print(f"  {key:16s}", " ".join(f"{e:.4f}" for e in v.reshape(-1, v.shape[-1]).mean(-1)))


if __name__ == "__main__":
    main()
