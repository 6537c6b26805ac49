r"""Pure training steps driven by ``lax.scan``, with optax optimizers.

* :func:`make_step` turns a scalar loss and any optax ``GradientTransformation`` into a pure
  ``step(state, batch=None) -> (state, metrics)`` on a :class:`TrainState`.
* :func:`fit` runs that step ``steps`` times with ``lax.scan`` in compiled chunks. Between chunks it
  checks on the host that the loss and gradient stayed finite (raising :class:`NonFiniteError`
  that names the step) and advances an optional progress bar. Called under ``jax.vmap`` or
  ``jax.jit`` (e.g. over seeds or learning rates) it runs fully traced instead: no host checks, and
  a run whose loss stops being finite is frozen at the params where that happened.
* :func:`perturbed_gd` is gradient descent that adds noise uniform in a ball whenever the gradient
  is small, the escape-saddle algorithm of Jin et al.:

  .. math:: \theta_{t+1} = \theta_t - \eta \nabla L(\theta_t)
     + \mathbb 1\{\|\nabla L(\theta_t)\| < g\}\, \xi_t, \qquad \xi_t \sim \mathrm{Unif}(B_p(0, \rho)).

A loss is ``loss(params)`` with the data closed over; with ``key=...`` in :func:`fit` (or
``needs_key=True`` in :func:`make_step`) it is ``loss(params, key)`` and receives a fresh key every
step (e.g. fresh random signs), split from the key carried in the :class:`TrainState`.

References:
    Jin, Ge, Netrapalli, Kakade & Jordan 2017, *How to escape saddle points efficiently*
    (arXiv:1703.00887); Bai & Lee 2020 (arXiv:1910.01619).
"""

from __future__ import annotations

import functools
import math
from collections.abc import Callable
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import optax

from ._checks import check_float_leaves, check_int, check_key, is_tracer
from ._perturb import PerturbedGDState, perturb, perturbed_gd
from ._train_loop import _advance, _Guard, _make_chunk, _progress_bar, _robust_norm
from .typing import Array, Float, Params, PRNGKeyArray

__all__ = [
    "TrainState",
    "History",
    "NonFiniteError",
    "PerturbedGDState",
    "init_state",
    "make_step",
    "fit",
    "perturbed_gd",
    "perturb",
]

#: fit() checks finiteness on the host about this many times per run (one compiled chunk each).
_TARGET_CHUNKS = 20
_WHAT = {1: "loss", 2: "gradient norm"}


class TrainState(NamedTuple):
    """The carry of a training loop (a pytree: jit-, scan- and vmap-compatible).

    Attributes:
        params: the parameter pytree.
        opt_state: the optax optimizer state.
        key: typed PRNG key, split every step; the loss gets one half when it needs a key.
        step: ``()`` int, the number of steps taken.
    """

    params: Params
    opt_state: Any
    key: PRNGKeyArray
    step: Array


class History(NamedTuple):
    """Metrics recorded by a training loop, evaluated at the params *before* each recorded update.

    For one step (the metrics returned by a step function) every field is a scalar ``()``; for
    :func:`fit` every field has a leading axis ``T = ceil(steps / log_every)`` (one entry every
    ``log_every`` steps).

    Attributes:
        loss: ``(T,)`` loss values.
        grad_norm: ``(T,)`` Euclidean norms of the full gradient (over all leaves).
        step: ``(T,)`` int step indices ``0, log_every, 2 log_every, ...``.
        monitor: ``monitor(params)`` for the ``monitor`` function given to :func:`fit` (any
            pytree, each leaf with a leading ``T`` axis), or ``None``.
    """

    loss: Array
    grad_norm: Array
    step: Array
    monitor: Any = None


class NonFiniteError(ValueError, FloatingPointError):
    """Raised by :func:`fit` when the loss or the gradient norm stops being finite.

    The message names the quantity, its value (nan or inf) and the step.

    Example:
        >>> import jax.numpy as jnp, optax
        >>> import taylorlib as tl
        >>> try:  # w: 1 -> 0.5 -> -0.207, where sqrt(w) is nan
        ...     tl.train.fit(lambda w: jnp.sum(jnp.sqrt(w)), jnp.ones(1), optax.sgd(1.0), 20)
        ... except tl.train.NonFiniteError as e:
        ...     print(str(e).split(";")[0])
        fit stopped: the loss is nan at step 2 (of 20)
    """


