"""Shared tolerances and comparison helpers for the test suite."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np

#: Relative tolerances by dtype for comparing two exact implementations of the same quantity.
RTOL = {np.dtype("float32"): 1e-4, np.dtype("float64"): 1e-10}


def rtol_for(x) -> float:
    return RTOL[np.dtype(jnp.asarray(x).dtype)]


def rel_frobenius(a, b) -> float:
    """``||a - b||_F / ||b||_F``."""
    a, b = np.asarray(a, dtype=np.float64), np.asarray(b, dtype=np.float64)
    return float(np.linalg.norm(a - b) / max(np.linalg.norm(b), 1e-300))


def assert_close_matrices(a, b, rtol: float | None = None) -> None:
    """Assert relative Frobenius agreement, with a dtype-keyed default tolerance."""
    rtol = rtol_for(a) if rtol is None else rtol
    err = rel_frobenius(a, b)
    assert err <= rtol, f"relative Frobenius error {err:.3e} > {rtol:.1e}"


def tree_allclose(a, b, rtol: float | None = None, atol: float = 0.0) -> bool:
    la, lb = jax.tree_util.tree_leaves(a), jax.tree_util.tree_leaves(b)
    if len(la) != len(lb):
        return False
    for u, v in zip(la, lb, strict=True):
        r = rtol_for(u) if rtol is None else rtol
        if not np.allclose(np.asarray(u), np.asarray(v), rtol=r, atol=atol):
            return False
    return True
