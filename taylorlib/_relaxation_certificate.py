r"""The certificate of :mod:`taylorlib.relaxation` (private; public as ``tl.relaxation.*``): the book's objective
:math:`F_\lambda` on a planted instance (:func:`objective`) and everything chapter 3 measures at one point of it
(:func:`certify`, :class:`Certificate`)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, NamedTuple

import jax.numpy as jnp
import numpy as np

from . import activations as _act
from . import randomize as _randomize
from . import regularizers as _regularizers
from ._checks import check_choice, check_positive
from ._relaxation_landscape import PlantedInstance, landscape_identity, landscape_slack
from ._relaxation_problem import _check_W, lift, lifted_problem
from ._relaxation_solver import dual_bound, solve
from .landscape import Stationarity
from .typing import Array, Float


class Certificate(NamedTuple):
    r"""What :func:`certify` measures at one point ``W`` of a planted instance (Python floats; ``rank`` an int).

    Objective values are in the units of the loss (mean squared error over the training set). Fields can be
    stacked over several points with ``Certificate(*map(np.array, zip(*rows)))``.

    Attributes:
        F: :math:`F_\lambda(W)`, the objective with the regularizer (:func:`objective`), float32 arithmetic.
        F0: :math:`F_0(W)`, the same without the regularizer (:math:`\lambda = 0`).
        F0_star: :math:`F_0(W^\star)` at the planted movement.
        F_saddle: :math:`F_\lambda(0)`, the objective at the saddle :math:`W = 0`.
        bound: the certified lower bound on :math:`\min_W F_\lambda` from the relaxation (``Relaxation.dual`` of
            :func:`solve`; float64).
        duality_gap: ``Relaxation.gap``, :math:`g(M) - \text{bound} \ge 0` of the relaxation solution :math:`M`:
            how far the bound can lie below the relaxation optimum.
        self_bound: :func:`dual_bound` from ``lift(W)`` alone: a second certified lower bound on
            :math:`\min_W F_\lambda`, tight exactly when ``W`` satisfies the optimality conditions of the convex
            problem.
        identity: the relative error ``Identity.error`` of :func:`landscape_identity` against
            ``lift(W_star)`` (round-off: about 1e-6 in float32), or NaN when not asked for.
        slack: ``Slack.total`` of :func:`landscape_slack` against ``lift(W_star)`` with the tolerances of
            ``stat``: a bound on :math:`F_0(W) - F_0(W^\star)` at an approximate second-order stationary point.
        rank: the largest rank of a block of the relaxation solution :math:`M` (eigenvalues above ``rank_tol``
            times the largest eigenvalue of all blocks); 1 means the relaxation is exact.
        grad_norm: :math:`\lVert\nabla F_\lambda(W)\rVert` from ``stat`` (parametrization of ``W``).
        min_eigenvalue: :math:`\lambda_{\min}(\nabla^2F_\lambda(W))` from ``stat`` (parametrization of ``W``).
    """

    F: float
    F0: float
    F0_star: float
    F_saddle: float
    bound: float
    duality_gap: float
    self_bound: float
    identity: float
    slack: float
    rank: int
    grad_norm: float
    min_eigenvalue: float


def _check_instance(inst: Any) -> PlantedInstance:
    if not isinstance(inst, PlantedInstance):
        raise TypeError(
            f"inst must be a PlantedInstance (from tl.relaxation.planted_instance), got {type(inst).__name__}"
        )
    return inst


def objective(
    inst: PlantedInstance, lam: float, *, activation: Any, model: str = "taylor"
) -> Callable[[Float[Array, "m d"]], Float[Array, ""]]:
    r"""The book's objective :math:`F_\lambda(W) = \mathbb E_\Sigma L(W) + \lambda\lVert W\rVert_{2,4}^8` on the
    training set of a planted instance, as a function of the movement ``W``.

    :math:`\mathbb E_\Sigma L` is ``tl.randomize.expected_square_loss`` (the exact sign average of the
    second-order Taylor model, or of the full network with ``model="network"``) and the regularizer is
    ``tl.regularizers.bai_lee``. The returned function is differentiable and traceable in ``W``; ``inst`` may
    hold tracers (``jax.vmap`` over instances works).

    Args:
        inst: :class:`PlantedInstance` (from :func:`planted_instance`); its ``params0``, ``x`` and ``y`` are used.
        lam: :math:`\lambda \ge 0`, the strength of the regularizer.
        activation: the network's activation (the one the instance was drawn with; twice differentiable for
            ``model="taylor"``).
        model: ``"taylor"`` (default) or ``"network"``.

    Returns:
        ``F(W) -> ()`` for a movement ``W`` of shape ``(m, d)``.

    Raises:
        TypeError: ``inst`` is not a :class:`PlantedInstance`, or ``lam`` is not a real number.
        ValueError: ``lam < 0``, an unknown ``model`` or ``activation``, or an activation with
            :math:`\sigma'' = 0` for ``model="taylor"``.

    Example:
        >>> import jax, jax.numpy as jnp
        >>> import taylorlib as tl
        >>> inst = tl.relaxation.planted_instance(jax.random.key(0), 16, 3, 20, activation="softplus", norm=2.0)
        >>> F = tl.relaxation.objective(inst, 1e-3, activation="softplus")
        >>> W = 0.5 * inst.W_star
        >>> direct = (tl.randomize.expected_square_loss(inst.params0, W, inst.x, inst.y, activation="softplus")
        ...           + tl.regularizers.bai_lee(W, 1e-3))
        >>> bool(F(W) == direct), bool(jnp.allclose(F(jnp.zeros_like(W)), jnp.mean(inst.y**2)))  # F(0) = E y^2
        (True, True)
    """
    inst = _check_instance(inst)
    lam = check_positive(lam, "lam", allow_zero=True)
    model = check_choice(model, "model", ("taylor", "network"))
    act = _act.get(activation)
    if model == "taylor":
        _act.require_order(act, 2, "the quadratic term of the randomized Taylor model")

    def F(W: Float[Array, "m d"]) -> Float[Array, ""]:
        data = (inst.params0, W, inst.x, inst.y)
        loss = _randomize.expected_square_loss(*data, activation=activation, model=model)
        return loss + _regularizers.bai_lee(W, lam)

    return F


def _stat_value(stat: Stationarity, field: str) -> float:
    value = getattr(stat, field)
    if np.shape(value) != ():
        raise ValueError(
            f"stat.{field} must be a scalar (one point, not a batch), got shape {np.shape(value)}"
        )
    value = float(value)
    if not np.isfinite(value):
        raise ValueError(f"stat.{field} must be finite, got {value}")
    return value


def certify(
    inst: PlantedInstance,
    W: Float[Array, "m d"],
    stat: Stationarity,
    *,
    lam: float,
    activation: Any,
    rank: int | None = None,
    num_iter: int | None = None,
    identity: bool = False,
    rank_tol: float = 1e-6,
) -> Certificate:
    r"""Certify a point ``W`` of :math:`F_\lambda` on a planted instance: the relaxation bound, the bound from
    ``W`` alone, the landscape identity and slack against :math:`W^\star`, and the rank of the relaxation.

    Builds the lifted problem (:func:`lifted_problem`), solves the relaxation (:func:`solve`, factored, with
    ``rank`` columns per block), and evaluates at ``W``: :math:`F_\lambda`, :math:`F_0`, the bound of
    :func:`dual_bound` from ``lift(W)``, :func:`landscape_slack` against ``lift(inst.W_star)`` with the
    tolerances of ``stat`` and, if ``identity``, the error of :func:`landscape_identity` (Hessian-vector
    products: the costly part). Not traceable (the certificate is computed in float64 on the host).

    Args:
        inst: :class:`PlantedInstance` (one instance, not a batch).
        W: ``(m, d)`` the point, usually an approximate second-order stationary point of :math:`F_\lambda`.
        stat: ``tl.landscape.stationarity(objective(inst, lam, activation=...), W, key)`` at ``W``: its
            ``grad_norm`` and ``min_eigenvalue`` (scalars) enter the slack.
        lam: :math:`\lambda \ge 0` of :math:`F_\lambda`.
        activation: the instance's activation (twice differentiable).
        rank: columns per block of the factored solver, ``1 <= rank <= d`` (default ``d``).
        num_iter: iterations of the solver (default that of :func:`solve`).
        identity: also compute the landscape identity (default False: ``Certificate.identity`` is NaN).
        rank_tol: eigenvalues of the relaxation solution above ``rank_tol`` times its largest eigenvalue count
            towards ``Certificate.rank``.

    Returns:
        :class:`Certificate`.

    Raises:
        TypeError: ``inst`` is not a :class:`PlantedInstance`, ``stat`` not a ``tl.landscape.Stationarity`` or
            ``identity`` not a bool.
        ValueError: ``W`` (or ``inst.W_star``) not of shape ``(m, d)``, a batched or non-finite ``stat``,
            ``lam < 0``, a bad ``rank``, ``num_iter`` or ``rank_tol``.

    Example:
        >>> import jax, jax.numpy as jnp
        >>> import taylorlib as tl
        >>> inst = tl.relaxation.planted_instance(jax.random.key(0), 16, 3, 20, activation="softplus", norm=2.0)
        >>> F = tl.relaxation.objective(inst, 1e-3, activation="softplus")
        >>> W = 0.5 * inst.W_star
        >>> stat = tl.landscape.stationarity(F, W, jax.random.key(1), 24)
        >>> c = tl.relaxation.certify(inst, W, stat, lam=1e-3, activation="softplus", identity=True)
        >>> c.rank, bool(c.self_bound <= c.bound <= c.F), c.identity < 1e-4   # W is not a minimizer: F > bound
        (1, True, True)
    """
    inst = _check_instance(inst)
    if not isinstance(stat, Stationarity):
        raise TypeError(
            f"stat must be a tl.landscape.Stationarity (from tl.landscape.stationarity), got {type(stat).__name__}"
        )
    if not isinstance(identity, bool):
        raise TypeError(f"identity must be a bool, got {type(identity).__name__}")
    rank_tol = check_positive(rank_tol, "rank_tol")
    grad_norm = check_positive(_stat_value(stat, "grad_norm"), "stat.grad_norm", allow_zero=True)
    min_eigenvalue = _stat_value(stat, "min_eigenvalue")
    prob = lifted_problem(inst.params0, inst.x, inst.y, activation=activation, lam=lam)
    W = _check_W(prob, W)
    W_star = _check_W(prob, inst.W_star, "inst.W_star")
    F = objective(inst, lam, activation=activation)
    F0 = objective(inst, 0.0, activation=activation)
    relax = solve(prob, rank=rank, num_iter=num_iter)
    M_star = lift(W_star)
    ident = landscape_identity(F, prob, W, M_star).error if identity else float("nan")
    slack = landscape_slack(prob, W, M_star, grad_norm=grad_norm, min_eigenvalue=min_eigenvalue)
    blocks = np.linalg.eigvalsh(np.asarray(relax.M, np.float64))  # (m, d) eigenvalues per block
    block_rank = int(np.max(np.sum(blocks > rank_tol * blocks.max(), axis=1)))
    return Certificate(
        F=float(F(W)),
        F0=float(F0(W)),
        F0_star=float(F0(W_star)),
        F_saddle=float(F(jnp.zeros_like(W))),
        bound=relax.dual,
        duality_gap=relax.gap,
        self_bound=dual_bound(prob, lift(W)),
        identity=ident,
        slack=slack.total,
        rank=block_rank,
        grad_norm=grad_norm,
        min_eigenvalue=min_eigenvalue,
    )
