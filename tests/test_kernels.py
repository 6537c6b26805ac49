"""Infinite-width kernels: closed forms written out independently in numpy, the quadrature path
against the closed forms, Monte Carlo over random neurons, exact polynomial cases, PSD-ness."""

from __future__ import annotations

import math

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from helpers import assert_close_matrices, assert_symmetric_psd, clear_jit_caches, raises, rel_frobenius

import taylorlib as tl
from taylorlib import kernels as _kernels

#: Closed form vs an independent float64 numpy transcription of the same formula.
X64_RTOL = 1e-12
#: Quadrature (Gauss–Hermite, 128 nodes for these inputs with ||x||^2/d up to 4) vs the erf closed form
#: in float64: measured relative Frobenius errors 2e-9 (k = 0) and 3e-8 (k = 1).
ERF_QUAD_RTOL = 1e-6
#: ReLU is not smooth, so Gauss–Hermite converges only algebraically: measured relative Frobenius
#: errors on the same inputs are 1.8e-3 for E[relu relu] (a kink) and 1.8e-2 for E[step step] (a
#: jump). The tolerances are ~3x the measured values: they catch a wrong covariance or wrong weights,
#: not the intrinsic quadrature error.
RELU_QUAD_RTOL = {0: 5e-3, 1: 5e-2}
#: Monte Carlo over M random neurons: every entry within this many standard errors. Largest measured
#: over 21 seed offsets: 2.96 (~1.5x).
MC_SIGMAS = 4.5
#: Large-width two_layer_ntk vs the limit: relative Frobenius <= MC_CONST / sqrt(m) (see test_ntk). Largest
#: measured sqrt(m) * error over 21 seed offsets: 2.44 (~1.5x).
MC_CONST = 3.75
PSD_RTOL = 1e-6

D = 6


def inputs(n=10, seed=0, d=D, spread=(0.5, 2.0)):
    """Uniform directions with norms ||x||/sqrt(d) spread over ``spread``, plus a repeated row and a
    collinear row of a different norm (angle 0 between distinct points)."""
    g = np.random.default_rng(seed).standard_normal((n, d))
    x = jnp.asarray(
        g * np.sqrt(d) / np.linalg.norm(g, axis=1, keepdims=True) * np.linspace(*spread, n)[:, None]
    )
    return jnp.concatenate([x, x[:1], 0.7 * x[1:2]])


def numpy_relu_ntk(x1, x2, trainable=("W", "a")):
    """Cho & Saul arc-cosine kernels for w ~ N(0, I/d), transcribed directly."""
    x1, x2 = np.asarray(x1, np.float64), np.asarray(x2, np.float64)
    d = x1.shape[1]
    n1, n2 = np.linalg.norm(x1, axis=1), np.linalg.norm(x2, axis=1)
    dot = x1 @ x2.T
    cos = np.clip(dot / np.outer(n1, n2), -1.0, 1.0)
    t = np.arccos(cos)
    k0 = (np.sin(t) + (np.pi - t) * np.cos(t)) / (2 * np.pi) * np.outer(n1, n2) / d
    k1 = (np.pi - t) / (2 * np.pi)
    return ("W" in trainable) * dot * k1 + ("a" in trainable) * k0


def numpy_erf_dual(x1, x2, k):
    """Williams (1997) arcsine kernel and its derivative kernel, for w ~ N(0, I/d)."""
    x1, x2 = np.asarray(x1, np.float64), np.asarray(x2, np.float64)
    d = x1.shape[1]
    s1 = 1 + 2 * np.sum(x1**2, 1) / d
    s2 = 1 + 2 * np.sum(x2**2, 1) / d
    s12 = 2 * (x1 @ x2.T) / d
    if k == 0:
        return 2 / np.pi * np.arcsin(s12 / np.sqrt(np.outer(s1, s2)))
    return 4 / np.pi / np.sqrt(np.outer(s1, s2) - s12**2)


