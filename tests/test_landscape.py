"""Landscape tools: hvp against the dense Hessian, the dense Hessian against a closed form and against
finite differences of the gradient, Lanczos against numpy.linalg.eigh (full spectrum at k = p, interlacing
and convergence of the extremes at k < p, degenerate spectra), SOSP checks, the sign-averaged curvature
(exact per-neuron blocks vs the dense Hessian vs Monte Carlo), vmap, bad input."""

from __future__ import annotations

import math

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from helpers import assert_close_matrices, raises, tree_allclose
from jax.flatten_util import ravel_pytree

import taylorlib as tl

#: Two exact float64 computations of the same eigenvalues (Lanczos at k = p vs LAPACK): both backward
#: stable, errors ~ p * eps * ||H|| ~ 1e-13 relative; 1e-9 leaves a wide margin.
EIG_RTOL = 1e-9
#: Central differences of the gradient with step 1e-5: truncation ~ h^2 |L''''| ~ 1e-10, round-off
#: ~ eps / h ~ 1e-11 (float64).
FD_RTOL = 1e-7
#: Monte Carlo tolerance: |mean - mu| <= MC_SIGMAS standard errors. Largest measured over 21 seed offsets:
#: 2.20 (~1.5x).
MC_SIGMAS = 3.5


def mlp_loss(seed=0):
    """A small pytree loss: squared error of a 2-layer tanh MLP, p = 3*4 + 4 + 4 = 20 parameters."""
    k_p, k_x, k_y = jax.random.split(jax.random.key(seed), 3)
    net = tl.nets.mlp((4,), activation="tanh")
    params = net.init(k_p, 3)
    x = jax.random.normal(k_x, (10, 3))
    y = jax.random.normal(k_y, (10,))
    return (lambda p: jnp.mean((net.apply(p, x) - y) ** 2)), params


def spectrum_loss(eigvals, seed=0):
    """0.5 w^T A w with A = Q diag(eigvals) Q^T, Q a random orthogonal matrix."""
    p = len(eigvals)
    Q, _ = jnp.linalg.qr(jax.random.normal(jax.random.key(seed), (p, p)))
    A = Q @ jnp.diag(jnp.asarray(eigvals)) @ Q.T
    A = 0.5 * (A + A.T)
    return (lambda w: 0.5 * w @ A @ w), A


def flat(tree):
    return np.asarray(ravel_pytree(tree)[0])


@pytest.mark.x64
def test_hvp_matches_dense_hessian_on_a_pytree(x64):
    loss, params = mlp_loss()
    H = np.asarray(tl.landscape.hessian(loss, params))
    p = H.shape[0]
    assert p == 20
    v = jax.tree_util.tree_map(lambda a: jax.random.normal(jax.random.key(7), a.shape, a.dtype), params)
    Hv = tl.landscape.hvp(loss, params, v)
    assert jax.tree_util.tree_structure(Hv) == jax.tree_util.tree_structure(params)
    np.testing.assert_allclose(flat(Hv), H @ flat(v), rtol=1e-10, atol=1e-12)
    assert_close_matrices(H, H.T, rtol=1e-12)


@pytest.mark.x64
def test_hessian_closed_form_and_finite_differences(x64):
    loss, A = spectrum_loss(np.linspace(-1.0, 2.0, 6))
    assert_close_matrices(tl.landscape.hessian(loss, jnp.ones(6)), A, rtol=1e-12)
    # non-quadratic loss: columns of H against central differences of the gradient
    loss, params = mlp_loss(1)
    H = np.asarray(tl.landscape.hessian(loss, params))
    f0, unravel = ravel_pytree(params)
    grad = jax.grad(lambda f: loss(unravel(f)))
    h = 1e-5
    cols = [(grad(f0 + h * e) - grad(f0 - h * e)) / (2 * h) for e in np.eye(len(f0))]
    assert_close_matrices(H, np.stack(cols, axis=1), rtol=FD_RTOL)


def test_hessian_size_limit():
    loss = lambda w: jnp.sum(w**2)
    with raises(ValueError, match="p = 10 entries.*max_params = 5"):
        tl.landscape.hessian(loss, jnp.ones(10), max_params=5)
    H = tl.landscape.hessian(loss, jnp.ones(10), max_params=5, force=True)
    assert_close_matrices(H, 2 * jnp.eye(10))


