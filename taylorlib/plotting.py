"""One seaborn theme for every figure, and log-log plots that fit and label their slope.

Matplotlib and seaborn are imported lazily (they are in the ``book`` extra).

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

__all__ = ["set_theme", "loglog_slope", "loglog", "new_figure", "PALETTE"]

#: Colors used consistently across chapters (seaborn "colorblind").
PALETTE = "colorblind"


def set_theme() -> None:
    """Apply the book's seaborn theme (white grid, colorblind palette, PNG-friendly sizes).

    Example:
        >>> import taylorlib as tl
        >>> tl.plotting.set_theme()
    """
    import matplotlib as mpl
    import seaborn as sns

    sns.set_theme(context="notebook", style="whitegrid", palette=PALETTE, font_scale=0.95)
    mpl.rcParams.update(
        {
            "figure.figsize": (6.4, 4.0),
            "figure.dpi": 100,
            "savefig.dpi": 100,
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


def loglog_slope(x: Sequence[float], y: Sequence[float]) -> float:
    """Least-squares slope of ``log y`` against ``log x``.

    Raises:
        ValueError: fewer than two points, or non-positive values.

    Example:
        >>> import taylorlib as tl
        >>> round(tl.plotting.loglog_slope([1, 4, 16], [1.0, 0.5, 0.25]), 6)  # y = x^(-1/2)
        -0.5
    """
    x, y = _real_array(x, "x"), _real_array(y, "y")
    if x.shape != y.shape or x.ndim != 1 or x.size < 2:
        raise ValueError(f"x and y must be 1-D of equal length >= 2, got {x.shape} and {y.shape}")
    if np.any(x <= 0) or np.any(y <= 0) or not np.all(np.isfinite(x * y)):
        raise ValueError("x and y must be positive and finite for a log-log fit")
    return float(np.polyfit(np.log(x), np.log(y), 1)[0])


def new_figure(ncols: int = 1, nrows: int = 1, width: float = 6.4, height: float = 4.0, **kw: Any):
    """``plt.subplots`` with the book theme applied; returns ``(fig, axes)``.

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
    set_theme()
    return plt.subplots(nrows, ncols, figsize=(width, height), **kw)


def loglog(
    ax: Any,
    x: Sequence[float],
    y: Sequence[float],
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
    x = np.asarray(x, dtype=float)
    y = np.asarray(y, dtype=float)
    slope = loglog_slope(x, y) if fit else None
    text = f"{label} (slope {slope:+.2f})" if fit else label
    (line,) = ax.plot(x, y, marker=marker, label=text, **kw)
    if fit:
        c = np.polyfit(np.log(x), np.log(y), 1)
        xs = np.geomspace(x.min(), x.max(), 50)
        ax.plot(xs, np.exp(np.polyval(c, np.log(xs))), ls="--", lw=1, color=line.get_color(), alpha=0.7)
    ax.set_xscale("log")
    ax.set_yscale("log")
    return slope
