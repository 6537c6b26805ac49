r"""Regularizers on the first-layer movement :math:`W` (rows :math:`w_r` are neurons).

The mixed norm of Bai & Lee

.. math:: \|W\|_{2,p} = \Big(\sum_{r=1}^m \|w_r\|_2^p\Big)^{1/p}

measures the movement neuron by neuron; in the quadratic regime :math:`\|w_r\| \sim m^{-1/4}`, so
:math:`\|W\|_{2,4} = O(1)`. Their regularizer :math:`\lambda \|W\|_{2,4}^8` is homogeneous of degree 8
and makes the degree-4 polynomial square loss of the quadratic model coercive.

References:
    Bai & Lee 2020, *Beyond Linearization* (arXiv:1910.01619).
"""

from __future__ import annotations

import functools
import math
import numbers
from typing import Any

import jax
import jax.numpy as jnp

from ._checks import as_float_array, check_finite, check_positive, is_tracer
from .typing import Array, Float, Params

__all__ = ["norm_2p", "bai_lee", "frobenius2"]


def _check_W(W: Any) -> jax.Array:
    W = as_float_array(W, "W")
    if W.ndim != 2:
        raise ValueError(f"W must be 2-D with shape (m, d) (one row per neuron), got shape {tuple(W.shape)}")
    if W.shape[0] == 0:
        raise ValueError(f"W must have at least one row (neuron), got shape {tuple(W.shape)}")
    check_finite(W, "W")
    return W


def _check_lam(lam: Any) -> Any:
    if is_tracer(lam):
        return lam
    return check_positive(lam, "lam", allow_zero=True)


def _safe_root(s: jax.Array, power: float) -> jax.Array:
    """``s ** power`` for ``s >= 0`` and ``0 < power < 1`` with gradient 0 (not nan) at ``s = 0``."""
    positive = s > 0
    return jnp.where(positive, jnp.where(positive, s, 1.0) ** power, 0.0)


def norm_2p(W: Float[Array, "m d"], p: float) -> Float[Array, ""]:
    r"""The mixed norm :math:`\|W\|_{2,p} = (\sum_r \|w_r\|_2^p)^{1/p}` over the rows of ``W``.

    ``p = inf`` gives :math:`\max_r \|w_r\|_2`. Differentiable away from ``W = 0``; at ``W = 0`` the
    gradient returned is 0 (a subgradient), never nan.

    Args:
        W: ``(m, d)`` movement, one row per neuron.
        p: exponent ``p >= 1`` (or ``math.inf``).

    Returns:
        Scalar ``()``.

    Example:
        >>> import jax.numpy as jnp
        >>> import taylorlib as tl
        >>> W = jnp.array([[3.0, 4.0], [0.0, 5.0]])       # row norms 5 and 5
        >>> round(float(tl.regularizers.norm_2p(W, 4)), 4)  # (2 * 5^4)^(1/4) = 5 * 2^(1/4)
        5.9460
        >>> float(tl.regularizers.norm_2p(W, 2)) == float(jnp.linalg.norm(W))  # p = 2: Frobenius
        True

    References:
        Bai & Lee 2020 (arXiv:1910.01619).
    """
    W = _check_W(W)
    if isinstance(p, bool) or not isinstance(p, numbers.Real):
        raise TypeError(f"p must be a real number >= 1, got {p!r}")
    p = float(p)
    if not p >= 1:
        raise ValueError(f"p must be >= 1 (or inf), got {p}")
    sq = jnp.sum(W * W, axis=1)  # (m,) squared row norms
    if math.isinf(p):
        return _safe_root(jnp.max(sq), 0.5)
    if p == 2:
        return _safe_root(jnp.sum(sq), 0.5)
    # for even p, ||w||^p = (||w||^2)^(p/2) is a polynomial: smooth everywhere
    total = jnp.sum(sq ** int(p // 2)) if p % 2 == 0 else jnp.sum(_safe_root(sq, 0.5) ** p)
    return _safe_root(total, 1.0 / p)


def bai_lee(W: Float[Array, "m d"], lam: float | Float[Array, ""]) -> Float[Array, ""]:
    r"""The Bai–Lee regularizer :math:`R(W) = \lambda \|W\|_{2,4}^8 = \lambda (\sum_r \|w_r\|_2^4)^2`.

    Computed as the polynomial :math:`\lambda(\sum_r (w_r \cdot w_r)^2)^2` (no root), so it is smooth
    everywhere, including at ``W = 0``. It is homogeneous of degree 8:
    :math:`R(cW) = c^8 R(W)` and :math:`\langle \nabla R(W), W\rangle = 8 R(W)`.

    Args:
        W: ``(m, d)`` movement, one row per neuron.
        lam: :math:`\lambda \ge 0`.

    Returns:
        Scalar ``()``.

    Example:
        >>> import jax, jax.numpy as jnp
        >>> import taylorlib as tl
        >>> W = jnp.array([[1.0, 0.0], [0.0, 2.0]])      # sum_r ||w_r||^4 = 1 + 16
        >>> float(tl.regularizers.bai_lee(W, 0.5))        # 0.5 * 17^2
        144.5
        >>> g = jax.grad(tl.regularizers.bai_lee)(W, 0.5)
        >>> float(jnp.vdot(g, W)) == 8 * 144.5            # Euler: <grad R, W> = 8 R
        True

    References:
        Bai & Lee 2020 (arXiv:1910.01619).
    """
    W = _check_W(W)
    lam = _check_lam(lam)
    sq = jnp.sum(W * W, axis=1)
    return lam * jnp.sum(sq * sq) ** 2


def frobenius2(params: Params, lam: float) -> Float[Array, ""]:
    r"""The plain squared-norm penalty (weight decay) :math:`\lambda \|\theta\|_2^2` over all leaves.

    For a matrix this is :math:`\lambda \|W\|_F^2 = \lambda \|W\|_{2,2}^2`; for a pytree it is the sum
    of the squared entries of every leaf.

    Args:
        params: an array or any pytree of arrays (e.g. the movement ``W`` of shape ``(m, d)``).
        lam: :math:`\lambda \ge 0`.

    Returns:
        Scalar ``()``.

    Example:
        >>> import jax.numpy as jnp
        >>> import taylorlib as tl
        >>> float(tl.regularizers.frobenius2(jnp.array([[1.0, 2.0], [2.0, 0.0]]), 0.1))
        0.9
        >>> float(tl.regularizers.frobenius2({"W": jnp.ones((2, 2)), "a": jnp.ones(3)}, 1.0))
        7.0
    """
    lam = _check_lam(lam)
    leaves = [as_float_array(v, "params") for v in jax.tree_util.tree_leaves(params)]
    if not leaves:
        raise ValueError("params must contain at least one array leaf")
    return lam * functools.reduce(jnp.add, [jnp.sum(v * v) for v in leaves])
