"""Homogeneity of Taylor terms along a line: an identity, tested here rather than in chapter 1's Checks.

For the movement ``t W`` the chain rule gives ``f^(k)_{W_0, tW} = t^k f^(k)_{W_0, W}`` exactly. Chapter 1
plots it (section 3) as an illustration; this test pins it for the chapter's setting (an erf two-layer
network, orders 1-4, both the nested-``jvp`` and the ``jet`` implementations).
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from helpers import assert_close_matrices

import taylorlib as tl

#: Float64 round-off of a handful of jvp/jet passes on a width-32 network.
X64_RTOL = 1e-10
#: The ends and the middle of chapter 1's grid of step sizes.
T_GRID = np.geomspace(0.02, 0.32, 3)
ORDER = 4


def _setup(m: int = 32, d: int = 6, n: int = 12):
    k_p, k_dir, k_x = jax.random.split(jax.random.key(3), 3)
    net = tl.nets.two_layer(m, activation="erf")
    p0 = net.init(k_p, d)
    move = {"W": jax.random.normal(k_dir, (m, d)) / np.sqrt(d), "a": jnp.zeros(m)}
    return net, p0, move, tl.data.sphere(k_x, n, d)


@pytest.mark.x64
@pytest.mark.parametrize("method", ["jvp", "jet"])
def test_term_k_along_t_times_w_is_t_to_the_k_times_term_k(x64, method):
    net, p0, move, x = _setup()
    base = tl.taylor.taylor_terms(net.apply, p0, move, x, order=ORDER, method=method)
    for t in T_GRID:
        scaled = jax.tree_util.tree_map(lambda v, t=t: t * v, move)
        terms = tl.taylor.taylor_terms(net.apply, p0, scaled, x, order=ORDER, method=method)
        for k in range(1, ORDER + 1):
            assert_close_matrices(terms[k], t**k * base[k], rtol=X64_RTOL)


@pytest.mark.slow
def test_loglog_slopes_of_the_terms_are_the_orders_in_float32():
    """The chapter's figure: RMS of f^(k) along t W has log-log slope k (float32 round-off only)."""
    net, p0, move, x = _setup()
    rms = np.array(
        [
            [
                float(jnp.sqrt(jnp.mean(f**2)))
                for f in tl.taylor.taylor_terms(
                    net.apply, p0, jax.tree_util.tree_map(lambda v, t=t: t * v, move), x, order=ORDER
                )[1:]
            ]
            for t in T_GRID
        ]
    )
    slopes = [tl.plotting.loglog_slope(T_GRID, rms[:, k - 1]) for k in range(1, ORDER + 1)]
    np.testing.assert_allclose(slopes, np.arange(1, ORDER + 1), atol=1e-3)
