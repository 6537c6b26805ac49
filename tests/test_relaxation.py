"""The convex relaxation: the lifted objective against the randomized loss (two implementations), its gradient
against autodiff, the two solvers against each other and against brute force on tiny instances (a dense grid over
the 2x2 PSD cone; scipy on a Cholesky parametrization), weak duality of the certificate, the landscape identity
(autodiff HVPs vs closed form) and its regularizer term against an explicit sign enumeration, the slack, the
planted problem, bad input."""

from __future__ import annotations

import itertools

import jax
import jax.numpy as jnp
import numpy as np
import pytest
import scipy.optimize
from helpers import raises

import taylorlib as tl

ACT = "softplus"
#: Two exact float64 evaluations of the same polynomial (different summation orders): ~1e-15 relative.
EXACT = 1e-10
#: Optimization accuracy asked of the solvers on tiny instances (far above float64 round-off, far below any
#: difference that matters).
OPT = 1e-7


def instance(m=4, d=3, n=12, lam=0.0, seed=0):
    k_p, k_x, k_y = jax.random.split(jax.random.key(seed), 3)
    p0 = tl.nets.two_layer(m, ACT).init(k_p, d)
    x = tl.data.sphere(k_x, n, d)
    y = x[:, 0] ** 2 - 1.0 + 0.3 * jax.random.normal(k_y, (n,))
    prob = tl.relaxation.lifted_problem(p0, x, y, activation=ACT, lam=lam)
    F = lambda W: (
        tl.randomize.expected_square_loss(p0, W, x, y, activation=ACT) + tl.regularizers.bai_lee(W, lam)
    )
    return prob, F, p0


def random_psd(key, m, d, rank):
    U = jax.random.normal(key, (m, d, rank))
    return jnp.einsum("rdk,rek->rde", U, U)


def g_numpy(prob, M):
    """g(M) written once more in numpy: the brute-force reference."""
    x, res, alpha, beta, lam = (np.asarray(v, np.float64) for v in prob)
    q = np.einsum("id,rde,ie->ir", x, M, x)
    s = np.trace(M, axis1=-2, axis2=-1)
    fit = res - np.sum(alpha * q, axis=1)
    return np.mean(fit**2) + np.mean(np.sum(beta * q, axis=1)) + lam * np.sum(s * s) ** 2


@pytest.mark.x64
@pytest.mark.parametrize("lam", [0.0, 0.05])
def test_lifted_objective_is_the_randomized_loss(x64, lam):
    prob, F, _ = instance(lam=lam)
    for seed in range(3):
        W = 0.5 * jax.random.normal(jax.random.key(10 + seed), (4, 3))
        g = float(tl.relaxation.lifted_objective(prob, tl.relaxation.lift(W)))
        assert abs(g - float(F(W))) <= EXACT * abs(g)
        assert abs(g - g_numpy(prob, np.asarray(tl.relaxation.lift(W)))) <= EXACT * abs(g)


@pytest.mark.x64
def test_lifted_gradient_against_autodiff_and_chain_rule(x64):
    prob, F, _ = instance(lam=0.05)
    M = random_psd(jax.random.key(1), 4, 3, 2)
    G = tl.relaxation.lifted_gradient(prob, M)
    auto = jax.grad(lambda M: tl.relaxation.lifted_objective(prob, M))(M)
    auto = 0.5 * (auto + jnp.swapaxes(auto, 1, 2))  # the gradient on symmetric matrices
    np.testing.assert_allclose(G, auto, rtol=EXACT, atol=EXACT)
    W = jax.random.normal(jax.random.key(2), (4, 3))
    G = tl.relaxation.lifted_gradient(prob, tl.relaxation.lift(W))
    np.testing.assert_allclose(2 * jnp.einsum("rde,re->rd", G, W), jax.grad(F)(W), rtol=EXACT, atol=EXACT)


