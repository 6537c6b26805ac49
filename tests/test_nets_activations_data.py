"""Networks (symmetric init, shapes, an independent numpy forward pass), activations (values against
numpy/scipy, derivatives against finite differences), data (sphere, harmonic dimensions, orthogonal
polynomials by exact quadrature, staircase energies) and the log-log slope helper."""

from __future__ import annotations

import itertools
import math

import jax
import jax.numpy as jnp
import numpy as np
import pytest
import scipy.special
from helpers import raises

import taylorlib as tl

#: Central differences of sigma^(k-1) with step 1e-4 in float64: truncation ~1e-8 |sigma^(k+2)| and
#: round-off ~1e-16 / 1e-4, so 1e-6 (relative to max(1, |value|)) has a 100x margin.
FD_STEP = 1e-4
FD_TOL = 1e-6
#: Monte Carlo checks are asserted within this many standard errors (estimated from the sample). Largest
#: measured over 21 seed offsets: 2.99 (the staircase energies; ~1.5x).
MC_SIGMAS = 4.5

# ----------------------------------------------------------------------------- nets


@pytest.mark.parametrize(
    ("width", "activation"),
    [(2, "relu"), (64, "softplus"), (64, "quadratic"), (1000, "tanh"), (1000, "relu")],
)
def test_symmetric_init_output_is_exactly_zero(width, activation):
    net = tl.nets.two_layer(width, activation, symmetric=True)
    params = net.init(jax.random.key(width), 7)
    half = width // 2
    np.testing.assert_array_equal(params["W"][:half], params["W"][half:])
    np.testing.assert_array_equal(params["a"], np.r_[np.ones(half), -np.ones(half)])
    x = tl.data.gaussian(jax.random.key(1), 33, 7)
    assert bool(jnp.all(net.apply(params, x) == 0.0))
    assert bool(jnp.all(jax.jit(net.apply)(params, x) == 0.0))


def test_non_symmetric_init_shapes_and_signs():
    net = tl.nets.two_layer(9, "erf", symmetric=False)
    params = net.init(jax.random.key(0), 4)
    assert params["W"].shape == (9, 4)
    assert params["a"].shape == (9,)
    assert set(np.asarray(params["a"]).tolist()) <= {-1.0, 1.0}
    assert len(set(np.asarray(params["W"][:, 0]).tolist())) == 9  # no duplicated neurons
    y = net.apply(params, jnp.ones((3, 4)))
    assert y.shape == (3,)
    assert bool(jnp.any(y != 0))


@pytest.mark.x64
def test_two_layer_apply_matches_numpy(x64):
    for width in (7, 8):  # odd and even widths take different summation paths
        net = tl.nets.two_layer(width, "tanh", symmetric=False)
        p = net.init(jax.random.key(0), 3)
        x = tl.data.gaussian(jax.random.key(1), 5, 3)
        want = np.tanh(np.asarray(x) @ np.asarray(p["W"]).T) @ np.asarray(p["a"]) / np.sqrt(width)
        np.testing.assert_allclose(net.apply(p, x), want, rtol=1e-13)


def test_preactivations_are_standard_gaussian_on_the_sphere():
    m, d, n = 4096, 16, 64
    params = tl.nets.two_layer(m, "relu", symmetric=False).init(jax.random.key(0), d)
    x = np.asarray(tl.data.sphere(jax.random.key(1), n, d), np.float64)
    u = np.asarray(tl.nets.preactivations(params["W"], jnp.asarray(x)), np.float64)
    assert u.shape == (n, m)
    # u_ir = w_r . x_i: the per-neuron mean square w^T C w (C = X^T X / n) has variance
    # 2 tr(C^2) / d^2 under w ~ N(0, I/d), so the average over m neurons has this standard error.
    C = x.T @ x / n
    se = math.sqrt(2 * np.trace(C @ C) / d**2 / m)
    assert abs(np.mean(u**2) - 1.0) <= MC_SIGMAS * se, (np.mean(u**2), se)
    # the grand mean is (1/m) sum_r w_r . xbar with variance |xbar|^2 / (d m)
    xbar = x.mean(0)
    assert abs(np.mean(u)) <= MC_SIGMAS * math.sqrt(xbar @ xbar / (d * m))