def _check_optimizer(optimizer: Any) -> None:
    if not isinstance(optimizer, optax.GradientTransformation):
        raise TypeError(
            f"optimizer must be an optax.GradientTransformation (e.g. optax.sgd(0.1)), got "
            f"{type(optimizer).__name__}"
        )


def _check_loss_output(out: Any) -> None:
    shape, dtype = getattr(out, "shape", None), getattr(out, "dtype", None)
    if shape != ():
        raise ValueError(f"loss must return a scalar of shape (), got shape {shape}")
    if dtype is None or not jnp.issubdtype(dtype, jnp.floating):
        raise TypeError(f"loss must return a real floating scalar, got dtype {dtype}")


def init_state(
    params: Params, optimizer: optax.GradientTransformation, key: PRNGKeyArray | None = None
) -> TrainState:
    """A fresh :class:`TrainState` at step 0 (``key=None`` uses ``jax.random.key(0)``; it is only
    consumed by losses that need a key).

    Example:
        >>> import jax.numpy as jnp, optax
        >>> import taylorlib as tl
        >>> state = tl.train.init_state(jnp.zeros(3), optax.sgd(0.1))
        >>> int(state.step), state.params.shape
        (0, (3,))
    """
    _check_optimizer(optimizer)
    if key is None:
        key = jax.random.key(0)
    return TrainState(params, optimizer.init(params), key, jnp.zeros((), jnp.int32))


def make_step(
    loss: Callable[..., Float[Array, ""]],
    optimizer: optax.GradientTransformation,
    *,
    needs_key: bool = False,
    monitor: Callable[[Params], Any] | None = None,
) -> Callable[[TrainState, Any], tuple[TrainState, History]]:
    r"""A pure training step ``step(state, batch=None) -> (state, metrics)``.

    The loss is called as ``loss(params)``, ``loss(params, batch)``, ``loss(params, key)`` or
    ``loss(params, batch, key)`` (batch given / ``needs_key``); the key is split from
    ``state.key`` so every step sees a fresh one.

    Args:
        loss: scalar loss function.
        optimizer: any optax ``GradientTransformation``.
        needs_key: pass a fresh per-step key as the loss's last argument.
        monitor: optional ``monitor(params)`` recorded in ``metrics.monitor``.

    Returns:
        ``step``; its ``metrics`` is a :class:`History` of scalars evaluated before the update.

    Example:
        >>> import jax, jax.numpy as jnp, optax
        >>> import taylorlib as tl
        >>> opt = optax.sgd(0.25)
        >>> step = jax.jit(tl.train.make_step(lambda w: jnp.sum(w**2), opt))
        >>> state, metrics = step(tl.train.init_state(jnp.ones(2), opt))
        >>> state.params.tolist(), float(metrics.loss), int(state.step)   # w - 0.25 * 2w
        ([0.5, 0.5], 2.0, 1)
    """
    if not callable(loss):
        raise TypeError(f"loss must be callable, got {type(loss).__name__}")
    _check_optimizer(optimizer)
    if monitor is not None and not callable(monitor):
        raise TypeError(f"monitor must be callable or None, got {type(monitor).__name__}")

    def step(state: TrainState, batch: Any = None) -> tuple[TrainState, History]:
        key, k_loss = jax.random.split(state.key)
        args = () if batch is None else (batch,)
        args = args + (k_loss,) if needs_key else args
        _check_loss_output(jax.eval_shape(loss, state.params, *args))
        value, grads = jax.value_and_grad(loss)(state.params, *args)
        updates, opt_state = optimizer.update(grads, state.opt_state, state.params)
        params = optax.apply_updates(state.params, updates)
        aux = None if monitor is None else monitor(state.params)
        metrics = History(value, _robust_norm(grads), state.step, aux)
        return TrainState(params, opt_state, key, state.step + 1), metrics

    return step


