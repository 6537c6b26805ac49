"""The checks of chapter 3 (The quadratic landscape) bite: on a small planted instance, each check passes with the
library as it is and fails under a deliberate error in the library function it rests on.

Checks (the same expressions and tolerances as the chapter's Checks cell):

* identity: ``tl.relaxation.landscape_identity(...).error < IDENTITY_TOL`` (autodiff HVPs of the randomized loss
  plus regularizer against the closed form);
* escape slope: the fitted slope of escape steps against ln(1/delta) within ``SLOPE_TOL`` of
  ``tl.saddle.predicted_slope`` at the Lanczos ``lambda_min``;
* perturbation offset: perturbed GD escapes one step after GD from the matching Gaussian start
  (per seed, averaged over delta; ``|mean - 1| < 3 se + OFFSET_SLACK`` over seeds).

Mutations: a factor 1.05 and a sign in ``tl.landscape.hvp``; a factor 2 in ``tl.regularizers.bai_lee``; a radius
factor 10 in ``tl.train.perturbed_gd``; a factor 1.3 on the Ritz values of ``tl.landscape.lanczos``.
"""

from __future__ import annotations

import math

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import taylorlib as tl

ACT = "softplus"
M, D, N, NORM, LAM = 16, 4, 20, 2.0, 1e-2
IDENTITY_TOL = 1e-4  # the chapter's tolerance: float32 round-off of a sum of O(1) terms
SLOPE_TOL = 0.10  # the chapter's tolerance on the escape slope, stated before the fit
OFFSET_SLACK = 0.5  # steps, on top of 3 standard errors (the chapter's)
LEVEL = 0.95  # escape = loss below 95% of F(0) (this tiny landscape is only 9% deep; the chapter's uses 90%)
LR = tl.quadratic.learning_rate(M, D, base=7.0)  # eta |lambda_min| ~ 0.25, eta lambda_max ~ 0.9


def problem():
    inst = tl.relaxation.planted_instance(jax.random.key(0), M, D, N, activation=ACT, norm=NORM)

    def F(W):  # looked up at call time: a patched module function is seen
        loss = tl.randomize.expected_square_loss(inst.params0, W, inst.x, inst.y, activation=ACT)
        return loss + tl.regularizers.bai_lee(W, LAM)

    return inst, F


def identity_error():
    inst, F = problem()
    prob = tl.relaxation.lifted_problem(inst.params0, inst.x, inst.y, activation=ACT, lam=LAM)
    W = 0.5 * jax.random.normal(jax.random.key(1), (M, D))
    return tl.relaxation.landscape_identity(F, prob, W, tl.relaxation.lift(inst.W_star)).error


def escape_fits():
    """Escape steps of GD (Gaussian starts) and perturbed GD over 4 decades of delta x 12 seeds, and the slope
    predicted from the Lanczos lambda_min at the saddle."""
    _, F = problem()
    F_V = lambda V: F(tl.quadratic.to_movement(V))
    zeros = jnp.zeros((M, D))
    level = LEVEL * float(F_V(zeros))
    keys = jax.random.split(jax.random.key(2), 12)
    scales = 10.0 ** -np.arange(5.0, 10.0)

    def times(perturb):
        one = lambda s, k: tl.saddle.escape_time(
            F_V, zeros, k, learning_rate=LR, scale=s, steps=400, level=level, perturb=perturb
        )
        return np.asarray(
            jax.jit(jax.vmap(lambda s: jax.vmap(lambda k: one(s, k))(keys)))(jnp.asarray(scales))
        )

    t_gd, t_pert = times(False), times(True)
    lam_min = float(tl.landscape.lanczos(F_V, zeros, jax.random.key(3), M * D).eigvals[0])
    return scales, t_gd, t_pert, tl.saddle.predicted_slope(LR, lam_min)


def slope_ok(scales, t_gd, predicted):
    return abs(tl.saddle.fit_escape_law(scales, t_gd).slope / predicted - 1) < SLOPE_TOL


def offset_ok(t_gd, t_pert):
    """Per seed, the mean over delta of the step difference (one start direction per seed: the differences at
    the different deltas of one seed are not independent); then mean and standard error over seeds."""
    per_seed = (t_pert - t_gd).mean(axis=0)
    return abs(per_seed.mean() - 1.0) < 3 * per_seed.std(ddof=1) / math.sqrt(per_seed.size) + OFFSET_SLACK


@pytest.mark.slow
def test_identity_check_passes_and_bites(monkeypatch):
    assert identity_error() < IDENTITY_TOL
    hvp = tl.landscape.hvp
    monkeypatch.setattr(
        tl.landscape, "hvp", lambda loss, p, v: jax.tree_util.tree_map(lambda a: 1.05 * a, hvp(loss, p, v))
    )
    assert identity_error() > IDENTITY_TOL  # a factor in the Hessian-vector product
    monkeypatch.setattr(
        tl.landscape, "hvp", lambda loss, p, v: jax.tree_util.tree_map(jnp.negative, hvp(loss, p, v))
    )
    assert identity_error() > IDENTITY_TOL  # a sign in the Hessian-vector product


def test_identity_check_bites_on_the_regularizer(monkeypatch):
    bai_lee = tl.regularizers.bai_lee
    monkeypatch.setattr(tl.regularizers, "bai_lee", lambda W, lam: 2.0 * bai_lee(W, lam))
    assert identity_error() > IDENTITY_TOL


@pytest.mark.slow
def test_escape_checks_pass_and_bite(monkeypatch):
    scales, t_gd, t_pert, predicted = escape_fits()
    assert np.all(t_gd < 400)
    assert np.all(t_pert < 400)
    assert slope_ok(scales, t_gd, predicted)
    assert offset_ok(t_gd, t_pert)
    # a factor 10 in the perturbation radius: perturbed GD escapes ln(10) / ln(1 + eta |lambda|) steps early
    perturbed_gd = tl.train.perturbed_gd
    monkeypatch.setattr(
        tl.train, "perturbed_gd", lambda lr, radius, *a, **k: perturbed_gd(lr, 10.0 * radius, *a, **k)
    )
    _, t_gd_mut, t_pert_mut, _ = escape_fits()
    assert not offset_ok(t_gd_mut, t_pert_mut)
    monkeypatch.undo()
    # a factor 1.3 on the Hessian's Ritz values: the predicted slope moves by ~ 25%
    lanczos = tl.landscape.lanczos
    monkeypatch.setattr(
        tl.landscape,
        "lanczos",
        lambda *a, **k: lanczos(*a, **k)._replace(eigvals=1.3 * lanczos(*a, **k).eigvals),
    )
    _, _, _, predicted_mut = escape_fits()
    assert not slope_ok(scales, t_gd, predicted_mut)
