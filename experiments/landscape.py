"""Regenerate ``book/data/landscape_*.npz``: the sweeps behind chapter 3, The quadratic landscape.

Every sweep uses the planted problem of ``tl.relaxation.planted_instance``: a symmetric two-layer softplus
network, labels ``y = f^Q_{W*}(x)`` realized by a known movement ``W*`` with ``||W*||_{2,4} = NORM`` at every
width, d = 20, inputs on the sphere. The objective is the book's ``F = E_Sigma L + LAM ||W||_{2,4}^8``
(``tl.randomize.expected_square_loss`` + ``tl.regularizers.bai_lee``), trained in the parametrization
``W = m^(-1/4) V`` with learning rate ``BASE * m / d`` (``tl.quadratic.learning_rate``). Four sweeps, each cached
(and resumed) per grid point by ``tl.sweep.run``:

* ``landscape_escape``: grid ``log10_delta`` (-12..-4) x ``perturb`` (0: plain GD from a Gaussian start with
  entries of size delta; 1: perturbed GD from W = 0 with one perturbation uniform in the ball of radius
  delta sqrt(P)), 24 seeds, m = 64, n = 100. Value ``value``: the escape step (``tl.saddle.escape_time``, loss below
  90% of F(0)).
* ``landscape_planted``: grid ``m`` (64..4096), 5 seeds (the first 5 of the chapter's 10), n = 100: perturbed GD
  to a second-order stationary point, its gradient norm and smallest Hessian eigenvalue (Lanczos), the landscape
  slack against ``W*`` (``tl.relaxation.landscape_slack``), and the certified relaxation bound
  (``tl.relaxation.solve``, factored with rank 2, duality gap stored).
* ``landscape_network``: grid ``m`` (64, 256, 1024), 5 seeds: the same problem trained on F and on the exact
  randomized loss of the full network (``model="network"``), from the same perturbations; both objectives at
  both end points, the distance between the end points, the bottom Hessian eigenvalue of both at W = 0.
* ``landscape_lambda``: grid ``lam_index`` into ``LAMS`` (0, 1e-8, ..., 1e-3), 5 seeds, m = 64, n = 40, label
  noise 0.5: test error of f^Q and of the randomized network, ``||W||_{2,4}``, largest row norm, and the
  oracle-ridge NTK baseline on the same data.

Usage::

    .venv/bin/python experiments/landscape.py            # all four (resumes cached grid points)
    .venv/bin/python experiments/landscape.py escape     # one of: escape planted network lambda

Delete a ``landscape_*.npz``/``.json`` pair to recompute it. The constants and library version are written to
``book/data/landscape_settings.json``.
"""

from __future__ import annotations

import functools
import json
import sys
import time
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np

import taylorlib as tl

ACT = "softplus"
D, N, M = 20, 100, 64  # input dimension, training samples, width of the single-width sweeps
NORM = 2.5  # ||W*||_{2,4}, the same at every width
LAM = 1e-6  # the regularizer LAM ||W||_{2,4}^8
BASE = 8.0  # learning rate BASE * m / d on V, W = m^(-1/4) V
STEPS, RADIUS, THRESHOLD, INTERVAL = 3000, 1e-2, 1e-4, 50  # perturbed GD to an SOSP
NUM_ITER = 64  # Lanczos iterations
RANK = 2  # columns per block of the factored relaxation solver (the solutions have rank <= 1)
ESCAPE_STEPS, ESCAPE_LEVEL = 400, 0.9  # escape = loss below ESCAPE_LEVEL * F(0)
LOG10_DELTAS = list(range(-12, -3))
WIDTHS = [64, 128, 256, 512, 1024, 2048, 4096]
NET_WIDTHS = [64, 256, 1024]
N_REG, NOISE = 40, 0.5  # the regularizer sweep: n = 2d noisy samples
LAMS = (0.0, 1e-8, 1e-7, 1e-6, 1e-5, 1e-4, 1e-3)
RIDGES = (1e-6, 1e-4, 1e-3, 1e-2, 1e-1, 1.0, 10.0, 100.0)  # oracle NTK ridge grid, times tr(K)/n
M_KERNEL = 4096  # width of the (near-limit) NTK baseline
N_TEST = 1000
KEY = jax.random.key(0)  # the chapter's key: instance = split(KEY, 8)[0], seeds below
DATA = Path(__file__).resolve().parents[1] / "book" / "data"