def _build_chunk(loss, optimizer, needs_key, steps, log_every, logs_per_chunk, monitor, batching=None):
    step_fn = make_step(loss, optimizer, needs_key=needs_key)
    return _make_chunk(step_fn, steps, log_every, logs_per_chunk, monitor, batching)


#: Compiled chunks of recent :func:`fit` calls, keyed on the identity of (loss, optimizer, monitor) and the
#: step counts: calling ``fit`` again with the same loss function reuses the compiled program instead of
#: tracing and compiling it anew (the cache keeps up to this many losses, and what they close over, alive).
_CHUNK_CACHE_SIZE = 16
_cached_chunk = functools.lru_cache(maxsize=_CHUNK_CACHE_SIZE)(_build_chunk)


def _raise_if_bad(guard: _Guard, steps: int) -> None:
    s = int(guard.step)
    if s < 0:
        return
    what, value = _WHAT[int(guard.code)], float(guard.value)
    raise NonFiniteError(
        f"fit stopped: the {what} is {value} at step {s} (of {steps}); the params at that step are "
        "finite. Lower the learning rate, add regularization, or check the loss for overflow."
    )


def fit(
    loss: Callable[..., Float[Array, ""]],
    params: Params,
    optimizer: optax.GradientTransformation,
    steps: int,
    *,
    data: Any = None,
    batch_size: int | None = None,
    batch_key: PRNGKeyArray | None = None,
    key: PRNGKeyArray | None = None,
    log_every: int = 1,
    monitor: Callable[[Params], Any] | None = None,
    progress: bool = False,
) -> tuple[Params, History]:
    r"""Minimize ``loss`` for ``steps`` steps of ``optimizer``; ``lax.scan`` in compiled chunks.

    With ``data`` (a pytree of arrays sharing a leading axis of length ``n``, e.g. ``(x, y)``) the loss
    is ``loss(params, batch)``: the full ``data`` every step (``batch_size`` ``None`` or ``n``), or
    minibatches of ``batch_size`` rows. Epoch ``e`` (``n // batch_size`` steps) visits a fresh random
    permutation of the rows in consecutive blocks, so every row is used once per epoch (the last
    ``n % batch_size`` rows of each permutation are skipped). The data are an argument of the
    compiled program, not constants baked into it (XLA does not constant-fold the network on them).

    Args:
        loss: ``loss(params) -> ()`` (data closed over), ``loss(params, batch)`` when ``data`` is given,
            with a trailing ``key`` argument when ``key`` is given.
        params: initial parameter pytree (finite).
        optimizer: any optax ``GradientTransformation``.
        steps: number of steps ``>= 1``.
        data: optional pytree of arrays with a common leading axis ``n`` (the examples).
        batch_size: rows per step, ``1 <= batch_size <= n`` (``None``: the full batch).
        batch_key: PRNG key of the permutations (default ``jax.random.key(0)``).
        key: if given, the loss receives a fresh key each step (split from this one).
        log_every: record metrics every ``log_every`` steps.
        monitor: optional ``monitor(params)`` recorded (every ``log_every`` steps) in ``History.monitor``.
        progress: show a tqdm progress bar (host loop only).

    Returns:
        ``(params, history)``: the final params and a :class:`History` with ``ceil(steps / log_every)``
        entries.

    Raises:
        NonFiniteError: the loss or gradient norm became nan/inf (names the step); not raised under
            ``jit``/``vmap``, where the run is instead frozen at the last params reached.
        ValueError, TypeError: ``steps < 1``, non-finite ``params``, a non-scalar loss, not an optimizer.

    Example:
        >>> import jax, jax.numpy as jnp, optax
        >>> import taylorlib as tl
        >>> w, hist = tl.train.fit(lambda w: jnp.sum((w - 3.0) ** 2), jnp.zeros(2), optax.sgd(0.1), 100,
        ...                        log_every=10)
        >>> [round(v, 4) for v in w.tolist()], hist.loss.shape, hist.step[:3].tolist()
        ([3.0, 3.0], (10,), [0, 10, 20])
        >>> # vmap over initial points: one compiled run for all of them
        >>> ws, _ = jax.vmap(lambda w0: tl.train.fit(lambda w: jnp.sum((w - w0) ** 2), jnp.zeros(2),
        ...                                          optax.sgd(0.1), 100))(jnp.eye(2))
        >>> bool(jnp.allclose(ws, jnp.eye(2), atol=1e-4))
        True
        >>> # minibatches of 2 of 8 examples: least squares y = 2 x
        >>> x = jnp.arange(8.0); data = (x, 2 * x)
        >>> mse = lambda w, b: jnp.mean((w * b[0] - b[1]) ** 2)
        >>> w, _ = tl.train.fit(mse, jnp.zeros(()), optax.sgd(0.01), 200, data=data, batch_size=2)
        >>> round(float(w), 4)
        2.0
    """
    if not callable(loss):
        raise TypeError(f"loss must be callable, got {type(loss).__name__}")
    _check_optimizer(optimizer)
    steps = check_int(steps, "steps", minimum=1)
    log_every = check_int(log_every, "log_every", minimum=1)
    if monitor is not None and not callable(monitor):
        raise TypeError(f"monitor must be callable or None, got {type(monitor).__name__}")
    check_float_leaves(params, "params")
    if key is not None:
        check_key(key)  # an int seed (key=0) gets a clear error, not JAX's message about key data
    batching, chunk_data = None, None
    if data is not None:
        leaves = jax.tree_util.tree_leaves(data)
        if not leaves or any(jnp.ndim(v) == 0 for v in leaves):
            raise ValueError("data must be a pytree of arrays with a leading axis of examples (n, ...)")
        n = int(jnp.shape(leaves[0])[0])
        if any(int(jnp.shape(v)[0]) != n for v in leaves):
            raise ValueError(
                f"every leaf of data must have the same leading axis n; got {[jnp.shape(v) for v in leaves]}"
            )
        if batch_size is not None:
            batch_size = check_int(batch_size, "batch_size", minimum=1)
            if batch_size > n:
                raise ValueError(
                    f"batch_size must be <= n = {n} (the leading axis of data), got {batch_size}"
                )
        if batch_key is None:
            batch_key = jax.random.key(0)
        check_key(batch_key)
        batching, chunk_data = (n, batch_size), (data, batch_key)
    elif batch_size is not None:
        raise ValueError("batch_size needs data=... (a pytree of arrays with a leading axis n)")
    n_logs = math.ceil(steps / log_every)
    logs_per_chunk = math.ceil(n_logs / _TARGET_CHUNKS)
    n_chunks = math.ceil(n_logs / logs_per_chunk)
    spec = (loss, optimizer, key is not None, steps, log_every, logs_per_chunk, monitor, batching)
    try:
        hash(spec)
    except TypeError:  # an unhashable loss, optimizer or monitor: build (and compile) afresh
        chunk = _build_chunk(*spec)
    else:
        chunk = _cached_chunk(*spec)
    zero = jnp.zeros((), jnp.int32)
    carry = (init_state(params, optimizer, key), _Guard(zero - 1, zero, jnp.zeros((), jnp.float32)))
    carry, first = chunk(carry, chunk_data)
    if any(is_tracer(v) for v in jax.tree_util.tree_leaves((carry, first))):
        # Under jit/vmap: no host round trips; the remaining chunks run in one scan.
        carry, rest = jax.lax.scan(lambda c, _: chunk(c, chunk_data), carry, None, length=n_chunks - 1)
        rest = jax.tree_util.tree_map(lambda a: a.reshape((-1,) + a.shape[2:]), rest)
        hist = jax.tree_util.tree_map(lambda a, b: jnp.concatenate([a, b])[:n_logs], first, rest)
        return carry[0].params, hist
    bar = _progress_bar(steps) if progress else None
    parts = [first]
    try:
        _advance(bar, logs_per_chunk * log_every, steps)
        _raise_if_bad(carry[1], steps)
        for _ in range(n_chunks - 1):
            carry, part = chunk(carry, chunk_data)
            parts.append(part)
            _advance(bar, logs_per_chunk * log_every, steps)
            _raise_if_bad(carry[1], steps)
    finally:
        if bar is not None:
            bar.close()
    hist = jax.tree_util.tree_map(lambda *a: jnp.concatenate(a)[:n_logs], *parts)
    return carry[0].params, hist