def _grid_minimum(prob, points=121, box=None):
    """Dense grid over the 2x2 PSD cone [[a, b], [b, c]], a, c in [0, box], |b| <= sqrt(ac) (m = 1, d = 2)."""
    res = tl.relaxation.solve(prob)
    box = box or 2.0 * float(np.max(np.abs(np.asarray(res.M)))) + 1e-3
    a = np.linspace(0.0, box, points)
    A, C, T = np.meshgrid(a, a, np.linspace(-1.0, 1.0, points), indexing="ij")
    B = T * np.sqrt(A * C)
    M = np.stack([np.stack([A, B], -1), np.stack([B, C], -1)], -2).reshape(-1, 1, 2, 2)
    x, resid, alpha, beta, lam = (np.asarray(v, np.float64) for v in prob)
    q = np.einsum("id,prde,ie->pir", x, M, x)
    s = np.trace(M, axis1=-2, axis2=-1)
    vals = (
        np.mean((resid - np.sum(alpha * q, axis=2)) ** 2, axis=1)
        + np.mean(np.sum(beta * q, axis=2), axis=1)
        + lam * np.sum(s * s, axis=1) ** 2
    )
    return float(vals.min()), box / (points - 1)


@pytest.mark.slow
@pytest.mark.x64
@pytest.mark.parametrize("lam", [0.0, 0.01])
def test_solvers_against_a_dense_grid(x64, lam):
    """m = 1, d = 2: the PSD cone is 3-dimensional; a 121^3 grid brackets the optimum from above."""
    k_p, k_x = jax.random.split(jax.random.key(3))
    p0 = {"W": jax.random.normal(k_p, (1, 2)) / np.sqrt(2), "a": jnp.ones(1)}
    x = tl.data.sphere(k_x, 8, 2)
    prob = tl.relaxation.lifted_problem(p0, x, 3.0 * x[:, 0] ** 2 + x[:, 1] ** 2, activation=ACT, lam=lam)
    grid_min, h = _grid_minimum(prob)
    for method in ("factored", "projected"):
        res = tl.relaxation.solve(prob, method=method, num_iter=3000)
        assert float(jnp.trace(res.M[0])) > 0.1  # a non-trivial optimum (not M = 0)
        assert res.dual <= res.primal + 1e-12
        assert res.primal <= grid_min + 1e-12
        # the grid point nearest the optimum is within h per coordinate: g is smooth, so grid_min - g* = O(h)
        assert grid_min - res.primal < 10 * h
        assert res.gap < OPT


@pytest.mark.slow
@pytest.mark.x64
@pytest.mark.parametrize("lam", [0.0, 0.05])
def test_solvers_agree_with_scipy_on_a_cholesky_parametrization(x64, lam):
    """m = 4, d = 3: 24 parameters, L-BFGS-B from 5 random starts (an independent solver and code path)."""
    prob, _, _ = instance(lam=lam)
    tril = np.tril_indices(3)

    def unpack(theta):
        L = np.zeros((4, 3, 3))
        L[:, tril[0], tril[1]] = theta.reshape(4, -1)
        return np.einsum("rdk,rek->rde", L, L)

    rng = np.random.default_rng(0)
    best = min(
        scipy.optimize.minimize(
            lambda t: g_numpy(prob, unpack(t)), 0.3 * rng.standard_normal(24), tol=1e-14
        ).fun
        for _ in range(5)
    )
    for method in ("factored", "projected"):
        res = tl.relaxation.solve(prob, method=method, num_iter=4000)
        assert abs(res.primal - best) < OPT * max(1.0, abs(best)), (method, res.primal, best)
        assert res.dual <= best + 1e-12
        assert res.gap < OPT


@pytest.mark.x64
@pytest.mark.parametrize("lam", [0.0, 0.05])
def test_dual_bound_is_below_every_feasible_point(x64, lam):
    """Weak duality: the bound from any point is below g at every PSD point (property over random draws)."""
    prob, _, _ = instance(lam=lam)
    best = tl.relaxation.solve(prob)
    for seed in range(5):
        M = random_psd(jax.random.key(20 + seed), 4, 3, 1 + seed % 3) * 0.1 * (seed + 1)
        bound = tl.relaxation.dual_bound(prob, M)
        assert bound <= best.primal + 1e-12
        for other in range(3):
            M2 = random_psd(jax.random.key(40 + other), 4, 3, 2) * 0.05 * (other + 1)
            assert bound <= g_numpy(prob, np.asarray(M2)) + 1e-12
    assert abs(tl.relaxation.dual_bound(prob, best.M) - best.dual) < 1e-12


