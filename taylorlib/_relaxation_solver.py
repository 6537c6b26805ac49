r"""The solvers of :mod:`taylorlib.relaxation` (private; public as ``tl.relaxation.solve`` and
``tl.relaxation.dual_bound``): factored L-BFGS and projected FISTA for :math:`g^\star`, and the dual bound."""

from __future__ import annotations

import functools
import math

import jax
import jax.numpy as jnp
import numpy as np
import optax

from ._checks import (
    check_choice,
    check_int,
)
from ._relaxation_problem import (
    LiftedProblem,
    Relaxation,
    _check_M,
    _check_problem,
    _gradient,
    _objective,
    _objective_from_q,
    _sizes,
)
from .typing import Array, Float

# --------------------------------------------------------------------------------------------- solvers


def _factored_objective(problem, U):
    """g(U U^T) for blocks U_r of shape (d, k): x_i^T M_r x_i = |U_r^T x_i|^2 and tr M_r = |U_r|_F^2."""
    q = jnp.sum(jnp.einsum("id,rdk->irk", problem.x, U) ** 2, axis=2)
    return _objective_from_q(problem, q, jnp.sum(U * U, axis=(1, 2)))


@functools.partial(jax.jit, static_argnames=("num_iter",))
def _lbfgs(problem, U0, num_iter):
    """L-BFGS (optax, zoom line search) on the factored objective U -> g(U U^T)."""
    fn = functools.partial(_factored_objective, problem)
    opt = optax.lbfgs()
    value_and_grad = optax.value_and_grad_from_state(fn)

    def body(_, carry):
        U, state = carry
        value, grad = value_and_grad(U, state=state)
        updates, state = opt.update(grad, state, U, value=value, grad=grad, value_fn=fn)
        return optax.apply_updates(U, updates), state

    U, _ = jax.lax.fori_loop(0, num_iter, body, (U0, opt.init(U0)))
    return jnp.einsum("rdk,rek->rde", U, U)


def _project_psd(M):
    M = 0.5 * (M + jnp.swapaxes(M, -1, -2))
    evals, evecs = jnp.linalg.eigh(M)
    return jnp.einsum("rdk,rk,rek->rde", evecs, jnp.maximum(evals, 0.0), evecs)


@functools.partial(jax.jit, static_argnames=("num_iter",))
def _fista(problem, M0, lip0, num_iter):
    """FISTA with backtracking (Beck & Teboulle) and gradient-based adaptive restart (O'Donoghue & Candès)."""

    def prox_step(Y, g_Y, grad_Y, lip):
        M = _project_psd(Y - grad_Y / lip)
        D = M - Y
        bound = g_Y + jnp.vdot(grad_Y, D) + 0.5 * lip * jnp.vdot(D, D)
        return M, _objective(problem, M) <= bound + 1e-7 * jnp.abs(g_Y)

    def body(_, carry):
        M, Y, t, lip = carry
        g_Y, grad_Y = _objective(problem, Y), _gradient(problem, Y)

        def grow(c):
            lip, _, _ = c
            lip = 2.0 * lip
            M_new, ok = prox_step(Y, g_Y, grad_Y, lip)
            return lip, M_new, ok

        M_new, ok = prox_step(Y, g_Y, grad_Y, lip)
        lip, M_new, _ = jax.lax.while_loop(lambda c: ~c[2], grow, (lip, M_new, ok))
        restart = jnp.vdot(Y - M_new, M_new - M) > 0  # the momentum points uphill: drop it
        t = jnp.where(restart, 1.0, t)
        t_new = 0.5 * (1.0 + jnp.sqrt(1.0 + 4.0 * t * t))
        Y_new = M_new + ((t - 1.0) / t_new) * (M_new - M)
        return M_new, Y_new, t_new, lip

    one = jnp.ones((), M0.dtype)
    M, _, _, _ = jax.lax.fori_loop(0, num_iter, body, (M0, M0, one, lip0 * one))
    return M


