"""taylorlib.scaling: threshold crossings, power-law exponents and their bootstrap intervals."""

from __future__ import annotations

import jax
import numpy as np
import pytest

import taylorlib as tl


def test_sweep_keeps_the_old_names_as_aliases():
    assert tl.scaling.crossing_point is tl.scaling.crossing_point
    assert tl.scaling.fit_exponent is tl.scaling.fit_exponent
    assert tl.scaling.bootstrap_exponent is tl.scaling.bootstrap_exponent


# --- thresholds and exponents ---------------------------------------------------------------------


def test_crossing_point_exact_on_power_laws():
    ns = np.geomspace(8, 8000, 13)
    for c, a, tau in [(5.0, 1.0, 0.02), (30.0, 0.5, 0.7), (2.0, 2.0, 1e-4)]:
        n_star = float(tl.scaling.crossing_point(ns, c * ns**-a, tau))
        np.testing.assert_allclose(n_star, (c / tau) ** (1 / a), rtol=1e-12)


def test_crossing_point_batched_and_out_of_range():
    ns = np.array([1.0, 10.0, 100.0])
    errors = np.array([[1.0, 0.1, 0.01], [0.5, 0.4, 0.3], [0.01, 0.005, 0.001], [1.0, 0.01, 0.5]])
    out = tl.scaling.crossing_point(ns, errors, 0.1)
    assert out.shape == (4,)
    np.testing.assert_allclose(out[0], 10.0, rtol=1e-12)  # exactly at a grid point
    assert np.isnan(out[1])
    assert np.isnan(out[2])
    np.testing.assert_allclose(out[3], 10**0.5, rtol=1e-12)  # the *first* crossing: 1 -> 0.01 over a decade


def test_fit_exponent_recovers_exponents_with_per_d_grids():
    ds = np.array([10.0, 20.0, 40.0, 80.0])
    for alpha in (1.0, 2.0, 3.0):
        ns = np.outer(ds, np.geomspace(0.01, 100, 21)) ** alpha  # a grid per d, scaled like d^alpha
        errors = (ds[:, None] ** alpha / ns) ** 0.8
        fit = tl.scaling.fit_exponent(ns, errors, 0.3, ds)
        n_exact = 0.3 ** (-1 / 0.8) * ds**alpha
        np.testing.assert_allclose(fit.n_star, n_exact, rtol=1e-10)
        assert abs(fit.exponent - alpha) < 1e-10
        np.testing.assert_allclose(fit.prefactor, 0.3 ** (-1 / 0.8), rtol=1e-9)


def test_fit_exponent_skips_non_crossing_curves_and_needs_two():
    ns = np.geomspace(1, 1e4, 9)
    ds = np.array([2.0, 4.0, 8.0])
    errors = np.stack([ds[0] / ns, ds[1] / ns, np.ones_like(ns)])
    fit = tl.scaling.fit_exponent(ns, errors, 0.05, ds)
    assert np.isnan(fit.n_star[2])
    assert abs(fit.exponent - 1.0) < 1e-10
    with pytest.raises(ValueError, match="at least two curves"):
        tl.scaling.fit_exponent(ns, errors[1:], 0.05, ds[1:])
    single = tl.scaling.fit_exponent(ns, errors[0], 0.05)
    assert single.n_star.shape == (1,)
    assert np.isnan(single.exponent)


def test_threshold_bad_inputs():
    ns = np.array([1.0, 2.0, 3.0])
    with pytest.raises(ValueError, match="increasing"):
        tl.scaling.crossing_point(np.array([1.0, 3.0, 2.0]), np.ones(3), 0.5)
    with pytest.raises(ValueError, match="positive"):
        tl.scaling.crossing_point(ns, np.array([1.0, 0.0, 0.5]), 0.5)
    with pytest.raises(ValueError, match="threshold"):
        tl.scaling.crossing_point(ns, np.ones(3), 0.0)
    with pytest.raises(ValueError, match="ns must have"):
        tl.scaling.crossing_point(ns[:2], np.ones(3), 0.5)
    with pytest.raises(ValueError, match="k >= 2"):
        tl.scaling.crossing_point(ns[:1], np.ones(1), 0.5)
    with pytest.raises(ValueError, match="ds must have shape"):
        tl.scaling.fit_exponent(ns, np.ones((2, 3)), 0.5, np.array([1.0, 2.0, 3.0]))


