"""Empirical NTKs: Jacobian Gram vs NTK-vector products vs the two-layer closed form, chunking,
Monte Carlo convergence to the analytic kernel, PSD-ness, and bad input."""

from __future__ import annotations

import functools
import math

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from helpers import assert_close_matrices, assert_symmetric_psd, raises, rel_frobenius
from jax.flatten_util import ravel_pytree

import taylorlib as tl

#: Agreement of exact float64 implementations of the same kernel.
X64_RTOL = 1e-10
#: Monte Carlo constant: with the symmetric init the eNTK averages m/2 independent neurons, so its
#: relative Frobenius error is c * sqrt(2/m) with c the per-neuron coefficient of variation of the
#: kernel entries. Measured (5 seeds, d = 8, n = 20): error * sqrt(m) = 1.5-1.8 (relu), 0.8-1.1
#: (erf), 1.0-1.4 (softplus). Largest over 21 seed offsets: 2.18 (relu), 1.47 (erf), 1.68 (softplus) (~1.5x).
MC_CONST = 3.5
#: PSD check: eigenvalues may dip below zero only by round-off relative to the trace.
PSD_RTOL = 1e-6

ACTIVATIONS = ("relu", "erf", "softplus")
TRAINABLE = (("W",), ("a",), ("W", "a"))
D = 4


def setup(activation, width=16, n=7, symmetric=False, seed=0):
    """(net, params, x); cached so that tests share one ``apply`` and its compiled kernels."""
    return _setup(activation, width, n, symmetric, seed, jax.config.jax_enable_x64)


@functools.cache
def _setup(activation, width, n, symmetric, seed, x64):
    net = tl.nets.two_layer(width, activation, symmetric=symmetric)
    params = net.init(jax.random.key(seed), D)
    x = np_gaussian(seed + 100, n, D)
    return net, params, x


def np_gaussian(seed, *shape):
    """Standard Gaussian test data from numpy (jax.random compiles a sampler per shape)."""
    return jnp.asarray(np.random.default_rng(seed).standard_normal(shape))


def restricted_apply(net, params, trainable):
    """``(sub_params, x) -> y`` that differentiates only the ``trainable`` blocks."""
    fixed = {k: v for k, v in params.items() if k not in trainable}
    sub = {k: v for k, v in params.items() if k in trainable}
    return (lambda p, x: net.apply({**fixed, **p}, x)), sub


# ----------------------------------------------------------------------------- three implementations


@pytest.mark.x64
@pytest.mark.parametrize("trainable", TRAINABLE, ids=lambda t: "".join(t))
@pytest.mark.parametrize("activation", ACTIVATIONS)
def test_jacobian_ntvp_and_closed_form_agree(x64, activation, trainable):
    net, params, x = setup(activation)
    apply, sub = restricted_apply(net, params, trainable)
    K_jac = tl.ntk.empirical_ntk(apply, sub, x, method="jacobian")
    K_ntvp = tl.ntk.empirical_ntk(apply, sub, x, method="ntvp")
    K_closed = tl.ntk.two_layer_ntk(params, x, activation=activation, trainable=trainable)
    assert K_jac.shape == K_ntvp.shape == K_closed.shape == (7, 7)
    assert K_jac.dtype == jnp.float64
    assert_close_matrices(K_jac, K_closed, rtol=X64_RTOL)
    assert_close_matrices(K_ntvp, K_closed, rtol=X64_RTOL)


@pytest.mark.x64
def test_blocks_add_up_and_auto_matches(x64):
    net, params, x = setup("softplus", symmetric=True)
    K_w = tl.ntk.two_layer_ntk(params, x, activation="softplus", trainable=("W",))
    K_a = tl.ntk.two_layer_ntk(params, x, activation="softplus", trainable=("a",))
    K = tl.ntk.two_layer_ntk(params, x, activation="softplus")
    assert_close_matrices(K, K_w + K_a, rtol=X64_RTOL)
    assert_close_matrices(tl.ntk.empirical_ntk(net.apply, params, x), K, rtol=X64_RTOL)


@pytest.mark.x64
def test_mlp_jacobian_matches_ntvp(x64):
    net = tl.nets.mlp((8,), "tanh")
    params = net.init(jax.random.key(0), D)
    x1, x2 = np_gaussian(1, 5, D), np_gaussian(2, 3, D)
    K_jac = tl.ntk.empirical_ntk(net.apply, params, x1, x2, method="jacobian")
    K_ntvp = tl.ntk.empirical_ntk(net.apply, params, x1, x2, method="ntvp")
    assert K_jac.shape == (5, 3)
    assert_close_matrices(K_ntvp, K_jac, rtol=X64_RTOL)
    # an independent third route: the full reverse-mode Jacobian of the batched output, flattened
    flat, unravel = ravel_pytree(params)
    J = np.asarray(jax.jacrev(lambda v: net.apply(unravel(v), jnp.concatenate([x1, x2])))(flat))
    assert J.shape == (8, flat.size)
    assert_close_matrices(K_jac, J[:5] @ J[5:].T, rtol=X64_RTOL)


