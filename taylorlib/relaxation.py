r"""The convex relaxation of the randomized Taylor objective: a certified lower bound, and the landscape slack.

Write :math:`u_{ir} = w_{0,r}\cdot x_i` and lift each neuron's movement to the rank-one matrix
:math:`M_r = w_r w_r^\top \succeq 0`. Both parts of the randomized objective of the second-order Taylor model,
:math:`F_0(W) = \frac1n\sum_i\big[(y_i - f^{(0)}(x_i) - f^Q_W(x_i))^2 + E_i(W)\big]`
(``tl.randomize.expected_square_loss``), are *linear* in the :math:`M_r`:

.. math:: f^Q_W(x_i) &= \sum_r \alpha_{ir}\, x_i^\top M_r x_i,\quad \alpha_{ir} = \frac{a_r\sigma''(u_{ir})}{2\sqrt m},\\
   E_i(W) &= \sum_r \beta_{ir}\, x_i^\top M_r x_i,\quad \beta_{ir} = \frac{\sigma'(u_{ir})^2}{m},

and the regularizer is a convex function of them, :math:`\lambda\lVert W\rVert_{2,4}^8 = \lambda\big(\sum_r
(\mathrm{tr}\,M_r)^2\big)^2`. So :math:`F_\lambda(W) = F_0(W) + \lambda\lVert W\rVert_{2,4}^8 = g(M_1,\dots,M_m)` with
the convex function

.. math:: g(M) &= \frac1n\big\lVert y - f^{(0)} - \mathcal A(M)\big\rVert^2 + \langle C, M\rangle + \varphi(s),\\
   \mathcal A(M)_i &= \sum_r \alpha_{ir}\, x_i^\top M_r x_i,\qquad C_r = \frac1n\sum_i \beta_{ir}\, x_i x_i^\top \succeq 0,

where :math:`s_r = \mathrm{tr}\,M_r` and :math:`\varphi(s) = \lambda\lVert s\rVert_2^4`. Dropping the rank-one
constraint leaves a convex problem over a product of PSD cones, whose optimum :math:`g^\star` is a lower bound on
:math:`\min_W F_\lambda`. Each neuron keeps its own block: the coefficients depend on :math:`r` through
:math:`\sigma''(u_{ir})` and :math:`\sigma'(u_{ir})`, so the blocks of one sign class :math:`a_r = \pm1` cannot be
pooled into one matrix (that is exact only for a constant :math:`\sigma''`, without the energy term and with
:math:`\lambda = 0`).

:func:`solve` minimizes :math:`g` (two independent solvers); :func:`dual_bound` certifies the result through the
Lagrange dual of the lifted problem,

.. math:: &\max_{\nu\in\mathbb R^n,\ \mu\in\mathbb R^m}\; -\nu^\top(y - f^{(0)}) - \tfrac n4\lVert\nu\rVert^2 - \varphi^*(\mu)\\
   &\quad\text{s.t.}\quad S_r(\nu) + \mu_r I \succeq 0,\qquad S_r(\nu) = C_r + \sum_i \nu_i\,\alpha_{ir}\,x_i x_i^\top,

with :math:`\varphi^*(\mu) = \frac34(4\lambda)^{-1/3}\lVert\mu\rVert^{4/3}` (and :math:`\mu = 0` when
:math:`\lambda = 0`). Every feasible :math:`(\nu,\mu)` gives a lower bound on :math:`g^\star` (weak duality), so the
duality gap is a verifiable error bar whatever solver produced the primal point.

:func:`landscape_identity` and :func:`landscape_slack` are the quantitative form of Bai and Lee's landscape
argument against a reference :math:`M^\star` (rank one, :func:`lift` of a :math:`W^\star`, or any PSD blocks):
how far above :math:`g(M^\star)` an approximate second-order stationary point can lie. :func:`planted_movement`
builds a reference :math:`W^\star` with a prescribed :math:`\lVert W^\star\rVert_{2,4}`.

References:
    Bai & Lee 2020 (arXiv:1910.01619); Beck & Teboulle 2009 (FISTA); O'Donoghue & Candès 2015 (adaptive restart);
    Burer & Monteiro 2003 (the factorization :math:`M_r = U_r U_r^\top`).
"""

from __future__ import annotations

import functools
import math
from collections.abc import Callable
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
import optax

from . import activations as _act
from ._checks import (
    as_float_array,
    check_choice,
    check_finite,
    check_int,
    check_key,
    check_positive,
    is_tracer,
)
from .quadratic import check_movement
from .typing import Array, Float, Params, PRNGKeyArray

