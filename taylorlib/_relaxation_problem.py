r"""The lifted problem of :mod:`taylorlib.relaxation` (private; public as ``tl.relaxation.*``): the records,
:func:`lifted_problem`, :func:`lift` and the convex objective :math:`g(M)` with its gradient."""

from __future__ import annotations

from typing import Any, NamedTuple

import jax
import jax.numpy as jnp

from . import _two_layer
from . import activations as _act
from ._checks import (
    as_float_array,
    check_finite,
    check_positive,
)
from .quadratic import check_movement
from .typing import Array, Float, Params


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
    f0 = jnp.sum(_two_layer.coefficients(u, a, act, 0), axis=-1)
    alpha = _two_layer.coefficients(u, a, _act.derivative(act, 2), 2)  # f^(2) = sum_r alpha_r (w_r.x)^2
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
