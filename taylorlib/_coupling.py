r"""The order-k laws and draws, and the estimators of the coupling error (exact and Monte Carlo).

The implementation behind :mod:`taylorlib.higher_order`: :func:`order_k_laws` and :class:`OrderKLaws`
(re-exported there), the draw of :func:`taylorlib.higher_order.order_k` for a checked movement, and the exact
expectation and the Monte Carlo average of :func:`taylorlib.higher_order.coupling_error`. The construction and
the proposition are in the docstring of :mod:`taylorlib.higher_order`.
"""

from __future__ import annotations

import functools
import math
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from . import _two_layer
from ._checks import as_float_array, check_finite, check_int
from .typing import PRNGKeyArray

#: Elements of one ``(n, pairs, 2)`` block of the exact expectation (memory bound; at most 4096 pairs).
_BLOCK = 2**21


class OrderKLaws(NamedTuple):
    r"""The two scalar laws of the order-k randomization (float64 numpy arrays).

    Attributes:
        nodes_a: 1-D array, the atoms of :math:`A_k` (the law of :math:`z_r`, which scales a neuron's own
            movement), in increasing order.
        probs_a: their probabilities (same shape).
        nodes_b: 1-D array, the atoms of :math:`B_k` (the law of :math:`\zeta_r`, which scales the
            partner's movement).
        probs_b: their probabilities (same shape).
        step: the stencil step :math:`\Delta_k = (2^{k-1}/k!)^{1/k}`.
    """

    nodes_a: np.ndarray
    probs_a: np.ndarray
    nodes_b: np.ndarray
    probs_b: np.ndarray
    step: float


@functools.lru_cache(maxsize=32)
def order_k_laws(k: int) -> OrderKLaws:
    r"""The laws :math:`A_k, B_k` of the order-k multipliers :math:`z_r, \zeta_r` of :func:`order_k`.

    They are the positive and negative parts of the central k-th difference stencil with step
    :math:`\Delta_k = (2^{k-1}/k!)^{1/k}`, each normalized to mass one (see the module docstring). Their
    moments agree for orders :math:`1..k-1` and :math:`k+1`, and :math:`E_{A_k} z^k - E_{B_k} z^k = 1`.

    Args:
        k: order, ``k >= 1``.

    Returns:
        An :class:`OrderKLaws`.

    Example:
        >>> import taylorlib as tl
        >>> laws = tl.higher_order.order_k_laws(2)  # the sign flip
        >>> laws.nodes_a.tolist(), laws.probs_a.tolist(), laws.nodes_b.tolist()
        ([-1.0, 1.0], [0.5, 0.5], [0.0])
        >>> laws = tl.higher_order.order_k_laws(3)
        >>> mu = lambda j: float(laws.probs_a @ laws.nodes_a**j - laws.probs_b @ laws.nodes_b**j)
        >>> [round(mu(j), 12) for j in range(1, 5)]
        [0.0, 0.0, 1.0, 0.0]
    """
    k = check_int(k, "k", minimum=1)
    h = (2.0 ** (k - 1) / math.factorial(k)) ** (1.0 / k)
    idx = np.arange(k + 1)
    nodes = (idx - k / 2) * h
    probs = np.array([math.comb(k, i) for i in idx], dtype=np.float64) / 2.0 ** (k - 1)
    pos = (k - idx) % 2 == 0
    laws = OrderKLaws(nodes[pos], probs[pos], nodes[~pos], probs[~pos], h)
    for arr in laws[:4]:
        arr.setflags(write=False)
    return laws


def _check_W(W: Any, name: str = "W") -> jax.Array:
    W = as_float_array(W, name)
    if W.ndim != 2:
        raise ValueError(f"{name} must be a 2-D movement matrix of shape (m, d), got shape {tuple(W.shape)}")
    check_finite(W, name)
    return W


def _needs_pairs(k: int) -> bool:
    laws = order_k_laws(k)
    return not (laws.nodes_b.size == 1 and laws.nodes_b[0] == 0.0)


def _check_even(m: int, k: int, name: str) -> None:
    if _needs_pairs(k) and m % 2:
        raise ValueError(
            f"{name} has an odd number of rows m = {m}, but the order-{k} randomization pairs neuron r with "
            f"neuron r + m/2 (the symmetric initialization of tl.nets.two_layer); use an even width"
        )


def _draw(key: PRNGKeyArray, nodes: np.ndarray, probs: np.ndarray, m: int, dtype) -> jax.Array:
    if nodes.size == 1:
        return jnp.full((m,), nodes[0], dtype=dtype)
    if nodes.size == 2 and np.allclose(probs, 0.5) and np.allclose(nodes, [-1.0, 1.0]):
        return jax.random.rademacher(key, (m,), dtype=dtype)  # k = 2: the Bai-Lee signs
    idx = jax.random.choice(key, nodes.size, (m,), p=jnp.asarray(probs, dtype=dtype))
    return jnp.asarray(nodes, dtype=dtype)[idx]


