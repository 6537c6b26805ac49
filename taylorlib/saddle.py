r"""Escaping a strict saddle: escape times of (perturbed) gradient descent and their linear law.

Near a critical point :math:`\theta_s` with Hessian :math:`H`, gradient descent with step :math:`\eta` is the linear
map :math:`\theta_{t+1} - \theta_s = (I - \eta H)(\theta_t - \theta_s)`. A component along an eigenvector with
eigenvalue :math:`\lambda < 0` grows by the factor :math:`1 + \eta|\lambda|` per step, so from a start of size
:math:`\delta` the component along the bottom eigenvector reaches a fixed size :math:`c` after

.. math:: T(\delta) \approx \frac{\ln(1/\delta) + \ln c - \ln|g|}{\ln(1 + \eta|\lambda_{\min}|)}

steps (:math:`g` the start's component along it, in units of :math:`\delta`): the escape time grows linearly in
:math:`\ln(1/\delta)` with slope :math:`1/\ln(1+\eta|\lambda_{\min}|)` (:func:`predicted_slope`). A perturbation
drawn uniformly from the ball of radius :math:`\delta\sqrt P` in :math:`\mathbb R^P` has, like a Gaussian start with
entries of size :math:`\delta`, a component of size about :math:`\delta` along any fixed direction; added as the
first update of perturbed gradient descent, it escapes one step later than that start.

:func:`escape_time` measures one escape (traceable, so ``jax.vmap`` and ``tl.sweep.run`` map it over seeds);
:func:`fit_escape_law` fits the slope per seed and reports its spread.

References:
    Jin, Ge, Netrapalli, Kakade & Jordan 2017 (arXiv:1703.00887); Lee, Simchowitz, Jordan & Recht 2016
    (arXiv:1602.04915).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from . import _tree
from ._checks import check_float_leaves, check_int, check_key, check_positive
from .typing import Array, Float, Params, PRNGKeyArray

__all__ = ["EscapeFit", "predicted_slope", "escape_time", "fit_escape_law"]


class EscapeFit(NamedTuple):
    r"""Least-squares fits of escape steps against :math:`\ln(1/\delta)`, one per seed (:func:`fit_escape_law`).

    Attributes:
        slope: mean over seeds of the fitted slopes (steps per unit of :math:`\ln(1/\delta)`).
        slope_spread: their standard deviation over seeds (``ddof=1``; 0 for one seed).
        intercept: mean over seeds of the fitted values at the centre of the :math:`\ln(1/\delta)` grid.
        intercept_spread: their standard deviation over seeds.
        slopes: ``(num_seeds,)`` the per-seed slopes.
    """

    slope: float
    slope_spread: float
    intercept: float
    intercept_spread: float
    slopes: np.ndarray


def predicted_slope(learning_rate: float, min_eigenvalue: float) -> float:
    r"""The slope :math:`1/\ln(1 + \eta|\lambda_{\min}|)` of escape steps against :math:`\ln(1/\delta)`.

    Args:
        learning_rate: :math:`\eta > 0`.
        min_eigenvalue: :math:`\lambda_{\min} < 0` of the Hessian at the saddle (same parametrization).

    Returns:
        float.

    Example:
        >>> import math
        >>> import taylorlib as tl
        >>> round(tl.saddle.predicted_slope(0.5, -2.0), 4) == round(1 / math.log(2.0), 4)
        True
    """
    eta = check_positive(learning_rate, "learning_rate")
    lam = float(min_eigenvalue)
    if not (math.isfinite(lam) and lam < 0):
        raise ValueError(f"min_eigenvalue must be negative (a strict saddle), got {min_eigenvalue!r}")
    return 1.0 / math.log1p(eta * abs(lam))


def escape_time(
    loss: Callable[[Params], Float[Array, ""]],
    params: Params,
    key: PRNGKeyArray,
    *,
    learning_rate: float,
    scale: float | Float[Array, ""],
    steps: int,
    level: float,
    perturb: bool = False,
) -> Array:
    r"""The first step at which gradient descent from near a saddle brings ``loss`` below ``level``.

    * ``perturb=False``: plain gradient descent from ``params`` plus a Gaussian start with entries of size
      ``scale`` (:math:`\delta`), drawn from ``key``.
    * ``perturb=True``: perturbed gradient descent (``tl.train.perturbed_gd``) from ``params`` itself; its one
      perturbation (at the first step, where the gradient is below the threshold) is uniform in the ball of
      radius :math:`\delta\sqrt P`, :math:`P` the parameter count.

    Args:
        loss: scalar function of the params pytree.
        params: the saddle :math:`\theta_s`.
        key: typed PRNG key (the start, or the perturbation).
        learning_rate: :math:`\eta > 0`.
        scale: :math:`\delta > 0`.
        steps: number of steps ``>= 1``.
        level: the loss level that counts as escaped.
        perturb: which of the two starts (above).

    Returns:
        ``()`` int32: the step index ``t`` (loss evaluated at :math:`\theta_t`), or ``steps`` if the loss never
        falls below ``level``. Traceable: ``jax.vmap`` over keys works.

    Example:
        >>> import jax, jax.numpy as jnp
        >>> import taylorlib as tl
        >>> saddle = lambda w: w[0] ** 2 - w[1] ** 2 + w[1] ** 4      # Hessian diag(2, -2) at 0, minimum -1/4
        >>> T = [int(tl.saddle.escape_time(saddle, jnp.zeros(2), jax.random.key(0), learning_rate=0.1,
        ...                                 scale=s, steps=200, level=-0.1)) for s in (1e-3, 1e-6)]
        >>> predicted = 3 * jnp.log(10.0) * tl.saddle.predicted_slope(0.1, -2.0)   # 3 decades, 1.2x per step
        >>> bool(abs(T[1] - T[0] - predicted) <= 1)
        True
    """
    from . import train as _train  # at call time, so that a patched tl.train.perturbed_gd is used

    check_float_leaves(params, "params")
    check_key(key)
    steps = check_int(steps, "steps", minimum=1)
    check_positive(learning_rate, "learning_rate")
    check_positive(scale, "scale")
    size = _tree.tree_size(params)
    k_start, k_opt = jax.random.split(key)
    if perturb:
        start = params
        opt = _train.perturbed_gd(learning_rate, scale * math.sqrt(size), 1e-30, k_opt, min_interval=steps)
    else:
        leaves, treedef = jax.tree_util.tree_flatten(params)
        keys = jax.random.split(k_start, len(leaves))
        noise = [
            scale * jax.random.normal(k, jnp.shape(v), jnp.result_type(v))
            for k, v in zip(keys, leaves, strict=True)
        ]
        start = jax.tree_util.tree_map(jnp.add, params, jax.tree_util.tree_unflatten(treedef, noise))
        opt = _train.perturbed_gd(learning_rate, 0.0, 0.0, k_opt)
    _, hist = _train.fit(loss, start, opt, steps)
    below = hist.loss < level
    return jnp.where(jnp.any(below), jnp.argmax(below), steps).astype(jnp.int32)


def fit_escape_law(scales: Any, times: Any) -> EscapeFit:
    r"""Fit escape steps against :math:`\ln(1/\delta)`, separately for each seed.

    Args:
        scales: ``(k,)`` the start sizes :math:`\delta` (at least two distinct values).
        times: ``(k, num_seeds)`` escape steps (:func:`escape_time`); runs that never escaped must be removed.

    Returns:
        :class:`EscapeFit`.

    Example:
        >>> import numpy as np
        >>> import taylorlib as tl
        >>> deltas = 10.0 ** -np.arange(4, 10)
        >>> times = 3.0 * np.log(1 / deltas)[:, None] + np.array([[10.0, 12.0]])   # slope 3, two seeds
        >>> fit = tl.saddle.fit_escape_law(deltas, times)
        >>> round(fit.slope, 6), round(fit.slope_spread, 6)
        (3.0, 0.0)
    """
    scales = np.asarray(scales, np.float64)
    times = np.asarray(times, np.float64)
    if scales.ndim != 1 or np.unique(scales).size < 2 or np.any(scales <= 0):
        raise ValueError(
            f"scales must be a 1-D array of at least two distinct positive values, got {scales!r}"
        )
    if times.ndim != 2 or times.shape[0] != scales.shape[0]:
        raise ValueError(
            f"times must have shape (k, num_seeds) with k = {scales.shape[0]}, got {times.shape}"
        )
    if not np.all(np.isfinite(times)):
        raise ValueError("times contains non-finite values")
    X = np.log(1.0 / scales)
    Xc = X - X.mean()
    slopes = (Xc @ (times - times.mean(axis=0))) / (Xc @ Xc)
    centres = times.mean(axis=0)
    spread = lambda v: float(np.std(v, ddof=1)) if v.size > 1 else 0.0
    return EscapeFit(float(slopes.mean()), spread(slopes), float(centres.mean()), spread(centres), slopes)
