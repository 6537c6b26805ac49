"""The figure theme keeps legends legible at the size the book shows them, and outside the data."""

from __future__ import annotations

import matplotlib
import numpy as np

matplotlib.use("Agg")

import matplotlib.colors  # noqa: E402
import matplotlib.pyplot as plt  # noqa: E402
import pytest  # noqa: E402
from helpers import raises, typecheck_hook_active  # noqa: E402

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
    with raises(ValueError, match="nothing to put in a legend"):
        P.legend_outside(ax)
    ax.plot([1, 2], [1, 2], label="a")
    with raises(ValueError, match="where must be"):
        P.legend_outside(ax, where="inside")
    with raises(TypeError, match="Axes or Figure"):
        P.legend_outside([ax])
    with raises(ValueError, match="width"):
        P.new_figure(width=0)
    with raises(ValueError, match="scale"):
        P.set_theme(scale=10)


def test_narrow_figures_keep_the_default_sizes():
    """Figures that fit the column are not rescaled (so existing chapter figures keep their look)."""
    P.new_figure(width=6.4)
    assert matplotlib.rcParams["legend.fontsize"] == pytest.approx(10.45)
    P.new_figure(width=13.6)
    assert matplotlib.rcParams["legend.fontsize"] == pytest.approx(10.45 * 2)
    P.new_figure(width=6.4)
    assert matplotlib.rcParams["legend.fontsize"] == pytest.approx(10.45)


# ------------------------------------------------------------------- figures of a sample-complexity study
DIMS = [8, 12, 16]
TAUS = (0.5, 0.2)


def _study():
    """Two learners with different grids: ``ns`` per d (2-D) for one, shared (1-D) for the other."""
    rng = np.random.default_rng(0)
    d = np.array(DIMS, float)[:, None]
    ns_a = d * np.array([1.0, 2, 4, 8])  # (3, 4), n = c d
    ns_b = np.array([10.0, 30, 100, 300, 1000])  # (5,)
    err_a = (d / ns_a)[..., None] * np.exp(0.2 * rng.standard_normal((3, 4, 5)))  # 5 seeds
    err_b = (d**2 / ns_b)[..., None] * np.exp(0.2 * rng.standard_normal((3, 5, 4)))  # 4 seeds
    return {"kernel": (ns_b, err_b), "network": (ns_a, err_a)}


def _data_lines(ax):
    return [line for line in ax.get_lines() if not line.get_label().startswith("_")]


def test_learning_curves_draw_the_seed_mean_against_the_rescaled_sample_size():
    curves = _study()
    quarter = lambda d: d * d / 4  # noqa: E731  (a unit that is neither 1 nor d)
    scales = [
        P.XScale(lambda d: d, "$n$ / $d$", "both"),
        P.XScale(quarter, "$n$ / $(d^2/4)$", "kernel only", learners=["kernel"], reference=1.0),
    ]
    fig = P.learning_curves(
        curves, DIMS, x_scales=scales, thresholds=TAUS, linestyles={"network": "-", "kernel": "--"}
    )
    left, right = fig.axes
    for ax, scale, names in ((left, scales[0], ["network", "kernel"]), (right, scales[1], ["kernel"])):
        lines = _data_lines(ax)
        assert len(lines) == len(DIMS) * len(names)
        assert [line.get_label() for line in lines] == [f"{n}, d={d}" for d in DIMS for n in names]
        for line, (d, name) in zip(lines, [(d, n) for d in DIMS for n in names], strict=True):
            i = DIMS.index(d)
            ns, err = curves[name]
            ns_d = np.broadcast_to(ns, err.shape[:2])[i]
            np.testing.assert_allclose(line.get_xdata(), ns_d / scale.unit(d), rtol=1e-12)
            np.testing.assert_allclose(line.get_ydata(), err[i].mean(-1), rtol=1e-12)
            assert line.get_linestyle() == ("-" if name == "network" else "--")
        assert ax.get_xscale() == ax.get_yscale() == "log"
        assert (ax.get_xlabel(), ax.get_ylabel(), ax.get_title()) == (
            scale.label,
            "relative test MSE",
            scale.title,
        )
        hlines = [ln for ln in ax.get_lines() if ln.get_label().startswith("_") and ln.get_ydata()[0] in TAUS]
        assert sorted(ln.get_ydata()[0] for ln in hlines) == sorted(TAUS)
    # one color per dimension, shared by the learners and the panels
    colors = {ln.get_label(): ln.get_color() for ln in _data_lines(left)}
    assert len({tuple(c) for c in colors.values()}) == len(DIMS)
    assert all(tuple(colors[f"kernel, d={d}"]) == tuple(colors[f"network, d={d}"]) for d in DIMS)
    # the reference line is on the right panel only
    vertical = lambda ax: [ln for ln in ax.get_lines() if ln.get_xdata()[0] == ln.get_xdata()[1] == 1.0]  # noqa: E731
    assert len(vertical(right)) == 1
    assert not vertical(left)
    legend = [t.get_text() for t in fig.legends[0].get_texts()]
    assert legend == [f"{n}, d={d}" for d in DIMS for n in ("network", "kernel")], "each label once, in order"