def _partner(W: jax.Array) -> jax.Array:
    """Row r of the result is row r + m/2 (mod m) of W."""
    return jnp.roll(W, W.shape[0] // 2, axis=0)


def _sample(key: PRNGKeyArray, W: jax.Array, k: int) -> jax.Array:
    """One draw of :func:`taylorlib.higher_order.order_k` for a checked ``(m, d)`` movement ``W``."""
    m = W.shape[0]
    laws = order_k_laws(k)
    if not _needs_pairs(k):
        return _draw(key, laws.nodes_a, laws.probs_a, m, W.dtype)[:, None] * W
    k_a, k_b = jax.random.split(key)
    z = _draw(k_a, laws.nodes_a, laws.probs_a, m, W.dtype)
    zeta = _draw(k_b, laws.nodes_b, laws.probs_b, m, W.dtype)
    return z[:, None] * W + zeta[:, None] * _partner(W)


def _pair_sum(v: jax.Array, a: jax.Array) -> jax.Array:
    """``sum_r a_r v[..., r]``, adding each neuron to its partner first (paired nets: exact cancellation)."""
    m = a.shape[0]
    if m % 2:
        return v @ a
    h = m // 2
    a = a.reshape((1,) * (v.ndim - 1) + (m,))
    return jnp.sum(v[..., :h] * a[..., :h] + v[..., h:] * a[..., h:], axis=-1)


@functools.partial(jax.jit, static_argnames=("fn", "dk", "k"))
def _exact_block(W0, a, W, x, fn, dk, k):
    """Unnormalized sums over one block of pairs ``(C, 2, d)`` of (E f_rand - f0, Var f_rand, f^(k))."""
    laws = order_k_laws(k)
    support = [
        (float(za), float(zb), float(pa * pb))
        for za, pa in zip(laws.nodes_a, laws.probs_a, strict=True)
        for zb, pb in zip(laws.nodes_b, laws.probs_b, strict=True)
    ]
    u = jnp.einsum("nd,cjd->ncj", x, W0)
    t = jnp.einsum("nd,cjd->ncj", x, W)
    s = t[:, :, ::-1]  # the partner's movement
    base = fn(u)
    mean = jnp.zeros_like(u)
    second = jnp.zeros_like(u)
    for za, zb, p in support:  # centered values: no cancellation against sigma(u)
        dev = fn(u + za * t + zb * s) - base
        mean = mean + p * dev
        second = second + p * dev * dev
    pair_first = lambda v: jnp.sum(jnp.sum(v, axis=2), axis=1)  # add partners before summing
    fk = pair_first(_two_layer.summands(u, t, a, dk, k, m=1))  # f^(k) times sqrt(m) (see _exact)
    a = a[None]
    var = jnp.sum(jnp.sum((second - mean * mean) * a * a, axis=2), axis=1)
    return pair_first(mean * a), var, fk


def _exact(W0, a, W, x, fn, dk, k):
    """Per input: (E f_rand - f0, Var f_rand, f^(k)) by summing each neuron's finite support exactly.

    Neurons are regrouped into pairs (r, r + m/2) of shape ``(m/2, 2, d)`` and processed in blocks of a fixed
    number of pairs (zero-padded, with ``a = 0`` on the padding), so one compilation serves every width.
    """
    m, d = W0.shape
    if m % 2:  # only for k = 2, where no partner is used: pad one silent neuron
        W0, W, a = (jnp.concatenate([v, jnp.zeros((1,) + v.shape[1:], v.dtype)]) for v in (W0, W, a))
    h = W0.shape[0] // 2
    block = int(np.clip(_BLOCK // (2 * x.shape[0]), 8, 4096))
    pad = -h % block

    def pairs(v):
        v = jnp.stack([v[:h], v[h:]], axis=1)
        return jnp.concatenate([v, jnp.zeros((pad,) + v.shape[1:], v.dtype)])

    W0p, Wp, ap = pairs(W0), pairs(W), pairs(a)
    total = [jnp.zeros(x.shape[0], x.dtype)] * 3
    for i in range(0, h + pad, block):
        sl = slice(i, i + block)
        out = _exact_block(W0p[sl], ap[sl], Wp[sl], x, fn, dk, k)
        total = [tot + o for tot, o in zip(total, out, strict=True)]
    mean, var, fk = total
    return mean / math.sqrt(m), var / m, fk / math.sqrt(m)


@functools.partial(jax.jit, static_argnames=("fn", "k", "num_draws"))
def _monte_carlo(W0, a, W, x, key, fn, k, num_draws):
    """Per input: the Monte Carlo mean and standard deviation over draws of f_rand - f0."""
    m = W0.shape[0]
    u = x @ W0.T
    base = fn(u)

    def one(i):
        D = _sample(jax.random.fold_in(key, i), W, k)
        return _pair_sum(fn(u + x @ D.T) - base, a) / math.sqrt(m)

    devs = jax.lax.map(one, jnp.arange(num_draws))
    mean = jnp.mean(devs, axis=0)
    sd = jnp.std(devs, axis=0, ddof=1) if num_draws > 1 else jnp.zeros_like(mean)
    return mean, sd