def test_bad_two_layer_arguments():
    with raises(ValueError, match="width must be even"):
        tl.nets.two_layer(5, "relu", symmetric=True)
    tl.nets.two_layer(5, "relu", symmetric=False)  # fine
    with raises(TypeError, match="width"):
        tl.nets.two_layer(4.0)
    with raises(ValueError, match="width"):
        tl.nets.two_layer(0)
    with raises(TypeError, match="symmetric"):
        tl.nets.two_layer(4, symmetric=1)
    with raises(ValueError, match="activation"):
        tl.nets.two_layer(4, "sigmoid")
    net = tl.nets.two_layer(4)
    params = net.init(jax.random.key(0), 3)
    with raises(ValueError, match="x must be 2-D"):
        net.apply(params, jnp.ones(3))
    with raises(ValueError, match="x has feature dimension 4"):
        net.apply(params, jnp.ones((2, 4)))
    with raises(TypeError, match="input_dim"):
        net.init(jax.random.key(0), 3.0)


@pytest.mark.x64
@pytest.mark.parametrize("bias", [True, False])
def test_mlp_shapes_and_apply_match_numpy(x64, bias):
    widths, d, n = (6, 5, 4), 3, 7
    net = tl.nets.mlp(widths, "softplus", bias=bias)
    shapes = jax.eval_shape(lambda k: net.init(k, d), jax.random.key(0))
    assert [layer["W"].shape for layer in shapes["hidden"]] == [(6, 3), (5, 6), (4, 5)]
    assert all(("b" in layer) == bias for layer in shapes["hidden"])
    assert shapes["a"].shape == (4,)
    # standard Gaussian parameters as in init, drawn with numpy (no sampler compile per leaf shape)
    rng = np.random.default_rng(0)
    p = jax.tree_util.tree_map(lambda v: jnp.asarray(rng.standard_normal(v.shape)), shapes)
    x = jnp.asarray(rng.standard_normal((n, d)))
    h = np.asarray(x)
    for layer in p["hidden"]:
        pre = h @ np.asarray(layer["W"]).T / np.sqrt(h.shape[1])
        if bias:
            pre = pre + np.asarray(layer["b"])
        h = np.logaddexp(0.0, pre)
    want = h @ np.asarray(p["a"]) / np.sqrt(h.shape[1])
    y = net.apply(p, x)
    assert y.shape == (n,)
    np.testing.assert_allclose(y, want, rtol=1e-12)


def test_bad_mlp_arguments():
    for bad in (3, (), [4, 0], "44"):
        with pytest.raises((TypeError, ValueError), match="widths"):
            tl.nets.mlp(bad)
    net = tl.nets.mlp((4,))
    p = net.init(jax.random.key(0), 2)
    assert p["hidden"][0]["W"].shape == (4, 2)
    assert p["hidden"][0]["b"].shape == (4,)
    assert p["a"].shape == (4,)
    assert net.apply(p, jnp.ones((3, 2))).shape == (3,)
    with raises(ValueError, match="x has feature dimension"):
        net.apply(p, jnp.ones((3, 5)))


# ----------------------------------------------------------------------------- activations

NUMPY_ACTIVATIONS = {
    "relu": lambda z: np.maximum(z, 0.0),
    "erf": scipy.special.erf,
    "tanh": np.tanh,
    "softplus": lambda z: np.logaddexp(0.0, z),
    "gelu": lambda z: 0.5 * z * (1 + scipy.special.erf(z / np.sqrt(2))),
    "quadratic": lambda z: z * z,
    "smooth_relu2": lambda z: 0.5 * np.logaddexp(0.0, z) ** 2,
}


