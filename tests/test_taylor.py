"""Taylor terms in parameter space: nested jvp vs jet, exactness on a polynomial network, remainder
rates, finite differences, and the derived transforms (taylor_expand, taylor_term, linearize)."""

from __future__ import annotations

import functools

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from helpers import assert_close_matrices, np_sphere, raises, random_like

import taylorlib as tl

#: Agreement of two exact float64 implementations (jvp vs jet), relative to the largest term.
X64_RTOL = 1e-10
#: Central differences with step H: truncation ~H^2 |g'''| / 6 ~ 1e-7 dominates round-off
#: (~eps / H^2 ~ 1e-10 for the second difference), so 1e-5 relative leaves a 100x margin.
FD_STEP = 1e-3
FD_RTOL = 1e-5
#: A remainder of order K shrinks like t^(K+1); the fitted slope over one decade of t deviates by
#: about t * |f^(K+2)| / |f^(K+1)| (the next term), well below this allowance.
SLOPE_TOL = 0.25

SMOOTH = ("tanh", "erf", "softplus", "gelu", "smooth_relu2")
N, D, M = 5, 3, 6


def assert_terms_close(terms_a, terms_b, rtol):
    """max_k max |a_k - b_k| <= rtol * max_k max |b_k| (one scale for all orders)."""
    assert len(terms_a) == len(terms_b)
    scale = max(float(jnp.max(jnp.abs(t))) for t in terms_b)
    err = max(float(jnp.max(jnp.abs(a - b))) for a, b in zip(terms_a, terms_b, strict=True))
    assert err <= rtol * scale, f"max abs difference {err:.3e} > {rtol:.0e} * {scale:.3e}"


def two_layer_setup(activation, symmetric=False, width=M, seed=0):
    """(net, params0, dparams, x); cached so that tests share one ``apply`` and hence the compiled
    Taylor functions (taylor_terms caches its jitted code per apply, order and method)."""
    return _two_layer_setup(activation, symmetric, width, seed, jax.config.jax_enable_x64)


@functools.cache
def _two_layer_setup(activation, symmetric, width, seed, x64):
    net = tl.nets.two_layer(width, activation, symmetric=symmetric)
    p0 = net.init(jax.random.key(seed), D)
    dp = random_like(seed + 100, p0, scale=0.5)
    x = np_sphere(seed + 200, N, D)
    return net, p0, dp, x


def mlp_setup(activation, seed=0):
    return _mlp_setup(activation, seed, jax.config.jax_enable_x64)


@functools.cache
def _mlp_setup(activation, seed, x64):
    net = tl.nets.mlp((5, 4), activation)
    # same law as init, drawn with numpy (jax.random compiles a sampler for each leaf shape)
    p0 = random_like(seed, jax.eval_shape(lambda k: net.init(k, D), jax.random.key(seed)))
    dp = random_like(seed + 100, p0, scale=0.3)
    x = jnp.asarray(np.random.default_rng(seed + 200).standard_normal((N, D)))
    return net, p0, dp, x


# ----------------------------------------------------------------------------- jvp vs jet


@pytest.mark.x64
@pytest.mark.parametrize("activation", SMOOTH)
def test_jvp_and_jet_agree_on_two_layer(x64, activation):
    net, p0, dp, x = two_layer_setup(activation)
    t_jvp = tl.taylor.taylor_terms(net.apply, p0, dp, x, order=6, method="jvp")
    t_jet = tl.taylor.taylor_terms(net.apply, p0, dp, x, order=6, method="jet")
    assert len(t_jvp) == 7
    assert all(t.shape == (N,) and t.dtype == jnp.float64 for t in t_jvp)
    assert_terms_close(t_jet, t_jvp, X64_RTOL)
    # the high orders are not trivially zero (so the comparison has content)
    assert float(jnp.max(jnp.abs(t_jvp[6]))) > 1e-8


