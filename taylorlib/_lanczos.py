r"""Lanczos spectra of :mod:`taylorlib.landscape` (private; public as ``tl.landscape.lanczos`` and
``tl.landscape.Spectrum``): ``k`` iterations with full reorthogonalization on Hessian-vector products."""

from __future__ import annotations

import functools
import warnings
from collections.abc import Callable
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp

from . import _checks, _tree
from ._checks import (
    check_float_leaves,
    check_int,
    check_key,
)
from .typing import Array, Float, Params, PRNGKeyArray

#: Lanczos treats a new residual as zero (invariant subspace found, restart with a fresh random vector)
#: below this many machine epsilons times the largest |alpha|, beta seen; dropping a coupling that small
#: moves the Ritz values by at most that much.
_BREAKDOWN_EPS = 100.0


class Spectrum(NamedTuple):
    """Ritz pairs from :func:`lanczos`.

    Attributes:
        eigvals: ``(k,)`` Ritz values, ascending.
        eigvecs: the matching unit-norm Ritz vectors, a pytree shaped like ``params`` with a leading
            axis ``k`` on every leaf (``eigvecs[j]`` along that axis pairs with ``eigvals[j]``).
        n_iter: ``k``, the number of Lanczos iterations (after clipping to the parameter count).
    """

    eigvals: Array
    eigvecs: Params
    n_iter: int


def _check_loss(loss: Any, params: Any = None) -> None:
    if not callable(loss):
        raise TypeError(f"loss must be callable, got {type(loss).__name__}")
    if params is not None:
        # shape-only evaluation: works on tracers too, so jit/vmap callers are unaffected
        out = jax.eval_shape(loss, params)
        if getattr(out, "shape", None) != ():
            raise ValueError(
                f"loss must return a scalar of shape (), got shape {getattr(out, 'shape', None)}"
            )
        if not jnp.issubdtype(out.dtype, jnp.floating):
            raise TypeError(f"loss must return a real floating scalar, got dtype {out.dtype}")


def _orthogonalize(Q: jax.Array, w: jax.Array) -> jax.Array:
    """Remove the components of ``w`` along the rows of ``Q`` (Gram-Schmidt twice is enough)."""
    w = w - Q.T @ (Q @ w)
    return w - Q.T @ (Q @ w)


def _random_unit(key, j, Q):
    p, dtype = Q.shape[1], Q.dtype
    r = _orthogonalize(Q, jax.random.normal(jax.random.fold_in(key, j), (p,), dtype))
    return r / jnp.maximum(jnp.linalg.norm(r), jnp.finfo(dtype).tiny)


def _lanczos_step(j, carry, w, key):
    """One Lanczos update given ``w = H q_j`` (shared by the device loop and the host loop)."""
    Q, alphas, betas, q, scale = carry
    eps = jnp.finfo(Q.dtype).eps
    Q = Q.at[j].set(q)
    alpha = jnp.vdot(w, q)
    w = _orthogonalize(Q, w)
    beta = jnp.linalg.norm(w)
    scale = jnp.maximum(scale, jnp.maximum(jnp.abs(alpha), beta))
    broke = beta <= _BREAKDOWN_EPS * eps * scale
    q_next = jnp.where(broke, _random_unit(key, j + 1, Q), w / jnp.where(broke, 1.0, beta))
    return Q, alphas.at[j].set(alpha), betas.at[j].set(jnp.where(broke, 0.0, beta)), q_next, scale


def _lanczos_init(k, p, dtype, key):
    Q0 = jnp.zeros((k, p), dtype)
    return (Q0, jnp.zeros(k, dtype), jnp.zeros(k, dtype), _random_unit(key, 0, Q0), jnp.zeros((), dtype))


def _ritz(Q, alphas, betas, unravel):
    off = betas[:-1]
    T = jnp.diag(alphas) + jnp.diag(off, 1) + jnp.diag(off, -1)
    evals, S = jnp.linalg.eigh(T)
    ritz = S.T @ Q  # (k, p)
    return evals, jax.vmap(unravel)(ritz)


def _flat_hvp(loss, params, q):
    flat, unravel = _tree.tree_ravel(params)
    return jax.jvp(jax.grad(lambda f: loss(unravel(f))), (flat,), (q,))[1]