def test_registry_is_what_numpy_covers():
    assert set(tl.activations.names()) == set(NUMPY_ACTIVATIONS)


@pytest.mark.x64
@pytest.mark.parametrize("name", tl.activations.names())
def test_activation_values_match_numpy(x64, name):
    z = np.r_[np.linspace(-6, 6, 41), -700.0, -40.0, 40.0, 700.0]
    act = tl.activations.get(name)
    assert act.name == name
    assert tl.activations.get(act) is act
    got = np.asarray(act(jnp.asarray(z)))
    assert got.shape == z.shape
    assert np.all(np.isfinite(got))
    np.testing.assert_allclose(got, NUMPY_ACTIVATIONS[name](z), rtol=1e-13, atol=1e-300)


@pytest.mark.parametrize("name", tl.activations.names())
def test_activation_and_derivatives_are_finite_in_float32(name):
    z = jnp.asarray([-100.0, -10.0, -1.0, 0.5, 10.0, 100.0])
    for k in range(3):
        v = tl.activations.derivative(name, k)(z)
        assert v.dtype == jnp.float32, (name, k, v.dtype)
        assert bool(jnp.all(jnp.isfinite(v))), (name, k, v)


@pytest.mark.x64
@pytest.mark.parametrize("name", tl.activations.names())
def test_derivatives_match_finite_differences(x64, name):
    # points away from relu's kink
    z = jnp.asarray(np.r_[np.linspace(-3.05, 3.05, 12), 8.3, -8.3])
    h = FD_STEP
    for k in (1, 2):
        lower = tl.activations.derivative(name, k - 1)
        fd = (lower(z + h) - lower(z - h)) / (2 * h)
        exact = tl.activations.derivative(name, k)(z)
        scale = np.maximum(1.0, np.abs(np.asarray(exact)))
        assert np.all(np.abs(np.asarray(exact - fd)) <= FD_TOL * scale), (name, k)


@pytest.mark.x64
def test_known_derivatives_in_closed_form(x64):
    z = jnp.linspace(-2.0, 2.0, 9)
    s = 1 / (1 + np.exp(-np.asarray(z)))
    np.testing.assert_allclose(tl.activations.derivative("softplus", 1)(z), s, rtol=1e-14)
    np.testing.assert_allclose(tl.activations.derivative("softplus", 2)(z), s * (1 - s), rtol=1e-13)
    np.testing.assert_allclose(
        tl.activations.derivative("erf", 1)(z), 2 / np.sqrt(np.pi) * np.exp(-(np.asarray(z) ** 2)), rtol=1e-14
    )
    np.testing.assert_array_equal(tl.activations.derivative("quadratic", 3)(z), 0.0)
    np.testing.assert_array_equal(tl.activations.derivative("relu", 2)(z[z != 0]), 0.0)


def test_max_order_metadata():
    assert tl.activations.relu.max_order == 1
    assert tl.activations.quadratic.max_order == 2
    for name in ("erf", "tanh", "softplus", "gelu", "smooth_relu2"):
        assert tl.activations.get(name).max_order == math.inf
    assert tl.activations.get(lambda z: z).max_order == math.inf


def test_get_errors_and_callables():
    with raises(ValueError, match="unknown activation 'sigmoid'"):
        tl.activations.get("sigmoid")
    for bad in (3, None, 1.5):
        with raises(TypeError, match="activation"):
            tl.activations.get(bad)
    user = tl.activations.get(jnp.sin)
    assert user.name is None
    assert "sin" in repr(user)
    np.testing.assert_allclose(user(jnp.asarray(0.5)), math.sin(0.5), rtol=1e-6)
    with raises(ValueError, match="k"):
        tl.activations.derivative("tanh", -1)
    with raises(TypeError, match="k"):
        tl.activations.derivative("tanh", 1.0)