@pytest.mark.x64
def test_jvp_and_jet_agree_on_mlp(x64):
    net, p0, dp, x = mlp_setup("tanh")
    t_jvp = tl.taylor.taylor_terms(net.apply, p0, dp, x, order=6, method="jvp")
    t_jet = tl.taylor.taylor_terms(net.apply, p0, dp, x, order=6, method="jet")
    assert_terms_close(t_jet, t_jvp, X64_RTOL)
    assert float(jnp.max(jnp.abs(t_jvp[6]))) > 1e-8


@pytest.mark.x64
def test_low_orders_return_the_leading_terms(x64):
    net, p0, dp, x = two_layer_setup("tanh")
    t6 = tl.taylor.taylor_terms(net.apply, p0, dp, x, order=6)
    for order in (0, 2):
        for method in ("jvp", "jet"):
            terms = tl.taylor.taylor_terms(net.apply, p0, dp, x, order=order, method=method)
            assert len(terms) == order + 1
            assert_terms_close(terms, t6[: order + 1], X64_RTOL)
    np.testing.assert_allclose(t6[0], net.apply(p0, x), rtol=1e-14)


def test_float32_default_methods_agree():
    # float32 (the default): a symmetric net, whose zeroth term is exactly 0 (f_0 = 0 at init)
    net, p0, dp, x = two_layer_setup("softplus", symmetric=True, width=64)
    t_jvp = tl.taylor.taylor_terms(net.apply, p0, dp, x, order=2)
    t_jet = tl.taylor.taylor_terms(net.apply, p0, dp, x, order=2, method="jet")
    assert all(t.dtype == jnp.float32 for t in t_jvp + t_jet)
    assert bool(jnp.all(t_jvp[0] == 0.0))
    assert bool(jnp.all(t_jet[0] == 0.0))
    assert_terms_close(t_jet, t_jvp, 1e-5)


# ----------------------------------------------------------------------------- exactness


@pytest.mark.x64
@pytest.mark.parametrize("method", ["jvp", "jet"])
def test_quadratic_activation_terms_vanish_above_two(x64, method):
    # f(W) = (1/sqrt m) sum_r a_r (w_r . x)^2 is a quadratic polynomial in W for fixed a.
    net, p0, dp, x = two_layer_setup("quadratic", symmetric=True)
    dp = {"W": dp["W"], "a": jnp.zeros_like(p0["a"])}
    terms = tl.taylor.taylor_terms(net.apply, p0, dp, x, order=5, method=method)
    for k in range(3, 6):
        assert bool(jnp.all(terms[k] == 0.0)), f"term {k} is not exactly zero: {terms[k]}"
    assert float(jnp.max(jnp.abs(terms[2]))) > 1e-3
    # and the three terms sum to the network at the moved point
    p1 = {"W": p0["W"] + dp["W"], "a": p0["a"]}
    np.testing.assert_allclose(terms[0] + terms[1] + terms[2], net.apply(p1, x), rtol=1e-12, atol=1e-12)


@pytest.mark.x64
@pytest.mark.parametrize("method", ["jvp", "jet"])
def test_quadratic_taylor_expand_order_two_is_apply(x64, method):
    net, p0, dp, x = two_layer_setup("quadratic", symmetric=True)
    p1 = {"W": p0["W"] + dp["W"], "a": p0["a"]}
    g2 = tl.taylor.taylor_expand(net.apply, p0, order=2, method=method)
    y = net.apply(p1, x)
    np.testing.assert_allclose(g2(p1, x), y, rtol=1e-12, atol=1e-12 * float(jnp.max(jnp.abs(y))))
    # order 1 is not exact (the quadratic term is missing), so the check above has content
    g1 = tl.taylor.taylor_expand(net.apply, p0, order=1, method=method)
    assert float(jnp.max(jnp.abs(g1(p1, x) - y))) > 1e-3


# ----------------------------------------------------------------------------- remainder and FD