@pytest.mark.x64
def test_lanczos_full_spectrum_matches_eigh(x64):
    loss, params = mlp_loss(2)
    H = np.asarray(tl.landscape.hessian(loss, params))
    p = H.shape[0]
    spec = tl.landscape.lanczos(loss, params, jax.random.key(0), p)
    assert spec.n_iter == p
    assert spec.eigvals.shape == (p,)
    true = np.linalg.eigh(H)[0]
    scale = np.abs(true).max()
    np.testing.assert_allclose(spec.eigvals, true, rtol=0, atol=EIG_RTOL * scale)
    assert np.all(np.diff(np.asarray(spec.eigvals)) >= 0)
    # Ritz vectors: unit norm and (at k = p) eigenvectors: ||H y - theta y|| small
    Y = np.stack([flat(jax.tree_util.tree_map(lambda a, j=j: a[j], spec.eigvecs)) for j in range(p)])
    np.testing.assert_allclose(np.linalg.norm(Y, axis=1), 1.0, rtol=1e-10)
    resid = np.linalg.norm(Y @ H - np.asarray(spec.eigvals)[:, None] * Y, axis=1)
    assert resid.max() <= 1e-7 * scale
    assert np.asarray(spec.eigvals)[0] < 0 < np.asarray(spec.eigvals)[-1]  # the test has content


@pytest.mark.x64
def test_lanczos_degenerate_spectrum_restarts(x64):
    # eigenvalues with multiplicity: the Krylov space from one vector is 3-dimensional, so Lanczos must
    # restart after breakdowns to recover all p = 12 eigenvalues
    eig = np.repeat([-2.0, 0.5, 3.0], 4)
    loss, A = spectrum_loss(eig, seed=1)
    spec = tl.landscape.lanczos(loss, jnp.zeros(12), jax.random.key(4), 12)
    np.testing.assert_allclose(spec.eigvals, np.sort(eig), atol=1e-9 * 3)


@pytest.mark.x64
def test_lanczos_extremes_interlace_and_converge(x64):
    # well-separated extremes: -3, then a bulk in [0, 1], then 5; p = 120
    bulk = np.linspace(0.0, 1.0, 118)
    eig = np.concatenate([[-3.0], bulk, [5.0]])
    loss, A = spectrum_loss(eig, seed=2)
    true = np.linalg.eigh(np.asarray(A))[0]
    previous = None
    for k in (3, 6, 12, 25):
        spec = tl.landscape.lanczos(loss, jnp.zeros(120), jax.random.key(5), k)
        lo, hi = float(spec.eigvals[0]), float(spec.eigvals[-1])
        # Cauchy interlacing: Ritz values lie inside the true spectrum
        assert lo >= true[0] - 1e-12
        assert hi <= true[-1] + 1e-12
        if previous is not None:  # more iterations can only move the extremes outward
            assert lo <= previous[0] + 1e-12
            assert hi >= previous[1] - 1e-12
        previous = (lo, hi)
    # after 25 iterations the isolated extremes have converged (gap ratio 3/1: error ~ exp(-2 k sqrt(gap)))
    assert previous[0] == pytest.approx(true[0], abs=1e-8)
    assert previous[1] == pytest.approx(true[-1], abs=1e-8)


def test_lanczos_float32_and_clip_warning():
    loss, params = mlp_loss(3)
    p = 20
    with pytest.warns(UserWarning, match="num_iter = 50 is larger than the parameter count p = 20"):
        spec = tl.landscape.lanczos(loss, params, jax.random.key(0), 50)
    assert spec.n_iter == p
    assert spec.eigvals.shape == (p,)
    true = np.linalg.eigvalsh(np.asarray(tl.landscape.hessian(loss, params), dtype=np.float64))
    # float32: eigenvalues to ~1e-5 of the spectral scale (eps32 * p * a few)
    np.testing.assert_allclose(spec.eigvals, true, atol=1e-4 * np.abs(true).max())


@pytest.mark.x64
def test_stationarity_and_is_sosp(x64):
    saddle = lambda w: w[0] ** 2 - w[1] ** 2 + w[1] ** 4
    key = jax.random.key(0)
    s0 = tl.landscape.stationarity(saddle, jnp.zeros(2), key, 2)
    assert float(s0.grad_norm) == 0.0
    assert float(s0.min_eigenvalue) == pytest.approx(-2.0, abs=1e-12)
    w_min = jnp.array([0.0, 0.5**0.5])  # Hessian diag(2, -2 + 12 w1^2 = 4)
    s1 = tl.landscape.stationarity(saddle, w_min, key, 2)
    assert float(s1.min_eigenvalue) == pytest.approx(2.0, abs=1e-12)
    assert float(tl.landscape.min_eigenvalue(saddle, w_min, key, 2)) == float(s1.min_eigenvalue)
    assert not bool(tl.landscape.is_sosp(saddle, jnp.zeros(2), 1e-3, 1.0, key=key, num_iter=2))
    assert bool(tl.landscape.is_sosp(saddle, jnp.zeros(2), 1e-3, 2.5, key=key, num_iter=2))  # loose eps_H
    assert bool(tl.landscape.is_sosp(saddle, w_min, 1e-6, 0.0, key=key, num_iter=2))
    assert not bool(tl.landscape.is_sosp(saddle, w_min + 0.1, 1e-2, 0.0, key=key, num_iter=2))  # gradient


