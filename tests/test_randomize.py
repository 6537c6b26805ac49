"""Sign randomization: exact expectations against enumeration of all 2^m signs and Monte Carlo."""

from __future__ import annotations

import itertools
import math

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from helpers import raises

import taylorlib as tl

ACT = "softplus"
#: Monte Carlo acceptance in standard errors: measured max 2.14 over 21 seed offsets (~1.5x).
MC_SIGMAS = 3.25


def _setup(m=8, d=3, n=5, scale=0.6, seed=0, symmetric=True):
    k0, k1, k2, k3 = jax.random.split(jax.random.key(seed), 4)
    net = tl.nets.two_layer(m, ACT, symmetric=symmetric)
    p0 = net.init(k0, d)
    W = scale * jax.random.normal(k1, (m, d))
    x = tl.data.sphere(k2, n, d)
    y = jax.random.normal(k3, (n,))
    return net, p0, W, x, y


def _all_signs(m):
    return jnp.array(list(itertools.product([-1.0, 1.0], repeat=m)))


@pytest.mark.x64
@pytest.mark.parametrize("symmetric", [True, False])
def test_expected_loss_network_equals_enumeration(x64, symmetric):
    net, p0, W, x, y = _setup(symmetric=symmetric)
    signs = _all_signs(8)
    losses = jax.vmap(
        lambda e: jnp.mean((net.apply({"W": p0["W"] + e[:, None] * W, "a": p0["a"]}, x) - y) ** 2)
    )(signs)
    exact = tl.randomize.expected_square_loss(p0, W, x, y, activation=ACT, model="network")
    np.testing.assert_allclose(exact, jnp.mean(losses), rtol=1e-12)


@pytest.mark.x64
def test_expected_loss_taylor_equals_enumeration(x64):
    _, p0, W, x, y = _setup()
    f0, _, f2 = tl.quadratic.two_layer_terms(p0, W, x, activation=ACT, order=2)
    signs = _all_signs(8)

    def loss(e):
        f1 = tl.quadratic.two_layer_terms(p0, e[:, None] * W, x, activation=ACT, order=1)[1]
        return jnp.mean((y - f0 - f1 - f2) ** 2)

    brute = jnp.mean(jax.vmap(loss)(signs))
    exact = tl.randomize.expected_square_loss(p0, W, x, y, activation=ACT)
    np.testing.assert_allclose(exact, brute, rtol=1e-12)


@pytest.mark.x64
def test_sign_moments_equal_enumeration_and_kill_odd_orders(x64):
    net, p0, W, x, _ = _setup(scale=0.2)
    outs = jax.vmap(lambda e: net.apply({"W": p0["W"] + e[:, None] * W, "a": p0["a"]}, x))(_all_signs(8))
    mom = tl.randomize.sign_moments(p0, W, x, activation=ACT)
    np.testing.assert_allclose(mom.mean, outs.mean(0), rtol=1e-11, atol=1e-14)
    np.testing.assert_allclose(mom.variance, outs.var(0), rtol=1e-10, atol=1e-14)
    # E_S f = f0 + f2 + f4 + ...: the residual after the even terms up to f4 is O(|W|^6), so halving the
    # movement divides it by ~2^6 = 64 (odd orders would give 2^5 or less).
    resid = []
    for c in (1.0, 0.5):
        mean = tl.randomize.sign_moments(p0, c * W, x, activation=ACT).mean
        terms = tl.quadratic.two_layer_terms(p0, c * W, x, activation=ACT, order=4)
        resid.append(float(jnp.max(jnp.abs(mean - terms[0] - terms[2] - terms[4]))))
    assert 50 < resid[0] / resid[1] < 80


def test_expected_loss_matches_monte_carlo_at_large_width():
    m, num = 2048, 2000
    net, p0, W, x, y = _setup(m=m, d=10, n=6, scale=2 * m ** (-0.25))
    rand = tl.randomize.randomized_apply(net.apply, p0)
    p = {"W": p0["W"] + W, "a": p0["a"]}
    keys = jax.random.split(jax.random.key(7), num)
    samples = jax.vmap(lambda k: jnp.mean((rand(p, x, k) - y) ** 2))(keys)
    exact = tl.randomize.expected_square_loss(p0, W, x, y, activation=ACT, model="network")
    se = float(jnp.std(samples)) / math.sqrt(num)
    assert abs(float(jnp.mean(samples)) - float(exact)) < MC_SIGMAS * se + 1e-6