# ----------------------------------------------------------------------------- data


@pytest.mark.x64
def test_sphere_norms_and_shape(x64):
    for n, d in ((5, 1), (7, 50)):
        x = tl.data.sphere(jax.random.key(d), n, d)
        assert x.shape == (n, d)
        np.testing.assert_allclose(jnp.linalg.norm(x, axis=1), math.sqrt(d), rtol=1e-14)
    assert tl.data.sphere(jax.random.key(0), 0, 3).shape == (0, 3)


def test_gaussian_moments():
    x = np.asarray(tl.data.gaussian(jax.random.key(0), 20000, 3), np.float64)
    assert x.shape == (20000, 3)
    assert np.all(np.abs(x.mean(0)) <= MC_SIGMAS / math.sqrt(20000))
    assert np.all(np.abs(x.var(0) - 1) <= MC_SIGMAS * math.sqrt(2 / 20000))


def test_data_bad_arguments():
    with raises(ValueError, match="d"):
        tl.data.sphere(jax.random.key(0), 3, 0)
    with raises(TypeError, match="n"):
        tl.data.gaussian(jax.random.key(0), 3.0, 2)
    with raises(ValueError, match="d"):
        tl.data.harmonic_dimension(1, 2)
    with raises(ValueError, match="input_law"):
        tl.targets.staircase(jax.random.key(0), 5, input_law="uniform")
    with raises(ValueError, match="d must be >="):
        tl.targets.staircase(jax.random.key(0), 2, degrees=(1, 2, 3))
    with raises(ValueError, match="weights"):
        tl.targets.staircase(jax.random.key(0), 5, degrees=(1, 2), weights=(1.0,))


def _monomials(d, k):
    """Number of monomials of degree k in d variables, by enumeration."""
    if k < 0:
        return 0
    return sum(1 for _ in itertools.combinations_with_replacement(range(d), k))


@pytest.mark.parametrize("d", [2, 3, 4, 7])
def test_harmonic_dimension_formula_and_enumeration(d):
    for k in range(6):
        formula = math.comb(d + k - 1, k) - (math.comb(d + k - 3, k - 2) if k >= 2 else 0)
        # harmonics of degree k = homogeneous polynomials of degree k modulo |x|^2 * (degree k - 2)
        assert tl.data.harmonic_dimension(d, k) == formula == _monomials(d, k) - _monomials(d, k - 2), (d, k)
    assert tl.data.harmonic_dimension(3, 4) == 2 * 4 + 1  # S^2: 2k + 1


@pytest.mark.x64
@pytest.mark.parametrize("d", [3, 5, 10])
def test_gegenbauer_orthogonality_by_gauss_jacobi_quadrature(x64, d):
    # t = <beta, x>/sqrt(d) for x uniform on the sphere has density ∝ (1 - t^2)^((d-3)/2) on [-1, 1],
    # and E[Q_j(t) Q_k(t)] = delta_jk / B(d, k): exact with a Gauss–Jacobi rule of 40 nodes.
    alpha = (d - 3) / 2
    t, w = scipy.special.roots_jacobi(40, alpha, alpha)
    w = w / w.sum()
    K = 6
    Q = np.stack([np.asarray(tl.data.gegenbauer(jnp.asarray(t), k, d)) for k in range(K)])
    gram = (Q * w) @ Q.T
    want = np.diag([1 / tl.data.harmonic_dimension(d, k) for k in range(K)])
    np.testing.assert_allclose(gram, want, atol=1e-13)
    ones = [float(tl.data.gegenbauer(jnp.ones(()), k, d)) for k in range(K)]
    np.testing.assert_allclose(ones, 1.0, rtol=1e-14)  # normalization Q_k(1) = 1


