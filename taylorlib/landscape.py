r"""Hessian-vector products, dense Hessians, Lanczos spectra and second-order stationarity.

For a scalar loss :math:`L(\theta)` on any parameter pytree:

* :func:`hvp` computes :math:`\nabla^2 L(\theta)\, v` forward-over-reverse (``jvp`` of ``grad``),
  at the cost of a few gradients and without forming the Hessian;
* :func:`hessian` forms the dense :math:`p \times p` Hessian (small ``p`` only) in the order of
  ``jax.flatten_util.ravel_pytree``;
* :func:`lanczos` runs ``k`` Lanczos iterations with full reorthogonalization on HVPs and returns
  the Ritz values (ascending) and Ritz vectors; the extreme Ritz values converge first, and
  :math:`\lambda_{\min}^{\rm Ritz} \ge \lambda_{\min}(\nabla^2 L)` always (Cauchy interlacing);
* :func:`is_sosp` checks :math:`\|\nabla L\| \le \epsilon_g` and
  :math:`\lambda_{\min}(\nabla^2 L) \ge -\epsilon_H` (an approximate second-order stationary point);
* :func:`sign_averaged_curvature` is the curvature along a sign-randomized direction,
  :math:`\mathbb E_\Xi \nabla^2 L(W)[\Xi D, \Xi D]` with :math:`\Xi` a random diagonal of
  :math:`\pm 1` per neuron, which the landscape argument of Bai & Lee uses.

References:
    Pearlmutter 1994, *Fast exact multiplication by the Hessian*; Ghorbani, Krishnan & Xiao 2019,
    *An investigation into neural net optimization via Hessian eigenvalue density*
    (arXiv:1901.10159); Jin et al. 2017 (arXiv:1703.00887); Bai & Lee 2020 (arXiv:1910.01619).
"""

from __future__ import annotations

import functools
import math
from collections.abc import Callable
from typing import NamedTuple

import jax
import jax.numpy as jnp

from . import _checks, _tree
from ._checks import (
    as_float_array,
    check_float_leaves,
    check_int,
    check_positive,
    check_same_structure,
)
from ._lanczos import Spectrum, _check_loss, lanczos
from .typing import Array, Float, Params, PRNGKeyArray

__all__ = [
    "Spectrum",
    "Stationarity",
    "hvp",
    "hessian",
    "lanczos",
    "min_eigenvalue",
    "stationarity",
    "is_sosp",
    "sign_averaged_curvature",
]

#: Default largest parameter count for which :func:`hessian` forms a dense matrix (128 MiB in float64).
MAX_DENSE_PARAMS = 4096
#: Default memory budget of :func:`hessian` (bytes): its output plus the work space of its products.
MAX_HESSIAN_BYTES = 2**31
#: Work space (bytes) of the Hessian-vector products :func:`hessian` computes at once.
_HESSIAN_WORK = 2**28


class Stationarity(NamedTuple):
    """First- and second-order stationarity of a point (from :func:`stationarity`).

    Attributes:
        grad_norm: ``()`` Euclidean norm of the gradient.
        min_eigenvalue: ``()`` smallest Ritz value of the Hessian.
    """

    grad_norm: Array
    min_eigenvalue: Array


def hvp(loss: Callable[[Params], Float[Array, ""]], params: Params, v: Params) -> Params:
    r"""Hessian-vector product :math:`\nabla^2 L(\theta)\, v`, forward-over-reverse.

    Args:
        loss: scalar function of the params pytree.
        params: point :math:`\theta` (any pytree).
        v: direction, same structure and shapes as ``params``.

    Returns:
        A pytree like ``params``.

    Example:
        >>> import jax.numpy as jnp
        >>> import taylorlib as tl
        >>> A = jnp.array([[2.0, 1.0], [1.0, 3.0]])
        >>> loss = lambda w: 0.5 * w @ A @ w          # Hessian = A
        >>> tl.landscape.hvp(loss, jnp.ones(2), jnp.array([1.0, 0.0])).tolist()
        [2.0, 1.0]
    """
    check_same_structure(params, v, "params", "v")
    _check_loss(loss, params)
    return jax.jvp(jax.grad(loss), (params,), (v,))[1]


