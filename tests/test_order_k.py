"""Higher-order randomization and kernels (tl.higher_order: order_k, order_k_laws, coupling_error,
order_k_ntk): exact moment identities of the laws, brute-force enumeration of every random
configuration against the per-neuron formula, the Taylor orders of the expectation against nested-jvp
Taylor terms, Monte Carlo against exact, the k = 2 sign flip, and the empirical k-th order kernel against
explicit feature Grams and its infinite-width limit."""

from __future__ import annotations

import itertools
import math
from fractions import Fraction

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from helpers import assert_close_matrices, raises, rel_frobenius

import taylorlib as tl
from taylorlib import _coupling
from taylorlib import higher_order as ok

#: Float64 agreement of two exact computations of the same expectation (sums of <= 1296 terms).
X64_RTOL = 1e-10
#: Monte Carlo means within this many standard errors of the exact mean. Largest measured over 21 seed
#: offsets: 2.95 (Monte Carlo coupling vs exact), 2.70 (draw frequencies) (~1.5x).
MC_SIGMAS = 4.5
#: The sign-flip law test's band (8 rows and 28 correlations of 400 draws each). Largest measured over 21
#: seed offsets: 3.5 standard errors (1.5x).
SIGN_SIGMAS = 5.25
#: Empirical vs analytic k-th order kernel: relative Frobenius <= MC_CONST / sqrt(m) for independent
#: neurons (the kernel is a mean of m iid rank-one terms). Largest measured sqrt(m) * error over 21 seed
#: offsets: 1.45 (k = 2), 0.85 (k = 3) (~1.5x).
MC_CONST = 2.25
#: Fitted log-log slope of the coupling error vs the proposition's -1/k over m = 100..10^4, smooth_relu2,
#: coherent movement: measured -0.50 (k = 2) and -0.33 (k = 3); the tolerance absorbs pre-asymptotics.
SLOPE_TOL = 0.08

D = 3


def poly_act(t):
    """A degree-5 polynomial activation with every coefficient nonzero."""
    return 0.3 + t - 0.5 * t**2 + t**3 / 3 + 0.25 * t**4 - 0.2 * t**5


def poly_act_degree(deg):
    coeffs = (0.3, 1.0, -0.5, 1 / 3, 0.25, -0.2, 0.1, 0.05)[: deg + 1]
    return lambda t: sum(c * t**j for j, c in enumerate(coeffs))


POLY = {deg: poly_act_degree(deg) for deg in range(2, 8)}


def paired_setup(m, activation, seed=0, d=D, symmetric=True):
    net = tl.nets.two_layer(m, activation=activation, symmetric=symmetric)
    p0 = net.init(jax.random.key(seed), d)
    W = 0.6 * jax.random.normal(jax.random.key(seed + 1), (m, d))  # both halves move
    x = tl.data.sphere(jax.random.key(seed + 2), 5, d)
    return net, p0, W, x


def configurations(m, k):
    """Every joint draw (z_r, zeta_r)_r with its probability: arrays (C, m), (C, m), (C,)."""
    laws = ok.order_k_laws(k)
    per_neuron = [
        (za, zb, pa * pb)
        for za, pa in zip(laws.nodes_a, laws.probs_a, strict=True)
        for zb, pb in zip(laws.nodes_b, laws.probs_b, strict=True)
    ]
    combos = list(itertools.product(per_neuron, repeat=m))
    z = np.array([[c[0] for c in combo] for combo in combos])
    zeta = np.array([[c[1] for c in combo] for combo in combos])
    p = np.array([math.prod(c[2] for c in combo) for combo in combos])
    return z, zeta, p


