r"""The :class:`Target` record and the targets that depend on the input through a few directions
(private; public as ``tl.targets.Target``, ``single_index``, ``low_rank`` and ``dense_plus_sparse``)."""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from ._checks import check_choice, check_int, check_positive, check_x, is_tracer
from .data import gegenbauer, harmonic_dimension, hermite, zonal_harmonic
from .typing import Array, Float, PRNGKeyArray


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
