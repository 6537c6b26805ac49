"""The chunked ``lax.scan`` driver behind :func:`taylorlib.train.fit`: the finiteness guard, the minibatch of a
step, the compiled chunk of steps, the gradient norm of :func:`taylorlib.train.make_step`, and the progress bar.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp

from .typing import Array, Params, PRNGKeyArray


def _robust_norm(tree: Params) -> Array:
    """Euclidean norm over all leaves, scaled by the largest entry so it only overflows when it must."""
    leaves = jax.tree_util.tree_leaves(tree)
    scale = functools.reduce(jnp.maximum, [jnp.max(jnp.abs(v)) for v in leaves])
    safe = jnp.where((scale > 0) & jnp.isfinite(scale), scale, 1.0)
    total = functools.reduce(jnp.add, [jnp.sum((v / safe) ** 2) for v in leaves])
    return jnp.where(jnp.isfinite(scale), safe * jnp.sqrt(total), scale)


class _Guard(NamedTuple):
    step: Array  # first step whose loss or gradient norm is not finite (-1: none)
    code: Array  # 1 loss, 2 gradient norm
    value: Array


def _batch(data: Any, batch_key: PRNGKeyArray, step: Array, n: int, batch_size: int | None) -> Any:
    """The minibatch of ``step``: epoch ``e`` visits a permutation of the data keyed by ``(batch_key, e)``
    in consecutive blocks of ``batch_size`` (the last ``n % batch_size`` of each permutation are skipped);
    ``batch_size`` ``None`` or ``n`` is the full batch in the data's own order."""
    if batch_size is None or batch_size == n:
        return data
    per_epoch = n // batch_size
    epoch, pos = step // per_epoch, step % per_epoch
    perm = jax.random.permutation(jax.random.fold_in(batch_key, epoch), n)
    idx = jax.lax.dynamic_slice_in_dim(perm, pos * batch_size, batch_size)
    return jax.tree_util.tree_map(lambda v: jnp.take(v, idx, axis=0), data)


def _make_chunk(
    step_fn: Callable,
    steps: int,
    log_every: int,
    logs_per_chunk: int,
    monitor: Callable | None,
    batching: tuple[int, int | None] | None = None,
):
    """A jitted ``chunk(carry, data)`` advancing ``(state, guard)`` by ``logs_per_chunk * log_every`` steps.

    ``step_fn`` is a step of :func:`taylorlib.train.make_step` (its metrics a :class:`taylorlib.train.History`).
    ``data`` is ``None`` or ``(data, batch_key)``; ``batching`` is ``(n, batch_size)`` when data is given.
    """
    data_ref: list = [None]

    def guarded(carry, _):
        state, guard = carry
        if batching is None:
            new, m = step_fn(state)
        else:
            data, batch_key = data_ref[0]
            new, m = step_fn(state, _batch(data, batch_key, state.step, *batching))
        loss_ok, grad_ok = jnp.isfinite(m.loss), jnp.isfinite(m.grad_norm)
        active = (state.step < steps) & (guard.step < 0)
        bad = active & ~(loss_ok & grad_ok)
        guard = _Guard(
            jnp.where(bad, state.step, guard.step),
            jnp.where(bad, jnp.where(loss_ok, 2, 1), guard.code),
            jnp.where(bad, jnp.where(loss_ok, m.grad_norm, m.loss).astype(jnp.float32), guard.value),
        )
        keep = active & loss_ok & grad_ok
        state = jax.tree_util.tree_map(lambda a, b: jnp.where(keep, a, b), new, state)
        return (state, guard), m

    def log_block(carry, _):
        aux = None if monitor is None else monitor(carry[0].params)
        if log_every == 1:  # no inner loop: a while loop per step costs more than a small step
            carry, m = guarded(carry, None)
            return carry, m._replace(monitor=aux)
        carry, m = jax.lax.scan(guarded, carry, None, length=log_every)
        return carry, jax.tree_util.tree_map(lambda v: v[0], m)._replace(monitor=aux)

    @jax.jit
    def chunk(carry, data=None):
        data_ref[0] = data  # read while tracing only
        return jax.lax.scan(log_block, carry, None, length=logs_per_chunk)

    return chunk


def _progress_bar(total: int):
    from tqdm import tqdm

    return tqdm(total=total, desc="fit", unit="step")


def _advance(bar: Any, n: int, total: int) -> None:
    if bar is not None:
        bar.update(min(n, total - bar.n))
