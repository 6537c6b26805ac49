"""Issue 16, "any network": the empirical NTK for image and pytree inputs and vector outputs (every method
agrees), the structured MLP NTK against autodiff, padded chunks and sharding over a device mesh."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from helpers import assert_close_matrices

import taylorlib as tl

#: Agreement of exact float64 implementations of the same kernel.
X64_RTOL = 1e-10
#: float32 agreement of two exact orders of summation of the same kernel (round-off of O(p) sums).
F32_RTOL = 2e-6


def gaussian(seed, *shape):
    return jnp.asarray(np.random.default_rng(seed).standard_normal(shape))


def all_methods(apply, params, *xs, chunk_size=3):
    """Every (method, chunking, trace) combination of empirical_ntk, as full (n1, n2, k, k) kernels or traced."""
    out = {}
    for method in ("jacobian", "ntvp", "auto"):
        for cs in (None, chunk_size):
            full = tl.ntk.empirical_ntk(apply, params, *xs, method=method, chunk_size=cs, trace_axes=())
            traced = tl.ntk.empirical_ntk(apply, params, *xs, method=method, chunk_size=cs)
            out[method, cs] = (full, traced)
    return out


# ----------------------------------------------------------------------------- any input, any output


@pytest.mark.x64
@pytest.mark.parametrize("same", [True, False], ids=["x2=None", "x1,x2"])
def test_cnn_vector_output_every_method_agrees(x64, same):
    net = tl.nets.cnn((3,), "tanh", out_dim=2)
    params = net.init(jax.random.key(0), 1)
    x1 = gaussian(1, 7, 5, 5, 1)
    xs = (x1,) if same else (x1, gaussian(2, 4, 5, 5, 1))
    n2 = xs[-1].shape[0]
    ref_full, ref_traced = all_methods(net.apply, params, *xs)["jacobian", None]
    assert ref_full.shape == (7, n2, 2, 2)
    assert ref_traced.shape == (7, n2)
    # the traced kernel is the mean of the diagonal output blocks
    assert_close_matrices(ref_traced, jnp.trace(ref_full, axis1=2, axis2=3) / 2, rtol=X64_RTOL)
    for (method, cs), (full, traced) in all_methods(net.apply, params, *xs).items():
        assert_close_matrices(full, ref_full, rtol=X64_RTOL), (method, cs)
        assert_close_matrices(traced, ref_traced, rtol=X64_RTOL), (method, cs)
    # an independent route: the reverse-mode Jacobian of the whole batch, flattened
    flat, unravel = jax.flatten_util.ravel_pytree(params)
    xall = jnp.concatenate(xs) if not same else x1
    J = np.asarray(jax.jacrev(lambda v: net.apply(unravel(v), xall))(flat))  # (n, 2, p)
    J2 = J[7:] if not same else J
    assert_close_matrices(ref_full, np.einsum("iap,jbp->ijab", J[:7], J2), rtol=X64_RTOL)
    if same:  # symmetric: K[i, j, a, b] = K[j, i, b, a]
        np.testing.assert_allclose(ref_full, np.transpose(ref_full, (1, 0, 3, 2)), rtol=1e-12, atol=1e-12)


@pytest.mark.x64
def test_scalar_output_is_one_output_and_pytree_inputs(x64):
    net = tl.nets.mlp((8,), "softplus")
    params = net.init(jax.random.key(0), 5)
    x = gaussian(3, 6, 5)
    K = tl.ntk.empirical_ntk(net.apply, params, x)
    assert tl.ntk.empirical_ntk(net.apply, params, x, trace_axes=()).shape == (6, 6, 1, 1)
    # the same network on a dict of two input blocks
    split = {"left": x[:, :2], "right": x[:, 2:]}

    def apply_tree(p, xt):
        return net.apply(p, jnp.concatenate([xt["left"], xt["right"]], axis=1))

    for method in ("jacobian", "ntvp"):
        assert_close_matrices(
            tl.ntk.empirical_ntk(apply_tree, params, split, method=method), K, rtol=X64_RTOL
        )
    v = gaussian(4, 6)
    assert_close_matrices(tl.ntk.ntk_vp(apply_tree, params, split)(v), K @ v, rtol=X64_RTOL)


def test_padded_last_chunk_keeps_float32_accuracy():
    # n = 9 with chunk_size = 4 leaves a one-row last chunk; padded, it is computed like the others
    net = tl.nets.mlp((64, 64), "tanh", out_dim=3)
    params = net.init(jax.random.key(0), 16)
    x = jax.random.normal(jax.random.key(1), (9, 16))
    whole = tl.ntk.empirical_ntk(net.apply, params, x, method="jacobian")
    chunked = tl.ntk.empirical_ntk(net.apply, params, x, method="jacobian", chunk_size=4)
    assert_close_matrices(chunked, whole, rtol=F32_RTOL)
    cross = tl.ntk.empirical_ntk(net.apply, params, x, x[:5], method="jacobian", chunk_size=4)
    assert_close_matrices(cross, whole[:, :5], rtol=F32_RTOL)


# ----------------------------------------------------------------------------- structured MLP NTK


@pytest.mark.x64
@pytest.mark.parametrize(
    ("activation", "out_dim", "bias"),
    [("relu", 1, True), ("tanh", 3, True), ("softplus", 3, False), ("relu", 3, False)],
)
def test_mlp_ntk_equals_empirical_ntk(x64, activation, out_dim, bias):
    net = tl.nets.mlp((8, 6, 5), activation, bias=bias, out_dim=out_dim)
    params = net.init(jax.random.key(out_dim), 4)
    x1, x2 = gaussian(1, 7, 4), gaussian(2, 5, 4)
    for xs in ((x1,), (x1, x2)):
        for ta in ((-1,), ()):
            K = tl.ntk.mlp_ntk(params, *xs, activation=activation, trace_axes=ta)
            K_ad = tl.ntk.empirical_ntk(net.apply, params, *xs, trace_axes=ta)
            assert K.shape == K_ad.shape
            assert_close_matrices(K, K_ad, rtol=X64_RTOL)


def test_mlp_ntk_bad_input():
    net = tl.nets.mlp((8,), "tanh", out_dim=2)
    params = net.init(jax.random.key(0), 4)
    with pytest.raises(ValueError, match=r"x1 has feature dimension 3 .*\(n, 4\)"):
        tl.ntk.mlp_ntk(params, jnp.ones((2, 3)), activation="tanh")
    with pytest.raises(TypeError, match="params must be a tl.nets.mlp dict"):
        tl.ntk.mlp_ntk({"W": jnp.ones((2, 2))}, jnp.ones((2, 2)), activation="tanh")
    with pytest.raises(ValueError, match=r"params\['a'\] must have shape \(8,\) or \(8, k\)"):
        tl.ntk.mlp_ntk({**params, "a": jnp.ones(3)}, jnp.ones((2, 4)), activation="tanh")
    with pytest.raises(ValueError, match="trace_axes"):
        tl.ntk.mlp_ntk(params, jnp.ones((2, 4)), activation="tanh", trace_axes=(2,))


# ----------------------------------------------------------------------------- sharding over devices

_SHARDED = textwrap.dedent(
    """
    import jax, jax.numpy as jnp, numpy as np
    jax.config.update("jax_enable_x64", True)
    import taylorlib as tl
    assert len(jax.devices()) == 4, jax.devices()
    net = tl.nets.mlp((8,), "tanh", out_dim=2)
    p = net.init(jax.random.key(0), 3)
    x = jnp.asarray(np.random.default_rng(0).standard_normal((10, 3)))
    ref = tl.ntk.mlp_ntk(p, x, activation="tanh", trace_axes=())
    for kw in ({}, {"chunk_size": 3}):
        K = tl.ntk.empirical_ntk(net.apply, p, x, method="jacobian", trace_axes=(), **kw)
        assert K.shape == ref.shape
        assert float(jnp.linalg.norm(K - ref) / jnp.linalg.norm(ref)) < 1e-10
    K12 = tl.ntk.empirical_ntk(net.apply, p, x, x[:7], method="jacobian", chunk_size=3)
    assert float(jnp.abs(K12 - tl.ntk.mlp_ntk(p, x, x[:7], activation="tanh")).max()) < 1e-10
    print("ok", len(K.sharding.device_set) if hasattr(K, "sharding") else 0)
    """
)


def test_empirical_ntk_sharded_over_four_host_devices():
    env = {**os.environ, "XLA_FLAGS": "--xla_force_host_platform_device_count=4", "JAX_PLATFORMS": "cpu"}
    out = subprocess.run(
        [sys.executable, "-c", _SHARDED], env=env, capture_output=True, text=True, timeout=300
    )
    assert out.returncode == 0, out.stderr[-3000:]
    assert out.stdout.startswith("ok")


@pytest.mark.x64
def test_taylor_terms_and_models_of_a_vector_output_cnn(x64):
    # the Taylor terms of a CNN with (n, 2) outputs: exact at order 2 for the expansion of a quadratic in t
    net = tl.nets.cnn((3,), "tanh", out_dim=2)
    p0 = net.init(jax.random.key(0), 1)
    x = gaussian(5, 4, 5, 5, 1)
    dp = jax.tree_util.tree_map(lambda v: 1e-3 * jnp.ones_like(v), p0)
    f0, f1, f2 = tl.taylor.taylor_terms(net.apply, p0, dp, x, order=2)
    assert f0.shape == f1.shape == f2.shape == (4, 2)
    p1 = jax.tree_util.tree_map(jnp.add, p0, dp)
    lin = tl.taylor.linearize(net.apply, p0)(p1, x)
    np.testing.assert_allclose(lin, f0 + f1, rtol=1e-10, atol=1e-14)
    fq = tl.quadratic.quadratic_model(net.apply, p0)(p1, x)
    np.testing.assert_allclose(fq, f2, rtol=1e-10, atol=1e-14)
    # the remainder of the second-order expansion is third order in the step
    rest = net.apply(p1, x) - (f0 + f1 + f2)
    assert float(jnp.abs(rest).max()) < 1e-6
