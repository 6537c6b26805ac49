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
builds a reference :math:`W^\star` with a prescribed :math:`\lVert W^\star\rVert_{2,4}`, and
:func:`planted_instance` a problem whose labels it realizes. On such an instance, :func:`objective` is the book's :math:`F_\lambda` and
:func:`certify` measures everything above at one point (a :class:`Certificate`).

References:
    Bai & Lee 2020 (arXiv:1910.01619); Beck & Teboulle 2009 (FISTA); O'Donoghue & Candès 2015 (adaptive restart);
    Burer & Monteiro 2003 (the factorization :math:`M_r = U_r U_r^\top`).
"""

from __future__ import annotations

from ._relaxation_certificate import Certificate, certify, objective
from ._relaxation_landscape import (
    PlantedInstance,
    landscape_identity,
    landscape_slack,
    planted_instance,
    planted_movement,
)
from ._relaxation_problem import (
    Identity,
    LiftedProblem,
    Relaxation,
    Slack,
    lift,
    lifted_gradient,
    lifted_objective,
    lifted_problem,
)
from ._relaxation_solver import dual_bound, solve

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
    "objective",
    "Certificate",
    "certify",
]
