r"""Higher order: random movements whose expected network is :math:`f^{(0)} + f^{(k)} + \dots`, and the
empirical k-th order kernel.

:func:`order_k_laws`, :func:`order_k` and :func:`coupling_error` are the order-k randomization (its k = 2
case is the sign flip of :mod:`taylorlib.randomize`); :func:`order_k_ntk` is the empirical kernel of the
order-k model :math:`f^{(k)}` (its infinite-width limit is :func:`taylorlib.kernels.order_k_ntk`). They
were first published as ``tl.randomize.order_k``, ``tl.randomize.order_k_laws``,
``tl.randomize.coupling_error`` and ``tl.quadratic.order_k_ntk``; those spellings still work and emit a
``DeprecationWarning``.

**The construction (this book).** A two-layer net :math:`f(x) = m^{-1/2}\sum_r a_r\sigma((w_{0,r}+w_r)\cdot x)`
is *paired* when neuron :math:`r` and its partner :math:`r' = r + m/2 \pmod m` share the initial row
(:math:`w_{0,r} = w_{0,r'}`) and have opposite output weights (:math:`a_{r'} = -a_r`); the symmetric
initialization of :func:`taylorlib.nets.two_layer` is paired. Let :math:`\Delta_k = (2^{k-1}/k!)^{1/k}` and split
the central k-th difference stencil :math:`\sum_{i=0}^k (-1)^{k-i}\binom ki\,\delta_{(i-k/2)\Delta_k}` into its
positive and negative parts, each of mass :math:`2^{k-1}`:

.. math:: A_k = \sum_{i \equiv k\ (2)} \frac{\binom ki}{2^{k-1}}\,\delta_{(i-k/2)\Delta_k}, \qquad
          B_k = \sum_{i \not\equiv k\ (2)} \frac{\binom ki}{2^{k-1}}\,\delta_{(i-k/2)\Delta_k}.

Draw independent multipliers :math:`z_r \sim A_k` and :math:`\zeta_r \sim B_k` for every neuron and move neuron
:math:`r` by :math:`\tilde w_r = z_r w_r + \zeta_r w_{r'}` (its own row scaled by an :math:`A_k` draw, its
partner's row by a :math:`B_k` draw). For :math:`k = 2`, :math:`A_2 = \mathrm{Unif}\{\pm1\}` and
:math:`B_2 = \delta_0`: this is exactly the Bai–Lee sign flip (no pairing needed).

**Proposition (this book).** For a paired net, every movement :math:`W` and every :math:`x`,

.. math:: \mathbb E\, f_{W_0 + \tilde W}(x) = f^{(0)}(x) + f^{(k)}_{W_0,W}(x) + \sum_{j \ge k+2} R_j(x),

where :math:`R_j` is homogeneous of degree :math:`j` in :math:`W`: the orders :math:`1, \dots, k-1` *and*
:math:`k+1` cancel exactly in expectation. *Proof sketch.* Write :math:`u = w_{0,r}\cdot x`,
:math:`t = w_r\cdot x`, :math:`s = w_{r'}\cdot x` and :math:`\mu_j, \nu_j` for the moments of
:math:`A_k, B_k`. Expectation is linear, and a pair contributes
:math:`a_r[\mathbb E\sigma(u + z t + \zeta s) - \mathbb E\sigma(u + z' s + \zeta' t)]`, whose order-j part is
:math:`a_r\frac{\sigma^{(j)}(u)}{j!}\sum_i\binom ji(\mu_i\nu_{j-i} - \nu_i\mu_{j-i})\,t^i s^{j-i}`. The moment
differences :math:`\mu_j - \nu_j = 2^{1-k}\delta^k_{\Delta_k}[\tau^j](0)` are those of a central difference:
:math:`0` for :math:`j < k`, :math:`k!\Delta_k^k/2^{k-1} = 1` for :math:`j = k`, and :math:`0` for
:math:`j = k+1` (the stencil is even or odd with :math:`k`). Both laws have mean zero for
:math:`k \ge 2`. So for :math:`j<k` every coefficient vanishes; for :math:`j = k` only :math:`i \in \{0,k\}`
survives and gives :math:`t^k - s^k`, i.e. the pair's share of :math:`f^{(k)}`; for :math:`j = k+1` the
surviving coefficients carry :math:`\mu_{k+1}-\nu_{k+1} = 0` or a mean :math:`\mu_1 = 0`. :math:`\square`

Heuristic (this book, measured in the Higher-order coupling chapter, not proved): in the k-th order regime
:math:`\|w_r\| \sim m^{-1/(2k)}` a coherent movement has :math:`|f^{(j)}| \sim m^{(k-j)/(2k)}`, so the
coupling error :math:`|\mathbb E f_{\rm rand} - f^{(0)} - f^{(k)}|` is of the size of :math:`f^{(k+2)}`,
:math:`O(m^{-1/k})` (one order better than the :math:`m^{-1/(2k)}` of laws that match only the first
:math:`k-1` moments), while a single draw fluctuates around its mean by :math:`O(m^{-1/(2k)})` (the order-1
term, whose variance does not cancel).

References:
    Bai & Lee 2020, *Beyond Linearization* (arXiv:1910.01619): the sign flip (k = 2), and the statement in
    their abstract that randomization extends to higher orders. Their own higher-order construction and its
    width requirement are not reproduced here; the pairing, the finite-difference laws and the proposition
    are this book's.
"""

