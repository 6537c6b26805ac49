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
from .data import gaussian, gegenbauer, harmonic_dimension, hermite, sphere, zonal_harmonic
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


class Target(NamedTuple):
    """A target function with its metadata; call it on ``x: (n, d)`` to get ``(n,)`` labels.

    Attributes:
        fn: ``fn(x) -> y``.
        name: short description.
        degree: polynomial degree (``None`` if not a polynomial).
        directions: ``(r, d)`` matrix of the directions the target depends on.
        input_law: ``"sphere"`` or ``"gaussian"``, the law under which the target has unit variance.
        components: per-component functions (each unit variance), if the target is a sum.
        weights: the weights of the components.
    """

    fn: Callable[[jax.Array], jax.Array]
    name: str
    degree: int | None
    directions: jax.Array
    input_law: str
    components: tuple = ()
    weights: tuple = ()

    def __call__(self, x: Float[Array, "n d"]) -> Float[Array, " n"]:
        return self.fn(x)


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


def _unit(key: PRNGKeyArray, d: int) -> jax.Array:
    g = jax.random.normal(key, (d,))
    return g / jnp.linalg.norm(g)


def _piece(x: jax.Array, beta: jax.Array, k: int, input_law: str) -> jax.Array:
    """Unit-variance degree-k polynomial of ``beta . x`` under ``input_law``."""
    if input_law == "sphere":
        return zonal_harmonic(x, beta, k)
    return hermite(x @ beta, k)


def _check_d(d: int, input_law: str) -> int:
    return check_int(d, "d", minimum=2 if input_law == "sphere" else 1)


def single_index(key: PRNGKeyArray, d: int, degree: int, input_law: str = "sphere") -> Target:
    r"""A rank-one degree-p polynomial :math:`f^\star(x) = P_p(\beta\cdot x)` of unit variance.

    On the sphere :math:`S^{d-1}(\sqrt d)`, :math:`P_p` is the unit-variance zonal harmonic
    :math:`\sqrt{B(d,p)}\,Q_p(\beta\cdot x/\sqrt d)` (for p = 2 this is
    :math:`((\beta\cdot x)^2 - 1)/\sqrt{2(d-1)/(d+2)}`); for Gaussian inputs it is
    :math:`\mathrm{He}_p(\beta\cdot x)/\sqrt{p!}`. The direction :math:`\beta` is uniform on the unit
    sphere. Kernels need :math:`n\asymp d^p` samples to learn it, the quadratic model
    :math:`d^{p-1}`.

    Args:
        key: PRNG key for :math:`\beta`.
        d: input dimension (``>= 2`` on the sphere).
        degree: p ``>= 1``.
        input_law: ``"sphere"`` or ``"gaussian"``.

    Returns:
        A :class:`Target` with ``directions`` of shape ``(1, d)``.

    Example:
        >>> import jax, jax.numpy as jnp
        >>> import taylorlib as tl
        >>> f = tl.targets.single_index(jax.random.key(0), 10, 2)
        >>> x = tl.data.sphere(jax.random.key(1), 50000, 10)
        >>> round(float(jnp.mean(f(x) ** 2)), 1), f.degree, f.directions.shape
        (1.0, 2, (1, 10))

    References:
        Bai & Lee 2020 (arXiv:1910.01619); Ghorbani et al. 2021 (arXiv:1904.12191).
    """
    input_law = check_choice(input_law, "input_law", ("sphere", "gaussian"))
    d = _check_d(d, input_law)
    degree = check_int(degree, "degree", minimum=1)
    beta = _unit(key, d)

    def fn(x):
        return _piece(check_x(x, "x", d=d), beta, degree, input_law)

    return Target(fn, f"single_index(p={degree})", degree, beta[None, :], input_law, (fn,), (1.0,))


