r"""Inputs and the orthogonal polynomials of their laws.

Inputs follow the two-layer convention: :func:`sphere` draws uniformly from the sphere of radius
:math:`\sqrt d` (so :math:`\|x\|^2/d = 1`), :func:`gaussian` draws :math:`\mathcal N(0, I_d)`.
The target functions built from these polynomials live in :mod:`taylorlib.targets` (their names
remain reachable as ``tl.data.<name>`` for code written against taylorlib 0.1).

Orthogonal polynomials:

* on the sphere, the zonal harmonic of degree k along a unit vector :math:`\beta` is
  :math:`\sqrt{B(d,k)}\,Q_k(\beta\cdot x/\sqrt d)` with :math:`Q_k` the Gegenbauer polynomial
  normalized by :math:`Q_k(1) = 1` and :math:`B(d,k)` the dimension of degree-k harmonics;
* for Gaussian inputs, the normalized Hermite polynomial :math:`\mathrm{He}_k(z)/\sqrt{k!}`.

References:
    Ghorbani, Mei, Misiakiewicz & Montanari 2021 (arXiv:1904.12191).
"""

from __future__ import annotations

import functools
import math
from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from ._checks import as_float_array, check_int, check_key, check_x, is_tracer
from .typing import Array, Float, PRNGKeyArray

__all__ = [
    "sphere",
    "gaussian",
    "gegenbauer",
    "harmonic_dimension",
    "hermite",
    "zonal_harmonic",
    "Digits",
    "digits",
]


def sphere(key: PRNGKeyArray, n: int, d: int) -> Float[Array, "n d"]:
    r"""``n`` points uniform on the sphere :math:`S^{d-1}(\sqrt d)`.

    Example:
        >>> import jax, jax.numpy as jnp
        >>> import taylorlib as tl
        >>> x = tl.data.sphere(jax.random.key(0), 4, 9)
        >>> x.shape, bool(jnp.allclose(jnp.linalg.norm(x, axis=1), 3.0))
        ((4, 9), True)
    """
    n = check_int(n, "n", minimum=0)
    d = check_int(d, "d", minimum=1)
    check_key(key)
    return _sphere(key, n, d)


@functools.partial(jax.jit, static_argnums=(1, 2))
def _sphere(key, n, d):
    g = jax.random.normal(key, (n, d))
    return g * (math.sqrt(d) / jnp.linalg.norm(g, axis=1, keepdims=True))


def gaussian(key: PRNGKeyArray, n: int, d: int) -> Float[Array, "n d"]:
    r"""``n`` points from :math:`\mathcal N(0, I_d)`.

    Example:
        >>> import jax
        >>> import taylorlib as tl
        >>> tl.data.gaussian(jax.random.key(0), 3, 2).shape
        (3, 2)
    """
    n = check_int(n, "n", minimum=0)
    d = check_int(d, "d", minimum=1)
    check_key(key)
    return jax.random.normal(key, (n, d))


def harmonic_dimension(d: int, k: int) -> int:
    r"""Dimension :math:`B(d,k)` of the degree-k spherical harmonics on :math:`S^{d-1}`.

    Example:
        >>> import taylorlib as tl
        >>> [tl.data.harmonic_dimension(10, k) for k in range(4)]
        [1, 10, 54, 210]
    """
    d = check_int(d, "d", minimum=2)
    k = check_int(k, "k", minimum=0)
    if k == 0:
        return 1
    return (2 * k + d - 2) * math.comb(k + d - 3, k - 1) // k


def gegenbauer(t: Float[Array, "*shape"], k: int, d: int) -> Float[Array, "*shape"]:
    r"""Gegenbauer polynomial :math:`Q_k^{(d)}(t)` normalized by :math:`Q_k(1) = 1`.

    Recurrence: :math:`Q_{k+1}(t) = \frac{(2k+d-2)\,t\,Q_k(t) - k\,Q_{k-1}(t)}{k+d-2}`.

    Example:
        >>> import jax.numpy as jnp
        >>> import taylorlib as tl
        >>> float(tl.data.gegenbauer(jnp.array(1.0), 3, 7))
        1.0
    """
    k = check_int(k, "k", minimum=0)
    d = check_int(d, "d", minimum=2)
    t = jnp.asarray(t)
    q_prev, q = jnp.ones_like(t), t
    if k == 0:
        return q_prev
    for j in range(1, k):
        q_prev, q = q, ((2 * j + d - 2) * t * q - j * q_prev) / (j + d - 2)
    return q


def hermite(z: Float[Array, "*shape"], k: int) -> Float[Array, "*shape"]:
    r"""Normalized probabilists' Hermite polynomial :math:`\mathrm{He}_k(z)/\sqrt{k!}` (unit variance
    under :math:`z\sim\mathcal N(0,1)`).

    Example:
        >>> import jax.numpy as jnp
        >>> import taylorlib as tl
        >>> round(float(tl.data.hermite(jnp.array(2.0), 2)), 6)  # (4 - 1) / sqrt(2)
        2.12132
    """
    k = check_int(k, "k", minimum=0)
    z = jnp.asarray(z)
    h_prev, h = jnp.ones_like(z), z
    if k == 0:
        return h_prev
    for j in range(1, k):
        h_prev, h = h, z * h - j * h_prev
    return h / math.sqrt(math.factorial(k))


