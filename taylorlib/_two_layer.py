r"""The closed-form Taylor terms of the two-layer network along a first-layer movement (written once).

For :math:`f(x) = m^{-1/2}\sum_r a_r\sigma((w_{0,r} + w_r)\cdot x)` with the output weights fixed,

.. math:: f^{(k)}_{W_0,W}(x) = \sum_{r=1}^m c_{r,k}(x)\,(w_r\cdot x)^k, \qquad
          c_{r,k}(x) = \frac{a_r\,\sigma^{(k)}(w_{0,r}\cdot x)}{k!\,\sqrt m}.

:func:`coefficients` is :math:`c_{r,k}`, :func:`summands` the per-neuron terms
:math:`c_{r,k}(x)(w_r\cdot x)^k` and :func:`taylor_terms` their sums :math:`f^{(0)},\dots,f^{(K)}`. The public
spellings are :func:`taylorlib.quadratic.two_layer_terms` (validated) and the callers in
:mod:`taylorlib.higher_order`, :mod:`taylorlib.randomize` and :mod:`taylorlib.relaxation`.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

import jax
import jax.numpy as jnp

from . import activations as _act


def coefficients(u: jax.Array, a: jax.Array, dk: Callable, k: int, m: Any = None) -> jax.Array:
    r""":math:`c_{r,k} = a_r\sigma^{(k)}(u_r)/(k!\sqrt m)` for pre-activations ``u`` (neurons on the last axis).

    Args:
        u: ``(..., m)`` initial pre-activations :math:`w_{0,r}\cdot x` (any layout whose last axes broadcast
            against ``a``).
        a: output weights, broadcastable against ``u``.
        dk: :math:`\sigma^{(k)}` (``tl.activations.derivative(act, k)``).
        k: the order.
        m: the width (default ``u.shape[-1]``); pass it when ``u`` holds a block or a padded pair layout.

    Example:
        >>> import jax.numpy as jnp
        >>> c = coefficients(jnp.zeros((1, 4)), jnp.ones(4), lambda u: u + 2.0, 2)
        >>> c.tolist()  # 1 * 2 / (2! * sqrt(4))
        [[0.5, 0.5, 0.5, 0.5]]
    """
    m = u.shape[-1] if m is None else m
    a = jnp.reshape(a, (1,) * (u.ndim - jnp.ndim(a)) + jnp.shape(a))
    return a * dk(u) / (math.factorial(k) * jnp.sqrt(jnp.asarray(m, u.dtype)))


def summands(u: jax.Array, t: jax.Array, a: jax.Array, dk: Callable, k: int, m: Any = None) -> jax.Array:
    r"""Neuron r's share :math:`c_{r,k}(x)\,t_r^k` of :math:`f^{(k)}(x)`, with :math:`t_r = w_r\cdot x`.

    Example:
        >>> import jax.numpy as jnp
        >>> summands(jnp.zeros((1, 4)), jnp.full((1, 4), 3.0), jnp.ones(4), lambda u: u + 2.0, 2).tolist()
        [[4.5, 4.5, 4.5, 4.5]]
    """
    return coefficients(u, a, dk, k, m) * t**k


def taylor_terms(
    W0: jax.Array, a: jax.Array, W: jax.Array, x: jax.Array, act: Any, order: int
) -> tuple[jax.Array, ...]:
    r""":math:`f^{(0)},\dots,f^{(K)}` at inputs ``x`` ``(n, d)`` for ``W0, W`` ``(m, d)``, ``a`` ``(m,)``
    (unvalidated; :func:`taylorlib.quadratic.two_layer_terms` validates).

    Example:
        >>> import jax.numpy as jnp
        >>> import taylorlib as tl
        >>> act = tl.activations.get("quadratic")               # sigma(u) = u^2
        >>> W0, a, W, x = jnp.ones((4, 1)), jnp.ones(4), jnp.ones((4, 1)), jnp.ones((1, 1))
        >>> [float(f[0]) for f in taylor_terms(W0, a, W, x, act, 3)]  # (1 + 1)^2 * 4 / 2 = 2 + 4 + 2
        [2.0, 4.0, 2.0, 0.0]
    """
    u, t = x @ W0.T, x @ W.T
    return tuple(jnp.sum(summands(u, t, a, _act.derivative(act, k), k), axis=-1) for k in range(order + 1))