@pytest.mark.x64
def test_gegenbauer_matches_scipy(x64):
    # Q_k^(d)(t) = C_k^(lambda)(t) / C_k^(lambda)(1) with lambda = (d - 2) / 2
    t = np.linspace(-1, 1, 11)
    for d in (3, 6):
        lam = (d - 2) / 2
        for k in range(5):
            want = scipy.special.eval_gegenbauer(k, lam, t) / scipy.special.eval_gegenbauer(k, lam, 1.0)
            np.testing.assert_allclose(tl.data.gegenbauer(jnp.asarray(t), k, d), want, rtol=1e-12, atol=1e-14)


def test_zonal_harmonics_are_orthonormal_on_the_sphere():
    n, d = 40000, 6
    x = tl.data.sphere(jax.random.key(0), n, d)
    beta = jnp.eye(d)[0]
    Y = np.stack([np.asarray(tl.data.zonal_harmonic(x, beta, k), np.float64) for k in range(4)])
    gram = Y @ Y.T / n
    se = np.sqrt(((Y[:, None, :] * Y[None, :, :]) ** 2).mean(-1) / n)  # standard errors of the means
    assert np.all(np.abs(gram - np.eye(4)) <= MC_SIGMAS * se), gram


@pytest.mark.x64
def test_hermite_orthonormality_by_gauss_hermite(x64):
    z, w = np.polynomial.hermite_e.hermegauss(30)
    w = w / w.sum()
    H = np.stack([np.asarray(tl.data.hermite(jnp.asarray(z), k)) for k in range(8)])
    np.testing.assert_allclose((H * w) @ H.T, np.eye(8), atol=1e-12)
    # and the explicit low-order polynomials
    np.testing.assert_allclose(H[2], (z**2 - 1) / math.sqrt(2), rtol=1e-13)
    np.testing.assert_allclose(H[3], (z**3 - 3 * z) / math.sqrt(6), rtol=1e-13, atol=1e-14)


@pytest.mark.parametrize("input_law", ["sphere", "gaussian"])
def test_staircase_has_unit_variance_and_energies_weights_squared(input_law):
    d, n = 10, 40000
    weights = (3.0, 2.0, 1.0)
    f = tl.targets.staircase(jax.random.key(0), d, degrees=(1, 2, 3), weights=weights, input_law=input_law)
    c = np.asarray(weights) / np.linalg.norm(weights)
    np.testing.assert_allclose(f.weights, c, rtol=1e-6)
    assert f.degree == 3
    assert f.input_law == input_law
    assert f.directions.shape == (3, d)
    np.testing.assert_allclose(f.directions @ f.directions.T, np.eye(3), atol=1e-5)
    sample = tl.data.sphere if input_law == "sphere" else tl.data.gaussian
    x = sample(jax.random.key(1), n, d)
    pieces = np.stack([np.asarray(comp(x), np.float64) for comp in f.components])  # unit variance each
    y = np.asarray(f(x), np.float64)
    np.testing.assert_allclose(y, c @ pieces, rtol=1e-4, atol=1e-5)

    def within(samples, expected):
        se = samples.std() / math.sqrt(samples.size)
        return abs(samples.mean() - expected) <= MC_SIGMAS * se

    assert within(y**2, 1.0), np.mean(y**2)
    for j in range(3):
        assert within((c[j] * pieces[j]) ** 2, c[j] ** 2), (j, np.mean((c[j] * pieces[j]) ** 2))
        for i in range(j):
            assert within(pieces[i] * pieces[j], 0.0), (i, j)


# ----------------------------------------------------------------------------- plotting


def test_loglog_slope_on_exact_power_laws():
    x = np.geomspace(1, 1e4, 9)
    for p in (-0.5, 1.0, 2.7):
        assert abs(tl.plotting.loglog_slope(x, 3.0 * x**p) - p) < 1e-12
    assert abs(tl.plotting.loglog_slope([1, 2], [5, 5])) < 1e-12


