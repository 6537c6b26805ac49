"""Issue 16: lanczos runs its Hessian-vector products from a host loop (same Ritz values as the device
loop used under tracing), and hessian refuses by the memory it needs to compute, not only its output size."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from helpers import assert_close_matrices

import taylorlib as tl


def cnn_loss():
    net = tl.nets.cnn((3,), "tanh")
    p = net.init(jax.random.key(0), 1)
    x = jax.random.normal(jax.random.key(1), (6, 5, 5, 1))
    return (lambda q: jnp.mean((net.apply(q, x) - 1.0) ** 2)), p


@pytest.mark.x64
def test_host_and_device_lanczos_agree_with_the_dense_hessian(x64):
    loss, p = cnn_loss()
    H = tl.landscape.hessian(loss, p)
    n = H.shape[0]
    assert_close_matrices(
        H,
        jax.hessian(lambda f: loss(jax.flatten_util.ravel_pytree(p)[1](f)))(
            jax.flatten_util.ravel_pytree(p)[0]
        ),
        rtol=1e-10,
    )
    host = tl.landscape.lanczos(loss, p, jax.random.key(2), n)
    device = jax.jit(lambda q: tl.landscape.lanczos(loss, q, jax.random.key(2), n).eigvals)(p)
    exact = np.linalg.eigvalsh(np.asarray(H))
    np.testing.assert_allclose(host.eigvals, exact, atol=1e-9 * np.abs(exact).max())
    np.testing.assert_allclose(device, exact, atol=1e-9 * np.abs(exact).max())


def test_hessian_refuses_by_the_memory_it_needs():
    loss, p = cnn_loss()
    n = jax.flatten_util.ravel_pytree(p)[0].size
    out_bytes = n * n * 4
    # the output alone fits, the output plus one product's work space does not
    with pytest.raises(
        ValueError, match=r"needs about .* MiB .*work space per Hessian-vector product.*max_bytes"
    ):
        tl.landscape.hessian(loss, p, max_bytes=out_bytes + 1)
    assert tl.landscape.hessian(loss, p, max_bytes=out_bytes + 1, force=True).shape == (n, n)