__all__ = [
    "LiftedProblem",
    "Relaxation",
    "Identity",
    "Slack",
    "lifted_problem",
    "lift",
    "lifted_objective",
    "lifted_gradient",
    "solve",
    "dual_bound",
    "landscape_identity",
    "landscape_slack",
    "planted_movement",
    "PlantedInstance",
    "planted_instance",
]


class LiftedProblem(NamedTuple):
    r"""The data of the lifted convex problem :math:`\min_{M_r\succeq0} g(M)` (see the module docstring).

    Attributes:
        x: ``(n, d)`` inputs.
        residual: ``(n,)`` :math:`y - f^{(0)}`, the part of the labels the movement must fit.
        alpha: ``(n, m)`` :math:`\alpha_{ir} = a_r\sigma''(u_{ir})/(2\sqrt m)`.
        beta: ``(n, m)`` :math:`\beta_{ir} = \sigma'(u_{ir})^2/m`.
        lam: ``()`` :math:`\lambda \ge 0`, the strength of the regularizer :math:`\lambda\lVert W\rVert_{2,4}^8`.
    """

    x: Array
    residual: Array
    alpha: Array
    beta: Array
    lam: Array


class Relaxation(NamedTuple):
    r"""Result of :func:`solve`.

    Attributes:
        M: ``(m, d, d)`` the primal solution, every block PSD.
        primal: :math:`g(M)` (float64), an upper bound on the relaxation optimum :math:`g^\star`.
        dual: a certified lower bound on :math:`g^\star` (float64; :func:`dual_bound`).
        gap: ``primal - dual``, at least 0.
        num_iter: solver iterations.
    """

    M: Array
    primal: float
    dual: float
    gap: float
    num_iter: int


class Identity(NamedTuple):
    r"""The two sides of the landscape identity of :func:`landscape_identity` (floats).

    Attributes:
        lhs: :math:`\mathbb E\,\nabla^2F_\lambda(W)[D,D] - \langle\nabla F_\lambda(W), W\rangle`, by automatic
            differentiation (Hessian-vector products).
        rhs: :math:`2(F_0^{\rm lift}(M^\star) - F_0(W)) - \mathrm{conv} + \mathrm{GN} + \mathrm{reg}`, in closed
            form (float64).
        gauss_newton: :math:`\mathrm{GN}`.
        convexity_gap: :math:`\mathrm{conv} = \frac2n\lVert\mathcal A(M^\star) - \mathcal A(M)\rVert^2`.
        regularizer: :math:`\mathrm{reg} = \mathbb E\,\nabla^2R(W)[D,D] - 8R(W)`.
        error: ``|lhs - rhs| / (1 + |rhs|)``.
    """

    lhs: float
    rhs: float
    gauss_newton: float
    convexity_gap: float
    regularizer: float
    error: float


class Slack(NamedTuple):
    r"""The terms of :func:`landscape_slack` (floats).

    Attributes:
        total: the bound on :math:`F_0(W) - F_0^{\rm lift}(M^\star)`: half the sum of the four terms below.
        gauss_newton: :math:`\mathrm{GN} = \frac2n\sum_i\sum_r \sigma''(u_{ir})^2 (w_r\cdot x_i)^2\,
            x_i^\top M^\star_r x_i / m`.
        regularizer: :math:`\mathbb E\,\nabla^2R(W)[D, D] - 8R(W)` for :math:`R = \lambda\lVert W\rVert_{2,4}^8`.
        curvature: :math:`\max(0, -\lambda_{\min})\,\mathrm{tr}\,M^\star`.
        gradient: :math:`\lVert\nabla F_\lambda\rVert\,\lVert W\rVert_F`.
    """

    total: float
    gauss_newton: float
    regularizer: float
    curvature: float
    gradient: float


