r"""Sample complexities from learning curves: threshold crossings and power-law exponents.

:func:`crossing_point` turns a learning curve into the sample size :math:`n^\star` at which the error
first falls below a threshold :math:`\tau`; :func:`fit_exponent` fits :math:`n^\star \approx C d^\alpha`
across dimensions; :func:`bootstrap_exponent` adds percentile intervals for both by resampling the seeds
of every curve. The curves usually come from :func:`taylorlib.sweep.run`.

Example:
    >>> import numpy as np
    >>> import taylorlib as tl
    >>> ns = np.geomspace(10, 1e4, 20)
    >>> round(float(tl.scaling.crossing_point(ns, 30.0 / ns, 0.1)), 3)  # 30/n = 0.1 at n = 300
    300.0
"""

from __future__ import annotations

import numbers
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
from numpy.typing import ArrayLike

from .typing import PRNGKeyArray

__all__ = ["Exponent", "ExponentInterval", "crossing_point", "fit_exponent", "bootstrap_exponent"]


class Exponent(NamedTuple):
    """Threshold sample sizes and their power-law fit in d (see :func:`fit_exponent`).

    Attributes:
        n_star: ``(len(ds),)`` crossing sample sizes (``nan`` where the curve never crosses).
        exponent: log-log slope :math:`\\alpha` of ``n_star`` against ``ds`` (``nan`` without ``ds``).
        prefactor: :math:`C` in :math:`n^\\star \\approx C d^\\alpha`.
    """

    n_star: np.ndarray
    exponent: float
    prefactor: float


class ExponentInterval(NamedTuple):
    r"""Threshold sample sizes and exponent with bootstrap intervals over seeds (see :func:`bootstrap_exponent`).

    Attributes:
        n_star: ``(len(ds),)`` :math:`n^\star` of the seed-mean curves.
        n_star_interval: ``(2, len(ds))`` percentile interval of :math:`n^\star` (``nan`` where more than
            a fraction ``1 - level`` of the resamples never cross).
        exponent: :math:`\alpha` fitted to ``n_star``.
        exponent_interval: ``(2,)`` percentile interval of :math:`\alpha`.
        exponent_sd: bootstrap standard deviation of :math:`\alpha`.
        samples: ``(n_boot,)`` bootstrap exponents (``nan`` where fewer than two curves crossed).
        crossed: ``(len(ds),)`` fraction of resamples whose curve crosses the threshold inside the grid.
    """

    n_star: np.ndarray
    n_star_interval: np.ndarray
    exponent: float
    exponent_interval: np.ndarray
    exponent_sd: float
    samples: np.ndarray
    crossed: np.ndarray


def _float64(x: Any, name: str) -> np.ndarray:
    """A float64 numpy copy (exact interpolation even when JAX runs in float32)."""
    if np.iscomplexobj(x):
        raise TypeError(f"{name} must be real, got a complex array")
    try:
        out = np.asarray(x, dtype=np.float64)
    except (TypeError, ValueError) as err:
        raise TypeError(f"{name} must be a real array, got {type(x).__name__}") from err
    return out


