r"""Taylor terms by Taylor-mode AD (``jax.experimental.jet``) for :mod:`taylorlib.taylor` (private; used by
``tl.taylor.taylor_terms(..., method="jet")``): a jaxpr interpreter that inlines call primitives, broadcasts
scalar operands of elementwise primitives and propagates the Taylor coefficients equation by equation."""

from __future__ import annotations

import functools
from typing import Any

import jax
import jax.numpy as jnp


def _as_tangent(params0, dparams):
    return jax.tree_util.tree_map(lambda p, d: jnp.asarray(d, jnp.result_type(p)), params0, dparams)


#: Elementwise primitives whose scalar operands are broadcast before ``jet`` sees them (its rules for
#: ``max``, ``min`` and ``select_n`` assume operands of equal shape, while jitted ``jax.nn`` code
#: writes ``max x 0.0:f32[]``).
_ELEMENTWISE = frozenset(
    {"max", "min", "select_n", "add", "sub", "mul", "div", "pow", "atan2", "rem", "nextafter"}
    | {"eq", "ne", "lt", "le", "gt", "ge", "and", "or", "xor"}
)
#: Call primitives replaced by their bodies (their names in jaxprs; ``pjit`` in older releases).
_INLINE = frozenset({"custom_jvp_call", "custom_vjp_call", "custom_vjp_call_jaxpr", "jit", "pjit"})


def _body(eqn) -> Any:
    """The primal body (a ClosedJaxpr or Jaxpr) of a call equation."""
    for name in ("call_jaxpr", "fun_jaxpr", "jaxpr"):
        if name in eqn.params:
            return eqn.params[name]
    raise KeyError(f"no body found for {eqn.primitive.name}")


def _zeros(primal):
    return jnp.zeros(jnp.shape(primal), jnp.result_type(primal))


def _linear_rule(prim, primals, series, params, order, out_shape):
    """A linear primitive, term by term; a term that is zero in every input stays symbolic."""
    out_terms = []
    for k in range(order):
        ins = [None if s is None else s[k] for s in series]
        if all(t is None for t in ins):
            out_terms.append(None)
        elif prim.name in ("add", "sub") and any(t is None for t in ins):
            t = ins[0] if ins[1] is None else ins[1]
            t = -t if (prim.name == "sub" and ins[0] is None) else t
            out_terms.append(jnp.broadcast_to(t, out_shape))
        else:
            full = [_zeros(p) if t is None else t for p, t in zip(primals, ins, strict=True)]
            out_terms.append(prim.bind(*full, **params))
    return out_terms


def _bilinear_rule(prim, primals, series, params, order):
    """``dot_general``, ``mul``, ``conv``: the Cauchy product, skipping symbolic zero terms.

    With a weight whose series is ``(W0, dW, 0, ..., 0)`` and an input series of ``K + 1`` terms, term
    ``k`` costs two products instead of ``k + 1``.
    """
    u = [primals[0]] + (series[0] if series[0] is not None else [None] * order)
    w = [primals[1]] + (series[1] if series[1] is not None else [None] * order)
    out = []
    for k in range(1, order + 1):
        parts = [
            prim.bind(u[j], w[k - j], **params)
            for j in range(k + 1)
            if u[j] is not None and w[k - j] is not None
        ]
        out.append(functools.reduce(jnp.add, parts) if parts else None)
    return out


_BILINEAR = frozenset({"dot_general", "mul", "conv_general_dilated"})