def randomized_rows(W, z, zeta):
    """Row r: z_r W_r + zeta_r W_{partner(r)}, the partner written out with explicit indices."""
    m = W.shape[0]
    partner = np.array([(r + m // 2) % m for r in range(m)])
    return z[:, None] * W + zeta[:, None] * W[partner]


def enumerate_network(net, p0, W, x, k):
    """Exact mean and variance of the full randomized network by brute force over all configurations."""
    z, zeta, p = configurations(W.shape[0], k)
    outs = np.stack(
        [
            np.asarray(net.apply({"W": p0["W"] + randomized_rows(W, zi, ci), "a": p0["a"]}, x))
            for zi, ci in zip(z, zeta, strict=True)
        ]
    )
    mean = p @ outs
    return mean, p @ (outs - mean) ** 2


# ----------------------------------------------------------------------------- the laws


def stencil_moment(k, j):
    """Exact moment j of the central k-th difference stencil with unit step (rational arithmetic)."""
    return sum((-1) ** (k - i) * math.comb(k, i) * (Fraction(2 * i - k, 2)) ** j for i in range(k + 1))


@pytest.mark.parametrize("k", range(1, 9))
def test_stencil_moments_vanish_below_k_and_at_k_plus_one(k):
    for j in range(k):
        assert stencil_moment(k, j) == 0
    assert stencil_moment(k, k) == math.factorial(k)
    assert stencil_moment(k, k + 1) == 0


@pytest.mark.parametrize("k", range(1, 9))
def test_laws_are_probability_laws_with_the_stencil_moments(k):
    laws = ok.order_k_laws(k)
    for nodes, probs in [(laws.nodes_a, laws.probs_a), (laws.nodes_b, laws.probs_b)]:
        assert np.all(probs > 0)
        assert abs(probs.sum() - 1) < 1e-15
        assert len(np.unique(nodes)) == len(nodes)
    h = laws.step
    for j in range(k + 3):
        diff = laws.probs_a @ laws.nodes_a**j - laws.probs_b @ laws.nodes_b**j
        expected = float(stencil_moment(k, j)) * h**j / 2 ** (k - 1)
        assert abs(diff - expected) <= 1e-12 * max(1.0, abs(expected))
    mu = [laws.probs_a @ laws.nodes_a**j - laws.probs_b @ laws.nodes_b**j for j in range(k + 2)]
    np.testing.assert_allclose(mu[1:k], 0.0, atol=1e-13)
    assert abs(mu[k] - 1.0) < 1e-13
    assert abs(mu[k + 1]) < 1e-12
    if k >= 2:  # both laws have mean zero (kills the cross terms of order k + 1)
        assert abs(laws.probs_a @ laws.nodes_a) < 1e-14
        assert abs(laws.probs_b @ laws.nodes_b) < 1e-14


def test_k2_laws_are_the_sign_flip():
    laws = ok.order_k_laws(2)
    assert laws.nodes_a.tolist() == [-1.0, 1.0]
    assert laws.probs_a.tolist() == [0.5, 0.5]
    assert laws.nodes_b.tolist() == [0.0]
    assert laws.probs_b.tolist() == [1.0]


def test_odd_order_laws_are_reflections():
    for k in (1, 3, 5, 7):
        laws = ok.order_k_laws(k)
        np.testing.assert_allclose(np.sort(-laws.nodes_a), laws.nodes_b, atol=1e-15)
        np.testing.assert_allclose(laws.probs_a[::-1], laws.probs_b)


# ----------------------------------------------------------------------------- draws


def test_order_k_two_is_a_sign_flip_of_every_row():
    W = jax.random.normal(jax.random.key(0), (7, 3))  # odd width is fine: no partner is needed
    Wk = ok.order_k(jax.random.key(1), W, 2)
    ratio = np.asarray(Wk / W)
    assert np.all(np.isin(np.round(ratio, 6), [-1.0, 1.0]))
    assert np.all(np.ptp(ratio, axis=1) < 1e-6)  # one sign per row


def test_order_k_two_equals_sign_flip():
    W = jax.random.normal(jax.random.key(0), (8, 3))
    key = jax.random.key(5)
    np.testing.assert_array_equal(ok.order_k(key, W, 2), tl.randomize.sign_flip(key, W))
    # Same law: the sign frequencies of each row over many keys are 1/2 within 5 standard errors.
    signs = np.stack(
        [np.sign(np.asarray(ok.order_k(jax.random.key(i), W, 2)[:, 0] / W[:, 0])) for i in range(400)]
    )
    # measured max over 3 seed offsets: 3.5 standard errors (1.5x that is ~5.3: SIGN_SIGMAS)
    assert np.all(np.abs(signs.mean(0)) < SIGN_SIGMAS / np.sqrt(400))
    corr = np.corrcoef(signs.T)[np.triu_indices(8, 1)]
    assert np.all(np.abs(corr) < SIGN_SIGMAS / np.sqrt(400))  # independent rows


@pytest.mark.parametrize("k", [1, 3, 4, 5])
def test_draws_follow_the_laws(k):
    m, d, draws = 6, 2, 4000
    W = jax.random.normal(jax.random.key(0), (m, d))
    Wp = np.asarray(W)[[(r + m // 2) % m for r in range(m)]]
    keys = jax.random.split(jax.random.key(1), draws)
    D = np.asarray(jax.vmap(lambda kk: ok.order_k(kk, W, k))(keys))  # (draws, m, d)
    # Recover (z_r, zeta_r) from each row: D_r = z_r W_r + zeta_r W_partner(r), a 2x2 solve per row.
    basis = np.stack([np.asarray(W), Wp], axis=2)  # (m, d, 2)
    coef = np.linalg.solve(basis[None], D[..., None])[..., 0]  # (draws, m, 2)
    laws = ok.order_k_laws(k)
    for col, nodes, probs in [(0, laws.nodes_a, laws.probs_a), (1, laws.nodes_b, laws.probs_b)]:
        c = coef[..., col]
        idx = np.argmin(np.abs(c[..., None] - nodes), axis=-1)
        assert np.max(np.abs(c - nodes[idx])) < 1e-4  # on the support
        freq = np.stack([(idx == i).mean() for i in range(len(nodes))])
        se = np.sqrt(probs * (1 - probs) / (draws * m)) + 1e-12
        assert np.all(np.abs(freq - probs) <= MC_SIGMAS * se + 1e-12)


# ----------------------------------------------------------------------------- exact expectations


@pytest.mark.x64
@pytest.mark.parametrize("k", [1, 2, 3, 4])
def test_enumeration_equals_the_per_neuron_formula(x64, k):
    m = 4 if k <= 3 else 2
    net, p0, W, x = paired_setup(m, "smooth_relu2")
    mean, var = enumerate_network(net, p0, W, x, k)
    act = tl.activations.get("smooth_relu2")
    dev, var_exact, _ = _coupling._exact(p0["W"], p0["a"], W, x, act.fn, tl.activations.derivative(act, k), k)
    f0 = np.asarray(net.apply(p0, x))
    np.testing.assert_allclose(f0 + np.asarray(dev), mean, rtol=X64_RTOL, atol=X64_RTOL)
    np.testing.assert_allclose(np.asarray(var_exact), var, rtol=1e-8, atol=X64_RTOL)


@pytest.mark.x64
def test_enumeration_k2_needs_no_pairing(x64):
    net, p0, W, x = paired_setup(5, "tanh", symmetric=False)  # odd width, random output signs
    mean, var = enumerate_network(net, p0, W, x, 2)
    act = tl.activations.get("tanh")
    dev, var_exact, _ = _coupling._exact(p0["W"], p0["a"], W, x, act.fn, tl.activations.derivative(act, 2), 2)
    np.testing.assert_allclose(np.asarray(net.apply(p0, x)) + np.asarray(dev), mean, rtol=X64_RTOL)
    np.testing.assert_allclose(np.asarray(var_exact), var, rtol=1e-8)


@pytest.mark.x64
@pytest.mark.parametrize("k", [1, 2, 3, 4, 5])
def test_polynomial_of_degree_k_plus_one_couples_exactly(x64, k):
    """sigma of degree k + 1: every Taylor order but 0 and k cancels, so E f_rand = f0 + f^(k) exactly."""
    act = POLY[k + 1]
    m = 4 if k <= 3 else 2
    net, p0, W, x = paired_setup(m, act)
    mean, _ = enumerate_network(net, p0, W, x, k)
    dp = {"W": W, "a": jnp.zeros_like(p0["a"])}
    terms = tl.taylor.taylor_terms(net.apply, p0, dp, x, order=k)
    np.testing.assert_allclose(mean, np.asarray(terms[0] + terms[k]), rtol=X64_RTOL, atol=X64_RTOL)


@pytest.mark.x64
@pytest.mark.parametrize("k", [1, 2, 3, 4])
def test_each_taylor_order_of_the_expectation(x64, k):
    """E of the order-j Taylor term along the random movement: 0 for j < k and j = k + 1, f^(k) at j = k."""
    m = 4 if k <= 2 else 2
    net, p0, W, x = paired_setup(m, "smooth_relu2")
    z, zeta, p = configurations(m, k)
    zero_a = jnp.zeros_like(p0["a"])
    expected = 0.0
    for zi, ci, pi in zip(z, zeta, p, strict=True):
        D = randomized_rows(W, zi, ci)
        terms = tl.taylor.taylor_terms(net.apply, p0, {"W": D, "a": zero_a}, x, order=k + 2)
        expected = expected + pi * np.stack([np.asarray(t) for t in terms])
    fk = np.asarray(tl.taylor.taylor_terms(net.apply, p0, {"W": W, "a": zero_a}, x, order=k)[k])
    scale = np.abs(fk).max()
    for j in [*range(1, k), k + 1]:
        np.testing.assert_allclose(expected[j], 0.0, atol=X64_RTOL * scale)
    np.testing.assert_allclose(expected[k], fk, rtol=X64_RTOL)
    assert np.abs(expected[k + 2]).max() > 1e-3 * scale  # the first surviving correction is really there


@pytest.mark.x64
def test_kth_term_matches_taylor_terms(x64):
    net, p0, W, x = paired_setup(8, "gelu")
    act = tl.activations.get("gelu")
    for k in (1, 2, 3, 4):
        _, _, fk = _coupling._exact(p0["W"], p0["a"], W, x, act.fn, tl.activations.derivative(act, k), k)
        ref = tl.taylor.taylor_terms(net.apply, p0, {"W": W, "a": jnp.zeros(8)}, x, order=k)[k]
        np.testing.assert_allclose(np.asarray(fk), np.asarray(ref), rtol=1e-9, atol=1e-12)


@pytest.mark.x64
def test_kth_term_matches_two_layer_terms(x64):
    net, p0, W, x = paired_setup(10, "smooth_relu2")
    act = tl.activations.get("smooth_relu2")
    closed = tl.quadratic.two_layer_terms(p0, W, x, activation="smooth_relu2", order=5)
    for k in range(1, 6):
        _, _, fk = _coupling._exact(p0["W"], p0["a"], W, x, act.fn, tl.activations.derivative(act, k), k)
        np.testing.assert_allclose(np.asarray(fk), np.asarray(closed[k]), rtol=X64_RTOL, atol=1e-14)


@pytest.mark.parametrize(
    ("old", "name"),
    [
        (tl.randomize, "order_k"),
        (tl.randomize, "order_k_laws"),
        (tl.randomize, "coupling_error"),
        (tl.randomize, "CouplingError"),
        (tl.quadratic, "order_k_ntk"),
    ],
)
def test_old_spellings_are_deprecated_aliases(old, name):
    with pytest.warns(
        DeprecationWarning,
        match=rf"tl\.{old.__name__.split('.')[-1]}\.{name} moved to "
        rf"tl\.higher_order\.{name}",
    ):
        obj = getattr(old, name)
    assert obj is getattr(tl.higher_order, name)
    assert name not in old.__all__
    assert name in tl.higher_order.__all__


@pytest.mark.parametrize("k", [2, 3, 4])
def test_monte_carlo_agrees_with_exact(k):
    m, d = 64, 5
    net = tl.nets.two_layer(m, activation="smooth_relu2")
    p0 = net.init(jax.random.key(0), d)
    W = 0.5 * jax.random.normal(jax.random.key(1), (m, d))
    x = tl.data.sphere(jax.random.key(2), 8, d)
    act = tl.activations.get("smooth_relu2")
    dev, var, _ = _coupling._exact(p0["W"], p0["a"], W, x, act.fn, tl.activations.derivative(act, k), k)
    draws = 3000
    mc_mean, mc_sd = _coupling._monte_carlo(p0["W"], p0["a"], W, x, jax.random.key(3), act.fn, k, draws)
    se = np.sqrt(np.asarray(var) / draws)
    assert np.all(np.abs(np.asarray(mc_mean - dev)) <= MC_SIGMAS * se)
    np.testing.assert_allclose(np.asarray(mc_sd) ** 2, np.asarray(var), rtol=0.15)  # 3000 draws: ~3% sd
    res = ok.coupling_error(p0, W, x, activation="smooth_relu2", k=k, key=jax.random.key(3), num_draws=draws)
    assert abs(res.error_mc - res.error) <= MC_SIGMAS * res.mc_stderr


def coherent_error(m, k, c=0.5, d=10):
    net = tl.nets.two_layer(m, activation="smooth_relu2")
    p0 = net.init(jax.random.key(0), d)
    v = jnp.eye(d)[0]
    W = (p0["a"] > 0)[:, None] * c * m ** (-1 / (2 * k)) * v[None, :]
    x = tl.data.sphere(jax.random.key(1), 100, d)
    return ok.coupling_error(p0, W, x, activation="smooth_relu2", k=k)


@pytest.mark.parametrize("k", [2, 3])
def test_coupling_error_falls_like_m_to_the_minus_one_over_k(k):
    ms = [100, 1000, 10000]
    errs = [coherent_error(m, k).error for m in ms]
    slope = tl.plotting.loglog_slope(ms, errs)
    assert abs(slope + 1 / k) < SLOPE_TOL, slope


def test_spread_is_the_exact_standard_deviation():
    res = coherent_error(200, 3)
    net = tl.nets.two_layer(200, activation="smooth_relu2")
    p0 = net.init(jax.random.key(0), 10)
    W = (p0["a"] > 0)[:, None] * 0.5 * 200 ** (-1 / 6) * jnp.eye(10)[0][None, :]
    x = tl.data.sphere(jax.random.key(1), 100, 10)
    _, sd = _coupling._monte_carlo(
        p0["W"], p0["a"], W, x, jax.random.key(7), tl.activations.smooth_relu2.fn, 3, 2000
    )
    rms_sd = float(jnp.sqrt(jnp.mean(sd**2)))
    assert abs(rms_sd / res.rms_fk - res.spread) < 0.05 * res.spread  # 2000 draws: sd estimate within ~2%


# ----------------------------------------------------------------------------- the k-th order kernel


def tensor_power(x, k):
    """Rows x^{⊗k} flattened, shape (n, d^k)."""
    out = x
    for _ in range(k - 1):
        out = jnp.einsum("ni,nj->nij", out, x).reshape(x.shape[0], -1)
    return out


@pytest.mark.x64
@pytest.mark.parametrize("k", [1, 2, 3])
def test_order_k_ntk_is_the_gram_of_explicit_features(x64, k):
    m, d = 5, 3
    p0 = tl.nets.two_layer(m, activation="softplus", symmetric=False).init(jax.random.key(0), d)
    x1 = tl.data.sphere(jax.random.key(1), 4, d)
    x2 = tl.data.sphere(jax.random.key(2), 6, d)
    dk = tl.activations.derivative("softplus", k)

    def features(x):  # phi_r(x) = sigma^(k)(w0_r.x) x^{⊗k} / (k! sqrt m), stacked over r
        s = dk(x @ p0["W"].T)  # (n, m)
        return (s[:, :, None] * tensor_power(x, k)[:, None, :]).reshape(x.shape[0], -1) / (
            math.factorial(k) * math.sqrt(m)
        )

    K = ok.order_k_ntk(p0, x1, x2, activation="softplus", k=k)
    assert_close_matrices(K, features(x1) @ features(x2).T, rtol=X64_RTOL)


@pytest.mark.x64
def test_order_k_ntk_one_is_the_W_block_of_the_ntk(x64):
    p0 = tl.nets.two_layer(12, activation="tanh", symmetric=False).init(jax.random.key(0), 4)
    x = tl.data.sphere(jax.random.key(1), 7, 4)
    K1 = ok.order_k_ntk(p0, x, activation="tanh", k=1)
    ref = tl.ntk.two_layer_ntk(p0, x, activation="tanh", trainable=("W",))
    assert_close_matrices(K1, ref, rtol=X64_RTOL)


@pytest.mark.x64
def test_order_k_ntk_two_is_the_quad_ntk(x64):
    p0 = tl.nets.two_layer(12, activation="softplus").init(jax.random.key(0), 4)
    x1, x2 = tl.data.sphere(jax.random.key(1), 7, 4), tl.data.sphere(jax.random.key(2), 3, 4)
    K2 = ok.order_k_ntk(p0, x1, x2, activation="softplus", k=2)
    assert_close_matrices(K2, tl.quadratic.quad_ntk(p0, x1, x2, activation="softplus"), rtol=X64_RTOL)


@pytest.mark.parametrize("k", [2, 3])
def test_order_k_ntk_converges_to_the_analytic_kernel(k):
    x = tl.data.sphere(jax.random.key(1), 20, 6)
    limit = tl.kernels.order_k_ntk(x, activation="smooth_relu2", k=k)
    errs = []
    for m in (256, 16384):
        p0 = tl.nets.two_layer(m, activation="smooth_relu2", symmetric=False).init(jax.random.key(m), 6)
        errs.append(rel_frobenius(ok.order_k_ntk(p0, x, activation="smooth_relu2", k=k), limit))
        assert errs[-1] <= MC_CONST / math.sqrt(m)
    assert 2.0 < errs[0] / errs[1] < 32.0  # ~ sqrt(64) = 8 for a 1/sqrt(m) law


# ----------------------------------------------------------------------------- bad input


def test_bad_order():
    W = jnp.ones((4, 2))
    with raises(ValueError, match="k must be >= 1"):
        ok.order_k(jax.random.key(0), W, 0)
    with raises(TypeError, match="k must be an int"):
        ok.order_k(jax.random.key(0), W, 2.0)
    with raises(TypeError, match="k must be an int"):
        ok.order_k_laws(True)


def test_odd_width_is_rejected_when_pairs_are_needed():
    with raises(ValueError, match="W has an odd number of rows"):
        ok.order_k(jax.random.key(0), jnp.ones((5, 2)), 3)
    net, p0, W, x = paired_setup(5, "softplus", symmetric=False)
    with raises(ValueError, match=r"params0\['W'\] has an odd number of rows"):
        ok.coupling_error(p0, W, x, activation="softplus", k=3)


def test_unpaired_params_are_rejected():
    net, p0, W, x = paired_setup(6, "softplus", symmetric=False)
    with raises(ValueError, match="params0 must be paired"):
        ok.coupling_error(p0, W, x, activation="softplus", k=4)


def test_relu_has_no_higher_order_coupling():
    net, p0, W, x = paired_setup(6, "relu")
    with raises(ValueError, match="activation .*relu.* vanishing derivative of order 2"):
        ok.coupling_error(p0, W, x, activation="relu", k=2)
    with raises(ValueError, match="activation .*relu.* vanishing derivative of order 3"):
        ok.order_k_ntk(p0, x, activation="relu", k=3)


def test_shapes_and_draw_arguments():
    net, p0, W, x = paired_setup(6, "softplus")
    with raises(ValueError, match="W must have the shape of params0"):
        ok.coupling_error(p0, W[:4], x, activation="softplus", k=3)
    with raises(ValueError, match="x has feature dimension"):
        ok.coupling_error(p0, W, x[:, :2], activation="softplus", k=3)
    with raises(ValueError, match="key is required"):
        ok.coupling_error(p0, W, x, activation="softplus", k=3, num_draws=10)
    with raises(ValueError, match="num_draws must be >= 0"):
        ok.coupling_error(p0, W, x, activation="softplus", k=3, key=jax.random.key(0), num_draws=-1)
    with raises(ValueError, match="f\\^\\(k\\) is identically zero"):
        ok.coupling_error(p0, jnp.zeros_like(W), x, activation="softplus", k=3)
    with raises(ValueError, match="W must be a 2-D movement matrix"):
        ok.order_k(jax.random.key(0), jnp.ones(4), 3)
    with raises(ValueError, match="params0 must be"):
        ok.coupling_error({"W": p0["W"]}, W, x, activation="softplus", k=3)