@pytest.mark.x64
@pytest.mark.parametrize("K", [1, 2, 3])
def test_remainder_shrinks_like_t_to_the_k_plus_one(x64, K):
    net, p0, dp, x = two_layer_setup("tanh", seed=1)
    terms = tl.taylor.taylor_terms(net.apply, p0, dp, x, order=K)
    ts = np.geomspace(1e-2, 1e-1, 6)
    remainders = []
    for t in ts:
        pt = jax.tree_util.tree_map(lambda p, v, t=t: p + t * v, p0, dp)
        # the terms along t * dp are t^k times the terms along dp
        partial = sum(t**k * terms[k] for k in range(K + 1))
        remainders.append(float(jnp.linalg.norm(net.apply(pt, x) - partial)))
    slope = tl.plotting.loglog_slope(ts, remainders)
    assert abs(slope - (K + 1)) <= SLOPE_TOL, f"K={K}: slope {slope:.3f}, expected {K + 1}"


@pytest.mark.x64
@pytest.mark.parametrize("kind", ["two_layer", "mlp"])
def test_terms_match_central_finite_differences(x64, kind):
    net, p0, dp, x = two_layer_setup("softplus") if kind == "two_layer" else mlp_setup("tanh")

    def g(t):
        return net.apply(jax.tree_util.tree_map(lambda p, v: p + t * v, p0, dp), x)

    h = FD_STEP
    d1 = (g(h) - g(-h)) / (2 * h)
    d2_half = (g(h) - 2 * g(0.0) + g(-h)) / (2 * h**2)  # g''(0) / 2!
    terms = tl.taylor.taylor_terms(net.apply, p0, dp, x, order=2)
    assert_close_matrices(terms[1], d1, rtol=FD_RTOL)
    assert_close_matrices(terms[2], d2_half, rtol=FD_RTOL)


# ----------------------------------------------------------------------------- derived transforms


@pytest.mark.x64
@pytest.mark.parametrize("method", ["jvp", "jet"])
def test_taylor_term_two_equals_terms_two(x64, method):
    net, p0, dp, x = two_layer_setup("erf")
    p1 = jax.tree_util.tree_map(jnp.add, p0, dp)
    h2 = tl.taylor.taylor_term(net.apply, p0, 2, method=method)
    # p1 - p0 equals dp only up to round-off, hence a tolerance rather than equality
    terms = tl.taylor.taylor_terms(net.apply, p0, dp, x, order=2, method=method)
    assert_close_matrices(h2(p1, x), terms[2], rtol=X64_RTOL)
    expand = tl.taylor.taylor_expand(net.apply, p0, order=2, method=method)
    assert_close_matrices(expand(p1, x), terms[0] + terms[1] + terms[2], rtol=X64_RTOL)


@pytest.mark.x64
def test_linearize_equals_taylor_expand_order_one(x64):
    net, p0, dp, x = mlp_setup("tanh")
    p1 = jax.tree_util.tree_map(jnp.add, p0, dp)
    lin = tl.taylor.linearize(net.apply, p0)
    g1 = tl.taylor.taylor_expand(net.apply, p0, order=1)
    assert_close_matrices(lin(p1, x), g1(p1, x), rtol=X64_RTOL)
    np.testing.assert_allclose(lin(p0, x), net.apply(p0, x), rtol=1e-14)


@pytest.mark.x64
@pytest.mark.parametrize("c", [0.5, -2.0])
def test_scaling_the_direction_scales_term_k_by_c_to_the_k(x64, c):
    net, p0, dp, x = two_layer_setup("smooth_relu2")
    terms = tl.taylor.taylor_terms(net.apply, p0, dp, x, order=6)
    scaled = tl.taylor.taylor_terms(net.apply, p0, jax.tree_util.tree_map(lambda v: c * v, dp), x, order=6)
    assert_terms_close(scaled, tuple(c**k * t for k, t in enumerate(terms)), X64_RTOL)


