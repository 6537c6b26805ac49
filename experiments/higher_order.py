"""Regenerate the cached data of the Higher-order coupling chapter (``book/05_higher_order.ipynb``).

Two files:

``book/data/higher_order.npz`` (float64 unless noted)

* coupling sweep (smooth ReLU², d = 20, n = 64 inputs on the sphere, coherent movement
  ``w_r = C m^{-1/(2k)} e_1`` on the ``a_r = +1`` half, C = 1/2; the chapter's float32 inputs and
  initializations, evaluated in float64: in float32 the k-th finite differences of the exact expectation
  amplify the round-off of the activation, which biases the error by ~2% at m = 10^5 and up to 2x for k = 5 at
  m = 10^6):
  ``coupling_k`` (int, ``(K,)``), ``coupling_m`` (int, ``(M,)``), ``coupling_error``, ``coupling_spread``,
  ``coupling_rms_fk`` (each ``(K, M)``): the fields of ``tl.randomize.coupling_error``;
* Taylor-term timings (``tl.nets.two_layer(512, "smooth_relu2")``, d = 16, n = 128):
  ``timing_orders`` (int, ``(8,)``), ``timing_run_jvp``, ``timing_run_jet``, ``timing_compile_jvp``,
  ``timing_compile_jet`` (seconds, ``(8,)``), ``timing_forward`` (seconds, median of one jitted forward pass).
  Timings depend on the machine; they were measured on 2 shared CPU cores.

``book/data/higher_order_generalization.npz`` (+ ``.json``), a ``tl.sweep`` cache over ``n`` × 3 seeds of the
relative test MSE of a degree-3 zonal harmonic (``tl.data.staircase(key, 16, degrees=(3,))``) learned by

* ``order3``: gradient descent on the order-3 Taylor term ``f^(3)`` of a paired smooth-ReLU² net (m = 256) in the
  ``W = m^{-1/6} V`` scaling (random start ``V ~ 0.5 N(0, I/d)``, learning rate 4, 4000 steps);
* ``ntk``: kernel ridge regression with the W-block NTK of a width-4096 net (empirical, ≈ the m → ∞ kernel);
* ``kernel3``: kernel ridge regression with the order-3 kernel of the same wide net;

each kernel with the best ridge of ``RIDGES`` (an oracle choice, generous to the kernels).

Usage::

    cd /work/main && .venv/bin/python experiments/higher_order.py

About 5 minutes on 2 CPU cores (most of it compiling nested jvp at order 8).
"""

from __future__ import annotations

import math
import time
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np

import taylorlib as tl

DATA = Path(__file__).resolve().parents[1] / "book" / "data"
OUT = DATA / "higher_order.npz"
GEN_CACHE = DATA / "higher_order_generalization.npz"
ACT = "smooth_relu2"

# coupling sweep
COUPLING_ORDERS = (2, 3, 4, 5)
COUPLING_WIDTHS = tuple(int(2 * round(m / 2)) for m in np.geomspace(1e2, 1e6, 9))
COUPLING_D, COUPLING_N, COUPLING_C = 20, 64, 0.5

# timings
TIMING_M, TIMING_D, TIMING_N, TIMING_ORDERS, TIMING_REPS = 512, 16, 128, tuple(range(1, 9)), 30

# generalization
GEN_D, GEN_K, GEN_M, GEN_M_KERNEL = 16, 3, 256, 4096
GEN_N = (64, 128, 256, 512, 1024, 2048)
GEN_SEEDS = 3
GEN_STEPS, GEN_LR, GEN_INIT = 4000, 4.0, 0.5
GEN_N_TEST = 1000
RIDGES = (1e-3, 1e-2, 1e-1, 1.0, 10.0)


def chapter_keys() -> tuple:
    """The keys of the chapter: ``k_x, k_net, k_gen, k_time = split(key(0), 4)``."""
    return tuple(jax.random.split(jax.random.key(0), 4))


def coupling_sweep() -> dict:
    """The chapter's float32 inputs and initialization, evaluated in float64 (see the module docstring)."""
    k_x, k_net, _, _ = chapter_keys()
    x = tl.data.sphere(k_x, COUPLING_N, COUPLING_D)
    v = jnp.eye(COUPLING_D)[0]
    out = np.zeros((3, len(COUPLING_ORDERS), len(COUPLING_WIDTHS)))
    for j, m in enumerate(COUPLING_WIDTHS):
        p0 = tl.nets.two_layer(m, activation=ACT).init(k_net, COUPLING_D)
        for i, k in enumerate(COUPLING_ORDERS):
            W = (p0["a"] > 0)[:, None] * COUPLING_C * m ** (-1 / (2 * k)) * v[None, :]
            with jax.enable_x64(True):
                f64 = lambda t: jax.tree_util.tree_map(lambda a: jnp.asarray(a, jnp.float64), t)
                res = tl.randomize.coupling_error(f64(p0), f64(W), f64(x), activation=ACT, k=k)
            out[:, i, j] = res.error, res.spread, res.rms_fk
            print(f"  coupling k={k} m={m}: error {res.error:.4g} spread {res.spread:.4g}", flush=True)
    return dict(
        coupling_k=np.array(COUPLING_ORDERS),
        coupling_m=np.array(COUPLING_WIDTHS),
        coupling_error=out[0],
        coupling_spread=out[1],
        coupling_rms_fk=out[2],
    )