def zonal_harmonic(x: Float[Array, "n d"], beta: Float[Array, " d"], k: int) -> Float[Array, " n"]:
    r"""Unit-variance degree-k zonal harmonic :math:`\sqrt{B(d,k)}\,Q_k(\beta\cdot x/\sqrt d)` for
    :math:`x` on :math:`S^{d-1}(\sqrt d)` and unit :math:`\beta`.

    Example:
        >>> import jax, jax.numpy as jnp
        >>> import taylorlib as tl
        >>> x = tl.data.sphere(jax.random.key(0), 20000, 8)
        >>> beta = jnp.eye(8)[0]
        >>> round(float(jnp.mean(tl.data.zonal_harmonic(x, beta, 2) ** 2)), 1)
        1.0
    """
    x = check_x(x, "x")
    d = x.shape[-1]
    beta = as_float_array(beta, "beta")
    if beta.shape != (d,):
        raise ValueError(f"beta must have shape (d,) = ({d},) to match x, got {tuple(beta.shape)}")
    if not is_tracer(beta) and not np.linalg.norm(np.asarray(beta)) > 0:  # numpy: no tracer under jit
        raise ValueError("beta must be a nonzero direction (it is normalized to unit length), got norm 0")
    beta = beta / jnp.linalg.norm(beta)
    t = (x @ beta) / math.sqrt(d)
    return math.sqrt(harmonic_dimension(d, k)) * gegenbauer(t, k, d)


class Digits(NamedTuple):
    """A fixed train/test split of scikit-learn's 8x8 handwritten digits (see :func:`digits`).

    Attributes:
        x_train: ``(n_train, 64)`` standardized pixels, or ``(n_train, 8, 8, 1)`` with ``images=True``.
        y_train: ``(n_train,)`` int32 labels ``0..9``.
        x_test: ``(n_test, 64)`` or ``(n_test, 8, 8, 1)``, standardized with the training statistics.
        y_test: ``(n_test,)`` int32 labels.
    """

    x_train: Array
    y_train: Array
    x_test: Array
    y_test: Array


def digits(n_test: int = 500, *, images: bool = False, seed: int = 0) -> Digits:
    r"""scikit-learn's ``load_digits`` (1797 images of 8x8 pixels, 10 classes), standardized, fixed split.

    The rows are shuffled by a fixed permutation (``numpy.random.default_rng(seed)``); the last ``n_test``
    form the test set. Every pixel is centred and scaled by its mean and standard deviation over the
    *training* rows (pixels that are constant on the training rows, e.g. some corners, are only centred),
    so the training inputs have :math:`\|x\|^2/d \approx 1` as the book's other inputs. The data ship
    with scikit-learn (no download); install it with ``pip install scikit-learn`` (it is in taylorlib's
    ``notebooks`` and ``test`` extras).

    Args:
        n_test: test rows, ``1 <= n_test <= 1796``.
        images: return inputs as ``(n, 8, 8, 1)`` images (for :func:`taylorlib.nets.cnn`) instead of
            ``(n, 64)`` vectors.
        seed: seed of the fixed permutation.

    Returns:
        A :class:`Digits` of float32 inputs and int32 labels.

    Raises:
        ImportError: scikit-learn is not installed.
        ValueError: ``n_test`` out of range.

    Example:
        >>> import taylorlib as tl
        >>> data = tl.data.digits()
        >>> data.x_train.shape, data.x_test.shape, sorted(set(data.y_train.tolist())) == list(range(10))
        ((1297, 64), (500, 64), True)
        >>> round(float((data.x_train**2).mean()) * 64, 4)   # 61 of the 64 pixels vary, each scaled to 1
        61.0
        >>> tl.data.digits(images=True).x_test.shape
        (500, 8, 8, 1)
    """
    n_test = check_int(n_test, "n_test", minimum=1)
    seed = check_int(seed, "seed", minimum=0)
    if not isinstance(images, bool):
        raise TypeError(f"images must be a bool, got {type(images).__name__}")
    x, y = _load_digits()
    n = x.shape[0]
    if n_test > n - 1:
        raise ValueError(f"n_test must be <= {n - 1} (the digits have {n} rows), got {n_test}")
    perm = np.random.default_rng(seed).permutation(n)
    x, y = x[perm], y[perm]
    x_tr, x_te = x[: n - n_test], x[n - n_test :]
    mean, sd = x_tr.mean(axis=0), x_tr.std(axis=0)
    sd = np.where(sd > 0, sd, 1.0)
    x_tr, x_te = (x_tr - mean) / sd, (x_te - mean) / sd
    if images:
        x_tr, x_te = x_tr.reshape(-1, 8, 8, 1), x_te.reshape(-1, 8, 8, 1)
    as_x = lambda v: jnp.asarray(v, jnp.float32)
    as_y = lambda v: jnp.asarray(v, jnp.int32)
    return Digits(as_x(x_tr), as_y(y[: n - n_test]), as_x(x_te), as_y(y[n - n_test :]))


@functools.cache
def _load_digits() -> tuple[np.ndarray, np.ndarray]:
    try:
        from sklearn.datasets import load_digits
    except ImportError as e:  # pragma: no cover - depends on the environment
        raise ImportError("tl.data.digits needs scikit-learn: pip install scikit-learn") from e
    bunch = load_digits()
    return np.asarray(bunch.data, np.float64), np.asarray(bunch.target, np.int64)


def __getattr__(name: str):
    """Names that moved to :mod:`taylorlib.targets` (``tl.data.<name>`` of taylorlib 0.1) still resolve."""
    from . import targets  # imported on first use: targets imports this module, not the reverse

    if name in targets.__all__:
        return getattr(targets, name)
    raise AttributeError(f"module 'taylorlib.data' has no attribute {name!r}")