# ----------------------------------------------------------------------------- bad input


def test_order_must_be_a_non_negative_int():
    net, p0, dp, x = two_layer_setup("tanh")
    with raises(ValueError, match="order"):
        tl.taylor.taylor_terms(net.apply, p0, dp, x, order=-1)
    for bad in (2.0, True):
        with raises(TypeError, match="order"):
            tl.taylor.taylor_terms(net.apply, p0, dp, x, order=bad)
    with raises(TypeError, match="order"):
        tl.taylor.taylor_expand(net.apply, p0, order=1.0)
    with raises(ValueError, match="order"):
        tl.taylor.taylor_expand(net.apply, p0, order=-2)
    with raises(ValueError, match="k"):
        tl.taylor.taylor_term(net.apply, p0, -1)


def test_unknown_method():
    net, p0, dp, x = two_layer_setup("tanh")
    with raises(ValueError, match="method"):
        tl.taylor.taylor_terms(net.apply, p0, dp, x, order=2, method="hessian")
    with raises(ValueError, match="method"):
        tl.taylor.taylor_expand(net.apply, p0, order=2, method="JVP")
    with raises(ValueError, match="method"):
        tl.taylor.taylor_term(net.apply, p0, 2, method=None)


def test_mismatched_direction_pytree():
    net, p0, dp, x = two_layer_setup("tanh")
    with raises(ValueError, match="dparams"):
        tl.taylor.taylor_terms(net.apply, p0, {"W": dp["W"]}, x, order=2)
    with raises(ValueError, match="dparams"):
        tl.taylor.taylor_terms(net.apply, p0, {"W": dp["W"], "a": dp["a"][:-1]}, x, order=2)
    with raises(ValueError, match="params"):
        tl.taylor.taylor_expand(net.apply, p0, order=2)({"W": dp["W"]}, x)
    with raises(ValueError, match="params"):
        tl.taylor.linearize(net.apply, p0)({"W": dp["W"]}, x)


def test_apply_must_be_callable():
    net, p0, dp, x = two_layer_setup("tanh")
    with raises(TypeError, match="apply"):
        tl.taylor.taylor_terms("net", p0, dp, x, order=1)


def _cond_activation(z):
    # lax.cond has no jet rule
    return jax.lax.cond(True, jnp.tanh, jnp.sin, z)


def test_jet_on_unsupported_function_names_jvp():
    # lax.cond has no jet rule: method='jet' refuses, naming the way out; 'auto' falls back to jvp
    net, p0, dp, x = two_layer_setup(_cond_activation)
    with raises(ValueError, match="method='jvp'"):
        tl.taylor.taylor_terms(net.apply, p0, dp, x, order=2, method="jet")
    terms = tl.taylor.taylor_terms(net.apply, p0, dp, x, order=2, method="jvp")
    assert all(bool(jnp.all(jnp.isfinite(t))) for t in terms)
    assert tl.taylor.resolve_method(net.apply, p0, x, 2) == "jvp"
    auto = tl.taylor.taylor_terms(net.apply, p0, dp, x, order=2)
    assert_terms_close(auto, terms, 0.0)


#: Every activation of tl.activations and the jax.nn activations that jet covers (custom_jvp functions such
#: as relu, softplus, relu6, mish and log_sigmoid are expanded through their primal bodies).
JAX_NN = {
    "nn.relu": jax.nn.relu,
    "nn.softplus": jax.nn.softplus,
    "nn.relu6": jax.nn.relu6,
    "nn.gelu_tanh": jax.nn.gelu,
    "nn.gelu_erf": lambda z: jax.nn.gelu(z, approximate=False),
    "nn.silu": jax.nn.silu,
    "nn.sigmoid": jax.nn.sigmoid,
    "nn.log_sigmoid": jax.nn.log_sigmoid,
    "nn.mish": jax.nn.mish,
    "nn.elu": jax.nn.elu,
    "nn.celu": jax.nn.celu,
    "nn.selu": jax.nn.selu,
    "nn.leaky_relu": jax.nn.leaky_relu,
    "nn.soft_sign": jax.nn.soft_sign,
    "nn.squareplus": jax.nn.squareplus,
    "nn.hard_tanh": jax.nn.hard_tanh,
    "nn.hard_sigmoid": jax.nn.hard_sigmoid,
    "nn.hard_silu": jax.nn.hard_silu,
    "jnp.tanh": jnp.tanh,
}
COVERED = {**{name: name for name in tl.activations.names()}, **JAX_NN}


