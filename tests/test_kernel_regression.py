"""Kernel ridge regression against numpy's least squares and solve, interpolation, and bad input."""

from __future__ import annotations

import functools

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from helpers import assert_close_matrices, raises

import taylorlib as tl

#: Two float64 solvers of a well-conditioned system (cond(K + ridge I) <= ~1e4 here): their
#: difference is ~cond * eps ~ 1e-12.
X64_RTOL = 1e-9
#: ridge -> 0 on distinct points: K is positive definite, so KRR interpolates up to round-off
#: amplified by cond(K) (~1e5 for these 30 points): 1e-6 relative in float64.
INTERP_RTOL = 1e-6


def problem(n=30, t=8, d=5, seed=0):
    return _problem(n, t, d, seed, jax.config.jax_enable_x64)


@functools.lru_cache(maxsize=8)
def _problem(n, t, d, seed, x64):
    rng = np.random.default_rng(seed)
    g = rng.standard_normal((n + t, d))
    z = jnp.asarray(g * np.sqrt(d) / np.linalg.norm(g, axis=1, keepdims=True))  # uniform on the sphere
    x, xt = z[:n], z[n:]
    y = jnp.sin(x[:, 0]) + 0.1 * jnp.asarray(rng.standard_normal(n))
    K = tl.kernels.ntk(x, activation="relu")
    Kt = tl.kernels.ntk(xt, x, activation="relu")
    return K, y, Kt


@pytest.mark.x64
@pytest.mark.parametrize("ridge", [1e-3, 0.1, 10.0])
def test_krr_matches_numpy_lstsq(x64, ridge):
    K, y, Kt = problem()
    pred = tl.kernel_regression.krr(K, y, Kt, ridge=ridge)
    A = np.asarray(K) + ridge * np.eye(K.shape[0])
    alpha_lstsq = np.linalg.lstsq(A, np.asarray(y), rcond=None)[0]
    assert pred.shape == (8,)
    assert pred.dtype == jnp.float64
    assert_close_matrices(pred, np.asarray(Kt) @ alpha_lstsq, rtol=X64_RTOL)
    alpha = tl.kernel_regression.krr_weights(K, y, ridge=ridge)
    assert_close_matrices(alpha, np.linalg.solve(A, np.asarray(y)), rtol=X64_RTOL)
    # the dual coefficients solve the regularized normal equations
    assert_close_matrices(A @ np.asarray(alpha), y, rtol=X64_RTOL)


@pytest.mark.x64
def test_zero_ridge_matches_numpy_solve(x64):
    K, y, Kt = problem()
    pred = tl.kernel_regression.krr(K, y, Kt, ridge=0.0)
    assert_close_matrices(pred, np.asarray(Kt) @ np.linalg.solve(np.asarray(K), np.asarray(y)), rtol=X64_RTOL)


@pytest.mark.x64
def test_small_ridge_interpolates_distinct_points(x64):
    K, y, _ = problem()
    pred = tl.kernel_regression.krr(K, y, K, ridge=1e-12)
    assert_close_matrices(pred, y, rtol=INTERP_RTOL)


def test_small_ridge_interpolates_in_float32():
    K, y, _ = problem(n=20)
    pred = tl.kernel_regression.krr(K, y, K, ridge=1e-6)
    # float32 round-off amplified by cond(K) ~ 1e4
    assert_close_matrices(pred, y, rtol=1e-2)


@pytest.mark.x64
def test_matrix_labels_are_solved_column_by_column(x64):
    K, y, Kt = problem()
    Y = jnp.stack([y, y**2, -y], axis=1)
    pred = tl.kernel_regression.krr(K, Y, Kt, ridge=1e-2)
    assert pred.shape == (8, 3)
    for j in range(3):
        assert_close_matrices(pred[:, j], tl.kernel_regression.krr(K, Y[:, j], Kt, ridge=1e-2), rtol=X64_RTOL)


