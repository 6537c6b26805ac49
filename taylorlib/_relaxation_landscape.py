r"""The landscape argument of :mod:`taylorlib.relaxation` (private; public as ``tl.relaxation.*``):
:func:`landscape_identity`, :func:`landscape_slack` and the planted reference instances."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from ._checks import (
    as_float_array,
    check_finite,
    check_int,
    check_key,
    check_positive,
    is_tracer,
)
from ._relaxation_problem import Identity, LiftedProblem, Slack, _check_M, _check_problem, _check_W
from ._relaxation_solver import _float64
from .quadratic import check_movement
from .typing import Array, Float, Params, PRNGKeyArray

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
