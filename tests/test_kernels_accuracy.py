"""Issue 16: quadrature-based infinite-width kernels are accurate to float32 round-off for k <= 3 (against an
independent 1024-node Gauss–Hermite rule in float64), and eager and jitted calls use the same nodes."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from helpers import clear_jit_caches

import taylorlib as tl
from taylorlib import activations as _act
from taylorlib import kernels as _kernels

#: float32 round-off: relative error of a kernel entry with respect to the largest one.
F32_ROUNDOFF = 1.2e-7
QUADRATURE = ("tanh", "softplus", "gelu", "erf", "smooth_relu2")


def gauss_hermite_reference(x, activation, k, q=1024):
    """E[s^(k)(u) s^(k)(u')] by a q x q Gauss–Hermite rule (Golub–Welsch nodes), float64."""
    z, w = _kernels._hermite_nodes(q)
    x = np.asarray(x, np.float64)
    d = x.shape[1]
    s = np.sum(x * x, axis=1) / d
    c = x @ x.T / d
    fn = _act.derivative(activation, k)
    out = np.empty_like(c)
    for i in range(len(x)):
        f1 = np.asarray(fn(jnp.asarray(np.sqrt(s[i]) * z))) * w
        for j in range(i, len(x)):  # the kernel is symmetric: entry (j, i) is entry (i, j)
            rho = c[i, j] / np.sqrt(s[i] * s[j])
            up = np.sqrt(s[j]) * (rho * z[:, None] + np.sqrt(max(1 - rho * rho, 0.0)) * z[None, :])
            out[i, j] = out[j, i] = f1 @ (np.asarray(fn(jnp.asarray(up))) @ w)
    return out


@pytest.mark.x64
@pytest.mark.parametrize("activation", QUADRATURE)
def test_quadrature_kernels_reach_float32_roundoff(x64, activation, monkeypatch):
    quadrature, used = _kernels._quadrature_dual, []

    def spy(*args, **kwargs):
        used.append(kwargs["q"])
        return quadrature(*args, **kwargs)

    monkeypatch.setattr(_kernels, "_quadrature_dual", spy)
    x0 = np.random.default_rng(0).standard_normal((3, 4))
    x0 *= 2.0 / np.linalg.norm(x0, axis=1, keepdims=True)  # ||x||^2 / d = 1
    for s in (1.0, 2.0, 5.0):  # the level boundary s = 2 is the hardest point of level 0
        x = jnp.asarray(x0 * np.sqrt(s))
        for k in range(4):
            if (activation, k) in (("erf", 0), ("erf", 1)):
                continue  # closed forms
            used.clear()
            clear_jit_caches(_kernels)  # the dispatch runs when jit traces: retrace so the spy sees it
            got = np.asarray(tl.kernels.dual(x, activation=activation, k=k))
            assert len(used) == 1, (activation, k)  # the case reached the quadrature, not a closed form
            assert used[0] >= (128 if s == 5.0 else 64), used  # s = 5: the third node level
            ref = gauss_hermite_reference(x, activation, k)
            err = np.abs(got - ref).max() / np.abs(ref).max()
            assert err <= F32_ROUNDOFF, (activation, s, k, err)


def test_eager_and_jit_use_the_same_nodes(monkeypatch):
    x = tl.data.sphere(jax.random.key(0), 6, 5)
    quadrature, used = _kernels._quadrature_dual, []

    def spy(*args, **kwargs):
        used.append(kwargs["q"])
        return quadrature(*args, **kwargs)

    monkeypatch.setattr(_kernels, "_quadrature_dual", spy)
    for scale in (1.0, 1.8):  # two node levels
        for k in (0, 3):
            used.clear()
            clear_jit_caches(_kernels)  # the dispatch runs when jit traces: retrace so the spy sees it
            eager = tl.kernels.dual(x * scale, activation="tanh", k=k)
            # tanh gets 16 extra nodes per order; ||x||^2/d = 3.24 is the second level (x sqrt 2)
            assert used == [round((64 + 16 * k) * (1.0 if scale == 1.0 else 2**0.5))], used
            jitted = jax.jit(lambda v, k=k: tl.kernels.dual(v, activation="tanh", k=k))(x * scale)
            np.testing.assert_array_equal(np.asarray(jitted), np.asarray(eager))