def _hvp_work_bytes(loss, flat, unravel) -> int:
    """Memory one Hessian-vector product needs (XLA's compiled memory analysis; a jaxpr upper bound if
    that is unavailable)."""

    def one(f, v):
        return jax.jvp(jax.grad(lambda g: loss(unravel(g))), (f,), (v,))[1]

    spec = jax.ShapeDtypeStruct(flat.shape, flat.dtype)
    try:
        ma = jax.jit(one).lower(spec, spec).compile().memory_analysis()
        if ma is None:
            raise RuntimeError("no memory analysis on this backend")
        return int(ma.temp_size_in_bytes + ma.output_size_in_bytes + ma.argument_size_in_bytes)
    except Exception:  # noqa: BLE001  (no analysis on this backend, or loss closes over tracers)
        try:
            jaxpr = jax.make_jaxpr(one)(spec, spec)
        except Exception:  # noqa: BLE001
            return 0
        return sum(
            int(math.prod(v.aval.shape)) * v.aval.dtype.itemsize
            for eqn in jaxpr.eqns
            for v in eqn.outvars
            if hasattr(v.aval, "shape")
        )


def hessian(
    loss: Callable[[Params], Float[Array, ""]],
    params: Params,
    *,
    max_params: int = MAX_DENSE_PARAMS,
    max_bytes: int = MAX_HESSIAN_BYTES,
    force: bool = False,
) -> Float[Array, "p p"]:
    r"""The dense Hessian :math:`\nabla^2 L(\theta)` as a ``(p, p)`` matrix.

    Rows and columns follow ``jax.flatten_util.ravel_pytree(params)``. The columns are Hessian-vector
    products computed in batches whose work space stays below 256 MiB (``jax.hessian`` pushes all ``p``
    at once: a 3,472-parameter CNN needed 19.7 GB).

    Args:
        loss: scalar function of the params pytree.
        params: point :math:`\theta`.
        max_params: refuse ``p > max_params`` (memory grows like :math:`p^2`) ...
        max_bytes: ... or when the memory needed to compute it, the :math:`p^2` output plus the work space
            of one Hessian-vector product (from XLA's memory analysis), exceeds this ...
        force: ... unless ``force=True``.

    Returns:
        ``(p, p)`` symmetric matrix.

    Example:
        >>> import jax.numpy as jnp
        >>> import taylorlib as tl
        >>> loss = lambda p: p["a"] ** 2 * p["b"]       # ravel order: a, b
        >>> tl.landscape.hessian(loss, {"a": jnp.array(1.0), "b": jnp.array(2.0)}).tolist()
        [[4.0, 2.0], [2.0, 0.0]]
    """
    check_float_leaves(params, "params")
    _check_loss(loss, params)
    max_params = check_int(max_params, "max_params", minimum=1)
    max_bytes = check_int(max_bytes, "max_bytes", minimum=1)
    flat, unravel = _tree.tree_ravel(params)
    p = flat.shape[0]
    if p > max_params and not force:
        raise ValueError(
            f"params has p = {p} entries: a dense Hessian needs p^2 = {p * p:.3g} numbers, above "
            f"max_params = {max_params}. Use hvp or lanczos, or pass force=True."
        )
    work = _hvp_work_bytes(loss, flat, unravel)
    out_bytes = p * p * flat.dtype.itemsize
    if out_bytes + work > max_bytes and not force:
        raise ValueError(
            f"computing the dense Hessian of p = {p} parameters needs about {(out_bytes + work) / 2**20:.4g} MiB "
            f"(the (p, p) = ({p}, {p}) output, {out_bytes / 2**20:.4g} MiB, plus {work / 2**20:.4g} MiB of work "
            f"space per Hessian-vector product), above max_bytes = {max_bytes / 2**20:.4g} MiB. Use hvp or "
            f"lanczos, raise max_bytes, or pass force=True."
        )
    batch = max(1, min(p, _HESSIAN_WORK // max(work, 1)))
    return _dense_hessian(loss, flat, unravel, batch)


@functools.partial(jax.jit, static_argnums=(0, 1, 4))
def _hessian_columns(loss, unravel, flat, start, batch):
    grad = jax.grad(lambda f: loss(unravel(f)))
    idx = jnp.minimum(start + jnp.arange(batch), flat.shape[0] - 1)  # the last batch repeats its last column
    basis = jax.nn.one_hot(idx, flat.shape[0], dtype=flat.dtype)
    return jax.vmap(lambda e: jax.jvp(grad, (flat,), (e,))[1])(basis)


def _dense_hessian(loss, flat, unravel, batch):
    p = flat.shape[0]
    if _checks.is_tracer(flat):
        grad = jax.grad(lambda f: loss(unravel(f)))
        column = lambda i: jax.jvp(grad, (flat,), (jax.nn.one_hot(i, p, dtype=flat.dtype),))[1]  # noqa: E731
        return jax.lax.map(column, jnp.arange(p), batch_size=batch)
    # host loop over batches of columns: inside a device loop XLA CPU runs the products several times slower
    cols = [
        _hessian_columns(loss, unravel, flat, jnp.asarray(i), batch)[: min(batch, p - i)]
        for i in range(0, p, batch)
    ]
    return jnp.concatenate(cols, axis=0)


def min_eigenvalue(
    loss: Callable[[Params], Float[Array, ""]],
    params: Params,
    key: PRNGKeyArray,
    num_iter: int = 64,
) -> Float[Array, ""]:
    r"""The smallest Ritz value :math:`\approx \lambda_{\min}(\nabla^2 L(\theta))` (an upper bound on it).

    Example:
        >>> import jax, jax.numpy as jnp
        >>> import taylorlib as tl
        >>> saddle = lambda w: w[0] ** 2 - 3 * w[1] ** 2           # Hessian diag(2, -6)
        >>> round(float(tl.landscape.min_eigenvalue(saddle, jnp.zeros(2), jax.random.key(0), 2)), 4)
        -6.0
    """
    return lanczos(loss, params, key, num_iter).eigvals[0]


def stationarity(
    loss: Callable[[Params], Float[Array, ""]],
    params: Params,
    key: PRNGKeyArray,
    num_iter: int = 64,
) -> Stationarity:
    r"""Gradient norm and smallest Hessian Ritz value at ``params``.

    Example:
        >>> import jax, jax.numpy as jnp
        >>> import taylorlib as tl
        >>> s = tl.landscape.stationarity(lambda w: jnp.sum(w**2) - w[0], jnp.zeros(3), jax.random.key(0), 3)
        >>> round(float(s.grad_norm), 4), round(float(s.min_eigenvalue), 4)
        (1.0, 2.0)
    """
    _check_loss(loss, params)
    g = jax.grad(loss)(params)
    return Stationarity(_tree.tree_norm(g), min_eigenvalue(loss, params, key, num_iter))


def is_sosp(
    loss: Callable[[Params], Float[Array, ""]],
    params: Params,
    eps_grad: float,
    eps_hess: float,
    *,
    key: PRNGKeyArray,
    num_iter: int = 64,
) -> Array:
    r"""Whether ``params`` is an :math:`(\epsilon_g, \epsilon_H)`-second-order stationary point.

    .. math:: \|\nabla L(\theta)\| \le \epsilon_g \quad\text{and}\quad
       \lambda_{\min}(\nabla^2 L(\theta)) \ge -\epsilon_H,

    with :math:`\lambda_{\min}` estimated by :func:`lanczos` (an upper bound, tight once converged).

    Returns:
        ``()`` bool array (usable under ``vmap``; call ``bool(...)`` on the host).

    Example:
        >>> import jax, jax.numpy as jnp
        >>> import taylorlib as tl
        >>> saddle = lambda w: w[0] ** 2 - w[1] ** 2 + w[1] ** 4
        >>> k = jax.random.key(0)
        >>> bool(tl.landscape.is_sosp(saddle, jnp.zeros(2), 1e-3, 1e-3, key=k, num_iter=2))
        False
        >>> bool(tl.landscape.is_sosp(saddle, jnp.array([0.0, 0.5**0.5]), 1e-3, 1e-3, key=k, num_iter=2))
        True
    """
    check_positive(eps_grad, "eps_grad", allow_zero=True)
    check_positive(eps_hess, "eps_hess", allow_zero=True)
    s = stationarity(loss, params, key, num_iter)
    return (s.grad_norm <= eps_grad) & (s.min_eigenvalue >= -eps_hess)


def sign_averaged_curvature(
    loss: Callable[[Float[Array, "m ..."]], Float[Array, ""]],
    W: Float[Array, "m ..."],
    direction: Float[Array, "m ..."],
    *,
    key: PRNGKeyArray | None = None,
    num_signs: int = 64,
) -> Float[Array, ""]:
    r"""Curvature along a sign-randomized direction, :math:`\mathbb E_\Xi \nabla^2 L(W)[\Xi D, \Xi D]`.

    :math:`\Xi = \mathrm{diag}(\xi_1, \dots, \xi_m)` flips the sign of each row (neuron) of
    :math:`D` independently. Since :math:`\mathbb E \xi_r \xi_s = \delta_{rs}`, the expectation keeps only
    the diagonal neuron blocks of the Hessian:

    .. math:: \mathbb E_\Xi \nabla^2 L(W)[\Xi D, \Xi D] = \sum_{r=1}^m d_r^\top \big(\nabla^2 L(W)\big)_{rr} d_r,

    computed exactly with ``m`` HVPs (``key=None``), or by Monte Carlo over ``num_signs`` draws of
    :math:`\Xi` (one HVP each) when a ``key`` is given.

    Args:
        loss: scalar function of ``W``.
        W: ``(m, ...)`` point; the leading axis indexes neurons.
        direction: :math:`D`, same shape as ``W``.
        key: ``None`` for the exact value, or a typed PRNG key for Monte Carlo.
        num_signs: Monte Carlo sample size (``>= 1``).

    Returns:
        Scalar ``()``.

    Example:
        >>> import jax, jax.numpy as jnp
        >>> import taylorlib as tl
        >>> loss = lambda W: jnp.sum(W) ** 2               # Hessian = 2 * all-ones: couples every pair
        >>> W, D = jnp.zeros((3, 1)), jnp.ones((3, 1))
        >>> float(tl.landscape.sign_averaged_curvature(loss, W, D))   # only the 3 diagonal blocks: 3 * 2
        6.0
        >>> float(jnp.vdot(tl.landscape.hvp(loss, W, D), D))          # without the signs: 9 * 2
        18.0

    References:
        Bai & Lee 2020 (arXiv:1910.01619), landscape argument (see the book's chapter 3).
    """
    _check_loss(loss)
    W = as_float_array(W, "W")
    D = as_float_array(direction, "direction")
    if W.ndim < 1:
        raise ValueError(f"W must have a leading (neuron) axis, shape (m, ...), got shape {tuple(W.shape)}")
    if W.shape != D.shape:
        raise ValueError(f"direction must have the shape of W {tuple(W.shape)}, got {tuple(D.shape)}")
    m = W.shape[0]
    expand = (slice(None),) + (None,) * (W.ndim - 1)
    if key is None:

        def block(r):
            mask = (jnp.arange(m) == r).astype(D.dtype)[expand]
            return jnp.vdot(hvp(loss, W, mask * D)[r], D[r])

        return jnp.sum(jax.lax.map(block, jnp.arange(m), batch_size=min(m, 32)))
    num_signs = check_int(num_signs, "num_signs", minimum=1)

    def draw(k):
        v = jax.random.rademacher(k, (m,), D.dtype)[expand] * D
        return jnp.vdot(hvp(loss, W, v), v)

    return jnp.mean(jax.lax.map(draw, jax.random.split(key, num_signs), batch_size=min(num_signs, 32)))