# ----------------------------------------------------------------------------- closed forms


def well_conditioned(x1, x2):
    """Pairs whose angle arccos determines to full precision (|cos| < 1 - 1e-6); arccos near 0 and pi
    loses half the digits, so the numpy transcription is only a reference away from (anti)collinear pairs."""
    x1, x2 = np.asarray(x1, np.float64), np.asarray(x2, np.float64)
    cos = (x1 @ x2.T) / np.outer(np.linalg.norm(x1, axis=1), np.linalg.norm(x2, axis=1))
    return np.abs(cos) < 1 - 1e-6


@pytest.mark.x64
@pytest.mark.parametrize("trainable", [("W",), ("a",), ("W", "a")], ids=lambda t: "".join(t))
def test_relu_ntk_equals_arc_cosine_closed_form(x64, trainable):
    x1 = inputs(seed=0)
    x2 = inputs(n=5, seed=1, spread=(0.3, 3.0))
    for a, b in ((x1, x2), (x1, None)):
        K = tl.kernels.ntk(a, b, activation="relu", trainable=trainable)
        b = a if b is None else b
        assert K.shape == (a.shape[0], b.shape[0])
        assert K.dtype == jnp.float64
        mask = well_conditioned(a, b)
        assert mask.mean() > 0.8
        ref = numpy_relu_ntk(a, b, trainable)
        assert_close_matrices(np.where(mask, K, 0.0), np.where(mask, ref, 0.0), rtol=X64_RTOL)


@pytest.mark.parametrize("dtype", ["float32", pytest.param("float64", marks=pytest.mark.x64)])
def test_relu_kernel_is_accurate_at_zero_angle(dtype, request):
    if dtype == "float64":
        request.getfixturevalue("x64")
    # theta = 0 for a row with itself, a duplicate and a positive multiple: k1 = 1/2 and
    # k0 = |x||x'| / (2d), so Theta = (x.x') / 2 + |x||x'| / (2 d) with x.x' = |x||x'|.
    # arccos(x.x' / |x||x'|) would be off by sqrt(eps): ~1e-4 relative in float32.
    x = inputs(n=40, d=30).astype(dtype)  # rows 40 and 41 duplicate / rescale rows 0 and 1
    K = tl.kernels.ntk(x, activation="relu")
    assert K.dtype == dtype
    K = np.asarray(K, np.float64)
    xs = np.asarray(x, np.float64)
    norms = np.linalg.norm(xs, axis=1)
    d = xs.shape[1]
    rtol = {"float32": 1e-6, "float64": 1e-13}[dtype]
    for i, j in [(i, i) for i in range(len(xs))] + [(0, 40), (40, 0), (1, 41)]:
        want = norms[i] * norms[j] * (0.5 + 0.5 / d)
        assert abs(K[i, j] - want) <= rtol * want, (i, j, K[i, j], want)


@pytest.mark.x64
def test_relu_nngp_and_erf_duals_equal_numpy(x64):
    x = inputs()
    mask = well_conditioned(x, x)
    K = tl.kernels.nngp(x, activation="relu")
    assert_close_matrices(
        np.where(mask, K, 0.0), np.where(mask, numpy_relu_ntk(x, x, ("a",)), 0.0), rtol=X64_RTOL
    )
    for k in (0, 1):
        assert_close_matrices(
            tl.kernels.dual(x, activation="erf", k=k), numpy_erf_dual(x, x, k), rtol=X64_RTOL
        )
    assert_close_matrices(tl.kernels.nngp(x, activation="erf"), numpy_erf_dual(x, x, 0), rtol=X64_RTOL)


@pytest.mark.x64
def test_relu_on_the_sphere_has_the_textbook_diagonal(x64):
    # ||x||^2 = d: E[relu(z)^2] = 1/2, E[step(z)^2] = 1/2, so Theta(x, x) = d/2 + 1/2
    x = inputs(n=5, spread=(1.0, 1.0))[:5]  # drop the rescaled extra row
    np.testing.assert_allclose(jnp.diag(tl.kernels.ntk(x, activation="relu")), D / 2 + 0.5, rtol=1e-13)


