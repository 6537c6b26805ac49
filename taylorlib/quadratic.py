r"""The quadratic model :math:`f^Q` and the QuadNTK of the two-layer network.

For a movement :math:`W` of the first layer (rows :math:`w_r`, output weights fixed),

.. math:: f^{(k)}_{W_0,W}(x) = \frac{1}{\sqrt m}\sum_{r=1}^m a_r\,\frac{\sigma^{(k)}(w_{0,r}\cdot x)}{k!}\,(w_r\cdot x)^k,
   \qquad f^Q_W = f^{(2)}_{W_0,W}.

Viewed as a linear function of the matrices :math:`w_r w_r^\top`, :math:`f^Q` has the features
:math:`a_r\sigma''(w_{0,r}\cdot x)\,x x^\top / (2\sqrt m)`, whose Gram is the QuadNTK

.. math:: K_Q(x,x') = \frac{1}{4m}\sum_r \sigma''(w_{0,r}\cdot x)\,\sigma''(w_{0,r}\cdot x')\,(x\cdot x')^2 .

In the quadratic regime :math:`\|w_r\| \sim m^{-1/4}`; :func:`to_movement` and :func:`learning_rate` implement
the parametrization :math:`W = m^{-1/4} V` in which learning rates are comparable across widths.

References:
    Bai & Lee 2020 (arXiv:1910.01619); Nichani, Bai & Lee 2022 (arXiv:2206.03688).
"""

from __future__ import annotations

import functools
from typing import Any

import jax
import jax.numpy as jnp

from . import _two_layer
from . import activations as _act
from . import higher_order as _higher_order
from . import taylor as _taylor
from ._checks import as_array, check_finite, check_hashable, check_int, check_positive, check_x
from ._deprecation import moved_names
from ._second_order import KernelEstimate, second_order_ntk
from .typing import ApplyFn, Array, Float, Params

__all__ = [
    "two_layer_terms",
    "quadratic_model",
    "quad_ntk",
    "second_order_ntk",
    "KernelEstimate",
    "to_movement",
    "from_movement",
    "learning_rate",
]

#: ``tl.quadratic.order_k_ntk`` moved to :mod:`taylorlib.higher_order` (deprecated spelling).
__getattr__ = moved_names("quadratic", {"order_k_ntk": "higher_order"})


def check_movement(
    params0: Any, W: Any | None = None, x: Any | None = None
) -> tuple[jax.Array, jax.Array, Any]:
    """Validate a two-layer ``params0``, a movement ``W`` and inputs ``x`` (each optional); returns ``(W0, a, x)``."""
    if not isinstance(params0, dict) or "W" not in params0 or "a" not in params0:
        raise TypeError("params0 must be a two_layer parameter dict {'W': (m, d), 'a': (m,)}")
    W0, a = jnp.asarray(params0["W"]), jnp.asarray(params0["a"])
    if W0.ndim != 2 or W0.shape[0] == 0 or a.shape != (W0.shape[0],):
        raise ValueError(
            f"params0['W'] must be (m, d) with m >= 1 and params0['a'] (m,), got {W0.shape}, {a.shape}"
        )
    if W is not None and jnp.shape(W) != W0.shape:
        raise ValueError(
            f"W (the movement) must have the shape of params0['W'] {tuple(W0.shape)}, got {tuple(jnp.shape(W))}"
        )
    if W is not None:
        if jnp.issubdtype(jnp.result_type(W), jnp.complexfloating):
            raise TypeError(f"W (the movement) must be real, got dtype {jnp.result_type(W)}")
        check_finite(W, "W")
    if x is not None:
        x = check_x(x, "x", d=W0.shape[1])
    return W0, a, x


def two_layer_terms(
    params0: Params, W: Float[Array, "m d"], x: Float[Array, "n d"], *, activation: Any, order: int
) -> tuple[Float[Array, " n"], ...]:
    r"""Closed-form Taylor terms :math:`f^{(0)},\dots,f^{(K)}` of the two-layer network along a first-layer
    movement ``W`` (output weights fixed).

    .. math:: f^{(k)}(x) = \frac{1}{\sqrt m}\sum_r a_r\,\sigma^{(k)}(w_{0,r}\cdot x)\,(w_r\cdot x)^k/k!.

    Args:
        params0: ``{"W": (m, d), "a": (m,)}`` of :func:`taylorlib.nets.two_layer`.
        W: ``(m, d)`` movement of the first layer.
        x: ``(n, d)`` inputs.
        activation: the network's activation.
        order: highest order ``K >= 0``.

    Returns:
        Tuple of ``K + 1`` arrays of shape ``(n,)``.

    Example:
        >>> import jax, jax.numpy as jnp
        >>> import taylorlib as tl
        >>> net = tl.nets.two_layer(16, "softplus")
        >>> p0 = net.init(jax.random.key(0), 3)
        >>> W = 0.1 * jax.random.normal(jax.random.key(1), (16, 3))
        >>> x = tl.data.sphere(jax.random.key(2), 4, 3)
        >>> closed = tl.quadratic.two_layer_terms(p0, W, x, activation="softplus", order=3)
        >>> auto = tl.taylor.taylor_terms(net.apply, p0, {"W": W, "a": jnp.zeros(16)}, x, order=3)
        >>> all(bool(jnp.allclose(c, a, atol=1e-5)) for c, a in zip(closed, auto))
        True
    """
    order = check_int(order, "order", minimum=0)
    W0, a, x = check_movement(params0, W, x)
    act = _act.get(activation)
    check_hashable(act.fn, "activation")
    return _terms(W0, a, as_array(W), x, act=act, order=order)


