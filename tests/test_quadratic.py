"""The quadratic model and QuadNTK: closed forms against autodiff, features and infinite width."""

from __future__ import annotations

import math

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from helpers import assert_close_matrices, raises, rel_frobenius

import taylorlib as tl

#: quad_ntk at width m vs its limit: relative Frobenius <= MC_CONST / sqrt(m); measured sqrt(m) * error
#: at m = 4096: max 0.78 over 21 seed offsets (~1.5x).
MC_CONST = 1.25
ACTS = ["softplus", "tanh", "smooth_relu2", "erf"]


def _setup(act, m=12, d=4, n=5, scale=0.4, seed=0):
    k0, k1, k2 = jax.random.split(jax.random.key(seed), 3)
    net = tl.nets.two_layer(m, act)
    p0 = net.init(k0, d)
    W = scale * jax.random.normal(k1, (m, d))
    x = tl.data.sphere(k2, n, d)
    return net, p0, W, x


@pytest.mark.x64
@pytest.mark.parametrize("act", ACTS)
def test_two_layer_terms_match_taylor_terms(x64, act):
    net, p0, W, x = _setup(act)
    closed = tl.quadratic.two_layer_terms(p0, W, x, activation=act, order=5)
    auto = tl.taylor.taylor_terms(net.apply, p0, {"W": W, "a": jnp.zeros_like(p0["a"])}, x, order=5)
    scale = max(float(jnp.max(jnp.abs(t))) for t in auto)
    for c, a in zip(closed, auto, strict=True):
        assert float(jnp.max(jnp.abs(c - a))) <= 1e-10 * scale


@pytest.mark.parametrize("dtype", ["float32", pytest.param("float64", marks=pytest.mark.x64)])
def test_two_layer_terms_eager_and_jitted_are_identical(dtype, request):
    # the public function validates, then runs one jitted implementation: eager = jit to round-off
    if dtype == "float64":
        request.getfixturevalue("x64")
    _, p0, W, x = _setup("tanh", m=16, d=4, n=6)
    p0 = jax.tree_util.tree_map(lambda v: v.astype(dtype), p0)
    W, x = W.astype(dtype), x.astype(dtype)
    user = lambda z: jnp.log1p(jnp.exp(z))  # noqa: E731  (a callable activation)
    for act, order in (("tanh", 3), ("relu", 1), (user, 2)):

        def terms(p, W, x, act=act, order=order):
            return jnp.stack(tl.quadratic.two_layer_terms(p, W, x, activation=act, order=order))

        eager, jitted = terms(p0, W, x), jax.jit(terms)(p0, W, x)
        assert eager.shape == (order + 1, 6)
        assert eager.dtype == dtype
        # an outer jit may fuse the inlined program differently: equal to a few ulps of the largest term
        tol = 8 * jnp.finfo(dtype).eps * float(jnp.max(jnp.abs(eager)))
        assert float(jnp.max(jnp.abs(eager - jitted))) <= tol, act
    # validation still runs under jit on shapes (values are not checked on tracers)
    with raises(ValueError, match="W \\(the movement\\) must have the shape"):
        jax.jit(lambda W: tl.quadratic.two_layer_terms(p0, W, x, activation="tanh", order=2))(W[:3])


@pytest.mark.x64
def test_quadratic_model_is_the_second_term_and_homogeneous(x64):
    net, p0, W, x = _setup("softplus")
    fq = tl.quadratic.quadratic_model(net.apply, p0)
    p = {"W": p0["W"] + W, "a": p0["a"]}
    closed = tl.quadratic.two_layer_terms(p0, W, x, activation="softplus", order=2)[2]
    np.testing.assert_allclose(fq(p, x), closed, rtol=1e-10, atol=1e-14)
    p3 = {"W": p0["W"] + 3.0 * W, "a": p0["a"]}
    np.testing.assert_allclose(fq(p3, x), 9.0 * fq(p, x), rtol=1e-10, atol=1e-14)
    np.testing.assert_allclose(fq(p, x), tl.taylor.taylor_term(net.apply, p0, 2)(p, x), rtol=1e-12)


@pytest.mark.x64
def test_quad_ntk_is_the_gram_of_explicit_features(x64):
    _, p0, _, x = _setup("softplus", m=6, d=3, n=4)
    m = p0["W"].shape[0]
    d2 = tl.activations.derivative("softplus", 2)
    # f^Q = sum_r <phi_r(x), w_r w_r^T>, phi_r(x) = a_r sigma''(w0_r.x) x x^T / (2 sqrt m)
    feats = []
    for xi in np.asarray(x):
        s = np.asarray(d2(p0["W"] @ xi))
        feats.append(np.concatenate([s[r] * np.outer(xi, xi).ravel() / (2 * math.sqrt(m)) for r in range(m)]))
    F = np.stack(feats)
    assert_close_matrices(tl.quadratic.quad_ntk(p0, x, activation="softplus"), F @ F.T, rtol=1e-12)


def test_quad_ntk_converges_to_the_analytic_kernel():
    x = tl.data.sphere(jax.random.key(3), 16, 6)
    K_inf = tl.kernels.quad_ntk(x, activation="softplus")
    errs = []
    for m in (256, 4096):
        p0 = tl.nets.two_layer(m, "softplus").init(jax.random.key(m), 6)
        errs.append(rel_frobenius(tl.quadratic.quad_ntk(p0, x, activation="softplus"), K_inf))
    # Monte Carlo over m neurons (m/2 distinct): error ~ c / sqrt(m); c ~ 1 at this n.
    assert errs[1] < MC_CONST / math.sqrt(4096)
    assert errs[1] < errs[0]


def test_scaling_helpers_roundtrip_and_learning_rate():
    V = jax.random.normal(jax.random.key(0), (64, 3))
    for k in (1, 2, 3):
        W = tl.quadratic.to_movement(V, k)
        np.testing.assert_allclose(W, V * 64 ** (-1 / (2 * k)), rtol=1e-6)
        np.testing.assert_allclose(tl.quadratic.from_movement(W, k), V, rtol=1e-5)
    assert tl.quadratic.learning_rate(400, 40, base=0.5) == pytest.approx(5.0)


def test_bad_input():
    _, p0, W, x = _setup("softplus")
    with raises(ValueError, match="relu"):
        tl.quadratic.quad_ntk(p0, x, activation="relu")
    with raises(ValueError, match="softplus or smooth_relu2"):
        tl.quadratic.quad_ntk(p0, x, activation="relu")
    with raises(ValueError, match="W .the movement."):
        tl.quadratic.two_layer_terms(p0, W[:-1], x, activation="softplus", order=2)
    with raises(ValueError, match="x has feature dimension"):
        tl.quadratic.two_layer_terms(p0, W, x[:, :-1], activation="softplus", order=2)
    with raises(ValueError, match="order"):
        tl.quadratic.two_layer_terms(p0, W, x, activation="softplus", order=-1)
    with raises(TypeError, match="params0"):
        tl.quadratic.quad_ntk([p0["W"]], x, activation="softplus")
    with raises(ValueError, match="x2"):
        tl.quadratic.quad_ntk(p0, x, x[:, :2], activation="softplus")
    with raises(ValueError, match="V must be 2-D"):
        tl.quadratic.to_movement(jnp.ones(3))
    with raises(ValueError, match="base"):
        tl.quadratic.learning_rate(10, 2, base=-1.0)