@pytest.mark.x64
def test_cross_kernel_between_different_inputs(x64):
    net, params, x1 = setup("erf")
    x2 = np_gaussian(5, 4, D)
    K12 = tl.ntk.empirical_ntk(net.apply, params, x1, x2, method="jacobian")
    assert K12.shape == (7, 4)
    assert_close_matrices(K12, tl.ntk.two_layer_ntk(params, x1, x2, activation="erf"), rtol=X64_RTOL)
    K21 = tl.ntk.empirical_ntk(net.apply, params, x2, x1, method="ntvp")
    assert_close_matrices(K21, K12.T, rtol=X64_RTOL)


# ----------------------------------------------------------------------------- chunking and products


@pytest.mark.x64
def test_chunked_jacobian_equals_unchunked(x64):
    net, params, x = setup("erf", n=10)
    x2 = np_gaussian(3, 6, D)
    for args in ((x,), (x, x2)):
        full = tl.ntk.empirical_ntk(net.apply, params, *args, method="jacobian")
        chunked = tl.ntk.empirical_ntk(net.apply, params, *args, method="jacobian", chunk_size=3)
        batched = tl.ntk.empirical_ntk(net.apply, params, *args, method="ntvp", chunk_size=3)
        assert chunked.shape == full.shape == (10, args[-1].shape[0])
        assert_close_matrices(chunked, full, rtol=X64_RTOL)
        assert_close_matrices(batched, full, rtol=X64_RTOL)


@pytest.mark.x64
def test_ntk_vp_equals_kernel_times_vector(x64):
    net, params, x1 = setup("softplus", n=6)
    x2 = np_gaussian(4, 4, D)
    v = np_gaussian(9, 4)
    K = tl.ntk.empirical_ntk(net.apply, params, x1, x2)
    assert_close_matrices(tl.ntk.ntk_vp(net.apply, params, x1, x2)(v), K @ v, rtol=X64_RTOL)
    u = np_gaussian(8, 6)
    K11 = tl.ntk.empirical_ntk(net.apply, params, x1)
    assert_close_matrices(tl.ntk.ntk_vp(net.apply, params, x1)(u), K11 @ u, rtol=X64_RTOL)
    with raises(ValueError, match="v must have shape"):
        tl.ntk.ntk_vp(net.apply, params, x1, x2)(u)


@pytest.mark.x64
def test_ntvp_with_float32_inputs_and_float64_params_is_not_a_dtype_error(x64):
    # the cotangent basis must take the output dtype (float64 here), not the input dtype
    net, params, x = setup("tanh")
    x32 = x.astype(jnp.float32)
    K = tl.ntk.empirical_ntk(net.apply, params, x32, method="ntvp")
    assert K.dtype == jnp.float64
    assert_close_matrices(K, tl.ntk.empirical_ntk(net.apply, params, x32, method="jacobian"), rtol=X64_RTOL)


# ----------------------------------------------------------------------------- Monte Carlo limit


@pytest.mark.parametrize("activation", ACTIVATIONS)
def test_empirical_converges_to_analytic_at_large_width(activation):
    m, d, n = 2**14, 8, 20
    net = tl.nets.two_layer(m, activation)
    params = net.init(jax.random.key(1), d)
    x = tl.data.sphere(jax.random.key(2), n, d)
    K_emp = tl.ntk.empirical_ntk(net.apply, params, x, method="jacobian")
    K_inf = tl.kernels.ntk(x, activation=activation)
    err = rel_frobenius(K_emp, K_inf)
    assert err <= MC_CONST / math.sqrt(m), (
        f"{activation}: relative error {err:.3e} (sqrt(m) * err = {err * math.sqrt(m):.2f})"
    )
    # and the error is not accidentally tiny: the eNTK at finite width differs from its limit
    assert err >= 0.05 / math.sqrt(m)


# ----------------------------------------------------------------------------- PSD