@functools.partial(jax.jit, static_argnames=("act", "order"))
def _terms(W0, a, W, x, act, order):
    return _two_layer.taylor_terms(W0, a, W, x, act, order)


def quadratic_model(apply: ApplyFn, params0: Params) -> ApplyFn:
    r"""The quadratic model :math:`f^Q(\theta, x) = \frac12 \partial_t^2 f_{\theta_0 + t(\theta-\theta_0)}(x)|_{t=0}`
    of any network: its pure second-order Taylor term along :math:`\theta - \theta_0`.

    Args:
        apply: any ``apply(params, x)``.
        params0: the expansion point.

    Returns:
        ``fq(params, x)`` with the signature of ``apply``; homogeneous of degree 2 in ``params - params0``.

    Example:
        >>> import jax, jax.numpy as jnp
        >>> import taylorlib as tl
        >>> net = tl.nets.two_layer(8, "softplus")
        >>> p0 = net.init(jax.random.key(0), 2)
        >>> fq = tl.quadratic.quadratic_model(net.apply, p0)
        >>> W = jnp.ones((8, 2)) * 0.1
        >>> x = jnp.ones((3, 2))
        >>> closed = tl.quadratic.two_layer_terms(p0, W, x, activation="softplus", order=2)[2]
        >>> bool(jnp.allclose(fq({"W": p0["W"] + W, "a": p0["a"]}, x), closed, atol=1e-6))
        True
    """
    return _taylor.taylor_term(apply, params0, 2)


def quad_ntk(
    params0: Params, x1: Float[Array, "n1 d"], x2: Float[Array, "n2 d"] | None = None, *, activation: Any
) -> Float[Array, "n1 n2"]:
    r"""The empirical QuadNTK :math:`K_Q(x,x') = \frac{1}{4m}\sum_r \sigma''(w_{0,r}\cdot x)\sigma''(w_{0,r}\cdot x')(x\cdot x')^2`.

    Args:
        params0: ``{"W": (m, d), "a": (m,)}``.
        x1: ``(n1, d)``; x2: ``(n2, d)`` or ``None``.
        activation: a smooth activation (ReLU raises: its :math:`\sigma''` vanishes a.e.).

    Returns:
        ``(n1, n2)`` kernel; converges to :func:`taylorlib.kernels.quad_ntk` as ``m`` grows.

    Example:
        >>> import jax, jax.numpy as jnp
        >>> import taylorlib as tl
        >>> p0 = tl.nets.two_layer(4096, "softplus").init(jax.random.key(0), 5)
        >>> x = tl.data.sphere(jax.random.key(1), 6, 5)
        >>> K = tl.quadratic.quad_ntk(p0, x, activation="softplus")
        >>> K_inf = tl.kernels.quad_ntk(x, activation="softplus")
        >>> bool(jnp.linalg.norm(K - K_inf) < 0.1 * jnp.linalg.norm(K_inf))
        True
    """
    _act.require_order(activation, 2, "the QuadNTK")
    check_movement(params0)
    return _higher_order.order_k_ntk(params0, x1, x2, activation=activation, k=2)


def to_movement(V: Float[Array, "m d"], k: int = 2) -> Float[Array, "m d"]:
    r"""Map the width-free parametrization ``V`` to the movement :math:`W = m^{-1/(2k)} V` of the k-th order
    regime (``k = 2``: the quadratic regime :math:`\|w_r\|\sim m^{-1/4}`); ``m = V.shape[0]``.

    Example:
        >>> import jax.numpy as jnp
        >>> import taylorlib as tl
        >>> float(tl.quadratic.to_movement(jnp.ones((16, 2)))[0, 0])  # 16^(-1/4)
        0.5
    """
    k = check_int(k, "k", minimum=1)
    V = jnp.asarray(V)
    if V.ndim != 2:
        raise ValueError(f"V must be 2-D (m, d), got shape {tuple(V.shape)}")
    return V * V.shape[0] ** (-1.0 / (2 * k))


def from_movement(W: Float[Array, "m d"], k: int = 2) -> Float[Array, "m d"]:
    r"""Inverse of :func:`to_movement`: :math:`V = m^{1/(2k)} W`.

    Example:
        >>> import jax.numpy as jnp
        >>> import taylorlib as tl
        >>> W = tl.quadratic.to_movement(jnp.ones((81, 3)), k=2)
        >>> bool(jnp.allclose(tl.quadratic.from_movement(W, k=2), 1.0))
        True
    """
    k = check_int(k, "k", minimum=1)
    W = jnp.asarray(W)
    if W.ndim != 2:
        raise ValueError(f"W must be 2-D (m, d), got shape {tuple(W.shape)}")
    return W * W.shape[0] ** (1.0 / (2 * k))


def learning_rate(m: int, d: int, base: float = 1.0) -> float:
    r"""Learning rate for gradient descent on ``V`` (with :math:`W = m^{-1/4}V`): ``base * m / d``.

    In the ``V`` parametrization the gradient of :math:`f^Q` with respect to a row :math:`v_r` is
    :math:`a_r\sigma''(u_r)(v_r\cdot x)\,x/m = O(d/m)`, so a step ``base * m / d`` moves each row by O(base)
    whatever the width (theory notes §8, lesson 1).

    Example:
        >>> import taylorlib as tl
        >>> tl.quadratic.learning_rate(400, 40, base=0.5)
        5.0
    """
    m = check_int(m, "m", minimum=1)
    d = check_int(d, "d", minimum=1)
    base = check_positive(base, "base")
    return base * m / d
