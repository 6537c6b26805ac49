"""``tl.nets.two_layer_inits``: independent symmetric initializations of several widths, drawn at once."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from helpers import raises, rel_frobenius

import taylorlib as tl

WIDTHS = (4, 16, 64)
NUM, D = 3, 5


@pytest.fixture(scope="module")
def inits():
    return tl.nets.two_layer_inits(jax.random.key(0), WIDTHS, D, num=NUM)


def test_shapes_and_symmetric_layout(inits):
    assert len(inits) == len(WIDTHS)
    for m, p in zip(WIDTHS, inits, strict=True):
        assert p["W"].shape == (NUM, m, D)
        assert p["a"].shape == (NUM, m)
        h = m // 2
        np.testing.assert_array_equal(p["W"][:, :h], p["W"][:, h:])  # pairs share w_0
        np.testing.assert_array_equal(p["a"], np.tile(np.r_[np.ones(h), -np.ones(h)], (NUM, 1)))
    m, p = WIDTHS[-1], inits[-1]
    f0 = jax.vmap(tl.nets.two_layer(m, "softplus").apply, (0, None))(p, jnp.ones((3, D)))
    assert float(jnp.abs(f0).max()) == 0.0


def test_blocks_are_disjoint_draws(inits):
    """No first-half row appears twice across widths and draws: the networks share no neuron."""
    rows = np.concatenate([np.asarray(p["W"][:, : p["W"].shape[1] // 2]).reshape(-1, D) for p in inits])
    assert len(np.unique(rows, axis=0)) == rows.shape[0] == NUM * sum(m // 2 for m in WIDTHS)


def test_law_of_the_rows_is_that_of_two_layer_init():
    """The pooled rows are N(0, I_d / d): mean and variance within 5 standard errors."""
    widths, num, d = (50, 200), 20, 8
    rows = np.concatenate(
        [
            np.asarray(p["W"][:, : p["W"].shape[1] // 2]).reshape(-1, d)
            for p in tl.nets.two_layer_inits(jax.random.key(2), widths, d, num=num)
        ]
    )
    count = rows.size  # 2,500 rows x 8 coordinates
    assert abs(rows.mean()) < 5 * np.sqrt(1 / d / count)
    # Var of the sample variance of N(0, s^2) is 2 s^4 / count.
    assert abs(rows.var() - 1 / d) < 5 * np.sqrt(2 / count) / d


def test_the_mean_empirical_ntk_over_draws_is_the_analytic_ntk():
    """The eNTK is an average over neurons, so over ``num`` independent draws its mean approaches the
    m -> infinity kernel like rms(single-draw error) / sqrt(num). Identical draws would give the
    single-draw error (sqrt(num) = 4 times larger); a wrong variance of the rows a biased mean."""
    m, num, d = 512, 16, 6
    x = tl.data.sphere(jax.random.key(3), 12, d)
    (p,) = tl.nets.two_layer_inits(jax.random.key(4), (m,), d, num=num)
    Ks = jax.vmap(lambda q: tl.ntk.two_layer_ntk(q, x, activation="relu"))(p)
    K_inf = tl.kernels.ntk(x, activation="relu")
    single = np.sqrt(np.mean([rel_frobenius(K, K_inf) ** 2 for K in Ks]))
    assert rel_frobenius(jnp.mean(Ks, axis=0), K_inf) < 2 * single / np.sqrt(num)


@pytest.mark.parametrize(
    ("kwargs", "err", "match"),
    [
        ({"widths": (4, 5)}, ValueError, r"widths must be even"),
        ({"widths": ()}, TypeError, r"widths must be a non-empty sequence"),
        ({"widths": 4}, TypeError, r"widths must be a non-empty sequence"),
        ({"widths": (0,)}, ValueError, r"widths\[0\] must be >= 2"),
        ({"num": 0}, ValueError, r"num must be >= 1"),
        ({"input_dim": 0}, ValueError, r"input_dim must be >= 1"),
    ],
)
def test_bad_input(kwargs, err, match):
    args = {"widths": (4,), "input_dim": 3, "num": 1, **kwargs}
    with raises(err, match=match):
        tl.nets.two_layer_inits(jax.random.key(0), **args)


def test_key_must_be_a_typed_key():
    with raises(TypeError, match="key"):
        tl.nets.two_layer_inits(0, (4,), 3)
