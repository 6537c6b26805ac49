"""Activation functions, looked up by name or passed as callables, with their derivatives.

Every activation is an :class:`Activation`: a callable elementwise function with a name and a
``max_order``, the highest derivative order that is not identically zero (almost everywhere).
ReLU has ``max_order = 1`` (its second derivative vanishes a.e.), the quadratic activation has
``max_order = 2``; the smooth activations have ``max_order = inf``.

Example:
    >>> import jax.numpy as jnp
    >>> import taylorlib as tl
    >>> act = tl.activations.get("smooth_relu2")
    >>> float(act(jnp.array(0.0)))  # softplus(0)^2 / 2 = log(2)^2 / 2
    0.2402265...
    >>> d2 = tl.activations.derivative("quadratic", 2)
    >>> float(d2(jnp.array(3.0)))
    2.0
"""

from __future__ import annotations

import dataclasses
import functools
import math
from collections.abc import Callable
from typing import Any

import jax
import jax.numpy as jnp

__all__ = [
    "Activation",
    "get",
    "derivative",
    "names",
    "relu",
    "erf",
    "tanh",
    "softplus",
    "gelu",
    "quadratic",
    "smooth_relu2",
]


@dataclasses.dataclass(frozen=True)
class Activation:
    """An elementwise activation function with metadata.

    Attributes:
        name: registry name (``None`` for user callables).
        fn: the elementwise function ``R -> R`` (vectorized over arrays).
        max_order: highest derivative order that is not identically zero a.e.
            (``math.inf`` for smooth activations).
        jet_ok: whether :func:`jax.experimental.jet` can propagate Taylor series through ``fn``.

    Example:
        >>> import jax.numpy as jnp
        >>> import taylorlib as tl
        >>> tl.activations.relu(jnp.array([-1.0, 2.0])).tolist(), tl.activations.relu.max_order
        ([0.0, 2.0], 1)
        >>> round(float(tl.activations.softplus(jnp.array(0.0))), 6)  # log 2
        0.693147
    """

    name: str | None
    fn: Callable[[jax.Array], jax.Array]
    max_order: float = math.inf
    jet_ok: bool = True

    def __call__(self, x: jax.Array) -> jax.Array:
        return self.fn(x)

    def __repr__(self) -> str:
        return f"Activation({self.name or getattr(self.fn, '__name__', 'custom')!r})"


def _relu(x):
    return jnp.maximum(x, 0.0)


def _softplus_smooth(x):
    # log(1 + e^x) from elementary primitives (log1p, exp, select) so that
    # jax.experimental.jet can propagate Taylor series through it (jax.nn.softplus uses
    # logaddexp, which jet cannot handle). Overflow is avoided with softplus(x) = x + softplus(-x)
    # on the positive half-line.
    return jnp.where(
        x > 0, x + jnp.log1p(jnp.exp(-jnp.where(x > 0, x, 0.0))), jnp.log1p(jnp.exp(jnp.where(x > 0, 0.0, x)))
    )


def _gelu(x):
    return 0.5 * x * (1.0 + jax.scipy.special.erf(x / math.sqrt(2.0)))


def _quadratic(x):
    return x * x


def _smooth_relu2(x):
    s = _softplus_smooth(x)
    return 0.5 * s * s


relu = Activation("relu", _relu, max_order=1)
erf = Activation("erf", jax.scipy.special.erf)
tanh = Activation("tanh", jnp.tanh)
softplus = Activation("softplus", _softplus_smooth)
gelu = Activation("gelu", _gelu)
quadratic = Activation("quadratic", _quadratic, max_order=2)
smooth_relu2 = Activation("smooth_relu2", _smooth_relu2)

_REGISTRY: dict[str, Activation] = {
    str(a.name): a for a in (relu, erf, tanh, softplus, gelu, quadratic, smooth_relu2)
}


def names() -> tuple[str, ...]:
    """Names of the built-in activations.

    Example:
        >>> import taylorlib as tl
        >>> tl.activations.names()
        ('relu', 'erf', 'tanh', 'softplus', 'gelu', 'quadratic', 'smooth_relu2')
    """
    return tuple(_REGISTRY)


def get(activation: Any) -> Activation:
    """Look up an activation by name, or wrap a callable.

    Args:
        activation: a name from :func:`names`, an :class:`Activation`, or any elementwise
            callable (treated as smooth, ``max_order = inf``, with ``name = None``: a callable is
            never matched to a built-in by its ``__name__``, so kernels use quadrature for it).

    Returns:
        The :class:`Activation`.

    Raises:
        ValueError: unknown name.
        TypeError: neither a string nor a callable.

    Example:
        >>> import taylorlib as tl
        >>> tl.activations.get("erf").name
        'erf'
    """
    if isinstance(activation, Activation):
        return activation
    if isinstance(activation, str):
        try:
            return _REGISTRY[activation]
        except KeyError:
            raise ValueError(
                f"unknown activation {activation!r}; expected one of {', '.join(map(repr, _REGISTRY))} "
                "or a callable"
            ) from None
    if callable(activation):
        # name=None, not fn.__name__: a user function that happens to be called "relu" or "erf" must
        # not be dispatched to that registry entry's closed-form kernels.
        return Activation(None, activation)
    raise TypeError(f"activation must be a name or a callable, got {type(activation).__name__}")


@functools.lru_cache(maxsize=256)
def _nth_derivative(fn: Callable, k: int) -> Callable:
    # Cached so that repeated calls return the *same* function object: jitted code that takes the
    # derivative as a static argument (kernels' quadrature) then compiles once instead of per call.
    if k == 0:
        return fn
    inner = _nth_derivative(fn, k - 1)

    def dk(x):
        return jax.jvp(inner, (x,), (jnp.ones_like(x),))[1]

    return dk


def derivative(activation: Any, k: int) -> Callable[[jax.Array], jax.Array]:
    r"""The elementwise k-th derivative :math:`\sigma^{(k)}` of an activation (nested ``jvp``).

    Args:
        activation: name, :class:`Activation` or callable.
        k: derivative order, ``k >= 0``.

    Returns:
        A function mapping an array to the elementwise k-th derivative, same shape.

    Example:
        >>> import jax.numpy as jnp
        >>> import taylorlib as tl
        >>> round(float(tl.activations.derivative("tanh", 1)(jnp.array(0.0))), 6)
        1.0
    """
    from ._checks import check_int

    k = check_int(k, "k", minimum=0)
    act = get(activation)
    return _jitted_derivative(act.fn, k)


@functools.lru_cache(maxsize=256)
def _jitted_derivative(fn: Callable, k: int) -> Callable:
    # one compiled program per shape instead of one per primitive when called eagerly
    return jax.jit(_nth_derivative(fn, k))


def require_order(activation: Any, k: int, what: str) -> Activation:
    """Raise a ValueError if ``activation``'s k-th derivative vanishes identically (private use)."""
    act = get(activation)
    if k > act.max_order:
        hint = "softplus or smooth_relu2" if act.name == "relu" else "a smooth activation such as softplus"
        raise ValueError(
            f"activation {act!r} has a vanishing derivative of order {k} "
            f"(sigma^({k}) = 0 almost everywhere), so {what} is identically zero; use {hint}"
        )
    return act