from __future__ import annotations

import math
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp

from . import activations as _act
from ._checks import as_float_array, check_int, check_key, check_pair, check_x
from ._coupling import (
    OrderKLaws,
    _check_even,
    _check_W,
    _exact,
    _monte_carlo,
    _needs_pairs,
    _sample,
    order_k_laws,
)
from .typing import Array, Float, Params, PRNGKeyArray

__all__ = ["OrderKLaws", "CouplingError", "order_k_laws", "order_k", "coupling_error", "order_k_ntk"]


class CouplingError(NamedTuple):
    r"""Coupling diagnostics of :func:`coupling_error` (Python floats; RMS is over the inputs).

    Attributes:
        error: exact :math:`\mathrm{RMS}|\mathbb E f_{\rm rand} - f^{(0)} - f^{(k)}| / \mathrm{RMS}|f^{(k)}|`.
        spread: exact :math:`\mathrm{RMS}\,\mathrm{sd}(f_{\rm rand}) / \mathrm{RMS}|f^{(k)}|`, the size of a single
            draw's fluctuation around the mean.
        rms_fk: :math:`\mathrm{RMS}|f^{(k)}|`.
        error_mc: the same relative error with the expectation replaced by a Monte Carlo average of the full
            network over ``num_draws`` draws (``None`` without draws).
        mc_stderr: standard error of that Monte Carlo mean, RMS over inputs, relative to ``rms_fk``
            (``None`` without draws).
    """

    error: float
    spread: float
    rms_fk: float
    error_mc: float | None = None
    mc_stderr: float | None = None


def order_k(key: PRNGKeyArray, W: Float[Array, "m d"], k: int) -> Float[Array, "m d"]:
    r"""One draw of the order-k randomization of a first-layer movement.

    .. math:: \tilde w_r = z_r\, w_r + \zeta_r\, w_{r + m/2 \bmod m}, \qquad z_r \sim A_k,\ \zeta_r \sim B_k
              \text{ independent},

    with the laws of :func:`order_k_laws`. For a paired network (the symmetric initialization of
    :func:`taylorlib.nets.two_layer`), :math:`\mathbb E f_{W_0+\tilde W} = f^{(0)} + f^{(k)}_{W_0,W} +
    O(\|W\|^{k+2})`: orders :math:`1..k-1` and :math:`k+1` cancel exactly in expectation (see the module
    docstring for the proposition and its proof). For ``k = 2`` this is the sign flip
    :math:`\tilde w_r = \pm w_r` (and the same key gives the same signs as
    :func:`taylorlib.randomize.sign_flip`).

    Args:
        key: PRNG key.
        W: ``(m, d)`` movement of the first layer (``m`` even unless ``k = 2``).
        k: order, ``k >= 1``.

    Returns:
        ``(m, d)`` randomized movement.

    Raises:
        ValueError: ``k < 1``, ``W`` not 2-D, or an odd number of rows when ``k != 2``.
        TypeError: ``k`` not an int.

    Example:
        >>> import jax, jax.numpy as jnp
        >>> import taylorlib as tl
        >>> W = jnp.ones((4, 2))
        >>> Wk = tl.higher_order.order_k(jax.random.key(0), W, 2)
        >>> bool(jnp.all(jnp.abs(Wk) == 1.0))               # k = 2: random signs
        True
        >>> tl.higher_order.order_k(jax.random.key(0), W, 3).shape
        (4, 2)

    References:
        Bai & Lee 2020 (arXiv:1910.01619).
    """
    k = check_int(k, "k", minimum=1)
    check_key(key)
    W = _check_W(W)
    m = W.shape[0]
    _check_even(m, k, "W")
    return _sample(key, W, k)


