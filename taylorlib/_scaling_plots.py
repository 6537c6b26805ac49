r"""Figures of a sample-complexity study (private; public as ``tl.plotting.learning_curves``,
``tl.plotting.exponent_intervals`` and ``tl.plotting.XScale``).

A study measures, for several learners and input dimensions :math:`d`, the test error against the number
of training samples :math:`n`, and fits how the sample size :math:`n^\star(\tau)` that reaches an error
threshold :math:`\tau` grows with :math:`d` (:func:`taylorlib.scaling.bootstrap_exponent`).
:func:`learning_curves` draws the error curves against :math:`n` divided by candidate rates (the curves of
different :math:`d` collapse when the rate is right); :func:`exponent_intervals` draws the fitted exponents
with their bootstrap intervals next to the predicted ones.

The figures use the theme of :mod:`taylorlib.plotting` (imported on first use: that module re-exports
these names).
"""

from __future__ import annotations

import numbers
from collections.abc import Callable, Mapping, Sequence
from typing import Any, NamedTuple

import numpy as np

__all__ = ["XScale", "learning_curves", "exponent_intervals"]

#: A point prediction is drawn as a band of this half-height around it (visible behind the markers).
_POINT_HALF_HEIGHT = 0.005
#: Horizontal distance between the markers of neighbouring learners at one threshold.
_SPREAD = 0.08


class XScale(NamedTuple):
    r"""One panel of :func:`learning_curves`: the error against :math:`n / \mathrm{unit}(d)`.

    A plain tuple ``(unit, label)`` (or longer, in this order) works wherever an ``XScale`` is expected.

    Attributes:
        unit: ``unit(d) -> float``, the positive number of samples that counts as one at dimension ``d``
            (``lambda d: d`` plots :math:`n/d`; ``lambda d: 1`` plots :math:`n` itself).
        label: the x-axis label, with the unit (e.g. ``"$n$ / $d$"``).
        title: the panel title (``""``: none).
        learners: the names of ``curves`` drawn in this panel (``None``: all of them).
        reference: an x value marked by a vertical black line (``None``: none), e.g. ``1`` where
            :math:`n` equals the unit.
    """

    unit: Callable[[Any], float]
    label: str
    title: str = ""
    learners: Sequence[str] | None = None
    reference: float | None = None


def _is_real(v: Any) -> bool:
    return isinstance(v, numbers.Real) and not isinstance(v, bool)


def _check_thresholds(thresholds: Any, empty_ok: bool) -> tuple[float, ...]:
    if isinstance(thresholds, str) or not isinstance(thresholds, Sequence | np.ndarray):
        raise TypeError(f"thresholds must be a sequence of numbers, got {type(thresholds).__name__}")
    out = tuple(thresholds)
    if not all(_is_real(t) and np.isfinite(t) for t in out) or (not out and not empty_ok):
        need = "a sequence" if empty_ok else "a non-empty sequence"
        raise ValueError(f"thresholds must be {need} of finite numbers, got {thresholds!r}")
    return out


def _mean_curve(name: str, value: Any, n_d: int) -> tuple[np.ndarray, np.ndarray]:
    """``(ns, mean error)`` of one learner, both ``(len(dims), k)``."""
    if not isinstance(value, tuple | list) or len(value) != 2:
        raise TypeError(f"curves[{name!r}] must be a pair (ns, errors), got {type(value).__name__}")
    try:
        ns, err = (np.asarray(v, dtype=float) for v in value)
    except (TypeError, ValueError) as e:
        raise TypeError(f"curves[{name!r}] must hold arrays of real numbers") from e
    if err.ndim not in (2, 3) or err.shape[0] != n_d:
        raise ValueError(
            f"curves[{name!r}] errors must have shape (len(dims), k) or (len(dims), k, n_seeds) with "
            f"len(dims) = {n_d}, got {err.shape}"
        )
    k = err.shape[1]
    if ns.shape not in ((k,), (n_d, k)):
        raise ValueError(
            f"curves[{name!r}] ns must have shape ({k},) or ({n_d}, {k}) to match errors {err.shape}, "
            f"got {ns.shape}"
        )
    if np.any(ns <= 0) or not np.all(np.isfinite(ns)):
        raise ValueError(f"curves[{name!r}] ns must be positive and finite")
    mean = err.mean(-1) if err.ndim == 3 else err
    return np.broadcast_to(ns, (n_d, k)), mean