# --- bootstrap intervals ----------------------------------------------------------------------------


def _bootstrap_loop(key, ns, errors, tau, ds, n_boot):
    """Second implementation: a Python loop of fit_exponent over the same resampled seed indices."""
    n_d, _, n_seeds = errors.shape
    idx = np.asarray(jax.random.randint(key, (n_boot, n_d, n_seeds), 0, n_seeds))
    out = []
    for b in range(n_boot):
        curves = np.stack([errors[i][:, idx[b, i]].mean(-1) for i in range(n_d)])
        try:
            out.append(tl.scaling.fit_exponent(ns, curves, tau, ds).exponent)
        except ValueError:
            out.append(np.nan)
    return np.array(out)


def test_bootstrap_exponent_matches_a_loop_of_fit_exponent():
    ds = np.array([8.0, 16.0, 32.0, 64.0])
    ns = np.outer(ds, np.geomspace(0.5, 200, 15))
    noise = np.exp(0.2 * np.asarray(jax.random.normal(jax.random.key(3), (4, 15, 5))))
    errors = ((ds[:, None] ** 1.5 / ns) ** 0.6)[..., None] * noise
    key = jax.random.key(7)
    res = tl.scaling.bootstrap_exponent(key, ns, errors, 0.4, ds, n_boot=200)
    ref = _bootstrap_loop(key, ns, errors, 0.4, ds, 200)
    np.testing.assert_allclose(res.samples, ref, rtol=1e-9, equal_nan=True)
    point = tl.scaling.fit_exponent(ns, errors.mean(-1), 0.4, ds)
    assert res.exponent == point.exponent
    np.testing.assert_array_equal(res.n_star, point.n_star)
    lo, hi = res.exponent_interval
    assert lo < point.exponent < hi
    assert hi - lo < 0.5
    np.testing.assert_allclose(res.exponent_sd, np.nanstd(ref, ddof=1), rtol=1e-9)
    assert res.n_star_interval.shape == (2, 4)
    assert np.all(res.n_star_interval[0] <= res.n_star_interval[1])
    assert np.all(res.crossed == 1.0)


def test_bootstrap_exponent_without_spread_collapses_and_flags_non_crossing():
    ds = np.array([10.0, 20.0, 40.0])
    ns = np.geomspace(10, 1e4, 12)
    errors = np.repeat(((ds[:, None] / ns) ** 0.5)[..., None], 3, axis=-1)  # identical seeds
    res = tl.scaling.bootstrap_exponent(jax.random.key(0), ns, errors, 0.3, ds, n_boot=50)
    np.testing.assert_allclose(res.exponent_interval, [1.0, 1.0], atol=1e-9)
    assert res.exponent_sd < 1e-9
    errors[2] = 1.0  # the d = 40 curve never crosses
    res = tl.scaling.bootstrap_exponent(jax.random.key(0), ns, errors, 0.3, ds, n_boot=50)
    assert res.crossed.tolist() == [1.0, 1.0, 0.0]
    assert np.all(np.isnan(res.n_star_interval[:, 2]))


def test_bootstrap_exponent_bad_inputs():
    ns, ds = np.geomspace(1, 100, 5), np.array([2.0, 4.0])
    e = np.ones((2, 5, 3)) * np.linspace(1, 0.01, 5)[:, None]
    key = jax.random.key(0)
    with pytest.raises(ValueError, match="n_seeds"):
        tl.scaling.bootstrap_exponent(key, ns, e[..., :1], 0.5, ds)
    with pytest.raises(ValueError, match="n_boot"):
        tl.scaling.bootstrap_exponent(key, ns, e, 0.5, ds, n_boot=3)
    with pytest.raises(ValueError, match="level"):
        tl.scaling.bootstrap_exponent(key, ns, e, 0.5, ds, level=1.5)
    with pytest.raises(TypeError, match="key"):
        tl.scaling.bootstrap_exponent(0, ns, e, 0.5, ds)