def lifted_problem(
    params0: Params, x: Float[Array, "n d"], y: Float[Array, " n"], *, activation: Any, lam: float = 0.0
) -> LiftedProblem:
    r"""The coefficients of the lifted objective :math:`g` for a two-layer network at ``params0``.

    Args:
        params0: ``{"W": (m, d), "a": (m,)}`` of :func:`taylorlib.nets.two_layer`.
        x: ``(n, d)`` inputs.
        y: ``(n,)`` labels.
        activation: a twice-differentiable activation.
        lam: :math:`\lambda \ge 0` of the regularizer :math:`\lambda\lVert W\rVert_{2,4}^8`.

    Returns:
        :class:`LiftedProblem`.

    Example:
        >>> import jax, jax.numpy as jnp
        >>> import taylorlib as tl
        >>> p0 = tl.nets.two_layer(8, "softplus").init(jax.random.key(0), 3)
        >>> x = tl.data.sphere(jax.random.key(1), 5, 3)
        >>> prob = tl.relaxation.lifted_problem(p0, x, jnp.ones(5), activation="softplus")
        >>> prob.alpha.shape, prob.beta.shape
        ((5, 8), (5, 8))
    """
    W0, a, x = check_movement(params0, None, x)
    y = as_float_array(y, "y")
    if y.shape != (x.shape[0],):
        raise ValueError(f"y must have shape (n,) = ({x.shape[0]},) to match x, got {tuple(y.shape)}")
    check_finite(y, "y")
    lam = check_positive(lam, "lam", allow_zero=True)
    act = _act.require_order(activation, 2, "the lifted quadratic model")
    u = x @ W0.T
    m = W0.shape[0]
    f0 = act(u) @ a / math.sqrt(m)
    alpha = a[None, :] * _act.derivative(act, 2)(u) / (2 * math.sqrt(m))
    beta = _act.derivative(act, 1)(u) ** 2 / m
    return LiftedProblem(x, y - f0, alpha, beta, jnp.asarray(lam, x.dtype))


def _check_problem(problem: Any) -> LiftedProblem:
    if not isinstance(problem, LiftedProblem):
        raise TypeError(
            f"problem must be a LiftedProblem (from tl.relaxation.lifted_problem), got {type(problem).__name__}"
        )
    return problem


def _sizes(problem: LiftedProblem) -> tuple[int, int, int]:
    n, d = problem.x.shape
    return n, d, problem.alpha.shape[1]


def _check_M(problem: LiftedProblem, M: Any, name: str = "M") -> jax.Array:
    M = as_float_array(M, name)
    _, d, m = _sizes(problem)
    if M.shape != (m, d, d):
        raise ValueError(f"{name} must have shape (m, d, d) = ({m}, {d}, {d}), got {tuple(M.shape)}")
    check_finite(M, name)
    return M


def _check_W(problem: LiftedProblem, W: Any, name: str = "W") -> jax.Array:
    W = as_float_array(W, name)
    _, d, m = _sizes(problem)
    if W.shape != (m, d):
        raise ValueError(f"{name} must have shape (m, d) = ({m}, {d}), got {tuple(W.shape)}")
    check_finite(W, name)
    return W


def lift(W: Float[Array, "m d"]) -> Float[Array, "m d d"]:
    r"""The rank-one blocks :math:`M_r = w_r w_r^\top` of a movement ``W``.

    Args:
        W: ``(m, d)`` movement, one row per neuron.

    Returns:
        ``(m, d, d)`` PSD blocks of rank at most one.

    Example:
        >>> import jax.numpy as jnp
        >>> import taylorlib as tl
        >>> tl.relaxation.lift(jnp.array([[1.0, 2.0]])).tolist()
        [[[1.0, 2.0], [2.0, 4.0]]]
    """
    W = as_float_array(W, "W")
    if W.ndim != 2:
        raise ValueError(f"W must be 2-D with shape (m, d), got shape {tuple(W.shape)}")
    return W[:, :, None] * W[:, None, :]


def _objective_from_q(problem, q, s):
    """g from the quadratic forms q[i, r] = x_i^T M_r x_i and the traces s[r] = tr M_r."""
    fit = problem.residual - jnp.sum(problem.alpha * q, axis=1)
    return jnp.mean(fit**2) + jnp.mean(jnp.sum(problem.beta * q, axis=1)) + problem.lam * jnp.sum(s * s) ** 2


def _objective(problem, M):
    q = jnp.einsum("id,rde,ie->ir", problem.x, M, problem.x)
    return _objective_from_q(problem, q, jnp.trace(M, axis1=1, axis2=2))


def _gradient(problem, M):
    q = jnp.einsum("id,rde,ie->ir", problem.x, M, problem.x)
    s = jnp.trace(M, axis1=1, axis2=2)
    fit = problem.residual - jnp.sum(problem.alpha * q, axis=1)
    n, d, _ = _sizes(problem)
    coef = (-2.0 * fit[:, None] * problem.alpha + problem.beta) / n  # (n, m)
    mu = 4.0 * problem.lam * jnp.sum(s * s) * s  # (m,): d phi / d s_r
    return (
        jnp.einsum("ir,id,ie->rde", coef, problem.x, problem.x)
        + mu[:, None, None] * jnp.eye(d, dtype=M.dtype)[None, :, :]
    )


