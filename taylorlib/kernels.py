r"""Infinite-width kernels of :func:`taylorlib.nets.two_layer`.

Under the two-layer convention (:math:`w \sim \mathcal N(0, I_d/d)`, :math:`a_r = \pm 1`) the
pre-activations :math:`(u, u') = (w\cdot x, w\cdot x')` of a random neuron are jointly Gaussian
with covariance

.. math:: \Sigma = \frac1d \begin{pmatrix} \|x\|^2 & x\cdot x' \\ x\cdot x' & \|x'\|^2 \end{pmatrix},

and every kernel here is an expectation :math:`E[\sigma^{(j)}(u)\sigma^{(j)}(u')]` times a power
of :math:`x\cdot x'`. ReLU and erf use closed forms (arc-cosine and arcsine kernels); every other
activation uses two-dimensional quadrature (a Gaussian-weighted trapezoidal rule). Inputs need not
lie on the sphere.

References:
    Cho & Saul 2009 (arc-cosine kernels); Williams 1997 (erf kernel); Jacot et al. 2018
    (arXiv:1806.07572); Bai & Lee 2020 (arXiv:1910.01619) for the QuadNTK.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Sequence
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from . import activations as _act
from ._checks import check_hashable, check_int, check_pair, is_tracer
from ._closed_forms import _CLOSED_FORMS, _arccos, _correlation, _covariances, _relu_ntk  # noqa: F401
from .ntk import check_trainable
from .typing import Array, Float

__all__ = ["nngp", "ntk", "dual", "quad_ntk", "order_k_ntk"]

#: Quadrature nodes per dimension for :math:`\sigma^{(k)}` with ``k = 0`` and pre-activation variances
#: :math:`\|x\|^2/d \le 2`; for tanh and user callables each derivative order adds :data:`NODES_PER_ORDER` (see
#: ``_SMOOTH_ENOUGH``). The rule is the trapezoidal
#: rule on :math:`[-L, L]` (:data:`TRUNCATION`) with Gaussian weights: for an integrand analytic in a strip
#: :math:`|\mathrm{Im}\,z| < a` its error falls like :math:`e^{-2\pi a/h}`, much faster per node than
#: Gauss–Hermite's :math:`e^{-2a\sqrt{2q}}` (tanh has poles at :math:`u = \pm i\pi/2`, i.e.
#: :math:`a = \pi/(2\sqrt s)`; at :math:`s = 2` and ``k = 3`` 64 Gauss–Hermite nodes gave 1.7e-2 relative
#: error, 112 trapezoidal nodes 1e-10; the tails beyond :math:`L = 7.5` weigh 1e-13). Every built-in
#: activation is then accurate to float32 round-off for ``k <= 3`` (tests/test_kernels_accuracy.py). The
#: strip narrows like :math:`1/\sqrt s`, so :func:`dual` multiplies the node count by :math:`\sqrt 2` for
#: every doubling of :math:`\max_i \|x_i\|^2/d` beyond 2, up to :data:`MAX_NODES`. The level is chosen
#: by the same formula eagerly (from the concrete inputs, so that only the rule used is compiled) and
#: under ``jit`` (``lax.switch`` over the node sets), so both use the same nodes.
NUM_NODES = 64
NODES_PER_ORDER = 16
TRUNCATION = 7.5
#: Upper bound on the adaptive node count (accuracy degrades for :math:`\|x\|^2/d > 2 (512/64)^2`).
MAX_NODES = 512
#: Elements of the ``(rows, n2, q, q)`` quadrature block evaluated at once (memory bound).
_QUAD_BLOCK = 2**24
#: Upper bound of the node level an eager call passes on (above the level count of every rule).
_MAX_LEVEL = 16


@functools.lru_cache(maxsize=8)
def _hermite_nodes(q: int):
    r"""Nodes and weights (summing to 1) of the q-point Gauss rule for :math:`\mathcal N(0, 1)`.

    Golub–Welsch: the nodes are the eigenvalues of the Jacobi matrix of the probabilists' Hermite
    recurrence (off-diagonal :math:`\sqrt k`), the weights the squared first eigenvector components.
    Unlike ``numpy.polynomial.hermite_e.hermegauss`` this stays finite for q in the hundreds.
    """
    off = np.sqrt(np.arange(1, q, dtype=np.float64))
    z, v = np.linalg.eigh(np.diag(off, 1) + np.diag(off, -1))
    w = v[0] ** 2
    return z, w / w.sum()


#: Built-in activations whose derivatives need no extra nodes: entire functions (erf, gelu, quadratic) or
#: poles twice as far from the real axis as tanh's (softplus and smooth_relu2 at :math:`u = \pm i\pi`); 64
#: trapezoidal nodes keep them below 1e-12 for k <= 3 at :math:`\|x\|^2/d \le 2`. tanh and user callables
#: get :data:`NODES_PER_ORDER` more per derivative order.
_SMOOTH_ENOUGH = frozenset({"erf", "gelu", "quadratic", "softplus", "smooth_relu2", "relu"})


def _node_levels(k: int, name: str | None = None) -> tuple[int, ...]:
    r"""Node counts per level of :math:`\max\|x\|^2/d` (level l covers up to :math:`2^{l+1}`)."""
    base = NUM_NODES + (0 if name in _SMOOTH_ENOUGH else NODES_PER_ORDER * min(k, 4))
    levels = [base]
    while levels[-1] < MAX_NODES:
        levels.append(min(int(round(base * math.sqrt(2) ** len(levels))), MAX_NODES))
    return tuple(levels)


@functools.lru_cache(maxsize=32)
def _nodes(q: int):
    r"""Nodes and weights (summing to 1) of the q-point trapezoidal rule for :math:`\mathcal N(0, 1)`."""
    z = np.linspace(-TRUNCATION, TRUNCATION, q)
    w = np.exp(-0.5 * z * z)
    return z, w / w.sum()


def _level(s_max, num_levels):
    """Index of the node level for the largest variance ``s_max`` (works on floats and tracers)."""
    s_max = jnp.maximum(s_max, 2.0)
    return jnp.clip(jnp.ceil(jnp.log2(s_max / 2.0) - 1e-6), 0, num_levels - 1).astype(jnp.int32)


@functools.partial(jax.jit, static_argnames=("fn", "q", "batch"))
def _quadrature_dual(s11, s22, s12, fn, q, batch):
    z_np, w_np = _nodes(q)
    z = jnp.asarray(z_np, dtype=s12.dtype)
    w = jnp.asarray(w_np, dtype=s12.dtype)
    rho = _correlation(s11, s22, s12)
    sd1 = jnp.sqrt(jnp.maximum(s11, 0.0))
    sd2 = jnp.sqrt(jnp.maximum(s22, 0.0))
    f1 = fn(sd1[:, None] * z[None, :]) * w[None, :]  # (n1, q): weighted sigma(u) at nodes z_a

    def row(args):
        f1_i, rho_i = args  # (q,), (n2,)
        # u' = sd2 * (rho z_a + sqrt(1 - rho^2) z_b)
        c = jnp.sqrt(jnp.maximum(1.0 - rho_i**2, 0.0))
        up = sd2[:, None, None] * (
            rho_i[:, None, None] * z[None, :, None] + c[:, None, None] * z[None, None, :]
        )
        g = fn(up) @ w  # (n2, q): E over z_b
        return g @ f1_i

    return jax.lax.map(row, (f1, rho), batch_size=batch)


def _static_activation(activation: Any) -> _act.Activation:
    """The :class:`~taylorlib.activations.Activation` of ``activation``, checked to be hashable (it is a
    static argument of the jitted implementations, which are compiled once per activation)."""
    act = _act.get(activation)
    check_hashable(act.fn, "activation")
    return act


def _uses_quadrature(act: _act.Activation, k: int) -> bool:
    return _CLOSED_FORMS.get((act.name or "", k)) is None and k <= act.max_order


@jax.jit
def _level_of(x1, x2):
    s11, s22, _ = _covariances(x1, x1 if x2 is None else x2)
    return _level(jnp.maximum(jnp.max(s11), jnp.max(s22)), _MAX_LEVEL)


def _eager_level(x1, x2, act, ks) -> int | None:
    """The node level (:func:`_level`) of concrete inputs, so that an eager call compiles only the rule it
    uses; ``None`` for traced inputs (the jitted code then picks the level with ``lax.switch``, by the
    same formula) or when no order in ``ks`` uses quadrature."""
    if is_tracer(x1) or is_tracer(x2) or not any(_uses_quadrature(act, k) for k in ks):
        return None
    return int(_level_of(x1, x2))


def _dual(x1, x2, act, k, level=None):
    """:func:`dual` of validated inputs, traced inside the jitted implementations (``x2 = None``: ``x1``;
    ``level``: the node level from :func:`_eager_level`, or ``None`` to choose it on the device)."""
    same = x2 is None
    x2 = x1 if same else x2
    s11, s22, s12 = _covariances(x1, x2)
    closed = _CLOSED_FORMS.get((act.name or "", k))
    if closed is not None:
        return closed(k, s11, s22, s12, x1, x2, same)
    if k > act.max_order:
        return jnp.zeros_like(s12)
    fn = _act.derivative(act, k)
    levels = _node_levels(k, act.name)
    branches = [
        functools.partial(
            _quadrature_dual, fn=fn, q=q, batch=max(1, min(x1.shape[0], _QUAD_BLOCK // (x2.shape[0] * q * q)))
        )
        for q in levels
    ]
    if level is not None:
        return branches[min(level, len(levels) - 1)](s11, s22, s12)
    s_max = jnp.maximum(jnp.max(s11), jnp.max(s22))
    return jax.lax.switch(_level(s_max, len(levels)), branches, s11, s22, s12)


_dual_jit = functools.partial(jax.jit, static_argnames=("act", "k", "level"))(_dual)


def dual(
    x1: Float[Array, "n1 d"],
    x2: Float[Array, "n2 d"] | None = None,
    *,
    activation: Any = "relu",
    k: int = 0,
) -> Float[Array, "n1 n2"]:
    r"""The dual kernel :math:`E[\sigma^{(k)}(u)\sigma^{(k)}(u')]` of a random neuron.

    Args:
        x1: ``(n1, d)``; x2: ``(n2, d)`` or ``None``.
        activation: name or callable.
        k: derivative order ``k >= 0``.

    Returns:
        ``(n1, n2)`` matrix. Closed form for relu/erf (k ≤ 1) and quadratic; otherwise two-dimensional
        quadrature (trapezoidal rule with Gaussian weights) with :data:`NUM_NODES` nodes per dimension (plus
        k :data:`NODES_PER_ORDER` for tanh and user callables), times :math:`\sqrt 2` for every doubling of
        :math:`\max\|x\|^2/d` beyond 2 (up to :data:`MAX_NODES`); eager and jitted calls use the same nodes. A user callable is always
        integrated by quadrature, even if its ``__name__`` is that of a built-in.

    Example:
        >>> import jax.numpy as jnp
        >>> import taylorlib as tl
        >>> x = jnp.array([[1.0, 0.0], [0.0, 1.0]]) * jnp.sqrt(2.0)
        >>> tl.kernels.dual(x, activation="relu", k=1).round(4).tolist()  # (pi - theta) / (2 pi)
        [[0.5, 0.25], [0.25, 0.5]]
    """
    k = check_int(k, "k", minimum=0)
    x1, x2 = check_pair(x1, x2)
    act = _static_activation(activation)
    x2 = None if x2 is x1 else x2
    return _dual_jit(x1, x2, act=act, k=k, level=_eager_level(x1, x2, act, (k,)))


def nngp(
    x1: Float[Array, "n1 d"], x2: Float[Array, "n2 d"] | None = None, activation: Any = "relu"
) -> Float[Array, "n1 n2"]:
    r"""The NNGP kernel :math:`E[\sigma(u)\sigma(u')]` (the infinite-width ``a``-block of the NTK).

    Example:
        >>> import jax
        >>> import taylorlib as tl
        >>> x = tl.data.sphere(jax.random.key(0), 4, 10)
        >>> K = tl.kernels.nngp(x, activation="relu")
        >>> round(float(K[0, 0]), 4)  # E[relu(z)^2] = 1/2 for z ~ N(0, 1)
        0.5
    """
    return dual(x1, x2, activation=activation, k=0)


def ntk(
    x1: Float[Array, "n1 d"],
    x2: Float[Array, "n2 d"] | None = None,
    activation: Any = "relu",
    trainable: Sequence[str] = ("W", "a"),
) -> Float[Array, "n1 n2"]:
    r"""Infinite-width NTK of :func:`taylorlib.nets.two_layer`.

    .. math:: \Theta_\infty(x,x') = (x\cdot x')\,E[\sigma'(u)\sigma'(u')]\,[W] + E[\sigma(u)\sigma(u')]\,[a].

    Args:
        x1: ``(n1, d)``; x2: ``(n2, d)`` or ``None``.
        activation: name or callable.
        trainable: blocks to include, subset of ``("W", "a")``.

    Returns:
        ``(n1, n2)`` kernel.

    Example:
        >>> import jax, jax.numpy as jnp
        >>> import taylorlib as tl
        >>> x = tl.data.sphere(jax.random.key(0), 3, 5)
        >>> K = tl.kernels.ntk(x, activation="relu")
        >>> bool(jnp.allclose(jnp.diag(K), 5 * 0.5 + 0.5, atol=1e-5))  # d/2 + 1/2 on the sphere
        True

    References:
        Jacot et al. 2018 (arXiv:1806.07572); Cho & Saul 2009.
    """
    trainable = check_trainable(trainable)
    x1, x2 = check_pair(x1, x2)
    act = _static_activation(activation)
    x2 = None if x2 is x1 else x2
    ks = (1,) * ("W" in trainable) + (0,) * ("a" in trainable)
    level = None if act.name == "relu" else _eager_level(x1, x2, act, ks)
    return _ntk_jit(x1, x2, act=act, blocks=tuple(trainable), level=level)


@functools.partial(jax.jit, static_argnames=("act", "blocks", "level"))
def _ntk_jit(x1, x2, act, blocks, level):
    same = x2 is None
    if act.name == "relu":  # one fused pass (plus a fix-up of the collinear pairs, if any)
        return _relu_ntk(x1, x1 if same else x2, same=same, blocks=blocks)
    K = jnp.zeros((x1.shape[0], x1.shape[0] if same else x2.shape[0]), dtype=x1.dtype)
    if "W" in blocks:
        K = K + (x1 @ (x1 if same else x2).T) * _dual(x1, x2, act, 1, level)
    if "a" in blocks:
        K = K + _dual(x1, x2, act, 0, level)
    return K


def order_k_ntk(
    x1: Float[Array, "n1 d"], x2: Float[Array, "n2 d"] | None = None, *, activation: Any, k: int
) -> Float[Array, "n1 n2"]:
    r"""The k-th order kernel: the infinite-width Gram of the features of :math:`f^{(k)}`.

    .. math:: K_k(x,x') = \frac{(x\cdot x')^k\, E[\sigma^{(k)}(u)\sigma^{(k)}(u')]}{(k!)^2}.

    ``k = 1`` is the W-block of :func:`ntk`; ``k = 2`` is :func:`quad_ntk`.

    Raises:
        ValueError: ``k < 1``, or an activation whose k-th derivative vanishes (relu, k ≥ 2).

    Example:
        >>> import jax, jax.numpy as jnp
        >>> import taylorlib as tl
        >>> x = tl.data.sphere(jax.random.key(0), 4, 6)
        >>> K1 = tl.kernels.order_k_ntk(x, activation="erf", k=1)
        >>> bool(jnp.allclose(K1, tl.kernels.ntk(x, activation="erf", trainable=("W",))))
        True
    """
    k = check_int(k, "k", minimum=1)
    act = _static_activation(_act.require_order(activation, k, f"the order-{k} kernel"))
    x1, x2 = check_pair(x1, x2)
    x2 = None if x2 is x1 else x2
    return _order_k_jit(x1, x2, act=act, k=k, level=_eager_level(x1, x2, act, (k,)))


@functools.partial(jax.jit, static_argnames=("act", "k", "level"))
def _order_k_jit(x1, x2, act, k, level):
    return (x1 @ (x1 if x2 is None else x2).T) ** k * _dual(x1, x2, act, k, level) / math.factorial(k) ** 2


def quad_ntk(
    x1: Float[Array, "n1 d"], x2: Float[Array, "n2 d"] | None = None, *, activation: Any
) -> Float[Array, "n1 n2"]:
    r"""Infinite-width QuadNTK, :math:`(x\cdot x')^2 E[\sigma''(u)\sigma''(u')]/4`.

    The m → ∞ limit of :func:`taylorlib.quadratic.quad_ntk`.

    Example:
        >>> import jax, jax.numpy as jnp
        >>> import taylorlib as tl
        >>> x = tl.data.sphere(jax.random.key(0), 3, 4)
        >>> K = tl.kernels.quad_ntk(x, activation="quadratic")  # sigma'' = 2: K = (x.x')^2
        >>> bool(jnp.allclose(K, (x @ x.T) ** 2, rtol=1e-5))
        True

    References:
        Bai & Lee 2020 (arXiv:1910.01619); Nichani, Bai & Lee 2022 (arXiv:2206.03688).
    """
    return order_k_ntk(x1, x2, activation=activation, k=2)