def keys():
    """The chapter's keys: the problem of the single-width sweeps and the seed arrays of each sweep."""
    k_problem, k_escape, k_planted, k_network, k_lambda, *_ = jax.random.split(KEY, 8)
    return {
        "problem": k_problem,
        "escape": jax.random.split(k_escape, 24),
        "planted": jax.random.split(k_planted, 10)[:5],
        "network": jax.random.split(k_network, 5),
        "lambda": jax.random.split(k_lambda, 5),
    }


def objective(inst, lam, model="taylor"):
    """F(W) = E_Sigma L + lam ||W||_{2,4}^8 on the instance's training set, as a function of the movement W."""

    def F(W):
        loss = tl.randomize.expected_square_loss(inst.params0, W, inst.x, inst.y, activation=ACT, model=model)
        return loss + tl.regularizers.bai_lee(W, lam)

    return F


def in_v(F):
    """F as a function of V, W = m^(-1/4) V."""
    return lambda V: F(tl.quadratic.to_movement(V))


def to_sosp(key, inst, lam, model="taylor"):
    """Perturbed GD from W = 0 for STEPS steps; returns the movement W at the end."""
    m = inst.W_star.shape[0]
    opt = tl.train.perturbed_gd(
        tl.quadratic.learning_rate(m, D, BASE), RADIUS, THRESHOLD, key, min_interval=INTERVAL
    )
    V, _ = tl.train.fit(in_v(objective(inst, lam, model)), jnp.zeros((m, D)), opt, STEPS)
    return tl.quadratic.to_movement(V)


# ----------------------------------------------------------------------------------------------- sweeps


def escape_point(key, log10_delta, perturb):
    inst = tl.relaxation.planted_instance(keys()["problem"], M, D, N, activation=ACT, norm=NORM)
    F = in_v(objective(inst, LAM))
    level = ESCAPE_LEVEL * F(jnp.zeros((M, D)))
    return tl.saddle.escape_time(
        F,
        jnp.zeros((M, D)),
        key,
        learning_rate=tl.quadratic.learning_rate(M, D, BASE),
        scale=10.0**log10_delta,
        steps=ESCAPE_STEPS,
        level=level,
        perturb=bool(perturb),
    )


@functools.lru_cache
def _planted_sosp(m):
    @jax.jit
    def run(key):
        k_inst, k_pgd, k_lanczos = jax.random.split(key, 3)
        inst = tl.relaxation.planted_instance(k_inst, m, D, N, activation=ACT, norm=NORM)
        W = to_sosp(k_pgd, inst, LAM)
        stat = tl.landscape.stationarity(objective(inst, LAM), W, k_lanczos, NUM_ITER)  # W parametrization
        return inst, W, stat

    return run


def planted_point(key, m):
    inst, W, stat = _planted_sosp(m)(key)
    prob = tl.relaxation.lifted_problem(inst.params0, inst.x, inst.y, activation=ACT, lam=LAM)
    F0 = objective(inst, 0.0)
    slack = tl.relaxation.landscape_slack(
        prob,
        W,
        tl.relaxation.lift(inst.W_star),
        grad_norm=float(stat.grad_norm),
        min_eigenvalue=float(stat.min_eigenvalue),
    )
    relax = tl.relaxation.solve(prob, rank=RANK)
    return {
        "F0": float(F0(W)),
        "F": float(objective(inst, LAM)(W)),
        "F0_star": float(F0(inst.W_star)),
        "slack": slack.total,
        "gauss_newton": slack.gauss_newton,
        "slack_regularizer": slack.regularizer,
        "slack_curvature": slack.curvature,
        "slack_gradient": slack.gradient,
        "grad_norm": float(stat.grad_norm),
        "min_eigenvalue": float(stat.min_eigenvalue),
        "norm24": float(tl.regularizers.norm_2p(W, 4)),
        "relax_primal": relax.primal,
        "relax_dual": relax.dual,
    }