def lifted_objective(problem: LiftedProblem, M: Float[Array, "m d d"]) -> Float[Array, ""]:
    r""":math:`g(M) = \frac1n\lVert y - f^{(0)} - \mathcal A(M)\rVert^2 + \langle C, M\rangle +
    \lambda\big(\sum_r(\mathrm{tr}\,M_r)^2\big)^2`.

    At :math:`M = ` :func:`lift` ``(W)`` it equals ``expected_square_loss(params0, W, x, y) + bai_lee(W, lam)``.

    Args:
        problem: from :func:`lifted_problem`.
        M: ``(m, d, d)`` symmetric blocks (PSD for a feasible point).

    Returns:
        Scalar ``()``.

    Example:
        >>> import jax, jax.numpy as jnp
        >>> import taylorlib as tl
        >>> p0 = tl.nets.two_layer(8, "softplus").init(jax.random.key(0), 3)
        >>> x, y = tl.data.sphere(jax.random.key(1), 5, 3), jnp.ones(5)
        >>> W = 0.3 * jax.random.normal(jax.random.key(2), (8, 3))
        >>> prob = tl.relaxation.lifted_problem(p0, x, y, activation="softplus", lam=0.1)
        >>> g = tl.relaxation.lifted_objective(prob, tl.relaxation.lift(W))
        >>> F = tl.randomize.expected_square_loss(p0, W, x, y, activation="softplus")
        >>> bool(jnp.allclose(g, F + tl.regularizers.bai_lee(W, 0.1), rtol=1e-5))
        True
    """
    problem = _check_problem(problem)
    return _objective(problem, _check_M(problem, M))


def lifted_gradient(problem: LiftedProblem, M: Float[Array, "m d d"]) -> Float[Array, "m d d"]:
    r"""The gradient :math:`G_r = \nabla_{M_r} g = S_r(\nu) + \mu_r I`, shape ``(m, d, d)``.

    Here :math:`\nu = \frac2n(\mathcal A(M) - y + f^{(0)})` and :math:`\mu_r = 4\lambda\lVert s\rVert^2 s_r`. For
    :math:`M_r = w_r w_r^\top`, :math:`\nabla_{w_r}F_\lambda = 2G_r w_r` (chain rule). The KKT conditions of the
    relaxation are :math:`G_r\succeq0` and :math:`G_r M_r = 0` for every :math:`r`.

    Args:
        problem: from :func:`lifted_problem`.
        M: ``(m, d, d)`` symmetric blocks.

    Returns:
        ``(m, d, d)`` symmetric gradient blocks.

    Example:
        >>> import jax, jax.numpy as jnp
        >>> import taylorlib as tl
        >>> p0 = tl.nets.two_layer(8, "softplus").init(jax.random.key(0), 3)
        >>> x, y = tl.data.sphere(jax.random.key(1), 5, 3), jnp.ones(5)
        >>> W = 0.3 * jax.random.normal(jax.random.key(2), (8, 3))
        >>> prob = tl.relaxation.lifted_problem(p0, x, y, activation="softplus", lam=0.1)
        >>> G = tl.relaxation.lifted_gradient(prob, tl.relaxation.lift(W))
        >>> F = lambda W: (tl.randomize.expected_square_loss(p0, W, x, y, activation="softplus")
        ...                + tl.regularizers.bai_lee(W, 0.1))
        >>> bool(jnp.allclose(2 * jnp.einsum("rde,re->rd", G, W), jax.grad(F)(W), atol=1e-5))
        True
    """
    problem = _check_problem(problem)
    return _gradient(problem, _check_M(problem, M))


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
    return primal, _best_dual_on_ray(x, res, alpha, beta, lam, nu)


def _min_eigs(x, alpha, beta, nu, t):
    """Smallest eigenvalue of each S_r(t nu) = C_r + t sum_i nu_i alpha_ir x_i x_i^T, shape (m,)."""
    coef = beta / x.shape[0] + t * nu[:, None] * alpha  # (n, m)
    return np.linalg.eigvalsh(np.einsum("ir,id,ie->rde", coef, x, x))[:, 0]


def _dual_value(x, res, alpha, beta, lam, nu, t):
    """Dual objective at (t nu, mu), mu_r = max(0, -lambda_min(S_r(t nu))): the cheapest feasible mu."""
    base = -t * float(nu @ res) - 0.25 * x.shape[0] * t * t * float(nu @ nu)
    mu = np.maximum(-_min_eigs(x, alpha, beta, nu, t), 0.0)
    if not np.any(mu > 0):
        return base
    if lam == 0:
        return -np.inf
    return base - 0.75 * (4.0 * lam) ** (-1.0 / 3.0) * float(np.linalg.norm(mu)) ** (4.0 / 3.0)


