"""One seaborn theme for every figure, legends a reader can read, and log-log plots that fit their slope.

The book shows a figure of ``w`` inches as a PNG of ``w * DPI`` pixels, scaled down to the text column
(``COLUMN_PX`` CSS pixels at a 1280 px window) when it is wider. :func:`new_figure` scales the fonts of wide
figures so that legend text stays at least ``MIN_LEGEND_PT`` points as displayed; :func:`legend_outside` puts a
legend below or beside the axes instead of on the data; :func:`legend_display_size` says how large the
smallest legend text of a figure will look. For sample-complexity studies, :func:`learning_curves` draws
error curves against rescaled sample sizes and :func:`exponent_intervals` fitted exponents against their
predictions.

Matplotlib and seaborn are imported lazily (they are in the ``notebooks`` and ``book`` extras).

Example:
    >>> import numpy as np
    >>> import taylorlib as tl
    >>> round(tl.plotting.loglog_slope([1, 10, 100], [1.0, 0.1, 0.01]), 6)
    -1.0
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from ._scaling_plots import XScale, exponent_intervals, learning_curves

__all__ = [
    "set_theme",
    "loglog_slope",
    "loglog",
    "new_figure",
    "legend_outside",
    "legend_display_size",
    "learning_curves",
    "exponent_intervals",
    "XScale",
    "PALETTE",
    "DPI",
    "COLUMN_PX",
    "MIN_LEGEND_PT",
]

#: Colors used consistently across chapters (seaborn "colorblind").
PALETTE = "colorblind"
#: Pixels per figure inch in the PNGs that notebooks store (``figure.dpi`` of the theme).
DPI = 100
#: Width, in CSS pixels, that the book gives a figure at a 1280 px browser window (``make browser-check``
#: fails if the column becomes narrower than this).
COLUMN_PX = 680
#: Smallest legend text, in points as displayed (CONTRIBUTING.md, "Adding a chapter").
MIN_LEGEND_PT = 9.0
_FONT_SCALE = 0.95  # seaborn "notebook" context: legend text 10.45 pt, labels 11.4 pt


def set_theme(scale: float = 1.0) -> None:
    """Apply the book's seaborn theme (white grid, colorblind palette, PNG-friendly sizes).

    Args:
        scale: factor on every font size (``new_figure`` uses it for figures wider than the column).

    Example:
        >>> import matplotlib as mpl
        >>> import taylorlib as tl
        >>> tl.plotting.set_theme()
        >>> mpl.rcParams["legend.fontsize"]
        10.45
    """
    import matplotlib as mpl
    import seaborn as sns

    if isinstance(scale, bool) or not isinstance(scale, int | float) or not 0.5 <= scale <= 4:
        raise ValueError(f"scale must be a number in [0.5, 4], got {scale!r}")
    sns.set_theme(context="notebook", style="whitegrid", palette=PALETTE, font_scale=_FONT_SCALE * scale)
    mpl.rcParams.update(
        {
            "figure.figsize": (6.4, 4.0),
            "figure.dpi": DPI,
            "savefig.dpi": DPI,
            "axes.titleweight": "bold",
            "legend.frameon": False,
            "svg.hashsalt": "taylorlib",
        }
    )


def _real_array(v: Any, name: str) -> np.ndarray:
    if np.iscomplexobj(v):
        raise TypeError(f"{name} must be real, got a complex array")
    try:
        return np.asarray(v, dtype=float)
    except (TypeError, ValueError) as err:
        raise TypeError(f"{name} must be an array of real numbers, got {v!r}") from err


def loglog_slope(x: Sequence[float] | np.ndarray, y: Sequence[float] | np.ndarray) -> float:
    """Least-squares slope of ``log y`` against ``log x``.

    Raises:
        ValueError: fewer than two points, or non-positive values.

    Example:
        >>> import taylorlib as tl
        >>> round(tl.plotting.loglog_slope([1, 4, 16], [1.0, 0.5, 0.25]), 6)  # y = x^(-1/2)
        -0.5
    """
    xa, ya = _real_array(x, "x"), _real_array(y, "y")
    if xa.shape != ya.shape or xa.ndim != 1 or xa.size < 2:
        raise ValueError(f"x and y must be 1-D of equal length >= 2, got {xa.shape} and {ya.shape}")
    if np.any(xa <= 0) or np.any(ya <= 0) or not np.all(np.isfinite(xa * ya)):
        raise ValueError("x and y must be positive and finite for a log-log fit")
    return float(np.polyfit(np.log(xa), np.log(ya), 1)[0])


def new_figure(ncols: int = 1, nrows: int = 1, width: float = 6.4, height: float = 4.0, **kw: Any):
    """``plt.subplots`` with the book theme applied; returns ``(fig, axes)``.

    A figure wider than the column (``width * DPI > COLUMN_PX``) is shown scaled down, so its fonts are
    scaled up by the same factor: text keeps its size as displayed.

    Example:
        >>> import taylorlib as tl
        >>> fig, (ax1, ax2) = tl.plotting.new_figure(ncols=2, width=8)
        >>> fig.get_size_inches().tolist()
        [8.0, 4.0]
    """
    import matplotlib.pyplot as plt

    for name, v in (("ncols", ncols), ("nrows", nrows)):
        if isinstance(v, bool) or not isinstance(v, int) or v < 1:
            raise ValueError(f"{name} must be a positive int, got {v!r}")
    for name, inches in (("width", width), ("height", height)):
        if isinstance(inches, bool) or not isinstance(inches, int | float) or not 0 < inches <= 30:
            raise ValueError(f"{name} must be a number of inches in (0, 30], got {inches!r}")
    set_theme(scale=min(4.0, max(1.0, width * DPI / COLUMN_PX)))
    return plt.subplots(nrows, ncols, figsize=(width, height), **kw)


def _axes_and_figure(target: Any):
    from matplotlib.axes import Axes
    from matplotlib.figure import Figure

    if isinstance(target, Figure):
        return list(target.axes), target
    if isinstance(target, Axes):
        return [target], target.figure
    raise TypeError(f"target must be a matplotlib Axes or Figure, got {type(target).__name__}")


def legend_outside(target: Any, where: str = "below", ncol: int | None = None, **kw: Any):
    """One legend outside the data: below the axes (default) or beside them on the right.

    For a Figure, the labelled artists of all its axes share one legend (each label once), centred below
    all of them or to the right of all of them. Call it last, after any layout change (``tight_layout``).
    ``below`` keeps the figure's width (and so its displayed font size); ``right`` widens the saved PNG.

    Args:
        target: an Axes, or a Figure whose axes share the legend.
        where: ``"below"`` or ``"right"``.
        ncol: legend columns (default: up to 4 side by side below, 1 on the right).
        **kw: passed to ``Figure.legend`` (e.g. ``title``).

    Returns:
        The ``matplotlib.legend.Legend``.

    Example:
        >>> import taylorlib as tl
        >>> fig, ax = tl.plotting.new_figure()
        >>> _ = ax.plot([1, 2], [1, 4], label="data")
        >>> leg = tl.plotting.legend_outside(ax)
        >>> fig.draw_without_rendering()
        >>> bool(leg.get_window_extent().y1 < ax.get_window_extent().y0)   # below the axes
        True
    """
    if where not in ("below", "right"):
        raise ValueError(f"where must be 'below' or 'right', got {where!r}")
    axes, fig = _axes_and_figure(target)
    handles, labels = [], []
    for ax in axes:
        for h, lab in zip(*ax.get_legend_handles_labels(), strict=True):
            if lab not in labels:
                handles.append(h)
                labels.append(lab)
        if ax.get_legend() is not None:
            ax.get_legend().remove()
    if not handles:
        raise ValueError("nothing to put in a legend: plot with label=... first")
    fig.draw_without_rendering()
    to_fig = fig.transFigure.inverted()
    tight = [to_fig.transform_bbox(ax.get_tightbbox()) for ax in axes]
    boxes = [ax.get_position() for ax in axes]
    if where == "below":
        x = (min(b.x0 for b in boxes) + max(b.x1 for b in boxes)) / 2
        anchor, loc = (x, min(b.y0 for b in tight)), "upper center"
        ncol = ncol or min(len(labels), 4)
    else:
        anchor, loc = (max(b.x1 for b in tight), max(b.y1 for b in boxes)), "upper left"
        ncol = ncol or 1
    return fig.legend(handles, labels, loc=loc, bbox_to_anchor=anchor, ncol=ncol, **kw)


def legend_display_size(fig: Any, column_px: float = COLUMN_PX) -> float | None:
    """Smallest legend font size of ``fig``, in points as the book displays it (``None`` if no legend).

    The notebook stores the figure as a PNG cropped to its tight bounding box at ``fig.dpi`` pixels per
    inch; the book shows it at that size, or scaled down to ``column_px`` CSS pixels (96 per inch) if wider.

    Example:
        >>> import taylorlib as tl
        >>> fig, axes = tl.plotting.new_figure(ncols=3, width=13)
        >>> _ = [ax.plot([1, 2], [1, 2], label=f"run {i}") for i, ax in enumerate(axes)]
        >>> _ = tl.plotting.legend_outside(fig)
        >>> tl.plotting.legend_display_size(fig) >= tl.plotting.MIN_LEGEND_PT
        True
    """
    _, fig = _axes_and_figure(fig)
    legends = list(fig.legends) + [ax.get_legend() for ax in fig.axes if ax.get_legend() is not None]
    sizes = [t.get_fontsize() for leg in legends for t in leg.get_texts()]
    if not sizes:
        return None
    fig.draw_without_rendering()
    pad = 2 * float(_rc("savefig.pad_inches"))
    png_px = (fig.get_tightbbox().width + pad) * fig.dpi
    return float(min(sizes) * fig.dpi / 96 * min(1.0, column_px / png_px))


def _rc(key: str) -> Any:
    import matplotlib as mpl

    return mpl.rcParams[key]  # type: ignore[index]  # rcParams keys are typed as literals


def loglog(
    ax: Any,
    x: Sequence[float] | np.ndarray,
    y: Sequence[float] | np.ndarray,
    label: str,
    *,
    fit: bool = True,
    marker: str = "o",
    **kw: Any,
) -> float | None:
    """Plot ``y`` against ``x`` on log-log axes; with ``fit=True`` add the fitted power law as a dashed
    line and put the slope in the legend label. Returns the slope (or ``None``).

    Example:
        >>> import taylorlib as tl
        >>> fig, ax = tl.plotting.new_figure()
        >>> slope = tl.plotting.loglog(ax, [1, 10, 100], [3.0, 0.3, 0.03], "error")
        >>> round(slope, 6), ax.get_legend_handles_labels()[1][0]
        (-1.0, 'error (slope -1.00)')
    """
    xa = np.asarray(x, dtype=float)
    ya = np.asarray(y, dtype=float)
    slope = loglog_slope(xa, ya) if fit else None
    text = f"{label} (slope {slope:+.2f})" if fit else label
    (line,) = ax.plot(xa, ya, marker=marker, label=text, **kw)
    if fit:
        c = np.polyfit(np.log(xa), np.log(ya), 1)
        xs = np.geomspace(xa.min(), xa.max(), 50)
        ax.plot(xs, np.exp(np.polyval(c, np.log(xs))), ls="--", lw=1, color=line.get_color(), alpha=0.7)
    ax.set_xscale("log")
    ax.set_yscale("log")
    return slope
