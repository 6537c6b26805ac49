"""Small pytree arithmetic helpers (private)."""

from __future__ import annotations

from typing import Any

import jax
import jax.numpy as jnp

tmap = jax.tree_util.tree_map


def tree_add(a: Any, b: Any) -> Any:
    return tmap(jnp.add, a, b)


def tree_sub(a: Any, b: Any) -> Any:
    return tmap(jnp.subtract, a, b)


def tree_scale(a: Any, c: Any) -> Any:
    return tmap(lambda x: c * x, a)


def tree_axpy(c: Any, x: Any, y: Any) -> Any:
    """``c * x + y`` leafwise."""
    return tmap(lambda u, v: c * u + v, x, y)


def tree_dot(a: Any, b: Any) -> jax.Array:
    leaves = [
        jnp.vdot(u, v)
        for u, v in zip(jax.tree_util.tree_leaves(a), jax.tree_util.tree_leaves(b), strict=True)
    ]
    return sum(leaves[1:], leaves[0]) if leaves else jnp.zeros(())


def tree_norm(a: Any) -> jax.Array:
    return jnp.sqrt(tree_dot(a, a))


def tree_zeros_like(a: Any) -> Any:
    return tmap(jnp.zeros_like, a)


def tree_size(a: Any) -> int:
    return sum(int(jnp.size(x)) for x in jax.tree_util.tree_leaves(a))


def tree_ravel(a: Any):
    """Flatten a pytree into a 1-D vector; returns ``(vector, unravel)``."""
    from jax.flatten_util import ravel_pytree

    return ravel_pytree(a)


def tree_all_finite(a: Any) -> jax.Array:
    leaves = [jnp.all(jnp.isfinite(x)) for x in jax.tree_util.tree_leaves(a)]
    return jnp.all(jnp.stack(leaves)) if leaves else jnp.array(True)
