"""Shared type aliases and protocols.

Shape letters used throughout taylorlib: ``n`` samples, ``d`` input dimension, ``m`` width,
``p`` parameter count, ``k`` order.
"""

from __future__ import annotations

from typing import Any, NamedTuple, Protocol

from jaxtyping import Array, Float, PRNGKeyArray, PyTree

__all__ = ["Params", "ApplyFn", "InitFn", "Model"]

#: A parameter pytree (for the built-in networks: a dict of arrays).
Params = PyTree[Any]


class ApplyFn(Protocol):
    """``apply(params, x) -> y`` with ``x: (n, d)`` and ``y: (n,)``."""

    def __call__(self, params: Params, x: Float[Array, "n d"]) -> Float[Array, " n"]: ...


class InitFn(Protocol):
    """``init(key, input_dim) -> params``."""

    def __call__(self, key: PRNGKeyArray, input_dim: int) -> Params: ...


class Model(NamedTuple):
    """A network as a pair of pure functions.

    Attributes:
        init: ``init(key, d) -> params``, a dict pytree.
        apply: ``apply(params, x) -> y`` with ``x: (n, d)`` and ``y: (n,)``.
    """

    init: InitFn
    apply: ApplyFn