def _check_params(params0: Params, k: int) -> tuple[jax.Array, jax.Array]:
    if not isinstance(params0, dict) or set(params0) != {"W", "a"}:
        raise ValueError(
            "params0 must be the params of tl.nets.two_layer, a dict with keys 'W' (m, d) and 'a' (m,)"
        )
    W0 = _check_W(params0["W"], "params0['W']")
    a = as_float_array(params0["a"], "params0['a']")
    if a.shape != (W0.shape[0],):
        raise ValueError(f"params0['a'] must have shape (m,) = ({W0.shape[0]},), got {tuple(a.shape)}")
    m = W0.shape[0]
    _check_even(m, k, "params0['W']")
    if _needs_pairs(k):
        h = m // 2
        scale = float(jnp.max(jnp.abs(W0))) + 1e-30
        if float(jnp.max(jnp.abs(W0[:h] - W0[h:]))) > 1e-6 * scale or not bool(jnp.all(a[:h] == -a[h:])):
            raise ValueError(
                f"params0 must be paired for the order-{k} randomization: rows r and r + m/2 of params0['W'] "
                "equal and params0['a'][r] == -params0['a'][r + m/2] (use tl.nets.two_layer(..., symmetric=True))"
            )
    return W0, a


def _prepare(params0, W, x, activation, k, what):
    k = check_int(k, "k", minimum=1)
    act = _act.require_order(activation, k, what)
    W0, a = _check_params(params0, k)
    W = _check_W(W)
    if W.shape != W0.shape:
        raise ValueError(f"W must have the shape of params0['W'] {tuple(W0.shape)}, got {tuple(W.shape)}")
    x = check_x(x, "x", d=W0.shape[1])
    dtype = jnp.result_type(W0.dtype, W.dtype, x.dtype)
    return k, act, W0.astype(dtype), a.astype(dtype), W.astype(dtype), x.astype(dtype)


def _rms(v: jax.Array) -> float:
    return float(jnp.sqrt(jnp.mean(v * v)))


def coupling_error(
    params0: Params,
    W: Float[Array, "m d"],
    x: Float[Array, "n d"],
    *,
    activation: Any,
    k: int,
    key: PRNGKeyArray | None = None,
    num_draws: int = 0,
) -> CouplingError:
    r"""How closely the order-k randomized network couples to :math:`f^{(0)} + f^{(k)}`.

    .. math:: \varepsilon_k = \frac{\mathrm{RMS}_x\,\big|\mathbb E f_{W_0+\tilde W}(x) - f^{(0)}(x) -
              f^{(k)}_{W_0,W}(x)\big|}{\mathrm{RMS}_x\,|f^{(k)}_{W_0,W}(x)|},
              \qquad \tilde W \sim \texttt{order\_k}(\cdot, W, k).

    The expectation is exact: neurons are independent and each neuron's scalings have a finite support
    (at most :math:`\lceil (k+1)/2\rceil\lfloor (k+1)/2\rfloor` points), so :math:`\mathbb E f` is a finite
    sum per neuron. With ``key`` and ``num_draws >= 1`` the full network is also averaged over that many
    draws, a Monte Carlo cross-check (``error_mc``, ``mc_stderr``).

    Precision: the expectation is a k-th finite difference of :math:`\sigma`, which also differentiates the
    round-off of :math:`\sigma`'s float32 evaluation. With float32 inputs expect a relative bias of ~2% at
    ``m = 1e5, k = 3`` and up to 2x for ``k = 5, m = 1e6``; pass float64 arrays (x64 enabled) for such runs.

    Args:
        params0: params of a paired :func:`taylorlib.nets.two_layer` (``symmetric=True``), ``{"W": (m, d),
            "a": (m,)}``; any two-layer params when ``k = 2``.
        W: ``(m, d)`` movement.
        x: ``(n, d)`` inputs.
        activation: activation name or callable; its k-th derivative must not vanish.
        k: order, ``k >= 1``.
        key: PRNG key for the Monte Carlo check (only used when ``num_draws >= 1``).
        num_draws: number of Monte Carlo draws (``0``: exact quantities only).

    Returns:
        A :class:`CouplingError`.

    Raises:
        ValueError: ``k < 1``; relu (or any activation with vanishing :math:`\sigma^{(k)}`) for ``k >= 2``;
            odd width or unpaired ``params0`` when ``k != 2``; mismatched shapes; ``num_draws >= 1``
            without ``key``.
        TypeError: ``k`` or ``num_draws`` not an int.

    Example:
        >>> import jax
        >>> import taylorlib as tl
        >>> net = tl.nets.two_layer(2000, activation="smooth_relu2")
        >>> p0 = net.init(jax.random.key(0), 10)
        >>> x = tl.data.sphere(jax.random.key(1), 50, 10)
        >>> v = jax.numpy.eye(10)[0]                                    # a unit direction
        >>> W = (p0["a"] > 0)[:, None] * 2000 ** (-1 / 6) * v[None, :]  # coherent, ||w_r|| ~ m^(-1/6)
        >>> res = tl.higher_order.coupling_error(p0, W, x, activation="smooth_relu2", k=3)
        >>> bool(res.error < 0.05), bool(res.spread > 1.0)  # the mean couples, a single draw does not
        (True, True)

    References:
        Bai & Lee 2020 (arXiv:1910.01619).
    """
    k, act, W0, a, W, x = _prepare(params0, W, x, activation, k, f"the order-{k} coupling")
    num_draws = check_int(num_draws, "num_draws", minimum=0)
    if num_draws and key is None:
        raise ValueError(f"key is required for the Monte Carlo check (num_draws = {num_draws})")
    mean, var, fk = _exact(W0, a, W, x, act.fn, _act.derivative(act, k), k)
    rms_fk = _rms(fk)
    if rms_fk == 0.0:
        raise ValueError("f^(k) is identically zero on x (W = 0?): the relative coupling error is undefined")
    err_mc = stderr = None
    if num_draws:
        mc_mean, mc_sd = _monte_carlo(W0, a, W, x, key, act.fn, k, num_draws)
        err_mc = _rms(mc_mean - fk) / rms_fk
        stderr = _rms(mc_sd) / math.sqrt(num_draws) / rms_fk
    return CouplingError(_rms(mean - fk) / rms_fk, _rms(jnp.sqrt(var)) / rms_fk, rms_fk, err_mc, stderr)


