r"""Taylor expansion of any network in parameter space.

For a direction :math:`\Delta` (``dparams``) the k-th Taylor term of ``apply`` around
:math:`\theta_0` (``params0``) is

.. math:: f^{(k)}(x) = \frac{1}{k!} \frac{d^k}{dt^k} f_{\theta_0 + t\Delta}(x) \Big|_{t=0},

so that :math:`f_{\theta_0+\Delta} = \sum_k f^{(k)}` for analytic networks. Two independent
implementations are offered: nested forward-mode ``jax.jvp`` (``method="jvp"``, the default)
and Taylor-mode ``jax.experimental.jet`` (``method="jet"``; this is the only module that
imports it). Compiled functions are cached per ``(apply, order, method)``.

References:
    Bai & Lee 2020 (arXiv:1910.01619); Bettencourt, Johnson & Duvenaud 2019, *Taylor-mode
    automatic differentiation for higher-order derivatives in JAX*.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Callable
from typing import Any

import jax
import jax.numpy as jnp

from . import _tree
from ._checks import (
    check_callable,
    check_choice,
    check_finite,
    check_float_leaves,
    check_int,
    check_same_structure,
)
from .typing import ApplyFn, Array, Float, Params

__all__ = ["taylor_terms", "taylor_expand", "taylor_term", "linearize"]

_METHODS = ("jvp", "jet")


def _line(apply: ApplyFn, params0: Params, dparams: Params, x: Any) -> Callable:
    def g(t):
        return apply(jax.tree_util.tree_map(lambda p, v: p + t * v, params0, dparams), x)

    return g


def _all_derivatives(g: Callable, order: int) -> Callable:
    """``t -> (g(t), g'(t), ..., g^(order)(t))`` by nested jvp; XLA dedupes repeated work."""
    if order == 0:
        return lambda t: (g(t),)
    inner = _all_derivatives(g, order - 1)

    def h(t):
        primals, tangents = jax.jvp(inner, (t,), (jnp.ones_like(t),))
        return (*primals, tangents[-1])

    return h


def _terms_jvp(apply, order, params0, dparams, x):
    leaves = jax.tree_util.tree_leaves(params0)
    t0 = jnp.zeros((), dtype=jnp.result_type(*leaves) if leaves else float)
    derivs = _all_derivatives(_line(apply, params0, dparams, x), order)(t0)
    return tuple(dk / math.factorial(k) for k, dk in enumerate(derivs))


def _terms_jet(apply, order, params0, dparams, x):
    from jax.experimental import jet

    if order == 0:
        return (apply(params0, x),)
    # jet wants flat arrays: ravel the pytrees into one parameter vector.
    flat0, unravel = _tree.tree_ravel(params0)
    flat_d, _ = _tree.tree_ravel(dparams)
    series = (flat_d,) + (jnp.zeros_like(flat_d),) * (order - 1)
    y0, ys = jet.jet(lambda v: apply(unravel(v), x), (flat0,), (series,))
    return (y0,) + tuple(yk / math.factorial(k + 1) for k, yk in enumerate(ys))


@functools.lru_cache(maxsize=256)
def _compiled(apply: ApplyFn, order: int, method: str) -> Callable:
    impl = _terms_jvp if method == "jvp" else _terms_jet
    return jax.jit(functools.partial(impl, apply, order))


def taylor_terms(
    apply: ApplyFn,
    params0: Params,
    dparams: Params,
    x: Float[Array, "n d"],
    order: int,
    method: str = "jvp",
) -> tuple[Float[Array, " n"], ...]:
    r"""All Taylor terms :math:`f^{(0)}, \dots, f^{(K)}` of ``apply`` along ``dparams``.

    .. math:: f^{(k)}(x) = \frac{1}{k!}\,\partial_t^k\, f_{\theta_0 + t\Delta}(x)\big|_{t=0}.

    Args:
        apply: any ``apply(params, x)``.
        params0: expansion point :math:`\theta_0` (pytree).
        dparams: direction :math:`\Delta`, same structure and shapes as ``params0``.
        x: inputs passed to ``apply``, typically ``(n, d)``.
        order: highest order ``K >= 0``.
        method: ``"jvp"`` (nested forward mode) or ``"jet"`` (Taylor mode).

    Returns:
        Tuple of ``K + 1`` arrays shaped like ``apply(params0, x)``; ``terms[k]`` already
        includes the ``1/k!``.

    Raises:
        ValueError: bad ``order``/``method``, mismatched pytrees, or ``method="jet"`` on a
            function that ``jet`` cannot differentiate (use ``method="jvp"``).

    Example:
        >>> import jax, jax.numpy as jnp
        >>> import taylorlib as tl
        >>> net = tl.nets.two_layer(4, activation="quadratic")
        >>> p0 = net.init(jax.random.key(0), 2)
        >>> dp = {"W": jnp.ones((4, 2)), "a": jnp.zeros(4)}
        >>> x = jnp.array([[1.0, 0.0]])
        >>> terms = tl.taylor.taylor_terms(net.apply, p0, dp, x, order=3)
        >>> [round(float(t[0]), 5) for t in terms][2:]   # f2 = (1/sqrt m) sum a_r (w_r.x)^2 = 0
        [0.0, 0.0]
        >>> full = net.apply({"W": p0["W"] + dp["W"], "a": p0["a"]}, x)
        >>> bool(jnp.allclose(sum(terms), full, atol=1e-5))
        True

    References:
        Bai & Lee 2020 (arXiv:1910.01619), eq. for :math:`f^{(k)}_{W_0,W}`.
    """
    order = check_int(order, "order", minimum=0)
    method = check_choice(method, "method", _METHODS)
    if not callable(apply):
        raise TypeError(f"apply must be callable, got {type(apply).__name__}")
    check_same_structure(params0, dparams, "params0", "dparams")
    # host-side only (skipped under tracing): inside the jitted terms the network's own checks are traced
    check_float_leaves(params0, "params0")
    check_float_leaves(dparams, "dparams", allow_int=True)
    if hasattr(x, "dtype") and jnp.issubdtype(x.dtype, jnp.inexact):
        check_finite(x, "x")
    fn = _compiled(apply, order, method)
    if method == "jvp":
        return fn(params0, dparams, x)
    try:
        return fn(params0, dparams, x)
    except (NotImplementedError, KeyError, TypeError) as e:
        # jet raises KeyError (no rule for a primitive, e.g. cond), NotImplementedError, or an
        # UnexpectedTracerError (a TypeError) on custom_jvp functions such as jax.nn.relu/softplus.
        first_line = (str(e).strip().splitlines() or [""])[0][:200]
        raise ValueError(
            f"method='jet' cannot propagate Taylor series through this function "
            f"({type(e).__name__}: {first_line}); jax.experimental.jet lacks rules for some primitives "
            "and custom_jvp functions (e.g. jax.nn.relu, jax.nn.softplus, lax.cond). Use method='jvp' "
            "(or a taylorlib.activations built-in, which jet supports)."
        ) from e


def taylor_expand(apply: ApplyFn, params0: Params, order: int, method: str = "jvp") -> ApplyFn:
    r"""The order-K Taylor model :math:`g(\theta, x) = \sum_{k\le K} f^{(k)}(x)` along
    :math:`\theta - \theta_0`.

    Args:
        apply: any ``apply(params, x)``.
        params0: expansion point.
        order: ``K >= 0``.
        method: ``"jvp"`` or ``"jet"``.

    Returns:
        ``g(params, x)`` with the signature of ``apply``.

    Example:
        >>> import jax, jax.numpy as jnp
        >>> import taylorlib as tl
        >>> net = tl.nets.two_layer(6, activation="quadratic", symmetric=False)
        >>> p0 = net.init(jax.random.key(1), 3)
        >>> p = jax.tree_util.tree_map(lambda v: v + 0.3, p0)
        >>> x = jnp.ones((2, 3))
        >>> g2 = tl.taylor.taylor_expand(net.apply, p0, order=3)  # exact: the net is cubic in p
        >>> bool(jnp.allclose(g2(p, x), net.apply(p, x), atol=1e-4))
        True
    """
    order = check_int(order, "order", minimum=0)
    method = check_choice(method, "method", _METHODS)
    check_callable(apply, "apply")

    def g(params, x):
        check_same_structure(params0, params, "params0", "params")
        terms = taylor_terms(apply, params0, _tree.tree_sub(params, params0), x, order, method)
        return functools.reduce(jnp.add, terms)

    return g


def taylor_term(apply: ApplyFn, params0: Params, k: int, method: str = "jvp") -> ApplyFn:
    r"""The k-th Taylor term alone, :math:`h(\theta, x) = f^{(k)}(x)` along :math:`\theta-\theta_0`.

    ``taylor_term(apply, params0, 2)`` is the quadratic model :math:`f^Q`.

    Example:
        >>> import jax, jax.numpy as jnp
        >>> import taylorlib as tl
        >>> net = tl.nets.two_layer(4, activation="quadratic")
        >>> p0 = net.init(jax.random.key(0), 2)
        >>> h1 = tl.taylor.taylor_term(net.apply, p0, 1)
        >>> float(h1(p0, jnp.ones((1, 2)))[0])  # zero movement: zero term
        0.0
    """
    k = check_int(k, "k", minimum=0)
    method = check_choice(method, "method", _METHODS)
    check_callable(apply, "apply")

    def h(params, x):
        check_same_structure(params0, params, "params0", "params")
        return taylor_terms(apply, params0, _tree.tree_sub(params, params0), x, k, method)[k]

    return h


def linearize(apply: ApplyFn, params0: Params) -> ApplyFn:
    r"""The linearized (NTK) model :math:`f_{\theta_0} + \langle \nabla_\theta f_{\theta_0}, \theta-\theta_0\rangle`.

    Equal to ``taylor_expand(apply, params0, order=1)``, computed with a single ``jax.jvp``.

    Example:
        >>> import jax, jax.numpy as jnp
        >>> import taylorlib as tl
        >>> net = tl.nets.two_layer(4, activation="tanh", symmetric=False)
        >>> p0 = net.init(jax.random.key(0), 2)
        >>> lin = tl.taylor.linearize(net.apply, p0)
        >>> x = jnp.ones((3, 2))
        >>> bool(jnp.allclose(lin(p0, x), net.apply(p0, x)))
        True
    """
    check_callable(apply, "apply")

    def lin(params, x):
        check_same_structure(params0, params, "params0", "params")
        return _linearized(apply, params0, params, x)

    return lin


@functools.partial(jax.jit, static_argnums=(0,))
def _linearized(apply, params0, params, x):
    # params0 is an argument, not a closure constant: large networks are not baked into the program
    dparams = _tree.tree_sub(params, params0)
    y0, dy = jax.jvp(lambda p: apply(p, x), (params0,), (dparams,))
    return y0 + dy
