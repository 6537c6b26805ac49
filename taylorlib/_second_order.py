r"""The second-order NTK of any network (private; public as ``tl.quadratic.second_order_ntk``).

The quadratic model :math:`f^Q_\Delta(x) = \tfrac12\Delta^\top \nabla^2_\theta f(x)\,\Delta` is linear in
:math:`\Delta\Delta^\top` with features :math:`\tfrac12\nabla^2_\theta f(x)`, whose Gram is

.. math:: K_Q(x, x') = \tfrac14\,\langle \nabla^2_\theta f(x), \nabla^2_\theta f(x')\rangle_F .

``method="exact"`` forms per-sample Hessians of the selected parameters; ``method="sketch"`` is
Hutchinson's estimator :math:`\tfrac14\,\frac1S\sum_s (H v_s)\cdot(H' v_s)` with Rademacher probes
(:math:`E\,v v^\top = I`, so :math:`E\,(Hv)\cdot(H'v) = \mathrm{tr}(H H') = \langle H, H'\rangle_F`
exactly: the estimator is unbiased), from Hessian-vector products only.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
from jax.flatten_util import ravel_pytree

from ._checks import check_callable, check_choice, check_float_leaves, check_int, check_key
from .typing import ApplyFn, Array, Params, PRNGKeyArray

#: Default memory budget of ``method="exact"`` (bytes): 1 GiB.
MAX_BYTES = 2**30


class KernelEstimate(NamedTuple):
    """A Monte Carlo kernel estimate.

    Attributes:
        kernel: ``(n1, n2)`` the estimate (unbiased).
        stderr: ``(n1, n2)`` its standard error, the sample standard deviation over probes / sqrt(probes).
    """

    kernel: Array
    stderr: Array


def _select(params: Params, wrt: Callable | None) -> tuple[list[int], Any]:
    flat, treedef = jax.tree_util.tree_flatten_with_path(params)
    if wrt is not None:
        check_callable(wrt, "wrt")
    idx = [i for i, (path, leaf) in enumerate(flat) if wrt is None or bool(wrt(path, leaf))]
    if not idx or sum(int(jnp.size(flat[i][1])) for i in idx) == 0:
        raise ValueError(
            "wrt selects no parameter: it must return True for at least one non-empty leaf of params "
            f"(leaf paths and shapes: {[(jax.tree_util.keystr(p), tuple(jnp.shape(v))) for p, v in flat]})"
        )
    return idx, treedef


def _sample_fn(apply, params, idx):
    """``g(theta_s, x_i) -> (k,)`` with the selected leaves raveled into ``theta_s``."""
    leaves, treedef = jax.tree_util.tree_flatten(params)
    theta, unravel = ravel_pytree([leaves[i] for i in idx])

    def g(t, xi):
        new = list(leaves)
        for i, v in zip(idx, unravel(t), strict=True):
            new[i] = v
        p = jax.tree_util.tree_unflatten(treedef, new)
        y = apply(p, jax.tree_util.tree_map(lambda a: a[None], xi))[0]
        return jnp.reshape(y, (-1,))

    return g, theta


@functools.partial(jax.jit, static_argnums=(0, 1))
def _hessian_block(apply, idx, params, x1, x2):
    # apply and the selected leaf indices are static (stable across calls: one compilation per shape)
    g, theta = _sample_fn(apply, params, idx)
    hess = jax.vmap(jax.hessian(g), in_axes=(None, 0))
    h1 = hess(theta, x1)  # (c1, k, p, p)
    h2 = h1 if x2 is None else hess(theta, x2)
    k = h1.shape[1]
    return h1.reshape(h1.shape[0], -1) @ h2.reshape(h2.shape[0], -1).T / (4 * k)


@functools.partial(jax.jit, static_argnums=(0, 1))
def _sketch(apply, idx, params, x1, x2, keys):
    g, theta = _sample_fn(apply, params, idx)

    def hv(xi, v):
        return jax.jvp(lambda t: jax.jacrev(g)(t, xi), (theta,), (v,))[1]  # (k, p)

    def probe(carry, key):
        v = jax.random.rademacher(key, theta.shape, dtype=theta.dtype)
        z1 = jax.vmap(hv, in_axes=(0, None))(x1, v)
        z2 = z1 if x2 is None else jax.vmap(hv, in_axes=(0, None))(x2, v)
        est = z1.reshape(z1.shape[0], -1) @ z2.reshape(z2.shape[0], -1).T / (4 * z1.shape[1])
        return (carry[0] + est, carry[1] + est * est), None

    n1 = jax.tree_util.tree_leaves(x1)[0].shape[0]
    n2 = n1 if x2 is None else jax.tree_util.tree_leaves(x2)[0].shape[0]
    zero = jnp.zeros((n1, n2), theta.dtype)
    (s, ss), _ = jax.lax.scan(probe, (zero, zero), keys)
    S = keys.shape[0]
    mean = s / S
    var = jnp.maximum(ss / S - mean * mean, 0.0) * S / max(S - 1, 1)
    return mean, jnp.sqrt(var / S)


def second_order_ntk(
    apply: ApplyFn,
    params: Params,
    x1: Any,
    x2: Any | None = None,
    *,
    wrt: Callable | None = None,
    method: str = "exact",
    num_probes: int = 64,
    key: PRNGKeyArray | None = None,
    max_bytes: int = MAX_BYTES,
) -> Array | KernelEstimate:
    r"""The Gram of the quadratic model's features of any network, :math:`K_Q(x,x') = \frac14\langle
    \nabla^2_\theta f(x), \nabla^2_\theta f(x')\rangle_F`, over the parameters selected by ``wrt``.

    For the two-layer net with ``wrt`` selecting ``W`` this is :func:`taylorlib.quadratic.quad_ntk`. For an
    ``(n, k)`` output the kernel is averaged over outputs (like ``empirical_ntk``'s default ``trace_axes``).

    Args:
        apply: any ``apply(params, x)`` acting on samples independently.
        params: the expansion point :math:`\theta_0` (any pytree).
        x1: ``(n1, ...)`` inputs (array or pytree of arrays); x2: ``(n2, ...)`` or ``None`` for ``x1``.
        wrt: ``wrt(path, leaf) -> bool`` selecting the parameters (paths as in
            ``jax.tree_util.tree_flatten_with_path``); ``None`` selects all.
        method: ``"exact"`` (per-sample Hessians, :math:`p_s^2` numbers each for :math:`p_s` selected
            parameters) or ``"sketch"`` (Hutchinson's unbiased estimator from ``num_probes`` Hessian-vector
            products per sample).
        num_probes: Rademacher probes ``S >= 2`` of the sketch; its standard error falls like
            :math:`S^{-1/2}`.
        key: PRNG key of the probes (required for ``"sketch"``).
        max_bytes: memory budget of ``"exact"``: it refuses when two per-sample Hessians (and their
            work space) would not fit, and otherwise streams blocks of samples that fit.

    Returns:
        ``(n1, n2)`` kernel for ``"exact"``; a :class:`KernelEstimate` ``(kernel, stderr)`` for ``"sketch"``.

    Example:
        >>> import jax
        >>> import taylorlib as tl
        >>> net = tl.nets.two_layer(8, "softplus")
        >>> p = net.init(jax.random.key(0), 3)
        >>> x = tl.data.sphere(jax.random.key(1), 4, 3)
        >>> only_W = lambda path, leaf: path[-1].key == "W"
        >>> K = tl.quadratic.second_order_ntk(net.apply, p, x, wrt=only_W)
        >>> bool(abs(K - tl.quadratic.quad_ntk(p, x, activation="softplus")).max() < 1e-5)
        True
        >>> est = tl.quadratic.second_order_ntk(net.apply, p, x, wrt=only_W, method="sketch",
        ...                                    key=jax.random.key(2))
        >>> est.kernel.shape, est.stderr.shape
        ((4, 4), (4, 4))
    """
    from ._ntk_jacobian import _chunks, _leading, _take
    from .ntk import check_input_pair, output_dim

    check_callable(apply, "apply")
    method = check_choice(method, "method", ("exact", "sketch"))
    same = x2 is None
    x1, x2 = check_input_pair(x1, x2)
    check_float_leaves(params, "params")
    k = output_dim(apply, params, x1, "x1")
    selected, _ = _select(params, wrt)
    idx = tuple(selected)
    theta = jax.eval_shape(lambda p: _sample_fn(apply, p, idx)[1], params)
    ps = theta.shape[0]
    if method == "sketch":
        S = check_int(num_probes, "num_probes", minimum=2)
        if key is None:
            raise ValueError("key is required for method='sketch' (a PRNG key for the Rademacher probes)")
        check_key(key)
        mean, se = _sketch(apply, idx, params, x1, None if same else x2, jax.random.split(key, S))
        return KernelEstimate(mean, se)
    max_bytes = check_int(max_bytes, "max_bytes", minimum=1)
    # one sample's Hessian (k p_s^2 numbers) plus as much work space for forward-over-reverse
    per_sample = 2 * k * ps * ps * theta.dtype.itemsize
    if 2 * per_sample > max_bytes:
        raise ValueError(
            f"method='exact' needs about {2 * per_sample / 2**20:.4g} MiB (two per-sample Hessians of "
            f"p_s = {ps} selected parameters with k = {k} outputs, shape ({k}, {ps}, {ps}), and their work "
            f"space), above max_bytes = {max_bytes / 2**20:.4g} MiB: use method='sketch', select fewer "
            f"parameters with wrt, or raise max_bytes"
        )
    chunk = max(1, max_bytes // (2 * per_sample))
    n1, n2 = _leading(x1), _leading(x2)
    if chunk >= max(n1, n2):
        return _hessian_block(apply, idx, params, x1, None if same else x2)
    rows = []
    for s1 in _chunks(n1, chunk):
        rows.append(
            jnp.concatenate(
                [
                    _hessian_block(apply, idx, params, _take(x1, s1), _take(x2, s2))
                    for s2 in _chunks(n2, chunk)
                ],
                axis=1,
            )
        )
    return jnp.concatenate(rows, axis=0)