def crossing_point(ns: ArrayLike, errors: Any, threshold: float) -> np.ndarray:
    r"""The sample size :math:`n^\star` at which a learning curve first falls to ``threshold``.

    With :math:`i` the first index where :math:`e_i \le \tau`, :math:`n^\star` interpolates linearly
    in :math:`(\log n, \log e)` between :math:`(n_{i-1}, e_{i-1})` and :math:`(n_i, e_i)`:

    .. math:: \log n^\star = \log n_{i-1} + \frac{\log e_{i-1} - \log\tau}{\log e_{i-1} - \log e_i}
       \,(\log n_i - \log n_{i-1}),

    exact for a power law :math:`e = c\,n^{-a}`. Curves that start at or below ``threshold`` or never
    reach it give ``nan`` (the crossing is outside the grid).

    Args:
        ns: ``(k,)`` increasing positive sample sizes, or ``(..., k)`` one grid per curve.
        errors: ``(..., k)`` positive errors (leading axes are independent curves).
        threshold: positive :math:`\tau`.

    Returns:
        ``(...)`` float array of :math:`n^\star` (a 0-d array for one curve).

    Example:
        >>> import numpy as np
        >>> import taylorlib as tl
        >>> ns = np.array([10.0, 100.0, 1000.0])
        >>> round(float(tl.scaling.crossing_point(ns, 5.0 / ns, 0.02)), 6)  # 5/n = 0.02 at n = 250
        250.0
    """
    e = _float64(errors, "errors")
    n = _float64(ns, "ns")
    if e.ndim == 0 or e.shape[-1] < 2:
        raise ValueError(f"errors must have shape (..., k) with k >= 2 sample sizes, got {e.shape}")
    if n.shape[-1:] != e.shape[-1:]:
        raise ValueError(f"ns must have last axis of length {e.shape[-1]} (like errors), got shape {n.shape}")
    n = np.broadcast_to(n, e.shape)
    if not np.all(np.isfinite(n)) or np.any(n <= 0) or np.any(np.diff(n, axis=-1) <= 0):
        raise ValueError("ns must be positive and strictly increasing")
    if not np.all(np.isfinite(e)) or np.any(e <= 0):
        raise ValueError("errors must be positive and finite (log-log interpolation)")
    if isinstance(threshold, bool) or not isinstance(threshold, numbers.Real | np.ndarray | jax.Array):
        raise TypeError(f"threshold must be a positive real number, got {type(threshold).__name__}")
    tau = float(threshold)
    if not tau > 0:
        raise ValueError(f"threshold must be > 0, got {threshold!r}")
    below = e <= tau
    first = np.argmax(below, axis=-1)
    ok = below.any(axis=-1) & (first > 0)
    i = np.where(ok, first, 1)[..., None]
    e0, e1 = np.take_along_axis(e, i - 1, -1)[..., 0], np.take_along_axis(e, i, -1)[..., 0]
    n0, n1 = np.take_along_axis(n, i - 1, -1)[..., 0], np.take_along_axis(n, i, -1)[..., 0]
    with np.errstate(divide="ignore", invalid="ignore"):
        frac = np.where(e0 > e1, (np.log(e0) - np.log(tau)) / (np.log(e0) - np.log(e1)), 1.0)
    log_n = np.log(n0) + frac * (np.log(n1) - np.log(n0))
    return np.where(ok, np.exp(log_n), np.nan)


def fit_exponent(ns: ArrayLike, errors: Any, threshold: float, ds: ArrayLike | None = None) -> Exponent:
    r"""Threshold sample sizes :math:`n^\star(d)` and the exponent :math:`\alpha` of :math:`n^\star\propto d^\alpha`.

    :math:`n^\star` is :func:`crossing_point` of each curve; :math:`\alpha` and :math:`C` are the
    least-squares fit of :math:`\log n^\star = \log C + \alpha\log d` over the ``ds`` whose curve
    crosses (at least two are needed).

    Args:
        ns: ``(k,)`` sample sizes shared by all curves, or ``(len(ds), k)`` one grid per d (e.g.
            multiples of d).
        errors: ``(len(ds), k)`` errors (or ``(k,)`` for a single curve with ``ds=None``).
        threshold: the error level :math:`\tau` that defines :math:`n^\star`.
        ds: ``(len(ds),)`` dimensions; ``None`` returns only ``n_star``.

    Returns:
        An :class:`Exponent` record.

    Raises:
        ValueError: fewer than two crossing curves when ``ds`` is given, mismatched shapes.

    Example:
        >>> import numpy as np
        >>> import taylorlib as tl
        >>> ds = np.array([10.0, 20.0, 40.0])
        >>> ns = np.geomspace(10, 1e5, 30)
        >>> errors = (ds[:, None] ** 2 / ns[None, :]) ** 0.7  # crosses 0.5 at n = 2^(1/0.7) d^2
        >>> fit = tl.scaling.fit_exponent(ns, errors, 0.5, ds)
        >>> round(fit.exponent, 6)
        2.0
    """
    n_star = np.atleast_1d(crossing_point(ns, errors, threshold))
    if ds is None:
        return Exponent(n_star, float("nan"), float("nan"))
    d = _float64(ds, "ds")
    if d.shape != n_star.shape:
        raise ValueError(f"ds must have shape {n_star.shape} (one per curve of errors), got {d.shape}")
    if np.any(d <= 0):
        raise ValueError("ds must be positive")
    ok = np.isfinite(n_star)
    if ok.sum() < 2:
        raise ValueError(
            f"at least two curves must cross threshold {threshold} inside the n grid to fit an exponent; "
            f"n_star = {n_star.tolist()}"
        )
    slope, intercept = np.polyfit(np.log(d[ok]), np.log(n_star[ok]), 1)
    return Exponent(n_star, float(slope), float(np.exp(intercept)))


def _fit_rows(log_d: np.ndarray, log_n: np.ndarray) -> np.ndarray:
    """Least-squares slopes of ``log_n[b]`` against ``log_d`` over finite entries, one per row ``b``."""
    ok = np.isfinite(log_n)
    w = ok.astype(float)
    cnt = w.sum(-1)
    with np.errstate(invalid="ignore", divide="ignore"):
        xm = (w * log_d).sum(-1) / cnt
        ym = np.where(ok, log_n, 0.0).sum(-1) / cnt
        dx = np.where(ok, log_d - xm[:, None], 0.0)
        dy = np.where(ok, log_n - ym[:, None], 0.0)
        slope = (dx * dy).sum(-1) / (dx * dx).sum(-1)
    return np.where(cnt >= 2, slope, np.nan)