def _median_time(fn, reps: int) -> float:
    times = []
    for _ in range(reps):
        t = time.perf_counter()
        jax.block_until_ready(fn())
        times.append(time.perf_counter() - t)
    return float(np.median(times))


def timings() -> dict:
    net = tl.nets.two_layer(TIMING_M, activation=ACT)
    p0 = net.init(jax.random.key(0), TIMING_D)
    dp = {
        "W": jax.random.normal(jax.random.key(1), p0["W"].shape) * TIMING_M**-0.25 / math.sqrt(TIMING_D),
        "a": jnp.zeros(TIMING_M),
    }
    x = tl.data.sphere(jax.random.key(2), TIMING_N, TIMING_D)
    forward = jax.jit(net.apply)
    jax.block_until_ready(forward(p0, x))
    res = {
        "timing_orders": np.array(TIMING_ORDERS),
        "timing_forward": _median_time(lambda: forward(p0, x), 100),
    }
    for method in ("jvp", "jet"):
        run, comp = [], []
        for K in TIMING_ORDERS:
            fn = lambda K=K, method=method: tl.taylor.taylor_terms(
                net.apply, p0, dp, x, order=K, method=method
            )
            t = time.perf_counter()
            jax.block_until_ready(fn())
            first = time.perf_counter() - t
            run.append(_median_time(fn, TIMING_REPS))
            comp.append(first - run[-1])
            print(f"  {method} K={K}: compile {comp[-1]:.2f} s, run {run[-1] * 1e3:.3f} ms", flush=True)
        res[f"timing_run_{method}"], res[f"timing_compile_{method}"] = np.array(run), np.array(comp)
    return res


def generalization_point(key: jax.Array, n: int) -> dict:
    """Relative test MSEs of the order-3 model, the NTK and the order-3 kernel for one seed and one n.

    The same computation as the live cell of the chapter (section 4), with the seed's key in place of ``k_gen``.
    """
    k_t, k_tr, k_te, k_n, k_w, k_v = jax.random.split(key, 6)
    target = tl.data.staircase(k_t, GEN_D, degrees=(GEN_K,))
    x_test = tl.data.sphere(k_te, GEN_N_TEST, GEN_D)
    y_test = target(x_test)
    p_gen = tl.nets.two_layer(GEN_M, activation=ACT).init(k_n, GEN_D)
    wide = tl.nets.two_layer(GEN_M_KERNEL, activation=ACT, symmetric=False).init(k_w, GEN_D)
    f3 = lambda V, x: tl.quadratic.two_layer_terms(
        p_gen, tl.quadratic.to_movement(V, GEN_K), x, activation=ACT, order=GEN_K
    )[GEN_K]
    rel_mse = lambda pred: float(jnp.mean((pred - y_test) ** 2) / jnp.mean(y_test**2))
    x = tl.data.sphere(jax.random.fold_in(k_tr, n), n, GEN_D)
    y = target(x)
    loss = lambda V: jnp.mean((f3(V, x) - y) ** 2)
    step = lambda V, _: (V - GEN_LR * jax.grad(loss)(V), None)
    V0 = GEN_INIT * jax.random.normal(k_v, p_gen["W"].shape) / math.sqrt(GEN_D)
    V = jax.jit(lambda V: jax.lax.scan(step, V, None, length=GEN_STEPS)[0])(V0)
    out = {"order3": rel_mse(f3(V, x_test))}
    kernels = {
        "ntk": lambda a, b=None: tl.ntk.two_layer_ntk(wide, a, b, activation=ACT, trainable=("W",)),
        "kernel3": lambda a, b=None: tl.quadratic.order_k_ntk(wide, a, b, activation=ACT, k=GEN_K),
    }
    for name, kern in kernels.items():
        K, K_test = kern(x), kern(x_test, x)
        out[name] = min(
            rel_mse(tl.kernel_regression.krr(K, y, K_test, ridge=r * float(jnp.trace(K)) / n)) for r in RIDGES
        )
    return out


def main() -> None:
    start = time.perf_counter()
    print("generalization sweep", flush=True)
    gen = tl.sweep.run(
        generalization_point,
        {"n": list(GEN_N)},
        seeds=jax.random.split(chapter_keys()[2], GEN_SEEDS),
        cache=GEN_CACHE,
        vectorize=False,
    )
    for i, n in enumerate(GEN_N):
        print(
            f"  n = {n:5d}  " + "  ".join(f"{k} {np.mean(v[i]):.3f}" for k, v in gen.values.items()),
            flush=True,
        )
    print("coupling sweep", flush=True)
    data = coupling_sweep()
    print("timings", flush=True)
    data.update(timings())
    np.savez_compressed(OUT, **data)
    print(f"wrote {OUT} ({OUT.stat().st_size / 1024:.1f} KiB) in {time.perf_counter() - start:.1f} s")


if __name__ == "__main__":
    main()