def test_loglog_slope_errors():
    with raises(ValueError, match="equal length"):
        tl.plotting.loglog_slope([1, 2, 3], [1, 2])
    with raises(ValueError, match="equal length"):
        tl.plotting.loglog_slope([1], [1])
    with raises(ValueError, match="positive"):
        tl.plotting.loglog_slope([1, 2, 3], [1, 0, 2])
    with raises(ValueError, match="positive"):
        tl.plotting.loglog_slope([-1, 2, 3], [1, 1, 2])
    with raises(ValueError, match="positive and finite"):
        tl.plotting.loglog_slope([1, 2, 3], [1, np.inf, 2])


def test_loglog_plot_labels_the_fitted_slope():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = tl.plotting.new_figure()
    x = np.array([1.0, 10.0, 100.0])
    slope = tl.plotting.loglog(ax, x, 2 * x**-0.5, "err")
    assert abs(slope + 0.5) < 1e-12
    assert ax.get_xscale() == ax.get_yscale() == "log"
    assert ax.get_legend_handles_labels()[1] == ["err (slope -0.50)"]
    assert tl.plotting.loglog(ax, x, x, "no fit", fit=False) is None
    plt.close(fig)


@pytest.mark.x64
def test_mlp_vector_output_matches_numpy(x64):
    net = tl.nets.mlp((5, 4), "tanh", out_dim=3)
    p = net.init(jax.random.key(1), 2)
    assert p["a"].shape == (4, 3)
    x = np.random.default_rng(1).standard_normal((6, 2))
    h = x
    for layer in p["hidden"]:
        h = np.tanh(h @ np.asarray(layer["W"]).T / np.sqrt(h.shape[1]) + np.asarray(layer["b"]))
    want = h @ np.asarray(p["a"]) / 2.0
    y = net.apply(p, jnp.asarray(x))
    assert y.shape == (6, 3)
    np.testing.assert_allclose(y, want, rtol=1e-12)
    # out_dim = 1 keeps the scalar network of the earlier chapters: (n,) output, a of shape (n_L,)
    assert tl.nets.mlp((4,), out_dim=1).apply(tl.nets.mlp((4,)).init(jax.random.key(0), 2), x).shape == (6,)


def _conv_same_numpy(h, W):
    """'SAME' stride-1 convolution by explicit patches (an independent implementation)."""
    n, H, Wd, _ = h.shape
    k = W.shape[-1]
    pad = k // 2
    hp = np.pad(h, ((0, 0), (pad, pad), (pad, pad), (0, 0)))
    out = np.zeros((n, H, Wd, W.shape[0]))
    for i in range(H):
        for j in range(Wd):
            patch = hp[:, i : i + k, j : j + k, :]  # (n, k, k, C)
            out[:, i, j, :] = np.einsum("nabc,ocab->no", patch, W)
    return out


@pytest.mark.x64
@pytest.mark.parametrize("out_dim", [1, 3])
def test_cnn_matches_numpy_convolution(x64, out_dim):
    net = tl.nets.cnn((3, 2), "tanh", out_dim=out_dim, kernel_size=3)
    p = net.init(jax.random.key(2), 2)
    assert [layer["W"].shape for layer in p["conv"]] == [(3, 2, 3, 3), (2, 3, 3, 3)]
    x = np.random.default_rng(2).standard_normal((4, 5, 6, 2))
    h = x
    for layer in p["conv"]:
        W = np.asarray(layer["W"])
        h = np.tanh(_conv_same_numpy(h, W) / np.sqrt(W[0].size) + np.asarray(layer["b"]))
    want = h.mean(axis=(1, 2)) @ np.asarray(p["a"]) / np.sqrt(2.0)
    y = net.apply(p, jnp.asarray(x))
    assert y.shape == ((4,) if out_dim == 1 else (4, out_dim))
    np.testing.assert_allclose(y, want, rtol=1e-11)