def _lipschitz_quadratic(problem) -> float:
    """Lipschitz constant of the gradient of the quadratic part: (2/n) lambda_max(A A*), an n x n eigenproblem."""
    x = np.asarray(problem.x, np.float64)
    alpha = np.asarray(problem.alpha, np.float64)
    K = (alpha @ alpha.T) * (x @ x.T) ** 2
    return max(2.0 * float(np.linalg.eigvalsh(K)[-1]) / x.shape[0], np.finfo(np.float32).tiny)


def _factored_start(problem, rank) -> jax.Array:
    """U_r = c [I_k; 0]: c^2 minimizes the quadratic part of g along M = c^2 I (c^2 = 1/d if that is not positive)."""
    x, res, alpha, beta = (np.asarray(v, np.float64) for v in problem[:4])
    d = x.shape[1]
    norms = np.sum(x * x, axis=1)
    z = np.sum(alpha, axis=1) * norms  # A(I)
    num = 2.0 * float(np.mean(res * z)) - float(np.mean(np.sum(beta, axis=1) * norms))
    den = 2.0 * float(np.mean(z * z))
    c2 = num / den if num > 0 and den > 0 else 1.0 / d
    m = alpha.shape[1]
    return jnp.broadcast_to(math.sqrt(c2) * jnp.eye(d, rank, dtype=problem.x.dtype), (m, d, rank))


def solve(
    problem: LiftedProblem,
    *,
    method: str = "factored",
    num_iter: int | None = None,
    rank: int | None = None,
    M_init: Float[Array, "m d d"] | None = None,
) -> Relaxation:
    r"""Minimize the lifted objective over :math:`M_r \succeq 0` and certify the result by :func:`dual_bound`.

    Two independent solvers:

    * ``method="factored"`` (default): L-BFGS on the factorization :math:`M_r = U_rU_r^\top`,
      :math:`U_r\in\mathbb R^{d\times k}` (Burer–Monteiro), started at :math:`U_r = c\,[I_k; 0]`. With
      :math:`k = d` every second-order stationary point is a global minimum of the convex problem: if
      :math:`U_r` is invertible, :math:`\nabla_{U_r} = 2G_rU_r = 0` forces :math:`G_r = 0`; if it is
      rank-deficient, the curvature along its null space forces :math:`G_r \succeq 0`. A smaller ``rank`` is
      cheaper and enough when the solution has rank below ``k`` in every block. Default ``num_iter = 500``.
    * ``method="projected"``: FISTA on :math:`M` with backtracking (the step starts at :math:`1/L`,
      :math:`L = \frac2n\lambda_{\max}(\mathcal A\mathcal A^*)`), projecting each block onto the PSD cone (clipping
      its eigenvalues), with adaptive restart. Slower: an eigendecomposition per block per step. Default
      ``num_iter = 2000``.

    Either way ``dual`` is a certified lower bound on :math:`g^\star`, whatever the solver's accuracy.

    Args:
        problem: from :func:`lifted_problem`.
        method: ``"factored"`` or ``"projected"``.
        num_iter: iterations ``>= 1`` (default per method, above).
        rank: columns ``k`` of each factor for ``"factored"``, ``1 <= k <= d`` (default ``d``).
        M_init: ``(m, d, d)`` start for ``"projected"`` (default 0, the saddle); ignored by ``"factored"``.

    Returns:
        :class:`Relaxation` with the solution, :math:`g(M)`, the certified lower bound and their gap.

    Example:
        >>> import jax, jax.numpy as jnp
        >>> import taylorlib as tl
        >>> p0 = tl.nets.two_layer(8, "softplus").init(jax.random.key(0), 3)
        >>> x = tl.data.sphere(jax.random.key(1), 20, 3)
        >>> y = x[:, 0] ** 2 - 1.0
        >>> prob = tl.relaxation.lifted_problem(p0, x, y, activation="softplus", lam=1e-3)
        >>> res = tl.relaxation.solve(prob)
        >>> bool(res.dual <= res.primal < float(jnp.mean(y**2)))   # a certified bracket, below g(0)
        True
        >>> res.gap < 1e-4 * res.primal
        True
        >>> pgd = tl.relaxation.solve(prob, method="projected", num_iter=3000)
        >>> abs(pgd.primal - res.primal) < 1e-4 * res.primal          # two solvers, one optimum
        True
    """
    problem = _check_problem(problem)
    method = check_choice(method, "method", ("factored", "projected"))
    if num_iter is None:
        num_iter = 500 if method == "factored" else 2000
    num_iter = check_int(num_iter, "num_iter", minimum=1)
    _, d, m = _sizes(problem)
    dtype = problem.x.dtype
    if method == "factored":
        rank = d if rank is None else check_int(rank, "rank", minimum=1, maximum=d)
        M = _lbfgs(problem, _factored_start(problem, rank), num_iter)
    else:
        M0 = (
            jnp.zeros((m, d, d), dtype)
            if M_init is None
            else _project_psd(_check_M(problem, M_init, "M_init"))
        )
        M = _fista(problem, M0.astype(dtype), jnp.asarray(_lipschitz_quadratic(problem), dtype), num_iter)
    primal, dual = _primal_dual(problem, M)
    return Relaxation(M, primal, dual, max(primal - dual, 0.0), num_iter)


