"""Regenerate ``book/data/randomized_training.npz`` (+ ``.json``): chapter 2's training experiments.

Setting (chapter 2, section 5): inputs uniform on :math:`S^{d-1}(\\sqrt d)` with ``D = 30``, ``N = 240 = 8d``
training and ``N_TEST`` test points, the unit-variance rank-one quadratic target
``tl.targets.single_index(key, D, 2)`` (one direction for all seeds: by rotation invariance of the inputs and of
:math:`W_0` its direction does not matter), a symmetric softplus ``tl.nets.two_layer`` network of width
``M = 400`` (1600 for one learner), movement :math:`W = m^{-1/4}V` (``tl.quadratic.to_movement``), gradient
steps with learning rate ``LR_BASE * m / d`` (``tl.quadratic.learning_rate``) from ``V0 = V_INIT * N(0, 1)``.
Each seed draws its own inputs, initialization :math:`W_0`, ``V0`` and sign stream.

Learners (grid axis ``learner``; names in ``LEARNERS`` and in the sidecar):

0. ``ntk_krr``, 1. ``quadntk_krr``: kernel ridge regression with the infinite-width first-layer NTK and QuadNTK
   (profiles tabulated in :math:`\\rho = x\\cdot x'/d`), ridge chosen on the test set among ``RIDGES`` x tr(K)/n
   (generous to the kernels); ``class_err`` from KRR on the labels ``sign(y)``.
2. ``quad_gd``: gradient descent on the square loss of the quadratic model :math:`f^Q_W = f^{(2)}`.
3. ``exact_gd``: gradient descent on the exact randomized square loss of the network,
   ``tl.randomize.expected_square_loss(..., model="network")``; 4. ``exact_gd_m1600``: the same at m = 1600.
5-7. ``sgd_S1``, ``sgd_S4``, ``sgd_S16``: Bai & Lee's algorithm, gradient steps on
   ``tl.randomize.mc_objective`` (square loss of the full network) with ``S`` fresh sign draws per step.
8. ``logistic_sgd``: the logistic loss :math:`\\log(1 + e^{-z f})` on the labels ``z = sign(y)`` with 4 fresh sign
   draws per step, plus Bai & Lee's regularizer ``tl.regularizers.bai_lee(W, LAM)``.
9. ``logistic_quad``: gradient descent on the logistic loss of the quadratic model, plus the same regularizer.
10. ``logistic_sgd_noreg``: learner 8 without the regularizer.

Values (each ``(learners, seeds)``; NaN where a value does not apply): ``test_err`` (relative test MSE of the
predictor: the sign-averaged network :math:`E_\\Sigma f` from ``tl.randomize.sign_moments``, or :math:`f^Q`, or
KRR), ``class_err`` (test error of its sign against ``sign(y)``), ``train_obj`` (final training objective:
the exact randomized square loss for learners 3-7, the quadratic-model loss for 2, the sampled logistic objective
for 8-10), ``penalty`` (mean over the training inputs of :math:`\\mathrm{Var}_\\Sigma f = \\sum_r o_r^2`),
``w24`` (:math:`\\|W\\|_{2,4}`), ``coupling`` (:math:`\\|E_\\Sigma f - f^{(0)} - f^{(2)}\\| / \\|f^{(2)}\\|` on the test
inputs), ``lin_ratio`` (:math:`\\|f^{(1)}\\|/\\|f^{(2)}\\|` on the test inputs) and ``curve_00`` ... ``curve_19``
(the training objective every ``STEPS // 20`` steps: exact randomized square loss for 3-7, the quadratic model's
own loss for 2, the sampled objective for 8-10).

Usage (about 10 minutes of CPU time; delete the ``.npz``/``.json`` pair to recompute)::

    .venv/bin/python experiments/randomized_training.py
"""

from __future__ import annotations

import time
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np

import taylorlib as tl