def test_learning_curves_default_to_n_itself_and_take_seed_means_as_they_are():
    ns = np.array([10.0, 20, 40])
    mean = np.array([[0.5, 0.3, 0.1], [0.8, 0.5, 0.3]])  # (len(dims), k): already averaged
    fig = P.learning_curves({"net": (ns, mean)}, [4, 8])
    (ax,) = fig.axes
    assert ax.get_xlabel() == "training samples $n$"
    for line, row in zip(_data_lines(ax), mean, strict=True):
        np.testing.assert_array_equal(line.get_xdata(), ns)
        np.testing.assert_array_equal(line.get_ydata(), row)
    assert fig.get_size_inches().tolist() == [6.0, 4.0]


def _fit(exponent, lo, hi):
    nan = np.full(1, np.nan)
    return tl.scaling.ExponentInterval(nan, nan, exponent, np.array([lo, hi]), 0.1, nan, nan)


def test_exponent_intervals_draw_each_interval_and_prediction():
    taus = (0.5, 0.3, 0.1)
    fits = {("NTK", t): _fit(1.8 + i / 10, 1.7 + i / 10, 1.95 + i / 10) for i, t in enumerate(taus)}
    fits |= {("quadratic", t): _fit(1.2 - i / 10, 1.0 - i / 10, 1.5 - i / 5) for i, t in enumerate(taus)}
    predicted = {"NTK": 1.84, "quadratic": (1.0, 1.37)}
    fig = P.exponent_intervals(fits, predicted, taus, level=0.8, title="p = 2")
    (ax,) = fig.axes
    assert len(ax.containers) == 2
    for k, (name, bars) in enumerate(zip(predicted, ax.containers, strict=True)):
        assert bars.get_label() == f"{name} (80% interval)"
        data, _, (segments,) = bars.lines
        x_expected = np.arange(len(taus)) + 0.08 * (2 * k - 1)  # side by side around each tick
        np.testing.assert_allclose(data.get_xdata(), x_expected)
        np.testing.assert_allclose(data.get_ydata(), [fits[name, t].exponent for t in taus])
        for seg, t in zip(segments.get_segments(), taus, strict=True):
            np.testing.assert_allclose(seg[:, 0], seg[0, 0])  # vertical bar
            np.testing.assert_allclose(sorted(seg[:, 1]), fits[name, t].exponent_interval, rtol=1e-12)
    for patch, (lo, hi), bars in zip(ax.patches, [(1.84, 1.84), (1.0, 1.37)], ax.containers, strict=True):
        ys = patch.get_patch_transform().transform(patch.get_path().vertices)[:, 1]
        np.testing.assert_allclose([ys.min(), ys.max()], [lo - 0.005, hi + 0.005])
        assert patch.get_facecolor()[:3] == matplotlib.colors.to_rgb(bars.lines[0].get_color())
    assert [t.get_text() for t in ax.get_xticklabels()] == ["0.5", "0.3", "0.1"]
    assert (ax.get_title(), ax.get_xlabel()) == ("p = 2", r"threshold $\tau$")
    assert [t.get_text() for t in fig.legends[0].get_texts()] == [
        "NTK: predicted 1.84",
        "quadratic: predicted 1.00 to 1.37",
        "NTK (80% interval)",
        "quadratic (80% interval)",
    ]