# --------------------------------------------------------------------------------- dual certificate


def _float64(problem):
    x, res, alpha, beta, lam = (np.asarray(v, np.float64) for v in problem)
    return x, res, alpha, beta, float(lam)


def _primal_dual(problem, M) -> tuple[float, float]:
    x, res, alpha, beta, lam = _float64(problem)
    M = np.asarray(M, np.float64)
    evals, evecs = np.linalg.eigh(0.5 * (M + np.swapaxes(M, -1, -2)))
    M = np.einsum("rdk,rk,rek->rde", evecs, np.maximum(evals, 0.0), evecs)  # exactly feasible
    q = np.einsum("id,rde,ie->ir", x, M, x)
    s = np.trace(M, axis1=1, axis2=2)
    z = np.sum(alpha * q, axis=1)
    primal = float(np.mean((res - z) ** 2) + np.mean(np.sum(beta * q, axis=1)) + lam * np.sum(s * s) ** 2)
    nu = 2.0 * (z - res) / x.shape[0]
    return primal, _best_dual_on_ray(_outer(x), res, alpha, beta, lam, nu)


def _outer(x):
    """The n outer products x_i x_i^T, shape (n, d, d): computed once, then one BLAS product per S_r(t nu)."""
    return x[:, :, None] * x[:, None, :]


def _min_eigs(xx, alpha, beta, nu, t):
    """Smallest eigenvalue of each S_r(t nu) = C_r + t sum_i nu_i alpha_ir x_i x_i^T, shape (m,).

    ``xx`` holds the outer products x_i x_i^T (:func:`_outer`)."""
    n, d, _ = xx.shape
    coef = beta / n + t * nu[:, None] * alpha  # (n, m)
    S = (coef.T @ xx.reshape(n, d * d)).reshape(-1, d, d)  # sum_i coef_ir x_i x_i^T, one matrix product
    return np.linalg.eigvalsh(S)[:, 0]


def _dual_value(xx, res, alpha, beta, lam, nu, t):
    """Dual objective at (t nu, mu), mu_r = max(0, -lambda_min(S_r(t nu))): the cheapest feasible mu."""
    base = -t * float(nu @ res) - 0.25 * xx.shape[0] * t * t * float(nu @ nu)
    mu = np.maximum(-_min_eigs(xx, alpha, beta, nu, t), 0.0)
    if not np.any(mu > 0):
        return base
    if lam == 0:
        return -np.inf
    return base - 0.75 * (4.0 * lam) ** (-1.0 / 3.0) * float(np.linalg.norm(mu)) ** (4.0 / 3.0)


