r"""The ``"jacobian"`` method of :func:`taylorlib.ntk.empirical_ntk` (private): per-sample Jacobians in chunks
of samples, :math:`J_1 J_2^\top` leaf by leaf, symmetric blocks computed once and sharded over a device mesh."""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from . import _checks
from .typing import ApplyFn, Params


def _leading(x: Any) -> int:
    return jax.tree_util.tree_leaves(x)[0].shape[0]


def _take(x: Any, s: slice) -> Any:
    return jax.tree_util.tree_map(lambda a: a[s], x)


def _pad_rows(x: Any, size: int) -> Any:
    """Pad the batch axis to ``size`` rows by repeating the last row (results for the copies are dropped)."""
    n = _leading(x)
    if n == size:
        return x
    return jax.tree_util.tree_map(lambda a: jnp.concatenate([a, jnp.repeat(a[-1:], size - n, axis=0)]), x)


def _sample_fn(apply: ApplyFn) -> Callable:
    """``(params, x_i) -> (k,)``: one sample through ``apply`` (a batch of one), outputs flattened."""

    def f1(p, xi):
        y = apply(p, jax.tree_util.tree_map(lambda a: a[None], xi))[0]
        return jnp.reshape(y, (-1,))

    return f1


def _per_sample_jacobian(apply: ApplyFn, params: Params, x: Any) -> Params:
    """Per-sample Jacobians, leaves shaped ``(n, k, *leaf_shape)``."""
    return jax.vmap(jax.jacrev(_sample_fn(apply)), in_axes=(None, 0))(params, x)


def _gram(j1: Params, j2: Params, trace: bool) -> jax.Array:
    blocks = []
    for a, b in zip(jax.tree_util.tree_leaves(j1), jax.tree_util.tree_leaves(j2), strict=True):
        k = a.shape[1]
        if trace:  # mean over the output axis: one matmul over (output, parameter) pairs
            blocks.append(a.reshape(a.shape[0], -1) @ b.reshape(b.shape[0], -1).T / k)
        else:
            blocks.append(
                jnp.einsum("iap,jbp->ijab", a.reshape(a.shape[0], k, -1), b.reshape(b.shape[0], k, -1))
            )
    return functools.reduce(jnp.add, blocks)


@functools.partial(jax.jit, static_argnums=(0, 4))
def _jacobian_block(apply, params, x1, x2, trace):
    j1 = _per_sample_jacobian(apply, params, x1)
    j2 = _per_sample_jacobian(apply, params, x2)
    return _gram(j1, j2, trace)


@functools.partial(jax.jit, static_argnums=(0, 3))
def _jacobian_sym(apply, params, x, trace):
    j = _per_sample_jacobian(apply, params, x)
    return _gram(j, j, trace)


def _chunks(n: int, size: int) -> list[slice]:
    return [slice(i, min(i + size, n)) for i in range(0, n, size)]


def _round_up(n: int, m: int) -> int:
    return -(-n // m) * m


def _mesh() -> jax.sharding.Mesh | None:
    """A one-axis mesh over every device when there is more than one (``None`` otherwise)."""
    devices = jax.devices()
    if len(devices) < 2:
        return None
    return jax.sharding.Mesh(np.array(devices), ("batch",))


def _shard(x: Any, mesh: jax.sharding.Mesh | None) -> Any:
    """Place a batch (rows divisible by the mesh size) with its rows split over the mesh's devices."""
    if mesh is None or any(_checks.is_tracer(a) for a in jax.tree_util.tree_leaves(x)):
        return x
    spec = jax.sharding.NamedSharding(mesh, jax.sharding.PartitionSpec("batch"))
    return jax.device_put(x, spec)


def _transpose_block(b: jax.Array) -> jax.Array:
    return b.T if b.ndim == 2 else b.transpose(1, 0, 3, 2)


def _ntk_jacobian(apply, params, x1, x2, same, chunk, trace):
    n1, n2 = _leading(x1), _leading(x2)
    mesh = _mesh()
    ndev = 1 if mesh is None else mesh.size
    if chunk >= max(n1, n2):
        # one block; with several devices its rows are padded to a multiple of the device count
        r1, r2 = _round_up(n1, ndev), _round_up(n2, ndev)
        a = _shard(_pad_rows(x1, r1), mesh)
        if same:
            return _jacobian_sym(apply, params, a, trace)[:n1, :n1]
        b = _shard(_pad_rows(x2, r2), mesh)
        return _jacobian_block(apply, params, a, b, trace)[:n1, :n2]
    # Stream fixed-size blocks. The last chunk is padded to the full size by repeating its last row (a
    # one-row block is a matrix-vector product, which loses two digits in float32 on XLA CPU, and equal
    # shapes compile once); the copies' rows and columns are dropped.
    c1 = _round_up(min(chunk, n1), ndev)
    c2 = c1 if same else _round_up(min(chunk, n2), ndev)
    rows1 = [(s, _shard(_pad_rows(_take(x1, s), c1), mesh)) for s in _chunks(n1, c1)]
    rows2 = rows1 if same else [(s, _shard(_pad_rows(_take(x2, s), c2), mesh)) for s in _chunks(n2, c2)]
    blocks: dict[tuple[int, int], jax.Array] = {}
    for i, (s1, a) in enumerate(rows1):
        for j, (s2, b) in enumerate(rows2):
            if same and j < i:  # symmetric kernel: the lower blocks are transposes of upper ones
                blocks[i, j] = _transpose_block(blocks[j, i])
                continue
            if same and i == j:
                blk = _jacobian_sym(apply, params, a, trace)
            else:
                blk = _jacobian_block(apply, params, a, b, trace)
            blocks[i, j] = blk[: s1.stop - s1.start, : s2.stop - s2.start]
    return jnp.concatenate(
        [jnp.concatenate([blocks[i, j] for j in range(len(rows2))], axis=1) for i in range(len(rows1))],
        axis=0,
    )
