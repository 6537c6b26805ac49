r"""Target functions and train/test datasets.

Every target is a :class:`Target` with unit variance under its input law:

* :func:`staircase` — orthogonal single-direction pieces of increasing degree (Ghorbani, Mei,
  Misiakiewicz & Montanari's staircase);
* :func:`single_index` — a rank-one degree-p polynomial (Bai & Lee's dimension factor);
* :func:`low_rank` — a sum of degree-p polynomials of :math:`r^\star` orthonormal directions;
* :func:`dense_plus_sparse` — a dense low-degree polynomial plus a sparse high-degree one
  (Nichani, Bai & Lee);
* :func:`abs_teacher` — :math:`a^\top|W^\star x|` on Gaussian inputs (Li, Ma & Zhang);
* :func:`azll_target` — the :math:`\mathbb R^4` target of Allen-Zhu, Li & Liang on the unit sphere.

Input laws (``Target.input_law``): ``"sphere"`` is uniform on :math:`S^{d-1}(\sqrt d)`, ``"gaussian"``
is :math:`\mathcal N(0, I_d)` and ``"normalized_gaussian"`` is :math:`g/\|g\|` with
:math:`g\sim\mathcal N(0, I_d)`, i.e. uniform on the *unit* sphere (AZLL's "normalized random
Gaussian", :math:`\|x\| = 1`).

References:
    Bai & Lee 2020 (arXiv:1910.01619); Nichani, Bai & Lee 2022 (arXiv:2206.03688); Li, Ma & Zhang
    2020 (arXiv:2007.04596); Allen-Zhu, Li & Liang 2019 (arXiv:1811.04918).
"""

from __future__ import annotations

import functools
import math
from collections.abc import Callable, Sequence
from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from ._checks import as_float_array, check_choice, check_int, check_positive, check_x, is_tracer
from ._index_targets import Target, dense_plus_sparse, low_rank, single_index
from .data import gaussian, hermite, sphere, zonal_harmonic
from .typing import Array, Float, PRNGKeyArray

__all__ = [
    "Target",
    "Dataset",
    "staircase",
    "single_index",
    "low_rank",
    "dense_plus_sparse",
    "abs_teacher",
    "azll_target",
    "make_dataset",
]

#: Input laws a target can declare, and how :func:`make_dataset` samples them.
INPUT_LAWS = ("sphere", "gaussian", "normalized_gaussian")
#: Gauss rule sizes for the AZLL normalization constants (per dimension of the 3-D product rule). The
#: integrand is entire with frequencies <= 7 on [-1, 1]; (48, 48, 96) and (192, 192, 384) nodes give the
#: same constants to ~1e-14 relative (checked when written; tests compare against Monte Carlo).
_AZLL_NODES = (64, 64, 128)


