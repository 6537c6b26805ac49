"""Regularizers: mixed norms against a numpy loop, bai_lee against the norm, gradients against central
finite differences (x64), homogeneity and Euler's identity, smoothness at W = 0, bad input."""

from __future__ import annotations

import math

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from helpers import raises, rtol_for

import taylorlib as tl

#: Central differences with step H on a degree-8 polynomial of O(1) entries: truncation error
#: ~ H^2 |f'''| / 6 ~ 1e-7 relative, round-off ~ eps / H ~ 1e-10 in float64; 1e-5 leaves a wide margin.
FD_STEP = 1e-4
FD_RTOL = 1e-5
M, D = 5, 3


def random_W(seed=0, m=M, d=D):
    return jax.random.normal(jax.random.key(seed), (m, d))


def numpy_norm_2p(W, p):
    """Independent implementation: an explicit loop over rows."""
    rows = [math.sqrt(sum(float(v) ** 2 for v in row)) for row in np.asarray(W)]
    if math.isinf(p):
        return max(rows)
    return sum(r**p for r in rows) ** (1.0 / p)


def fd_grad(f, W, h=FD_STEP):
    """Central finite-difference gradient, entry by entry."""
    W = np.asarray(W, dtype=np.float64)
    g = np.zeros_like(W)
    for idx in np.ndindex(W.shape):
        e = np.zeros_like(W)
        e[idx] = h
        g[idx] = (float(f(jnp.asarray(W + e))) - float(f(jnp.asarray(W - e)))) / (2 * h)
    return g


@pytest.mark.x64
@pytest.mark.parametrize("p", [1, 1.5, 2, 3, 4, 8, math.inf])
def test_norm_2p_matches_numpy_loop(x64, p):
    W = random_W()
    assert float(tl.regularizers.norm_2p(W, p)) == pytest.approx(numpy_norm_2p(W, p), rel=rtol_for(W))


def test_norm_2p_special_cases_and_homogeneity():
    W = random_W(1)
    np.testing.assert_allclose(tl.regularizers.norm_2p(W, 2), jnp.linalg.norm(W), rtol=rtol_for(W))
    np.testing.assert_allclose(
        tl.regularizers.norm_2p(W, math.inf), jnp.max(jnp.linalg.norm(W, axis=1)), rtol=rtol_for(W)
    )
    for p in (1, 4):
        np.testing.assert_allclose(
            tl.regularizers.norm_2p(-2.5 * W, p), 2.5 * tl.regularizers.norm_2p(W, p), rtol=rtol_for(W)
        )
    # monotone in p (l_p norms of the vector of row norms decrease with p)
    values = [float(tl.regularizers.norm_2p(W, p)) for p in (1, 2, 4, 8, math.inf)]
    assert all(a >= b for a, b in zip(values, values[1:], strict=False))


@pytest.mark.x64
def test_bai_lee_equals_lambda_times_norm_to_the_eighth(x64):
    W = random_W(2)
    lam = 0.3
    expected = lam * numpy_norm_2p(W, 4) ** 8
    assert float(tl.regularizers.bai_lee(W, lam)) == pytest.approx(expected, rel=1e-12)
    assert float(tl.regularizers.bai_lee(W, lam)) == pytest.approx(
        lam * float(tl.regularizers.norm_2p(W, 4)) ** 8, rel=1e-12
    )


@pytest.mark.x64
@pytest.mark.parametrize(
    ("name", "fn"),
    [
        ("bai_lee", lambda W: tl.regularizers.bai_lee(W, 0.7)),
        ("frobenius2", lambda W: tl.regularizers.frobenius2(W, 0.7)),
        ("norm_2p_4", lambda W: tl.regularizers.norm_2p(W, 4)),
        ("norm_2p_3", lambda W: tl.regularizers.norm_2p(W, 3)),
        ("norm_2p_1", lambda W: tl.regularizers.norm_2p(W, 1)),
    ],
)
def test_gradient_matches_finite_differences(x64, name, fn):
    W = 0.5 * random_W(3)
    g = np.asarray(jax.grad(fn)(W))
    g_fd = fd_grad(fn, W)
    assert np.linalg.norm(g - g_fd) <= FD_RTOL * np.linalg.norm(g_fd), name