def _check_scale(i: int, item: Any, names: Sequence[str]) -> XScale:
    if not isinstance(item, tuple) or not 2 <= len(item) <= len(XScale._fields):
        raise TypeError(f"x_scales[{i}] must be an XScale or a tuple (unit, label, ...), got {item!r}")
    scale = XScale(*item)
    if not callable(scale.unit):
        raise TypeError(f"x_scales[{i}].unit must be a callable d -> float, got {scale.unit!r}")
    if not isinstance(scale.label, str) or not isinstance(scale.title, str):
        raise TypeError(f"x_scales[{i}].label and .title must be strings")
    learners = scale.learners
    if learners is not None and (
        isinstance(learners, str) or not isinstance(learners, Sequence) or not set(learners) <= set(names)
    ):
        raise ValueError(f"x_scales[{i}].learners must be None or a list of names in curves {list(names)}")
    if scale.reference is not None and not _is_real(scale.reference):
        raise TypeError(f"x_scales[{i}].reference must be a number or None, got {scale.reference!r}")
    return scale


def learning_curves(
    curves: Mapping[str, tuple[Any, Any]],
    dims: Sequence[int] | np.ndarray,
    *,
    x_scales: Sequence[XScale | tuple] | None = None,
    thresholds: Sequence[float] = (),
    linestyles: Mapping[str, str] | None = None,
    ylabel: str = "relative test MSE",
    cmap: str = "viridis",
    width: float | None = None,
    height: float = 4.0,
    legend_ncol: int | None = None,
):
    r"""Error against sample size for several learners and dimensions, one panel per rescaling of n.

    Panel ``j`` draws, on log-log axes, the seed-mean error of every learner against
    :math:`n / \mathrm{unit}_j(d)`: one color per dimension, one line style per learner, a dotted gray
    line at each threshold :math:`\tau`. When the curves of all :math:`d` lie on top of each other, the
    learner needs :math:`n \propto \mathrm{unit}_j(d)` samples. The legend (learner and ``d``) sits below.

    Args:
        curves: ``{learner: (ns, errors)}`` with ``ns`` of shape ``(k,)`` or ``(len(dims), k)`` (sample
            sizes, positive) and ``errors`` of shape ``(len(dims), k, n_seeds)`` (averaged over the last
            axis) or ``(len(dims), k)``; ``k`` may differ between learners.
        dims: ``(len(dims),)`` input dimensions.
        x_scales: one :class:`XScale` (or tuple ``(unit, label, title, learners, reference)``) per panel;
            default (``None``): one panel against :math:`n` itself, labelled "training samples :math:`n`".
        thresholds: error thresholds :math:`\tau` marked on every panel.
        linestyles: ``{learner: matplotlib line style}``; its order is the drawing and legend order
            (default: the order of ``curves``, styles ``"-"``, ``"--"``, ``":"``, ``"-."`` in turn).
        ylabel: the y-axis label.
        cmap: matplotlib colormap for the dimensions (colors from 0 to 0.9 of it).
        width: figure width in inches (default: 6 per panel).
        height: figure height in inches.
        legend_ncol: legend columns (default: the number of learners).

    Returns:
        The matplotlib ``Figure``.

    Raises:
        TypeError: ``curves`` not a mapping of ``(ns, errors)`` pairs, an ``x_scales`` entry without a
            callable unit, ``linestyles`` not a mapping.
        ValueError: shapes that do not match ``dims``, non-positive ``ns`` or units, unknown learner
            names, no panels, or thresholds that are not finite numbers.

    Example:
        >>> import matplotlib
        >>> matplotlib.use("Agg")
        >>> import numpy as np
        >>> import taylorlib as tl
        >>> dims = [8, 16]
        >>> ns = np.array([[8.0, 16, 32], [16, 32, 64]])          # n = c d, c = 1, 2, 4
        >>> errors = (np.array(dims)[:, None] / ns)[..., None] * np.ones(3)   # (len(dims), k, n_seeds)
        >>> fig = tl.plotting.learning_curves(
        ...     {"kernel": (ns, errors)}, dims, thresholds=[0.5],
        ...     x_scales=[tl.plotting.XScale(lambda d: d, "$n$ / $d$", reference=1.0)])
        >>> line = fig.axes[0].get_lines()[0]
        >>> line.get_label(), line.get_xdata().tolist(), line.get_ydata().tolist()
        ('kernel, d=8', [1.0, 2.0, 4.0], [1.0, 0.5, 0.25])
    """
    import matplotlib.pyplot as plt

    from .plotting import legend_outside, new_figure

    if not isinstance(curves, Mapping):
        raise TypeError(f"curves must be a mapping learner -> (ns, errors), got {type(curves).__name__}")
    if not curves:
        raise ValueError("curves must name at least one learner, got an empty mapping")
    d_arr = np.asarray(dims)
    if d_arr.ndim != 1 or d_arr.size == 0 or not all(_is_real(d) for d in d_arr.tolist()):
        raise ValueError(f"dims must be a non-empty 1-D sequence of numbers, got {dims!r}")
    dim_list = d_arr.tolist()
    data = {name: _mean_curve(name, value, len(dim_list)) for name, value in curves.items()}
    if linestyles is None:
        cycle = ("-", "--", ":", "-.")
        linestyles = {name: cycle[i % len(cycle)] for i, name in enumerate(curves)}
    if not isinstance(linestyles, Mapping):
        raise TypeError(
            f"linestyles must be a mapping learner -> line style, got {type(linestyles).__name__}"
        )
    if unknown := [n for n in linestyles if n not in curves]:
        raise ValueError(f"linestyles names learners not in curves: {unknown}")
    if x_scales is None:
        x_scales = [XScale(lambda d: 1.0, "training samples $n$")]
    if isinstance(x_scales, XScale) or not isinstance(x_scales, Sequence) or not x_scales:
        raise ValueError("x_scales must be a non-empty sequence of XScale (one per panel)")
    scales = [_check_scale(i, item, list(curves)) for i, item in enumerate(x_scales)]
    taus = _check_thresholds(thresholds, empty_ok=True)
    units = []
    for i, scale in enumerate(scales):
        u = np.array([float(scale.unit(d)) for d in dim_list])
        if not np.all(np.isfinite(u) & (u > 0)):
            raise ValueError(f"x_scales[{i}].unit must return a positive finite number for every d, got {u}")
        units.append(u)

    fig, axes = new_figure(
        ncols=len(scales), width=6.0 * len(scales) if width is None else width, height=height, squeeze=False
    )
    axes = axes[0]
    colors = plt.get_cmap(cmap)(np.linspace(0, 0.9, len(dim_list)))
    for ax, scale, unit in zip(axes, scales, units, strict=True):
        names = [n for n in linestyles if scale.learners is None or n in scale.learners]
        for i, d in enumerate(dim_list):
            for name in names:
                ns, mean = data[name]
                label = f"{name}, d={d}"
                ax.plot(
                    ns[i] / unit[i], mean[i], linestyles[name], marker="o", ms=3, color=colors[i], label=label
                )
        ax.set(xscale="log", yscale="log", xlabel=scale.label, ylabel=ylabel)
        for t in taus:
            ax.axhline(t, color="gray", lw=0.5, ls=":")
        if scale.title:
            ax.set_title(scale.title)
        if scale.reference is not None:
            ax.axvline(scale.reference, color="black", lw=1)
    fig.tight_layout()
    legend_outside(fig, ncol=legend_ncol or len(linestyles))
    return fig