def _best_dual_on_ray(x, res, alpha, beta, lam, nu) -> float:
    """max over t >= 0 of the dual value at t nu (concave in t; S_r(0) = C_r is PSD, so t = 0 is feasible)."""
    value = functools.partial(_dual_value, x, res, alpha, beta, lam, nu)
    if lam == 0:  # hard constraint: largest feasible t in [0, 1] by bisection, then the concave quadratic
        t_max = 1.0
        if np.min(_min_eigs(x, alpha, beta, nu, 1.0)) < 0:
            lo, hi = 0.0, 1.0
            for _ in range(60):
                mid = 0.5 * (lo + hi)
                lo, hi = (mid, hi) if np.min(_min_eigs(x, alpha, beta, nu, mid)) >= 0 else (lo, mid)
            t_max = lo
        a, b = float(nu @ res), 0.25 * x.shape[0] * float(nu @ nu)
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


# ------------------------------------------------------------------------------ landscape argument


def _reference_factors(M_ref) -> list[np.ndarray]:
    """Columns V_k (m, d) with sum_k v_rk v_rk^T = M_r (eigendecomposition). Eigenvalues below 1e-6 of their
    block's largest are dropped: they are the round-off of a lower-rank block (a float32 w w^T is rank one
    only up to relative errors ~1e-7), so a rank-one M needs a single factor and a single HVP sweep."""
    evals, evecs = np.linalg.eigh(np.asarray(M_ref, np.float64))
    top = np.max(evals, axis=1, keepdims=True)
    evals = np.where(evals > 1e-6 * np.maximum(top, 0.0), evals, 0.0)
    factors = np.transpose(evecs * np.sqrt(evals)[:, None, :], (2, 0, 1))  # [k, r] = sqrt(l_rk) e_rk
    return [V for V in factors if np.any(V != 0)]


def _closed_form_terms(problem, W, M_ref):
    """GN, convexity gap, regularizer term and g(M*) - g(M) of the identity, in float64."""
    x, res, alpha, beta, lam = _float64(problem)
    W, M_ref = np.asarray(W, np.float64), np.asarray(M_ref, np.float64)
    t = x @ W.T  # (n, m)
    q_ref = np.einsum("id,rde,ie->ir", x, M_ref, x)
    gn = float(2.0 * np.mean(np.sum(4.0 * alpha**2 * t**2 * q_ref, axis=1)))
    z, z_ref = np.sum(alpha * t**2, axis=1), np.sum(alpha * q_ref, axis=1)
    conv = float(2.0 * np.mean((z_ref - z) ** 2))
    s = np.sum(W * W, axis=1)
    S = float(np.sum(s * s))
    wMw = np.einsum("rd,rde,re->r", W, M_ref, W)
    tr = np.trace(M_ref, axis1=1, axis2=2)
    # E Hess R[D, D] - 8 R(W), R = lam S^2 (see landscape_slack)
    reg = (
        lam * (32.0 * float(np.sum(s * s * wMw)) + 8.0 * S * float(np.sum(2.0 * wMw + s * tr)))
        - 8.0 * lam * S * S
    )
    fit0 = lambda q: float(
        np.mean((res - np.sum(alpha * q, axis=1)) ** 2) + np.mean(np.sum(beta * q, axis=1))
    )
    return gn, conv, reg, fit0(q_ref) - fit0(t**2), float(np.sum(tr))