def network_point(key, m):
    k_inst, k_pgd, k_lanczos = jax.random.split(key, 3)
    inst = tl.relaxation.planted_instance(k_inst, m, D, N, activation=ACT, norm=NORM)
    F, F_net = objective(inst, LAM), objective(inst, LAM, "network")
    W_F, W_net = to_sosp(k_pgd, inst, LAM), to_sosp(k_pgd, inst, LAM, "network")
    M_F, M_net = tl.relaxation.lift(W_F), tl.relaxation.lift(W_net)
    zeros = jnp.zeros((m, D))
    return {
        "F_at_F": F(W_F),
        "F_at_net": F(W_net),
        "net_at_net": F_net(W_net),
        "net_at_F": F_net(W_F),
        "lifted_distance": jnp.linalg.norm(M_net - M_F) / jnp.linalg.norm(M_F),
        "norm24_F": tl.regularizers.norm_2p(W_F, 4),
        "norm24_net": tl.regularizers.norm_2p(W_net, 4),
        "lam_min0_F": tl.landscape.min_eigenvalue(in_v(F), zeros, k_lanczos, NUM_ITER),
        "lam_min0_net": tl.landscape.min_eigenvalue(in_v(F_net), zeros, k_lanczos, NUM_ITER),
        "net_grad_norm": jnp.linalg.norm(jax.grad(in_v(F_net))(tl.quadratic.from_movement(W_net))),
    }


def ntk_error(key, inst):
    """KRR with the first-layer NTK of a width-M_KERNEL network, ridge chosen on the test set (an oracle)."""
    wide = tl.nets.two_layer(M_KERNEL, activation=ACT).init(key, D)
    K = tl.ntk.two_layer_ntk(wide, inst.x, activation=ACT, trainable=("W",))
    K_test = tl.ntk.two_layer_ntk(wide, inst.x_test, inst.x, activation=ACT, trainable=("W",))
    scale = jnp.trace(K) / K.shape[0]
    errs = [
        jnp.mean((tl.kernel_regression.krr(K, inst.y, K_test, ridge=r * scale) - inst.y_test) ** 2)
        for r in RIDGES
    ]
    return jnp.min(jnp.stack(errs)) / jnp.mean(inst.y_test**2)


def lambda_point(key, lam_index):
    k_inst, k_pgd, k_kernel = jax.random.split(key, 3)
    inst = tl.relaxation.planted_instance(
        k_inst, M, D, N_REG, activation=ACT, norm=NORM, noise=NOISE, n_test=N_TEST
    )
    W = to_sosp(k_pgd, inst, LAMS[lam_index])
    f0, _, f2 = tl.quadratic.two_layer_terms(inst.params0, W, inst.x_test, activation=ACT, order=2)
    net = tl.randomize.sign_moments(inst.params0, W, inst.x_test, activation=ACT).mean
    rel = lambda pred: jnp.mean((pred - inst.y_test) ** 2) / jnp.mean(inst.y_test**2)
    return {
        "test_quadratic": rel(f0 + f2),
        "test_network": rel(net),
        "norm24": tl.regularizers.norm_2p(W, 4),
        "max_row": jnp.max(jnp.linalg.norm(W, axis=1)),
        "train_F": objective(inst, 0.0)(W),
        "ntk": ntk_error(k_kernel, inst),
    }


SWEEPS = {
    "escape": (escape_point, {"log10_delta": LOG10_DELTAS, "perturb": [0, 1]}, {}),
    "planted": (planted_point, {"m": WIDTHS}, {"vectorize": False}),
    "network": (network_point, {"m": NET_WIDTHS}, {}),
    "lambda": (lambda_point, {"lam_index": list(range(len(LAMS)))}, {}),
}


def constants() -> dict:
    """The script's constants (sizes, steps, grids): recorded in every cache's sidecar as ``args``, so a
    changed constant refuses the stale cache instead of reusing it."""
    names = [k for k, v in globals().items() if k.isupper() and isinstance(v, (int, float, str, list, tuple))]
    return {
        k: (list(globals()[k]) if isinstance(globals()[k], tuple) else globals()[k])
        for k in names
        if k != "DATA"
    }


def settings() -> dict:
    return {
        "taylorlib": tl.__version__,
        "jax": jax.__version__,
        "script": "experiments/landscape.py",
        **constants(),
    }


def main(names) -> None:
    DATA.mkdir(parents=True, exist_ok=True)
    (DATA / "landscape_settings.json").write_text(json.dumps(settings(), indent=1) + "\n")
    for name in names:
        fn, grid, kw = SWEEPS[name]
        start = time.perf_counter()
        res = tl.sweep.run(
            fn,
            grid,
            seeds=keys()[name],
            cache=DATA / f"landscape_{name}.npz",
            progress=True,
            args=constants(),
            **kw,
        )
        print(f"landscape_{name}: {time.perf_counter() - start:.1f} s")
        for value, arr in res.values.items():
            print(f"  {value}: mean over seeds {np.round(np.nanmean(arr, axis=-1), 4).tolist()}")


if __name__ == "__main__":
    main(sys.argv[1:] or list(SWEEPS))