def test_vmap_over_points():
    saddle = lambda w: w[0] ** 2 - w[1] ** 2 + w[1] ** 4
    points = jnp.array([[0.0, 0.0], [0.0, 0.5**0.5], [0.0, -(0.5**0.5)]])
    keys = jax.random.split(jax.random.key(0), 3)
    flags = jax.vmap(lambda w, k: tl.landscape.is_sosp(saddle, w, 1e-3, 1e-3, key=k, num_iter=2))(
        points, keys
    )
    assert flags.tolist() == [False, True, True]
    lam = jax.vmap(lambda w: tl.landscape.min_eigenvalue(saddle, w, jax.random.key(1), 2))(points)
    np.testing.assert_allclose(lam, [-2.0, 2.0, 2.0], atol=1e-5)


def neuron_loss(seed=0, m=6, d=3, n=8):
    """A loss on W (m, d) coupling the neurons: squared error of a quadratic-activation 2-layer net."""
    k_w, k_x, k_y = jax.random.split(jax.random.key(seed), 3)
    x = jax.random.normal(k_x, (n, d))
    y = jax.random.normal(k_y, (n,))
    a = jnp.where(jnp.arange(m) % 2 == 0, 1.0, -1.0)
    loss = lambda W: jnp.mean((jnp.tanh(x @ W.T) ** 2 @ a / math.sqrt(m) - y) ** 2)
    W = jax.random.normal(k_w, (m, d)) / math.sqrt(d)
    return loss, W


@pytest.mark.x64
def test_sign_averaged_curvature_exact_vs_dense_blocks(x64):
    loss, W = neuron_loss()
    m, d = W.shape
    D = jax.random.normal(jax.random.key(9), W.shape)
    H = np.asarray(tl.landscape.hessian(loss, W)).reshape(m, d, m, d)
    Dn = np.asarray(D)
    blocks = sum(Dn[r] @ H[r, :, r, :] @ Dn[r] for r in range(m))
    full = np.einsum("ri,risj,sj->", Dn, H, Dn)
    exact = float(tl.landscape.sign_averaged_curvature(loss, W, D))
    assert exact == pytest.approx(blocks, rel=1e-10)
    assert abs(full - blocks) > 1e-3 * abs(blocks)  # the off-diagonal blocks matter: the test has content


@pytest.mark.x64
def test_sign_averaged_curvature_monte_carlo(x64):
    loss, W = neuron_loss(1)
    m, d = W.shape
    D = jax.random.normal(jax.random.key(2), W.shape)
    H = np.asarray(tl.landscape.hessian(loss, W)).reshape(m, d, m, d)
    C = np.einsum("ri,risj,sj->rs", np.asarray(D), H, np.asarray(D))  # C_rs = d_r^T H_rs d_s
    # sum_{r != s} xi_r xi_s C_rs has variance 2 sum_{r != s} C_rs^2 (distinct pairs uncorrelated)
    sd = math.sqrt(2 * (np.sum(C**2) - np.sum(np.diag(C) ** 2)))
    num = 400
    mc = float(tl.landscape.sign_averaged_curvature(loss, W, D, key=jax.random.key(3), num_signs=num))
    assert abs(mc - np.trace(C)) <= MC_SIGMAS * sd / math.sqrt(num)
    # a single sign draw is one sample of xi^T C xi
    one = float(tl.landscape.sign_averaged_curvature(loss, W, D, key=jax.random.key(3), num_signs=1))
    xi_values = [float(s @ C @ s) for s in np.array(np.meshgrid(*[[-1, 1]] * m)).reshape(m, -1).T]
    assert min(abs(one - v) for v in xi_values) <= 1e-9 * np.abs(C).sum()


def test_bad_input():
    loss = lambda w: jnp.sum(w**2)
    w = jnp.ones(3)
    key = jax.random.key(0)
    with raises(ValueError, match="num_iter must be >= 1"):
        tl.landscape.lanczos(loss, w, key, 0)
    with raises(TypeError, match="loss must be callable"):
        tl.landscape.lanczos("loss", w, key, 2)
    with raises(ValueError, match="v must have the same pytree structure as params"):
        tl.landscape.hvp(loss, {"a": w}, w)
    with raises(ValueError, match="v leaf shape"):
        tl.landscape.hvp(loss, w, jnp.ones(4))
    with raises(ValueError, match="eps_grad must be >= 0"):
        tl.landscape.is_sosp(loss, w, -1.0, 1.0, key=key)
    with raises(ValueError, match="eps_hess must be finite"):
        tl.landscape.is_sosp(loss, w, 1.0, float("inf"), key=key)
    with raises(ValueError, match="direction must have the shape of W"):
        tl.landscape.sign_averaged_curvature(loss, jnp.ones((3, 2)), jnp.ones((2, 3)))
    with raises(ValueError, match="num_signs must be >= 1"):
        tl.landscape.sign_averaged_curvature(loss, jnp.ones((3, 2)), jnp.ones((3, 2)), key=key, num_signs=0)
    with raises(ValueError, match="params has no entries"):
        tl.landscape.lanczos(loss, {}, key, 1)
    assert tree_allclose(tl.landscape.hvp(loss, w, w), 2 * w)