def landscape_identity(
    loss: Callable[[Float[Array, "m d"]], Float[Array, ""]],
    problem: LiftedProblem,
    W: Float[Array, "m d"],
    M_ref: Float[Array, "m d d"],
) -> Identity:
    r"""Both sides of the landscape identity at ``W`` against the reference blocks ``M_ref``.

    Let :math:`D` have independent rows with :math:`\mathbb E\,d_r = 0` and :math:`\mathbb E\,d_rd_r^\top =
    M^\star_r` (for :math:`M^\star_r = w^\star_rw^{\star\top}_r`: :math:`d_r = \xi_rw^\star_r` with random signs
    :math:`\xi_r`). For :math:`F_\lambda = F_0 + R`, :math:`R(W) = \lambda\lVert W\rVert_{2,4}^8`, and the lifted
    :math:`F_0^{\rm lift}` (``g`` with :math:`\lambda = 0`),

    .. math:: &\mathbb E\,\nabla^2F_\lambda(W)[D,D] - \langle\nabla F_\lambda(W), W\rangle\\
       &\quad= 2\big(F_0^{\rm lift}(M^\star) - F_0(W)\big) - \mathrm{conv} + \mathrm{GN}\\
       &\qquad + \mathbb E\,\nabla^2R(W)[D,D] - 8R(W),

    with :math:`\mathrm{conv} = \frac2n\sum_i(\mathcal A(M^\star)_i - f^Q_W(x_i))^2 \ge 0` and
    :math:`\mathrm{GN} = \frac2n\sum_i\sum_r\sigma''(u_{ir})^2(w_r\cdot x_i)^2\,x_i^\top M^\star_rx_i/m`. The left
    side is computed by automatic differentiation of ``loss`` (``tl.landscape.sign_averaged_curvature`` on the
    eigen-factors of :math:`M^\star`, and ``jax.grad``); the right side in closed form from ``problem``. They
    agree to round-off exactly when ``loss`` is :math:`F_\lambda` of ``problem``: a check of the Hessian-vector
    products, of the randomized loss and of the regularizer against each other.

    Args:
        loss: :math:`F_\lambda` as a function of the movement ``W`` (e.g. ``expected_square_loss + bai_lee``).
        problem: from :func:`lifted_problem`, with the same data and :math:`\lambda`.
        W: ``(m, d)`` the point.
        M_ref: ``(m, d, d)`` PSD reference blocks.

    Returns:
        :class:`Identity`.

    Example:
        >>> import jax, jax.numpy as jnp
        >>> import taylorlib as tl
        >>> p0 = tl.nets.two_layer(16, "softplus").init(jax.random.key(0), 3)
        >>> x, y = tl.data.sphere(jax.random.key(1), 10, 3), jnp.ones(10)
        >>> loss = lambda W: (tl.randomize.expected_square_loss(p0, W, x, y, activation="softplus")
        ...                   + tl.regularizers.bai_lee(W, 1e-2))
        >>> prob = tl.relaxation.lifted_problem(p0, x, y, activation="softplus", lam=1e-2)
        >>> W, W_star = 0.3 * jax.random.normal(jax.random.key(2), (2, 16, 3))
        >>> ident = tl.relaxation.landscape_identity(loss, prob, W, tl.relaxation.lift(W_star))
        >>> ident.error < 1e-4
        True
    """
    from . import landscape as _landscape  # at call time: a monkeypatched hvp is seen

    problem = _check_problem(problem)
    if not callable(loss):
        raise TypeError(f"loss must be callable, got {type(loss).__name__}")
    W = _check_W(problem, W)
    M_ref = _check_M(problem, M_ref, "M_ref")
    factors = _reference_factors(M_ref)
    curvature = sum(
        float(_landscape.sign_averaged_curvature(loss, W, jnp.asarray(V, W.dtype))) for V in factors
    )
    lhs = curvature - float(jnp.vdot(jax.grad(loss)(W), W))
    gn, conv, reg, diff, _ = _closed_form_terms(problem, W, M_ref)
    rhs = 2.0 * diff - conv + gn + reg
    return Identity(lhs, rhs, gn, conv, reg, abs(lhs - rhs) / (1.0 + abs(rhs)))


