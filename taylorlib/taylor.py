r"""Taylor expansion of any network in parameter space.

For a direction :math:`\Delta` (``dparams``) the k-th Taylor term of ``apply`` around
:math:`\theta_0` (``params0``) is

.. math:: f^{(k)}(x) = \frac{1}{k!} \frac{d^k}{dt^k} f_{\theta_0 + t\Delta}(x) \Big|_{t=0},

so that :math:`f_{\theta_0+\Delta} = \sum_k f^{(k)}` for analytic networks. Two independent
implementations are offered, and ``method="auto"`` (the default) picks between them:

* ``"jvp"``: nested forward mode, ``jax.jvp`` of ``jax.jvp`` ... along :math:`\Delta`. Works on
  any JAX-differentiable ``apply``. Cost: order 1 is one forward-mode pass (about 2-3 forward
  passes of the network, the same program as :func:`linearize`); each further order nests one
  more ``jvp`` and doubles the work before XLA's common-subexpression elimination, so order
  :math:`K` costs up to :math:`\sim 2^K` forward passes.
* ``"jet"``: Taylor mode (``jax.experimental.jet``; imported only by this module's private
  implementation, ``taylorlib._jet``).
  One pass propagates the whole series :math:`(f^{(0)}, \dots, f^{(K)})`; a product costs
  :math:`(K+1)(K+2)/2` products of the primal size, so order :math:`K` costs about
  :math:`(K+1)(K+2)/2` forward passes (matrix products dominate a network). Before ``jet`` sees
  ``apply``, the program is traced once and its custom-derivative calls (``jax.custom_jvp``,
  ``jax.custom_vjp``, e.g. ``jax.nn.relu``, ``jax.nn.softplus``) and nested ``jit`` calls are
  replaced by their primal bodies, so ``jet`` expands the function the network actually computes.
  A program with a primitive ``jet`` has no rule for (``lax.cond``, ``lax.scan``,
  ``stop_gradient``, ...) is refused with a ``ValueError``.
* ``"auto"``: order 1 with one ``jvp`` (the cheapest exact first-order term); orders
  :math:`\ge 2` with ``jet`` when ``jet`` can trace ``apply`` (checked once per ``apply``, order
  and input shapes, by an abstract trace that compiles nothing), else with nested ``jvp``.

A training step differentiates the terms once more in reverse mode, which multiplies each cost
above by the usual factor of about 3 (book/performance.md reports measured ratios). Compiled
functions are cached per ``(apply, order, method)``.

Custom derivative rules: ``jet`` differentiates the *primal* implementation of a
``jax.custom_jvp`` function, nested ``jvp`` uses its custom rule. The two agree wherever the rule
is the derivative of the primal (true for the activations of :mod:`taylorlib.activations` and
``jax.nn`` away from their kinks, which the tests check to float64 precision at orders 1-4); a
custom rule that deliberately differs from the primal's derivative (a straight-through
estimator, say) is honoured only by ``method="jvp"``.

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
from ._jet import _as_tangent, _terms_jet
from .typing import ApplyFn, Array, Float, Params

__all__ = ["taylor_terms", "taylor_expand", "taylor_term", "linearize", "resolve_method"]

_METHODS = ("auto", "jvp", "jet")


def _nested_jvp(f: Callable, direction: Any, order: int) -> Callable:
    """``p -> (f(p), D f(p)[v], ..., D^order f(p)[v, ..., v])`` by nested jvp along ``v``.

    The direction enters only as a tangent, so the primal ``f(p)`` does not depend on it (a
    gradient with respect to ``v`` does not run the network's own backward pass).
    """
    if order == 0:
        return lambda p: (f(p),)
    inner = _nested_jvp(f, direction, order - 1)

    def h(p):
        primals, tangents = jax.jvp(inner, (p,), (direction,))
        return (*primals, tangents[-1])

    return h


def _terms_jvp(apply, order, params0, dparams, x):
    dparams = _as_tangent(params0, dparams)
    derivs = _nested_jvp(lambda p: apply(p, x), dparams, order)(params0)
    return tuple(dk / math.factorial(k) for k, dk in enumerate(derivs))


_IMPLS = {"jvp": _terms_jvp, "jet": _terms_jet}


@functools.lru_cache(maxsize=256)
def _compiled(apply: ApplyFn, order: int, method: str) -> Callable:
    return jax.jit(functools.partial(_IMPLS[method], apply, order))


def _abstract(tree: Any) -> Any:
    return jax.tree_util.tree_map(lambda v: jax.ShapeDtypeStruct(jnp.shape(v), jnp.result_type(v)), tree)


def _signature(tree: Any) -> Any:
    leaves, treedef = jax.tree_util.tree_flatten(tree)
    return treedef, tuple((jnp.shape(v), str(jnp.result_type(v))) for v in leaves)


#: Exceptions by which jet (or the inlining trace) says it cannot expand a program: KeyError (no rule
#: for a primitive, e.g. cond), NotImplementedError, TypeError (e.g. an escaped tracer) and ValueError.
_JET_ERRORS = (NotImplementedError, KeyError, TypeError)


@functools.lru_cache(maxsize=512)
def _jet_applies(apply: ApplyFn, order: int, signature: Any, example: Any) -> bool:
    params0, dparams, x = example.value
    try:
        jax.eval_shape(functools.partial(_terms_jet, apply, order), params0, dparams, x)
    except (*_JET_ERRORS, ValueError):
        return False
    return True


class _Hashless:
    """Holds abstract example arguments in the lru cache key without taking part in hashing."""

    __slots__ = ("value",)

    def __init__(self, value):
        self.value = value

    def __hash__(self):
        return 0

    def __eq__(self, other):
        return isinstance(other, _Hashless)


def _resolve(method: str, apply: ApplyFn, order: int, params0: Params, dparams: Params, x: Any) -> str:
    """The implementation ``method`` stands for on these arguments (``"auto"`` decides here)."""
    if method != "auto":
        return method
    if order <= 1:
        return "jvp"
    example = (_abstract(params0), _abstract(dparams), _abstract(x))
    try:
        sig = _signature(example)
        hash(sig)
    except TypeError:  # x is not a pytree of arrays: decide without caching
        sig = None
    if sig is None:
        return "jet" if _jet_applies.__wrapped__(apply, order, None, _Hashless(example)) else "jvp"
    return "jet" if _jet_applies(apply, order, sig, _Hashless(example)) else "jvp"  # type: ignore[arg-type]


def resolve_method(apply: ApplyFn, params0: Params, x: Any, order: int, method: str = "auto") -> str:
    """The implementation (``"jvp"`` or ``"jet"``) that ``method`` selects for ``apply`` at ``order``.

    Args:
        apply: any ``apply(params, x)``.
        params0: expansion point (pytree).
        x: inputs passed to ``apply``.
        order: highest order ``K >= 0``.
        method: ``"auto"``, ``"jvp"`` or ``"jet"``.

    Returns:
        ``"jvp"`` or ``"jet"``.

    Example:
        >>> import jax, jax.numpy as jnp
        >>> import taylorlib as tl
        >>> net = tl.nets.two_layer(4, activation="tanh")
        >>> p0, x = net.init(jax.random.key(0), 2), jnp.ones((3, 2))
        >>> [tl.taylor.resolve_method(net.apply, p0, x, k) for k in (1, 3)]
        ['jvp', 'jet']
        >>> cond = lambda p, x: jax.lax.cond(True, net.apply, net.apply, p, x)  # no jet rule for cond
        >>> tl.taylor.resolve_method(cond, p0, x, 3)
        'jvp'
    """
    order = check_int(order, "order", minimum=0)
    method = check_choice(method, "method", _METHODS)
    check_callable(apply, "apply")
    return _resolve(method, apply, order, params0, params0, x)


def taylor_terms(
    apply: ApplyFn,
    params0: Params,
    dparams: Params,
    x: Float[Array, "n d"],
    order: int,
    method: str = "auto",
) -> tuple[Float[Array, " n"], ...]:
    r"""All Taylor terms :math:`f^{(0)}, \dots, f^{(K)}` of ``apply`` along ``dparams``.

    .. math:: f^{(k)}(x) = \frac{1}{k!}\,\partial_t^k\, f_{\theta_0 + t\Delta}(x)\big|_{t=0}.

    Args:
        apply: any ``apply(params, x)``.
        params0: expansion point :math:`\theta_0` (pytree).
        dparams: direction :math:`\Delta`, same structure and shapes as ``params0``.
        x: inputs passed to ``apply``, typically ``(n, d)``.
        order: highest order ``K >= 0``.
        method: ``"auto"`` (default: one ``jvp`` at order 1, ``jet`` at higher orders when it
            applies, else ``jvp``), ``"jvp"`` (nested forward mode, up to ``~2^K`` forward
            passes) or ``"jet"`` (Taylor mode, about ``(K+1)(K+2)/2`` forward passes); see the
            module docstring for the costs.

    Returns:
        Tuple of ``K + 1`` arrays shaped like ``apply(params0, x)``; ``terms[k]`` already
        includes the ``1/k!``.

    Raises:
        ValueError: bad ``order``/``method``, mismatched pytrees, or ``method="jet"`` on a
            function that ``jet`` cannot differentiate (use ``method="jvp"`` or ``"auto"``).

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
    method = _resolve(method, apply, order, params0, dparams, x)
    fn = _compiled(apply, order, method)  # type: ignore[arg-type]  # apply functions are hashable
    if method == "jvp":
        return fn(params0, dparams, x)
    try:
        return fn(params0, dparams, x)
    except _JET_ERRORS as e:
        # jet raises KeyError (no rule for a primitive, e.g. cond or stop_gradient),
        # NotImplementedError, or a TypeError on programs it cannot expand.
        first_line = (str(e).strip().splitlines() or [""])[0][:200]
        raise ValueError(
            f"method='jet' cannot propagate Taylor series through this function "
            f"({type(e).__name__}: {first_line}); jax.experimental.jet lacks rules for some primitives "
            "(e.g. lax.cond, lax.scan, stop_gradient). Use method='jvp' or method='auto' (which falls "
            "back to jvp)."
        ) from e


def taylor_expand(apply: ApplyFn, params0: Params, order: int, method: str = "auto") -> ApplyFn:
    r"""The order-K Taylor model :math:`g(\theta, x) = \sum_{k\le K} f^{(k)}(x)` along
    :math:`\theta - \theta_0`.

    The model is trainable: ``jax.grad`` of a loss of ``g`` differentiates the Taylor terms in
    reverse mode. Cost of one evaluation, in forward passes of ``apply``: about 2-3 at order 1
    (one ``jvp``, as :func:`linearize`); about :math:`(K+1)(K+2)/2` with ``"jet"``; up to
    :math:`2^K` with nested ``"jvp"``. A gradient step costs about 3 times its evaluation.
    ``"auto"`` (the default) takes ``jvp`` at order 1 and ``jet`` above when ``jet`` applies.

    Args:
        apply: any ``apply(params, x)``.
        params0: expansion point.
        order: ``K >= 0``.
        method: ``"auto"``, ``"jvp"`` or ``"jet"`` (see :func:`taylor_terms`).

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


def taylor_term(apply: ApplyFn, params0: Params, k: int, method: str = "auto") -> ApplyFn:
    r"""The k-th Taylor term alone, :math:`h(\theta, x) = f^{(k)}(x)` along :math:`\theta-\theta_0`.

    ``taylor_term(apply, params0, 2)`` is the quadratic model :math:`f^Q`. It computes all terms up
    to ``k`` (the cost of :func:`taylor_expand` at order ``k``) and keeps the last.

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

    Equal to ``taylor_expand(apply, params0, order=1)``, computed with a single ``jax.jvp``: an
    evaluation costs about 2-3 forward passes of ``apply``, a gradient step about 3 times that.

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