# ----------------------------------------------------------------------------- quadrature path


@pytest.mark.x64
@pytest.mark.parametrize("k", [0, 1])
def test_quadrature_matches_erf_closed_form(x64, k):
    # a user callable has no name, so dual() cannot dispatch to the closed form
    user_erf = tl.activations.get(lambda z: jax.scipy.special.erf(z))
    assert user_erf.name is None
    x = inputs()
    K_quad = tl.kernels.dual(x, activation=user_erf, k=k)
    assert_close_matrices(K_quad, tl.kernels.dual(x, activation="erf", k=k), rtol=ERF_QUAD_RTOL)
    assert_close_matrices(K_quad, numpy_erf_dual(x, x, k), rtol=ERF_QUAD_RTOL)


@pytest.mark.x64
@pytest.mark.parametrize("k", [0, 1])
def test_quadrature_matches_relu_closed_form(x64, k):
    user_relu = tl.activations.get(lambda z: jnp.maximum(z, 0.0))
    x = inputs()
    K_quad = tl.kernels.dual(x, activation=user_relu, k=k)
    err = rel_frobenius(K_quad, tl.kernels.dual(x, activation="relu", k=k))
    assert err <= RELU_QUAD_RTOL[k], f"k={k}: relative error {err:.2e}"


@pytest.mark.x64
def test_quadrature_ntk_matches_closed_form_ntk(x64):
    user_erf = tl.activations.get(lambda z: jax.scipy.special.erf(z))
    x1, x2 = inputs(), inputs(n=4, seed=3)
    for trainable in (("W",), ("a",), ("W", "a")):
        assert_close_matrices(
            tl.kernels.ntk(x1, x2, activation=user_erf, trainable=trainable),
            tl.kernels.ntk(x1, x2, activation="erf", trainable=trainable),
            rtol=ERF_QUAD_RTOL,
        )


def test_a_user_function_named_like_a_builtin_is_not_dispatched_by_name():
    def relu(z):  # a leaky ReLU that happens to be called "relu"
        return jnp.maximum(z, 0.1 * z)

    x = inputs()
    assert tl.activations.get(relu).name is None
    K_user = tl.kernels.nngp(x, activation=relu)
    assert rel_frobenius(K_user, tl.kernels.nngp(x, activation="relu")) > 1e-2


# ----------------------------------------------------------------------------- Monte Carlo


@pytest.mark.x64
@pytest.mark.parametrize("activation", ["softplus", "tanh"])  # tanh: the quadrature with extra nodes
def test_nngp_and_ntk_match_monte_carlo_over_neurons(x64, activation):
    # independent implementation: numpy neurons, numpy activations
    sigma = {"softplus": lambda u: np.logaddexp(0.0, u), "tanh": np.tanh}[activation]
    dsigma = {"softplus": lambda u: 1 / (1 + np.exp(-u)), "tanh": lambda u: 1 - np.tanh(u) ** 2}[activation]
    d2sigma = {
        "softplus": lambda u: np.exp(-np.logaddexp(0.0, u) - np.logaddexp(0.0, -u)),  # s (1 - s)
        "tanh": lambda u: -2 * np.tanh(u) * (1 - np.tanh(u) ** 2),
    }[activation]
    x = np.asarray(inputs(n=6, spread=(0.5, 1.5)))
    n, d = x.shape
    M = 2**15
    w = np.random.default_rng(0).standard_normal((M, d)) / np.sqrt(d)
    u = x @ w.T  # (n, M)
    for k, f, K in (
        (0, sigma, tl.kernels.nngp(x, activation=activation)),
        (1, dsigma, tl.kernels.dual(x, activation=activation, k=1)),
        (2, d2sigma, tl.kernels.dual(x, activation=activation, k=2)),
    ):
        prod = f(u)[:, None, :] * f(u)[None, :, :]  # (n, n, M)
        mean, se = prod.mean(-1), prod.std(-1) / np.sqrt(M)
        z = np.abs(np.asarray(K) - mean) / se
        assert z.max() <= MC_SIGMAS, f"k={k}: {z.max():.1f} standard errors"
    K_ntk = tl.kernels.ntk(x, activation=activation)
    mc_ntk = (x @ x.T) * (dsigma(u) @ dsigma(u).T) / M + sigma(u) @ sigma(u).T / M
    assert rel_frobenius(K_ntk, mc_ntk) <= MC_CONST / math.sqrt(M)