@pytest.mark.slow
@pytest.mark.x64
def test_rank_restricted_solver_is_certified(x64):
    prob, _, _ = instance(m=6, lam=0.01)
    full, low = tl.relaxation.solve(prob), tl.relaxation.solve(prob, rank=2)
    assert low.gap < OPT
    assert abs(low.primal - full.primal) < OPT
    ranks = np.sum(np.linalg.eigvalsh(np.asarray(full.M)) > 1e-6, axis=1)
    assert ranks.max() < 2  # why rank 2 suffices here: the optimal blocks have rank <= 1


@pytest.mark.x64
@pytest.mark.parametrize("rank", [1, 2])
def test_landscape_identity_holds_exactly(x64, rank):
    prob, F, _ = instance(m=6, lam=0.05)
    W = 0.4 * jax.random.normal(jax.random.key(5), (6, 3))
    M_ref = random_psd(jax.random.key(6), 6, 3, rank) * 0.2
    ident = tl.relaxation.landscape_identity(F, prob, W, M_ref)
    assert ident.error < EXACT
    assert ident.convexity_gap >= 0
    assert ident.gauss_newton >= 0


@pytest.mark.x64
def test_regularizer_term_against_sign_enumeration(x64):
    """E Hess R(W)[Xi W*, Xi W*] - 8 R(W) in closed form vs the average of explicit HVPs over all 2^m signs."""
    m, lam = 6, 0.3
    prob, _, _ = instance(m=m, lam=lam)
    W, W_star = 0.7 * jax.random.normal(jax.random.key(7), (2, m, 3))
    R = lambda W: tl.regularizers.bai_lee(W, lam)
    signs = jnp.asarray(list(itertools.product([-1.0, 1.0], repeat=m)))  # (2^m, m)
    curv = jax.jit(
        jax.vmap(lambda s: jnp.vdot(tl.landscape.hvp(R, W, s[:, None] * W_star), s[:, None] * W_star))
    )
    expected = float(jnp.mean(curv(signs))) - 8 * float(R(W))
    slack = tl.relaxation.landscape_slack(prob, W, tl.relaxation.lift(W_star))
    assert abs(slack.regularizer - expected) <= EXACT * abs(expected)


@pytest.mark.x64
def test_slack_bounds_the_gap_at_a_stationary_point(x64):
    """At a point where the gradient vanishes and the Hessian is PSD, F0(W) <= F0(W*) + slack for any W*."""
    prob, F, p0 = instance(m=6, lam=1e-3)
    res = scipy.optimize.minimize(
        lambda w: float(F(jnp.asarray(w).reshape(6, 3))),
        0.3 * np.random.default_rng(1).standard_normal(18),
        jac=lambda w: np.asarray(jax.grad(F)(jnp.asarray(w).reshape(6, 3))).ravel(),
        method="BFGS",
        tol=1e-12,
    )
    W = jnp.asarray(res.x).reshape(6, 3)
    g = float(jnp.linalg.norm(jax.grad(F)(W)))
    lam_min = float(np.linalg.eigvalsh(np.asarray(tl.landscape.hessian(F, W)))[0])
    F0 = lambda W: float(F(W) - tl.regularizers.bai_lee(W, 1e-3))
    for seed in range(5):
        W_star = jax.random.normal(jax.random.key(30 + seed), (6, 3)) * 0.3
        s = tl.relaxation.landscape_slack(
            prob, W, tl.relaxation.lift(W_star), grad_norm=g, min_eigenvalue=lam_min
        )
        assert F0(W) <= F0(W_star) + s.total + 1e-12