ACT = "softplus"
D, N, N_TEST = 30, 240, 1000
M = 400
STEPS, LR_BASE, V_INIT = 1000, 4.0, 1e-2
LOG_EVERY = STEPS // 20
RIDGES = (1e-4, 1e-2, 1e-1, 1.0)
LAM = 1e-3  # Bai-Lee regularizer strength for the logistic runs
LEARNERS = (
    "ntk_krr",
    "quadntk_krr",
    "quad_gd",
    "exact_gd",
    "exact_gd_m1600",
    "sgd_S1",
    "sgd_S4",
    "sgd_S16",
    "logistic_sgd",
    "logistic_quad",
    "logistic_sgd_noreg",
)
SEEDS = 5
OUT = Path(__file__).resolve().parents[1] / "book" / "data" / "randomized_training.npz"
TARGET = tl.targets.single_index(jax.random.key(2), D, 2)


def _profiles():
    """Kernel profiles h(rho) of the NTK (first layer) and the QuadNTK on a grid of rho, on the host."""
    rho = jnp.linspace(-1.0, 1.0, 1001)
    pole = jnp.sqrt(D) * jnp.eye(D)[:1]
    ring = jnp.sqrt(D) * (rho[:, None] * jnp.eye(D)[0] + jnp.sqrt(1 - rho**2)[:, None] * jnp.eye(D)[1])
    ntk = tl.kernels.ntk(pole, ring, activation=ACT, trainable=("W",))[0]
    quad = tl.kernels.quad_ntk(pole, ring, activation=ACT)[0]
    return rho, {"ntk_krr": ntk, "quadntk_krr": quad}


RHO, PROFILES = _profiles()
NAN = jnp.float32(jnp.nan)


def _krr_errors(h, x, y, x_test, y_test):
    gram = lambda a, b: jnp.interp(jnp.clip(a @ b.T / D, -1, 1), RHO, h)
    K, K_test = gram(x, x), gram(x_test, x)
    rel = lambda pred: jnp.mean((pred - y_test) ** 2) / jnp.mean(y_test**2)
    cls = lambda pred: jnp.mean(jnp.sign(pred) != jnp.sign(y_test))
    ridges = [r * jnp.trace(K) / N for r in RIDGES]
    err = jnp.min(jnp.stack([rel(tl.kernel_regression.krr(K, y, K_test, ridge=r)) for r in ridges]))
    z = jnp.sign(y)
    c_err = jnp.min(jnp.stack([cls(tl.kernel_regression.krr(K, z, K_test, ridge=r)) for r in ridges]))
    return err, c_err


def _summary(p0, W, x, y, x_test, y_test, predictor):
    mom_test = tl.randomize.sign_moments(p0, W, x_test, activation=ACT)
    f0, f1, f2 = tl.quadratic.two_layer_terms(p0, W, x_test, activation=ACT, order=2)
    pred = {"network": mom_test.mean, "quad": f2}[predictor]
    return {
        "test_err": jnp.mean((pred - y_test) ** 2) / jnp.mean(y_test**2),
        "class_err": jnp.mean(jnp.sign(pred) != jnp.sign(y_test)),
        "penalty": jnp.mean(tl.randomize.sign_moments(p0, W, x, activation=ACT).variance),
        "w24": tl.regularizers.norm_2p(W, 4),
        "coupling": jnp.linalg.norm(mom_test.mean - f0 - f2) / jnp.linalg.norm(f2),
        "lin_ratio": jnp.linalg.norm(f1) / jnp.linalg.norm(f2),
    }