def test_large_width_two_layer_ntk_is_a_monte_carlo_estimate():
    m = 2**14
    net = tl.nets.two_layer(m, "softplus")
    params = net.init(jax.random.key(3), D)
    x = inputs(n=16)
    err = rel_frobenius(
        tl.ntk.two_layer_ntk(params, x, activation="softplus"), tl.kernels.ntk(x, activation="softplus")
    )
    assert err <= MC_CONST / math.sqrt(m), f"relative error {err:.3e}"


# ----------------------------------------------------------------------------- polynomial cases


@pytest.mark.x64
def test_quadratic_quad_ntk_is_squared_inner_product(x64):
    x1, x2 = inputs(), inputs(n=4, seed=2)
    K = tl.kernels.quad_ntk(x1, x2, activation="quadratic")
    np.testing.assert_allclose(K, np.asarray(x1 @ x2.T) ** 2, rtol=1e-14)


@pytest.mark.x64
def test_quadratic_duals_are_gaussian_moments(x64):
    # sigma = z^2: E[u^2 u'^2] = s1 s2 + 2 s12^2, E[2u 2u'] = 4 s12, E[2 * 2] = 4, higher: 0
    x = inputs()
    d = x.shape[1]
    s = np.sum(np.asarray(x) ** 2, 1) / d
    s12 = np.asarray(x @ x.T) / d
    expected = {0: np.outer(s, s) + 2 * s12**2, 1: 4 * s12, 2: np.full_like(s12, 4.0), 3: np.zeros_like(s12)}
    for k, want in expected.items():
        np.testing.assert_allclose(tl.kernels.dual(x, activation="quadratic", k=k), want, rtol=1e-13, atol=0)
        # the quadrature path agrees (Gauss–Hermite is exact for polynomials of degree <= 2q - 1)
        user = tl.activations.get(lambda z: z * z)
        np.testing.assert_allclose(tl.kernels.dual(x, activation=user, k=k), want, rtol=1e-10, atol=1e-10)


@pytest.mark.x64
@pytest.mark.parametrize("activation", ["erf", "softplus", "relu"])
def test_order_one_kernel_is_the_ntk_w_block(x64, activation):
    x = inputs()
    assert_close_matrices(
        tl.kernels.order_k_ntk(x, activation=activation, k=1),
        tl.kernels.ntk(x, activation=activation, trainable=("W",)),
        rtol=X64_RTOL,
    )


@pytest.mark.x64
def test_quad_ntk_is_order_two_kernel(x64):
    x = inputs()
    K2 = tl.kernels.order_k_ntk(x, activation="softplus", k=2)
    assert_close_matrices(tl.kernels.quad_ntk(x, activation="softplus"), K2, rtol=X64_RTOL)
    assert_close_matrices(
        K2, np.asarray(x @ x.T) ** 2 * tl.kernels.dual(x, activation="softplus", k=2) / 4, rtol=X64_RTOL
    )
    assert_symmetric_psd(K2, PSD_RTOL)


