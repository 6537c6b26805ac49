"""The figure theme keeps legends legible at the size the book shows them, and outside the data."""

from __future__ import annotations

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402
import pytest  # noqa: E402

import taylorlib as tl  # noqa: E402

P = tl.plotting


@pytest.fixture(autouse=True)
def _close():
    yield
    plt.close("all")


def _labelled(axes, n=3):
    for ax in axes:
        for i in range(n):
            ax.plot([1, 2, 3], [i, i + 1, i + 3], label=f"curve number {i}")
        ax.set_xlabel("width m")
        ax.set_ylabel("relative error")


@pytest.mark.parametrize("width", [4.0, 8.0, 13.0])
@pytest.mark.parametrize("ncols", [1, 3])
def test_legends_below_are_legible_at_display_size(width, ncols):
    fig, axes = P.new_figure(ncols=ncols, width=width)
    axes = list(axes) if ncols > 1 else [axes]
    _labelled(axes)
    P.legend_outside(fig if ncols > 1 else axes[0])
    assert P.legend_display_size(fig) >= P.MIN_LEGEND_PT


@pytest.mark.parametrize("width", [4.0, 6.4])
def test_a_legend_beside_a_narrow_figure_is_legible(width):
    fig, ax = P.new_figure(width=width)
    _labelled([ax])
    P.legend_outside(ax, where="right")
    assert P.legend_display_size(fig) >= P.MIN_LEGEND_PT


def test_the_measurement_can_fail():
    """A wide figure made with plain matplotlib (no font scaling) shows its legend too small."""
    P.set_theme()
    fig, axes = plt.subplots(1, 3, figsize=(13, 4))
    _labelled(axes)
    axes[0].legend()
    size = P.legend_display_size(fig)
    assert size < P.MIN_LEGEND_PT
    # 10.45 pt drawn at 100 dpi; the cropped PNG is narrower than the 13 in figure plus 2 x 0.1 in padding,
    # so it is shown at least 680/1320 of its size, and the legend at least 10.45 * 100/96 * 680/1320 pt.
    assert size >= 10.45 * 100 / 96 * 680 / 1320


@pytest.mark.parametrize("where", ["below", "right"])
def test_the_legend_does_not_cover_the_data(where):
    fig, axes = P.new_figure(ncols=2, width=10)
    _labelled(axes)
    leg = P.legend_outside(fig, where=where)
    fig.draw_without_rendering()
    box = leg.get_window_extent()
    for ax in axes:
        assert not box.overlaps(ax.get_window_extent()), f"{where}: the legend overlaps an axes"
    labels = [t.get_text() for t in leg.get_texts()]
    assert labels == ["curve number 0", "curve number 1", "curve number 2"], "each label once"
    assert all(ax.get_legend() is None for ax in axes)


def test_a_figure_without_legend_has_no_legend_size():
    fig, ax = P.new_figure()
    ax.plot([1, 2], [1, 2])
    assert P.legend_display_size(fig) is None


def test_bad_arguments_are_named():
    fig, ax = P.new_figure()
    with pytest.raises(ValueError, match="nothing to put in a legend"):
        P.legend_outside(ax)
    ax.plot([1, 2], [1, 2], label="a")
    with pytest.raises(ValueError, match="where must be"):
        P.legend_outside(ax, where="inside")
    with pytest.raises(TypeError, match="Axes or Figure"):
        P.legend_outside([ax])
    with pytest.raises(ValueError, match="width"):
        P.new_figure(width=0)
    with pytest.raises(ValueError, match="scale"):
        P.set_theme(scale=10)


def test_narrow_figures_keep_the_default_sizes():
    """Figures that fit the column are not rescaled (so existing chapter figures keep their look)."""
    P.new_figure(width=6.4)
    assert matplotlib.rcParams["legend.fontsize"] == pytest.approx(10.45)
    P.new_figure(width=13.6)
    assert matplotlib.rcParams["legend.fontsize"] == pytest.approx(10.45 * 2)
    P.new_figure(width=6.4)
    assert matplotlib.rcParams["legend.fontsize"] == pytest.approx(10.45)