def staircase(
    key: PRNGKeyArray,
    d: int,
    degrees: Sequence[int] = (1, 2, 3),
    weights: Sequence[float] | None = None,
    input_law: str = "sphere",
) -> Target:
    r"""A sum of orthogonal single-direction polynomial pieces of increasing degree (GMMM staircase).

    .. math:: f^*(x) = \sum_j c_j\, P_{k_j}(\beta_j \cdot x),

    with orthonormal :math:`\beta_j`, each :math:`P_{k_j}` of unit variance (zonal harmonic on the
    sphere, normalized Hermite for Gaussian inputs) and :math:`\sum c_j^2 = 1`, so the target has
    unit variance and the energy of degree :math:`k_j` is :math:`c_j^2`.

    Args:
        key: PRNG key for the directions.
        d: input dimension (``d >= len(degrees)``).
        degrees: degree of each piece.
        weights: relative weights ``c_j`` (normalized to unit total energy); default equal.
        input_law: ``"sphere"`` or ``"gaussian"``.

    Example:
        >>> import jax, jax.numpy as jnp
        >>> import taylorlib as tl
        >>> f = tl.targets.staircase(jax.random.key(0), 10, degrees=(1, 2))
        >>> x = tl.data.sphere(jax.random.key(1), 40000, 10)
        >>> round(float(jnp.var(f(x))), 1), f.degree
        (1.0, 2)
    """
    d = check_int(d, "d", minimum=2)
    input_law = check_choice(input_law, "input_law", ("sphere", "gaussian"))
    degrees = tuple(check_int(k, "degrees[i]", minimum=1) for k in degrees)
    if not degrees:
        raise ValueError("degrees must be non-empty")
    if d < len(degrees):
        raise ValueError(f"d must be >= len(degrees) = {len(degrees)} (one direction per piece), got d = {d}")
    if weights is None:
        weights = (1.0,) * len(degrees)
    if len(weights) != len(degrees):
        raise ValueError(f"weights must have len(degrees) = {len(degrees)} entries, got {len(weights)}")
    w = jnp.asarray(weights, dtype=float)
    if not bool(jnp.all(jnp.isfinite(w))) or not float(jnp.linalg.norm(w)) > 0:
        raise ValueError(
            f"weights must be finite and not all zero (they are normalized), got {tuple(weights)}"
        )
    w = w / jnp.linalg.norm(w)
    q, _ = jnp.linalg.qr(jax.random.normal(key, (d, len(degrees))))
    betas = q.T  # (r, d) orthonormal rows

    def piece(j: int, k: int) -> Callable:
        if input_law == "sphere":
            return lambda x: zonal_harmonic(x, betas[j], k)
        return lambda x: hermite(x @ betas[j], k)

    comps = tuple(piece(j, k) for j, k in enumerate(degrees))

    def fn(x):
        x = check_x(x, "x", d=d)
        return sum(w[j] * c(x) for j, c in enumerate(comps))

    return Target(
        fn, f"staircase{degrees}", max(degrees), betas, input_law, comps, tuple(float(v) for v in w)
    )


class Dataset(NamedTuple):
    """A training set and a test set drawn from a target's input law.

    Attributes:
        x_train: ``(n_train, d)`` inputs.
        y_train: ``(n_train,)`` labels (with noise if requested).
        x_test: ``(n_test, d)`` inputs.
        y_test: ``(n_test,)`` noiseless labels.
    """

    x_train: jax.Array
    y_train: jax.Array
    x_test: jax.Array
    y_test: jax.Array


def abs_teacher(key: PRNGKeyArray, d: int, a: Float[Array, " d"] | None = None) -> Target:
    r"""The Li–Ma–Zhang teacher :math:`a^\top|W^\star x|`, centered and scaled to unit variance.

    .. math:: f^\star(x) = \frac{\sum_i a_i\,(|w^\star_i\cdot x| - \sqrt{2/\pi})}
       {\sqrt{1 - 2/\pi}\;\|a\|},\qquad x\sim\mathcal N(0, I_d),

    with :math:`W^\star` a random orthogonal matrix (rows :math:`w^\star_i`) and :math:`a\ge 0`.
    The rows are orthonormal, so the :math:`|w^\star_i\cdot x|` are independent with mean
    :math:`\sqrt{2/\pi}` and variance :math:`1 - 2/\pi`; the target is **centered** (its mean, a
    constant any model with a bias fits, is removed). Its degree-2 Hermite component carries
    :math:`1/(\pi-2)\approx 0.876` of the variance and degrees :math:`\ge 4` the rest,
    :math:`(\pi-3)/(\pi-2)\approx 0.124`: the floor of kernels with poly(d) samples.

    Args:
        key: PRNG key for :math:`W^\star`.
        d: input dimension ``>= 1``.
        a: nonnegative ``(d,)`` weights, not all zero (default all equal, as :math:`a = 1/d`).

    Returns:
        A :class:`Target` (``degree=None``, ``input_law="gaussian"``) with
        ``directions = W*`` ``(d, d)``, one unit-variance component per row and
        ``weights = a/‖a‖``.

    Example:
        >>> import jax, jax.numpy as jnp
        >>> import taylorlib as tl
        >>> f = tl.targets.abs_teacher(jax.random.key(0), 8)
        >>> x = tl.data.gaussian(jax.random.key(1), 100000, 8)
        >>> y = f(x)
        >>> round(float(jnp.mean(y)), 1), round(float(jnp.var(y)), 1)
        (0.0, 1.0)

    References:
        Li, Ma & Zhang 2020 (arXiv:2007.04596).
    """
    d = check_int(d, "d", minimum=1)
    a = as_float_array(np.ones(d) if a is None else a, "a")
    if a.shape != (d,):
        raise ValueError(f"a must have shape (d,) = ({d},), got {tuple(a.shape)}")
    if not is_tracer(a) and (not bool(jnp.all(a >= 0)) or not bool(jnp.any(a > 0))):
        raise ValueError("a must be nonnegative and not all zero")
    q, r = jnp.linalg.qr(jax.random.normal(key, (d, d)))
    W = (q * jnp.sign(jnp.diag(r))[None, :]).T  # Haar orthogonal, rows orthonormal
    w = a / jnp.linalg.norm(a)
    mean, sd = math.sqrt(2 / math.pi), math.sqrt(1 - 2 / math.pi)

    def component(i: int):
        return lambda x: (jnp.abs(check_x(x, "x", d=d) @ W[i]) - mean) / sd

    def fn(x):
        x = check_x(x, "x", d=d)
        return ((jnp.abs(x @ W.T) - mean) / sd) @ w

    comps = tuple(component(i) for i in range(d))
    weights = tuple(w) if is_tracer(w) else tuple(float(v) for v in w)
    return Target(fn, "abs_teacher", None, W, "gaussian", comps, weights)