def test_order_k_raises_for_relu_beyond_first_order():
    x = inputs()
    with raises(ValueError, match="softplus"):
        tl.kernels.order_k_ntk(x, activation="relu", k=2)
    with raises(ValueError, match="softplus"):
        tl.kernels.quad_ntk(x, activation="relu")
    with raises(ValueError, match="k"):
        tl.kernels.order_k_ntk(x, activation="erf", k=0)
    with raises(ValueError, match="vanishing"):
        tl.kernels.order_k_ntk(x, activation="quadratic", k=3)


# ----------------------------------------------------------------------------- PSD, zero rows, bad input


@pytest.mark.parametrize("activation", ["relu", "erf", "gelu"])
def test_kernels_are_symmetric_psd(activation):
    x = inputs(n=14)
    assert_symmetric_psd(tl.kernels.ntk(x, activation=activation), PSD_RTOL)
    assert_symmetric_psd(tl.kernels.nngp(x, activation=activation), PSD_RTOL)


@pytest.mark.parametrize("activation", ["relu", "erf", "softplus"])
def test_zero_input_row_gives_no_nan(activation):
    x = inputs(n=5).at[2].set(0.0)
    for K in (
        tl.kernels.ntk(x, activation=activation),
        tl.kernels.nngp(x, activation=activation),
        tl.kernels.dual(x, activation=activation, k=1),
    ):
        assert bool(jnp.all(jnp.isfinite(K)))
    # for a zero input u = 0 a.s., so the NNGP row is sigma(0) E[sigma(u')], u' ~ N(0, ||x'||^2/d)
    sigma = {
        "relu": lambda u: np.maximum(u, 0.0),
        "erf": np.vectorize(math.erf),
        "softplus": lambda u: np.logaddexp(0.0, u),
    }
    z, w = np.polynomial.hermite_e.hermegauss(80)
    sd = np.linalg.norm(np.asarray(x, np.float64), axis=1) / np.sqrt(D)
    expected = sigma[activation](0.0) * (sigma[activation](sd[:, None] * z[None, :]) @ (w / w.sum()))
    np.testing.assert_allclose(tl.kernels.nngp(x, activation=activation)[2], expected, rtol=1e-5, atol=1e-6)


def test_bad_input():
    x = inputs()
    with raises(ValueError, match="x1 must be 2-D"):
        tl.kernels.ntk(x[0])
    with raises(ValueError, match="x1 and x2"):
        tl.kernels.nngp(x, jnp.ones((2, D + 1)))
    with raises(ValueError, match="trainable"):
        tl.kernels.ntk(x, trainable=("b",))
    with raises(ValueError, match="activation"):
        tl.kernels.ntk(x, activation="sigmoid")
    with raises(TypeError, match="k"):
        tl.kernels.dual(x, activation="erf", k=1.0)
    with raises(ValueError, match="x1 contains NaN"):
        tl.kernels.ntk(x.at[0, 0].set(jnp.nan))


# ----------------------------------------------------------------------------- eager = jit


#: Every public kernel on each of its paths: the relu fused pass, the relu angles, the closed forms, the
#: quadrature (through ntk, order_k_ntk and quad_ntk; tests/test_kernels_accuracy.py checks dual at two node
#: levels) and the zero-derivative shortcut.
EAGER_VS_JIT = {
    "ntk-relu": lambda a, b: tl.kernels.ntk(a, b, activation="relu"),
    "ntk-relu-W": lambda a, b: tl.kernels.ntk(a, b, activation="relu", trainable=("W",)),
    "nngp-relu": lambda a, b: tl.kernels.nngp(a, b, activation="relu"),
    "dual-relu-1": lambda a, b: tl.kernels.dual(a, b, activation="relu", k=1),
    "ntk-erf": lambda a, b: tl.kernels.ntk(a, b, activation="erf"),
    "ntk-tanh-a": lambda a, b: tl.kernels.ntk(a, b, activation="tanh", trainable=("a",)),
    "dual-quadratic-3": lambda a, b: tl.kernels.dual(a, b, activation="quadratic", k=3),
    "quad_ntk-softplus": lambda a, b: tl.kernels.quad_ntk(a, b, activation="softplus"),
    "order_k_ntk-erf-3": lambda a, b: tl.kernels.order_k_ntk(a, b, activation="erf", k=3),
}