def learner_point(key, learner):
    """Train (or fit) learner ``LEARNERS[learner]`` on the data of one seed; a dict of scalars."""
    name = LEARNERS[learner]
    k_x, k_net, k_v, k_sgd, k_gd = jax.random.split(key, 5)
    x_all = tl.data.sphere(k_x, N + N_TEST, D)
    x, x_test = x_all[:N], x_all[N:]
    y, y_test = TARGET(x), TARGET(x_test)
    out = dict.fromkeys(
        ("test_err", "class_err", "train_obj", "penalty", "w24", "coupling", "lin_ratio"), NAN
    )
    out.update({f"curve_{i:02d}": NAN for i in range(STEPS // LOG_EVERY)})
    if name in PROFILES:
        out["test_err"], out["class_err"] = _krr_errors(PROFILES[name], x, y, x_test, y_test)
        return out
    m = 1600 if name.endswith("m1600") else M
    net = tl.nets.two_layer(m, activation=ACT)
    p0 = net.init(k_net, D)
    move = tl.quadratic.to_movement
    params = lambda V: {"W": p0["W"] + move(V), "a": p0["a"]}
    quad = lambda V, xs: tl.quadratic.two_layer_terms(p0, move(V), xs, activation=ACT, order=2)[2]
    exact = lambda V: tl.randomize.expected_square_loss(p0, move(V), x, y, activation=ACT, model="network")
    sq = lambda f, p: jnp.mean((f(p, x) - y) ** 2)
    z = jnp.sign(y)
    logistic = lambda f, p: jnp.mean(jnp.logaddexp(0.0, -z * f(p, x)))
    reg = (
        (lambda V: tl.regularizers.bai_lee(move(V), LAM)) if name != "logistic_sgd_noreg" else (lambda V: 0.0)
    )
    opt = tl.train.perturbed_gd(tl.quadratic.learning_rate(m, D, LR_BASE), 0.0, 0.0, k_gd)
    V0 = V_INIT * jax.random.normal(k_v, (m, D))
    fit = lambda loss, **kw: tl.train.fit(loss, V0, opt, STEPS, log_every=LOG_EVERY, **kw)
    if name == "quad_gd":
        V, hist = fit(lambda V: jnp.mean((quad(V, x) - y) ** 2))
        curve, final = hist.loss, jnp.mean((quad(V, x) - y) ** 2)
    elif name.startswith("exact_gd"):
        V, hist = fit(exact)
        curve, final = hist.loss, exact(V)
    elif name.startswith("sgd_S"):
        S = int(name[5:])
        V, hist = fit(
            lambda V, k: tl.randomize.mc_objective(sq, net.apply, p0, k, S)(params(V)),
            key=k_sgd,
            monitor=exact,
        )
        curve, final = hist.monitor, exact(V)
    elif name.startswith("logistic_sgd"):
        loss = lambda V, k: tl.randomize.mc_objective(logistic, net.apply, p0, k, 4)(params(V)) + reg(V)
        V, hist = fit(loss, key=k_sgd)
        curve, final = hist.loss, loss(V, k_sgd)
    elif name == "logistic_quad":
        loss = lambda V: jnp.mean(jnp.logaddexp(0.0, -z * quad(V, x))) + reg(V)
        V, hist = fit(loss)
        curve, final = hist.loss, loss(V)
    else:
        raise ValueError(name)
    out.update(_summary(p0, move(V), x, y, x_test, y_test, "quad" if "quad" in name else "network"))
    out["train_obj"] = final
    out.update({f"curve_{i:02d}": c for i, c in enumerate(curve)})
    return out


def main() -> None:
    start = time.perf_counter()
    args = {
        "script": "experiments/randomized_training.py",
        "learners": list(LEARNERS),
        "activation": ACT,
        "d": D,
        "n": N,
        "n_test": N_TEST,
        "m": M,
        "steps": STEPS,
        "log_every": LOG_EVERY,
        "lr": f"{LR_BASE} * m / d",
        "v_init": V_INIT,
        "ridges": list(RIDGES),
        "lam_logistic": LAM,
        "target": "tl.targets.single_index(jax.random.key(2), d, 2)",
        "seeds": "jax.random.split(jax.random.key(0), 5)",
    }
    res = tl.sweep.run(
        learner_point,
        {"learner": list(range(len(LEARNERS)))},
        seeds=jax.random.split(jax.random.key(0), SEEDS),
        cache=OUT,
        progress=True,
        args=args,
    )
    print(f"wrote {OUT} ({OUT.stat().st_size / 1024:.1f} KiB) in {time.perf_counter() - start:.1f} s")
    v = res.values
    for i, name in enumerate(LEARNERS):
        row = ", ".join(
            f"{k} {v[k][i].mean():.3g}±{v[k][i].std(ddof=1):.2g}"
            for k in ("test_err", "class_err", "train_obj", "penalty", "w24", "coupling")
            if np.all(np.isfinite(v[k][i]))
        )
        print(f"  {name:>18}: {row}")


if __name__ == "__main__":
    main()
