"""Shared tolerances, comparison helpers and input generators for the test suite.

Imported as ``from helpers import ...`` everywhere: under pytest and xdist, the default prepend import
mode puts tests/ (a folder without ``__init__.py``) on sys.path. test_repository checks that no test
imports it as ``tests.helpers``, which would load a second copy of the module."""

from __future__ import annotations

import contextlib
import re
import sys

import jax
import jax.numpy as jnp
import numpy as np
import pytest

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


def assert_symmetric_psd(K, psd_rtol: float = 1e-6, sym_rtol: float = 1e-6) -> None:
    """Assert that ``K`` is square, symmetric to ``sym_rtol`` and PSD: its eigenvalues dip below zero by at
    most ``psd_rtol * trace(K)`` (round-off)."""
    K = np.asarray(K, dtype=np.float64)
    assert K.ndim == 2, K.shape
    assert K.shape[0] == K.shape[1], K.shape
    np.testing.assert_allclose(K, K.T, rtol=sym_rtol, atol=0.1 * sym_rtol * np.abs(K).max())
    eig = np.linalg.eigvalsh((K + K.T) / 2)
    assert eig.min() >= -psd_rtol * np.trace(K), f"min eigenvalue {eig.min():.3e}"


def np_sphere(seed: int, n: int, d: int) -> jax.Array:
    """``n`` points uniform on the sphere of radius ``sqrt(d)`` in R^d, drawn with numpy (no JAX compile)."""
    g = np.random.default_rng(seed).standard_normal((n, d))
    return jnp.asarray(g * np.sqrt(d) / np.linalg.norm(g, axis=1, keepdims=True))


def random_like(seed: int, tree, scale: float = 1.0):
    """A Gaussian pytree with the structure and shapes of ``tree`` (numpy: no compile per shape)."""
    rng = np.random.default_rng(seed)
    return jax.tree_util.tree_map(
        lambda v: jnp.asarray(scale * rng.standard_normal(jnp.shape(v)), jnp.result_type(v)), tree
    )


def clear_jit_caches(module) -> None:
    """Drop the compiled programs and traces of every jitted function defined at the top of ``module``.

    A spy that replaces a helper the kernels' dispatch looks up while jit *traces* sees nothing if the trace
    is cached; clearing only this module's caches (instead of ``jax.clear_caches()``, which drops every
    program the worker compiled) keeps the rest of the test run warm."""
    cleared = 0
    for value in vars(module).values():
        clear = getattr(value, "clear_cache", None)
        if callable(clear) and hasattr(value, "lower"):  # a jax.jit-wrapped function
            clear()
            cleared += 1
    if not cleared:
        raise ValueError(f"module {module.__name__} defines no jitted function")


def typecheck_hook_active() -> bool:
    """True when taylorlib was imported under jaxtyping's import hook (``make unit`` and ``make typecheck``
    pass ``--jaxtyping-packages=taylorlib,...``): every annotation is then checked at call time by beartype."""
    module = sys.modules.get("taylorlib")
    return module is not None and type(module.__spec__.loader).__name__ == "_JaxtypingLoader"


@contextlib.contextmanager
def raises(error, match: str, *, checker_names: str | None = None):
    """``pytest.raises(error, match=match)`` for a bad-input check whose message names the argument.

    Without the type-check hook this is exactly ``pytest.raises``. Under the hook, beartype may reject a
    wrong type or shape before the library's own check runs: a ``jaxtyping.TypeCheckError`` is accepted
    instead, but only if it names an argument that ``match`` names too, or ``checker_names`` when the
    checker blames another argument than the library does (a shape letter bound by an earlier argument),
    or reports through the library's own wrapper message."""
    if not typecheck_hook_active():
        with pytest.raises(error, match=match) as info:
            yield info
        return
    from jaxtyping import TypeCheckError

    errors = error if isinstance(error, tuple) else (error,)
    with pytest.raises((*errors, TypeCheckError)) as info:
        yield info
    message = str(info.value)
    if checker_names is not None and f"parameter '{checker_names}'" in message:
        return
    if isinstance(info.value, TypeCheckError):
        names = re.findall(r"[A-Za-z_]\w*", match)
        named = [n for n in names if f"parameter '{n}'" in message]
        assert named, f"the checker names an argument {match!r} does not: {message}"
    else:
        assert re.search(match, message), f"regex {match!r} not found in {message!r}"