def _interval(fits: Mapping, name: str, tau: float) -> tuple[float, np.ndarray]:
    if (name, tau) not in fits:
        raise ValueError(f"fits has no entry for (learner, threshold) = {(name, tau)!r}")
    fit = fits[name, tau]
    if not hasattr(fit, "exponent") or not hasattr(fit, "exponent_interval"):
        raise TypeError(
            f"fits[{(name, tau)!r}] must have .exponent and .exponent_interval (tl.scaling.ExponentInterval), "
            f"got {type(fit).__name__}"
        )
    interval = np.asarray(fit.exponent_interval, dtype=float)
    if interval.shape != (2,):
        raise ValueError(
            f"fits[{(name, tau)!r}].exponent_interval must have shape (2,), got {interval.shape}"
        )
    return float(fit.exponent), interval


def _prediction(name: str, value: Any) -> tuple[float, float]:
    if _is_real(value):
        return float(value), float(value)
    if isinstance(value, tuple | list | np.ndarray) and len(value) == 2 and all(_is_real(v) for v in value):
        lo, hi = (float(v) for v in value)
        if lo <= hi:
            return lo, hi
    raise ValueError(
        f"predicted[{name!r}] must be a number or a pair (low, high) with low <= high, got {value!r}"
    )


def exponent_intervals(
    fits: Mapping[tuple[str, float], Any],
    predicted: Mapping[str, float | tuple[float, float]],
    thresholds: Sequence[float],
    *,
    level: float = 0.9,
    title: str = "",
    xlabel: str | None = None,
    ylabel: str | None = None,
    width: float = 7.0,
    height: float = 3.8,
):
    r"""Fitted exponents of :math:`n^\star(\tau) \propto d^\alpha` with their intervals, against predictions.

    For every learner of ``predicted`` and every threshold :math:`\tau`, a marker at the fitted exponent
    with an error bar spanning ``exponent_interval`` (learners side by side at each :math:`\tau`), and a
    shaded band in the same color at the predicted exponent: a thin band for a number, the range for a
    pair ``(low, high)``. The legend sits below the axes.

    Args:
        fits: ``{(learner, tau): fit}`` with ``fit.exponent`` (a number) and ``fit.exponent_interval``
            (shape ``(2,)``), e.g. :func:`taylorlib.scaling.bootstrap_exponent` results; needs every
            ``(learner, tau)`` of ``predicted`` and ``thresholds``.
        predicted: ``{learner: exponent or (low, high)}``; its order is the drawing and legend order.
        thresholds: the thresholds :math:`\tau`, one x tick each, in the order given.
        level: two-sided level of the intervals, for the legend (``0.9`` -> "90% interval").
        title: the axes title.
        xlabel: the x-axis label; default (``None``): "threshold :math:`\tau`".
        ylabel: the y-axis label; default (``None``): "exponent of :math:`n^\star \propto d^\alpha`".
        width: figure width in inches.
        height: figure height in inches.

    Returns:
        The matplotlib ``Figure``.

    Raises:
        TypeError: ``fits`` or ``predicted`` not a mapping, or a fit without ``exponent`` and
            ``exponent_interval``.
        ValueError: a missing ``(learner, tau)``, an interval not of shape ``(2,)``, a prediction that is
            neither a number nor an ordered pair, empty ``predicted`` or ``thresholds``, or ``level``
            outside (0, 1).

    Example:
        >>> import matplotlib
        >>> matplotlib.use("Agg")
        >>> import numpy as np
        >>> import taylorlib as tl
        >>> fit = tl.scaling.ExponentInterval(
        ...     n_star=None, n_star_interval=None, exponent=1.9, exponent_interval=np.array([1.7, 2.2]),
        ...     exponent_sd=0.1, samples=None, crossed=None)
        >>> fig = tl.plotting.exponent_intervals({("kernel", 0.1): fit}, {"kernel": 2.0}, [0.1])
        >>> bars = fig.axes[0].containers[0]
        >>> bars.lines[0].get_ydata().tolist(), bars.get_label()
        ([1.9], 'kernel (90% interval)')
        >>> [t.get_text() for t in fig.legends[0].get_texts()]
        ['kernel: predicted 2.00', 'kernel (90% interval)']
    """
    from .plotting import legend_outside, new_figure

    if not isinstance(fits, Mapping):
        raise TypeError(f"fits must be a mapping (learner, threshold) -> fit, got {type(fits).__name__}")
    if not isinstance(predicted, Mapping):
        raise TypeError(f"predicted must be a mapping learner -> exponent, got {type(predicted).__name__}")
    if not predicted:
        raise ValueError("predicted must name at least one learner, got an empty mapping")
    taus = _check_thresholds(thresholds, empty_ok=False)
    if not _is_real(level) or not 0 < level < 1:
        raise ValueError(f"level must be a number in (0, 1), got {level!r}")
    bands = {name: _prediction(name, value) for name, value in predicted.items()}
    points = {name: [_interval(fits, name, t) for t in taus] for name in predicted}

    fig, ax = new_figure(width=width, height=height)
    for k, name in enumerate(predicted):
        mid = np.array([e for e, _ in points[name]])
        err = np.abs(np.array([iv for _, iv in points[name]]).T - mid)  # (2, len(thresholds))
        x = np.arange(len(taus)) + _SPREAD * (2 * k - (len(predicted) - 1))
        bars = ax.errorbar(
            x, mid, err, marker="o", capsize=3, ls="none", label=f"{name} ({100 * level:g}% interval)"
        )
        lo, hi = bands[name]
        ax.axhspan(
            lo - _POINT_HALF_HEIGHT,
            hi + _POINT_HALF_HEIGHT,
            color=bars[0].get_color(),
            alpha=0.25,
            label=f"{name}: predicted {lo:.2f}" + (f" to {hi:.2f}" if hi > lo else ""),
        )
    if xlabel is None:
        xlabel = r"threshold $\tau$"
    if ylabel is None:
        ylabel = r"exponent of $n^\star \propto d^\alpha$"
    ax.set(xticks=range(len(taus)), xticklabels=[str(t) for t in taus], xlabel=xlabel)
    ax.set(ylabel=ylabel, title=title)
    legend_outside(ax, ncol=1)
    return fig