@functools.cache
def _covered_mlp_setup(name, x64):
    net = tl.nets.mlp((7, 5), activation=COVERED[name])
    p0 = net.init(jax.random.key(3), 3)
    dp = random_like(4, p0, scale=0.3)
    # Gaussian inputs: pre-activations avoid the kinks of the piecewise activations almost surely
    x = jnp.asarray(np.random.default_rng(5).standard_normal((6, 3)))
    return net, p0, dp, x


@pytest.mark.x64
@pytest.mark.parametrize("name", sorted(COVERED))
def test_jet_covers_activation_to_float64_precision(x64, name):
    net, p0, dp, x = _covered_mlp_setup(name, jax.config.jax_enable_x64)
    # One order-4 expansion per method (terms 0..3 of it are the lower-order expansions:
    # test_low_orders_return_the_leading_terms); each order is compared on its own scale.
    t_jvp = tl.taylor.taylor_terms(net.apply, p0, dp, x, order=4, method="jvp")
    t_jet = tl.taylor.taylor_terms(net.apply, p0, dp, x, order=4, method="jet")
    assert t_jet[0].dtype == jnp.float64
    for order in (1, 2, 3, 4):
        assert_terms_close(t_jet[: order + 1], t_jvp[: order + 1], X64_RTOL)
        assert tl.taylor.resolve_method(net.apply, p0, x, order) == ("jvp" if order == 1 else "jet")


@pytest.mark.x64
def test_auto_is_one_of_the_two_implementations(x64):
    net, p0, dp, x = _covered_mlp_setup("nn.relu", jax.config.jax_enable_x64)
    for order in (1, 3):
        auto = tl.taylor.taylor_terms(net.apply, p0, dp, x, order=order)
        exact = tl.taylor.taylor_terms(net.apply, p0, dp, x, order=order, method="jvp")
        assert_terms_close(auto, exact, X64_RTOL)
    g = tl.taylor.taylor_expand(net.apply, p0, order=3)
    p = jax.tree_util.tree_map(jnp.add, p0, dp)
    grad_auto = jax.grad(lambda q: jnp.sum(g(q, x) ** 2))(p)
    g_jvp = tl.taylor.taylor_expand(net.apply, p0, order=3, method="jvp")
    grad_jvp = jax.grad(lambda q: jnp.sum(g_jvp(q, x) ** 2))(p)
    for a, b in zip(jax.tree_util.tree_leaves(grad_auto), jax.tree_util.tree_leaves(grad_jvp), strict=True):
        np.testing.assert_allclose(np.asarray(a), np.asarray(b), rtol=1e-10, atol=1e-12)


def test_exact_factorials():
    # terms[k] includes 1/k!: along dp of f(t) = t^3 (a one-parameter "network"), term 3 is exactly 1.
    def cube(params, x):
        return params["c"] ** 3 * jnp.ones(x.shape[0])

    p0, dp, x = {"c": jnp.array(0.0)}, {"c": jnp.array(1.0)}, jnp.ones((2, 1))
    for method in ("jvp", "jet"):
        terms = tl.taylor.taylor_terms(cube, p0, dp, x, order=4, method=method)
        np.testing.assert_allclose([float(t[0]) for t in terms], [0.0, 0.0, 0.0, 1.0, 0.0], atol=1e-6)