@pytest.mark.parametrize("dtype", ["float32", pytest.param("float64", marks=pytest.mark.x64)])
@pytest.mark.parametrize("case", list(EAGER_VS_JIT))
def test_eager_and_jitted_kernels_are_identical(dtype, case, request):
    # every public kernel runs one jitted implementation, so eager and jitted calls agree bit for bit;
    # the inputs have a duplicate and a collinear row (the relu paths recompute their angles), and x2
    # shares two rows with x1 (the quadrature cases, whose jitted form compiles every node level, only
    # with x2 given)
    if dtype == "float64":
        request.getfixturevalue("x64")
    fn = EAGER_VS_JIT[case]
    x1 = inputs(n=8, d=5).astype(dtype)
    x2 = jnp.concatenate([inputs(n=3, seed=4, d=5), x1[3:5]]).astype(dtype)
    quadrature = case in ("ntk-tanh-a", "quad_ntk-softplus", "order_k_ntk-erf-3")
    for b in (x2,) if quadrature else (None, x2):
        eager = fn(x1, b)
        jitted = jax.jit(fn)(x1, b)
        assert eager.dtype == dtype
        assert bool(jnp.all(jnp.isfinite(eager)))
        assert bool(jnp.array_equal(eager, jitted)), (case, b is None)


def kahan_relu_ntk(x1, x2):
    """The relu NTK in float64 numpy from Kahan's angles 2 atan2(|u - u'|, |u + u'|) (exact near 0, pi)."""
    x1, x2 = np.asarray(x1, np.float64), np.asarray(x2, np.float64)
    d = x1.shape[1]
    n1, n2 = np.linalg.norm(x1, axis=1), np.linalg.norm(x2, axis=1)
    u1, u2 = x1 / n1[:, None], x2 / n2[:, None]
    t = 2 * np.arctan2(
        np.linalg.norm(u1[:, None] - u2[None], axis=-1), np.linalg.norm(u1[:, None] + u2[None], axis=-1)
    )
    k0 = (np.sin(t) + (np.pi - t) * np.cos(t)) / (2 * np.pi) * np.outer(n1, n2) / d
    return (x1 @ x2.T) * (np.pi - t) / (2 * np.pi) + k0


@pytest.mark.parametrize("n_close", ["few", "many"])
def test_relu_kernels_are_accurate_for_collinear_pairs_eagerly_and_under_jit(n_close):
    # "few": duplicates and rescaled rows in d = 30 (the close pairs are gathered); "many": d = 2, where
    # ~10% of the pairs are within 8 degrees of (anti)collinear (every pair is recomputed in row blocks)
    if n_close == "few":
        x = inputs(n=40, d=30)
    else:
        phi = np.random.default_rng(1).uniform(0, 2 * np.pi, 60)
        x = jnp.asarray(np.stack([np.cos(phi), np.sin(phi)], 1) * np.linspace(0.5, 2.0, 60)[:, None])
        x = jnp.concatenate([x, -x[:3], 2 * x[3:6]])
    ref = kahan_relu_ntk(x, x)
    for K in (tl.kernels.ntk(x, activation="relu"), jax.jit(tl.kernels.ntk)(x)):
        err = np.abs(np.asarray(K, np.float64) - ref) / np.abs(ref).max()
        assert err.max() <= 1e-6, err.max()
    for k in (0, 1):
        f = lambda v, k=k: tl.kernels.dual(v, activation="relu", k=k)  # noqa: E731
        assert bool(jnp.array_equal(f(x), jax.jit(f)(x)))