def landscape_slack(
    problem: LiftedProblem,
    W: Float[Array, "m d"],
    M_ref: Float[Array, "m d d"],
    *,
    grad_norm: float = 0.0,
    min_eigenvalue: float = 0.0,
) -> Slack:
    r"""How far an approximate SOSP ``W`` of :math:`F_\lambda` can lie above a reference: a bound on
    :math:`F_0(W) - F_0^{\rm lift}(M^\star)`.

    At a point with :math:`\lVert\nabla F_\lambda(W)\rVert \le` ``grad_norm`` and
    :math:`\lambda_{\min}(\nabla^2F_\lambda(W)) \ge` ``min_eigenvalue`` (both in the parametrization of ``W``) the
    left side of the identity of :func:`landscape_identity` is at least
    :math:`\min(0,\lambda_{\min})\,\mathrm{tr}M^\star - \lVert\nabla F_\lambda\rVert\lVert W\rVert_F`, since
    :math:`\mathbb E\lVert D\rVert^2 = \mathrm{tr}M^\star`. With :math:`\mathrm{conv}\ge0` this gives

    .. math:: F_0(W) - F_0^{\rm lift}(M^\star) &\le \tfrac12\big[\mathrm{GN} + \mathbb E\,\nabla^2R(W)[D,D] - 8R(W)\\
       &\qquad + \max(0,-\lambda_{\min})\,\mathrm{tr}M^\star + \lVert\nabla F_\lambda\rVert\,\lVert W\rVert_F\big].

    For :math:`R = \lambda S^2`, :math:`S = \sum_r s_r^2`, :math:`s_r = \lVert w_r\rVert^2`:
    :math:`\mathbb E\,\nabla^2R[D,D] = \lambda\big[32\sum_r s_r^2\,w_r^\top M^\star_rw_r + 8S\sum_r(2w_r^\top
    M^\star_rw_r + s_r\,\mathrm{tr}M^\star_r)\big]`. With bounded :math:`\lVert W\rVert_{2,4}` and
    :math:`\lVert W^\star\rVert_{2,4}`, GN is :math:`O(1/m)`; the regularizer term does not depend on :math:`m`.

    Args:
        problem: from :func:`lifted_problem`.
        W: ``(m, d)`` the point.
        M_ref: ``(m, d, d)`` PSD reference blocks (``lift(W_star)`` or a relaxation solution).
        grad_norm: :math:`\lVert\nabla F_\lambda(W)\rVert \ge 0`.
        min_eigenvalue: :math:`\lambda_{\min}(\nabla^2F_\lambda(W))`.

    Returns:
        :class:`Slack`.

    Example:
        >>> import jax, jax.numpy as jnp
        >>> import taylorlib as tl
        >>> p0 = tl.nets.two_layer(64, "softplus").init(jax.random.key(0), 3)
        >>> x = tl.data.sphere(jax.random.key(1), 10, 3)
        >>> W, W_star = 0.3 * jax.random.normal(jax.random.key(2), (2, 64, 3))
        >>> prob = tl.relaxation.lifted_problem(p0, x, jnp.zeros(10), activation="softplus")
        >>> s = tl.relaxation.landscape_slack(prob, W, tl.relaxation.lift(W_star), grad_norm=0.1)
        >>> round(s.total - 0.5 * (s.gauss_newton + s.gradient), 12), s.regularizer, s.curvature
        (0.0, 0.0, 0.0)
    """
    problem = _check_problem(problem)
    W = _check_W(problem, W)
    M_ref = _check_M(problem, M_ref, "M_ref")
    grad_norm = check_positive(grad_norm, "grad_norm", allow_zero=True)
    if isinstance(min_eigenvalue, bool) or not np.isfinite(float(min_eigenvalue)):
        raise ValueError(f"min_eigenvalue must be a finite real number, got {min_eigenvalue!r}")
    gn, _, reg, _, trace = _closed_form_terms(problem, W, M_ref)
    curv = max(0.0, -float(min_eigenvalue)) * trace
    grad = float(grad_norm) * float(np.linalg.norm(np.asarray(W, np.float64)))
    return Slack(0.5 * (gn + reg + curv + grad), gn, reg, curv, grad)


def planted_movement(params0: Params, direction: Float[Array, " d"], norm: float) -> Float[Array, "m d"]:
    r"""A planted movement :math:`W^\star`: rows :math:`w^\star_r = c\,\beta` on the neurons with :math:`a_r = +1`,
    zero elsewhere, with :math:`c` such that :math:`\lVert W^\star\rVert_{2,4} =` ``norm``.

    Then :math:`c = \text{norm}\cdot(m_+)^{-1/4}` with :math:`m_+` the number of :math:`a_r = +1` neurons, so each
    row has the quadratic-regime size :math:`m^{-1/4}`, and :math:`f^Q_{W^\star}(x) = \frac{c^2}{2\sqrt m}
    \sum_{a_r=+1}\sigma''(w_{0,r}\cdot x)(\beta\cdot x)^2` has a limit as :math:`m\to\infty`.

    Args:
        params0: ``{"W": (m, d), "a": (m,)}``.
        direction: ``(d,)`` the direction :math:`\beta` (normalized here).
        norm: :math:`\lVert W^\star\rVert_{2,4} > 0`.

    Returns:
        ``(m, d)`` movement.

    Example:
        >>> import jax, jax.numpy as jnp
        >>> import taylorlib as tl
        >>> p0 = tl.nets.two_layer(64, "softplus").init(jax.random.key(0), 3)
        >>> W_star = tl.relaxation.planted_movement(p0, jnp.array([3.0, 4.0, 0.0]), 2.0)
        >>> round(float(tl.regularizers.norm_2p(W_star, 4)), 4), W_star[p0["a"] < 0].any().item()
        (2.0, False)
    """
    W0, a, _ = check_movement(params0)
    beta = as_float_array(direction, "direction")
    if beta.shape != (W0.shape[1],):
        raise ValueError(f"direction must have shape (d,) = ({W0.shape[1]},), got {tuple(beta.shape)}")
    check_finite(beta, "direction")
    norm = check_positive(norm, "norm")
    plus = a > 0
    count = jnp.sum(plus)
    size = jnp.linalg.norm(beta)
    if not is_tracer(size) and float(size) == 0:
        raise ValueError("direction must be non-zero")
    if not is_tracer(count) and int(count) == 0:
        raise ValueError("params0['a'] has no +1 entries: the planted movement lives on the a_r = +1 neurons")
    c = norm * count.astype(W0.dtype) ** (-0.25)
    return jnp.where(plus[:, None], ((c / size) * beta)[None, :], 0.0).astype(W0.dtype)


