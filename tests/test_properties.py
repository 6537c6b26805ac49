"""Property tests (hypothesis): invariants that must hold for every small shape and seed drawn.

Shapes are drawn from tiny sets (so the jitted code compiles once per shape and is reused), seeds are
integers turned into ``jax.random.key(seed)`` or numpy generators, and no example database is written
(``database=None``). Tolerances come from ``tests/helpers.py`` or are named constants below.
"""

from __future__ import annotations

import functools
import itertools
import math
import pathlib
import tempfile

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from helpers import assert_close_matrices, np_sphere, random_like, rel_frobenius, rtol_for
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import taylorlib as tl


def fast(max_examples: int, **kw):
    """Hypothesis settings for these tests: few examples, no deadline (JIT compiles), no database file."""
    return settings(max_examples=max_examples, deadline=None, database=None, **kw)


seeds = st.integers(min_value=0, max_value=2**16)
ns = st.sampled_from((3, 5))
ds = st.sampled_from((2, 3))
widths = st.sampled_from((4, 6))
SMOOTH = ("tanh", "softplus", "erf")

#: float32 PSD margin for a Gram matrix: its entries carry round-off ~ eps32 * |K|, which moves the
#: eigenvalues by at most ||E||_2 <= n * eps32 * max|K| (~1e-6 * trace for n <= 6); 1e-5 leaves a margin.
PSD_RTOL = 1e-5
#: Lanczos Ritz values are Rayleigh quotients computed in float32: a violation of interlacing larger than
#: ~p * eps32 * ||H|| (p <= 16) would be an algorithmic error, not round-off.
RITZ_RTOL = 1e-4
#: krr with ridge = 0 on distinct sphere points in float64: cond(K) stays below ~1e6 at these sizes, so the
#: training residual is ~cond * eps64 ~ 1e-10; 1e-7 leaves a margin.
INTERP_RTOL = 1e-7


@functools.cache
def net(width: int, activation: str, symmetric: bool = False):
    """One Model per configuration: taylor_terms caches its compiled code per ``apply`` object."""
    return tl.nets.two_layer(width, activation, symmetric=symmetric)


def max_abs(terms) -> float:
    return max(float(jnp.max(jnp.abs(t))) for t in terms)


# 1 ------------------------------------------------------------------------------------------------------
@fast(6)
@given(seed=seeds, m=widths, method=st.sampled_from(("jvp", "jet")))
def test_taylor_terms_of_a_polynomial_model_terminate_exactly(seed, m, method):
    """Quadratic activation, first layer moving: f is quadratic in t, so terms of order >= 3 vanish and the
    terms up to order 2 sum to the moved network."""
    model = net(m, "quadratic")
    p0 = model.init(jax.random.key(seed), 3)
    dp = {"W": random_like(seed + 1, p0["W"]), "a": jnp.zeros(m)}
    x = np_sphere(seed + 2, 4, 3)
    terms = tl.taylor.taylor_terms(model.apply, p0, dp, x, order=4, method=method)
    scale = max_abs(terms)
    assert max_abs(terms[3:]) <= rtol_for(x) * scale
    moved = model.apply(jax.tree_util.tree_map(jnp.add, p0, dp), x)
    assert_close_matrices(sum(terms[:3]), moved)


# 2 ------------------------------------------------------------------------------------------------------
@fast(6)
@given(seed=seeds, d=ds, order=st.integers(0, 3), activation=st.sampled_from(SMOOTH))
def test_taylor_expand_at_params0_equals_apply(seed, d, order, activation):
    model = net(4, activation)
    p0 = model.init(jax.random.key(seed), d)
    x = np_sphere(seed + 1, 4, d)
    g = tl.taylor.taylor_expand(model.apply, p0, order=order)
    np.testing.assert_allclose(g(p0, x), model.apply(p0, x), rtol=rtol_for(x), atol=rtol_for(x))


# 3 ------------------------------------------------------------------------------------------------------
@fast(6)
@given(
    seed=seeds,
    c=st.floats(min_value=-2.0, max_value=2.0, allow_nan=False, width=32),
    method=st.sampled_from(("jvp", "jet")),
    activation=st.sampled_from(("tanh", "softplus")),
)
def test_scaling_dparams_by_c_scales_term_k_by_c_to_the_k(seed, c, method, activation):
    model = net(4, activation)
    p0 = model.init(jax.random.key(seed), 3)
    dp = random_like(seed + 1, p0, scale=0.5)
    x = np_sphere(seed + 2, 3, 3)
    base = tl.taylor.taylor_terms(model.apply, p0, dp, x, order=3, method=method)
    scaled_dp = jax.tree_util.tree_map(lambda v: jnp.asarray(c, v.dtype) * v, dp)
    scaled = tl.taylor.taylor_terms(model.apply, p0, scaled_dp, x, order=3, method=method)
    for k, (s, b) in enumerate(zip(scaled, base, strict=True)):
        expected = np.float64(c) ** k * np.asarray(b, np.float64)
        tol = rtol_for(x) * max(1.0, abs(c)) ** k * max(float(jnp.max(jnp.abs(b))), 1e-6)
        np.testing.assert_allclose(np.asarray(s, np.float64), expected, rtol=0, atol=tol)