GOOD_CURVES = {"net": (np.array([10.0, 20]), np.ones((2, 2, 3)))}
GOOD_FITS = {("net", 0.1): _fit(1.0, 0.9, 1.1)}
BAD = [
    (lambda: P.learning_curves([("net", (1, 2))], [4, 8]), TypeError, "curves must be a mapping"),
    (lambda: P.learning_curves({}, [4, 8]), ValueError, "curves must name at least one"),
    (lambda: P.learning_curves({"net": np.ones(3)}, [4, 8]), TypeError, r"curves\['net'\] must be a pair"),
    (
        lambda: P.learning_curves({"net": (np.ones(2), np.ones((3, 2, 3)))}, [4, 8]),
        ValueError,
        r"curves\['net'\] errors must have shape \(len\(dims\), k\)",
    ),
    (
        lambda: P.learning_curves({"net": (np.ones(3), np.ones((2, 2, 3)))}, [4, 8]),
        ValueError,
        r"curves\['net'\] ns must have shape \(2,\) or \(2, 2\)",
    ),
    (
        lambda: P.learning_curves({"net": (np.array([0.0, 1]), np.ones((2, 2)))}, [4, 8]),
        ValueError,
        r"curves\['net'\] ns must be positive",
    ),
    (lambda: P.learning_curves(GOOD_CURVES, [[4, 8]]), ValueError, "dims must be a non-empty 1-D"),
    (lambda: P.learning_curves(GOOD_CURVES, [4, 8], x_scales=[]), ValueError, "x_scales must be a non-empty"),
    (lambda: P.learning_curves(GOOD_CURVES, [4, 8], x_scales=[(2, "n")]), TypeError, r"x_scales\[0\].unit"),
    (
        lambda: P.learning_curves(GOOD_CURVES, [4, 8], x_scales=[(lambda d: d - 4, "n")]),
        ValueError,
        r"x_scales\[0\].unit must return a positive",
    ),
    (
        lambda: P.learning_curves(GOOD_CURVES, [4, 8], x_scales=[(lambda d: d, "n", "", ["NTK"])]),
        ValueError,
        r"x_scales\[0\].learners",
    ),
    (
        lambda: P.learning_curves(GOOD_CURVES, [4, 8], thresholds=0.1),
        TypeError,
        "thresholds must be a sequence",
    ),
    (lambda: P.learning_curves(GOOD_CURVES, [4, 8], linestyles={"NTK": "-"}), ValueError, "linestyles names"),
    (lambda: P.exponent_intervals(GOOD_FITS, {"net": 1.0}, [0.2]), ValueError, r"fits has no entry.*0\.2"),
    (
        lambda: P.exponent_intervals({("net", 0.1): 1.0}, {"net": 1.0}, [0.1]),
        TypeError,
        r"fits\[.*\.exponent",
    ),
    (lambda: P.exponent_intervals(GOOD_FITS, {"net": (2.0, 1.0)}, [0.1]), ValueError, r"predicted\['net'\]"),
    (lambda: P.exponent_intervals(GOOD_FITS, {}, [0.1]), ValueError, "predicted must name at least one"),
    (lambda: P.exponent_intervals(GOOD_FITS, {"net": 1.0}, []), ValueError, "thresholds must be a non-empty"),
    (lambda: P.exponent_intervals(GOOD_FITS, {"net": 1.0}, [0.1], level=90), ValueError, r"level must be"),
    (
        lambda: P.exponent_intervals(
            {("net", 0.1): _fit(1.0, 0.9, 1.1)._replace(exponent_interval=np.ones(3))}, {"net": 1.0}, [0.1]
        ),  # fmt: skip
        ValueError,
        r"exponent_interval must have shape \(2,\)",
    ),
]


@pytest.mark.parametrize(("thunk", "error", "match"), BAD, ids=[b[2][:30] for b in BAD])
def test_bad_study_input_is_named(thunk, error, match):
    with raises(error, match=match) as info:
        thunk()
    if typecheck_hook_active() and type(info.value).__name__ == "TypeCheckError":
        return  # the type-check hook rejected the argument first (raises checked that it names it)
    assert type(info.value) is error