class PlantedInstance(NamedTuple):
    r"""A planted problem of :func:`planted_instance`.

    Attributes:
        params0: ``{"W": (m, d), "a": (m,)}`` the symmetric initialization (:math:`f^{(0)} = 0`).
        W_star: ``(m, d)`` the planted movement (:func:`planted_movement`).
        x: ``(n, d)`` training inputs on the sphere of radius :math:`\sqrt d`.
        y: ``(n,)`` training labels :math:`f^Q_{W^\star}(x_i)` plus label noise.
        x_test: ``(n_test, d)`` test inputs.
        y_test: ``(n_test,)`` noiseless test labels.
    """

    params0: Params
    W_star: Array
    x: Array
    y: Array
    x_test: Array
    y_test: Array


def planted_instance(
    key: PRNGKeyArray,
    width: int,
    d: int,
    n: int,
    *,
    activation: Any,
    norm: float,
    noise: float = 0.0,
    n_test: int = 1000,
) -> PlantedInstance:
    r"""A problem whose labels are realized by a known movement: :math:`y = f^Q_{W^\star}(x) + \text{noise}`.

    Draws a symmetric two-layer network (``tl.nets.two_layer``), a uniformly random unit direction :math:`\beta`,
    the planted :math:`W^\star` of :func:`planted_movement` with :math:`\lVert W^\star\rVert_{2,4} =` ``norm``,
    and inputs uniform on the sphere of radius :math:`\sqrt d`. Then :math:`L^Q(W^\star) = 0` on noiseless labels,
    and :math:`\lVert W^\star\rVert_{2,4}` does not change with the width.

    Args:
        key: typed PRNG key (network, direction, inputs and noise).
        width: ``m`` (even).
        d: input dimension.
        n: training samples.
        activation: twice-differentiable activation.
        norm: :math:`\lVert W^\star\rVert_{2,4} > 0`.
        noise: standard deviation of the Gaussian label noise (training labels only).
        n_test: test samples.

    Returns:
        :class:`PlantedInstance`. Traceable in ``key`` (``jax.vmap`` over keys works).

    Example:
        >>> import jax, jax.numpy as jnp
        >>> import taylorlib as tl
        >>> inst = tl.relaxation.planted_instance(jax.random.key(0), 64, 5, 30, activation="softplus", norm=2.0)
        >>> loss = tl.randomize.expected_square_loss(inst.params0, inst.W_star, inst.x, inst.y,
        ...                                          activation="softplus")
        >>> fq = tl.quadratic.two_layer_terms(inst.params0, inst.W_star, inst.x, activation="softplus", order=2)[2]
        >>> bool(jnp.allclose(fq, inst.y, atol=1e-6)), bool(loss > 0)   # L^Q(W*) = 0; F adds the E term
        (True, True)
    """
    check_key(key)
    width = check_int(width, "width", minimum=2)
    d = check_int(d, "d", minimum=1)
    n = check_int(n, "n", minimum=1)
    n_test = check_int(n_test, "n_test", minimum=1)
    noise = check_positive(noise, "noise", allow_zero=True)
    norm = check_positive(norm, "norm")
    from . import data as _data
    from . import nets as _nets
    from . import quadratic as _quadratic

    k_net, k_beta, k_x, k_test, k_noise = jax.random.split(key, 5)
    params0 = _nets.two_layer(width, activation=activation).init(k_net, d)
    beta = jax.random.normal(k_beta, (d,))
    W_star = planted_movement(params0, beta, norm)
    x, x_test = _data.sphere(k_x, n, d), _data.sphere(k_test, n_test, d)

    def label(x):
        f0, _, f2 = _quadratic.two_layer_terms(params0, W_star, x, activation=activation, order=2)
        return f0 + f2

    y = label(x) + noise * jax.random.normal(k_noise, (n,))
    return PlantedInstance(params0, W_star, x, y, x_test, label(x_test))
