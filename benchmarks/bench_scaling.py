"""Scaling of the closed-form two-layer NTK in the number of samples n and the width m.

``two_layer_ntk`` costs about :math:`c_1 n m d` (pre-activations ``X @ W.T``) plus :math:`c_2 n^2 m` (two Gram
matmuls) plus a fixed dispatch overhead, so the log-log slope in n tends to 2 only once :math:`n \\gg d` and the
overhead is negligible, and the slope in m tends to 1 once m is large enough for the matmuls to dominate.
The case fits slopes over the whole range and over the large end separately: n >= 8d (where the Gram
matmuls do at least 8 times the work of the pre-activations) and the upper half of the width grid.
"""

from __future__ import annotations

import taylorlib as tl

from . import Config, loglog_slope, register, time_group
from .bench_ntk import ACTIVATION, setup

#: Expected large-size slopes and the tolerance band used for PASS/MISS (timing noise on a shared machine).
EXPECTED = {"n": 2.0, "m": 1.0}
BAND = 0.3
#: The slope in n is fitted over n >= N_OVER_D * d (the regime where the n^2 m term dominates).
N_OVER_D = 8


def grids(cfg: Config) -> dict:
    if cfg.quick:
        return dict(d=8, n_grid=(16, 32, 64), m_fixed=256, m_grid=(64, 128, 256), n_fixed=32)
    return dict(
        d=32,
        n_grid=(64, 128, 256, 512, 1024, 2048),
        m_fixed=4096,
        m_grid=(256, 512, 1024, 2048, 4096, 8192, 16384, 32768, 65536),
        n_fixed=256,
    )


def _series(kind: str, values, fixed: int, d: int, cfg: Config):
    fns = {}
    for v in values:
        n, m = (v, fixed) if kind == "n" else (fixed, v)
        _, params, x = setup(d, m, n)
        fns[f"two_layer_ntk {kind}={v}"] = lambda params=params, x=x: tl.ntk.two_layer_ntk(
            params, x, activation=ACTIVATION
        )
    return time_group(fns, cfg)


def _slope_record(kind: str, lo: int, values, times) -> dict:
    pts = [(v, t) for v, t in zip(values, times, strict=True) if v >= lo]
    value = loglog_slope([v for v, _ in pts], [t for _, t in pts])
    expected = EXPECTED[kind]
    return {
        "name": f"slope in {kind} ({kind} >= {lo})",
        "value": value,
        "expected": expected,
        "band": BAND,
        "passed": abs(value - expected) <= BAND,
    }


@register(
    "scaling",
    family="scaling",
    description="two_layer_ntk time vs n (fixed m) and vs m (fixed n): log-log slopes",
)
def case_scaling(cfg: Config) -> dict:
    g = grids(cfg)
    t_n = _series("n", g["n_grid"], g["m_fixed"], g["d"], cfg)
    t_m = _series("m", g["m_grid"], g["n_fixed"], g["d"], cfg)
    med_n = [t.median_s for t in t_n]
    med_m = [t.median_s for t in t_m]
    # n >= 8 d: the Gram matmuls (2 n^2 m) then outweigh the pre-activations (2 n m d) eightfold.
    n_lo = min(N_OVER_D * g["d"], g["n_grid"][-2])
    m_lo = g["m_grid"][len(g["m_grid"]) // 2]  # the large half of the width grid
    slopes = [
        {"name": "slope in n (all)", "value": loglog_slope(g["n_grid"], med_n), "expected": None},
        _slope_record("n", n_lo, g["n_grid"], med_n),
        {"name": "slope in m (all)", "value": loglog_slope(g["m_grid"], med_m), "expected": None},
        _slope_record("m", m_lo, g["m_grid"], med_m),
    ]
    local_n = [loglog_slope(g["n_grid"][i : i + 2], med_n[i : i + 2]) for i in range(len(med_n) - 1)]
    local_m = [loglog_slope(g["m_grid"][i : i + 2], med_m[i : i + 2]) for i in range(len(med_m) - 1)]
    # time per unit of n^2 m work: flat once the Gram matmuls dominate
    per_n2m_n = [t / (n * n * g["m_fixed"]) for n, t in zip(g["n_grid"], med_n, strict=True)]
    per_n2m_m = [t / (g["n_fixed"] ** 2 * m) for m, t in zip(g["m_grid"], med_m, strict=True)]
    return dict(
        sizes={k: list(v) if isinstance(v, tuple) else v for k, v in g.items()},
        timings=[*t_n, *t_m],
        ratios=[],
        extra={
            "slopes": slopes,
            "local_slopes_n": local_n,
            "local_slopes_m": local_m,
            "seconds_per_n2m_vs_n": per_n2m_n,
            "seconds_per_n2m_vs_m": per_n2m_m,
        },
    )
