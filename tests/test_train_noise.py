"""perturbed_gd samples its noise only on the steps that perturb; the iterates do not depend on that."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import optax

import taylorlib as tl


def test_radius_zero_is_plain_gradient_descent():
    loss = lambda w: jnp.sum((w - 1.0) ** 2) + 0.1 * jnp.sum(w**4)
    w0 = jnp.linspace(-1.0, 1.0, 5)
    w_pgd, _ = tl.train.fit(loss, w0, tl.train.perturbed_gd(0.05, 0.0, 0.0, jax.random.key(0)), 30)
    w_sgd, _ = tl.train.fit(loss, w0, optax.sgd(0.05), 30)
    assert jnp.allclose(w_pgd, w_sgd, rtol=1e-6, atol=0)  # equal up to the fusion of w - lr g


def test_noise_branch_is_conditional():
    opt = tl.train.perturbed_gd(0.1, 1e-2, 1e-3, jax.random.key(0))
    g = jnp.ones(3)
    jaxpr = str(jax.make_jaxpr(lambda g, s: opt.update(g, s))(g, opt.init(g)))
    assert "cond" in jaxpr


def test_update_is_the_same_with_and_without_vmap():
    opt = tl.train.perturbed_gd(0.1, 0.5, 1.0, jax.random.key(3))  # perturbs when |g| < 1
    grads = jnp.array([[0.1, 0.2], [3.0, 4.0]])  # the first perturbs, the second does not
    state = opt.init(grads[0])
    single = jnp.stack([opt.update(g, state)[0] for g in grads])
    batched = jax.vmap(lambda g: opt.update(g, state)[0])(grads)  # under vmap the cond runs both branches
    assert jnp.allclose(single, batched, atol=1e-7)
    assert not jnp.allclose(single[0], -0.1 * grads[0])  # perturbed
    assert jnp.array_equal(single[1], -0.1 * grads[1])  # a plain gradient step
    assert float(jnp.linalg.norm(single[0] + 0.1 * grads[0])) <= 0.5 + 1e-6  # the noise lies in the ball