def low_rank(key: PRNGKeyArray, d: int, degree: int, rank: int, input_law: str = "sphere") -> Target:
    r"""A rank-:math:`r^\star` degree-p polynomial :math:`f^\star(x) = \frac1Z\sum_{j\le r^\star} P_p(\beta_j\cdot x)`.

    The directions :math:`\beta_1,\dots,\beta_{r^\star}` are orthonormal (a Haar-random frame), :math:`P_p`
    is the unit-variance piece of :func:`single_index` (zonal harmonic on :math:`S^{d-1}(\sqrt d)`,
    :math:`\mathrm{He}_p/\sqrt{p!}` for Gaussian inputs), and :math:`Z^2 = \mathbf 1^\top G\mathbf 1` with
    the exact Gram :math:`G_{ij} = Q_p(\beta_i\cdot\beta_j)` (sphere) or :math:`(\beta_i\cdot\beta_j)^p`
    (Gaussian), so :math:`\operatorname{Var} f^\star = 1`. On the sphere the pieces are not exactly
    orthogonal for even p (:math:`Q_p(0) = O(1/d)`); the Gram accounts for it. This is Bai & Lee's
    low-rank polynomial class with :math:`\alpha_j = 1/Z` and a single degree.

    Args:
        key: PRNG key for the directions.
        d: input dimension (``>= rank``; ``>= 2`` on the sphere).
        degree: p ``>= 1``.
        rank: :math:`r^\star` ``>= 1``.
        input_law: ``"sphere"`` or ``"gaussian"``.

    Returns:
        A :class:`Target` with ``directions`` of shape ``(rank, d)``, one unit-variance
        component per direction and ``weights = (1/Z, ..., 1/Z)``.

    Example:
        >>> import jax, jax.numpy as jnp
        >>> import taylorlib as tl
        >>> f = tl.targets.low_rank(jax.random.key(0), 10, 3, 2)
        >>> x = tl.data.sphere(jax.random.key(1), 100000, 10)
        >>> round(float(jnp.mean(f(x) ** 2)), 1), f.degree, f.directions.shape
        (1.0, 3, (2, 10))
        >>> bool(jnp.allclose(f.directions @ f.directions.T, jnp.eye(2), atol=1e-5))
        True

    References:
        Bai & Lee 2020 (arXiv:1910.01619).
    """
    input_law = check_choice(input_law, "input_law", ("sphere", "gaussian"))
    d = _check_d(d, input_law)
    degree = check_int(degree, "degree", minimum=1)
    rank = check_int(rank, "rank", minimum=1)
    if rank > d:
        raise ValueError(f"rank must be <= d = {d} (orthonormal directions), got {rank}")
    q, r = jnp.linalg.qr(jax.random.normal(key, (d, rank)))
    betas = (q * jnp.sign(jnp.diag(r))[None, :]).T  # (rank, d), orthonormal rows
    z = jnp.sqrt(jnp.sum(_dense_gram(betas, degree, input_law)))

    def component(j: int):
        return lambda x: _piece(check_x(x, "x", d=d), betas[j], degree, input_law)

    def fn(x):
        x = check_x(x, "x", d=d)
        return sum(_piece(x, betas[j], degree, input_law) for j in range(rank)) / z

    comps = tuple(component(j) for j in range(rank))
    weights = (1 / z,) * rank if is_tracer(z) else (1 / float(z),) * rank
    return Target(fn, f"low_rank(p={degree}, r={rank})", degree, betas, input_law, comps, weights)


def _dense_gram(betas: jax.Array, k: int, input_law: str) -> jax.Array:
    r"""Exact Gram :math:`E[P_k(\beta_i\cdot x) P_k(\beta_j\cdot x)]` of unit zonal pieces.

    Sphere: the reproducing property gives :math:`Q_k(\beta_i\cdot\beta_j)`; Gaussian: Mehler's
    formula gives :math:`(\beta_i\cdot\beta_j)^k`.
    """
    c = jnp.clip(betas @ betas.T, -1.0, 1.0)
    if input_law == "sphere":
        return gegenbauer(c, k, betas.shape[1])
    return c**k