def test_planted_movement_and_instance():
    inst = tl.relaxation.planted_instance(
        jax.random.key(0), 32, 5, 20, activation=ACT, norm=1.5, noise=0.1, n_test=50
    )
    assert inst.W_star.shape == (32, 5)
    assert inst.x.shape == (20, 5)
    assert inst.x_test.shape == (50, 5)
    assert abs(float(tl.regularizers.norm_2p(inst.W_star, 4)) - 1.5) < 1e-5
    assert not bool(jnp.any(inst.W_star[inst.params0["a"] < 0]))
    rows = jnp.linalg.norm(inst.W_star[inst.params0["a"] > 0], axis=1)
    assert bool(jnp.allclose(rows, 1.5 * 16 ** (-0.25), rtol=1e-5))  # m^(-1/4) rows
    fq = tl.quadratic.two_layer_terms(inst.params0, inst.W_star, inst.x_test, activation=ACT, order=2)[2]
    assert bool(jnp.allclose(fq, inst.y_test, atol=1e-6))
    batched = jax.vmap(lambda k: tl.relaxation.planted_instance(k, 8, 3, 4, activation=ACT, norm=1.0).y)
    assert batched(jax.random.split(jax.random.key(1), 3)).shape == (3, 4)


def test_float32_solver_certificate():
    prob, _, _ = instance(m=8, d=4, n=30, lam=1e-3)
    res = tl.relaxation.solve(prob)
    assert res.M.dtype == jnp.float32
    assert res.dual <= res.primal
    assert res.gap < 1e-5 * res.primal


def test_bad_input():
    prob, F, p0 = instance()
    x = prob.x
    with raises(TypeError, match="LiftedProblem", checker_names="problem"):
        tl.relaxation.solve({"x": x})
    with raises(ValueError, match=r"M must have shape \(m, d, d\) = \(4, 3, 3\)"):
        tl.relaxation.lifted_objective(prob, jnp.zeros((4, 3)))
    with raises(ValueError, match="method"):
        tl.relaxation.solve(prob, method="newton")
    with raises(ValueError, match="rank must be <= 3"):
        tl.relaxation.solve(prob, rank=4)
    with raises(ValueError, match="num_iter must be >= 1"):
        tl.relaxation.solve(prob, num_iter=0)
    with raises(ValueError, match="lam must be >= 0"):
        tl.relaxation.lifted_problem(p0, x, jnp.zeros(12), activation=ACT, lam=-1.0)
    with raises(ValueError, match=r"y must have shape \(n,\)"):
        tl.relaxation.lifted_problem(p0, x, jnp.zeros(5), activation=ACT)
    with raises(ValueError, match="NaN"):
        tl.relaxation.dual_bound(prob, jnp.full((4, 3, 3), jnp.nan))
    with raises(ValueError, match=r"W must have shape \(m, d\) = \(4, 3\)", checker_names="M_ref"):
        tl.relaxation.landscape_slack(prob, jnp.zeros((3, 3)), jnp.zeros((4, 3, 3)))
    with raises(ValueError, match="min_eigenvalue"):
        tl.relaxation.landscape_slack(prob, jnp.zeros((4, 3)), jnp.zeros((4, 3, 3)), min_eigenvalue=np.nan)
    with raises(TypeError, match="loss must be callable"):
        tl.relaxation.landscape_identity(3.0, prob, jnp.zeros((4, 3)), jnp.zeros((4, 3, 3)))
    with raises(ValueError, match="direction must be non-zero"):
        tl.relaxation.planted_movement(p0, jnp.zeros(3), 1.0)
    with raises(ValueError, match=r"direction must have shape \(d,\) = \(3,\)"):
        tl.relaxation.planted_movement(p0, jnp.ones(2), 1.0)
    with raises(ValueError, match="norm must be > 0"):
        tl.relaxation.planted_movement(p0, jnp.ones(3), 0.0)
    with raises(ValueError, match="W must be 2-D"):
        tl.relaxation.lift(jnp.zeros(3))
