"""Training loops: ``train.fit`` (``lax.scan`` in compiled chunks) vs a Python loop of jitted steps.

1000 full-batch GD steps on the randomized quadratic objective (``taylorlib.randomize.expected_square_loss``
when it exists, otherwise the same closed form written in :mod:`benchmarks.bench_randomize`), at the size
the book trains at (d = 20, n = 8d, m = 128). ``lax.scan`` removes the per-step Python dispatch, so its gain
is largest when one step's compute is comparable to that overhead (tens of µs); at widths where a step
takes milliseconds both loops cost the same.

Three timings: ``fit`` called as a user calls it; ``jit(fit)`` (fit traced once under ``jax.jit``: the
steady state of the scan alone); and the Python loop ``for _ in range(1000): state, _ = step(state)`` with
``step = jax.jit(train.make_step(loss, optimizer))``.
"""

from __future__ import annotations

import optax

import taylorlib as tl

from . import Config, ratio, register, time_group
from .bench_randomize import ACTIVATION, problem, reference_objective

STEPS = 1000
LEARNING_RATE = 0.05


def sizes(cfg: Config) -> dict:
    return dict(d=8, m=32, n=32, steps=100) if cfg.quick else dict(d=20, m=128, n=160, steps=STEPS)


def objective(params0, x, y):
    if "expected_square_loss" in getattr(tl.randomize, "__all__", ()):
        return (
            lambda W: tl.randomize.expected_square_loss(params0, W, x, y, activation=ACTIVATION),
            "taylorlib.randomize.expected_square_loss",
        )
    return (lambda W: reference_objective(params0, W, x, y)), "benchmarks.bench_randomize.reference_objective"


@register(
    "train_fit",
    family="train",
    description="train.fit (lax.scan) vs a Python loop of jitted steps, 1000 GD steps",
    requires=[
        ("taylorlib.train", "fit"),
        ("taylorlib.train", "make_step"),
        ("taylorlib.train", "init_state"),
    ],
)
def case_train_fit(cfg: Config) -> dict:
    import jax

    sz = sizes(cfg)
    steps = sz["steps"]
    params0, W, x, y = problem(sz["d"], sz["m"], sz["n"])
    loss, source = objective(params0, x, y)
    opt = optax.sgd(LEARNING_RATE)
    step = jax.jit(tl.train.make_step(loss, opt))

    def python_loop():
        state = tl.train.init_state(W, opt)
        for _ in range(steps):
            state, _ = step(state)
        return state.params

    fit_jit = jax.jit(lambda W0: tl.train.fit(loss, W0, opt, steps)[0])
    fns = {
        "fit": lambda: tl.train.fit(loss, W, opt, steps)[0],
        "jit(fit)": lambda: fit_jit(W),
        "Python loop": python_loop,
    }
    timings = time_group(fns, cfg)
    med = {t.label: t.median_s for t in timings}
    a, b = fns["fit"](), python_loop()
    return dict(
        sizes={**sz, "objective": source, "learning_rate": LEARNING_RATE},
        timings=timings,
        ratios=[
            ratio("Python loop / fit", "Python loop", "fit", med, target=3, op=">="),
            ratio(
                "Python loop / jit(fit)", "Python loop", "jit(fit)", med, note="scan without per-call compile"
            ),
            ratio("fit / jit(fit)", "fit", "jit(fit)", med, note="per-call cost of fit outside the scan"),
        ],
        extra={
            "max_abs_param_diff_fit_vs_loop": float(abs(a - b).max()),
            "loss_before": float(loss(W)),
            "loss_after": float(loss(a)),
        },
    )