def _azll_raw(x: jax.Array) -> jax.Array:
    s = jnp.sin(3 * x[..., 0]) + jnp.sin(3 * x[..., 1]) + jnp.sin(3 * x[..., 2])
    return (s - 2.0) ** 2 * jnp.cos(7 * x[..., 3])


@functools.lru_cache(maxsize=1)
def _azll_moments() -> tuple[float, float]:
    r"""Mean and standard deviation of the raw AZLL function on the unit sphere :math:`S^3`.

    Computed once (float64 numpy) by a product Gauss rule: :math:`x_4 = t` has density
    :math:`\propto\sqrt{1-t^2}` (Gauss–Chebyshev of the second kind); given t,
    :math:`(x_1,x_2,x_3)` is uniform on the 2-sphere of radius :math:`\sqrt{1-t^2}`
    (Gauss–Legendre in the polar cosine, trapezoid in the azimuth).
    """
    n_t, n_z, n_phi = _AZLL_NODES
    j = np.arange(1, n_t + 1)
    t = np.cos(j * np.pi / (n_t + 1))
    wt = np.sin(j * np.pi / (n_t + 1)) ** 2
    wt = wt / wt.sum()
    z, wz = np.polynomial.legendre.leggauss(n_z)
    wz = wz / wz.sum()
    phi = 2 * np.pi * np.arange(n_phi) / n_phi
    T, Z, P = np.meshgrid(t, z, phi, indexing="ij")
    r = np.sqrt(1 - T**2)
    rho = r * np.sqrt(1 - Z**2)
    x = np.stack([rho * np.cos(P), rho * np.sin(P), r * Z, T], axis=-1)
    w = wt[:, None, None] * wz[None, :, None] / n_phi
    s = np.sin(3 * x[..., 0]) + np.sin(3 * x[..., 1]) + np.sin(3 * x[..., 2])
    f = (s - 2.0) ** 2 * np.cos(7 * x[..., 3])
    mean = float(np.sum(w * f))
    return mean, float(np.sqrt(np.sum(w * (f - mean) ** 2)))