@pytest.mark.x64
def test_bai_lee_homogeneity_and_euler(x64):
    W = random_W(4)
    lam = 0.2
    R = tl.regularizers.bai_lee
    for c in (0.5, 2.0, -1.3):
        assert float(R(c * W, lam)) == pytest.approx(c**8 * float(R(W, lam)), rel=1e-12)
    g = jax.grad(R)(W, lam)
    assert float(jnp.vdot(g, W)) == pytest.approx(8 * float(R(W, lam)), rel=1e-12)
    # the 8th power of the norm and the 2-homogeneous Frobenius penalty: Euler with degree 2
    gf = jax.grad(tl.regularizers.frobenius2)(W, lam)
    np.testing.assert_allclose(gf, 2 * lam * W, rtol=1e-12)


def test_smooth_at_zero():
    Z = jnp.zeros((M, D))
    for fn in (
        lambda W: tl.regularizers.bai_lee(W, 1.0),
        lambda W: tl.regularizers.frobenius2(W, 1.0),
        lambda W: tl.regularizers.norm_2p(W, 4),
        lambda W: tl.regularizers.norm_2p(W, 1),
        lambda W: tl.regularizers.norm_2p(W, math.inf),
    ):
        g = jax.grad(fn)(Z)
        assert bool(jnp.all(jnp.isfinite(g)))
    # bai_lee is a polynomial: its Hessian at 0 exists and vanishes (degree 8)
    H = jax.hessian(lambda W: tl.regularizers.bai_lee(W, 1.0))(Z)
    assert bool(jnp.all(H == 0))


def test_frobenius2_on_pytrees():
    params = {"W": random_W(5), "a": jnp.arange(3.0)}
    expected = 0.5 * (float(jnp.sum(params["W"] ** 2)) + 5.0)
    assert float(tl.regularizers.frobenius2(params, 0.5)) == pytest.approx(
        expected, rel=rtol_for(params["W"])
    )


def test_under_jit_and_vmap():
    Ws = jnp.stack([random_W(s) for s in range(3)])
    batched = jax.vmap(lambda W: tl.regularizers.bai_lee(W, 0.1))(Ws)
    looped = jnp.stack([tl.regularizers.bai_lee(W, 0.1) for W in Ws])
    np.testing.assert_allclose(batched, looped, rtol=rtol_for(Ws))
    lam_traced = jax.jit(tl.regularizers.bai_lee)(Ws[0], 0.1)
    np.testing.assert_allclose(lam_traced, looped[0], rtol=rtol_for(Ws))


def test_bad_input():
    W = random_W()
    with raises(ValueError, match="W must be 2-D"):
        tl.regularizers.norm_2p(jnp.ones(3), 2)
    with raises(ValueError, match="W must be 2-D"):
        tl.regularizers.bai_lee(jnp.ones((2, 2, 2)), 1.0)
    with raises(ValueError, match="p must be >= 1"):
        tl.regularizers.norm_2p(W, 0.5)
    with raises(TypeError, match="p must be a real number"):
        tl.regularizers.norm_2p(W, "4")
    with raises(ValueError, match="lam must be >= 0"):
        tl.regularizers.bai_lee(W, -1.0)
    with raises(ValueError, match="lam must be finite"):
        tl.regularizers.frobenius2(W, float("nan"))
    with raises(ValueError, match="at least one array leaf"):
        tl.regularizers.frobenius2({}, 1.0)
    with raises(TypeError, match="W must be real"):
        tl.regularizers.bai_lee(jnp.ones((2, 2), dtype=jnp.complex64), 1.0)
