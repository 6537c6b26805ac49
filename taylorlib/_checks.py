"""Input validation shared by the public modules (private)."""

from __future__ import annotations

import numbers
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np


def is_tracer(x: Any) -> bool:
    return isinstance(x, jax.core.Tracer)


def as_float_array(x: Any, name: str) -> jax.Array:
    """Convert to a floating JAX array, rejecting ints-only, bools and complex input."""
    if isinstance(x, (list, tuple)):
        x = np.asarray(x)
    if not hasattr(x, "dtype") or not hasattr(x, "shape"):
        raise TypeError(f"{name} must be an array, got {type(x).__name__}")
    if jnp.issubdtype(x.dtype, jnp.complexfloating):
        raise TypeError(f"{name} must be real floating point, got dtype {x.dtype}")
    if jnp.issubdtype(x.dtype, jnp.bool_):
        raise TypeError(f"{name} must be floating point, got dtype bool")
    if not jnp.issubdtype(x.dtype, jnp.floating):
        x = jnp.asarray(x, dtype=jnp.result_type(float))
    return as_array(x)


def as_array(x: Any) -> jax.Array:
    """``jnp.asarray(x)``, without its cost (tens of microseconds) when ``x`` is a JAX array already."""
    return x if isinstance(x, jax.Array) else jnp.asarray(x)


@jax.jit
def _all_finite(x: jax.Array) -> jax.Array:
    return jnp.all(jnp.isfinite(x))


def check_finite(x: Any, name: str) -> None:
    """Raise ValueError if a concrete array contains NaN or inf (skipped under tracing).

    Host arrays and arrays on the CPU are checked in place (``np.asarray`` of a CPU JAX array is a
    view, not a copy); arrays on an accelerator are reduced on the device, so one boolean, not the
    array, crosses to the host.
    """
    if is_tracer(x):
        return
    if isinstance(x, jax.Array) and any(dev.platform != "cpu" for dev in x.devices()):
        ok = bool(_all_finite(x))
    else:
        ok = bool(np.all(np.isfinite(np.asarray(x))))
    if not ok:
        raise ValueError(f"{name} contains NaN or inf values")


def check_x(x: Any, name: str = "x", d: int | None = None, allow_empty: bool = False) -> jax.Array:
    """Validate a batch of inputs: 2-D ``(n, d)``, floating, finite, matching dimension ``d``."""
    x = as_float_array(x, name)
    if x.ndim != 2:
        raise ValueError(f"{name} must be 2-D with shape (n, d), got shape {tuple(x.shape)}")
    if not allow_empty and x.shape[0] == 0:
        raise ValueError(f"{name} must contain at least one sample, got shape {tuple(x.shape)}")
    if d is not None and x.shape[1] != d:
        raise ValueError(
            f"{name} has feature dimension {x.shape[1]} but the parameters expect d = {d} (shape (n, {d}))"
        )
    check_finite(x, name)
    return x


def check_pair(x1: Any, x2: Any, d: int | None = None) -> tuple[jax.Array, jax.Array]:
    """Validate ``x1`` and optional ``x2`` (``None`` means ``x2 = x1``)."""
    x1 = check_x(x1, "x1", d)
    if x2 is None:
        return x1, x1
    x2 = check_x(x2, "x2", d)
    if x2.shape[1] != x1.shape[1]:
        raise ValueError(
            f"x1 and x2 must have the same feature dimension, got x1 {tuple(x1.shape)} and "
            f"x2 {tuple(x2.shape)}"
        )
    return x1, x2


def check_int(value: Any, name: str, minimum: int | None = None, maximum: int | None = None) -> int:
    """Validate a Python integer (not bool, not float) within ``[minimum, maximum]``."""
    if isinstance(value, bool) or not isinstance(value, numbers.Integral):
        raise TypeError(f"{name} must be an int, got {value!r} of type {type(value).__name__}")
    value = int(value)
    if minimum is not None and value < minimum:
        raise ValueError(f"{name} must be >= {minimum}, got {value}")
    if maximum is not None and value > maximum:
        raise ValueError(f"{name} must be <= {maximum}, got {value}")
    return value


