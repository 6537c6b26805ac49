"""Shared type aliases and protocols.

Shape letters used throughout taylorlib: ``n`` samples, ``d`` input dimension, ``m`` width,
``p`` parameter count, ``k`` order.
"""

from __future__ import annotations

from typing import Any, NamedTuple, Protocol, TypeAlias, runtime_checkable

from jaxtyping import Array, Float, PRNGKeyArray, PyTree

__all__ = ["Params", "ApplyFn", "InitFn", "Model"]

#: A parameter pytree (for the built-in networks: a dict of arrays).
Params: TypeAlias = PyTree[Any]


@runtime_checkable  # checkable as a parameter type (beartype in the test run): callable with __call__
class ApplyFn(Protocol):
    """``apply(params, x) -> y`` with ``x: (n, d)`` and ``y: (n,)``.

    Example:
        >>> import jax, jax.numpy as jnp
        >>> import taylorlib as tl
        >>> apply: tl.typing.ApplyFn = tl.nets.two_layer(4, "tanh").apply
        >>> p = tl.nets.two_layer(4, "tanh").init(jax.random.key(0), 2)
        >>> apply(p, jnp.ones((3, 2))).shape
        (3,)
    """

    def __call__(self, params: Params, x: Float[Array, "n d"]) -> Float[Array, " n"]: ...


@runtime_checkable
class InitFn(Protocol):
    """``init(key, input_dim) -> params``.

    Example:
        >>> import jax
        >>> import taylorlib as tl
        >>> init: tl.typing.InitFn = tl.nets.two_layer(6, "erf").init
        >>> sorted(init(jax.random.key(0), 3))
        ['W', 'a']
    """

    def __call__(self, key: PRNGKeyArray, input_dim: int) -> Params: ...


class Model(NamedTuple):
    """A network as a pair of pure functions.

    Attributes:
        init: ``init(key, d) -> params``, a dict pytree.
        apply: ``apply(params, x) -> y`` with ``x: (n, d)`` and ``y: (n,)``.
    """

    init: InitFn
    apply: ApplyFn