def bootstrap_exponent(
    key: PRNGKeyArray,
    ns: ArrayLike,
    errors: Any,
    threshold: float,
    ds: ArrayLike,
    *,
    n_boot: int = 2000,
    level: float = 0.9,
) -> ExponentInterval:
    r"""Percentile bootstrap over seeds for :math:`n^\star(d)` and the exponent of :func:`fit_exponent`.

    Each resample draws, independently for every d, ``n_seeds`` seeds with replacement, averages that
    curve over the drawn seeds, and recomputes :func:`crossing_point` and the least-squares slope
    :math:`\alpha` of :math:`\log n^\star` against :math:`\log d` (over the curves that cross). The point
    estimates are those of the seed-mean curves, as in :func:`fit_exponent`.

    Args:
        key: PRNG key for the resampling.
        ns: ``(k,)`` or ``(len(ds), k)`` sample sizes.
        errors: ``(len(ds), k, n_seeds)`` errors, seeds on the last axis.
        threshold: :math:`\tau`.
        ds: ``(len(ds),)`` dimensions.
        n_boot: number of resamples ``>= 10``.
        level: two-sided level of the percentile intervals, in (0, 1).

    Returns:
        An :class:`ExponentInterval`.

    Raises:
        ValueError: shapes that do not match, fewer than two seeds, a bad ``level`` or ``n_boot``, or
            fewer than two seed-mean curves crossing the threshold.

    Example:
        >>> import jax, numpy as np
        >>> import taylorlib as tl
        >>> ds = np.array([10.0, 20.0, 40.0])
        >>> ns = np.geomspace(10, 1e5, 30)
        >>> noise = np.exp(0.05 * jax.random.normal(jax.random.key(0), (3, 30, 4)))
        >>> errors = ((ds[:, None] ** 2 / ns) ** 0.7)[..., None] * np.asarray(noise)
        >>> res = tl.scaling.bootstrap_exponent(jax.random.key(1), ns, errors, 0.5, ds)
        >>> bool(res.exponent_interval[0] < 2.0 < res.exponent_interval[1]), res.exponent_sd < 0.1
        (True, True)
    """
    e = _float64(errors, "errors")
    if e.ndim != 3 or e.shape[-1] < 2:
        raise ValueError(f"errors must have shape (len(ds), k, n_seeds) with n_seeds >= 2, got {e.shape}")
    if isinstance(n_boot, bool) or not isinstance(n_boot, numbers.Integral) or n_boot < 10:
        raise ValueError(f"n_boot must be an int >= 10, got {n_boot!r}")
    if isinstance(level, bool) or not isinstance(level, numbers.Real) or not 0 < level < 1:
        raise ValueError(f"level must be a number in (0, 1), got {level!r}")
    if not (isinstance(key, jax.Array) and jnp.issubdtype(key.dtype, jax.dtypes.prng_key) and key.ndim == 0):
        raise TypeError(
            f"key must be a scalar typed PRNG key, e.g. jax.random.key(0); got {type(key).__name__}"
        )
    point = fit_exponent(ns, e.mean(-1), threshold, ds)
    n_d, _, n_seeds = e.shape
    idx = np.asarray(jax.random.randint(key, (n_boot, n_d, n_seeds), 0, n_seeds))
    resampled = np.take_along_axis(e[None], idx[:, :, None, :], axis=-1).mean(-1)  # (n_boot, n_d, k)
    n_star = crossing_point(np.broadcast_to(_float64(ns, "ns"), e.shape[:-1]), resampled, threshold)
    slopes = _fit_rows(np.log(_float64(ds, "ds")), np.log(n_star))
    q = (100 * (1 - level) / 2, 100 * (1 + level) / 2)
    crossed = np.isfinite(n_star).mean(0)
    with np.errstate(invalid="ignore"):  # a curve that never crosses has n* beyond the grid: +inf
        n_interval = np.percentile(np.where(np.isfinite(n_star), n_star, np.inf), q, axis=0)
    n_interval = np.where(np.isfinite(n_interval), n_interval, np.nan)
    finite = slopes[np.isfinite(slopes)]
    a_interval = np.percentile(finite, q) if finite.size else np.full(2, np.nan)
    sd = float(finite.std(ddof=1)) if finite.size > 1 else float("nan")
    return ExponentInterval(
        point.n_star, n_interval, point.exponent, np.asarray(a_interval), sd, slopes, crossed
    )