def test_validation_under_jit_checks_shapes_and_options():
    x = inputs()
    with raises(ValueError, match="x1 must be 2-D"):
        jax.jit(lambda v: tl.kernels.ntk(v[0]))(x)
    with raises(ValueError, match="trainable"):
        jax.jit(lambda v: tl.kernels.ntk(v, trainable=("b",)))(x)
    with raises(ValueError, match="vanishing"):
        jax.jit(lambda v: tl.kernels.quad_ntk(v, activation="relu"))(x)
    # values are not checked on tracers: a NaN input gives a NaN kernel under jit, an error eagerly
    assert bool(jnp.isnan(jax.jit(tl.kernels.ntk)(x.at[0, 0].set(jnp.nan))).any())


# ----------------------------------------------------------------------------- every branch is reached


class _Spy:
    """Records which branch of :func:`taylorlib.kernels.dual` / :func:`~taylorlib.kernels.ntk` ran (wraps the
    module-level helpers that the Python dispatch looks up at call time, outside any jit)."""

    def __init__(self, monkeypatch):
        self.closed, self.quadrature, self.fused, self.n_close = [], [], [], []
        for key, fn in list(_kernels._CLOSED_FORMS.items()):
            monkeypatch.setitem(
                _kernels._CLOSED_FORMS, key, self._wrap(fn, lambda *a, key=key: key, self.closed)
            )
        monkeypatch.setattr(
            _kernels, "_quadrature_dual", self._wrap(_kernels._quadrature_dual, None, self.quadrature, "q")
        )
        relu_ntk = _kernels._relu_ntk

        def fused(*args, **kwargs):
            out = relu_ntk(*args, **kwargs)
            self.fused.append(True)
            self.n_close.append(int(out[1]))
            return out

        monkeypatch.setattr(_kernels, "_relu_ntk", fused)
        clear_jit_caches(_kernels)  # the dispatch runs when jit traces: retrace so the spy sees it

    @staticmethod
    def _wrap(fn, label, log, kwarg=None):
        def wrapped(*args, **kwargs):
            log.append(kwargs[kwarg] if kwarg else label(*args))
            return fn(*args, **kwargs)

        return wrapped


def _scaled_sphere(s, n=5, d=D, seed=0):
    """n points with ||x||^2 / d = s (so the quadrature level is ceil(log2(s / 2)) for s > 2)."""
    return tl.data.sphere(jax.random.key(seed), n, d) * math.sqrt(s)


#: Node counts of the first three levels by the documented rule: 64 nodes, times sqrt(2) per doubling of
#: max ||x||^2 / d beyond 2, plus NODES_PER_ORDER = 16 per derivative order for tanh and user callables.
_LEVEL0, _LEVEL1, _LEVEL2 = 64, round(64 * math.sqrt(2)), 128
#: (id naming the branch, activation, k, ||x||^2/d, expected closed-form key or expected node count or "zero")
DUAL_BRANCHES = [
    ("relu-k0-closed", "relu", 0, 1.0, ("relu", 0)),
    ("relu-k1-closed", "relu", 1, 1.0, ("relu", 1)),
    ("relu-k2-vanishes", "relu", 2, 1.0, "zero"),
    ("erf-k0-closed", "erf", 0, 1.0, ("erf", 0)),
    ("erf-k1-closed", "erf", 1, 1.0, ("erf", 1)),
    ("erf-k2-quadrature", "erf", 2, 1.0, _LEVEL0),
    ("quadratic-k2-closed", "quadratic", 2, 1.0, ("quadratic", 2)),
    ("quadratic-k3-vanishes", "quadratic", 3, 1.0, "zero"),
    ("softplus-k0-quadrature-level0", "softplus", 0, 1.0, _LEVEL0),
    ("softplus-k1-quadrature-level1", "softplus", 1, 3.5, _LEVEL1),
    ("softplus-k1-quadrature-level2", "softplus", 1, 7.0, _LEVEL2),
    ("tanh-k0-quadrature", "tanh", 0, 1.0, _LEVEL0),
    ("tanh-k3-quadrature-extra-nodes", "tanh", 3, 1.0, _LEVEL0 + 3 * 16),
    ("gelu-k2-quadrature", "gelu", 2, 1.0, _LEVEL0),
    ("user-callable-k1-quadrature-extra-nodes", lambda z: jnp.maximum(z, 0.0), 1, 1.0, 80),
]