def check_positive(value: Any, name: str, allow_zero: bool = False) -> Any:
    """Validate a real scalar that must be positive (or non-negative): its float, or the tracer itself under jit."""
    not_real = isinstance(value, bool) or not isinstance(value, numbers.Real)
    if not_real and getattr(value, "shape", None) != ():
        raise TypeError(f"{name} must be a real number, got {type(value).__name__}")
    if is_tracer(value):
        return value
    v = float(value)
    if not np.isfinite(v):
        raise ValueError(f"{name} must be finite, got {v}")
    if v < 0 or (v == 0 and not allow_zero):
        bound = ">= 0" if allow_zero else "> 0"
        raise ValueError(f"{name} must be {bound}, got {v}")
    return v


def check_choice(value: Any, name: str, choices: tuple[str, ...]) -> str:
    if not isinstance(value, str) or value not in choices:
        raise ValueError(f"unknown {name} {value!r}; expected one of {', '.join(map(repr, choices))}")
    return value


def check_same_structure(a: Any, b: Any, name_a: str, name_b: str) -> None:
    """Raise ValueError unless pytrees ``a`` and ``b`` have the same structure and leaf shapes."""
    ta, tb = jax.tree_util.tree_structure(a), jax.tree_util.tree_structure(b)
    if ta != tb:  # type: ignore[operator]  # PyTreeDef defines equality; its stub does not say so
        raise ValueError(f"{name_b} must have the same pytree structure as {name_a}: got {tb}, expected {ta}")
    for la, lb in zip(jax.tree_util.tree_leaves(a), jax.tree_util.tree_leaves(b), strict=True):
        if jnp.shape(la) != jnp.shape(lb):
            raise ValueError(
                f"{name_b} leaf shape {jnp.shape(lb)} does not match {name_a} leaf shape {jnp.shape(la)}"
            )


def check_hashable(value: Any, name: str, why: str = "it is a static argument of jax.jit") -> None:
    """Raise TypeError unless ``value`` is hashable (static arguments of ``jax.jit`` must be)."""
    try:
        hash(value)
    except TypeError:
        raise TypeError(
            f"{name} must be hashable ({why}), got an unhashable {type(value).__name__}"
        ) from None


def check_callable(fn: Any, name: str) -> None:
    if not callable(fn):
        raise TypeError(f"{name} must be callable, got {type(fn).__name__}")


def check_key(key: Any, name: str = "key") -> None:
    """Raise TypeError unless ``key`` is a PRNG key (typed ``jax.random.key`` or a legacy uint32 pair)."""
    dtype, shape = getattr(key, "dtype", None), getattr(key, "shape", None)
    if dtype is not None and jnp.issubdtype(dtype, jax.dtypes.prng_key):
        return
    if dtype == jnp.uint32 and shape is not None and tuple(shape)[-1:] == (2,):
        return
    raise TypeError(
        f"{name} must be a PRNG key, e.g. jax.random.key(0), got {type(key).__name__}"
        + (f" of dtype {dtype}" if dtype is not None else "")
    )


def check_float_leaves(tree: Any, name: str, allow_int: bool = False) -> None:
    """Raise unless every leaf of ``tree`` is real floating (ints too if ``allow_int``) and finite."""
    for leaf in jax.tree_util.tree_leaves(tree):
        dtype = jnp.result_type(leaf)
        if jnp.issubdtype(dtype, jnp.complexfloating):
            raise TypeError(f"{name} must be real floating point, got a leaf of dtype {dtype}")
        if not jnp.issubdtype(dtype, jnp.floating) and not (allow_int and jnp.issubdtype(dtype, jnp.integer)):
            raise TypeError(f"{name} must be floating point, got a leaf of dtype {dtype}")
        check_finite(leaf, name)