# 4 ------------------------------------------------------------------------------------------------------
@fast(8)
@given(seed=seeds, n=st.sampled_from((3, 6)), activation=st.sampled_from(("relu", "tanh")))
def test_empirical_ntk_gram_is_symmetric_psd(seed, n, activation):
    model = net(6, activation)
    params = model.init(jax.random.key(seed), 3)
    x = np_sphere(seed + 1, n, 3)
    K = np.asarray(tl.ntk.empirical_ntk(model.apply, params, x), np.float64)
    np.testing.assert_allclose(K, K.T, rtol=rtol_for(x), atol=rtol_for(x) * np.abs(K).max())
    eig = np.linalg.eigvalsh((K + K.T) / 2)
    assert eig.min() >= -PSD_RTOL * np.trace(K), (eig.min(), np.trace(K))


# 5 ------------------------------------------------------------------------------------------------------
@fast(6)
@given(seed=seeds, m=widths, activation=st.sampled_from(("relu", "softplus")))
def test_entk_and_output_are_invariant_to_neuron_permutation(seed, m, activation):
    model = net(m, activation)
    params = model.init(jax.random.key(seed), 3)
    perm = np.random.default_rng(seed).permutation(m)
    permuted = {"W": params["W"][perm], "a": params["a"][perm]}
    x = np_sphere(seed + 1, 4, 3)
    assert_close_matrices(
        tl.ntk.empirical_ntk(model.apply, permuted, x), tl.ntk.empirical_ntk(model.apply, params, x)
    )
    assert_close_matrices(
        tl.ntk.two_layer_ntk(permuted, x, activation=activation),
        tl.ntk.two_layer_ntk(params, x, activation=activation),
    )
    np.testing.assert_allclose(
        model.apply(permuted, x), model.apply(params, x), rtol=rtol_for(x), atol=rtol_for(x)
    )


# 6 ------------------------------------------------------------------------------------------------------
@fast(3)
@given(seed=seeds, n=ns)
def test_analytic_kernels_are_invariant_to_a_common_rotation(seed, n):
    d = 3
    rng = np.random.default_rng(seed)
    q, r = np.linalg.qr(rng.standard_normal((d, d)))
    Q = jnp.asarray(q * np.sign(np.diag(r)), dtype=float)  # Haar orthogonal
    x = np_sphere(seed + 1, n, d) * jnp.asarray(rng.uniform(0.5, 1.5, (n, 1)), dtype=float)
    xr = x @ Q
    for fn in (
        lambda z: tl.kernels.ntk(z, activation="relu"),
        lambda z: tl.kernels.ntk(z, activation="erf"),
        lambda z: tl.kernels.nngp(z, activation="relu"),
        lambda z: tl.kernels.quad_ntk(z, activation="softplus"),  # Gauss-Hermite quadrature path
    ):
        assert_close_matrices(fn(xr), fn(x))


# 7 ------------------------------------------------------------------------------------------------------
@functools.cache
def signed_terms(m: int, activation: str):
    """``(p0, W, x, signs: (s, m)) -> (s, 4, n)`` Taylor terms along ``diag(signs) W``, compiled once."""
    model = net(m, activation, symmetric=True)

    def terms(p0, W, x, eps):
        dp = {"W": eps[:, None] * W, "a": jnp.zeros_like(p0["a"])}
        return jnp.stack(tl.taylor.taylor_terms(model.apply, p0, dp, x, order=3))

    return model, jax.jit(jax.vmap(terms, in_axes=(None, None, None, 0)))


@fast(4)
@given(seed=seeds, m=widths)
def test_odd_taylor_terms_average_to_zero_over_all_sign_patterns(seed, m):
    """Exact enumeration of the 2^m sign patterns Σ: E_Σ f^(k)_{ΣW} = 0 for odd k; even k unchanged."""
    model, terms = signed_terms(m, "tanh")
    p0 = model.init(jax.random.key(seed), 3)
    W = random_like(seed + 1, p0["W"], scale=0.5)
    x = np_sphere(seed + 2, 4, 3)
    signs = jnp.asarray(list(itertools.product((-1.0, 1.0), repeat=m)), dtype=W.dtype)  # (2^m, m)
    all_terms = terms(p0, W, x, signs)  # (2^m, 4, n)
    mean = jnp.mean(all_terms, axis=0)
    scale = float(jnp.max(jnp.abs(all_terms)))
    unsigned = all_terms[-1]  # the all-plus pattern
    assert float(jnp.max(jnp.abs(mean[1::2]))) <= rtol_for(x) * scale  # orders 1 and 3
    np.testing.assert_allclose(mean[0::2], unsigned[0::2], rtol=0, atol=rtol_for(x) * scale)


