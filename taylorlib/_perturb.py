r"""Perturbed gradient descent of :mod:`taylorlib.train` (private; public as ``tl.train.perturbed_gd``,
``tl.train.perturb`` and ``tl.train.PerturbedGDState``): noise uniform in a ball whenever the gradient is
small (Jin et al. 2017, arXiv:1703.00887)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
import optax

from . import _tree
from ._checks import check_int, check_key, check_positive
from .typing import Array, Params, PRNGKeyArray


class PerturbedGDState(NamedTuple):
    """State of :func:`perturbed_gd`.

    Attributes:
        key: typed PRNG key, split at every step.
        count: ``()`` int, steps taken.
        last: ``()`` int, step of the last perturbation (``-min_interval`` before any).
        num_perturbations: ``()`` int, perturbations added so far.
    """

    key: PRNGKeyArray
    count: Array  # type: ignore[assignment]  # shadows tuple.count, as optax's states do
    last: Array
    num_perturbations: Array


def _uniform_ball(key: PRNGKeyArray, like: Params, radius: Any) -> Params:
    """A sample uniform in the Euclidean ball of ``radius`` in the space of pytrees shaped ``like``."""
    leaves, treedef = jax.tree_util.tree_flatten(like)
    p = sum(int(np.prod(jnp.shape(v))) for v in leaves)
    k_dir, k_rad, *k_leaves = jax.random.split(key, len(leaves) + 2)
    g = [
        jax.random.normal(k, jnp.shape(v), jnp.result_type(v)) for k, v in zip(k_leaves, leaves, strict=True)
    ]
    norm = _tree.tree_norm(g)
    r = radius * jax.random.uniform(k_rad, (), norm.dtype) ** (1.0 / p)
    return jax.tree_util.tree_unflatten(treedef, [r * v / jnp.maximum(norm, 1e-30) for v in g])


def perturbed_gd(
    learning_rate: float | Callable[[Array], Array],
    radius: float | Array,
    threshold: float,
    key: PRNGKeyArray,
    *,
    min_interval: int = 1,
) -> optax.GradientTransformation:
    r"""Perturbed gradient descent (Jin et al. 2017) as an optax transform that keeps its key in its state.

    .. math:: u_t = -\eta_t g_t + \mathbb 1\{\|g_t\| < g_{\rm thr},\ t - t_{\rm last} \ge T\}\,\xi_t,
       \qquad \xi_t \sim \mathrm{Unif}\{\|\xi\| \le \rho\} \subset \mathbb R^p.

    Plain gradient descent while the gradient is large; near a stationary point (a saddle or a
    minimum) it adds a perturbation uniform in the ball of ``radius`` :math:`\rho` over all ``p``
    parameters, at most once every ``min_interval`` :math:`T` steps. Negative curvature then
    amplifies the perturbation and GD leaves the saddle; at a minimum the iterates jitter within
    :math:`O(\rho)`.

    Args:
        learning_rate: :math:`\eta \ge 0` or an optax schedule ``count -> eta``.
        radius: :math:`\rho \ge 0`.
        threshold: gradient-norm threshold :math:`g_{\rm thr} \ge 0`.
        key: typed PRNG key stored in the state (split every step).
        min_interval: minimum number of steps between two perturbations (``>= 1``).

    Returns:
        An ``optax.GradientTransformation`` with state :class:`PerturbedGDState`.

    Example:
        >>> import jax, jax.numpy as jnp
        >>> import taylorlib as tl
        >>> saddle = lambda w: w[0] ** 2 - w[1] ** 2 + w[1] ** 4     # strict saddle at 0
        >>> opt = tl.train.perturbed_gd(0.1, radius=1e-3, threshold=1e-4, key=jax.random.key(0))
        >>> w, _ = tl.train.fit(saddle, jnp.zeros(2), opt, 300)
        >>> round(abs(float(w[1])), 3)     # escaped to a minimum at w1 = +-1/sqrt(2)
        0.707
        >>> w_gd, _ = tl.train.fit(saddle, jnp.zeros(2), tl.train.perturbed_gd(0.1, 0.0, 1e-4,
        ...                        jax.random.key(0)), 300)   # radius 0: plain GD stays at 0
        >>> float(jnp.abs(w_gd).max())
        0.0

    References:
        Jin, Ge, Netrapalli, Kakade & Jordan 2017 (arXiv:1703.00887).
    """
    if not callable(learning_rate):
        check_positive(learning_rate, "learning_rate", allow_zero=True)
    init, noise_step = _perturbation(radius, threshold, key, min_interval)

    def update(grads: Params, state: PerturbedGDState, params: Params | None = None):
        del params
        lr = learning_rate(state.count) if callable(learning_rate) else learning_rate
        noise, new = noise_step(grads, state)
        return jax.tree_util.tree_map(lambda g, z: -lr * g + z, grads, noise), new

    return optax.GradientTransformation(init, update)


def _perturbation(
    radius: Any, threshold: Any, key: PRNGKeyArray, min_interval: int
) -> tuple[Callable, Callable]:
    """The shared state and noise of :func:`perturbed_gd` and :func:`perturb`: ``(init, noise_step)`` with
    ``noise_step(grads, state) -> (noise, new_state)``; the noise is uniform in the ball of ``radius`` on the
    steps that perturb and zero otherwise."""
    check_positive(radius, "radius", allow_zero=True)
    check_positive(threshold, "threshold", allow_zero=True)
    min_interval = check_int(min_interval, "min_interval", minimum=1)
    check_key(key)

    def init(params: Params) -> PerturbedGDState:
        zero = jnp.zeros((), jnp.int32)
        return PerturbedGDState(key, zero, zero - min_interval, zero)

    def noise_step(grads: Params, state: PerturbedGDState) -> tuple[Params, PerturbedGDState]:
        k_next, k_noise = jax.random.split(state.key)
        hit = (_tree.tree_norm(grads) < threshold) & (state.count - state.last >= min_interval)
        # Sample the noise only on the (rare) steps that perturb: drawing p normals every step costs
        # more than a cheap gradient step. Same keys as sampling always, so the iterates are unchanged;
        # with radius 0 (plain GD) the sampler is not even compiled.
        zeros = lambda: jax.tree_util.tree_map(jnp.zeros_like, grads)
        if isinstance(radius, (int, float)) and radius == 0:
            noise = zeros()
        else:
            noise = jax.lax.cond(hit, lambda: _uniform_ball(k_noise, grads, radius), zeros)
        new = PerturbedGDState(
            k_next,
            state.count + 1,
            jnp.where(hit, state.count, state.last),
            state.num_perturbations + hit.astype(jnp.int32),
        )
        return noise, new

    return init, noise_step


def perturb(
    radius: float,
    threshold: float,
    key: PRNGKeyArray,
    *,
    min_interval: int = 1,
) -> optax.GradientTransformation:
    r"""The perturbation of perturbed gradient descent as an optax transform that chains with any optimizer.

    .. math:: \tilde g_t = g_t + \mathbb 1\{\|g_t\| < g_{\rm thr},\ t - t_{\rm last} \ge T\}\,\zeta_t,
       \qquad \zeta_t \sim \mathrm{Unif}\{\|\zeta\| \le \rho\}.

    Put it first in a chain, ``optax.chain(perturb(rho, g_thr, key), optax.sgd(lr))``: the next
    transforms see the perturbed gradient, so near a stationary point the parameters move by
    :math:`-\eta\,\zeta_t` on top of the optimizer's step. ``radius`` is in gradient units; with
    ``optax.sgd(lr)`` the perturbation of the parameters has radius ``lr * radius``, and the chain draws
    the same noise as :func:`perturbed_gd` with radius ``lr * radius`` and the same key (with the
    opposite sign). Unlike :func:`perturbed_gd` it works with momentum, Adam or a schedule.

    Args:
        radius: :math:`\rho \ge 0`, in gradient units.
        threshold: gradient-norm threshold :math:`g_{\rm thr} \ge 0`.
        key: typed PRNG key stored in the state (split every step).
        min_interval: minimum number of steps between two perturbations (``>= 1``).

    Returns:
        An ``optax.GradientTransformation`` with state :class:`PerturbedGDState`.

    Example:
        >>> import jax, jax.numpy as jnp, optax
        >>> import taylorlib as tl
        >>> saddle = lambda w: w[0] ** 2 - w[1] ** 2 + w[1] ** 4     # strict saddle at 0
        >>> opt = optax.chain(tl.train.perturb(1e-2, 1e-4, jax.random.key(0)), optax.sgd(0.1))
        >>> w, _ = tl.train.fit(saddle, jnp.zeros(2), opt, 300)
        >>> round(abs(float(w[1])), 3)     # escaped to a minimum at w1 = +-1/sqrt(2)
        0.707

    References:
        Jin, Ge, Netrapalli, Kakade & Jordan 2017 (arXiv:1703.00887).
    """
    init, noise_step = _perturbation(radius, threshold, key, min_interval)

    def update(grads: Params, state: PerturbedGDState, params: Params | None = None):
        del params
        noise, new = noise_step(grads, state)
        return jax.tree_util.tree_map(jnp.add, grads, noise), new

    return optax.GradientTransformation(init, update)