@pytest.mark.x64
def test_large_ridge_shrinks_predictions_like_k_y_over_ridge(x64):
    # (K + lam I)^{-1} = I / lam + O(1/lam^2): pred -> Kt y / lam
    K, y, Kt = problem()
    lam = 1e8
    pred = tl.kernel_regression.krr(K, y, Kt, ridge=lam)
    assert_close_matrices(pred, Kt @ y / lam, rtol=1e-5)


# ----------------------------------------------------------------------------- bad input


def test_k_must_be_square():
    K, y, Kt = problem()
    with raises(ValueError, match="K_train must be a square"):
        tl.kernel_regression.krr(K[:, :-1], y, Kt)
    with raises(ValueError, match="K_train must be a square"):
        tl.kernel_regression.krr(K[0], y, Kt)


def test_y_must_match_k():
    K, y, Kt = problem()
    with raises(ValueError, match="y_train"):
        tl.kernel_regression.krr(K, y[:-1], Kt)
    with raises(ValueError, match="y_train"):
        tl.kernel_regression.krr(K, y[:, None, None], Kt)


def test_k_test_train_must_have_n_columns():
    K, y, Kt = problem()
    with raises(ValueError, match="K_test_train"):
        tl.kernel_regression.krr(K, y, Kt[:, :-1])
    with raises(ValueError, match="K_test_train"):
        tl.kernel_regression.krr(K, y, Kt[0])


def test_ridge_must_be_non_negative():
    K, y, Kt = problem()
    with raises(ValueError, match="ridge"):
        tl.kernel_regression.krr(K, y, Kt, ridge=-1e-3)
    with raises(TypeError, match="ridge"):
        tl.kernel_regression.krr(K, y, Kt, ridge="small")


@pytest.mark.parametrize("x64_on", [False, pytest.param(True, marks=pytest.mark.x64)])
def test_non_psd_kernel_is_reported(x64_on, request):
    if x64_on:
        request.getfixturevalue("x64")
    n = 4
    with raises(ValueError, match="ridge.*positive definite|positive definite.*ridge"):
        tl.kernel_regression.krr(-jnp.eye(n), jnp.ones(n), jnp.ones((2, n)), ridge=1e-6)
    # a ridge large enough makes the same matrix positive definite
    pred = tl.kernel_regression.krr(-jnp.eye(n), jnp.ones(n), jnp.ones((2, n)), ridge=2.0)
    np.testing.assert_allclose(pred, 4.0 * np.ones(2), rtol=1e-6)


def test_non_symmetric_kernel_is_rejected():
    K, y, Kt = problem()
    with raises(ValueError, match="symmetric"):
        tl.kernel_regression.krr(K.at[0, 1].add(1.0), y, Kt)


def test_non_finite_input_is_rejected():
    K, y, Kt = problem()
    with raises(ValueError, match="K_train"):
        tl.kernel_regression.krr(K.at[0, 0].set(jnp.nan), y, Kt)
    with raises(ValueError, match="y_train"):
        tl.kernel_regression.krr(K, y.at[0].set(jnp.inf), Kt)


def test_krr_works_under_jit_and_vmap():
    """Sweeps vmap KRR over seeds and ridges: the host-side checks must not break tracing."""
    x = tl.data.sphere(jax.random.key(0), 20, 4)
    y = x[:, 0]
    K = tl.kernels.ntk(x)
    eager = tl.kernel_regression.krr(K, y, K, ridge=1e-3)
    jitted = jax.jit(lambda K, y, r: tl.kernel_regression.krr(K, y, K, ridge=r))(K, y, 1e-3)
    np.testing.assert_allclose(jitted, eager, rtol=1e-5, atol=1e-6)
    batched = jax.vmap(lambda r: tl.kernel_regression.krr_weights(K, y, r))(jnp.array([1e-3, 1e-1]))
    np.testing.assert_allclose(batched[0], tl.kernel_regression.krr_weights(K, y, 1e-3), rtol=1e-5, atol=1e-6)