def _taylor_eval(jaxpr, consts, primals_in, series_in, order):
    """Taylor-mode evaluation of ``jaxpr`` on truncated series with symbolic zeros.

    Every value carries its primal and ``order`` Taylor coefficients (coefficient ``k`` multiplies
    ``t^k``; a ``None`` term, or ``None`` for the whole series, is an exact zero that costs nothing).
    Linear and bilinear primitives are propagated here so zero terms are skipped; every other primitive
    uses the rule of ``jax.experimental.jet`` on explicit zeros. Calls in :data:`_INLINE` (custom
    derivatives, nested jit) are replaced by their primal bodies.
    """
    from jax.experimental import jet
    from jax.extend import core as jcore

    env: dict = {}

    def read(v):
        return (v.val, None) if isinstance(v, jcore.Literal) else env[v]

    for v, val in zip(jaxpr.constvars, consts, strict=True):
        env[v] = (val, None)
    for v, val, ser in zip(jaxpr.invars, primals_in, series_in, strict=True):
        env[v] = (val, ser)
    for eqn in jaxpr.eqns:
        vals = [read(v) for v in eqn.invars]
        primals = [p for p, _ in vals]
        series = [None if s is None or all(t is None for t in s) else s for _, s in vals]
        prim, name, params = eqn.primitive, eqn.primitive.name, eqn.params
        if name in _INLINE:
            body = _body(eqn)
            closed_consts = body.consts if isinstance(body, jcore.ClosedJaxpr) else ()
            body = body.jaxpr if isinstance(body, jcore.ClosedJaxpr) else body
            outs = _taylor_eval(body, closed_consts, primals, series, order)
        else:
            multiple = prim.multiple_results
            if name in _ELEMENTWISE and not multiple:
                shape = eqn.outvars[0].aval.shape
                bcast = lambda v, shape=shape: (
                    jnp.broadcast_to(v, shape) if v is not None and jnp.ndim(v) == 0 and shape != () else v
                )
                primals = [bcast(p) for p in primals]
                series = [None if s is None else [bcast(t) for t in s] for s in series]
            if all(s is None for s in series):
                out = prim.bind(*primals, **params)
                outs = [(o, None) for o in out] if multiple else [(out, None)]
            else:
                rule = jet.jet_rules.get(prim)
                if rule is None:
                    raise NotImplementedError(f"jax.experimental.jet has no Taylor rule for '{name}'")
                is_linear = isinstance(rule, functools.partial) and rule.func is jet.linear_prop
                if name in _BILINEAR:
                    out_p = prim.bind(*primals, **params)
                    outs = [(out_p, _bilinear_rule(prim, primals, series, params, order))]
                elif is_linear and not multiple:
                    out_p = prim.bind(*primals, **params)
                    shape = eqn.outvars[0].aval.shape
                    outs = [(out_p, _linear_rule(prim, primals, series, params, order, shape))]
                else:
                    full = [
                        [_zeros(p)] * order if s is None else [_zeros(p) if t is None else t for t in s]
                        for p, s in zip(primals, series, strict=True)
                    ]
                    out_p, out_s = rule(primals, full, **params)
                    if multiple:
                        outs = [
                            (o, None if isinstance(t, jet.ZeroSeries) else list(t))
                            for o, t in zip(out_p, out_s, strict=True)
                        ]
                    else:
                        outs = [(out_p, None if isinstance(out_s, jet.ZeroSeries) else list(out_s))]
        for v, val in zip(eqn.outvars, outs, strict=True):
            env[v] = val
    return [read(v) for v in jaxpr.outvars]


def _terms_jet(apply, order, params0, dparams, x):
    if order == 0:
        return (apply(params0, x),)
    leaves0 = jax.tree_util.tree_leaves(params0)
    leaves_d = jax.tree_util.tree_leaves(_as_tangent(params0, dparams))
    closed = jax.make_jaxpr(apply)(params0, x)
    out_tree = jax.tree_util.tree_structure(jax.eval_shape(apply, params0, x))
    x_leaves = jax.tree_util.tree_leaves(x)
    # the line theta0 + t dparams: series (dparams, 0, ..., 0) for the parameters, zero for the inputs
    series = [[d] + [None] * (order - 1) for d in leaves_d] + [None] * len(x_leaves)
    outs = _taylor_eval(closed.jaxpr, closed.consts, [*leaves0, *x_leaves], series, order)
    terms = [[p for p, _ in outs]] + [
        [_zeros(p) if s is None or s[k] is None else s[k] for p, s in outs] for k in range(order)
    ]
    return tuple(jax.tree_util.tree_unflatten(out_tree, t) for t in terms)
