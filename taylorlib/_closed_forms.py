r"""Closed-form dual activations (relu, erf, quadratic) and the relu NTK's angle computations.

The implementation behind :mod:`taylorlib.kernels` for the activations whose dual
:math:`E[\sigma^{(j)}(u)\sigma^{(j)}(u')]` has a closed form; the quadrature for every other activation, the
dispatch and the public kernels stay in :mod:`taylorlib.kernels`.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any

import jax
import jax.numpy as jnp

#: Pairs with :math:`|\cos\theta|` above ``1 - _COLLINEAR`` get their angle recomputed without arccos.
_COLLINEAR = 1e-2
#: Elements of the ``(pairs, d)`` block of differences evaluated at once in :func:`_angles`.
_PAIR_BLOCK = 2**22
#: (Anti)collinear partners per row up to which :func:`_fix_close` gathers them instead of redoing all pairs.
_CLOSE_PER_ROW = 4
_TINY = 1e-30


def _covariances(x1, x2):
    d = x1.shape[1]
    s11 = jnp.sum(x1 * x1, axis=1) / d
    s22 = jnp.sum(x2 * x2, axis=1) / d
    s12 = x1 @ x2.T / d
    return s11, s22, s12


def _correlation(s11, s22, s12):
    denom = jnp.sqrt(jnp.maximum(s11[:, None] * s22[None, :], _TINY))
    return jnp.clip(s12 / denom, -1.0, 1.0)


def _unit_rows(x):
    norm = jnp.linalg.norm(x, axis=1, keepdims=True)
    return jnp.where(norm > 0, x / jnp.where(norm > 0, norm, 1.0), 0.0)


#: Abramowitz & Stegun 4.4.46: :math:`\arccos a = \sqrt{1-a}\,\sum_i c_i a^i` on :math:`[0, 1]`, with
#: absolute error at most 2e-8 (below float32 round-off).
_ACOS_COEFFS = (
    1.5707963050,
    -0.2145988016,
    0.0889789874,
    -0.0501743046,
    0.0308918810,
    -0.0170881256,
    0.0066700901,
    -0.0012624911,
)


def _arccos(rho):
    """arccos on [-1, 1]: in float32 by a polynomial (XLA:CPU's ``jnp.arccos`` is ~40x slower on large
    matrices), in float64 by ``jnp.arccos`` (the polynomial's 2e-8 would dominate the round-off)."""
    if rho.dtype != jnp.float32:
        return jnp.arccos(rho)
    a = jnp.abs(rho)
    poly = functools.reduce(lambda acc, c: acc * a + c, _ACOS_COEFFS[::-1])
    half = jnp.sqrt(jnp.maximum(1.0 - a, 0.0)) * poly
    return jnp.where(rho >= 0, half, jnp.pi - half)


def _close_pairs(rho, same):
    r"""The (anti)collinear pairs :math:`|\cos\theta| > 1 -` ``_COLLINEAR`` (a row and itself excluded)."""
    close = jnp.abs(rho) > 1.0 - _COLLINEAR
    return close & ~jnp.eye(rho.shape[0], dtype=bool) if same else close


def _unit_gram(x1, x2, same):
    """Unit rows, their Gram (unclipped and clipped to [-1, 1]), the angles by :func:`_arccos` and whether
    any pair is (anti)collinear (:func:`_close_pairs`)."""
    u1, u2 = _unit_rows(x1), _unit_rows(x2)
    gram = u1 @ u2.T
    rho = jnp.clip(gram, -1.0, 1.0)
    theta = _arccos(rho)
    if same:  # a row and itself: the angle is exactly 0 (unless the row is zero: pi/2)
        eye = jnp.eye(rho.shape[0], dtype=bool)
        nonzero = jnp.any(x1 != 0, axis=1)
        theta = jnp.where(eye, jnp.where(nonzero, 0.0, jnp.pi / 2)[:, None], theta)
    return u1, u2, gram, rho, theta, jnp.any(_close_pairs(gram, same))


def _kahan_angle(u1, u2):
    r"""Angle :math:`\theta` between unit vectors (last axis) by Kahan's
    :math:`2\,\mathrm{atan2}(|u - u'|, |u + u'|)`, with :math:`\cos\theta` and :math:`\sin\theta` from the
    half-angle formulas (:math:`\tan(\theta/2) = |u - u'|/|u + u'|`, no sin or cos to compile)."""
    minus = jnp.sqrt(jnp.sum((u1 - u2) ** 2, axis=-1))
    plus = jnp.sqrt(jnp.sum((u1 + u2) ** 2, axis=-1))
    total = jnp.maximum(minus * minus + plus * plus, _TINY)
    return 2.0 * jnp.arctan2(minus, plus), (plus - minus) * (plus + minus) / total, 2.0 * minus * plus / total


def _fix_close(K, gram, same, any_close, entry, d):
    r"""``K`` with its entries at the (anti)collinear pairs (:func:`_close_pairs` of the unit ``gram``;
    ``any_close``: whether there is one) replaced by ``entry(rows, cols)`` (index arrays that broadcast;
    ``d`` is the length of the vectors that ``entry`` gathers per pair), on the device.

    Nothing but a conditional is added when there is no such pair (the mask is recomputed inside it, so
    that ``K`` stays one fused pass). When no row has more than :data:`_CLOSE_PER_ROW` such pairs (duplicates,
    rescaled rows) they are gathered with a row-wise ``lax.top_k`` (on the CPU cheaper to compile and to
    run than ``jnp.nonzero``); otherwise (low-dimensional data, where many pairs are nearly collinear)
    every pair is recomputed, in row blocks of :data:`_PAIR_BLOCK` elements.
    """
    n1, n2 = K.shape
    c = min(n2, _CLOSE_PER_ROW)

    def fix(K):
        close = _close_pairs(gram, same)

        def gathered(K):
            hits, cols = jax.lax.top_k(close.astype(K.dtype), c)  # (n1, c): the close columns of each row
            values = entry(jnp.arange(n1)[:, None], cols)
            for j in range(c):  # c fused selects: cheaper to compile than a scatter
                at = (jnp.arange(n2)[None, :] == cols[:, j : j + 1]) & (hits[:, j : j + 1] > 0)
                K = jnp.where(at, values[:, j : j + 1], K)
            return K

        def dense(K):
            block = max(1, _PAIR_BLOCK // max(n2 * d, 1))
            cols = jnp.arange(n2)
            full = jax.lax.map(lambda i: entry(i[None], cols), jnp.arange(n1), batch_size=min(block, n1))
            return jnp.where(close, full, K)

        return jax.lax.cond(jnp.max(jnp.sum(close, axis=1)) > c, dense, gathered, K)

    return jax.lax.cond(any_close, fix, lambda K: K, K)


def _angles(x1, x2, same):
    r"""Angles between the rows of ``x1`` and ``x2``, accurate also near 0 and pi (traced, under ``jit``).

    ``arccos`` of the Gram loses half the digits for (anti)collinear pairs (arccos(1 - eps) ~ sqrt(2 eps),
    ~3e-4 in float32, which lowered the relu NTK diagonal by ~1e-4 relative, like a negative ridge).
    The diagonal of a symmetric kernel (``same``) is set to 0 exactly. Any other pair with
    :math:`|\cos\theta| > 1 -` ``_COLLINEAR`` (duplicates, near-duplicates) is recomputed with Kahan's
    :math:`\theta = 2\,\mathrm{atan2}(|\hat x - \hat x'|, |\hat x + \hat x'|)`, exact to the round-off
    of the unit vectors (:func:`_fix_close`, which costs nothing when there is no such pair). A zero row
    has angle pi/2 with every row.
    """
    u1, u2, gram, _, theta, any_close = _unit_gram(x1, x2, same=same)
    return _fix_close(theta, gram, same, any_close, lambda r, c: _kahan_angle(u1[r], u2[c])[0], x1.shape[1])


def _relu_dual(j, s11, s22, s12, x1, x2, same):
    return _relu_from_angles(j, s11, s22, _angles(x1, x2, same))


def _relu_from_angles(j, s11, s22, theta):
    if j == 0:
        norms = jnp.sqrt(jnp.maximum(s11[:, None] * s22[None, :], 0.0))
        return norms * (jnp.sin(theta) + (jnp.pi - theta) * jnp.cos(theta)) / (2 * jnp.pi)
    return (jnp.pi - theta) / (2 * jnp.pi)


def _relu_ntk_from(blocks, dot, norms, theta, cos, sin):
    K = jnp.zeros_like(theta)
    if "W" in blocks:
        K = K + dot * (jnp.pi - theta) / (2 * jnp.pi)
    if "a" in blocks:
        K = K + norms * (sin + (jnp.pi - theta) * cos) / (2 * jnp.pi)
    return K


def _relu_ntk(x1, x2, same, blocks):
    r"""The relu NTK in one fused pass, with :math:`\cos\theta = \rho` and :math:`\sin\theta = \sqrt{1-\rho^2}`
    (XLA:CPU's sin and cos are slow); the (anti)collinear off-diagonal pairs, for which this pass is not
    accurate, are then recomputed from Kahan's angle (:func:`_fix_close`, as in :func:`_angles`)."""
    s11, s22, _ = _covariances(x1, x2)
    u1, u2, gram, rho, theta, any_close = _unit_gram(x1, x2, same=same)
    # theta = 0 exactly on the diagonal of a symmetric kernel (set by _unit_gram) and for exact duplicates
    # (which are close pairs, recomputed below): there rho may sit a rounding below 1.
    exact = theta == 0
    cos = jnp.where(exact, 1.0, rho)
    sin = jnp.where(exact, 0.0, jnp.sqrt(jnp.maximum(1.0 - rho * rho, 0.0)))
    norms = jnp.sqrt(jnp.maximum(s11[:, None] * s22[None, :], 0.0))
    K = _relu_ntk_from(blocks, x1 @ x2.T, norms, theta, cos, sin)

    def entry(r, c):  # from the rows, not from matrices of K's pass (which would then be materialized)
        dot = jnp.sum(x1[r] * x2[c], axis=-1)
        norm = jnp.sqrt(jnp.maximum(s11[r] * s22[c], 0.0))
        return _relu_ntk_from(blocks, dot, norm, *_kahan_angle(u1[r], u2[c]))

    return _fix_close(K, gram, same, any_close, entry, 3 * x1.shape[1])


def _erf_dual(j, s11, s22, s12, x1=None, x2=None, same=False):
    a = 1.0 + 2.0 * s11[:, None]
    b = 1.0 + 2.0 * s22[None, :]
    if j == 0:
        return (2.0 / jnp.pi) * jnp.arcsin(jnp.clip(2.0 * s12 / jnp.sqrt(a * b), -1.0, 1.0))
    return (4.0 / jnp.pi) / jnp.sqrt(a * b - 4.0 * s12**2)


def _quadratic_dual(j, s11, s22, s12, x1=None, x2=None, same=False):
    if j == 0:
        return s11[:, None] * s22[None, :] + 2.0 * s12**2
    if j == 1:
        return 4.0 * s12
    if j == 2:
        return jnp.full_like(s12, 4.0)
    return jnp.zeros_like(s12)


_CLOSED_FORMS: dict[tuple[str, int], Callable[..., Any]] = {
    ("relu", 0): _relu_dual,
    ("relu", 1): _relu_dual,
    ("erf", 0): _erf_dual,
    ("erf", 1): _erf_dual,
    ("quadratic", 0): _quadratic_dual,
    ("quadratic", 1): _quadratic_dual,
    ("quadratic", 2): _quadratic_dual,
}