@functools.partial(jax.jit, static_argnums=(0, 1))
def _lanczos(loss, k, params, key):
    """The whole iteration in one program (used under tracing: jit or vmap of the caller); kept as it was
    before the host loop so that traced results are unchanged."""
    flat, unravel = _tree.tree_ravel(params)
    p, dtype = flat.shape[0], flat.dtype
    grad = jax.grad(lambda f: loss(unravel(f)))
    matvec = lambda q: jax.jvp(grad, (flat,), (q,))[1]
    eps = jnp.finfo(dtype).eps

    def random_unit(j, Q):
        r = _orthogonalize(Q, jax.random.normal(jax.random.fold_in(key, j), (p,), dtype))
        return r / jnp.maximum(jnp.linalg.norm(r), jnp.finfo(dtype).tiny)

    def body(j, carry):
        Q, alphas, betas, q, scale = carry
        Q = Q.at[j].set(q)
        w = matvec(q)
        alpha = jnp.vdot(w, q)
        w = _orthogonalize(Q, w)
        beta = jnp.linalg.norm(w)
        scale = jnp.maximum(scale, jnp.maximum(jnp.abs(alpha), beta))
        broke = beta <= _BREAKDOWN_EPS * eps * scale
        q_next = jnp.where(broke, random_unit(j + 1, Q), w / jnp.where(broke, 1.0, beta))
        return Q, alphas.at[j].set(alpha), betas.at[j].set(jnp.where(broke, 0.0, beta)), q_next, scale

    Q0 = jnp.zeros((k, p), dtype)
    carry = (Q0, jnp.zeros(k, dtype), jnp.zeros(k, dtype), random_unit(0, Q0), jnp.zeros((), dtype))
    Q, alphas, betas, _, _ = jax.lax.fori_loop(0, k, body, carry)
    off = betas[:-1]
    T = jnp.diag(alphas) + jnp.diag(off, 1) + jnp.diag(off, -1)
    evals, S = jnp.linalg.eigh(T)
    ritz = S.T @ Q  # (k, p)
    return evals, jax.vmap(unravel)(ritz)


_hvp_jit = jax.jit(_flat_hvp, static_argnums=(0,))
_step_jit = jax.jit(_lanczos_step, donate_argnums=(1,))
_init_jit = jax.jit(_lanczos_init, static_argnums=(0, 1, 2))


def _lanczos_host(loss, k, params, key):
    """The same iteration with the loop on the host: each Hessian-vector product is its own compiled
    program. Inside a device loop XLA CPU ran the HVP of a small CNN 12-16x slower than the same program
    called from Python (benchmarks: lanczos_hvp), so the host loop is the default outside of tracing."""
    flat, unravel = _tree.tree_ravel(params)
    carry = _init_jit(k, flat.shape[0], flat.dtype, key)
    for j in range(k):
        carry = _step_jit(jnp.asarray(j), carry, _hvp_jit(loss, params, carry[3]), key)
    Q, alphas, betas, _, _ = carry
    return _ritz(Q, alphas, betas, unravel)


def lanczos(
    loss: Callable[[Params], Float[Array, ""]],
    params: Params,
    key: PRNGKeyArray,
    num_iter: int = 64,
) -> Spectrum:
    r"""Extreme Hessian eigenpairs by ``num_iter`` Lanczos iterations with full reorthogonalization.

    Builds an orthonormal Krylov basis :math:`Q = [q_1, \dots, q_k]` of
    :math:`\{q_1, H q_1, \dots, H^{k-1} q_1\}` from a random start, with :math:`H = \nabla^2 L(\theta)`
    applied by :func:`hvp`; every new vector is re-orthogonalized against the whole basis. The Ritz
    values are the eigenvalues of the tridiagonal :math:`T = Q^\top H Q`. With ``num_iter = p`` they are
    the whole spectrum; with fewer, the extreme ones converge first and interlace:
    :math:`\lambda_{\min}(H) \le \lambda^{\rm Ritz}_1` and :math:`\lambda^{\rm Ritz}_k \le \lambda_{\max}(H)`.
    On breakdown (an invariant subspace) it restarts from a fresh random vector orthogonal to :math:`Q`.

    Args:
        loss: scalar function of the params pytree.
        params: point :math:`\theta`.
        key: typed PRNG key for the starting vector (and restarts).
        num_iter: number of iterations ``k >= 1``; clipped to ``p`` with a warning.

    Returns:
        :class:`Spectrum` with ``(k,)`` ascending Ritz values and Ritz vectors.

    Example:
        >>> import jax, jax.numpy as jnp
        >>> import taylorlib as tl
        >>> A = jnp.diag(jnp.arange(1.0, 21.0) - 5.0)      # eigenvalues -4, -3, ..., 15
        >>> spec = tl.landscape.lanczos(lambda w: 0.5 * w @ A @ w, jnp.zeros(20), jax.random.key(0), 20)
        >>> round(float(spec.eigvals[0]), 4), round(float(spec.eigvals[-1]), 4), spec.n_iter
        (-4.0, 15.0, 20)
        >>> round(float(jnp.abs(spec.eigvecs[0, 0])), 4)   # lowest Ritz vector = e_1 (up to sign)
        1.0
    """
    k = check_int(num_iter, "num_iter", minimum=1)
    p = _tree.tree_size(params)
    if p == 0:
        raise ValueError("params has no entries")
    check_float_leaves(params, "params")
    _check_loss(loss, params)
    check_key(key)
    if k > p:
        warnings.warn(
            f"num_iter = {k} is larger than the parameter count p = {p}; using num_iter = {p}",
            stacklevel=2,
        )
        k = p
    if any(_checks.is_tracer(v) for v in jax.tree_util.tree_leaves((params, key))):
        evals, vecs = _lanczos(loss, k, params, key)
    else:
        evals, vecs = _lanczos_host(loss, k, params, key)
    return Spectrum(evals, vecs, k)
