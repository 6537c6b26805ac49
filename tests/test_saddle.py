"""Escape from a strict saddle: escape times against the linear law on a saddle with a known spectrum, the
Gaussian-start / perturbation equivalence, vmap over keys and scales, the fit, bad input."""

from __future__ import annotations

import math

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from helpers import raises

import taylorlib as tl

#: Hessian at 0: diag(2, 1, -1.5, -1); minimum value of the quartic confinement below 0.
SPECTRUM = jnp.array([2.0, 1.0, -1.5, -1.0])
ETA = 0.1


def saddle(w):
    return 0.5 * jnp.sum(SPECTRUM * w**2) + jnp.sum(w**2) ** 2


def escape_times(scales, seeds, perturb):
    keys = jax.random.split(jax.random.key(0), seeds)
    one = lambda s, k: tl.saddle.escape_time(
        saddle, jnp.zeros(4), k, learning_rate=ETA, scale=s, steps=300, level=-0.05, perturb=perturb
    )
    grid = jax.vmap(lambda s: jax.vmap(lambda k: one(s, k))(keys))
    return np.asarray(jax.jit(grid)(jnp.asarray(scales)))


def test_predicted_slope():
    assert tl.saddle.predicted_slope(0.1, -1.5) == pytest.approx(1 / math.log(1.15), rel=1e-12)


def test_escape_times_follow_the_linear_law():
    """Slope of escape steps against ln(1/delta) within 5% of 1/ln(1 + eta |lambda_min|) (the second negative
    eigenvalue, -1, grows 1.1x per step against 1.15x: its share fades as the start shrinks)."""
    scales = 10.0 ** -np.arange(4, 11)
    times = escape_times(scales, 6, perturb=False)
    assert np.all(times < 300)
    fit = tl.saddle.fit_escape_law(scales, times)
    assert abs(fit.slope / tl.saddle.predicted_slope(ETA, -1.5) - 1) < 0.05
    assert fit.slopes.shape == (6,)


def test_perturbation_escapes_one_step_after_the_matching_gaussian_start():
    """A perturbation uniform in the ball of radius delta sqrt(P) as the first update = a Gaussian start of
    entry size delta one step later: mean difference 1 step, within 3 standard errors over 40 paired runs."""
    scales = 10.0 ** -np.arange(5, 10)
    diff = escape_times(scales, 8, perturb=True) - escape_times(scales, 8, perturb=False)
    se = diff.std(ddof=1) / math.sqrt(diff.size)
    assert abs(diff.mean() - 1.0) < 3 * se + 0.3, (diff.mean(), se)


def test_exact_saddle_never_escapes_without_noise():
    """Started at the saddle itself plain GD never moves: the escape step is `steps` (never)."""
    t = tl.saddle.escape_time(
        saddle, jnp.zeros(4), jax.random.key(0), learning_rate=ETA, scale=1e-30, steps=50, level=-0.05
    )
    assert int(t) == 50


def test_fit_escape_law_on_synthetic_data():
    deltas = 10.0 ** -np.arange(3, 8)
    slopes = np.array([2.0, 3.0, 4.0])
    times = np.log(1 / deltas)[:, None] * slopes[None, :] + 5.0
    fit = tl.saddle.fit_escape_law(deltas, times)
    assert fit.slope == pytest.approx(3.0)
    assert fit.slope_spread == pytest.approx(1.0)
    assert fit.intercept == pytest.approx(5.0 + 3.0 * np.log(1 / deltas).mean())


def test_bad_input():
    with raises(ValueError, match="min_eigenvalue must be negative"):
        tl.saddle.predicted_slope(0.1, 0.5)
    with raises(ValueError, match="learning_rate must be > 0"):
        tl.saddle.predicted_slope(0.0, -1.0)
    with raises(ValueError, match="two distinct positive"):
        tl.saddle.fit_escape_law([1e-3, 1e-3], np.ones((2, 3)))
    with raises(ValueError, match=r"times must have shape \(k, num_seeds\) with k = 2"):
        tl.saddle.fit_escape_law([1e-3, 1e-4], np.ones(2))
    with raises(ValueError, match="non-finite"):
        tl.saddle.fit_escape_law([1e-3, 1e-4], np.array([[1.0], [np.nan]]))
    with raises(ValueError, match="scale must be > 0"):
        tl.saddle.escape_time(
            saddle, jnp.zeros(4), jax.random.key(0), learning_rate=0.1, scale=0.0, steps=5, level=0
        )
    with raises(TypeError, match="key must be a PRNG key"):
        tl.saddle.escape_time(saddle, jnp.zeros(4), 0, learning_rate=0.1, scale=1.0, steps=5, level=0)
    with raises(ValueError, match="steps must be >= 1"):
        tl.saddle.escape_time(
            saddle, jnp.zeros(4), jax.random.key(0), learning_rate=0.1, scale=1.0, steps=0, level=0
        )