@pytest.mark.x64
@pytest.mark.parametrize("k", [1, 3, 5])
def test_conv2d_methods_agree_with_numpy(x64, k):
    x = np.random.default_rng(3).standard_normal((2, 5, 7, 3))
    W = np.random.default_rng(4).standard_normal((4, 3, k, k))
    want = _conv_same_numpy(x, W)
    for method in ("shifts", "xla", "auto"):
        np.testing.assert_allclose(tl.nets.conv2d(jnp.asarray(x), jnp.asarray(W), method), want, rtol=1e-11)


@pytest.mark.x64
def test_cnn_flatten_readout_matches_numpy(x64):
    net = tl.nets.cnn((3,), "tanh", out_dim=2, readout="flatten", bias=False)
    p = net.init(jax.random.key(5), (5, 6, 2))
    assert p["a"].shape == (5 * 6 * 3, 2)
    assert "b" not in p["conv"][0]
    x = np.random.default_rng(5).standard_normal((4, 5, 6, 2))
    W = np.asarray(p["conv"][0]["W"])
    h = np.tanh(_conv_same_numpy(x, W) / np.sqrt(W[0].size))
    want = h.reshape(4, -1) @ np.asarray(p["a"]) / np.sqrt(90.0)
    np.testing.assert_allclose(net.apply(p, jnp.asarray(x)), want, rtol=1e-11)
    with raises(ValueError, match=r"input_dim must be the image shape \(H, W, C\)"):
        net.init(jax.random.key(0), 2)
    with raises(ValueError, match=r"flatten readout needs 48 rows in params\[.a.\], which has 90"):
        net.apply(p, jnp.ones((1, 4, 4, 2)))
    with raises(ValueError, match="readout must be"):
        tl.nets.cnn((3,), readout="max")
    with raises(ValueError, match="method must be"):
        tl.nets.conv2d(jnp.ones((1, 3, 3, 1)), jnp.ones((1, 1, 3, 3)), "fft")
    with raises(ValueError, match="same C and odd k"):
        tl.nets.conv2d(jnp.ones((1, 3, 3, 2)), jnp.ones((1, 1, 3, 3)))


def test_bad_cnn_and_out_dim_arguments():
    with raises(ValueError, match="kernel_size must be odd"):
        tl.nets.cnn((2,), kernel_size=2)
    with raises(TypeError, match="channels"):
        tl.nets.cnn(4)
    with raises(ValueError, match="out_dim must be >= 1"):
        tl.nets.mlp((4,), out_dim=0)
    net = tl.nets.cnn((2,))
    p = net.init(jax.random.key(0), 3)
    with raises(ValueError, match=r"x must be a batch of images with shape \(n, H, W, 3\)"):
        net.apply(p, jnp.ones((2, 4, 4, 1)))
    with raises(ValueError, match=r"shape \(n, H, W, 3\)", checker_names="x"):
        net.apply(p, jnp.ones((4, 4, 3)))
    with raises(ValueError, match="x contains"):
        net.apply(p, jnp.full((1, 4, 4, 3), jnp.nan))


def test_apply_names_missing_parameters():
    x = jnp.ones((2, 3))
    with raises(ValueError, match=r"params is missing \['a'\].*'W': \(m, d\)"):
        tl.nets.two_layer(4).apply({"W": jnp.ones((4, 3))}, x)
    with raises(ValueError, match=r"params is missing \['hidden'\]"):
        tl.nets.mlp((4,)).apply({"W": jnp.ones((4, 3)), "a": jnp.ones(4)}, x)
    with raises(ValueError, match=r"params is missing \['conv'\]"):
        tl.nets.cnn((4,)).apply({"a": jnp.ones(4)}, jnp.ones((1, 4, 4, 3)))
    with raises(TypeError, match="params must be the dict returned by init"):
        tl.nets.two_layer(4).apply(jnp.ones((4, 3)), x)