@pytest.mark.parametrize("activation", ["relu", "softplus"])
def test_kernels_are_symmetric_psd(activation):
    net, params, x = setup(activation, width=32, n=12, symmetric=True)
    x = jnp.concatenate([x, x[:2]])  # repeated rows make K singular, the hard case for PSD
    assert_symmetric_psd(
        tl.ntk.empirical_ntk(net.apply, params, x, method="jacobian"), PSD_RTOL, sym_rtol=1e-5
    )
    assert_symmetric_psd(tl.ntk.empirical_ntk(net.apply, params, x, method="ntvp"), PSD_RTOL, sym_rtol=1e-5)
    assert_symmetric_psd(tl.ntk.two_layer_ntk(params, x, activation=activation), PSD_RTOL, sym_rtol=1e-5)


# ----------------------------------------------------------------------------- bad input


def test_x_must_fit_the_network():
    # empirical_ntk and ntk_vp take inputs of any trailing shape (issue 16): a (d,) array is a batch of d
    # scalars, which the two-layer apply refuses; the message names x1, its shape, and apply's own reason
    net, params, x = setup("relu")
    with raises(ValueError, match=r"x1 of shape \(4,\).*x must be 2-D", checker_names="x"):
        tl.ntk.empirical_ntk(net.apply, params, x[0])
    with raises(ValueError, match=r"x1 and x2 must have the same feature dimension.*\(n2, 4\)"):
        tl.ntk.empirical_ntk(net.apply, params, x, x[None])
    with raises(ValueError, match="x1 must be 2-D"):
        tl.ntk.two_layer_ntk(params, x[0])
    with raises(ValueError, match=r"x1 of shape \(4,\).*x must be 2-D", checker_names="x"):
        tl.ntk.ntk_vp(net.apply, params, x[0])
    with raises(ValueError, match="x1 must have a leading batch axis"):
        tl.ntk.empirical_ntk(net.apply, params, x[0, 0])


def test_feature_dimension_must_match_params():
    net, params, x = setup("relu")
    bad = jnp.ones((3, D + 1))
    with raises(ValueError, match="x1 has feature dimension"):
        tl.ntk.two_layer_ntk(params, bad)
    with raises(ValueError, match="x2 has feature dimension"):
        tl.ntk.two_layer_ntk(params, x, jnp.ones((3, D + 1)))
    # a generic apply reports its own argument name
    for method in ("jacobian", "ntvp"):
        with raises(ValueError, match="x has feature dimension"):
            tl.ntk.empirical_ntk(net.apply, params, bad, method=method)


def test_x1_x2_dimension_mismatch():
    net, params, x = setup("relu")
    with raises(ValueError, match="x1 and x2"):
        tl.ntk.empirical_ntk(net.apply, params, x, jnp.ones((2, D + 1)))
    with raises(ValueError, match="x1 and x2"):
        tl.ntk.ntk_vp(net.apply, params, x, jnp.ones((2, D + 1)))


def test_unknown_method_and_bad_chunk_size():
    net, params, x = setup("relu")
    with raises(ValueError, match="method"):
        tl.ntk.empirical_ntk(net.apply, params, x, method="vmap")
    with raises(ValueError, match="chunk_size"):
        tl.ntk.empirical_ntk(net.apply, params, x, chunk_size=0)
    with raises(TypeError, match="chunk_size"):
        tl.ntk.empirical_ntk(net.apply, params, x, chunk_size=2.5)
    with raises(TypeError, match="apply"):
        tl.ntk.empirical_ntk(None, params, x)


def test_trainable_must_be_a_non_empty_subset():
    net, params, x = setup("relu")
    with raises(ValueError, match="trainable"):
        tl.ntk.two_layer_ntk(params, x, trainable=("b",))
    with raises(ValueError, match="trainable"):
        tl.ntk.two_layer_ntk(params, x, trainable=("W", "b"))
    with raises(ValueError, match="trainable"):
        tl.ntk.two_layer_ntk(params, x, trainable=())
    with raises(TypeError, match="trainable"):
        tl.ntk.two_layer_ntk(params, x, trainable="W")


def test_two_layer_ntk_wants_two_layer_params():
    _, params, x = setup("relu")
    with raises(TypeError, match="params"):
        tl.ntk.two_layer_ntk([params["W"], params["a"]], x)
    with raises(TypeError, match="params"):
        tl.ntk.two_layer_ntk({"W": params["W"]}, x)
    with raises(ValueError, match="params"):
        tl.ntk.two_layer_ntk({"W": params["W"], "a": params["a"][:-1]}, x)


def test_unknown_activation():
    _, params, x = setup("relu")
    with raises(ValueError, match="activation"):
        tl.ntk.two_layer_ntk(params, x, activation="sigmoid")
