"""Taylorized training: one training step (loss and gradient) of the order-k Taylor model of an MLP.

The network is ``tl.nets.mlp((512, 512))`` on ``n = 1000`` inputs of dimension 64 (the size of the digits
of chapter 6), with tanh and with relu, and a mean squared loss. A step of the order-k model
``tl.taylor.taylor_expand(apply, params0, k)`` (``method="auto"``) is timed against a step of the network
itself and, at order 1, against ``tl.taylor.linearize``. The inputs and targets are arguments of the jitted
step (not constants), as ``tl.train.fit(..., data=...)`` passes them.

Targets (issue 17): order k costs at most ``1.5 (k+1)(k+2)/2`` network steps for k = 1, 2, 3 (the number
of products in a degree-k Cauchy product, with a 50% allowance), and order 1 is within 1.3x of
``linearize``. XLA's flop count of every compiled step is reported next to the times.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp

import taylorlib as tl

from . import Config, ratio, register, time_group

ACTIVATIONS = ("tanh", "relu")
ORDERS = (1, 2, 3)


def sizes(cfg: Config) -> dict:
    if cfg.quick:
        return dict(d=8, width=32, n=64)
    return dict(d=64, width=512, n=1000)


def _flops(fn, *args) -> float:
    try:
        cost = jax.jit(fn).lower(*args).compile().cost_analysis()
    except Exception:  # noqa: BLE001 - cost analysis is informative only
        return float("nan")
    if isinstance(cost, list):
        cost = cost[0] if cost else {}
    return float((cost or {}).get("flops", float("nan")))


@register(
    "taylorized_step",
    family="taylor",
    description="training step of the order-k Taylor model (k = 1, 2, 3) of a 2x512 MLP vs the network's",
    requires=[("taylorlib.taylor", "taylor_expand"), ("taylorlib.taylor", "linearize")],
)
def case_taylorized_step(cfg: Config) -> dict:
    sz = sizes(cfg)
    d, width, n = sz["d"], sz["width"], sz["n"]
    x = jax.random.normal(jax.random.key(1), (n, d))
    y = jax.random.normal(jax.random.key(2), (n,))
    fns, steps, methods = {}, {}, {}
    for act in ACTIVATIONS:
        net = tl.nets.mlp((width, width), activation=act)
        p0 = net.init(jax.random.key(0), d)
        params = jax.tree_util.tree_map(lambda v: v + 0.01, p0)
        models = {"network": net.apply, "linearize": tl.taylor.linearize(net.apply, p0)}
        for k in ORDERS:
            models[f"order {k}"] = tl.taylor.taylor_expand(net.apply, p0, k)
            methods[f"{act} order {k}"] = tl.taylor.resolve_method(net.apply, p0, x, k)
        for name, model in models.items():

            def step(q, x, y, model=model):
                return jax.value_and_grad(lambda q: jnp.mean((model(q, x) - y) ** 2))(q)

            jitted = jax.jit(step)
            label = f"{act} {name}"
            steps[label] = (step, params)
            fns[label] = lambda jitted=jitted, params=params: jitted(params, x, y)
    timings = time_group(fns, cfg)
    med = {t.label: t.median_s for t in timings}
    flops = {label: _flops(step, params, x, y) for label, (step, params) in steps.items()}
    ratios = []
    for act in ACTIVATIONS:
        for k in ORDERS:
            bound = 1.5 * (k + 1) * (k + 2) / 2
            ratios.append(
                ratio(
                    f"{act}: order-{k} step / network step",
                    f"{act} order {k}",
                    f"{act} network",
                    med,
                    target=bound,
                    op="<=",
                )
            )
        ratios.append(
            ratio(
                f"{act}: order-1 step / linearize step",
                f"{act} order 1",
                f"{act} linearize",
                med,
                target=1.3,
                op="<=",
            )
        )
    flop_ratios = {
        f"{act} order {k} / network": flops[f"{act} order {k}"] / flops[f"{act} network"]
        for act in ACTIVATIONS
        for k in ORDERS
    }
    return dict(
        sizes={
            "d": d,
            "widths": [width, width],
            "n": n,
            "activations": list(ACTIVATIONS),
            "orders": list(ORDERS),
        },
        timings=timings,
        ratios=ratios,
        extra={"flops": flops, "flop_ratios": flop_ratios, "methods": methods},
    )
