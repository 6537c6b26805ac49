r"""Kernel ridge regression.

.. math:: \hat f(x) = K(x, X)\,(K(X, X) + \lambda I)^{-1} y.

Example:
    >>> import jax, jax.numpy as jnp
    >>> import taylorlib as tl
    >>> x = tl.data.sphere(jax.random.key(0), 50, 5)
    >>> y = x[:, 0]
    >>> K = tl.kernels.ntk(x, activation="relu")
    >>> pred = tl.kernel_regression.krr(K, y, K, ridge=1e-6)
    >>> bool(jnp.abs(pred - y).max() < 1e-2)  # interpolates the training labels
    True
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import jax.scipy.linalg as jsl

from ._checks import as_float_array, check_finite, check_positive, is_tracer
from .typing import Array, Float

__all__ = ["krr", "krr_weights"]


@jax.jit
def _solve(K, y, ridge):
    n = K.shape[0]
    factor = jsl.cho_factor(K + ridge * jnp.eye(n, dtype=K.dtype), lower=True)
    return jsl.cho_solve(factor, y)


def krr_weights(
    K_train: Float[Array, "n n"], y_train: Float[Array, "n ..."], ridge: float | Float[Array, ""] = 1e-6
) -> Float[Array, "n ..."]:
    r"""Dual coefficients :math:`\alpha = (K + \lambda I)^{-1} y` by a Cholesky solve.

    Raises:
        ValueError: ``K_train`` not square, not symmetric, ``y_train`` of the wrong length,
            negative ridge, or a Cholesky failure (``K`` not positive definite for this ridge).

    Example:
        >>> import jax.numpy as jnp
        >>> import taylorlib as tl
        >>> tl.kernel_regression.krr_weights(jnp.eye(2), jnp.array([1.0, 2.0]), ridge=1.0).tolist()
        [0.5, 1.0]
    """
    K = as_float_array(K_train, "K_train")
    y = as_float_array(y_train, "y_train")
    if K.ndim != 2 or K.shape[0] != K.shape[1]:
        raise ValueError(f"K_train must be a square (n, n) matrix, got shape {tuple(K.shape)}")
    if K.shape[0] == 0:
        raise ValueError(f"K_train must have at least one training point, got shape {tuple(K.shape)}")
    if y.ndim not in (1, 2) or y.shape[0] != K.shape[0]:
        raise ValueError(
            f"y_train must have shape (n,) or (n, k) with n = {K.shape[0]}, got {tuple(y.shape)}"
        )
    ridge = check_positive(ridge, "ridge", allow_zero=True)
    check_finite(K, "K_train")
    check_finite(y, "y_train")
    traced = is_tracer(K) or is_tracer(y) or is_tracer(ridge)
    if traced:
        # Under jit/vmap the host-side checks below are impossible; the solve itself is unchanged and a
        # non-PSD K then shows up as NaN in the result (documented).
        return _solve(K, y, jnp.asarray(ridge, dtype=K.dtype))
    scale = float(jnp.max(jnp.abs(K))) if K.size else 1.0
    if float(jnp.max(jnp.abs(K - K.T))) > 1e-4 * max(scale, 1e-30):
        raise ValueError("K_train must be symmetric (K == K.T up to round-off)")
    alpha = _solve(K, y, jnp.asarray(ridge, dtype=K.dtype))
    if not bool(jnp.all(jnp.isfinite(alpha))):
        raise ValueError(
            f"Cholesky solve failed: K_train + ridge*I is not positive definite (ridge = {ridge:g}); "
            "increase ridge or check that K_train is a PSD kernel matrix"
        )
    return alpha


def krr(
    K_train: Float[Array, "n n"],
    y_train: Float[Array, "n ..."],
    K_test_train: Float[Array, "t n"],
    ridge: float | Float[Array, ""] = 1e-6,
) -> Float[Array, "t ..."]:
    r"""Kernel ridge regression predictions :math:`K_{\text{test},\text{train}}(K + \lambda I)^{-1}y`.

    Args:
        K_train: ``(n, n)`` symmetric PSD kernel on the training inputs.
        y_train: ``(n,)`` or ``(n, k)`` labels.
        K_test_train: ``(t, n)`` kernel between test and training inputs.
        ridge: :math:`\lambda \ge 0` (absolute, in the units of ``K``).

    Returns:
        ``(t,)`` or ``(t, k)`` predictions.

    Example:
        >>> import jax.numpy as jnp
        >>> import taylorlib as tl
        >>> K = jnp.array([[2.0, 1.0], [1.0, 2.0]])
        >>> y = jnp.array([1.0, -1.0])
        >>> [round(v, 4) for v in tl.kernel_regression.krr(K, y, K, ridge=0.0).tolist()]
        [1.0, -1.0]
    """
    alpha = krr_weights(K_train, y_train, ridge)
    Kt = as_float_array(K_test_train, "K_test_train")
    if Kt.ndim != 2 or Kt.shape[1] != alpha.shape[0]:
        raise ValueError(
            f"K_test_train must have shape (t, {alpha.shape[0]}) to match K_train, got {tuple(Kt.shape)}"
        )
    check_finite(Kt, "K_test_train")
    return Kt @ alpha