# 8 ------------------------------------------------------------------------------------------------------
@fast(10)
@given(seed=seeds, shape=st.sampled_from(((4, 3), (6, 2), (5,))))
def test_sign_flip_twice_with_the_same_key_is_the_identity(seed, shape):
    W = jnp.asarray(np.random.default_rng(seed).standard_normal(shape), dtype=float)
    key = jax.random.key(seed)
    once = tl.randomize.sign_flip(key, W)
    assert np.array_equal(np.abs(once), np.abs(W))  # each row keeps its magnitude...
    rows = np.asarray(once / W).reshape(shape[0], -1)
    assert np.all(rows == rows[:, :1])  # ...and gets one sign
    assert np.array_equal(tl.randomize.sign_flip(key, once), W)


# 9 ------------------------------------------------------------------------------------------------------
@pytest.mark.x64
# the x64 fixture only flips a global flag, so sharing it across examples is fine
@fast(6, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(seed=seeds, n=st.sampled_from((4, 8)), d=st.sampled_from((3, 5)))
def test_krr_interpolates_distinct_points_as_ridge_vanishes(x64, seed, n, d):
    x = np_sphere(seed, n, d)
    y = jnp.asarray(np.random.default_rng(seed + 1).standard_normal(n))
    K = tl.kernels.ntk(x, activation="relu")
    pred = tl.kernel_regression.krr(K, y, K, ridge=0.0)
    assert float(jnp.max(jnp.abs(pred - y))) <= INTERP_RTOL * float(jnp.max(jnp.abs(y)))
    residuals = [float(jnp.linalg.norm(tl.kernel_regression.krr(K, y, K, r) - y)) for r in (1e-1, 1e-3, 1e-5)]
    assert residuals[0] > residuals[1] > residuals[2]  # monotone in the ridge (spectral shrinkage)


# 10 -----------------------------------------------------------------------------------------------------
@fast(10)
@given(
    seed=seeds,
    c=st.floats(min_value=0.25, max_value=3.0, width=32),
    negative=st.booleans(),
    p=st.sampled_from((1.0, 2.0, 3.0, 4.0, math.inf)),
)
def test_regularizers_are_homogeneous(seed, c, negative, p):
    c = -c if negative else c
    W = jnp.asarray(np.random.default_rng(seed).standard_normal((4, 3)), dtype=float)
    cW = jnp.asarray(c, W.dtype) * W
    rtol = 10 * rtol_for(W)  # ~8 roundings compound in c^8 against the rescaled polynomial
    np.testing.assert_allclose(
        tl.regularizers.norm_2p(cW, p), abs(c) * tl.regularizers.norm_2p(W, p), rtol=rtol
    )
    np.testing.assert_allclose(
        tl.regularizers.bai_lee(cW, 0.5), c**8 * tl.regularizers.bai_lee(W, 0.5), rtol=rtol
    )
    np.testing.assert_allclose(
        tl.regularizers.frobenius2(cW, 0.5), c**2 * tl.regularizers.frobenius2(W, 0.5), rtol=rtol
    )


#: One fixed network loss (a module-level function, so lanczos compiles once per num_iter); the point
#: ``params`` varies with the seed. p = 3 * 4 + 4 = 16 parameters.
_LOSS_NET = tl.nets.two_layer(4, "tanh", symmetric=False)
_LOSS_X = np_sphere(123, 6, 3)
_LOSS_Y = jnp.sin(_LOSS_X[:, 0])


def _network_loss(params):
    return jnp.mean((_LOSS_NET.apply(params, _LOSS_X) - _LOSS_Y) ** 2)


_dense_hessian = jax.jit(lambda params: tl.landscape.hessian(_network_loss, params))


# 11 -----------------------------------------------------------------------------------------------------
@fast(4)
@given(seed=seeds, k=st.sampled_from((3, 8)))
def test_lanczos_ritz_values_interlace_the_dense_spectrum(seed, k):
    params = jax.tree_util.tree_map(lambda v: 2.0 * v, _LOSS_NET.init(jax.random.key(seed), 3))
    H = np.asarray(_dense_hessian(params), np.float64)
    lam = np.linalg.eigvalsh((H + H.T) / 2)  # ascending, p = 16
    p = lam.size
    ritz = np.asarray(tl.landscape.lanczos(_network_loss, params, jax.random.key(seed + 1), k).eigvals)
    tol = RITZ_RTOL * np.abs(lam).max()
    # Cauchy interlacing for the compression Q^T H Q: lam_j <= theta_j <= lam_{j + p - k}
    assert np.all(ritz >= lam[:k] - tol), (ritz, lam)
    assert np.all(ritz <= lam[p - k :] + tol), (ritz, lam)


# 12 -----------------------------------------------------------------------------------------------------
def _sweep_fn(key, n, d):
    x = jax.random.normal(key, (n, d))
    return {"mean_sq": jnp.mean(x**2), "max": jnp.max(x)}


@fast(3)
@given(seed=seeds, n_seeds=st.integers(1, 3))
def test_sweep_cache_round_trips_bitwise(seed, n_seeds):
    keys = jax.random.split(jax.random.key(seed), n_seeds)
    grid = {"n": [2, 4], "d": [3]}
    with tempfile.TemporaryDirectory() as tmp:
        path = pathlib.Path(tmp) / "sweep.npz"
        res = tl.sweep.run(_sweep_fn, grid, seeds=keys, cache=path, progress=False)
        back = tl.sweep.load(path)
        again = tl.sweep.run(_sweep_fn, grid, seeds=keys, cache=path, progress=False)  # served from cache
    assert sorted(back.values) == sorted(res.values) == ["max", "mean_sq"]
    for name in res.values:
        assert back.values[name].shape == (2, 1, n_seeds)
        assert np.array_equal(back.values[name], res.values[name])
        assert np.array_equal(again.values[name], res.values[name])
    assert {k: v.tolist() for k, v in back.axes.items()} == grid
    assert back.n_seeds == n_seeds


# 13 -----------------------------------------------------------------------------------------------------
@fast(3)
@given(seed=seeds)
def test_same_key_gives_bitwise_identical_results(seed):
    d = 3

    def draws(key):
        k_init, k_data, k_sign, k_order = jax.random.split(key, 4)
        params = net(6, "softplus", symmetric=True).init(k_init, d)
        mlp_params = tl.nets.mlp((4,), "tanh").init(k_init, d)
        return (
            params,
            mlp_params,
            tl.data.sphere(k_data, 5, d),
            tl.data.gaussian(k_data, 5, d),
            tl.randomize.sign_flip(k_sign, params["W"]),
            tl.higher_order.order_k(k_order, params["W"], 3),
        )

    a, b = draws(jax.random.key(seed)), draws(jax.random.key(seed))
    for u, v in zip(jax.tree_util.tree_leaves(a), jax.tree_util.tree_leaves(b), strict=True):
        assert np.array_equal(np.asarray(u), np.asarray(v))
    other = draws(jax.random.key(seed + 1))
    assert not np.array_equal(np.asarray(a[2]), np.asarray(other[2]))


# 14 -----------------------------------------------------------------------------------------------------
@fast(4)
@given(seed=seeds, activation=st.sampled_from(("tanh", "softplus")))
def test_jvp_and_jet_taylor_terms_agree(seed, activation):
    model = net(4, activation)
    p0 = model.init(jax.random.key(seed), 3)
    dp = random_like(seed + 1, p0, scale=0.5)
    x = np_sphere(seed + 2, 4, 3)
    by_jvp = tl.taylor.taylor_terms(model.apply, p0, dp, x, order=3, method="jvp")
    by_jet = tl.taylor.taylor_terms(model.apply, p0, dp, x, order=3, method="jet")
    scale = max_abs(by_jvp)
    for a, b in zip(by_jet, by_jvp, strict=True):
        np.testing.assert_allclose(a, b, rtol=0, atol=10 * rtol_for(x) * scale)


# 15 -----------------------------------------------------------------------------------------------------
@fast(8)
@given(seed=seeds, n=ns, d=ds, m=widths, activation=st.sampled_from(("relu", "tanh", "quadratic")))
def test_symmetric_initialization_outputs_exactly_zero(seed, n, d, m, activation):
    model = net(m, activation, symmetric=True)
    params = model.init(jax.random.key(seed), d)
    out = np.asarray(model.apply(params, np_sphere(seed + 1, n, d)))
    assert np.array_equal(out, np.zeros(n))


# 16 -----------------------------------------------------------------------------------------------------
@fast(4)
@given(seed=seeds, activation=st.sampled_from(("tanh", "softplus")))
def test_linearize_equals_first_order_taylor_expansion(seed, activation):
    model = net(4, activation)
    p0 = model.init(jax.random.key(seed), 3)
    p = jax.tree_util.tree_map(jnp.add, p0, random_like(seed + 1, p0, scale=0.3))
    x = np_sphere(seed + 2, 4, 3)
    lin = tl.taylor.linearize(model.apply, p0)(p, x)
    expand = tl.taylor.taylor_expand(model.apply, p0, order=1)(p, x)
    assert rel_frobenius(lin, expand) <= rtol_for(x)