@pytest.mark.parametrize(
    ("activation", "k", "s", "branch"), [c[1:] for c in DUAL_BRANCHES], ids=[c[0] for c in DUAL_BRANCHES]
)
def test_each_named_dual_case_reaches_its_branch(monkeypatch, activation, k, s, branch):
    spy = _Spy(monkeypatch)
    x = _scaled_sphere(s)
    K = tl.kernels.dual(x, activation=activation, k=k)
    assert K.shape == (5, 5)
    if branch == "zero":
        assert (spy.closed, spy.quadrature) == ([], [])
        assert not np.any(np.asarray(K))
    elif isinstance(branch, tuple):
        assert (spy.closed, spy.quadrature) == ([branch], [])
    else:
        assert (spy.closed, spy.quadrature) == ([], [branch])
        assert np.all(np.isfinite(np.asarray(K)))
        assert np.any(np.asarray(K))


def test_the_node_table_matches_the_branch_table():
    """The node counts of the branch table (the documented rule) are the ones dual() uses."""
    assert _kernels._node_levels(0)[:3] == (_LEVEL0, _LEVEL1, _LEVEL2)
    assert _kernels._node_levels(3, "tanh")[0] == 64 + 3 * 16
    assert _kernels._node_levels(1, None)[0] == 64 + 16


@pytest.mark.parametrize(
    ("case", "fallback"),
    [("relu-distinct-rows-fused", False), ("relu-collinear-pair-falls-back", True)],
)
def test_relu_ntk_fused_path_and_its_collinear_fallback(case, fallback):
    # the fused pass and its on-device recomputation of (anti)collinear pairs run inside one jitted
    # program, so the branch is identified by its values: theta = 0 and pi exactly for collinear pairs
    x = _scaled_sphere(1.0)
    x2 = jnp.concatenate([x[:2] * 2.0, -x[2:3]]) if fallback else _scaled_sphere(1.0, n=3, seed=1)
    K = tl.kernels.ntk(x, x2, activation="relu")
    ref = numpy_relu_ntk(x, x2)
    np.testing.assert_allclose(np.asarray(K, np.float64), ref, rtol=2e-5, atol=2e-5 * np.abs(ref).max())
    if fallback:  # theta = 0 and pi exactly for the collinear pairs: the W block is (x.x') / 2 and 0
        xs, x2s = np.asarray(x, np.float64), np.asarray(x2, np.float64)
        np.testing.assert_allclose(float(K[0, 0]), xs[0] @ x2s[0] * (0.5 + 0.5 / D), rtol=1e-6)
        np.testing.assert_allclose(float(K[2, 2]), 0.0, atol=1e-6)


@pytest.mark.x64
def test_relu_float32_uses_the_polynomial_arccos_and_float64_the_exact_one(x64):
    """The float32 arccos is a polynomial with absolute error <= 2e-8 (not jnp.arccos: the bits differ);
    float64 uses jnp.arccos (agrees with numpy to round-off, which the polynomial could not)."""
    rho = np.linspace(-0.98, 0.98, 4001)
    got32 = np.asarray(_kernels._arccos(jnp.asarray(rho, jnp.float32)), np.float64)
    err32 = np.abs(got32 - np.arccos(rho.astype(np.float32).astype(np.float64))).max()
    assert err32 <= 2e-8 + 4e-7, err32
    assert not np.array_equal(got32, np.asarray(jnp.arccos(jnp.asarray(rho, jnp.float32)), np.float64))
    got64 = np.asarray(_kernels._arccos(jnp.asarray(rho, jnp.float64)))
    assert np.abs(got64 - np.arccos(rho)).max() <= 1e-15