def azll_target() -> Target:
    r"""The Allen-Zhu–Li–Liang target on normalized Gaussian inputs in :math:`\mathbb R^4`.

    .. math:: &F^\star(x) = \big(\sin 3x_1 + \sin 3x_2 + \sin 3x_3 - 2\big)^2\cos 7x_4, \\
       &x = g/\|g\|,\ g\sim\mathcal N(0, I_4),

    returned standardized, :math:`(F^\star - \mu)/s`, with the mean :math:`\mu` and standard deviation
    :math:`s` under the uniform law on the unit sphere :math:`S^3` computed once by a float64
    product Gauss rule (accurate to ~1e-12), so the target has mean 0 and unit variance.

    Returns:
        A :class:`Target` with ``input_law="normalized_gaussian"``, ``degree=None``
        and ``directions = I_4``.

    Example:
        >>> import jax, jax.numpy as jnp
        >>> import taylorlib as tl
        >>> f = tl.targets.azll_target()
        >>> ds = tl.targets.make_dataset(jax.random.key(0), f, 10, 200000)
        >>> bool(jnp.allclose(jnp.linalg.norm(ds.x_train, axis=1), 1.0))
        True
        >>> round(float(jnp.mean(ds.y_test)), 1), round(float(jnp.var(ds.y_test)), 1)
        (0.0, 1.0)

    References:
        Allen-Zhu, Li & Liang 2019 (arXiv:1811.04918), experiments.
    """
    mean, sd = _azll_moments()

    def fn(x):
        return (_azll_raw(check_x(x, "x", d=4)) - mean) / sd

    return Target(fn, "azll", None, jnp.eye(4), "normalized_gaussian", (fn,), (1.0,))


def sample_inputs(key: PRNGKeyArray, input_law: str, n: int, d: int) -> Float[Array, "n d"]:
    """``n`` inputs from ``input_law`` (one of :data:`INPUT_LAWS`)."""
    input_law = check_choice(input_law, "input_law", INPUT_LAWS)
    if input_law == "sphere":
        return sphere(key, n, d)
    g = gaussian(key, n, d)
    if input_law == "gaussian":
        return g
    return g / jnp.linalg.norm(g, axis=1, keepdims=True)


def make_dataset(key: PRNGKeyArray, target: Target, n_train: int, n_test: int, noise: float = 0.0) -> Dataset:
    r"""Draw a training and a test set from ``target.input_law`` and label them.

    .. math:: y_i = f^\star(x_i) + \sigma\,\xi_i \ \text{(train)},\qquad y = f^\star(x)\ \text{(test)},
       \qquad \xi_i\sim\mathcal N(0,1).

    Args:
        key: PRNG key (split into train inputs, test inputs and noise).
        target: a :class:`Target`; its input dimension is ``target.directions.shape[1]``.
        n_train: ``>= 1`` training points.
        n_test: ``>= 1`` test points.
        noise: label-noise standard deviation :math:`\sigma\ge 0` (training labels only).

    Returns:
        A :class:`Dataset` with shapes ``(n_train, d)``, ``(n_train,)``, ``(n_test, d)``, ``(n_test,)``.

    Example:
        >>> import jax
        >>> import taylorlib as tl
        >>> f = tl.targets.abs_teacher(jax.random.key(0), 5)
        >>> ds = tl.targets.make_dataset(jax.random.key(1), f, 30, 7, noise=0.1)
        >>> ds.x_train.shape, ds.y_train.shape, ds.x_test.shape, ds.y_test.shape
        ((30, 5), (30,), (7, 5), (7,))
    """
    if not isinstance(target, Target):
        raise TypeError(
            f"target must be a tl.targets.Target (e.g. from tl.targets.single_index), got {type(target).__name__}"
        )
    n_train = check_int(n_train, "n_train", minimum=1)
    n_test = check_int(n_test, "n_test", minimum=1)
    noise = check_positive(noise, "noise", allow_zero=True)
    d = target.directions.shape[1]
    k_train, k_test, k_noise = jax.random.split(key, 3)
    x_train = sample_inputs(k_train, target.input_law, n_train, d)
    x_test = sample_inputs(k_test, target.input_law, n_test, d)
    y_train = target(x_train)
    if noise > 0:
        y_train = y_train + noise * jax.random.normal(k_noise, y_train.shape, y_train.dtype)
    return Dataset(x_train, y_train, x_test, target(x_test))
