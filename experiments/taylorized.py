"""Regenerate the cached sweeps of the Taylorized-training chapter (``book/06_taylorized_training.ipynb``).

The network and its order-1..4 Taylor models (``tl.taylor.taylor_expand``, same initialization, same optax
optimizer, full-batch steps through ``tl.train.fit(..., data=...)``) are trained on the standardized digits
(``tl.data.digits``: 1297 training and 500 test images, 10 classes) with the squared loss on centred one-hot
labels ``onehot(y) - 1/10``. Every ``LOG_EVERY`` steps the outputs on the test images are recorded; from them:

* ``dist{k}_{i}``: relative function-space distance of the order-k model to the network at log ``i`` (step
  ``i * LOG_EVERY``), ``RMS(f_k - f) / RMS(f - f_0)`` over the test images and the 10 outputs;
* ``loss{k}``, ``acc{k}``: final test loss and accuracy of order ``k`` (``k = 0`` is the network).

Two ``tl.sweep`` caches, each ``.npz`` + ``.json`` sidecar recording the settings (``args``):

``book/data/taylorized_training_mlp.npz``, grid ``arch`` (0: MLP) × seeds
    ``tl.nets.mlp(MLP_WIDTHS, "tanh", out_dim=10)`` on 64-pixel vectors, ``STEPS`` steps of
    ``optax.sgd(LR[0])`` (145 s on two shared cores).
``book/data/taylorized_training_cnn.npz``, grid ``arch`` (1: CNN) × seeds
    ``tl.nets.cnn(CNN_CHANNELS, "tanh", out_dim=10, readout="flatten", bias=False)`` on 8x8x1 images,
    ``STEPS`` steps of ``optax.sgd(LR[1])`` (about 15 minutes on two cores). The bias-free flatten
    readout keeps the eNTK well conditioned (largest eigenvalue / n about 0.07, against 0.84 for a
    global-average-pooled CNN with biases, whose other eigenvalues are below 0.002), so SGD at
    ``LR[1] = 5`` trains every order stably.
``book/data/taylorized_width.npz``, grid ``width`` × seeds
    ``tl.nets.mlp((m,), "tanh", out_dim=10)`` (one hidden layer) for ``m`` in ``WIDTHS``, ``WIDTH_STEPS`` steps, the
    distance of every order to the network at the last step only.

Usage::

    .venv/bin/python experiments/taylorized.py               # all three caches (`make data`)
    .venv/bin/python experiments/taylorized.py --arch mlp    # the MLP training and width sweeps
    .venv/bin/python experiments/taylorized.py --only width
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import jax
import jax.numpy as jnp
import optax

import taylorlib as tl

DATA = Path(__file__).resolve().parents[1] / "book" / "data"
CNN_CACHE = DATA / "taylorized_training_cnn.npz"
WIDTH_CACHE = DATA / "taylorized_width.npz"
MLP_CACHE = DATA / "taylorized_training_mlp.npz"
ACT = "tanh"
ORDERS = (1, 2, 3, 4)
MLP_WIDTHS = (128, 128)
CNN_CHANNELS = (8, 8)
LR = (1.0, 5.0)  # per architecture
STEPS, LOG_EVERY = 200, 20
WIDTHS = (32, 64, 128, 256, 512)
WIDTH_STEPS, WIDTH_LR = 50, 1.0
SEEDS = 3


def chapter_keys() -> tuple:
    """``k_training, k_width = split(key(0))``; seed ``s`` of a sweep is ``split(k, SEEDS)[s]``."""
    return tuple(jax.random.split(jax.random.key(0), 2))


def problem(arch: int):
    """``(net, x_train, Y_train, x_test, y_test)`` of architecture ``arch`` (0: MLP, 1: CNN)."""
    data = tl.data.digits(images=arch == 1)
    net = (
        tl.nets.mlp(MLP_WIDTHS, ACT, out_dim=10)
        if arch == 0
        else tl.nets.cnn(CNN_CHANNELS, ACT, out_dim=10, readout="flatten", bias=False)
    )
    Y = jax.nn.one_hot(data.y_train, 10) - 0.1
    return net, data.x_train, Y, data.x_test, data.y_test


def square_loss(model):
    """``loss(params, batch)``: half the squared error summed over the 10 outputs, mean over the batch."""
    return lambda p, batch: 0.5 * jnp.mean(jnp.sum((model(p, batch[0]) - batch[1]) ** 2, axis=-1))


def train_all(net, p0, x, Y, x_test, steps, lr, log_every):
    """Test outputs ``(orders + 1, logs + 1, n_test, 10)`` of the network (row 0) and its Taylor models
    (rows ``k``) at steps ``0, log_every, ..., steps``."""
    models = [net.apply] + [tl.taylor.taylor_expand(net.apply, p0, k) for k in ORDERS]
    outs = []
    for model in models:
        monitor = lambda p, model=model: model(p, x_test)
        p, hist = tl.train.fit(
            square_loss(model), p0, optax.sgd(lr), steps, data=(x, Y), log_every=log_every, monitor=monitor
        )
        outs.append(jnp.concatenate([hist.monitor, model(p, x_test)[None]]))
    return jnp.stack(outs)


def rel_distances(outs):
    """``(orders, logs + 1)`` relative distances ``RMS(f_k - f) / RMS(f - f_0)`` (nan at step 0)."""
    net = outs[0]
    moved = jnp.sqrt(jnp.mean((net - net[0]) ** 2, axis=(-2, -1)))
    gap = jnp.sqrt(jnp.mean((outs[1:] - net[None]) ** 2, axis=(-2, -1)))
    return gap / moved


def test_metrics(out, Y_test, y_test):
    return 0.5 * jnp.mean(jnp.sum((out - Y_test) ** 2, -1)), jnp.mean(jnp.argmax(out, -1) == y_test)


def training_point(key, arch):
    net, x, Y, x_test, y_test = problem(arch)
    p0 = net.init(key, x.shape[-1] if arch == 0 else tuple(x.shape[1:]))
    outs = train_all(net, p0, x, Y, x_test, STEPS, LR[arch], LOG_EVERY)
    dist = rel_distances(outs)
    Y_test = jax.nn.one_hot(y_test, 10) - 0.1
    res = {}
    for k in range(len(ORDERS) + 1):
        res[f"loss{k}"], res[f"acc{k}"] = test_metrics(outs[k, -1], Y_test, y_test)
        res[f"loss{k}_0"], res[f"acc{k}_0"] = test_metrics(outs[k, 0], Y_test, y_test)
    for a, k in enumerate(ORDERS):
        for i in range(1, dist.shape[1]):
            res[f"dist{k}_{i}"] = dist[a, i]
    res["moved"] = jnp.sqrt(jnp.mean((outs[0, -1] - outs[0, 0]) ** 2))
    return res


def width_point(key, width):
    data = tl.data.digits()
    net = tl.nets.mlp((width,), ACT, out_dim=10)
    Y = jax.nn.one_hot(data.y_train, 10) - 0.1
    p0 = net.init(key, data.x_train.shape[-1])
    outs = train_all(net, p0, data.x_train, Y, data.x_test, WIDTH_STEPS, WIDTH_LR, WIDTH_STEPS)
    dist = rel_distances(outs)
    return {f"dist{k}": dist[a, -1] for a, k in enumerate(ORDERS)}


def training_args() -> dict:
    return dict(
        script="experiments/taylorized.py",
        activation=ACT,
        orders=list(ORDERS),
        mlp_widths=list(MLP_WIDTHS),
        cnn_channels=list(CNN_CHANNELS),
        lr=list(LR),
        optimizer="optax.sgd, full batch",
        steps=STEPS,
        log_every=LOG_EVERY,
        loss="0.5 * mean_i sum_c (f_c - onehot - 0.1)^2",
        data="tl.data.digits() (n_test=500, seed 0)",
    )


def width_args() -> dict:
    return dict(
        script="experiments/taylorized.py",
        activation=ACT,
        orders=list(ORDERS),
        net="mlp((m,), out_dim=10)",
        lr=WIDTH_LR,
        optimizer="optax.sgd, full batch",
        steps=WIDTH_STEPS,
        loss="0.5 * mean_i sum_c (f_c - onehot - 0.1)^2",
        data="tl.data.digits() (n_test=500, seed 0)",
    )


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--only", choices=("training", "width"), default=None)
    parser.add_argument(
        "--arch",
        choices=("mlp", "cnn", "both"),
        default="both",
        help="which training sweeps to run (the width sweep uses the MLP)",
    )
    args = parser.parse_args(argv)
    k_training, k_width = chapter_keys()
    start = time.perf_counter()
    if args.only in (None, "training"):
        for arch, name, cache in ((0, "mlp", MLP_CACHE), (1, "cnn", CNN_CACHE)):
            if args.arch in (name, "both"):
                tl.sweep.run(
                    training_point,
                    {"arch": [arch]},
                    seeds=jax.random.split(k_training, SEEDS),
                    cache=cache,
                    args=training_args(),
                )
                print(f"{name} training sweep done after {time.perf_counter() - start:.0f} s", flush=True)
    if args.only in (None, "width"):
        tl.sweep.run(
            width_point,
            {"width": list(WIDTHS)},
            seeds=jax.random.split(k_width, SEEDS),
            cache=WIDTH_CACHE,
            args=width_args(),
        )
    print(f"finished in {time.perf_counter() - start:.0f} s", flush=True)


if __name__ == "__main__":
    main()