def order_k_ntk(
    params0: Params,
    x1: Float[Array, "n1 d"],
    x2: Float[Array, "n2 d"] | None = None,
    *,
    activation: Any,
    k: int,
) -> Float[Array, "n1 n2"]:
    r"""The empirical k-th order kernel: the Gram of the features of :math:`f^{(k)}` viewed as linear in the
    tensors :math:`w_r^{\otimes k}`.

    .. math:: K_k(x, x') = \frac{1}{m\,(k!)^2} \sum_{r=1}^m \sigma^{(k)}(w_{0,r}\cdot x)\,
              \sigma^{(k)}(w_{0,r}\cdot x')\,(x\cdot x')^k.

    ``k = 1`` is the W-block of the empirical NTK, ``k = 2`` the QuadNTK; the m → ∞ limit is
    :func:`taylorlib.kernels.order_k_ntk`.

    Args:
        params0: two-layer params ``{"W": (m, d), "a": (m,)}`` (only ``W`` is used).
        x1: ``(n1, d)`` inputs.
        x2: ``(n2, d)`` inputs (default ``x1``).
        activation: activation name or callable.
        k: order, ``k >= 1``.

    Returns:
        ``(n1, n2)`` kernel matrix.

    Raises:
        ValueError: ``k < 1`` or an activation whose k-th derivative vanishes (relu for ``k >= 2``).

    Example:
        >>> import jax, jax.numpy as jnp
        >>> import taylorlib as tl
        >>> p0 = tl.nets.two_layer(6, activation="quadratic").init(jax.random.key(0), 3)
        >>> x = tl.data.sphere(jax.random.key(1), 4, 3)
        >>> K2 = tl.higher_order.order_k_ntk(p0, x, activation="quadratic", k=2)   # sigma'' = 2
        >>> bool(jnp.allclose(K2, (x @ x.T) ** 2, rtol=1e-5))
        True
    """
    k = check_int(k, "k", minimum=1)
    act = _act.require_order(activation, k, f"the order-{k} kernel")
    if not isinstance(params0, dict) or "W" not in params0:
        raise ValueError("params0 must be two-layer params, a dict with key 'W' of shape (m, d)")
    W0 = _check_W(params0["W"], "params0['W']")
    x1, x2 = check_pair(x1, x2, d=W0.shape[1])
    dk = _act.derivative(act, k)
    f1, f2 = dk(x1 @ W0.T), dk(x2 @ W0.T)
    return (f1 @ f2.T) * (x1 @ x2.T) ** k / (W0.shape[0] * math.factorial(k) ** 2)