def dense_plus_sparse(
    key: PRNGKeyArray,
    d: int,
    dense_degree: int,
    sparse_degree: int,
    *,
    num_dense: int | None = None,
    weights: Sequence[float] = (1.0, 1.0),
    input_law: str = "sphere",
) -> Target:
    r"""A dense degree-k polynomial plus a sparse single-direction degree-p polynomial (p > k).

    .. math:: f^\star(x) = c_1\, f_{\text{dense}}(x) + c_2\, P_p(\beta\cdot x), \qquad
       f_{\text{dense}}(x) = \frac{1}{Z}\sum_{j=1}^{N} g_j\, P_k(\gamma_j\cdot x),

    with :math:`N` (default :math:`d`) independent uniform directions :math:`\gamma_j`, Gaussian
    coefficients :math:`g_j`, :math:`P_k` the unit-variance zonal harmonic (sphere) or normalized
    Hermite polynomial (Gaussian) and :math:`Z` the exact norm from the Gram
    :math:`E[P_k(\gamma_i\cdot x)P_k(\gamma_j\cdot x)] = Q_k(\gamma_i\cdot\gamma_j)` (sphere) or
    :math:`(\gamma_i\cdot\gamma_j)^k` (Gaussian). For k = 2 the dense part is the traceless random
    quadratic form :math:`x^\top A x - \operatorname{tr}A` with :math:`A\propto\sum_j g_j\gamma_j\gamma_j^\top`
    of rank N. The two parts have different degrees, hence are orthogonal, and
    :math:`c_1^2 + c_2^2 = 1` (default equal energies), so :math:`\operatorname{Var}f^\star = 1`.

    Args:
        key: PRNG key.
        d: input dimension.
        dense_degree: k ``>= 1``.
        sparse_degree: p ``> dense_degree``.
        num_dense: N, the number of dense directions (default ``d``).
        weights: relative weights ``(c_1, c_2)``, normalized to unit total energy.
        input_law: ``"sphere"`` or ``"gaussian"``.

    Returns:
        A :class:`Target` with ``components = (dense, sparse)`` (each of unit
        variance), ``weights = (c_1, c_2)``, ``degree = p`` and ``directions`` of shape
        ``(N + 1, d)``: the dense directions, then the sparse direction :math:`\beta` (last row).

    Example:
        >>> import jax, jax.numpy as jnp
        >>> import taylorlib as tl
        >>> f = tl.targets.dense_plus_sparse(jax.random.key(0), 12, 2, 3)
        >>> x = tl.data.sphere(jax.random.key(1), 50000, 12)
        >>> dense, sparse = (c(x) for c in f.components)
        >>> round(float(jnp.mean(f(x) ** 2)), 1), round(float(jnp.mean(dense * sparse)), 1)
        (1.0, 0.0)

    References:
        Nichani, Bai & Lee 2022 (arXiv:2206.03688).
    """
    input_law = check_choice(input_law, "input_law", ("sphere", "gaussian"))
    d = _check_d(d, input_law)
    k = check_int(dense_degree, "dense_degree", minimum=1)
    p = check_int(sparse_degree, "sparse_degree", minimum=1)
    if p <= k:
        raise ValueError(f"sparse_degree must be > dense_degree = {k} (sparse high-degree part), got {p}")
    num_dense = d if num_dense is None else check_int(num_dense, "num_dense", minimum=1)
    if len(weights) != 2:
        raise ValueError(f"weights must have 2 entries (dense, sparse), got {len(weights)}")
    for i, w in enumerate(weights):
        check_positive(w, f"weights[{i}]", allow_zero=True)
    c = np.asarray(weights, dtype=float)
    if not c.sum() > 0:
        raise ValueError(f"weights must not be all zero, got {tuple(weights)}")
    c = c / np.linalg.norm(c)
    k_dirs, k_coef, k_beta = jax.random.split(key, 3)
    gammas = jax.vmap(lambda kk: _unit(kk, d))(jax.random.split(k_dirs, num_dense))
    g = jax.random.normal(k_coef, (num_dense,))
    g = g / jnp.sqrt(g @ _dense_gram(gammas, k, input_law) @ g)
    beta = _unit(k_beta, d)

    def dense(x):
        x = check_x(x, "x", d=d)
        if input_law == "sphere":
            t = x @ gammas.T / math.sqrt(d)  # (n, N)
            return math.sqrt(harmonic_dimension(d, k)) * gegenbauer(t, k, d) @ g
        return hermite(x @ gammas.T, k) @ g

    def sparse(x):
        return _piece(check_x(x, "x", d=d), beta, p, input_law)

    def fn(x):
        return c[0] * dense(x) + c[1] * sparse(x)

    directions = jnp.concatenate([gammas, beta[None, :]], axis=0)
    return Target(fn, f"dense_plus_sparse(k={k}, p={p})", p, directions, input_law, (dense, sparse), tuple(c))


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