def test_mc_objective_is_unbiased_for_the_exact_loss():
    net, p0, W, x, y = _setup(m=16, d=4, n=6)
    p = {"W": p0["W"] + W, "a": p0["a"]}
    sq = lambda f, q: jnp.mean((f(q, x) - y) ** 2)
    vals = jnp.array(
        [tl.randomize.mc_objective(sq, net.apply, p0, jax.random.key(i), 64)(p) for i in range(40)]
    )
    exact = float(tl.randomize.expected_square_loss(p0, W, x, y, activation=ACT, model="network"))
    se = float(jnp.std(vals)) / math.sqrt(len(vals))
    assert abs(float(jnp.mean(vals)) - exact) < MC_SIGMAS * se + 1e-6
    grad = jax.grad(tl.randomize.mc_objective(sq, net.apply, p0, jax.random.key(0), 4))(p)
    assert bool(jnp.all(jnp.isfinite(grad["W"])))


@pytest.mark.x64
def test_gradient_matches_finite_differences(x64):
    _, p0, W, x, y = _setup()
    for model in ("taylor", "network"):
        f = lambda w, model=model: tl.randomize.expected_square_loss(p0, w, x, y, activation=ACT, model=model)
        g = jax.grad(f)(W)
        D = jax.random.normal(jax.random.key(5), W.shape)
        h = 1e-5
        fd = (f(W + h * D) - f(W - h * D)) / (2 * h)
        np.testing.assert_allclose(jnp.vdot(g, D), fd, rtol=1e-7)


def test_sign_flip_and_randomized_apply():
    W = jax.random.normal(jax.random.key(0), (10, 3))
    SW = tl.randomize.sign_flip(jax.random.key(1), W)
    ratio = SW / W
    assert bool(jnp.all(jnp.abs(ratio) == 1.0))
    assert bool(jnp.all(ratio == ratio[:, :1]))
    np.testing.assert_array_equal(tl.randomize.sign_flip(jax.random.key(1), SW), W)  # involution, same key
    net, p0, W8, x, _ = _setup()
    rand = tl.randomize.randomized_apply(net.apply, p0)
    p = {"W": p0["W"] + W8, "a": p0["a"]}
    key = jax.random.key(3)
    expected = net.apply({"W": p0["W"] + tl.randomize.sign_flip(key, W8), "a": p0["a"]}, x)
    np.testing.assert_allclose(rand(p, x, key), expected, rtol=1e-5, atol=1e-6)


def test_bad_input():
    _, p0, W, x, y = _setup()
    with raises(ValueError, match="num_signs"):
        tl.randomize.mc_objective(lambda f, p: 0.0, lambda p, x: x, p0, jax.random.key(0), 0)
    with raises(ValueError, match="y must have shape"):
        tl.randomize.expected_square_loss(p0, W, x, y[:-1], activation=ACT)
    with raises(ValueError, match="W .the movement.", checker_names="x"):
        tl.randomize.expected_square_loss(p0, W.T, x, y, activation=ACT)
    with raises(ValueError, match="softplus or smooth_relu2"):
        tl.randomize.expected_square_loss(p0, W, x, y, activation="relu")
    with raises(ValueError, match="model"):
        tl.randomize.expected_square_loss(p0, W, x, y, activation=ACT, model="exact")
    with raises(ValueError, match="leading"):
        tl.randomize.sign_flip(jax.random.key(0), jnp.ones((0, 3)))
    with raises(ValueError, match="leaves"):
        tl.randomize.randomized_apply(lambda p, x: x, p0, leaves=("V",))
    with raises(ValueError, match="even"):
        tl.nets.two_layer(7, ACT, symmetric=True)
    with raises(ValueError, match="m >= 1"):
        tl.randomize.sign_moments(
            {"W": jnp.ones((0, 3)), "a": jnp.ones(0)}, jnp.ones((0, 3)), x, activation=ACT
        )