def _best_dual_on_ray(xx, res, alpha, beta, lam, nu) -> float:
    """max over t >= 0 of the dual value at t nu (concave in t; S_r(0) = C_r is PSD, so t = 0 is feasible)."""
    value = functools.partial(_dual_value, xx, res, alpha, beta, lam, nu)
    if lam == 0:  # hard constraint: largest feasible t in [0, 1] by bisection, then the concave quadratic
        t_max = 1.0
        if np.min(_min_eigs(xx, alpha, beta, nu, 1.0)) < 0:
            lo, hi = 0.0, 1.0
            for _ in range(60):
                mid = 0.5 * (lo + hi)
                lo, hi = (mid, hi) if np.min(_min_eigs(xx, alpha, beta, nu, mid)) >= 0 else (lo, mid)
            t_max = lo
        a, b = float(nu @ res), 0.25 * xx.shape[0] * float(nu @ nu)
        t = t_max if b == 0 else min(max(-a / (2 * b), 0.0), t_max)
        return max(value(t), value(0.0))
    lo, hi = 0.0, 2.0  # golden-section search on the concave function t -> value(t)
    ratio = (math.sqrt(5.0) - 1.0) / 2.0
    a, b = hi - ratio * (hi - lo), lo + ratio * (hi - lo)
    va, vb = value(a), value(b)
    for _ in range(60):
        if va < vb:
            lo, a, va = a, b, vb
            b = lo + ratio * (hi - lo)
            vb = value(b)
        else:
            hi, b, vb = b, a, va
            a = hi - ratio * (hi - lo)
            va = value(a)
    return max(va, vb, value(1.0), value(0.0))


def dual_bound(problem: LiftedProblem, M: Float[Array, "m d d"]) -> float:
    r"""A certified lower bound on the relaxation optimum :math:`g^\star` from any primal point ``M``.

    Takes the multiplier :math:`\nu = t\,\frac2n(\mathcal A(M) - y + f^{(0)})` and the cheapest feasible
    :math:`\mu_r = \max(0, -\lambda_{\min}(S_r(\nu)))` (with :math:`\lambda = 0`: :math:`\mu = 0`, and :math:`t`
    at most the largest value keeping every :math:`S_r(\nu)\succeq0`), and returns the best dual value over
    :math:`t`, all in float64. By weak duality it is at most :math:`g(M')` for every feasible :math:`M'`, in
    particular at most :math:`\min_W F_\lambda(W)`. When ``M`` solves the relaxation (KKT: every
    :math:`G_r\succeq0` and :math:`\langle G_r, M_r\rangle = 0`) it equals :math:`g(M)`.

    Args:
        problem: from :func:`lifted_problem`.
        M: ``(m, d, d)`` any point (projected onto the PSD cones first), e.g. :func:`lift` of an SOSP.

    Returns:
        float.

    Example:
        >>> import jax, jax.numpy as jnp
        >>> import taylorlib as tl
        >>> p0 = tl.nets.two_layer(8, "softplus").init(jax.random.key(0), 3)
        >>> x = tl.data.sphere(jax.random.key(1), 20, 3)
        >>> prob = tl.relaxation.lifted_problem(p0, x, x[:, 0] ** 2 - 1.0, activation="softplus")
        >>> M = tl.relaxation.lift(0.2 * jax.random.normal(jax.random.key(2), (8, 3)))
        >>> bound = tl.relaxation.dual_bound(prob, M)    # valid from any point, tight only at the optimum
        >>> best = tl.relaxation.solve(prob)
        >>> bound <= best.dual <= best.primal <= float(tl.relaxation.lifted_objective(prob, M))
        True
    """
    problem = _check_problem(problem)
    return _primal_dual(problem, _check_M(problem, M))[1]
